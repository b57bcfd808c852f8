//! Problems (issue 19, item 4): every occurrence of an incident with its fingerprint
//! (`ticket_fingerprints`), and the problem records (`problems`) that recurring ones make.
//! Filing reads what a batch's fingerprints need in two queries, whatever its size.
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow, Row};

use super::buffer::{Val, WriteBuffer};
use super::tickets::fetch_in;
use super::{Backend, Store, StoreError, placeholders};

/// An occurrence not yet part of a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub id: i64,
    pub ticket_id: i64,
    pub at: i64,
}

/// The occurrences of each of `fingerprints` since `since` that belong to no problem, oldest
/// first.
pub async fn unlinked_since(
    conn: &mut AnyConnection,
    backend: Backend,
    fingerprints: &[&str],
    since: i64,
) -> Result<HashMap<String, Vec<Occurrence>>, StoreError> {
    let mut out: HashMap<String, Vec<Occurrence>> = HashMap::new();
    if fingerprints.is_empty() {
        return Ok(out);
    }
    // `since` is bound after the list: its placeholder comes last.
    let mut keys: Vec<&str> = fingerprints.to_vec();
    keys.sort_unstable();
    for chunk in keys.chunks(super::MAX_PARAMS - 1) {
        let sql = format!(
            "SELECT id, fingerprint, ticket_id, at FROM ticket_fingerprints \
             WHERE fingerprint IN ({}) AND at >= {} AND problem_id IS NULL ORDER BY at, id",
            placeholders(backend, 1, chunk.len()),
            placeholders(backend, chunk.len() + 1, 1)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for k in chunk {
            q = q.bind(*k);
        }
        for r in q.bind(since).fetch_all(&mut *conn).await? {
            out.entry(r.try_get("fingerprint")?)
                .or_default()
                .push(Occurrence {
                    id: r.try_get("id")?,
                    ticket_id: r.try_get("ticket_id")?,
                    at: r.try_get("at")?,
                });
        }
    }
    Ok(out)
}

/// The open problem of each of `fingerprints` that has one: its id.
pub async fn open_of(
    conn: &mut AnyConnection,
    backend: Backend,
    fingerprints: &[&str],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    if fingerprints.is_empty() {
        return Ok(out);
    }
    let rows = fetch_in(conn, backend, fingerprints, |ph| {
        format!(
            "SELECT id, fingerprint FROM problems WHERE state = 'open' AND fingerprint IN ({ph})"
        )
    })
    .await?;
    for r in rows {
        out.insert(r.try_get("fingerprint")?, r.try_get("id")?);
    }
    Ok(out)
}

/// An occurrence to write.
#[derive(Debug, Clone)]
pub struct NewOccurrence<'a> {
    pub fingerprint: &'a str,
    pub ticket_id: i64,
    pub queue: &'a str,
    pub platform: Option<&'a str>,
    pub at: i64,
    pub problem_id: Option<i64>,
}

impl WriteBuffer {
    pub fn occurrence(&mut self, o: &NewOccurrence<'_>) {
        self.push(
            "ticket_fingerprints",
            &[
                "fingerprint",
                "ticket_id",
                "queue",
                "platform",
                "at",
                "problem_id",
            ],
            vec![
                Val::Text(o.fingerprint.to_string()),
                Val::Int(o.ticket_id),
                Val::Text(o.queue.to_string()),
                Val::OptText(o.platform.map(str::to_string)),
                Val::Int(o.at),
                Val::OptInt(o.problem_id),
            ],
        );
    }
}

/// A problem to record.
#[derive(Debug, Clone)]
pub struct NewProblem<'a> {
    pub fingerprint: &'a str,
    pub queue: &'a str,
    pub platform: Option<&'a str>,
    pub title: Option<&'a str>,
    pub opened_at: i64,
    pub notified_to: Option<&'a str>,
}

/// Records an open problem; its id. Fails on a second open problem of one fingerprint (the
/// unique index): the batch is filed again and then finds it.
pub async fn insert(conn: &mut AnyConnection, p: &NewProblem<'_>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO problems (fingerprint, queue, platform, title, state, opened_at, \
         notified_to, notified_at) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) RETURNING id",
    )
    .bind(p.fingerprint)
    .bind(p.queue)
    .bind(p.platform)
    .bind(p.title)
    .bind(p.opened_at)
    .bind(p.notified_to)
    .bind(p.notified_to.map(|_| p.opened_at))
    .fetch_one(&mut *conn)
    .await?)
}

