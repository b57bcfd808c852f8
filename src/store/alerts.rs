//! Monitoring alerts (issue 19): one row per alert key in `alerts` — its incident ticket,
//! where it stands, its recent changes of state — read for a whole batch in one query and
//! written once per key and batch, however many mails the key had.
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow, Row};

use super::tickets::fetch_in;
use super::{Backend, Store, StoreError};

/// An alert key as stored, with what filing needs of its ticket.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub alert_key: String,
    pub queue: String,
    pub platform: Option<String>,
    pub ticket_id: i64,
    pub incident_id: Option<i64>,
    /// `problem` or `recovered`.
    pub state: String,
    pub severity: Option<String>,
    pub problem_at: i64,
    pub recovered_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub repeats: i64,
    pub mails: i64,
    /// Alert times of the recent changes of state, space-separated.
    pub changes: String,
    pub flapping_since: Option<i64>,
    pub last_change_at: i64,
    pub last_mail_at: i64,
    pub created_at: i64,
    /// Of its ticket.
    pub number: String,
    pub ticket_state: String,
    pub closed_at: Option<i64>,
    pub subject: String,
    pub ticket_queue: String,
    pub ticket_severity: i64,
    pub nk_betreff: Option<String>,
}

const COLUMNS: &str = "a.id, a.alert_key, a.queue, a.platform, a.ticket_id, a.incident_id, \
     a.state, a.severity, a.problem_at, a.recovered_at, a.acknowledged_at, a.repeats, a.mails, \
     a.changes, a.flapping_since, a.last_change_at, a.last_mail_at, a.created_at, t.number, \
     t.state AS ticket_state, t.closed_at, t.subject, t.queue AS ticket_queue, \
     t.severity AS ticket_severity, t.nk_betreff";

/// The stored keys among `keys`.
pub async fn by_keys(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &[&str],
) -> Result<HashMap<String, AlertRow>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    // Two instances filing the same key take turns (PostgreSQL); SQLite's write transaction
    // holds the whole database anyway.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF a",
        Backend::Sqlite => "",
    };
    let rows = fetch_in(conn, backend, keys, |ph| {
        format!(
            "SELECT {COLUMNS} FROM alerts a JOIN tickets t ON t.id = a.ticket_id \
             WHERE a.alert_key IN ({ph}){lock}"
        )
    })
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let row = AlertRow::from_row(&r)?;
        out.insert(row.alert_key.clone(), row);
    }
    Ok(out)
}

/// What a batch leaves of a key.
#[derive(Debug, Clone)]
pub struct SaveAlert<'a> {
    /// `None`: a new key.
    pub id: Option<i64>,
    pub alert_key: &'a str,
    pub queue: &'a str,
    pub platform: Option<&'a str>,
    pub ticket_id: i64,
    pub incident_id: Option<i64>,
    pub state: &'a str,
    pub severity: Option<&'a str>,
    pub problem_at: i64,
    pub recovered_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub repeats: i64,
    pub mails: i64,
    pub changes: String,
    pub flapping_since: Option<i64>,
    pub last_change_at: i64,
    pub last_mail_at: i64,
    pub created_at: i64,
}

/// Writes a key: a new row, or the stored one changed. Its id. Two instances that filed the
/// first mail of one key at once (PostgreSQL) both insert: the unique key fails the second's
/// transaction, and its batch, filed again, finds the key.
pub async fn save(conn: &mut AnyConnection, a: &SaveAlert<'_>) -> Result<i64, StoreError> {
    let q = match a.id {
        None => sqlx::query_scalar(
            "INSERT INTO alerts (queue, platform, ticket_id, incident_id, state, severity, \
             problem_at, recovered_at, acknowledged_at, repeats, mails, changes, flapping_since, \
             last_change_at, last_mail_at, created_at, alert_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING id",
        ),
        Some(_) => sqlx::query_scalar(
            "UPDATE alerts SET queue = $1, platform = $2, ticket_id = $3, incident_id = $4, \
             state = $5, severity = $6, problem_at = $7, recovered_at = $8, \
             acknowledged_at = $9, repeats = $10, mails = $11, changes = $12, \
             flapping_since = $13, last_change_at = $14, last_mail_at = $15, created_at = $16 \
             WHERE alert_key = $17 RETURNING id",
        ),
    };
    Ok(q.bind(a.queue)
        .bind(a.platform)
        .bind(a.ticket_id)
        .bind(a.incident_id)
        .bind(a.state)
        .bind(a.severity)
        .bind(a.problem_at)
        .bind(a.recovered_at)
        .bind(a.acknowledged_at)
        .bind(a.repeats)
        .bind(a.mails)
        .bind(&a.changes)
        .bind(a.flapping_since)
        .bind(a.last_change_at)
        .bind(a.last_mail_at)
        .bind(a.created_at)
        .bind(a.alert_key)
        .fetch_one(&mut *conn)
        .await?)
}

/// Keys of incident `incident_id` in problem state other than `except`.
pub async fn others_in_problem(
    conn: &mut AnyConnection,
    incident_id: i64,
    except: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE incident_id = $1 AND state = 'problem' \
         AND alert_key <> $2",
    )
    .bind(incident_id)
    .bind(except)
    .fetch_one(&mut *conn)
    .await?)
}

/// Flapping keys whose state last changed before `before` (stable again), locked until the
/// caller's transaction ends.
pub async fn quiet_flapping(
    conn: &mut AnyConnection,
    before: i64,
) -> Result<Vec<AlertRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts a JOIN tickets t ON t.id = a.ticket_id \
         WHERE a.flapping_since IS NOT NULL AND a.last_change_at <= $1 ORDER BY a.id{}",
        match Backend::of(conn) {
            Backend::Postgres => " FOR UPDATE OF a",
            Backend::Sqlite => "",
        }
    );
    let rows: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows)
}

/// Marks a key stable again.
pub async fn clear_flapping(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE alerts SET flapping_since = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every key, the latest mail first (`alerts list`).
pub async fn all(store: &Store) -> Result<Vec<AlertRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts a JOIN tickets t ON t.id = a.ticket_id \
         ORDER BY a.last_mail_at DESC, a.id DESC"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?)
}

/// The keys of an incident and whether each is flapping, for `incident show`.
pub async fn of_incident(
    store: &Store,
    incident_id: i64,
) -> Result<Vec<(String, String, bool)>, StoreError> {
    let rows = sqlx::query(
        "SELECT alert_key, state, flapping_since FROM alerts WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let flapping: Option<i64> = r.try_get("flapping_since")?;
        out.push((
            r.try_get("alert_key")?,
            r.try_get("state")?,
            flapping.is_some(),
        ));
    }
    Ok(out)
}

/// Sets an alert ticket's state as monitoring left it: resolved at the recovery's own time,
/// or open again.
pub async fn set_ticket_state(
    conn: &mut AnyConnection,
    ticket_id: i64,
    state: &str,
    closed_at: Option<i64>,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET state = $1, closed_at = $2, updated_at = $3 WHERE id = $4")
        .bind(state)
        .bind(closed_at)
        .bind(at)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
