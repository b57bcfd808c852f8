//! Retention (issue 20, item 1): the SQL that finds what is due and deletes or anonymises it,
//! a chunk of rows in the caller's transaction. What is due, when and in what chunks is
//! decided in `jobs::retention`.
//!
//! Nothing a report reads is touched: a ticket keeps its number, queue, class, state and
//! times, its reaction clock (`ticket_sla`) and escalations, its articles and mails as rows
//! (with their kinds and times), so the SLA and availability reports and the counts give the
//! same figures before and after.
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow, Row};

use super::buffer::WriteBuffer;
use super::{Backend, Store, StoreError};
use crate::redact;

/// Outbox states that will not change any more: their texts may go.
pub(crate) const FINAL_STATES: &str = "('sent', 'permanent_failure', 'suppressed')";

/// `$first, $first+1, …`: every statement here numbers its parameters, which both databases
/// take (SQLite looks the number up by name; with a few hundred ids that costs nothing).
pub(crate) fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which tickets a period applies to: one queue's own, or every ticket of the queues without
/// one of their own (queues no longer configured included).
#[derive(Debug, Clone, Copy)]
pub enum Queues<'a> {
    Only(&'a str),
    Except(&'a [String]),
}

impl Queues<'_> {
    /// The condition on `t.queue`, its parameters numbered from `first`, and their values.
    fn condition(&self, first: usize) -> (String, Vec<String>) {
        match self {
            Queues::Only(q) => (format!("t.queue = ${first}"), vec![q.to_string()]),
            Queues::Except([]) => ("1 = 1".into(), vec![]),
            Queues::Except(qs) => (
                format!("t.queue NOT IN ({})", numbered(first, qs.len())),
                qs.to_vec(),
            ),
        }
    }
}

/// What a run does to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Raw mail, article texts, attachment names, texts of its mail.
    Purge,
    /// Addresses, names and subjects too.
    Anonymise,
}

impl Step {
    /// The condition the partial index of the step (migration 0020) holds: closed (or
    /// resolved) and not done since it was closed last.
    fn due(self) -> &'static str {
        match self {
            Step::Purge => {
                "t.closed_at IS NOT NULL AND (t.purged_at IS NULL OR t.purged_at < t.closed_at)"
            }
            Step::Anonymise => {
                "t.closed_at IS NOT NULL AND (t.anonymised_at IS NULL OR t.anonymised_at < t.closed_at)"
            }
        }
    }

    /// `tickets t` read through the step's partial index. SQLite, which has no statistics,
    /// would rather take every ticket of a queue from `tickets_queue` (migration 0022) and sort
    /// them; INDEXED BY holds it to the index of what is due (and fails loudly should the
    /// index not fit).
    fn tickets(self, backend: Backend) -> &'static str {
        match (backend, self) {
            (Backend::Sqlite, Step::Purge) => "tickets t INDEXED BY tickets_to_purge",
            (Backend::Sqlite, Step::Anonymise) => "tickets t INDEXED BY tickets_to_anonymise",
            (Backend::Postgres, _) => "tickets t",
        }
    }
}

/// The statement of [`due_tickets`]: `$1` the cutoff, `$2` the limit, then the queues'.
pub(super) fn due_tickets_sql(backend: Backend, step: Step, queues: Queues<'_>) -> String {
    let (cond, _) = queues.condition(3);
    format!(
        "SELECT t.id, t.number, t.queue, t.closed_at FROM {} WHERE {} \
         AND t.closed_at < $1 AND {cond} ORDER BY t.closed_at, t.id LIMIT $2",
        step.tickets(backend),
        step.due()
    )
}

/// A ticket whose period is over.
#[derive(Debug, Clone, FromRow)]
pub struct DueTicket {
    pub id: i64,
    pub number: String,
    pub queue: String,
    pub closed_at: i64,
}

