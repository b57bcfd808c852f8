//! The hand-over marks of a SQLite store, in a small database of their own beside it (the
//! store's file name with `-handover` appended). Before an SMTP sender hands a mail's data to
//! the server it commits a mark, and the data waits for that commit (see `outbox::sender`).
//! In the store itself a mark needed SQLite's one write lock, which the filing holds for a
//! batch at a time: beside a busy mailbox a sender got about one commit in per batch filed
//! and sent ~100 mails a second (issue 22). Here a mark takes a lock nobody else holds for
//! long, and a commit writes a page or two of 4 KiB instead of the store's 32 KiB ones.
//!
//! A mark names the row, its attempt (the row's `attempts` when it was claimed) and its
//! Message-ID. Once the server has answered, the attempt's end is journaled on the mark as
//! well, so that the mail need not wait for the store's write lock before its connection
//! takes the next one: a sender killed before the store has the result leaves it here, and
//! the next claim of the row records it instead of holding the mail as uncertain. The result,
//! recorded in the store, counts the attempt, so a mark whose row has gone on is stale by
//! construction: no write needs to span both files, and a crash between the result and the
//! mark's removal leaves only a stale mark, which the next pass removes
//! ([`Store::prune_marks`]). The Message-ID guards against a row id used again after rows
//! were deleted. PostgreSQL, which locks rows rather than the database, and an in-memory
//! SQLite store keep the mark on the row (`outbox.handed_at`) and journal nothing.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

use super::outbox::{Attempt, OutboxState, Recorded};
use super::{CONNECT_TIMEOUT, Store, StoreError};

/// A row's mark: its data is being handed to the SMTP server in attempt `attempt`, and once
/// the server answered, how the attempt ended.
#[derive(Debug, Clone)]
pub struct Mark<'a> {
    pub id: i64,
    /// The row's `attempts` when it was claimed: its result makes it `attempt + 1`.
    pub attempt: i64,
    pub message_id: &'a str,
    /// When the data began to go out (Unix microseconds).
    pub at: i64,
    /// The attempt's end, journaled until the store has it.
    pub ended: Option<Attempt<'a>>,
}

/// The marks' database beside the store's file `main`.
pub fn path_of(main: &Path) -> PathBuf {
    let mut name = main.as_os_str().to_owned();
    name.push("-handover");
    PathBuf::from(name)
}

/// One row per mail in flight: its mark, and its end (`state` and what follows) once the
/// server has answered.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS marks (id INTEGER PRIMARY KEY, \
     attempt INTEGER NOT NULL, message_id TEXT NOT NULL, at INTEGER NOT NULL, \
     state TEXT, attempts INTEGER, error TEXT, next_at INTEGER, ended_at INTEGER)";

/// A batch of marks in one statement over a bound JSON array; a mark replaces the row's
/// stale one, a mark with its end the same attempt's bare mark — never a later attempt's
/// mark of the same mail, should an earlier attempt's write come late (another process); a
/// mark of another mail (a row id used again after its row was deleted) always replaces it.
/// (`WHERE true` lets SQLite's parser tell the upsert's `ON` from a join's.)
const PUT: &str = "INSERT INTO marks \
     (id, attempt, message_id, at, state, attempts, error, next_at, ended_at) \
     SELECT value ->> 'id', value ->> 'attempt', value ->> 'message_id', value ->> 'at', \
     value ->> 'state', value ->> 'attempts', value ->> 'error', value ->> 'next_at', \
     value ->> 'ended_at' FROM json_each($1) WHERE true \
     ON CONFLICT (id) DO UPDATE SET attempt = excluded.attempt, \
     message_id = excluded.message_id, at = excluded.at, state = excluded.state, \
     attempts = excluded.attempts, error = excluded.error, next_at = excluded.next_at, \
     ended_at = excluded.ended_at \
     WHERE excluded.attempt >= marks.attempt OR excluded.message_id <> marks.message_id";

/// Removes the marks of `[id, attempt]` pairs: a newer attempt's mark of the row stays.
const FORGET: &str = "DELETE FROM marks WHERE (id, attempt) IN \
     (SELECT value ->> 0, value ->> 1 FROM json_each($1))";

