//! Reaction clocks (`ticket_sla`), escalation notices sent (`sla_escalations`), announced
//! maintenance (`sla_maintenance`), outages of platforms (`sla_outages`): the rows behind the
//! service-level features. The maths on
//! them lives in `sla/` and `ticket::clock`; this module only reads and writes.
use sqlx::{AnyConnection, FromRow};

use super::buffer::{Val, WriteBuffer};
use super::{Store, StoreError};

/// A ticket's reaction clock as computed (instants in UTC µs, the budget in µs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClock {
    pub ticket_id: i64,
    pub calendar: String,
    pub severity: i64,
    pub received_at: i64,
    pub clock_start: i64,
    pub warn_at: i64,
    pub due_at: i64,
    pub budget: i64,
}

impl NewClock {
    const COLUMNS: &[&str] = &[
        "ticket_id",
        "calendar",
        "severity",
        "received_at",
        "clock_start",
        "warn_at",
        "due_at",
        "budget",
    ];
}

impl WriteBuffer {
    /// The clock of a new ticket, written with the batch that opens it.
    pub fn clock(&mut self, c: &NewClock) {
        self.push(
            "ticket_sla",
            NewClock::COLUMNS,
            vec![
                Val::Int(c.ticket_id),
                Val::Text(c.calendar.clone()),
                Val::Int(c.severity),
                Val::Int(c.received_at),
                Val::Int(c.clock_start),
                Val::Int(c.warn_at),
                Val::Int(c.due_at),
                Val::Int(c.budget),
            ],
        );
    }
}

/// What a recomputation starts from: the ticket's creation, its clock's receipt and reaction.
#[derive(Debug, Clone, FromRow)]
pub struct ClockBasis {
    pub created_at: i64,
    pub received_at: Option<i64>,
    pub reacted_at: Option<i64>,
}

pub async fn clock_basis(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<ClockBasis, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.created_at, s.received_at, s.reacted_at FROM tickets t \
         LEFT JOIN ticket_sla s ON s.ticket_id = t.id WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Writes a clock, replacing the ticket's earlier one (its receipt and reaction stay).
pub async fn replace_clock(conn: &mut AnyConnection, c: &NewClock) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_sla (ticket_id, calendar, severity, received_at, clock_start, warn_at, \
         due_at, budget) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (ticket_id) DO UPDATE SET calendar = $2, severity = $3, clock_start = $5, \
         warn_at = $6, due_at = $7, budget = $8",
    )
    .bind(c.ticket_id)
    .bind(&c.calendar)
    .bind(c.severity)
    .bind(c.received_at)
    .bind(c.clock_start)
    .bind(c.warn_at)
    .bind(c.due_at)
    .bind(c.budget)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records how a reaction fares against the (re)computed deadline.
pub async fn judge_reaction(
    conn: &mut AnyConnection,
    ticket_id: i64,
    met: bool,
    service_used: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE ticket_sla SET met = $1, service_used = $2 WHERE ticket_id = $3")
        .bind(i64::from(met))
        .bind(service_used)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A clock that is still waiting for its first reaction.
#[derive(Debug, Clone, FromRow)]
pub struct RunningClock {
    pub calendar: String,
    pub clock_start: i64,
    pub due_at: i64,
}

pub(super) const RUNNING_CLOCK: &str = "SELECT calendar, clock_start, due_at FROM ticket_sla \
     WHERE ticket_id = $1 AND reacted_at IS NULL";

pub async fn running_clock(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<Option<RunningClock>, StoreError> {
    Ok(sqlx::query_as(RUNNING_CLOCK)
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await?)
}

pub(super) const STOP_CLOCK: &str = "UPDATE ticket_sla SET reacted_at = $1, reacted_by = $2, service_used = $3, met = $4 \
     WHERE ticket_id = $5 AND reacted_at IS NULL";

/// Stops a running clock with staff's first reaction; a clock stopped meanwhile stays as it is.
pub async fn stop_clock(
    conn: &mut AnyConnection,
    ticket_id: i64,
    at: i64,
    by: &str,
    service_used: i64,
    met: bool,
) -> Result<(), StoreError> {
    sqlx::query(STOP_CLOCK)
        .bind(at)
        .bind(by)
        .bind(service_used)
        .bind(i64::from(met))
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A ticket's clock as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ClockRow {
    pub calendar: String,
    pub severity: i64,
    pub received_at: i64,
    pub clock_start: i64,
    pub warn_at: i64,
    pub due_at: i64,
    pub reacted_at: Option<i64>,
    pub reacted_by: Option<String>,
    pub met: Option<i64>,
    pub service_used: Option<i64>,
}

pub async fn clock_of(store: &Store, ticket_id: i64) -> Result<Option<ClockRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT calendar, severity, received_at, clock_start, warn_at, due_at, reacted_at, \
         reacted_by, met, service_used FROM ticket_sla WHERE ticket_id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(store.pool())
    .await?)
}