/// Up to `limit` tickets of `queues` closed before `cutoff` that `step` has not been applied to
/// since, oldest first.
pub async fn due_tickets(
    conn: &mut AnyConnection,
    step: Step,
    queues: Queues<'_>,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<DueTicket>, StoreError> {
    let (_, values) = queues.condition(3);
    let sql = due_tickets_sql(Backend::of(conn), step, queues);
    // Only numbered placeholders and constant conditions are formatted in.
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(cutoff)
        .bind(limit);
    for v in values {
        q = q.bind(v);
    }
    Ok(q.fetch_all(&mut *conn).await?)
}

/// What a dry run counts for a step: the tickets, and for [`Step::Purge`] what their content
/// is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub tickets: i64,
    pub raw_messages: i64,
    pub raw_bytes: i64,
    pub articles: i64,
    pub attachments: i64,
    pub outbox: i64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.tickets += o.tickets;
        self.raw_messages += o.raw_messages;
        self.raw_bytes += o.raw_bytes;
        self.articles += o.articles;
        self.attachments += o.attachments;
        self.outbox += o.outbox;
    }
}

/// What applying `step` to everything due before `cutoff` would change, without changing it.
pub async fn count_due(
    store: &Store,
    step: Step,
    queues: Queues<'_>,
    cutoff: i64,
) -> Result<Counts, StoreError> {
    let (cond, values) = queues.condition(2);
    let due = format!(
        "SELECT t.id FROM {} WHERE {} AND t.closed_at < $1 AND {cond}",
        step.tickets(store.backend()),
        step.due()
    );
    let statements = [
        format!("SELECT COUNT(*), CAST(0 AS BIGINT) FROM ({due}) d"),
        format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(length(r.bytes)), 0) AS BIGINT) FROM raw_messages r \
             WHERE r.purged_at IS NULL AND (r.ticket_id IN ({due}) OR r.id IN \
             (SELECT a.raw_message_id FROM articles a WHERE a.ticket_id IN ({due})))"
        ),
        format!(
            "SELECT COUNT(*), CAST(0 AS BIGINT) FROM articles a \
             WHERE a.body <> '' AND a.ticket_id IN ({due})"
        ),
        format!(
            "SELECT COUNT(*), CAST(0 AS BIGINT) FROM attachments x JOIN articles a ON a.id = x.article_id \
             WHERE x.name IS NOT NULL AND a.ticket_id IN ({due})"
        ),
        format!(
            "SELECT COUNT(*), CAST(0 AS BIGINT) FROM outbox o WHERE o.purged_at IS NULL \
             AND o.state IN {FINAL_STATES} AND o.ticket_id IN ({due})"
        ),
    ];
    let mut out = [(0i64, 0i64); 5];
    for (i, sql) in statements.into_iter().enumerate() {
        if i > 0 && step == Step::Anonymise {
            break;
        }
        let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(cutoff);
        for v in &values {
            q = q.bind(v.clone());
        }
        out[i] = q.fetch_one(store.pool()).await?;
    }
    Ok(Counts {
        tickets: out[0].0,
        raw_messages: out[1].0,
        raw_bytes: out[1].1,
        articles: out[2].0,
        attachments: out[3].0,
        outbox: out[4].0,
    })
}

/// Runs `sql` (with the list of `ids` as `$first…`, after `before` bound as `$1…`) and
/// returns the rows changed.
async fn execute_with_ids(
    conn: &mut AnyConnection,
    sql: String,
    before: Vec<Bound>,
    ids: &[i64],
) -> Result<u64, StoreError> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for b in before {
        q = match b {
            Bound::Int(i) => q.bind(i),
            Bound::Text(s) => q.bind(s),
            Bound::Blob(v) => q.bind(v),
        };
    }
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected())
}

