//! Mailbox sources: IMAP mailboxes and local Maildirs, one task each. The contract is the same
//! for both: fetch a batch, file it in one transaction, and only after the commit move each
//! message to the processed (or quarantine) folder. A crash anywhere in between re-fetches
//! messages that the store then recognises as filed; nothing is lost and nothing filed twice.
pub mod imap;
pub mod maildir;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, MailboxKind, MailboxSettings};
use crate::metrics::Metrics;
use crate::store::raw::RawOutcome;
use crate::store::{Store, StoreError};
use crate::ticket::ingest::{Incoming, Ingestor, Outcome, PreparedBatch};

/// What every source task shares.
pub struct Ctx {
    pub store: Store,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// This instance's name in lease rows.
    pub holder: String,
    /// No other instance can run (SQLite: this one holds the lock file), so every mailbox is
    /// this instance's without a lease, and an idle daemon writes nothing. On PostgreSQL
    /// instances share the mailboxes through lease rows.
    pub exclusive: bool,
    /// Woken after each commit, so the sender sends acknowledgements at once.
    pub sender_wake: Arc<Notify>,
    /// Woken after each commit: new tickets bring new escalation instants.
    pub sla_wake: Arc<Notify>,
    /// Threads that parse and classify a batch (the machine's cores).
    pub parse_threads: usize,
}

impl Ctx {
    /// A batch was committed: what it caused is due now.
    pub fn committed(&self) {
        self.sender_wake.notify_one();
        self.sla_wake.notify_one();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    OAuth(Box<crate::oauth::OAuthError>),
    /// What was being done, and where, when `source` happened: `"INBOX: UID SEARCH failed: …"`.
    /// The cause keeps its own variant, so a caller that matches on it can look inside.
    #[error("{context}: {source}")]
    Context {
        context: String,
        source: Box<SourceError>,
    },
}

impl From<crate::oauth::OAuthError> for SourceError {
    fn from(e: crate::oauth::OAuthError) -> Self {
        SourceError::OAuth(Box::new(e))
    }
}

/// Where a filed message goes on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Processed,
    Quarantine,
}

impl Disposition {
    pub fn of(outcome: &Outcome) -> Disposition {
        match outcome {
            Outcome::Quarantined { .. } => Disposition::Quarantine,
            // Quarantined before and found again, say after a crash before its move.
            Outcome::Duplicate {
                previous: RawOutcome::Quarantined,
                ..
            } => Disposition::Quarantine,
            _ => Disposition::Processed,
        }
    }
}