/// A running clock whose next notice (warning, or breach once the deadline passed) is due.
#[derive(Debug, Clone, FromRow)]
pub struct DueNotice {
    pub ticket_id: i64,
    pub severity: i64,
    pub due_at: i64,
    pub number: String,
    pub queue: String,
    pub subject: String,
    pub requester: String,
    pub received_at: i64,
    pub calendar: String,
}

/// The columns of a [`DueNotice`], from `tickets t` and `ticket_sla s`, which every statement
/// of the escalation tick reads starting from the tickets not yet resolved or closed: a desk's
/// backlog, a few thousand at most, while unanswered clocks pile up for ever (a ticket closed
/// without a reaction keeps its clock) and would make each tick read more. `CROSS JOIN` keeps
/// SQLite, which has no statistics to go by, from starting at the clocks; PostgreSQL treats it
/// as the inner join it is and chooses by its statistics.
macro_rules! open_clocks {
    () => {
        "FROM tickets t CROSS JOIN ticket_sla s \
         WHERE t.state IN ('new', 'open', 'pending') AND s.ticket_id = t.id AND s.reacted_at IS NULL"
    };
}

pub(super) const DUE_NOTICES: &str = concat!(
    "SELECT s.ticket_id, s.severity, s.due_at, t.number, t.queue, t.subject, t.requester, \
     s.received_at, s.calendar ",
    open_clocks!(),
    " AND s.warn_at <= $1 \
     AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity \
       AND e.kind = CASE WHEN s.due_at <= $1 THEN 'breach' ELSE 'warning' END) \
     AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity AND e.kind = 'breach') \
     ORDER BY s.warn_at"
);

/// Clocks still running whose next notice is due at `now`, oldest warning first. A notice is
/// sent once per ticket, class and kind; after the breach nothing more.
pub async fn due_notices(store: &Store, now: i64) -> Result<Vec<DueNotice>, StoreError> {
    Ok(sqlx::query_as(DUE_NOTICES)
        .bind(now)
        .fetch_all(store.pool())
        .await?)
}

pub(super) const ON_CALL_CANDIDATES: &str = concat!(
    "SELECT s.ticket_id, s.severity, s.due_at, t.number, t.queue, t.subject, t.requester, \
     s.received_at, s.calendar ",
    open_clocks!(),
    " AND s.severity = 1 \
     AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = 1 AND e.kind = 'on_call') \
     ORDER BY s.received_at"
);

/// Unanswered class-1 tickets whose on-call duty has not been told yet; whether it is to be
/// told (the queue has on-call duty and its calendar is closed) the caller decides.
pub async fn on_call_candidates(store: &Store) -> Result<Vec<DueNotice>, StoreError> {
    Ok(sqlx::query_as(ON_CALL_CANDIDATES)
        .fetch_all(store.pool())
        .await?)
}

