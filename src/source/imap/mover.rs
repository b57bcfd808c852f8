//! Committed messages leaving the inbox: gathered over batches, then moved (or flagged) and
//! the highest UID recorded, over a second connection when a round moves more than once.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::Session;
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

use super::fetch::uid_set;
use super::filing::Filing;
use super::{CONNECT_TIMEOUT, Caps, Conn, Selected, WithContext, connect, save_state, timed};
use crate::config::{After, ImapSettings, MailboxSettings};
use crate::source::{Ctx, Disposition, SourceError};
use crate::store::MailboxState;

/// Committed messages wait at most about this long for more to be moved with them.
const MOVE_DELAY: Duration = Duration::from_secs(2);

/// Committed messages that have not left the inbox yet.
#[derive(Default)]
pub(super) struct Committed {
    processed: Vec<u32>,
    quarantine: Vec<u32>,
    /// The highest UID of the batches gathered.
    last_uid: u32,
    /// When the oldest of them was committed.
    since: Option<Instant>,
}

impl Committed {
    /// Waits for a batch's commit and adds its messages.
    pub(super) async fn add(&mut self, mut filing: Filing) -> Result<(), SourceError> {
        let filed = filing.filed().await?;
        for (uid, disposition) in filed {
            match disposition {
                Disposition::Processed => self.processed.push(uid),
                Disposition::Quarantine => self.quarantine.push(uid),
            }
        }
        self.quarantine.extend(filing.too_big);
        self.last_uid = self.last_uid.max(filing.last_uid);
        self.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Whether to move now rather than gather more.
    pub(super) fn due(&self, move_batch_size: usize) -> bool {
        self.processed.len() + self.quarantine.len() >= move_batch_size
            || self.since.is_some_and(|t| t.elapsed() >= MOVE_DELAY)
    }

    /// Moves (or flags) the messages gathered and records the highest UID.
    async fn leave_inbox(
        self,
        session: &mut Session<Conn>,
        ctx: &Ctx,
        mb: &MailboxSettings,
        imap: &ImapSettings,
        caps: Caps,
        mut state: MailboxState,
    ) -> Result<MailboxState, SourceError> {
        if self.since.is_none() {
            return Ok(state);
        }
        let from = &imap.folder;
        // The last batch gathered may take a command past `move_batch_size`.
        for part in self.processed.chunks(mb.move_batch_size) {
            match mb.after {
                After::Move => move_to(session, caps, part, from, &imap.processed_folder).await?,
                After::Flag => flag_seen(session, part, from).await?,
            }
        }
        for part in self.quarantine.chunks(mb.move_batch_size) {
            move_to(session, caps, part, from, &imap.quarantine_folder).await?;
        }
        state.last_uid = state.last_uid.max(self.last_uid);
        save_state(ctx, mb, state).await?;
        Ok(state)
    }
}

/// A move on the second connection; it hands the connection back when done.
type MoveTask = tokio::task::JoinHandle<(Session<Conn>, Result<MailboxState, SourceError>)>;

/// Where committed messages leave the inbox. A round that moves more than once moves over a
/// second connection, so that the server's work for a move (with Maildir storage it costs
/// more than the fetch) overlaps with the fetches of the next batches; a short round, or a
/// server that refuses a second connection, moves over the session's own.
pub(super) enum Mover {
    Own,
    Second {
        idle: Option<Session<Conn>>,
        running: Option<MoveTask>,
    },
}

impl Mover {
    pub(super) async fn open(wanted: bool, sel: &Selected<'_>, stop: &CancellationToken) -> Mover {
        if !wanted {
            return Mover::Own;
        }
        let imap = sel.imap;
        // Short, and given up at shutdown: the session's own connection can always move.
        let second = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut s = connect::connect(imap).await?.session;
            let selected = timed(s.select(&imap.folder))
                .await
                .context(|| format!("{}: SELECT failed", imap.folder))?;
            Ok::<_, SourceError>((s, selected.uid_validity))
        });
        let opened = tokio::select! {
            r = second => r,
            _ = stop.cancelled() => return Mover::Own,
        };
        match opened {
            Ok(Ok((s, v))) if v == Some(sel.uidvalidity) => {
                tracing::info!("moving over a second connection while fetching");
                Mover::Second {
                    idle: Some(s),
                    running: None,
                }
            }
            Ok(Ok(_)) => {
                tracing::warn!("UIDVALIDITY differs on a second connection; moving over one");
                Mover::Own
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "no second connection for moves; moving over one");
                Mover::Own
            }
            Err(_) => {
                tracing::info!("a second connection for moves took too long; moving over one");
                Mover::Own
            }
        }
    }

    /// Starts moving `ready` once the move before it is done; `state` follows what is moved.
    pub(super) async fn submit(
        &mut self,
        ready: Committed,
        session: &mut Session<Conn>,
        sel: &Selected<'_>,
        state: &mut MailboxState,
    ) -> Result<(), SourceError> {
        let (mb, imap, caps) = (sel.mb, sel.imap, sel.caps);
        match self {
            Mover::Own => {
                *state = ready
                    .leave_inbox(session, sel.ctx, mb, imap, caps, *state)
                    .await?;
            }
            Mover::Second { idle, running } => {
                let mut second = match running.take() {
                    Some(task) => joined(task, &imap.folder, state).await?,
                    None => idle.take().ok_or_else(|| {
                        SourceError::Protocol(format!(
                            "{}: the second connection for moves was lost",
                            imap.folder
                        ))
                    })?,
                };
                if ready.since.is_none() {
                    *idle = Some(second);
                    return Ok(());
                }
                let (ctx, mb, imap, start) =
                    (Arc::clone(sel.ctx), mb.clone(), imap.clone(), *state);
                *running = Some(tokio::spawn(async move {
                    let r = ready
                        .leave_inbox(&mut second, &ctx, &mb, &imap, caps, start)
                        .await;
                    (second, r)
                }));
            }
        }
        Ok(())
    }

    /// Waits for the move under way and closes the second connection.
    pub(super) async fn finish(
        &mut self,
        folder: &str,
        state: &mut MailboxState,
    ) -> Result<(), SourceError> {
        let Mover::Second { idle, running } = self else {
            return Ok(());
        };
        let result = match running.take() {
            Some(task) => joined(task, folder, state).await.map(|s| *idle = Some(s)),
            None => Ok(()),
        };
        if let Some(mut s) = idle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
        }
        *self = Mover::Own;
        result
    }
}

