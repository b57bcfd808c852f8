//! Maintenance and its announcements (issue 16, items 3, 4 and 6): the `maintenances` and
//! `announcements` tables, the announced window in `sla_maintenance` (which the availability
//! report reads), and the outbox rows of a notice — one per announcement and address, so that
//! writing them again (a fan-out resumed after a crash) adds none. An announcement belongs to
//! a maintenance or to an incident ([`super::incidents`]); the fan-out is the same for both.
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};

use super::{Backend, MAX_PARAMS, Store, StoreError, placeholders};

/// Where a maintenance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceState {
    Scheduled,
    Cancelled,
    Done,
}

impl MaintenanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceState::Scheduled => "scheduled",
            MaintenanceState::Cancelled => "cancelled",
            MaintenanceState::Done => "done",
        }
    }

    fn parse(s: &str) -> Result<MaintenanceState, StoreError> {
        Ok(match s {
            "scheduled" => MaintenanceState::Scheduled,
            "cancelled" => MaintenanceState::Cancelled,
            "done" => MaintenanceState::Done,
            other => {
                return Err(StoreError::Db(sqlx::Error::Decode(
                    format!("maintenances.state \"{other}\" is none of scheduled, cancelled, done")
                        .into(),
                )));
            }
        })
    }
}

/// Which notice an announcement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Scheduled,
    Changed,
    Cancelled,
    Reminder,
    Started,
    Done,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Scheduled => "scheduled",
            NoticeKind::Changed => "changed",
            NoticeKind::Cancelled => "cancelled",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Started => "started",
            NoticeKind::Done => "done",
        }
    }
}

/// A maintenance as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub id: i64,
    pub platform: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub impact: String,
    pub lists: Vec<String>,
    pub emergency: bool,
    pub state: MaintenanceState,
    pub sequence: i64,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(FromRow)]
struct MaintenanceRow {
    id: i64,
    platform: String,
    starts_at: i64,
    ends_at: i64,
    reason: String,
    impact: String,
    lists: String,
    emergency: i64,
    state: String,
    sequence: i64,
    created_at: i64,
    changed_at: i64,
}

impl TryFrom<MaintenanceRow> for Maintenance {
    type Error = StoreError;
    fn try_from(r: MaintenanceRow) -> Result<Maintenance, StoreError> {
        Ok(Maintenance {
            id: r.id,
            platform: r.platform,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            reason: r.reason,
            impact: r.impact,
            lists: r
                .lists
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            emergency: r.emergency != 0,
            state: MaintenanceState::parse(&r.state)?,
            sequence: r.sequence,
            created_at: r.created_at,
            changed_at: r.changed_at,
        })
    }
}

const MAINTENANCE_COLUMNS: &str = "id, platform, starts_at, ends_at, reason, impact, lists, \
     emergency, state, sequence, created_at, changed_at";

/// Writes a new maintenance (state scheduled, sequence 0); its id.
pub async fn insert_maintenance(
    conn: &mut AnyConnection,
    m: &Maintenance,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO maintenances (platform, starts_at, ends_at, reason, impact, lists, \
         emergency, state, sequence, created_at, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&m.platform)
    .bind(m.starts_at)
    .bind(m.ends_at)
    .bind(&m.reason)
    .bind(&m.impact)
    .bind(m.lists.join(","))
    .bind(i64::from(m.emergency))
    .bind(m.state.as_str())
    .bind(m.sequence)
    .bind(m.created_at)
    .bind(m.changed_at)
    .fetch_one(&mut *conn)
    .await?)
}