/// Claims a notice for this transaction; `false` when another instance wrote it first.
pub async fn claim_notice(
    conn: &mut AnyConnection,
    ticket_id: i64,
    severity: i64,
    kind: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO sla_escalations (ticket_id, severity, kind, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ticket_id)
    .bind(severity)
    .bind(kind)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

pub(super) const NOTICE_SENT_AS: &str = "UPDATE sla_escalations SET message_id = $1 \
     WHERE ticket_id = $2 AND severity = $3 AND kind = $4";

/// The Message-ID of the mail that carried a notice.
pub async fn notice_sent_as(
    conn: &mut AnyConnection,
    ticket_id: i64,
    severity: i64,
    kind: &str,
    message_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(NOTICE_SENT_AS)
        .bind(message_id)
        .bind(ticket_id)
        .bind(severity)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) const NEXT_NOTICE_AT: &str = concat!(
    "SELECT MIN(CASE WHEN EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity AND e.kind = 'warning') THEN s.due_at ELSE s.warn_at END) ",
    open_clocks!(),
    " AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity AND e.kind = 'breach')"
);

/// The next instant a notice falls due, if any clock is running.
pub async fn next_notice_at(store: &Store) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(NEXT_NOTICE_AT)
        .fetch_one(store.pool())
        .await?)
}

/// One ticket's clock for the availability report.
#[derive(Debug, Clone, FromRow)]
pub struct ReportRow {
    pub severity: i64,
    pub received_at: i64,
    pub due_at: i64,
    pub met: Option<i64>,
    pub closed_at: Option<i64>,
}

/// The clocks on `$1` of tickets received in `[$2, $3)` (the reaction counts, the outages that
/// begin inside), and those of class-1 tickets received before `$2` that were not restored by
/// then (outages that reach into the period): what the report of the period needs and nothing
/// more, whatever years the store holds. The class-1 tickets before the period are read from
/// a partial index of class-1 clocks, one in a hundred.
pub(super) const REPORT_ROWS: &str = "SELECT s.severity, s.received_at, s.due_at, s.met, t.closed_at FROM ticket_sla s \
     JOIN tickets t ON t.id = s.ticket_id \
     WHERE s.calendar = $1 AND s.received_at >= $2 AND s.received_at < $3 \
     UNION ALL \
     SELECT s.severity, s.received_at, s.due_at, s.met, t.closed_at FROM ticket_sla s \
     JOIN tickets t ON t.id = s.ticket_id \
     WHERE s.calendar = $1 AND s.severity = 1 AND s.received_at < $2 \
     AND (t.closed_at IS NULL OR t.closed_at > $2)";

/// The clocks on `calendar` a report of `[start, end)` (UTC µs) needs, with their tickets'
/// closing times ([`REPORT_ROWS`]).
pub async fn report_rows(
    store: &Store,
    calendar: &str,
    start: i64,
    end: i64,
) -> Result<Vec<ReportRow>, StoreError> {
    Ok(sqlx::query_as(REPORT_ROWS)
        .bind(calendar)
        .bind(start)
        .bind(end)
        .fetch_all(store.pool())
        .await?)
}

pub(super) const MAINTENANCE_IN: &str = "SELECT starts_at, ends_at FROM sla_maintenance \
     WHERE ends_at > $2 AND starts_at < $3 AND (calendar IS NULL OR calendar = $1)";

/// Announced maintenance windows (start, end) that apply to `calendar`, of every platform,
/// that overlap `[start, end)`.
pub async fn maintenance(
    store: &Store,
    calendar: &str,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(MAINTENANCE_IN)
        .bind(calendar)
        .bind(start)
        .bind(end)
        .fetch_all(store.pool())
        .await?)
}

pub(super) const PLATFORM_MAINTENANCE_IN: &str = "SELECT starts_at, ends_at FROM sla_maintenance \
     WHERE ends_at > $3 AND starts_at < $4 \
     AND (platform IS NULL OR platform = $1) AND (calendar IS NULL OR calendar = $2)";

