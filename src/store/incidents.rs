//! Incidents (issue 16, item 4): the `incidents` table, each one's timeline
//! (`incident_events`) and the users' tickets linked to it (`incident_tickets`). Its notices
//! are announcements ([`super::announcements`]); its outage is a row of `sla_outages`
//! ([`super::sla::record_outage`]).
use sqlx::{AnyConnection, FromRow};

use super::{Store, StoreError};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Resolved => "resolved",
        }
    }

    fn parse(s: &str) -> Result<IncidentState, StoreError> {
        match s {
            "open" => Ok(IncidentState::Open),
            "resolved" => Ok(IncidentState::Resolved),
            other => Err(StoreError::Db(sqlx::Error::Decode(
                format!("incidents.state \"{other}\" is neither open nor resolved").into(),
            ))),
        }
    }
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: i64,
    pub platform: String,
    pub title: String,
    pub impact: String,
    /// Störungsklasse 1–4.
    pub class: u8,
    pub lists: Vec<String>,
    pub state: IncidentState,
    /// The outage's start and restoration (UTC µs).
    pub started_at: i64,
    pub resolved_at: Option<i64>,
    /// Its row in `sla_outages`.
    pub outage_id: Option<i64>,
    /// When linked light reports raised its class.
    pub raised_at: Option<i64>,
    pub created_at: i64,
    pub changed_at: i64,
    /// The alert key of monitoring that opened it (issue 19); `None` for an operator's.
    pub alert_key: Option<String>,
    /// When its notices were let go to the lists: at once for an operator's incident and on
    /// platforms with `alert_notices = "auto"`, else by `incident confirm`.
    pub confirmed_at: Option<i64>,
    pub confirmed_by: Option<String>,
    /// The state the lists last heard of; a confirmed incident whose state differs is due a
    /// notice.
    pub announced_state: Option<IncidentState>,
}

#[derive(FromRow)]
struct IncidentRow {
    id: i64,
    platform: String,
    title: String,
    impact: String,
    class: i64,
    lists: String,
    state: String,
    started_at: i64,
    resolved_at: Option<i64>,
    outage_id: Option<i64>,
    raised_at: Option<i64>,
    created_at: i64,
    changed_at: i64,
    alert_key: Option<String>,
    confirmed_at: Option<i64>,
    confirmed_by: Option<String>,
    announced_state: Option<String>,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;
    fn try_from(r: IncidentRow) -> Result<Incident, StoreError> {
        Ok(Incident {
            id: r.id,
            platform: r.platform,
            title: r.title,
            impact: r.impact,
            class: u8::try_from(r.class).unwrap_or(4),
            lists: r
                .lists
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            state: IncidentState::parse(&r.state)?,
            started_at: r.started_at,
            resolved_at: r.resolved_at,
            outage_id: r.outage_id,
            raised_at: r.raised_at,
            created_at: r.created_at,
            changed_at: r.changed_at,
            alert_key: r.alert_key,
            confirmed_at: r.confirmed_at,
            confirmed_by: r.confirmed_by,
            announced_state: r
                .announced_state
                .as_deref()
                .map(IncidentState::parse)
                .transpose()?,
        })
    }
}

const COLUMNS: &str = "id, platform, title, impact, class, lists, state, started_at, \
     resolved_at, outage_id, raised_at, created_at, changed_at, alert_key, confirmed_at, \
     confirmed_by, announced_state";

/// Writes a new incident; its id.
pub async fn insert_incident(conn: &mut AnyConnection, i: &Incident) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO incidents (platform, title, impact, class, lists, state, started_at, \
         resolved_at, outage_id, raised_at, created_at, changed_at, alert_key, confirmed_at, \
         confirmed_by, announced_state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         RETURNING id",
    )
    .bind(&i.platform)
    .bind(&i.title)
    .bind(&i.impact)
    .bind(i64::from(i.class))
    .bind(i.lists.join(","))
    .bind(i.state.as_str())
    .bind(i.started_at)
    .bind(i.resolved_at)
    .bind(i.outage_id)
    .bind(i.raised_at)
    .bind(i.created_at)
    .bind(i.changed_at)
    .bind(&i.alert_key)
    .bind(i.confirmed_at)
    .bind(&i.confirmed_by)
    .bind(i.announced_state.map(IncidentState::as_str))
    .fetch_one(&mut *conn)
    .await?)
}

/// Stores what may change of an incident: class, state, restoration, outage, raise, its
/// confirmation and what the lists last heard.
pub async fn update_incident(conn: &mut AnyConnection, i: &Incident) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE incidents SET class = $1, state = $2, resolved_at = $3, outage_id = $4, \
         raised_at = $5, changed_at = $6, confirmed_at = $7, confirmed_by = $8, \
         announced_state = $9 WHERE id = $10",
    )
    .bind(i64::from(i.class))
    .bind(i.state.as_str())
    .bind(i.resolved_at)
    .bind(i.outage_id)
    .bind(i.raised_at)
    .bind(i.changed_at)
    .bind(i.confirmed_at)
    .bind(&i.confirmed_by)
    .bind(i.announced_state.map(IncidentState::as_str))
    .bind(i.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One incident, read in the caller's transaction (and locked there until it ends).
pub async fn incident(conn: &mut AnyConnection, id: i64) -> Result<Option<Incident>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM incidents WHERE id = $1{}",
        super::for_update(conn)
    );
    let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Incident::try_from).transpose()
}