/// Stores what may change of a maintenance: times, texts, emergency, state, sequence.
pub async fn update_maintenance(
    conn: &mut AnyConnection,
    m: &Maintenance,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE maintenances SET starts_at = $1, ends_at = $2, reason = $3, impact = $4, \
         emergency = $5, state = $6, sequence = $7, changed_at = $8 WHERE id = $9",
    )
    .bind(m.starts_at)
    .bind(m.ends_at)
    .bind(&m.reason)
    .bind(&m.impact)
    .bind(i64::from(m.emergency))
    .bind(m.state.as_str())
    .bind(m.sequence)
    .bind(m.changed_at)
    .bind(m.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One maintenance, read in the caller's transaction.
pub async fn maintenance(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<Maintenance>, StoreError> {
    // Locked until the caller's transaction ends: two `cancel`s at once announce once.
    let sql = format!(
        "SELECT {MAINTENANCE_COLUMNS} FROM maintenances WHERE id = $1{}",
        super::for_update(conn)
    );
    let row: Option<MaintenanceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Maintenance::try_from).transpose()
}

/// The scheduled maintenances for which the daemon owes a notice at `now`, the earliest start
/// first: a reminder from `reminder_before` ahead of the start (unless it was scheduled or
/// changed within that time, when its own notice is still fresh), the start notice once it
/// began, and completion once its planned end passed. Each at most once per SEQUENCE.
pub async fn due_notices(
    store: &Store,
    now: i64,
    reminder_before: i64,
) -> Result<Vec<(Maintenance, NoticeKind)>, StoreError> {
    let sql = format!(
        "SELECT {MAINTENANCE_COLUMNS} FROM maintenances m WHERE m.state = 'scheduled' AND \
         (m.ends_at <= $1 \
          OR (m.starts_at <= $1 AND NOT EXISTS (SELECT 1 FROM announcements a WHERE \
              a.maintenance_id = m.id AND a.kind = 'started' AND a.sequence = m.sequence)) \
          OR (m.starts_at - $2 <= $1 AND m.changed_at < m.starts_at - $2 AND NOT EXISTS \
              (SELECT 1 FROM announcements a WHERE a.maintenance_id = m.id \
               AND a.kind = 'reminder' AND a.sequence = m.sequence))) \
         ORDER BY m.starts_at, m.id"
    );
    let rows: Vec<MaintenanceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(reminder_before)
        .fetch_all(store.pool())
        .await?;
    rows.into_iter()
        .map(|r| {
            let m = Maintenance::try_from(r)?;
            let kind = if m.ends_at <= now {
                NoticeKind::Done
            } else if m.starts_at <= now {
                NoticeKind::Started
            } else {
                NoticeKind::Reminder
            };
            Ok((m, kind))
        })
        .collect()
}

/// Every maintenance, the latest start first.
pub async fn maintenances(store: &Store) -> Result<Vec<Maintenance>, StoreError> {
    let sql = format!("SELECT {MAINTENANCE_COLUMNS} FROM maintenances ORDER BY starts_at DESC, id");
    let rows: Vec<MaintenanceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    rows.into_iter().map(Maintenance::try_from).collect()
}

/// What an announcement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    Maintenance(i64),
    Incident(i64),
}

impl About {
    /// The column of `announcements` that names it, and its id.
    fn column(self) -> (&'static str, i64) {
        match self {
            About::Maintenance(id) => ("maintenance_id", id),
            About::Incident(id) => ("incident_id", id),
        }
    }
}

/// Writes an announcement (the notice, before its mails) of `kind` (a [`NoticeKind`]'s or an
/// incident notice's name); its id.
pub async fn insert_announcement(
    conn: &mut AnyConnection,
    about: About,
    kind: &str,
    sequence: i64,
    at: i64,
) -> Result<i64, StoreError> {
    let (maintenance, incident) = match about {
        About::Maintenance(id) => (Some(id), None),
        About::Incident(id) => (None, Some(id)),
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO announcements (maintenance_id, incident_id, kind, sequence, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(maintenance)
    .bind(incident)
    .bind(kind)
    .bind(sequence)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?)
}

/// The Message-ID of each mail of an announcement, by its recipient's address in lower case:
/// what later notices of the same incident reply to, member by member.
pub async fn message_ids(
    conn: &mut AnyConnection,
    announcement_id: i64,
) -> Result<HashMap<String, String>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, message_id FROM outbox WHERE announcement_id = $1")
            .bind(announcement_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(r, m)| (crate::lists::address_key(&r), m))
        .collect())
}

/// An announcement with where its mails stand.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct AnnouncementRow {
    pub id: i64,
    pub kind: String,
    pub sequence: i64,
    pub created_at: i64,
    pub mails: i64,
    pub sent: i64,
    pub pending: i64,
    pub failed: i64,
    /// Handed to the server without its answer recorded, held for a person to check
    /// (`outbox.after_crash = "hold"`).
    pub uncertain: i64,
    /// Sent, and a failure report (bounce) came back for it.
    pub bounced: i64,
}

