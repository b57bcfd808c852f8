//! An IMAP mailbox as a source (async-imap over tokio-rustls).
//!
//! One session: log in, select the folder, compare UIDVALIDITY with the store, then repeat:
//! fetch what is new in batches (`BODY.PEEK[]`, so nothing is marked read before it is filed),
//! file each batch in one transaction, strictly in UID order, then move (or flag) the committed messages on the
//! server, several batches with one command, and record the highest UID moved; then wait in
//! IDLE (or sleep) for more. Mail is never deleted: a move is UID MOVE, or COPY + `\Deleted`
//! + UID EXPUNGE of exactly those UIDs.
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::types::{Fetch, UnsolicitedResponse};
use async_imap::{Client, Session};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_util::sync::CancellationToken;

use super::{Ctx, Disposition, SourceError};
use crate::config::{After, FirstRun, ImapSettings, ImapTls, MailboxSettings};
use crate::store::MailboxState;
use crate::ticket::ingest::{Incoming, Ingestor, Outcome, SourceKey};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No single command (a batch fetch included) may stall a session longer than this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Committed messages wait at most about this long for more to be moved with them.
const MOVE_DELAY: Duration = Duration::from_secs(2);

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

/// One session on the mailbox; returns `Ok` at `stop`, `Err` on any network or server error.
pub async fn session(
    ctx: &Arc<Ctx>,
    mb: &MailboxSettings,
    imap: &ImapSettings,
    stop: &CancellationToken,
) -> Result<(), SourceError> {
    let mut session = connect(imap).await?;
    let caps = {
        let c = timed(session.capabilities()).await?;
        Caps {
            idle: c.has_str("IDLE"),
            mv: c.has_str("MOVE"),
            uidplus: c.has_str("UIDPLUS"),
        }
    };
    for folder in [&imap.processed_folder, &imap.quarantine_folder] {
        if mb.after == After::Flag && folder == &imap.processed_folder {
            continue;
        }
        // An existing folder answers NO, which is what we want.
        if let Err(e) = timed(session.create(folder)).await {
            match e {
                SourceError::Imap(async_imap::error::Error::No(_)) => {}
                e => return Err(e),
            }
        }
    }
    let selected = timed(session.select(&imap.folder)).await?;
    let uidvalidity = selected
        .uid_validity
        .ok_or_else(|| SourceError::Protocol(format!("{} has no UIDVALIDITY", imap.folder)))?;
    let key = format!("{}/{}", mb.name, imap.folder);
    let mut state = match ctx.store.mailbox_state(&mb.name).await? {
        None => {
            let last_uid = match mb.first_run {
                FirstRun::All => 0,
                // Everything there now counts as seen; only what arrives later is filed.
                FirstRun::New => selected.uid_next.unwrap_or(1).saturating_sub(1),
            };
            tracing::info!(
                uidvalidity,
                last_uid,
                first_run = ?mb.first_run,
                "first connection to this mailbox"
            );
            MailboxState {
                uidvalidity: Some(uidvalidity),
                last_uid,
            }
        }
        Some(s) if s.uidvalidity != Some(uidvalidity) => {
            // Every UID changed meaning: read the folder again from the start. What was filed
            // before is recognised by Message-ID and content, and is only moved.
            tracing::warn!(
                old = s.uidvalidity,
                new = uidvalidity,
                "UIDVALIDITY changed; resynchronising"
            );
            MailboxState {
                uidvalidity: Some(uidvalidity),
                last_uid: 0,
            }
        }
        Some(s) => s,
    };
    ctx.store.save_mailbox_state(&mb.name, state).await?;
    tracing::info!(
        folder = %imap.folder,
        uidvalidity,
        last_uid = state.last_uid,
        idle = caps.idle && imap.idle,
        "mailbox selected"
    );

    let limit = ctx.config.settings.ingest.max_message_size;
    loop {
        // The search sees everything announced so far; what arrives later shows up as EXISTS.
        while session.unsolicited_responses.try_recv().is_ok() {}
        let mut uids: Vec<u32> = timed(session.uid_search(format!("UID {}:*", state.last_uid + 1)))
            .await?
            .into_iter()
            // `n:*` always includes the highest UID, even when it is below n.
            .filter(|&u| u > state.last_uid)
            .collect();
        uids.sort_unstable();
        // Batches overlap: while batch k is parsed, classified and committed in a task of its
        // own, this session fetches batch k+1 and starts parsing it, and what is committed by
        // then is moved. Commits stay in UID order: batch k+1 opens its transaction only after
        // batch k committed (a reply filed before its request would open a ticket of its
        // own). Moves are
        // gathered over batches, since a server's cost for a move is mostly per command. A
        // message still leaves the inbox only after its commit, and the recorded UID only ever
        // covers moved messages.
        let mut in_flight: Option<Filing> = None;
        // Resolves when the batch last started has committed: the next one waits for it.
        let mut turn: Option<Turn> = None;
        let mut committed = Committed::default();
        // A second connection helps only when the round moves more than once.
        let several_moves = uids.len() > mb.move_batch_size.max(mb.batch_size);
        let mut mover = Mover::open(several_moves, imap, uidvalidity, stop).await;
        let result = async {
            for chunk in uids.chunks(mb.batch_size) {
                let fetched =
                    fetch_batch(&mut session, ctx, mb, &key, uidvalidity, chunk, limit).await?;
                let (filing, next) = Filing::start(ctx, &mb.name, fetched, turn.take());
                turn = Some(next);
                if let Some(done) = in_flight.replace(filing) {
                    committed.add(done).await?;
                    if committed.due(mb.move_batch_size) {
                        let ready = std::mem::take(&mut committed);
                        mover
                            .submit(ready, &mut session, ctx, mb, imap, caps, &mut state)
                            .await?;
                    }
                }
                if stop.is_cancelled() {
                    break;
                }
            }
            if let Some(done) = in_flight.take() {
                committed.add(done).await?;
            }
            let ready = std::mem::take(&mut committed);
            mover
                .submit(ready, &mut session, ctx, mb, imap, caps, &mut state)
                .await?;
            mover.finish(&mut state).await
        }
        .await;
        if let Err(e) = result {
            // A batch still being filed commits or fails on its own, and so does a move under
            // way; wait for them, so that the next session does not work beside them.
            // Committed messages not moved yet are found again and recognised as filed.
            if let Some(f) = in_flight.take() {
                let _ = f.task.await;
            }
            if let Err(moving) = mover.finish(&mut state).await {
                tracing::warn!(error = %moving, "moving committed messages failed too");
            }
            return Err(e);
        }
        // Each batch recorded its progress; an empty poll still records when it happened.
        if uids.is_empty() {
            ctx.store.save_mailbox_state(&mb.name, state).await?;
        }
        ctx.metrics.polled(&mb.name);
        if stop.is_cancelled() {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
            return Ok(());
        }
        session = wait(session, caps, mb, imap, stop).await?;
    }
}