/// The open marks' database.
#[derive(Debug, Clone)]
pub(super) struct Marks {
    pool: AnyPool,
}

impl Marks {
    /// Opens the marks' database at `path`, creating it when `create` (a sender about to
    /// mark); `None` when it does not exist and `create` is false: no sender of this store has
    /// marked anything yet, so there is nothing to read.
    pub(super) async fn open(path: &Path, create: bool) -> Result<Option<Marks>, StoreError> {
        if !create && !path.exists() {
            return Ok(None);
        }
        // A file this user cannot write (made by another user) would fail every mark with
        // "readonly database", naming no file, and use up each mail's attempts.
        super::sqlite_preflight(path)?;
        let url = format!(
            "sqlite://{}?mode={}",
            path.display(),
            if create { "rwc" } else { "rw" }
        );
        // Two connections: the sender's writer keeps one for its pass, claims and the pass's
        // clean-up read on the other.
        let pool = AnyPoolOptions::new()
            .acquire_timeout(CONNECT_TIMEOUT)
            .max_connections(2)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL with synchronous = NORMAL keeps a commit through a crash of the
                    // process without an fsync, as the store does: a mark is as durable as
                    // the "sent" it stands for.
                    // secure_delete as in the store: a journaled answer may name the
                    // recipient ("550 <erika@…>: no such user"), and its removal overwrites it.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        pool.execute(SCHEMA).await?;
        Ok(Some(Marks { pool }))
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

/// `[id, attempt]` pairs as the JSON array [`FORGET`] reads.
fn pairs_json(pairs: &[(i64, i64)]) -> String {
    serde_json::Value::Array(
        pairs
            .iter()
            .map(|(id, attempt)| serde_json::json!([id, attempt]))
            .collect(),
    )
    .to_string()
}

fn marks_json(marks: &[Mark<'_>]) -> String {
    serde_json::Value::Array(
        marks
            .iter()
            .map(|m| {
                let mut row = serde_json::json!({
                    "id": m.id,
                    "attempt": m.attempt,
                    "message_id": m.message_id,
                    "at": m.at,
                });
                if let Some(e) = &m.ended {
                    row["state"] = e.state.as_str().into();
                    row["attempts"] = e.attempts.into();
                    row["error"] = e.error.into();
                    row["next_at"] = e.next_attempt_at.into();
                    row["ended_at"] = e.at.into();
                }
                row
            })
            .collect(),
    )
    .to_string()
}

/// A stored mark, as read back.
#[derive(Debug, Clone)]
struct StoredMark {
    attempt: i64,
    message_id: String,
    at: i64,
    ended: Option<Recorded>,
}

impl Store {
    /// Whether this store keeps its hand-over marks beside it ([`Marks`]): a SQLite file.
    pub fn marks_apart(&self) -> bool {
        self.sqlite_file.is_some()
    }

    /// The marks' database, opened once for the store's life; `None` on PostgreSQL and
    /// in-memory SQLite, and while it does not exist unless `create`.
    async fn marks(&self, create: bool) -> Result<Option<&Marks>, StoreError> {
        let Some(file) = &self.sqlite_file else {
            return Ok(None);
        };
        if let Some(m) = self.marks.get() {
            return Ok(Some(m));
        }
        let _opening = self.marks_opening.lock().await;
        if let Some(m) = self.marks.get() {
            return Ok(Some(m));
        }
        match Marks::open(&path_of(file), create).await? {
            Some(m) => Ok(Some(self.marks.get_or_init(|| m))),
            None => Ok(None),
        }
    }

    /// Records that the data of row `mark.id` is being handed to the SMTP server, before its
    /// first octet goes out, committed at once: a sender killed from then on leaves the row
    /// marked (see [`Claimed::handed_at`](super::outbox::Claimed::handed_at)). Beside a
    /// SQLite store in the marks' database, else on the row; the sender writes its marks in
    /// groups instead ([`Store::mark_writer`], [`Store::sender_writer`]).
    pub async fn mark_handed(&self, mark: &Mark<'_>) -> Result<(), StoreError> {
        if self.marks_apart() {
            return self
                .mark_writer()
                .write(std::slice::from_ref(mark), &[])
                .await;
        }
        self.sender_writes(&[super::outbox::SenderWrite::Handed {
            id: mark.id,
            at: mark.at,
        }])
        .await
    }

    /// A writer of marks on a connection of its own, for the sender's group commit beside a
    /// SQLite store ([`Store::marks_apart`]).
    pub fn mark_writer(&self) -> MarkWriter {
        MarkWriter {
            store: self.clone(),
            conn: None,
        }
    }

    /// The live marks of claimed rows, by row: when the data began to go out and the
    /// attempt's end if it was journaled. A mark counts only for the attempt and the
    /// Message-ID the row has now.
    pub(super) async fn marks_of(
        &self,
        rows: &[(i64, i64, &str)],
    ) -> Result<HashMap<i64, (i64, Option<Recorded>)>, StoreError> {
        let mut live = HashMap::new();
        if rows.is_empty() {
            return Ok(live);
        }
        let Some(marks) = self.marks(false).await? else {
            return Ok(live);
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut found = read_marks(&marks.pool, Some(&ids)).await?;
        for &(id, attempts, message_id) in rows {
            if let Some(m) = found.remove(&id)
                && m.attempt == attempts
                && m.message_id == message_id
            {
                live.insert(id, (m.at, m.ended));
            }
        }
        Ok(live)
    }

    /// When row `id`'s data began to go to the server in an attempt whose result is not
    /// recorded on the row: its mark, wherever this store keeps it (`None`: no such attempt;
    /// a mark whose end is journaled counts).
    pub async fn handed_over_at(&self, id: i64) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64, String, Option<i64>)> =
            sqlx::query_as("SELECT attempts, message_id, handed_at FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        let Some((attempts, message_id, handed_at)) = row else {
            return Ok(None);
        };
        let apart = self.marks_of(&[(id, attempts, &message_id)]).await?;
        Ok(handed_at.or(apart.get(&id).map(|m| m.0)))
    }

    /// Removes the marks whose rows have gone on (a result recorded, the row deleted or
    /// its id used again): they are what a sender killed between recording a result and
    /// removing its mark leaves. Run at the start of each pass of the sender; the table holds
    /// only the mails in flight then, so this reads a handful of rows. How many went.
    pub async fn prune_marks(&self) -> Result<usize, StoreError> {
        let Some(marks) = self.marks(false).await? else {
            return Ok(0);
        };
        let found = read_marks(&marks.pool, None).await?;
        if found.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = found.keys().copied().collect();
        let mut conn = self.pool().acquire().await?;
        let rows = super::tickets::fetch_in(&mut conn, self.backend(), &ids, |ph| {
            format!(
                "SELECT id, attempts, message_id FROM outbox WHERE id IN ({ph}) \
                 AND state IN ('scheduled', 'temporary_failure')"
            )
        })
        .await?;
        drop(conn);
        let mut pending = HashMap::with_capacity(rows.len());
        for r in &rows {
            pending.insert(
                r.try_get::<i64, _>("id")?,
                (
                    r.try_get::<i64, _>("attempts")?,
                    r.try_get::<String, _>("message_id")?,
                ),
            );
        }
        let stale: Vec<(i64, i64)> = found
            .iter()
            .filter(|(id, m)| {
                pending.get(id).is_none_or(|(attempts, message_id)| {
                    *attempts != m.attempt || *message_id != m.message_id
                })
            })
            .map(|(id, m)| (*id, m.attempt))
            .collect();
        if !stale.is_empty() {
            sqlx::query(FORGET)
                .bind(pairs_json(&stale))
                .execute(&marks.pool)
                .await?;
        }
        Ok(stale.len())
    }
}

/// The marks of `ids` (all marks when `None`).
async fn read_marks(
    pool: &AnyPool,
    ids: Option<&[i64]>,
) -> Result<HashMap<i64, StoredMark>, StoreError> {
    const COLUMNS: &str =
        "SELECT id, attempt, message_id, at, state, attempts, error, next_at, ended_at FROM marks";
    let rows = match ids {
        Some(ids) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE id IN (SELECT value FROM json_each($1))"
            )))
            .bind(serde_json::to_string(ids).unwrap_or_default())
            .fetch_all(pool)
            .await?
        }
        None => sqlx::query(COLUMNS).fetch_all(pool).await?,
    };
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let state: Option<String> = r.try_get("state")?;
        let ended = match state {
            Some(s) => Some(Recorded {
                state: OutboxState::parse(&s).ok_or_else(|| {
                    StoreError::Internal(format!("a journaled attempt ended in state {s:?}"))
                })?,
                attempts: r.try_get("attempts")?,
                error: r.try_get("error")?,
                next_attempt_at: r.try_get("next_at")?,
                at: r.try_get("ended_at")?,
            }),
            None => None,
        };
        found.insert(
            r.try_get::<i64, _>("id")?,
            StoredMark {
                attempt: r.try_get("attempt")?,
                message_id: r.try_get("message_id")?,
                at: r.try_get("at")?,
                ended,
            },
        );
    }
    Ok(found)
}