/// The connection of a finished move; `state` takes what it recorded.
async fn joined(
    task: MoveTask,
    folder: &str,
    state: &mut MailboxState,
) -> Result<Session<Conn>, SourceError> {
    let (session, moved) = task
        .await
        .map_err(|e| SourceError::Protocol(format!("{folder}: moving messages failed: {e}")))?;
    *state = moved?;
    Ok(session)
}

/// Moves exactly these UIDs; with neither MOVE nor UIDPLUS the originals stay marked
/// `\Deleted` for the mailbox's owner rather than expunging anything we did not file.
async fn move_to(
    session: &mut Session<Conn>,
    caps: Caps,
    uids: &[u32],
    from: &str,
    to: &str,
) -> Result<(), SourceError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    let n = uids.len();
    if caps.mv {
        return timed(session.uid_mv(&set, to))
            .await
            .context(|| format!("{from}: UID MOVE of {n} messages to {to} failed"));
    }
    timed(session.uid_copy(&set, to))
        .await
        .context(|| format!("{from}: UID COPY of {n} messages to {to} failed"))?;
    timed(async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .context(|| format!("{from}: marking {n} messages copied to {to} \\Deleted failed"))?;
    if caps.uidplus {
        timed(async {
            session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await
        .context(|| format!("{from}: UID EXPUNGE of {n} messages copied to {to} failed"))?;
    }
    Ok(())
}

async fn flag_seen(
    session: &mut Session<Conn>,
    uids: &[u32],
    folder: &str,
) -> Result<(), SourceError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    timed(async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .context(|| format!("{folder}: flagging {} messages \\Seen failed", uids.len()))?;
    Ok(())
}