/// One batch as the server handed it over.
struct Fetched {
    /// The bodies of the messages within the size limit, each with its UID.
    bodies: Vec<Fetch>,
    /// The store's key of each body.
    sources: Vec<SourceKey>,
    /// Messages over the size limit: they go to the quarantine folder unread.
    too_big: Vec<u32>,
    /// The highest UID of the batch, read or not.
    last_uid: u32,
}

/// Fetches one batch: sizes first, so an oversized message is never downloaded, then the
/// bodies of the others.
async fn fetch_batch(
    session: &mut Session<Conn>,
    ctx: &Ctx,
    mb: &MailboxSettings,
    key: &str,
    uidvalidity: u32,
    chunk: &[u32],
    limit: u64,
) -> Result<Fetched, SourceError> {
    let set = uid_set(chunk);
    let fetched = timed(async {
        session
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    // Only the batch's own messages, each once: while a second connection flags or moves
    // earlier ones, a server may report those changes as untagged FETCH responses here too.
    let mut sizes = std::collections::BTreeMap::<u32, u32>::new();
    for f in &fetched {
        if let Some(uid) = f.uid
            && chunk.binary_search(&uid).is_ok()
        {
            let size = sizes.entry(uid).or_default();
            *size = (*size).max(f.size.unwrap_or(0));
        }
    }
    let (small, big): (Vec<_>, Vec<_>) = sizes
        .into_iter()
        .partition(|&(_, size)| u64::from(size) <= limit);
    for (uid, size) in &big {
        tracing::warn!(
            uid,
            size,
            limit,
            "message over max_message_size: moved to the quarantine folder unread"
        );
        ctx.metrics.filed(
            &mb.name,
            &Outcome::Quarantined {
                reason: "too large".into(),
            },
        );
    }
    let mut bodies = Vec::new();
    if !small.is_empty() {
        let wanted: Vec<u32> = small.iter().map(|&(u, _)| u).collect();
        let small_set = uid_set(&wanted);
        bodies = timed(async {
            session
                .uid_fetch(&small_set, "(UID BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        bodies.retain(|f| {
            f.uid.is_some_and(|u| wanted.binary_search(&u).is_ok()) && f.body().is_some()
        });
        bodies.sort_by_key(|f| f.uid);
        bodies.dedup_by_key(|f| f.uid);
        // A message the server did not hand over would otherwise be passed by with the
        // batch's highest UID and never filed: try the batch again later (a message
        // expunged meanwhile is not searched again).
        if bodies.len() < small.len() {
            return Err(SourceError::Protocol(format!(
                "asked for {} messages, got {}; retrying",
                small.len(),
                bodies.len()
            )));
        }
        ctx.metrics.fetched(&mb.name, bodies.len());
    }
    let sources = bodies
        .iter()
        .filter_map(|f| Some(SourceKey::imap(key, uidvalidity, f.uid?)))
        .collect();
    Ok(Fetched {
        bodies,
        sources,
        too_big: big.iter().map(|&(u, _)| u).collect(),
        last_uid: chunk.last().copied().unwrap_or(0),
    })
}

/// Resolves when a batch has committed; fails when it was not filed.
type Turn = tokio::sync::oneshot::Receiver<()>;

/// A batch being filed in a task of its own.
struct Filing {
    task: tokio::task::JoinHandle<Result<Vec<(u32, Disposition)>, SourceError>>,
    too_big: Vec<u32>,
    last_uid: u32,
}

impl Filing {
    /// Starts parsing and classifying at once; the batch commits only after `ahead`, the
    /// batch before it in the mailbox, committed. The returned [`Turn`] does the same for the
    /// batch after this one.
    fn start(
        ctx: &Arc<Ctx>,
        mailbox: &str,
        fetched: Fetched,
        ahead: Option<Turn>,
    ) -> (Filing, Turn) {
        let Fetched {
            bodies,
            sources,
            too_big,
            last_uid,
        } = fetched;
        let ctx = Arc::clone(ctx);
        let mailbox = mailbox.to_string();
        let (done, next) = tokio::sync::oneshot::channel();
        let ahead = async move {
            match ahead {
                None => Ok(()),
                Some(rx) => rx.await.map_err(|_| {
                    SourceError::Protocol("the batch before this one was not filed".into())
                }),
            }
        };
        let task = tokio::spawn(async move {
            if bodies.is_empty() {
                ahead.await?;
                let _ = done.send(());
                return Ok(Vec::new());
            }
            let (uids, items): (Vec<u32>, Vec<Incoming<'_>>) = bodies
                .iter()
                .zip(sources)
                .filter_map(|(f, source)| {
                    Some((
                        f.uid?,
                        Incoming {
                            raw: f.body()?,
                            source,
                        },
                    ))
                })
                .unzip();
            let ingestor = Ingestor::new(&ctx.store, &ctx.config);
            let outcomes = super::file_batch_after(&ctx, &ingestor, &items, ahead).await?;
            // The receiver is gone only when the session gave up; nothing waits then.
            let _ = done.send(());
            ctx.committed();
            Ok(uids
                .into_iter()
                .zip(&outcomes)
                .map(|(uid, outcome)| {
                    ctx.metrics.filed(&mailbox, outcome);
                    (uid, Disposition::of(outcome))
                })
                .collect())
        });
        let filing = Filing {
            task,
            too_big,
            last_uid,
        };
        (filing, next)
    }
}

/// Committed messages that have not left the inbox yet.
#[derive(Default)]
struct Committed {
    processed: Vec<u32>,
    quarantine: Vec<u32>,
    /// The highest UID of the batches gathered.
    last_uid: u32,
    /// When the oldest of them was committed.
    since: Option<Instant>,
}

impl Committed {
    /// Waits for a batch's commit and adds its messages.
    async fn add(&mut self, filing: Filing) -> Result<(), SourceError> {
        let filed = filing
            .task
            .await
            .map_err(|e| SourceError::Protocol(format!("filing a batch failed: {e}")))??;
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
    fn due(&self, move_batch_size: usize) -> bool {
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
        // The last batch gathered may take a command past `move_batch_size`.
        for part in self.processed.chunks(mb.move_batch_size) {
            match mb.after {
                After::Move => move_to(session, caps, part, &imap.processed_folder).await?,
                After::Flag => flag_seen(session, part).await?,
            }
        }
        for part in self.quarantine.chunks(mb.move_batch_size) {
            move_to(session, caps, part, &imap.quarantine_folder).await?;
        }
        state.last_uid = state.last_uid.max(self.last_uid);
        ctx.store.save_mailbox_state(&mb.name, state).await?;
        Ok(state)
    }
}

/// A move on the second connection; it hands the connection back when done.
type MoveTask = tokio::task::JoinHandle<(Session<Conn>, Result<MailboxState, SourceError>)>;

/// Where committed messages leave the inbox. A round that moves more than once moves over a
/// second connection, so that the server's work for a move (with Maildir storage it costs
/// more than the fetch) overlaps with the fetches of the next batches; a short round, or a
/// server that refuses a second connection, moves over the session's own.
enum Mover {
    Own,
    Second {
        idle: Option<Session<Conn>>,
        running: Option<MoveTask>,
    },
}

impl Mover {
    async fn open(
        wanted: bool,
        imap: &ImapSettings,
        uidvalidity: u32,
        stop: &CancellationToken,
    ) -> Mover {
        if !wanted {
            return Mover::Own;
        }
        // Short, and given up at shutdown: the session's own connection can always move.
        let second = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut s = connect(imap).await?;
            let selected = timed(s.select(&imap.folder)).await?;
            Ok::<_, SourceError>((s, selected.uid_validity))
        });
        let opened = tokio::select! {
            r = second => r,
            _ = stop.cancelled() => return Mover::Own,
        };
        match opened {
            Ok(Ok((s, v))) if v == Some(uidvalidity) => {
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
    #[allow(clippy::too_many_arguments)]
    async fn submit(
        &mut self,
        ready: Committed,
        session: &mut Session<Conn>,
        ctx: &Arc<Ctx>,
        mb: &MailboxSettings,
        imap: &ImapSettings,
        caps: Caps,
        state: &mut MailboxState,
    ) -> Result<(), SourceError> {
        match self {
            Mover::Own => {
                *state = ready
                    .leave_inbox(session, ctx, mb, imap, caps, *state)
                    .await?;
            }
            Mover::Second { idle, running } => {
                let mut second = match running.take() {
                    Some(task) => joined(task, state).await?,
                    None => idle.take().ok_or_else(|| {
                        SourceError::Protocol("the second connection was lost".into())
                    })?,
                };
                if ready.since.is_none() {
                    *idle = Some(second);
                    return Ok(());
                }
                let (ctx, mb, imap, start) = (Arc::clone(ctx), mb.clone(), imap.clone(), *state);
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
    async fn finish(&mut self, state: &mut MailboxState) -> Result<(), SourceError> {
        let Mover::Second { idle, running } = self else {
            return Ok(());
        };
        let result = match running.take() {
            Some(task) => joined(task, state).await.map(|s| *idle = Some(s)),
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
async fn joined(task: MoveTask, state: &mut MailboxState) -> Result<Session<Conn>, SourceError> {
    let (session, moved) = task
        .await
        .map_err(|e| SourceError::Protocol(format!("moving messages failed: {e}")))?;
    *state = moved?;
    Ok(session)
}

/// Waits for new mail: IDLE when the server offers it, else the poll interval.
async fn wait(
    mut session: Session<Conn>,
    caps: Caps,
    mb: &MailboxSettings,
    imap: &ImapSettings,
    stop: &CancellationToken,
) -> Result<Session<Conn>, SourceError> {
    if !(caps.idle && imap.idle) {
        super::sleep_or(stop, mb.poll_interval).await;
        // Also tells a dead connection apart before the next search.
        timed(session.noop()).await?;
        return Ok(session);
    }
    // Mail that arrived while the last batch was being filed was announced as EXISTS to
    // another command; IDLE would wait for it in vain.
    let news = session.unsolicited_responses.clone();
    if announced_new_mail(&news) {
        return Ok(session);
    }
    let mut handle = session.idle();
    timed(handle.init()).await?;
    // The same for mail announced between the last command and the start of IDLE.
    if !announced_new_mail(&news) {
        let (idle, interrupt) = handle.wait_with_timeout(imap.idle_timeout);
        tokio::pin!(idle);
        // async-imap's own timeout restarts with every keep-alive the server sends; this one
        // re-issues IDLE within the limit whatever the server does.
        let deadline = tokio::time::sleep(imap.idle_timeout);
        tokio::pin!(deadline);
        tokio::select! {
            r = &mut idle => { r?; }
            _ = &mut deadline => { drop(interrupt); idle.await?; }
            _ = stop.cancelled() => { drop(interrupt); idle.await?; }
        }
    }
    timed(handle.done()).await
}

/// Whether the server announced new messages (EXISTS or RECENT) since the channel was drained.
fn announced_new_mail(rx: &async_channel::Receiver<UnsolicitedResponse>) -> bool {
    let mut new = false;
    while let Ok(r) = rx.try_recv() {
        new |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    new
}

async fn connect(s: &ImapSettings) -> Result<Session<Conn>, SourceError> {
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((s.host.as_str(), s.port)),
    )
    .await
    .map_err(|_| {
        SourceError::Protocol(format!("connecting to {}:{} timed out", s.host, s.port))
    })??;
    tcp.set_nodelay(true)?;
    let client: Client<Conn> = match s.tls {
        ImapTls::None => greeted(Client::new(Box::new(tcp) as Conn)).await?,
        ImapTls::Implicit => greeted(Client::new(Box::new(tls(s, tcp).await?) as Conn)).await?,
        ImapTls::Starttls => {
            let mut plain = greeted(Client::new(tcp)).await?;
            timed(plain.run_command_and_check_ok("STARTTLS", None)).await?;
            Client::new(Box::new(tls(s, plain.into_inner()).await?) as Conn)
        }
    };
    let session = tokio::time::timeout(COMMAND_TIMEOUT, client.login(&s.username, &s.password))
        .await
        .map_err(|_| SourceError::Protocol("login timed out".into()))?
        .map_err(|(e, _)| e)?;
    Ok(session)
}

async fn greeted<T: Io>(mut client: Client<T>) -> Result<Client<T>, SourceError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(client),
        Ok(Ok(None)) => Err(SourceError::Protocol(
            "the server closed the connection before its greeting".into(),
        )),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(SourceError::Protocol("no greeting from the server".into())),
    }
}

async fn tls(
    s: &ImapSettings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SourceError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &s.ca_file {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| SourceError::Tls(format!("{}: {e}", ca.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| SourceError::Tls(format!("{}: {e}", ca.display())))?;
            roots
                .add(cert)
                .map_err(|e| SourceError::Tls(format!("{}: {e}", ca.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(s.host.clone())
        .map_err(|e| SourceError::Tls(format!("{}: {e}", s.host)))?;
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| SourceError::Protocol("TLS handshake timed out".into()))??;
    Ok(stream)
}

/// Moves exactly these UIDs; with neither MOVE nor UIDPLUS the originals stay marked
/// `\Deleted` for the mailbox's owner rather than expunging anything we did not file.
async fn move_to(
    session: &mut Session<Conn>,
    caps: Caps,
    uids: &[u32],
    folder: &str,
) -> Result<(), SourceError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    if caps.mv {
        return timed(session.uid_mv(&set, folder)).await;
    }
    timed(session.uid_copy(&set, folder)).await?;
    timed(async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if caps.uidplus {
        timed(async {
            session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    }
    Ok(())
}

async fn flag_seen(session: &mut Session<Conn>, uids: &[u32]) -> Result<(), SourceError> {
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
    .await?;
    Ok(())
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

/// A compact UID set: sorted UIDs as ranges, `1:5,9,11:12`.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_are_compact_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 11, 12]), "1:3,5,9,11:12");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[4, 4, 5]), "4:5");
        assert_eq!(uid_set(&[]), "");
    }
}
