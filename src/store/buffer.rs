//! Rows that nothing reads back before the transaction commits (raw messages, tickets,
//! articles, audit lines, participants, outgoing mail) are gathered here and written with one
//! multi-row INSERT per table, instead of one round trip per row: per-statement latency, not
//! the database's work, dominates filing a message.
use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use super::{Backend, MAX_PARAMS, StoreError, placeholders};

/// One value of a buffered row.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Blob(Vec<u8>),
}

#[derive(Debug)]
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Val>>,
}

impl Table {
    /// Rows that bring their own id go before rows of the same table that take the next free
    /// one: on SQLite "next free" is MAX(id) + 1, which would take an id reserved for them.
    fn has_id(&self) -> bool {
        self.columns.first() == Some(&"id")
    }
}

/// Parents before children: foreign keys are checked at the end of each statement, so a row
/// must not be written before the row it references. Tables not named here come last, in the
/// order they were first pushed.
const TABLE_ORDER: [&str; 7] = [
    "raw_messages",
    "tickets",
    "articles",
    "attachments",
    "participants",
    "outbox",
    "audit",
];

/// Rows waiting for [`WriteBuffer::flush`], plus what the filing logic must see of them before.
#[derive(Debug, Default)]
pub struct WriteBuffer {
    tables: Vec<Table>,
    /// (ticket id, address) of participants not yet written.
    pub participants: HashSet<(i64, String)>,
    /// Automatic replies not yet written, by recipient: the loop brake counts them too.
    pub auto_replies: HashMap<String, i64>,
}

impl WriteBuffer {
    /// Buffers one row. Rows of one table with the same columns are written together, in the
    /// order they were pushed.
    pub(super) fn push(
        &mut self,
        table: &'static str,
        columns: &'static [&'static str],
        row: Vec<Val>,
    ) {
        debug_assert_eq!(columns.len(), row.len());
        match self
            .tables
            .iter_mut()
            .find(|t| t.name == table && t.columns == columns)
        {
            Some(t) => t.rows.push(row),
            None => self.tables.push(Table {
                name: table,
                columns,
                rows: vec![row],
            }),
        }
    }

    /// Takes the rows buffered so far, to be written while more are buffered. What the
    /// filing logic sees of them ([`WriteBuffer::participants`], [`WriteBuffer::auto_replies`])
    /// stays until [`WriteBuffer::flush`].
    pub fn take_rows(&mut self) -> Rows {
        Rows {
            tables: std::mem::take(&mut self.tables),
        }
    }

    /// Writes every buffered row in the caller's transaction.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<(), StoreError> {
        self.take_rows().write(conn, backend).await?;
        self.participants.clear();
        self.auto_replies.clear();
        Ok(())
    }
}

/// Rows taken from a [`WriteBuffer`].
#[derive(Debug, Default)]
pub struct Rows {
    tables: Vec<Table>,
}

impl Rows {
    /// Writes the rows in the caller's transaction, parents before children.
    pub async fn write(self, conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
        let mut tables = self.tables;
        // A stable sort keeps push order among tables of equal rank.
        tables.sort_by_key(|t| {
            let rank = TABLE_ORDER
                .iter()
                .position(|n| *n == t.name)
                .unwrap_or(TABLE_ORDER.len());
            (rank, !t.has_id())
        });
        for table in tables {
            insert_rows(conn, backend, table).await?;
        }
        Ok(())
    }
}

/// INSERTs of at least this many rows are kept prepared.
const KEEP_PREPARED: usize = 16;

async fn insert_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    table: Table,
) -> Result<(), StoreError> {
    let width = table.columns.len();
    let per_statement = (MAX_PARAMS / width).max(1);
    let mut left = table.rows.len();
    let mut rows = table.rows.into_iter();
    while left > 0 {
        // Row counts are powers of two, so that a few statement texts per table recur and
        // stay prepared; preparing a 64-row INSERT anew each time took a twentieth of the
        // daemon's CPU.
        let n = 1 << left.min(per_statement).ilog2();
        left -= n;
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(n).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            table.name,
            table.columns.join(", ")
        );
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&placeholders(backend, r * width + 1, width));
            sql.push(')');
        }
        if table.name == "participants" {
            sql.push_str(" ON CONFLICT DO NOTHING");
        }
        // Table and column names are compile-time constants; values are bound. Statements of
        // a few rows are cheap to prepare and not kept.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(n >= KEEP_PREPARED);
        // Moved, not copied: sqlx's `Any` arguments own their values.
        for v in chunk.into_iter().flatten() {
            q = match v {
                Val::Int(i) => q.bind(i),
                Val::OptInt(i) => q.bind(i),
                Val::Text(s) => q.bind(s),
                Val::OptText(s) => q.bind(s),
                Val::Blob(b) => q.bind(b),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
