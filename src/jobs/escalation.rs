//! Escalation: the next support level is warned when a share of the reaction budget is used up
//! and told when the deadline passes — each notice once per ticket and class, through the
//! outbox. The next level is the staff address of the queue named by `escalate_to` (1st → 2nd
//! → 3rd level, one step at a time), else the queue's `escalation` address.
//!
//! Exactly once, across restarts and instances: a notice is a row in `sla_escalations` keyed by
//! (ticket, class, kind), inserted in the same transaction as its outbox mail; a second attempt
//! finds the row and sends nothing. A notice that fell due while the daemon was down is found
//! by the next run, because the query asks what is due *now*, not what changed. When the
//! deadline has passed as well, only the breach is sent: a warning after the fact helps no one.
//!
//! With `sla.escalation_moves_ticket` a breach also hands the ticket to the `escalate_to`
//! queue ([`crate::ticket::handover`]): the hand-over copy to that queue's staff, which says
//! the deadline passed, is then the breach notice. Off by default, because a 1st level that
//! keeps its tickets while the 2nd level watches would lose them.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use tokio::sync::Notify;

use crate::config::{Config, Settings};
use crate::notify;
use crate::outbox::{self, Kind, NewMail};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::{self, Store, StoreError};
use crate::ticket::handover::HandedOver;
use crate::ticket::ops::{self, Applied, Change, OpsError};

/// The loop looks again at least this often: `tickets set` in another process and other
/// instances on the same PostgreSQL change clocks without being able to wake this one, and a
/// class raised to 1 can make a notice due at once. One indexed query a minute is cheap.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// After a failed round (database away), wait this long before the next.
const RETRY: Duration = Duration::from_secs(30);

/// Where "now" comes from: the system clock, or a controlled one in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// `sla.warn_at_percent` of the budget is used up.
    Warning,
    /// The deadline has passed without a reaction.
    Breach,
    /// A class-1 ticket outside service hours: the on-call duty (Rufbereitschaft) is alarmed.
    OnCall,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Warning => "warning",
            NoticeKind::Breach => "breach",
            NoticeKind::OnCall => "on_call",
        }
    }

    fn template(self) -> &'static str {
        match self {
            NoticeKind::Warning => crate::templates::SLA_WARNING,
            NoticeKind::Breach => crate::templates::SLA_BREACH,
            NoticeKind::OnCall => crate::templates::ON_CALL,
        }
    }
}

/// One notice written by [`escalate_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub ticket: String,
    pub severity: i64,
    pub kind: NoticeKind,
    /// `None` when the queue has no escalation address (recorded, nothing sent).
    pub recipient: Option<String>,
}