/// Makes stored occurrences part of a problem.
pub async fn link(
    conn: &mut AnyConnection,
    backend: Backend,
    problem_id: i64,
    occurrences: &[i64],
) -> Result<(), StoreError> {
    for chunk in occurrences.chunks(super::MAX_PARAMS - 1) {
        let sql = format!(
            "UPDATE ticket_fingerprints SET problem_id = {} WHERE id IN ({})",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(problem_id);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A problem as lists show it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ProblemRow {
    pub id: i64,
    pub fingerprint: String,
    pub queue: String,
    pub platform: Option<String>,
    /// The alert key, else the subject of its latest ticket.
    pub title: String,
    pub state: String,
    pub opened_at: i64,
    pub notified_to: Option<String>,
    pub notified_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
    pub close_note: Option<String>,
    /// Occurrences and distinct tickets linked to it.
    pub occurrences: i64,
    pub tickets: i64,
}

const PROBLEM_COLUMNS: &str = "p.id, p.fingerprint, p.queue, p.platform, \
     COALESCE(p.title, (SELECT t.subject FROM ticket_fingerprints f JOIN tickets t \
       ON t.id = f.ticket_id WHERE f.problem_id = p.id ORDER BY f.at DESC, f.id DESC LIMIT 1), \
       '') AS title, \
     p.state, p.opened_at, p.notified_to, p.notified_at, p.closed_at, p.closed_by, \
     p.close_note, \
     (SELECT COUNT(*) FROM ticket_fingerprints f WHERE f.problem_id = p.id) AS occurrences, \
     (SELECT COUNT(DISTINCT f.ticket_id) FROM ticket_fingerprints f WHERE f.problem_id = p.id) \
       AS tickets";

/// Problems, optionally of one state and one platform, the latest first.
pub async fn problems(
    store: &Store,
    state: Option<&str>,
    platform: Option<&str>,
) -> Result<Vec<ProblemRow>, StoreError> {
    let sql = format!(
        "SELECT {PROBLEM_COLUMNS} FROM problems p \
         WHERE ($1 IS NULL OR p.state = $1) AND ($2 IS NULL OR p.platform = $2) \
         ORDER BY p.opened_at DESC, p.id DESC"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(state)
        .bind(platform)
        .fetch_all(store.pool())
        .await?)
}

/// One problem.
pub async fn problem(store: &Store, id: i64) -> Result<Option<ProblemRow>, StoreError> {
    let sql = format!("SELECT {PROBLEM_COLUMNS} FROM problems p WHERE p.id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?)
}

/// An occurrence of a problem with its ticket.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ProblemTicket {
    pub number: String,
    pub subject: String,
    pub state: String,
    pub severity: i64,
    pub at: i64,
}

/// The occurrences of a problem, oldest first.
pub async fn tickets_of(store: &Store, id: i64) -> Result<Vec<ProblemTicket>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.number, t.subject, t.state, t.severity, f.at FROM ticket_fingerprints f \
         JOIN tickets t ON t.id = f.ticket_id WHERE f.problem_id = $1 ORDER BY f.at, f.id",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?)
}

/// The occurrences of a problem in the caller's transaction (for its notice): ticket number,
/// subject and when.
pub async fn occurrences_of(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Vec<ProblemTicket>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.number, t.subject, t.state, t.severity, f.at FROM ticket_fingerprints f \
         JOIN tickets t ON t.id = f.ticket_id WHERE f.problem_id = $1 ORDER BY f.at, f.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Closes an open problem; `false` when it is not open (or does not exist).
pub async fn close(
    conn: &mut AnyConnection,
    id: i64,
    by: &str,
    note: Option<&str>,
    at: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE problems SET state = 'closed', closed_at = $1, closed_by = $2, close_note = $3 \
         WHERE id = $4 AND state = 'open'",
    )
    .bind(at)
    .bind(by)
    .bind(note)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
