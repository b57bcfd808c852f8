//! The daemon's round of status work (issue 17, item 4): periodic updates of open class-1 and
//! class-2 tickets, reminders of pending tickets whose `pending until` has come, and closing
//! resolved tickets whose reopen window is over. Each item is claimed in a transaction of its
//! own ([`crate::ticket::status_notice`]), so a round that another instance runs at the same
//! time, or one after a restart, sends nothing twice; what fell due while the daemon was down
//! is found by the next round, as the queries ask what is due *now*.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;

use crate::config::Config;
use crate::store::{Store, StoreError, status};
use crate::ticket::status_notice;

/// A round a minute: due times are service hours or staff's dates, and each query reads an
/// index of the few tickets that have one.
const EVERY: Duration = Duration::from_secs(60);

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub updates: usize,
    pub reminders: usize,
    pub closed: usize,
}

impl Round {
    pub fn mailed(&self) -> bool {
        self.updates + self.reminders > 0
    }
}

/// Does what is due at `now`.
pub async fn run_due(store: &Store, config: &Config, now: Timestamp) -> Result<Round, StoreError> {
    let at = now.as_microsecond();
    let mut round = Round::default();
    for (id, due) in status::due_updates(store, at).await? {
        if status_notice::send_update(store, config, id, due, now).await? {
            round.updates += 1;
        }
    }
    for (id, until) in status::due_reminders(store, at).await? {
        if status_notice::send_reminder(store, config, id, until, now).await? {
            round.reminders += 1;
        }
    }
    let window = i64::from(config.settings.ingest.reopen_days) * 86_400_000_000;
    let cutoff = at - window;
    for (id, number) in status::resolved_before(store, cutoff).await? {
        if status_notice::close_resolved(store, id, &number, cutoff, now).await? {
            round.closed += 1;
        }
    }
    Ok(round)
}

/// The loop of the daemon: a round every minute until `shutdown`; `sender_wake` is notified
/// when a round queued mail.
pub async fn run(
    store: Store,
    config: Arc<Config>,
    sender_wake: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match run_due(&store, &config, Timestamp::now()).await {
            Ok(round) if round.mailed() => sender_wake.notify_one(),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "status notices: the round failed; next in a minute")
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