/// The columns of [`AnnouncementRow`] over `announcements a LEFT JOIN outbox o`.
const ROW_COLUMNS: &str = "a.id, a.kind, a.sequence, a.created_at, COUNT(o.id) AS mails, \
     COALESCE(SUM(CASE WHEN o.state = 'sent' THEN 1 ELSE 0 END), 0) AS sent, \
     COALESCE(SUM(CASE WHEN o.state IN ('scheduled', 'temporary_failure') THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN o.state IN ('permanent_failure', 'suppressed') THEN 1 ELSE 0 END), 0) AS failed, \
     COALESCE(SUM(CASE WHEN o.state = 'uncertain' THEN 1 ELSE 0 END), 0) AS uncertain, \
     COALESCE(SUM(CASE WHEN o.bounced_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS bounced";

/// The announcements of a maintenance, oldest first, with their mails counted by state.
pub async fn announcements(
    store: &Store,
    maintenance_id: i64,
) -> Result<Vec<AnnouncementRow>, StoreError> {
    announcements_about(store, About::Maintenance(maintenance_id)).await
}

/// The announcements of a maintenance or an incident, oldest first, with their mails counted
/// by state.
pub async fn announcements_about(
    store: &Store,
    about: About,
) -> Result<Vec<AnnouncementRow>, StoreError> {
    let (column, id) = about.column();
    // The column is one of two constants.
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM announcements a LEFT JOIN outbox o ON o.announcement_id = a.id \
         WHERE a.{column} = $1 GROUP BY a.id, a.kind, a.sequence, a.created_at ORDER BY a.id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_all(store.pool())
        .await?)
}

/// One announcement with where its mails stand and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct AnnouncementStatus {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub row: AnnouncementRow,
    pub maintenance_id: Option<i64>,
    pub incident_id: Option<i64>,
    pub platform: String,
}

/// Announcement `id` with its mails counted, if there is one.
pub async fn announcement_status(
    store: &Store,
    id: i64,
) -> Result<Option<AnnouncementStatus>, StoreError> {
    let sql = format!(
        "SELECT {ROW_COLUMNS}, a.maintenance_id, a.incident_id, \
         COALESCE(m.platform, i.platform, '') AS platform \
         FROM announcements a LEFT JOIN outbox o ON o.announcement_id = a.id \
         LEFT JOIN maintenances m ON m.id = a.maintenance_id \
         LEFT JOIN incidents i ON i.id = a.incident_id \
         WHERE a.id = $1 GROUP BY a.id, a.kind, a.sequence, a.created_at, a.maintenance_id, \
         a.incident_id, m.platform, i.platform"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?)
}

/// A mail of an announcement that did not (yet) reach its member.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Undelivered {
    pub recipient: String,
    /// The outbox state: temporary_failure, permanent_failure, suppressed, uncertain, or sent
    /// (bounced).
    pub state: String,
    pub attempts: i64,
    /// The server's answer, or the bounce's reason.
    pub error: Option<String>,
}

/// The mails of announcement `id` that failed, wait after a failure, are held as uncertain or
/// bounced, by address.
pub async fn undelivered(store: &Store, id: i64) -> Result<Vec<Undelivered>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT recipient, state, attempts, COALESCE(bounce_reason, last_error) AS error \
         FROM outbox WHERE announcement_id = $1 AND (bounced_at IS NOT NULL \
         OR state IN ('temporary_failure', 'permanent_failure', 'suppressed', 'uncertain')) \
         ORDER BY recipient",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?)
}

/// What a notice says in one language, stored once for all its mails in that language.
#[derive(Debug, Clone)]
pub struct NoticeBody {
    /// de | en
    pub language: &'static str,
    pub body_text: String,
    pub body_html: Option<String>,
    /// The iCalendar object, sent as a `text/calendar` part.
    pub ical: Option<String>,
}

/// A notice's mail to one member.
#[derive(Debug, Clone)]
pub struct AnnouncementMail {
    pub template: &'static str,
    pub recipient: String,
    pub message_id: String,
    pub subject: String,
    /// Its text: an index into the bodies given with it.
    pub body: usize,
    /// The `List-Id` header's value.
    pub list_id: String,
    /// The Message-ID this mail answers (an incident's opening notice to the same member),
    /// also its References, so that a mail client shows one conversation.
    pub in_reply_to: Option<String>,
}

const ANNOUNCEMENT_OUTBOX_COLUMNS: [&str; 15] = [
    "kind",
    "template",
    "recipient",
    "message_id",
    "subject",
    "body_text",
    "body_id",
    "auto_submitted",
    "state",
    "next_attempt_at",
    "created_at",
    "announcement_id",
    "list_id",
    "in_reply_to",
    "refs",
];