enum Bound {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// Per ticket (by id), how many rows of each kind a purge emptied.
pub type PurgedPerTicket = HashMap<i64, Counts>;

/// Deletes the content of the tickets `ids`: the bytes of their raw mail (the rows stay),
/// their article texts, attachment names and the texts of their sent mail (mail still to be
/// sent keeps its text). Returns what went, per ticket.
pub async fn purge_tickets(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: i64,
) -> Result<PurgedPerTicket, StoreError> {
    let mut per: PurgedPerTicket = ids.iter().map(|id| (*id, Counts::default())).collect();
    if ids.is_empty() {
        return Ok(per);
    }
    let list = numbered(1, ids.len());
    let raw_sql = format!(
        "SELECT r.id, r.ticket_id AS owner, CAST(length(r.bytes) AS BIGINT) AS n FROM raw_messages r \
         WHERE r.purged_at IS NULL AND r.ticket_id IN ({list}) \
         UNION SELECT r.id, a.ticket_id AS owner, CAST(length(r.bytes) AS BIGINT) AS n FROM articles a \
         JOIN raw_messages r ON r.id = a.raw_message_id \
         WHERE r.purged_at IS NULL AND a.ticket_id IN ({list})"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(raw_sql)).persistent(false);
    for id in ids {
        q = q.bind(*id);
    }
    let mut raw: HashMap<i64, (i64, i64)> = HashMap::new();
    for row in q.fetch_all(&mut *conn).await? {
        let id: i64 = row.try_get("id")?;
        let owner: Option<i64> = row.try_get("owner")?;
        let n: Option<i64> = row.try_get("n")?;
        if let Some(owner) = owner {
            raw.entry(id).or_insert((owner, n.unwrap_or(0)));
        }
    }
    let raw_ids: Vec<i64> = raw.keys().copied().collect();
    for chunk in raw_ids.chunks(super::MAX_PARAMS - 2) {
        let sql = format!(
            "UPDATE raw_messages SET bytes = $1, purged_at = $2 WHERE id IN ({})",
            numbered(3, chunk.len())
        );
        execute_with_ids(
            conn,
            sql,
            vec![Bound::Blob(Vec::new()), Bound::Int(now)],
            chunk,
        )
        .await?;
    }
    for (owner, n) in raw.values() {
        if let Some(c) = per.get_mut(owner) {
            c.raw_messages += 1;
            c.raw_bytes += n;
        }
    }

    for (sql, field) in [
        (
            format!(
                "SELECT a.ticket_id, COUNT(*) AS n FROM articles a WHERE a.body <> '' \
                 AND a.ticket_id IN ({list}) GROUP BY a.ticket_id"
            ),
            0,
        ),
        (
            format!(
                "SELECT a.ticket_id, COUNT(*) AS n FROM attachments x \
                 JOIN articles a ON a.id = x.article_id WHERE x.name IS NOT NULL \
                 AND a.ticket_id IN ({list}) GROUP BY a.ticket_id"
            ),
            1,
        ),
        (
            format!(
                "SELECT o.ticket_id, COUNT(*) AS n FROM outbox o WHERE o.purged_at IS NULL \
                 AND o.state IN {FINAL_STATES} AND o.ticket_id IN ({list}) GROUP BY o.ticket_id"
            ),
            2,
        ),
    ] {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for id in ids {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let ticket: i64 = row.try_get(0)?;
            let n: i64 = row.try_get("n")?;
            if let Some(c) = per.get_mut(&ticket) {
                match field {
                    0 => c.articles = n,
                    1 => c.attachments = n,
                    _ => c.outbox = n,
                }
            }
        }
    }
    let after = numbered(2, ids.len());
    execute_with_ids(
        conn,
        format!("UPDATE articles SET body = '' WHERE body <> '' AND ticket_id IN ({list})"),
        vec![],
        ids,
    )
    .await?;
    execute_with_ids(
        conn,
        format!(
            "UPDATE attachments SET name = NULL WHERE name IS NOT NULL AND article_id IN \
             (SELECT id FROM articles WHERE ticket_id IN ({list}))"
        ),
        vec![],
        ids,
    )
    .await?;
    execute_with_ids(
        conn,
        format!(
            "UPDATE outbox SET body_text = '', body_html = NULL, ical = NULL, purged_at = $1 \
             WHERE purged_at IS NULL AND state IN {FINAL_STATES} AND ticket_id IN ({after})"
        ),
        vec![Bound::Int(now)],
        ids,
    )
    .await?;
    execute_with_ids(
        conn,
        format!("UPDATE tickets SET purged_at = $1 WHERE id IN ({after})"),
        vec![Bound::Int(now)],
        ids,
    )
    .await?;
    for c in per.values_mut() {
        c.tickets = 1;
    }
    Ok(per)
}

/// What anonymising one ticket replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Anonymised {
    pub participants: i64,
    pub articles: i64,
    pub outbox: i64,
    pub audit: i64,
}