/// Writes every notice due at `now` (each in its own transaction) and returns them: warnings
/// and breaches for the next support level, and the on-call duty's alarm.
pub async fn escalate_due(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<Notice>, StoreError> {
    let tz = crate::time::berlin()?;
    let mut notices = Vec::new();
    for row in store::sla::due_notices(store, now.as_microsecond()).await? {
        let kind = if row.due_at <= now.as_microsecond() {
            NoticeKind::Breach
        } else {
            NoticeKind::Warning
        };
        let to = recipient(&config.settings, &row.queue);
        notices.extend(write_notice(store, config, &tz, row, kind, to, now).await?);
    }
    for row in store::sla::on_call_candidates(store).await? {
        if let Some(to) = on_call(&config.settings, &row.queue, now) {
            let notice = write_notice(store, config, &tz, row, NoticeKind::OnCall, Some(to), now);
            notices.extend(notice.await?);
        }
    }
    Ok(notices)
}

/// The on-call address to alarm at `now` about a class-1 ticket of `queue`: the queue's
/// `on_call` while its calendar is closed. While the desk is open, its staff have the ticket;
/// one still unanswered when the desk closes alarms the on-call duty then.
fn on_call(settings: &Settings, queue: &str, now: Timestamp) -> Option<String> {
    let to = settings.queue(queue)?.on_call.clone()?;
    let calendar = crate::ticket::clock::calendar_of(settings, queue)?;
    match calendar.is_open(now) {
        Ok(false) => Some(to),
        Ok(true) => None,
        Err(e) => {
            tracing::warn!(queue, error = %e, "on-call duty: the service calendar cannot say whether it is open; alarming");
            Some(to)
        }
    }
}

/// Writes one notice about `row` in a transaction of its own: the record that it was sent
/// (once per ticket, class and kind, also across instances) and its mail to `recipient`, or
/// an audit line when there is none. `None` when another instance wrote it first.
async fn write_notice(
    store: &Store,
    config: &Config,
    tz: &jiff::tz::TimeZone,
    row: store::sla::DueNotice,
    kind: NoticeKind,
    recipient: Option<String>,
    now: Timestamp,
) -> Result<Option<Notice>, StoreError> {
    let (ticket_id, severity) = (row.ticket_id, row.severity);
    let due = Timestamp::from_microsecond(row.due_at)?;
    let (number, queue) = (row.number, row.queue);
    let mut tx = store.begin_write().await?;
    let claimed = store::sla::claim_notice(
        &mut tx,
        ticket_id,
        severity,
        kind.as_str(),
        now.as_microsecond(),
    )
    .await?;
    if !claimed {
        // Another instance wrote this notice since the query.
        return Ok(None);
    }
    let mut buf = WriteBuffer::default();
    if kind == NoticeKind::Breach
        && let Some(done) = hand_on(
            &mut tx, &mut buf, config, ticket_id, &number, &queue, due, now,
        )
        .await?
    {
        // The copy to the next level's staff is the breach notice.
        if let Some(message_id) = &done.copy_message_id {
            store::sla::notice_sent_as(&mut tx, ticket_id, severity, kind.as_str(), message_id)
                .await?;
        }
        buf.flush(&mut tx, store.backend()).await?;
        tx.commit().await?;
        tracing::info!(
            ticket = number,
            severity,
            kind = kind.as_str(),
            to = done.copy_to.as_deref().unwrap_or(""),
            due = %due,
            from_queue = queue,
            to_queue = done.to,
            "escalation: ticket handed to the next level"
        );
        return Ok(Some(Notice {
            ticket: number,
            severity,
            kind,
            recipient: done.copy_to,
        }));
    }
    match &recipient {
        Some(to) => {
            let facts = notify::Ticket {
                number: &number,
                subject: &row.subject,
                queue: &queue,
                severity: u8::try_from(severity).unwrap_or(4),
                requester: &row.requester,
                requester_name: None,
                received: Timestamp::from_microsecond(row.received_at)?,
            };
            let context =
                notify::for_sla_notice(config, tz, &facts, kind.as_str(), &row.calendar, due);
            let message_id = outbox::enqueue(
                &mut tx,
                &mut buf,
                config,
                now,
                NewMail {
                    ticket_id: Some(ticket_id),
                    kind: Kind::Escalation,
                    template: kind.template(),
                    recipient: to,
                    in_reply_to: None,
                    references: Vec::new(),
                    context: &context,
                    attach_raw: None,
                },
            )
            .await?;
            store::sla::notice_sent_as(&mut tx, ticket_id, severity, kind.as_str(), &message_id)
                .await?;
        }
        None => audit(
            &mut buf,
            now.as_microsecond(),
            Some(ticket_id),
            None,
            "poststelle",
            "escalation_unsent",
            &json!({ "kind": kind.as_str(), "why": format!("queue \"{queue}\" has no escalation address") }),
        ),
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(
        ticket = number,
        severity,
        kind = kind.as_str(),
        to = recipient.as_deref().unwrap_or(""),
        due = %due,
        "escalation"
    );
    Ok(Some(Notice {
        ticket: number,
        severity,
        kind,
        recipient,
    }))
}

/// With `sla.escalation_moves_ticket`, a breach hands the ticket of a queue with
/// `escalate_to` to that queue, as `tickets set --level` would (audited with the actor
/// `poststelle`, the deadline recomputed for the new queue), in the notice's transaction; the
/// new queue's staff get the hand-over copy, which says the deadline passed. `None` when the
/// ticket stays: the switch is off, the queue has no next level, or the change was refused
/// (logged).
#[allow(clippy::too_many_arguments)]
async fn hand_on(
    conn: &mut sqlx::AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    ticket_id: i64,
    number: &str,
    queue: &str,
    due: Timestamp,
    now: Timestamp,
) -> Result<Option<HandedOver>, StoreError> {
    let s = &config.settings;
    if !s.sla.escalation_moves_ticket {
        return Ok(None);
    }
    let Some(next) = s.queue(queue).and_then(|q| q.escalate_to.as_deref()) else {
        return Ok(None);
    };
    let change = Change {
        queue: Some(next),
        escalated: Some(due),
        actor: "poststelle",
        ..Change::default()
    };
    match ops::apply_change(conn, buf, config, ticket_id, &change, now, None).await {
        Ok(applied) => Ok(applied.into_iter().find_map(|a| match a {
            Applied::HandOver(h) => Some(h),
            _ => None,
        })),
        Err(OpsError::Store(e)) => Err(e),
        Err(e) => {
            tracing::warn!(ticket = number, queue, next, error = %e, "escalation: the ticket cannot be handed to the next level; the breach notice goes out instead");
            Ok(None)
        }
    }
}

/// Where a queue's notices go: the staff address of the next level's queue
/// (`escalate_to`), else its `escalation` address.
pub fn recipient(settings: &Settings, queue: &str) -> Option<String> {
    settings.escalation_address(queue)
}

/// The next instant a notice falls due, if any clock is running.
pub async fn next_due(store: &Store) -> Result<Option<Timestamp>, StoreError> {
    let next = store::sla::next_notice_at(store).await?;
    Ok(next.map(Timestamp::from_microsecond).transpose()?)
}

/// The escalation loop of the daemon: writes what is due, then sleeps until the next notice
/// falls due, `wake` is notified (a ticket was opened or changed) or `shutdown` completes.
/// `sender_wake` is notified when notices were written, so the outbox sends them at once.
pub async fn run(
    store: Store,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    sender_wake: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let now = clock.now();
        let pause = match escalate_due(&store, &config, now).await {
            Ok(written) => {
                if !written.is_empty() {
                    sender_wake.notify_one();
                }
                match next_due(&store).await {
                    Ok(Some(next)) => {
                        let wait = next.duration_since(clock.now()).as_millis().max(0);
                        // At least a second: a notice that keeps failing must not spin the loop.
                        Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX))
                            .clamp(Duration::from_secs(1), MAX_SLEEP)
                    }
                    Ok(None) => MAX_SLEEP,
                    Err(e) => {
                        tracing::error!(error = %e, "escalation: reading the next due instant failed");
                        RETRY
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "escalation round failed");
                RETRY
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