/// Writes the mails of announcement `announcement_id` as scheduled outbox rows, in the
/// caller's transaction, with its `bodies` stored once each; a mail to an address that
/// already has one of this announcement is skipped. How many were added.
pub async fn enqueue_mails(
    conn: &mut AnyConnection,
    announcement_id: i64,
    bodies: &[NoticeBody],
    mails: &[AnnouncementMail],
    at: i64,
) -> Result<u64, StoreError> {
    let mut body_ids = Vec::with_capacity(bodies.len());
    for b in bodies {
        // Written again for the same announcement (a repeated fan-out), the first one stays.
        sqlx::query(
            "INSERT INTO announcement_bodies (announcement_id, language, body_text, body_html, \
             ical) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (announcement_id, language) DO NOTHING",
        )
        .bind(announcement_id)
        .bind(b.language)
        .bind(&b.body_text)
        .bind(&b.body_html)
        .bind(&b.ical)
        .execute(&mut *conn)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM announcement_bodies WHERE announcement_id = $1 AND language = $2",
        )
        .bind(announcement_id)
        .bind(b.language)
        .fetch_one(&mut *conn)
        .await?;
        body_ids.push(id);
    }
    let backend = Backend::of(conn);
    let width = ANNOUNCEMENT_OUTBOX_COLUMNS.len();
    let mut added = 0;
    for chunk in mails.chunks(MAX_PARAMS / width) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(backend, i * width + 1, width)))
            .collect();
        let sql = format!(
            "INSERT INTO outbox ({}) VALUES {} ON CONFLICT DO NOTHING",
            ANNOUNCEMENT_OUTBOX_COLUMNS.join(", "),
            values.join(", ")
        );
        // Only placeholders are formatted in; the statement differs with the chunk's length.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for m in chunk {
            let body_id = body_ids.get(m.body).copied().ok_or_else(|| {
                StoreError::Internal(format!("the notice to {} names no text", m.recipient))
            })?;
            q = q
                .bind("announcement")
                .bind(m.template)
                .bind(m.recipient.clone())
                .bind(m.message_id.clone())
                .bind(m.subject.clone())
                .bind("")
                .bind(body_id)
                .bind("auto-generated")
                .bind("scheduled")
                .bind(at)
                .bind(at)
                .bind(announcement_id)
                .bind(m.list_id.clone())
                .bind(m.in_reply_to.clone())
                .bind(m.in_reply_to.clone());
        }
        added += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(added)
}

/// Records (or moves) the announced window of a maintenance in `sla_maintenance`, so that
/// the availability report of `calendar` excludes it.
pub async fn record_window(
    conn: &mut AnyConnection,
    m: &Maintenance,
    calendar: &str,
    announced_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sla_maintenance WHERE maintenance_id = $1")
        .bind(m.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sla_maintenance (calendar, starts_at, ends_at, announced_at, description, \
         maintenance_id, platform) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(calendar)
    .bind(m.starts_at)
    .bind(m.ends_at)
    .bind(announced_at)
    .bind(format!("{}: {}", m.platform, m.reason))
    .bind(m.id)
    .bind(&m.platform)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes a cancelled maintenance's window out of `sla_maintenance`.
pub async fn remove_window(
    conn: &mut AnyConnection,
    maintenance_id: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sla_maintenance WHERE maintenance_id = $1")
        .bind(maintenance_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The announced window of a maintenance (calendar, start, end), if recorded.
pub async fn window(
    store: &Store,
    maintenance_id: i64,
) -> Result<Option<(Option<String>, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT calendar, starts_at, ends_at FROM sla_maintenance WHERE maintenance_id = $1",
    )
    .bind(maintenance_id)
    .fetch_optional(store.pool())
    .await?)
}

/// The first announcement of `kind` about `about` (an incident's opening notice), if any.
pub async fn first_of_kind(
    conn: &mut AnyConnection,
    about: About,
    kind: &str,
) -> Result<Option<i64>, StoreError> {
    let (column, id) = about.column();
    // The column is one of two constants.
    let sql = format!("SELECT MIN(id) FROM announcements WHERE {column} = $1 AND kind = $2");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(kind)
        .fetch_one(&mut *conn)
        .await?)
}

/// How many announcements there are about `about`: the next one's sequence number.
pub async fn count_about(conn: &mut AnyConnection, about: About) -> Result<i64, StoreError> {
    let (column, id) = about.column();
    // The column is one of two constants.
    let sql = format!("SELECT COUNT(*) FROM announcements WHERE {column} = $1");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?)
}