/// Replaces the addresses, names and subjects of the tickets `ids` (content is expected gone
/// already, see [`purge_tickets`]): requester and assignee become [`redact::ANONYMOUS`],
/// participants are deleted, articles lose sender and subject, their finished mail its
/// recipient, Cc, subject and server answers, their filing reasons and audit records every
/// address (and subjects and names). Number, queue, class, state, times and the reaction
/// clock stay.
pub async fn anonymise_tickets(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: i64,
) -> Result<HashMap<i64, Anonymised>, StoreError> {
    let mut per: HashMap<i64, Anonymised> =
        ids.iter().map(|id| (*id, Anonymised::default())).collect();
    if ids.is_empty() {
        return Ok(per);
    }
    let list = numbered(1, ids.len());
    for (sql, field) in [
        (
            format!(
                "SELECT ticket_id, COUNT(*) AS n FROM participants WHERE ticket_id IN ({list}) \
                 GROUP BY ticket_id"
            ),
            0,
        ),
        (
            format!(
                "SELECT ticket_id, COUNT(*) AS n FROM articles WHERE ticket_id IN ({list}) \
                 GROUP BY ticket_id"
            ),
            1,
        ),
        (
            format!(
                "SELECT ticket_id, COUNT(*) AS n FROM outbox WHERE state IN {FINAL_STATES} \
                 AND ticket_id IN ({list}) GROUP BY ticket_id"
            ),
            2,
        ),
    ] {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for id in ids {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let ticket: i64 = row.try_get(0)?;
            let n: i64 = row.try_get("n")?;
            if let Some(a) = per.get_mut(&ticket) {
                match field {
                    0 => a.participants = n,
                    1 => a.articles = n,
                    _ => a.outbox = n,
                }
            }
        }
    }
    let after2 = numbered(3, ids.len());
    let anon = || Bound::Text(redact::ANONYMOUS.to_string());
    execute_with_ids(
        conn,
        format!(
            "UPDATE tickets SET requester = $1, requester_name = NULL, subject = '', \
             assignee = CASE WHEN assignee IS NULL THEN NULL ELSE $1 END, anonymised_at = $2 \
             WHERE id IN ({after2})"
        ),
        vec![anon(), Bound::Int(now)],
        ids,
    )
    .await?;
    execute_with_ids(
        conn,
        format!("DELETE FROM participants WHERE ticket_id IN ({list})"),
        vec![],
        ids,
    )
    .await?;
    let after1 = numbered(2, ids.len());
    execute_with_ids(
        conn,
        format!(
            "UPDATE articles SET sender = CASE WHEN sender IS NULL THEN NULL ELSE $1 END, \
             subject = '', body = '' WHERE ticket_id IN ({after1})"
        ),
        vec![anon()],
        ids,
    )
    .await?;
    execute_with_ids(
        conn,
        format!(
            "UPDATE outbox SET recipient = $1, cc = NULL, subject = '', body_text = '', \
             body_html = NULL, ical = NULL, last_error = NULL, bounce_reason = NULL, \
             in_reply_to = NULL, refs = NULL, purged_at = COALESCE(purged_at, $2) \
             WHERE state IN {FINAL_STATES} AND ticket_id IN ({after2})"
        ),
        vec![anon(), Bound::Int(now)],
        ids,
    )
    .await?;
    execute_with_ids(
        conn,
        format!(
            "UPDATE ticket_sla SET reacted_by = NULL WHERE reacted_by IS NOT NULL \
             AND ticket_id IN ({list})"
        ),
        vec![],
        ids,
    )
    .await?;
    // Reasons and audit records are text written by poststelle with addresses in it: read,
    // rewritten here, written back where they changed.
    let reasons =
        format!("SELECT id, reason AS text FROM raw_messages WHERE ticket_id IN ({list})");
    for (id, text) in texts(conn, reasons, ids).await? {
        if let Some(new) = redact::anonymise_addresses(&text) {
            set_text(conn, "raw_messages", "reason", id, &new).await?;
        }
    }
    let audit = format!(
        "SELECT id, ticket_id AS owner, detail AS text FROM audit WHERE ticket_id IN ({list})"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(audit)).persistent(false);
    for id in ids {
        q = q.bind(*id);
    }
    for row in q.fetch_all(&mut *conn).await? {
        let (id, owner, text): (i64, i64, String) = (
            row.try_get("id")?,
            row.try_get("owner")?,
            row.try_get("text")?,
        );
        if let Some(new) = redact::anonymise_json(&text) {
            set_text(conn, "audit", "detail", id, &new).await?;
            if let Some(a) = per.get_mut(&owner) {
                a.audit += 1;
            }
        }
    }
    Ok(per)
}