/// The sender's group commit of marks beside a SQLite store: the marks that have come in and
/// the removal of marks whose results are recorded, in one transaction on a connection it
/// keeps for the pass. A mark's commit is on the sending path of its mail; no filing
/// transaction is ever in its way.
pub struct MarkWriter {
    store: Store,
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl MarkWriter {
    /// Writes `marks` and removes the marks of the `[id, attempt]` pairs in `forget`. After a
    /// failure the connection is given up; the next write takes another.
    pub async fn write(
        &mut self,
        marks: &[Mark<'_>],
        forget: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        if marks.is_empty() && forget.is_empty() {
            return Ok(());
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let Some(m) = self.store.marks(true).await? else {
                    return Err(StoreError::Internal(
                        "hand-over marks written beside a store that keeps them on its rows".into(),
                    ));
                };
                self.conn.insert(m.pool.acquire().await?)
            }
        };
        let written = write_marks(conn, marks, forget).await;
        if written.is_err() {
            self.conn = None;
        }
        written
    }
}

async fn write_marks(
    conn: &mut sqlx::AnyConnection,
    marks: &[Mark<'_>],
    forget: &[(i64, i64)],
) -> Result<(), StoreError> {
    match (marks.is_empty(), forget.is_empty()) {
        (false, true) => {
            sqlx::query(PUT)
                .bind(marks_json(marks))
                .execute(&mut *conn)
                .await?;
        }
        (true, false) => {
            sqlx::query(FORGET)
                .bind(pairs_json(forget))
                .execute(&mut *conn)
                .await?;
        }
        _ => {
            // A pair to forget may have its end journaled in the same batch (the end is
            // queued before the store's result, the removal after it): put first, then
            // remove. Its mark is never in the same batch: the data waits for that commit.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::query(PUT)
                .bind(marks_json(marks))
                .execute(&mut *tx)
                .await?;
            sqlx::query(FORGET)
                .bind(pairs_json(forget))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marks_live_beside_the_store_file() {
        assert_eq!(
            path_of(Path::new("/var/lib/poststelle/poststelle.sqlite")),
            Path::new("/var/lib/poststelle/poststelle.sqlite-handover")
        );
    }

    #[test]
    fn marks_and_pairs_are_bound_as_json() {
        let mark = Mark {
            id: 7,
            attempt: 2,
            message_id: "a\"b@example.test",
            at: 9,
            ended: None,
        };
        let ended = Mark {
            ended: Some(Attempt {
                state: OutboxState::TemporaryFailure,
                attempts: 3,
                error: Some("451 '); DROP TABLE marks; --"),
                next_attempt_at: 99,
                at: 11,
            }),
            ..mark.clone()
        };
        let json: serde_json::Value =
            serde_json::from_str(&marks_json(&[mark, ended])).expect("json");
        assert_eq!(
            json,
            serde_json::json!([
                {"id": 7, "attempt": 2, "message_id": "a\"b@example.test", "at": 9},
                {"id": 7, "attempt": 2, "message_id": "a\"b@example.test", "at": 9,
                 "state": "temporary_failure", "attempts": 3,
                 "error": "451 '); DROP TABLE marks; --", "next_at": 99, "ended_at": 11}
            ])
        );
        assert_eq!(pairs_json(&[(7, 2), (8, 0)]), "[[7,2],[8,0]]");
    }
}
