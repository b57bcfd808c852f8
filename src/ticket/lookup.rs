//! The reads a batch of inbound mail depends on, one query per kind for the whole batch
//! (instead of one per message): messages filed before, tickets named by tag or referenced by
//! Message-ID, and their participants. Lists longer than a statement takes are split.
use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::{Backend, MAX_PARAMS, StoreError, placeholders};

/// A message filed before: its outcome and the number of its ticket.
#[derive(Debug, Clone)]
pub(super) struct Filed {
    pub outcome: String,
    pub number: Option<String>,
}

/// A stored ticket as threading sees it.
#[derive(Debug, Clone)]
pub(super) struct TicketRow {
    pub id: i64,
    pub number: String,
    pub queue: String,
    pub state: String,
    pub closed_at: Option<i64>,
    pub subject: String,
}

const TICKET_COLUMNS: &str = "t.id, t.number, t.queue, t.state, t.closed_at, t.subject";

fn ticket_row(row: &AnyRow, first: usize) -> Result<TicketRow, StoreError> {
    Ok(TicketRow {
        id: row.try_get(first)?,
        number: row.try_get(first + 1)?,
        queue: row.try_get(first + 2)?,
        state: row.try_get(first + 3)?,
        closed_at: row.try_get(first + 4)?,
        subject: row.try_get(first + 5)?,
    })
}

/// Runs the statement `sql(placeholders)` for each slice of `keys` that fits in one
/// statement, binding the keys in order, and returns every row.
async fn fetch_in<'k, K>(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &'k [K],
    sql: impl Fn(&str) -> String,
) -> Result<Vec<AnyRow>, StoreError>
where
    K: sqlx::Encode<'k, sqlx::Any> + sqlx::Type<sqlx::Any> + Copy + Send + 'k,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(MAX_PARAMS) {
        // Only placeholders are formatted in. The text changes with the list's length, so the
        // statement is not kept prepared; PostgreSQL then plans it for these very values.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql(&placeholders(
            backend,
            1,
            chunk.len(),
        ))))
        .persistent(false);
        for k in chunk {
            q = q.bind(*k);
        }
        rows.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// Messages filed before, by source key and by dedup key (Message-ID + content hash).
pub(super) async fn filed_before(
    conn: &mut AnyConnection,
    backend: Backend,
    source_keys: &[&str],
    dedup_keys: &[&str],
) -> Result<(HashMap<String, Filed>, HashMap<String, Filed>), StoreError> {
    let mut by_source = HashMap::new();
    let mut by_dedup = HashMap::new();
    // Two statements, not one with OR: each list is looked up in its own unique index.
    for (keys, column, map) in [
        (source_keys, "source_key", &mut by_source),
        (dedup_keys, "dedup_key", &mut by_dedup),
    ] {
        let rows = fetch_in(conn, backend, keys, |ph| {
            format!(
                "SELECT r.{column}, r.outcome, t.number FROM raw_messages r \
                 LEFT JOIN tickets t ON t.id = r.ticket_id WHERE r.{column} IN ({ph})"
            )
        })
        .await?;
        for row in rows {
            map.insert(
                row.try_get::<String, _>(0)?,
                Filed {
                    outcome: row.try_get(1)?,
                    number: row.try_get(2)?,
                },
            );
        }
    }
    Ok((by_source, by_dedup))
}

/// Stored tickets with these numbers.
pub(super) async fn tickets_by_number(
    conn: &mut AnyConnection,
    backend: Backend,
    numbers: &[&str],
) -> Result<Vec<TicketRow>, StoreError> {
    let rows = fetch_in(conn, backend, numbers, |ph| {
        format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number IN ({ph})")
    })
    .await?;
    rows.iter().map(|r| ticket_row(r, 0)).collect()
}

/// For each Message-ID that an article carries (inbound, note, or our own outbound mail), the
/// ticket of the most recent such article.
pub(super) async fn tickets_by_message_id(
    conn: &mut AnyConnection,
    backend: Backend,
    message_ids: &[&str],
) -> Result<HashMap<String, TicketRow>, StoreError> {
    let rows = fetch_in(conn, backend, message_ids, |ph| {
        format!(
            "SELECT a.message_id, a.id, {TICKET_COLUMNS} FROM articles a \
             JOIN tickets t ON t.id = a.ticket_id WHERE a.message_id IN ({ph})"
        )
    })
    .await?;
    let mut newest: HashMap<String, (i64, TicketRow)> = HashMap::new();
    for row in rows {
        let message_id: String = row.try_get(0)?;
        let article: i64 = row.try_get(1)?;
        if newest.get(&message_id).is_none_or(|(a, _)| *a < article) {
            newest.insert(message_id, (article, ticket_row(&row, 2)?));
        }
    }
    Ok(newest.into_iter().map(|(m, (_, t))| (m, t)).collect())
}

/// The participants' addresses of each of these tickets.
pub(super) async fn participants(
    conn: &mut AnyConnection,
    backend: Backend,
    ticket_ids: &[i64],
) -> Result<HashMap<i64, HashSet<String>>, StoreError> {
    let rows = fetch_in(conn, backend, ticket_ids, |ph| {
        format!("SELECT ticket_id, address FROM participants WHERE ticket_id IN ({ph})")
    })
    .await?;
    let mut out: HashMap<i64, HashSet<String>> = HashMap::new();
    for row in rows {
        out.entry(row.try_get(0)?)
            .or_default()
            .insert(row.try_get(1)?);
    }
    Ok(out)
}