/// (id, text) of the rows `sql` selects with the ids bound as `$1…`.
async fn texts(
    conn: &mut AnyConnection,
    sql: String,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for id in ids {
        q = q.bind(*id);
    }
    let mut out = Vec::new();
    for row in q.fetch_all(&mut *conn).await? {
        out.push((row.try_get("id")?, row.try_get("text")?));
    }
    Ok(out)
}

/// Writes one text column of one row (both names are constants of this crate).
pub(crate) async fn set_text(
    conn: &mut AnyConnection,
    table: &'static str,
    column: &'static str,
    id: i64,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET {column} = $1 WHERE id = $2"
    )))
    .bind(value)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Raw mail on no ticket (quarantined, ignored, refused, replayed) received before `cutoff`
/// whose bytes are still there.
#[derive(Debug, Clone, FromRow)]
pub struct Unfiled {
    pub id: i64,
    pub outcome: String,
    pub bytes: i64,
    pub received_at: i64,
}

pub async fn due_unfiled(
    conn: &mut AnyConnection,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<Unfiled>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, outcome, CAST(length(bytes) AS BIGINT) AS bytes, received_at FROM raw_messages \
         WHERE ticket_id IS NULL AND purged_at IS NULL AND received_at < $1 \
         ORDER BY received_at, id LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Counts of [`due_unfiled`] for a dry run: (quarantined rows, other rows, bytes of both).
pub async fn count_unfiled(store: &Store, cutoff: i64) -> Result<(i64, i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN outcome = 'quarantined' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN outcome = 'quarantined' THEN 0 ELSE 1 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(length(bytes)), 0) AS BIGINT) FROM raw_messages \
         WHERE ticket_id IS NULL AND purged_at IS NULL AND received_at < $1",
    )
    .bind(cutoff)
    .fetch_one(store.pool())
    .await?)
}

/// Deletes raw mail: quarantined rows entirely (nothing is left to replay; what referred to
/// them forgets the id), the bytes of every other row (the row keeps a re-delivered mail a
/// duplicate).
pub async fn drop_raw(
    conn: &mut AnyConnection,
    rows: &[Unfiled],
    now: i64,
) -> Result<(), StoreError> {
    let (quarantined, other): (Vec<&Unfiled>, Vec<&Unfiled>) =
        rows.iter().partition(|r| r.outcome == "quarantined");
    let q_ids: Vec<i64> = quarantined.iter().map(|r| r.id).collect();
    let o_ids: Vec<i64> = other.iter().map(|r| r.id).collect();
    if !q_ids.is_empty() {
        let list = numbered(1, q_ids.len());
        for table in ["audit", "articles", "outbox"] {
            execute_with_ids(
                conn,
                format!(
                    "UPDATE {table} SET raw_message_id = NULL WHERE raw_message_id IN ({list})"
                ),
                vec![],
                &q_ids,
            )
            .await?;
        }
        execute_with_ids(
            conn,
            format!("DELETE FROM raw_messages WHERE id IN ({list})"),
            vec![],
            &q_ids,
        )
        .await?;
    }
    if !o_ids.is_empty() {
        execute_with_ids(
            conn,
            format!(
                "UPDATE raw_messages SET bytes = $1, purged_at = $2 WHERE id IN ({})",
                numbered(3, o_ids.len())
            ),
            vec![Bound::Blob(Vec::new()), Bound::Int(now)],
            &o_ids,
        )
        .await?;
    }
    Ok(())
}