/// Announced maintenance windows (start, end) of `platform` that overlap `[start, end)`: its
/// own and those of every platform (`platform` NULL), unless a row names another calendar
/// than the platform's.
pub async fn platform_maintenance(
    store: &Store,
    platform: &str,
    calendar: &str,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(PLATFORM_MAINTENANCE_IN)
        .bind(platform)
        .bind(calendar)
        .bind(start)
        .bind(end)
        .fetch_all(store.pool())
        .await?)
}

/// An announced window as recorded, for the reaction deadlines of calendars that are closed
/// during announced maintenance.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AnnouncedWindow {
    /// `None`: every calendar.
    pub calendar: Option<String>,
    /// `None`: every platform.
    pub platform: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
}

pub(super) const ANNOUNCED_WINDOWS: &str = "SELECT calendar, platform, starts_at, ends_at \
     FROM sla_maintenance WHERE ends_at > $1 ORDER BY starts_at";

/// Every announced window that ends after `after`, earliest first.
pub async fn announced_windows(
    conn: &mut AnyConnection,
    after: i64,
) -> Result<Vec<AnnouncedWindow>, StoreError> {
    Ok(sqlx::query_as(ANNOUNCED_WINDOWS)
        .bind(after)
        .fetch_all(&mut *conn)
        .await?)
}

/// A running clock on one of `calendars` whose deadline lies after `after`: the ticket, its
/// queue and class, for recomputing it around a window announced while it runs.
#[derive(Debug, Clone, FromRow)]
pub struct ClockToMove {
    pub ticket_id: i64,
    pub queue: String,
    pub severity: i64,
}

pub async fn clocks_running_past(
    conn: &mut AnyConnection,
    calendars: &[&str],
    after: i64,
) -> Result<Vec<ClockToMove>, StoreError> {
    let mut out = Vec::new();
    // One calendar at a time: a handful of calendars, and no list binding across dialects.
    for calendar in calendars {
        let rows: Vec<ClockToMove> = sqlx::query_as(
            "SELECT t.id AS ticket_id, t.queue, t.severity FROM ticket_sla s \
             JOIN tickets t ON t.id = s.ticket_id \
             WHERE s.calendar = $1 AND s.reacted_at IS NULL AND t.state NOT IN ('closed', 'resolved') \
             AND s.due_at > $2 ORDER BY t.id",
        )
        .bind(*calendar)
        .bind(after)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows);
    }
    Ok(out)
}

pub(super) const OUTAGES_IN: &str = "SELECT starts_at, ends_at FROM sla_outages \
     WHERE platform = $1 AND (ends_at IS NULL OR ends_at > $2) AND starts_at < $3 \
     ORDER BY starts_at";

/// The outages of `platform` (start, restoration or `None` while it lasts) that overlap
/// `[start, end)`: the rows of `sla_outages`, which incidents write; class-1 tickets are no
/// outages of a platform.
pub async fn outages(
    store: &Store,
    platform: &str,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(OUTAGES_IN)
        .bind(platform)
        .bind(start)
        .bind(end)
        .fetch_all(store.pool())
        .await?)
}

/// Records the start of an outage of `platform` (and its restoration, when known) for the
/// availability report; `source` says what it comes from (e.g. `incident 12`). Its id.
pub async fn record_outage(
    conn: &mut AnyConnection,
    platform: &str,
    starts_at: i64,
    ends_at: Option<i64>,
    source: &str,
    description: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO sla_outages (platform, starts_at, ends_at, source, description) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(platform)
    .bind(starts_at)
    .bind(ends_at)
    .bind(source)
    .bind(description)
    .fetch_one(&mut *conn)
    .await?)
}

/// Records when an outage ended (or corrects it); `false` when there is no such outage.
pub async fn restore_outage(
    conn: &mut AnyConnection,
    id: i64,
    ends_at: i64,
) -> Result<bool, StoreError> {
    let changed = sqlx::query("UPDATE sla_outages SET ends_at = $1 WHERE id = $2")
        .bind(ends_at)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(changed > 0)
}
