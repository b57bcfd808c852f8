//! An IMAP mailbox as a source (async-imap over tokio-rustls).
//!
//! One session: log in, select the folder, compare UIDVALIDITY with the store, then repeat:
//! fetch what is new in batches (`BODY.PEEK[]`, so nothing is marked read before it is filed),
//! file each batch in one transaction, strictly in UID order, then move (or flag) the committed
//! messages on the server, several batches with one command, and record the highest UID moved;
//! then wait in IDLE (or sleep) for more. Mail is never deleted: a move is UID MOVE, or COPY + `\Deleted`
//! + UID EXPUNGE of exactly those UIDs.
//!
//! The steps live in the order a message passes them: `connect`, `select` (UIDVALIDITY
//! bookkeeping), `fetch`, `filing` (the in-order commit chain), `mover`, `idle`. Every error
//! that leaves one of them names the server or folder and the IMAP operation, since the log
//! line of a failed session is all an operator sees of it.
mod connect;
mod fetch;
mod filing;
mod idle;
mod mover;
mod select;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::{Ctx, SourceError};
use crate::config::{ImapSettings, MailboxSettings};
use crate::store::MailboxState;
use filing::{Filing, Turn};
use mover::{Committed, Mover};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No single command (a batch fetch included) may stall a session longer than this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}
type Conn = Box<dyn Io>;

/// What the server offers that changes how we work.
#[derive(Debug, Clone, Copy)]
struct Caps {
    idle: bool,
    mv: bool,
    uidplus: bool,
}

/// The folder a session has selected, and what every step after the selection needs.
struct Selected<'a> {
    ctx: &'a Arc<Ctx>,
    mb: &'a MailboxSettings,
    imap: &'a ImapSettings,
    caps: Caps,
    uidvalidity: u32,
    /// The folder's name in the store's source keys.
    key: String,
    /// When the session's OAuth token is due for renewal: the session ends then, between
    /// rounds, and the next one logs in with a new token.
    renew_at: Option<tokio::time::Instant>,
}

/// `poststelle check --connect`: logs in (password or OAuth token) and out again.
pub async fn try_login(imap: &ImapSettings) -> Result<(), SourceError> {
    let mut c = connect::connect(imap).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), c.session.logout()).await;
    Ok(())
}

/// One session on the mailbox; returns `Ok` at `stop`, `Err` on any network or server error.
pub async fn session(
    ctx: &Arc<Ctx>,
    mb: &MailboxSettings,
    imap: &ImapSettings,
    stop: &CancellationToken,
) -> Result<(), SourceError> {
    let connect::Connected {
        mut session,
        renew_at,
    } = connect::connect(imap).await?;
    let caps = connect::capabilities(&mut session, imap).await?;
    select::create_folders(&mut session, mb, imap).await?;
    let (uidvalidity, mut state) = select::select(&mut session, ctx, mb, imap).await?;
    tracing::info!(
        folder = %imap.folder,
        uidvalidity,
        last_uid = state.last_uid,
        idle = caps.idle && imap.idle,
        "mailbox selected"
    );
    let sel = Selected {
        ctx,
        mb,
        imap,
        caps,
        uidvalidity,
        key: format!("{}/{}", mb.name, imap.folder),
        renew_at,
    };
    loop {
        let uids = fetch::new_uids(&mut session, &imap.folder, state.last_uid).await?;
        // Each batch recorded its progress. An empty poll writes nothing, so that an idle
        // daemon costs the database nothing; when it happened is in the metrics.
        file_round(&mut session, &sel, &mut state, &uids, stop).await?;
        ctx.metrics.polled(&mb.name);
        if stop.is_cancelled() {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
            return Ok(());
        }
        // Servers keep a session whose token expired, but some (Exchange Online) end it
        // then; a new login between rounds loses nothing, as every round begins with a
        // search from the last moved UID.
        if renew_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
            tracing::info!("OAuth token due for renewal: logging in again");
            let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
            return Ok(());
        }
        session = idle::wait(session, &sel, stop).await?;
    }
}