/// Finished mail written before `cutoff` whose texts are still there: (id, ticket id).
pub async fn due_sent(
    conn: &mut AnyConnection,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, ticket_id FROM outbox WHERE purged_at IS NULL AND created_at < $1 \
         AND state IN {FINAL_STATES} ORDER BY created_at, id LIMIT $2"
    )))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn count_sent(store: &Store, cutoff: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM outbox WHERE purged_at IS NULL AND created_at < $1 \
         AND state IN {FINAL_STATES}"
    )))
    .bind(cutoff)
    .fetch_one(store.pool())
    .await?)
}

/// Deletes the texts (plain, HTML, calendar entry) of the mails `ids`; the row (recipient,
/// subject, state, times) stays for `outbox list` and the announcements' counts.
pub async fn purge_sent(conn: &mut AnyConnection, ids: &[i64], now: i64) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    execute_with_ids(
        conn,
        format!(
            "UPDATE outbox SET body_text = '', body_html = NULL, ical = NULL, purged_at = $1 \
             WHERE id IN ({})",
            numbered(2, ids.len())
        ),
        vec![Bound::Int(now)],
        ids,
    )
    .await?;
    Ok(())
}

/// Claims today's run of the daily job `name`: true when no run started at or after
/// `since` (the day's start time), in which case this one is recorded as started at `now`.
/// Two instances claiming at once: one wins.
pub async fn claim_daily(
    store: &Store,
    name: &str,
    since: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let _gate = store.write_gate().await;
    let done = sqlx::query(
        "INSERT INTO job_runs (name, started_at) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at, finished_at = NULL \
         WHERE job_runs.started_at < $3",
    )
    .bind(name)
    .bind(now)
    .bind(since)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records what the run of `name` did.
pub async fn finish_daily(
    store: &Store,
    name: &str,
    now: i64,
    summary: &serde_json::Value,
) -> Result<(), StoreError> {
    let _gate = store.write_gate().await;
    sqlx::query("UPDATE job_runs SET finished_at = $1, summary = $2 WHERE name = $3")
        .bind(now)
        .bind(summary.to_string())
        .bind(name)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// When the job `name` last started and finished, and what it did.
pub async fn last_run(
    store: &Store,
    name: &str,
) -> Result<Option<(i64, Option<i64>, Option<String>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT started_at, finished_at, summary FROM job_runs WHERE name = $1")
            .bind(name)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// After deleting on SQLite: copies the WAL into the database and truncates it, so that no
/// earlier version of a page (with what was deleted) stays in the `-wal` file. Best effort:
/// a reader holding an old snapshot lets it copy only part; the next checkpoint does the rest.
/// Returns whether it completed.
pub async fn truncate_wal(store: &Store) -> Result<bool, StoreError> {
    if store.backend() != Backend::Sqlite {
        return Ok(true);
    }
    let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(store.pool())
        .await?;
    let busy: i64 = row.try_get(0)?;
    Ok(busy == 0)
}

/// `VACUUM` on SQLite: rewrites the file without its free pages, so that it shrinks by what
/// was deleted. Holds the write lock for as long as it takes (the whole file is copied).
/// PostgreSQL reuses the space of deleted rows by itself (autovacuum): nothing to do.
pub async fn vacuum(store: &Store) -> Result<(), StoreError> {
    if store.backend() != Backend::Sqlite {
        return Ok(());
    }
    let _gate = store.write_gate().await;
    sqlx::query("VACUUM").execute(store.pool()).await?;
    drop(_gate);
    truncate_wal(store).await?;
    Ok(())
}

/// Writes the buffered audit lines in the caller's transaction.
pub async fn flush(
    conn: &mut AnyConnection,
    backend: Backend,
    buf: &mut WriteBuffer,
) -> Result<(), StoreError> {
    buf.flush(conn, backend).await
}
