//! What the public status page (issue 18) reads besides incidents and maintenances: a cheap
//! fingerprint of everything it shows, read every few seconds, and the public part of the
//! incidents' timelines (never who wrote an entry).
use sqlx::FromRow;

use super::{Store, StoreError};

/// The newest row and latest change of the tables the status page shows: when it differs
/// from the last one read, the page is rendered anew. Rows are never deleted from these
/// tables, so a new row always raises the newest id, and every change of a row moves its
/// `changed_at`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Fingerprint {
    pub incidents: i64,
    pub incidents_changed: i64,
    pub events: i64,
    pub maintenances: i64,
    pub maintenances_changed: i64,
}

/// Five maxima, each the last entry of an index (a primary key, `incidents_changed`,
/// `maintenances_changed`): read every few seconds, it costs the same however many incidents
/// and maintenances years bring. (Counts would read every row.)
pub(super) const FINGERPRINT: &str = "SELECT (SELECT COALESCE(MAX(id), 0) FROM incidents) AS incidents, \
     (SELECT COALESCE(MAX(changed_at), 0) FROM incidents) AS incidents_changed, \
     (SELECT COALESCE(MAX(id), 0) FROM incident_events) AS events, \
     (SELECT COALESCE(MAX(id), 0) FROM maintenances) AS maintenances, \
     (SELECT COALESCE(MAX(changed_at), 0) FROM maintenances) AS maintenances_changed";

pub async fn fingerprint(store: &Store) -> Result<Fingerprint, StoreError> {
    Ok(sqlx::query_as(FINGERPRINT).fetch_one(store.pool()).await?)
}

/// An entry of an incident's timeline as the public may see it: no actor.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PublicEvent {
    pub incident_id: i64,
    /// opened | update | raised | resolved
    pub kind: String,
    pub text: String,
    pub at: i64,
}

/// The incidents first, each of the three conditions from an index of its own
/// (`incidents_state`, `incidents_started`, `incidents_resolved`), then their entries: `CROSS
/// JOIN` keeps SQLite, which has no statistics, from reading every entry of every incident.
pub(super) const PUBLIC_EVENTS: &str = "SELECT e.incident_id, e.kind, e.text, e.at FROM incidents i CROSS JOIN incident_events e \
     WHERE e.incident_id = i.id \
     AND (i.state = 'open' OR i.started_at >= $1 OR i.resolved_at >= $1) \
     ORDER BY e.at, e.id";

/// The timeline entries of the incidents open now or started or resolved since `since`
/// (UTC µs), oldest first.
pub async fn public_events(store: &Store, since: i64) -> Result<Vec<PublicEvent>, StoreError> {
    Ok(sqlx::query_as(PUBLIC_EVENTS)
        .bind(since)
        .fetch_all(store.pool())
        .await?)
}