/// Files the messages one search found and moves them once committed.
///
/// Batches overlap: while batch k is parsed, classified and committed in a task of its
/// own, this session fetches batch k+1 and starts parsing it, and what is committed by
/// then is moved. Commits stay in UID order: batch k+1 opens its transaction only after
/// batch k committed (a reply filed before its request would open a ticket of its
/// own). Moves are gathered over batches, since a server's cost for a move is mostly per
/// command. A message still leaves the inbox only after its commit, and the recorded UID
/// only ever covers moved messages.
async fn file_round(
    session: &mut Session<Conn>,
    sel: &Selected<'_>,
    state: &mut MailboxState,
    uids: &[u32],
    stop: &CancellationToken,
) -> Result<(), SourceError> {
    // A second connection helps only when the round moves more than once.
    let several_moves = uids.len() > sel.mb.move_batch_size.max(sel.mb.batch_size);
    let mut round = Round {
        in_flight: None,
        turn: None,
        committed: Committed::default(),
        mover: Mover::open(several_moves, sel, stop).await,
    };
    if let Err(e) = round.run(session, sel, state, uids, stop).await {
        round.abandon(&sel.imap.folder, state).await;
        return Err(e);
    }
    Ok(())
}

/// The batches of one round between the inbox and the processed folder.
struct Round {
    /// The batch last started, being filed while the session fetches the next.
    in_flight: Option<Filing>,
    /// Resolves when the batch last started has committed: the next one waits for it.
    turn: Option<Turn>,
    committed: Committed,
    mover: Mover,
}

impl Round {
    async fn run(
        &mut self,
        session: &mut Session<Conn>,
        sel: &Selected<'_>,
        state: &mut MailboxState,
        uids: &[u32],
        stop: &CancellationToken,
    ) -> Result<(), SourceError> {
        for chunk in uids.chunks(sel.mb.batch_size) {
            let fetched = fetch::fetch_batch(session, sel, chunk).await?;
            let (filing, next) = Filing::start(sel, fetched, self.turn.take());
            self.turn = Some(next);
            if let Some(done) = self.in_flight.replace(filing) {
                self.committed.add(done).await?;
                if self.committed.due(sel.mb.move_batch_size) {
                    let ready = std::mem::take(&mut self.committed);
                    self.mover.submit(ready, session, sel, state).await?;
                }
            }
            if stop.is_cancelled() {
                break;
            }
        }
        if let Some(done) = self.in_flight.take() {
            self.committed.add(done).await?;
        }
        let ready = std::mem::take(&mut self.committed);
        self.mover.submit(ready, session, sel, state).await?;
        self.mover.finish(&sel.imap.folder, state).await
    }

    /// After a failed round: a batch still being filed commits or fails on its own, and so
    /// does a move under way; wait for them, so that the next session does not work beside
    /// them. Committed messages not moved yet are found again and recognised as filed.
    async fn abandon(mut self, folder: &str, state: &mut MailboxState) {
        if let Some(f) = self.in_flight.take() {
            let _ = f.task.await;
        }
        if let Err(moving) = self.mover.finish(folder, state).await {
            tracing::warn!(error = %moving, "moving committed messages failed too");
        }
    }
}

async fn save_state(
    ctx: &Ctx,
    mb: &MailboxSettings,
    state: MailboxState,
) -> Result<(), SourceError> {
    ctx.store
        .save_mailbox_state(&mb.name, state)
        .await
        .context(|| format!("mailbox {}: saving its state failed", mb.name))
}

/// Runs one IMAP command with the session-wide timeout.
async fn timed<T, E: Into<SourceError>>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(SourceError::Protocol(format!(
            "the server did not answer within {} s",
            COMMAND_TIMEOUT.as_secs()
        ))),
    }
}

/// Says where and in doing what an error happened, for the log line of a failed session
/// (`"INBOX: UID MOVE of 40 messages to Verarbeitet failed: …"`).
trait WithContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, SourceError>;
}

impl<T, E: Into<SourceError>> WithContext<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, SourceError> {
        self.map_err(|e| SourceError::Context {
            context: what(),
            source: Box::new(e.into()),
        })
    }
}