/// Files a batch. When the batch's transaction fails while the database answers, one message
/// in it is poison (say, bytes the database refuses): each is then filed alone, and one that
/// still fails comes back as quarantined, so it goes to the quarantine folder instead of
/// blocking the mailbox. When the database itself is away, the error is returned and the
/// batch stays in the mailbox for the next attempt.
pub async fn file_batch(
    ctx: &Ctx,
    ingestor: &Ingestor<'_>,
    items: &[Incoming<'_>],
) -> Result<Vec<Outcome>, SourceError> {
    file_batch_after(ctx, ingestor, items, async { Ok(()) }).await
}

/// [`file_batch`] for a batch that must not commit before the one ahead of it in its mailbox:
/// parsing and classifying run at once, the transaction only after `turn` resolved. A mailbox
/// is a conversation log, so a reply must never be filed before the request it answers, and
/// batches that overlap would otherwise commit in the order their parsing happened to finish.
/// When `turn` fails (the batch ahead was not filed), this one is not filed either.
pub async fn file_batch_after(
    ctx: &Ctx,
    ingestor: &Ingestor<'_>,
    items: &[Incoming<'_>],
    turn: impl std::future::Future<Output = Result<(), SourceError>>,
) -> Result<Vec<Outcome>, SourceError> {
    // Parsing and classifying use every core; this blocks one runtime thread meanwhile, which
    // the multi-threaded runtime of `poststelle run` makes up for.
    let batch = tokio::task::block_in_place(|| {
        PreparedBatch::new_parallel(&ctx.config, items, ctx.parse_threads)
    });
    turn.await?;
    let err = match ingestor.ingest_prepared(batch).await {
        Ok(outcomes) => return Ok(outcomes),
        Err(e) => e,
    };
    if !database_answers(&ctx.store).await {
        return Err(err.into());
    }
    tracing::warn!(error = %err, "batch failed; filing its messages one by one");
    let mut outcomes = Vec::with_capacity(items.len());
    for it in items {
        match ingestor.ingest(it.raw, it.source.clone()).await {
            Ok(o) => outcomes.push(o),
            Err(e) if database_answers(&ctx.store).await => {
                tracing::error!(source = %it.source, error = %e, "message cannot be filed: quarantined");
                let reason = format!("filing failed: {e}");
                // Listed and replayable like any quarantined mail; if even that fails, it is
                // still moved to the quarantine folder, where it can be found.
                if let Err(e) = ingestor
                    .quarantine(it.raw, it.raw.len() as u64, &it.source, &reason)
                    .await
                {
                    tracing::error!(source = %it.source, error = %e, "recording the quarantined message failed");
                }
                outcomes.push(Outcome::Quarantined { reason });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(outcomes)
}

/// A mail file as read within the size limit.
#[derive(Debug)]
pub enum MailFile {
    Whole(Vec<u8>),
    /// Larger than the limit: only its header (at most 256 KiB) was read.
    TooLarge {
        header: Vec<u8>,
        size: u64,
    },
}

/// Reads a mail file, but never more than its header when it is over `limit`: the size is
/// asked first, so a huge file costs no memory.
pub fn read_mail_file(path: &std::path::Path, limit: u64) -> std::io::Result<MailFile> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size <= limit {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        return Ok(MailFile::Whole(bytes));
    }
    let mut head = Vec::new();
    file.take(256 * 1024).read_to_end(&mut head)?;
    let header = crate::message::header_of(&head).to_vec();
    Ok(MailFile::TooLarge { header, size })
}

/// Why a message over the size limit is quarantined unread.
pub fn too_large_reason(size: u64, limit: u64) -> String {
    format!(
        "{size} bytes, over ingest.max_message_size ({limit}); only the header is kept, the \
         message lies in the quarantine folder"
    )
}

async fn database_answers(store: &Store) -> bool {
    store.ping().await.is_ok()
}

/// Exponential backoff for reconnects: 1 s, 2 s, 4 s … capped at five minutes.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const CAP: Duration = Duration::from_secs(300);

    fn next(&mut self) -> Duration {
        let d = Duration::from_secs(1u64 << self.failures.min(9)).min(Self::CAP);
        self.failures += 1;
        d
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Watches one mailbox until `shutdown`: takes its lease (waiting while another instance holds
/// it), keeps the lease renewed, and reconnects with backoff after errors. An exclusive
/// instance works without a lease. Other mailboxes run in tasks of their own, so one slow or
/// broken server never holds up another.
pub async fn run_mailbox(ctx: Arc<Ctx>, mb: MailboxSettings, shutdown: CancellationToken) {
    let span = tracing::info_span!("mailbox", mailbox = %mb.name);
    async move {
        if ctx.exclusive {
            tracing::info!("mailbox taken on");
            ctx.metrics.held(&mb.name, true, mb.max_silence);
            work(&ctx, &mb, &shutdown).await;
            ctx.metrics.held(&mb.name, false, mb.max_silence);
            return;
        }
        let lease_name = format!("mailbox:{}", mb.name);
        let lease = ctx.config.settings.daemon.lease;
        let mut waiting_logged = false;
        while !shutdown.is_cancelled() {
            if over_share(&ctx, 1).await {
                sleep_or(&shutdown, lease / 3).await;
                continue;
            }
            match ctx
                .store
                .acquire_lease(&lease_name, &ctx.holder, lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    if !waiting_logged {
                        let holder = ctx.store.lease_holder(&lease_name).await.ok().flatten();
                        tracing::info!(holder, "mailbox held by another instance; waiting");
                        waiting_logged = true;
                    }
                    sleep_or(&shutdown, lease / 3).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "taking the mailbox lease failed");
                    sleep_or(&shutdown, lease / 3).await;
                    continue;
                }
            }
            waiting_logged = false;
            tracing::info!("mailbox taken on");
            ctx.metrics.held(&mb.name, true, mb.max_silence);
            // Stops the work when the lease is lost or at shutdown.
            let held = shutdown.child_token();
            let keeper = tokio::spawn(keep_lease(
                ctx.clone(),
                lease_name.clone(),
                held.clone(),
                shutdown.clone(),
            ));
            work(&ctx, &mb, &held).await;
            held.cancel();
            let _ = keeper.await;
            ctx.metrics.held(&mb.name, false, mb.max_silence);
            if shutdown.is_cancelled() {
                if let Err(e) = ctx.store.release_lease(&lease_name, &ctx.holder).await {
                    tracing::warn!(error = %e, "releasing the mailbox lease failed");
                }
                tracing::info!("mailbox released");
            }
        }
    }
    .instrument(span)
    .await
}

/// Runs sessions on the mailbox until `stop`, reconnecting with backoff.
async fn work(ctx: &Arc<Ctx>, mb: &MailboxSettings, stop: &CancellationToken) {
    let mut backoff = Backoff::default();
    while !stop.is_cancelled() {
        let started = std::time::Instant::now();
        let result = match &mb.kind {
            MailboxKind::Imap(imap) => imap::session(ctx, mb, imap, stop).await,
            MailboxKind::Maildir { path } => {
                let path = ctx.config.settings.data_dir.join(path);
                maildir::watch(ctx, mb, &path, stop).await
            }
        };
        match result {
            Ok(()) => backoff.reset(),
            Err(e) => {
                // A session that ran for a while was healthy; start the backoff afresh.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                let wait = backoff.next();
                tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "mailbox session failed");
                ctx.metrics.reconnect(&mb.name);
                sleep_or(stop, wait).await;
            }
        }
    }
}

/// Whether this instance would hold more than its share of the mailboxes with `extra` more:
/// the share is the configured mailboxes divided by the live instances, rounded up, so every
/// mailbox has a holder and none holds much more than another. Unknown load counts as fine.
async fn over_share(ctx: &Ctx, extra: i64) -> bool {
    let total = ctx.config.settings.mailboxes.len() as i64;
    match ctx.store.lease_load(&ctx.holder).await {
        Ok((held, instances)) => held + extra > (total + instances.max(1) - 1) / instances.max(1),
        Err(_) => false,
    }
}

/// Renews the lease every third of its time, so that two renewals may fail before it runs
/// out; cancels `held` when it is lost.
async fn keep_lease(
    ctx: Arc<Ctx>,
    lease_name: String,
    held: CancellationToken,
    shutdown: CancellationToken,
) {
    let lease = ctx.config.settings.daemon.lease;
    let mut renewed = std::time::Instant::now();
    loop {
        sleep_or(&held, lease / 3).await;
        if held.is_cancelled() {
            return;
        }
        match ctx.store.renew_lease(&lease_name, &ctx.holder, lease).await {
            Ok(true) => {
                renewed = std::time::Instant::now();
                // Another instance has joined: hand this mailbox over to even out the work.
                if over_share(&ctx, 0).await {
                    tracing::info!("handing the mailbox over to share the work");
                    if let Err(e) = ctx.store.release_lease(&lease_name, &ctx.holder).await {
                        tracing::warn!(error = %e, "releasing the mailbox lease failed");
                    }
                    held.cancel();
                    return;
                }
            }
            Ok(false) => {
                tracing::warn!("mailbox lease taken over by another instance; stopping work");
                held.cancel();
                return;
            }
            // The database may be back before the lease runs out; keep trying until then.
            Err(e) if !shutdown.is_cancelled() && renewed.elapsed() < lease => {
                tracing::warn!(error = %e, "renewing the mailbox lease failed");
            }
            Err(e) => {
                tracing::warn!(error = %e, "mailbox lease expired unrenewed; stopping work");
                held.cancel();
                return;
            }
        }
    }
}

/// Sleeps for `d`, or less when `token` is cancelled.
pub(crate) async fn sleep_or(token: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = token.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantined_mail_found_again_goes_to_quarantine_again() {
        let dup = |previous: RawOutcome| Outcome::Duplicate {
            previous,
            number: None,
        };
        assert_eq!(
            Disposition::of(&dup(RawOutcome::Quarantined)),
            Disposition::Quarantine
        );
        assert_eq!(
            Disposition::of(&dup(RawOutcome::NewTicket)),
            Disposition::Processed
        );
        assert_eq!(
            Disposition::of(&dup(RawOutcome::Ignored)),
            Disposition::Processed
        );
        let q = Outcome::Quarantined {
            reason: "no header".into(),
        };
        assert_eq!(Disposition::of(&q), Disposition::Quarantine);
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..12).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        b.reset();
        assert_eq!(b.next().as_secs(), 1);
    }
}
