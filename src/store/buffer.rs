//! Rows that nothing reads back before the transaction commits (audit lines, participants,
//! outgoing mail and its articles) are gathered here and written with one multi-row INSERT per
//! table, instead of one round trip per row: per-statement latency, not the database's work,
//! dominates filing a message.
use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use super::{Backend, StoreError};

/// One value of a buffered row.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

#[derive(Debug)]
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Val>>,
}

/// Both backends take at least 32,766 bound parameters per statement; stay well below.
const MAX_PARAMS: usize = 16_000;

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
    pub fn push(&mut self, table: &'static str, columns: &'static [&'static str], row: Vec<Val>) {
        debug_assert_eq!(columns.len(), row.len());
        match self.tables.iter_mut().find(|t| t.name == table) {
            Some(t) => t.rows.push(row),
            None => self.tables.push(Table {
                name: table,
                columns,
                rows: vec![row],
            }),
        }
    }

    /// Writes every buffered row in the caller's transaction.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<(), StoreError> {
        for table in self.tables.drain(..) {
            let per_statement = (MAX_PARAMS / table.columns.len()).max(1);
            for chunk in table.rows.chunks(per_statement) {
                let mut sql = format!(
                    "INSERT INTO {} ({}) VALUES ",
                    table.name,
                    table.columns.join(", ")
                );
                let mut n = 0;
                for (r, row) in chunk.iter().enumerate() {
                    if r > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    for c in 0..row.len() {
                        n += 1;
                        if c > 0 {
                            sql.push_str(", ");
                        }
                        // sqlx looks `$n` up by name in SQLite, which is quadratic in the number
                        // of parameters; `?` binds by position.
                        match backend {
                            Backend::Sqlite => sql.push('?'),
                            Backend::Postgres => sql.push_str(&format!("${n}")),
                        }
                    }
                    sql.push(')');
                }
                if table.name == "participants" {
                    sql.push_str(" ON CONFLICT DO NOTHING");
                }
                // Table and column names are compile-time constants; values are bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in chunk {
                    for v in row {
                        q = match v {
                            Val::Int(i) => q.bind(*i),
                            Val::OptInt(i) => q.bind(*i),
                            Val::Text(s) => q.bind(s.clone()),
                            Val::OptText(s) => q.bind(s.clone()),
                        };
                    }
                }
                q.execute(&mut *conn).await?;
            }
        }
        self.participants.clear();
        self.auto_replies.clear();
        Ok(())
    }
}