/// The open incident of `platform` that new reports are linked to: the latest opened (locked
/// until the caller's transaction ends, as [`incident`]).
pub async fn open_incident_of(
    conn: &mut AnyConnection,
    platform: &str,
) -> Result<Option<Incident>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM incidents WHERE platform = $1 AND state = 'open' \
         ORDER BY started_at DESC, id DESC LIMIT 1{}",
        super::for_update(conn)
    );
    let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(platform)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Incident::try_from).transpose()
}

/// Confirmed incidents whose lists have not heard their present state, and that no flapping
/// alert holds back: the notices due (oldest first).
pub async fn unannounced(conn: &mut AnyConnection) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT i.id FROM incidents i WHERE i.confirmed_at IS NOT NULL \
         AND (i.announced_state IS NULL OR i.announced_state <> i.state) \
         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.id \
                         AND a.flapping_since IS NOT NULL) \
         ORDER BY i.id",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Every incident, the latest start first.
pub async fn incidents(store: &Store) -> Result<Vec<Incident>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM incidents ORDER BY started_at DESC, id DESC");
    let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    rows.into_iter().map(Incident::try_from).collect()
}

/// What an entry of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Opened,
    Update,
    Raised,
    Resolved,
    /// Monitoring reported the fault again after its recovery.
    Reopened,
    /// An operator let its notices go to the lists.
    Confirmed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Update => "update",
            EventKind::Raised => "raised",
            EventKind::Resolved => "resolved",
            EventKind::Reopened => "reopened",
            EventKind::Confirmed => "confirmed",
        }
    }
}

/// Adds an entry to an incident's timeline.
pub async fn add_event(
    conn: &mut AnyConnection,
    incident_id: i64,
    kind: EventKind,
    text: &str,
    actor: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_events (incident_id, kind, text, actor, at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(incident_id)
    .bind(kind.as_str())
    .bind(text)
    .bind(actor)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An entry of the timeline as stored.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EventRow {
    pub kind: String,
    pub text: String,
    pub actor: String,
    pub at: i64,
}

/// An incident's timeline, oldest first.
pub async fn events(store: &Store, incident_id: i64) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kind, text, actor, at FROM incident_events WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(store.pool())
    .await?)
}

/// Links a ticket to an incident; `false` when it was linked already.
pub async fn link_ticket(
    conn: &mut AnyConnection,
    incident_id: i64,
    ticket_id: i64,
    linked_by: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO incident_tickets (incident_id, ticket_id, linked_by, linked_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(incident_id)
    .bind(ticket_id)
    .bind(linked_by)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(added > 0)
}

/// A ticket linked to an incident.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct LinkedTicket {
    pub ticket_id: i64,
    pub number: String,
    pub subject: String,
    pub queue: String,
    pub severity: i64,
    pub state: String,
    pub requester: String,
    pub requester_name: Option<String>,
    pub created_at: i64,
    pub linked_by: String,
    pub linked_at: i64,
}

/// The tickets linked to an incident, in the order they were linked.
pub async fn linked_tickets(
    conn: &mut AnyConnection,
    incident_id: i64,
) -> Result<Vec<LinkedTicket>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.id AS ticket_id, t.number, t.subject, t.queue, t.severity, t.state, \
         t.requester, t.requester_name, t.created_at, l.linked_by, l.linked_at \
         FROM incident_tickets l JOIN tickets t ON t.id = l.ticket_id \
         WHERE l.incident_id = $1 ORDER BY l.linked_at, t.id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// How many tickets of class `class` are linked to an incident.
pub async fn linked_of_class(
    conn: &mut AnyConnection,
    incident_id: i64,
    class: u8,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM incident_tickets l JOIN tickets t ON t.id = l.ticket_id \
         WHERE l.incident_id = $1 AND t.severity = $2",
    )
    .bind(incident_id)
    .bind(i64::from(class))
    .fetch_one(&mut *conn)
    .await?)
}

/// A ticket's id by its number, in the caller's transaction.
pub async fn ticket_id(conn: &mut AnyConnection, number: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
            .bind(number)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The Message-IDs of a ticket's conversation as `requester` has seen it, oldest first: the
/// mail filed on it and our mail to that address on it (not the copies for staff).
pub async fn conversation(
    conn: &mut AnyConnection,
    ticket_id: i64,
    requester: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT c.message_id FROM ( \
           SELECT message_id, created_at, 0 AS side FROM articles \
           WHERE ticket_id = $1 AND kind = 'inbound' AND message_id IS NOT NULL \
             AND message_id <> '' \
           UNION ALL \
           SELECT message_id, created_at, 1 AS side FROM outbox \
           WHERE ticket_id = $1 AND LOWER(recipient) = LOWER($2) AND state <> 'suppressed' \
         ) c ORDER BY c.created_at, c.side",
    )
    .bind(ticket_id)
    .bind(requester)
    .fetch_all(&mut *conn)
    .await?)
}
