//! Data subject requests (issue 20, item 2): the SQL that finds everything stored about one
//! address and that erases it. `jobs::privacy` decides what is exported, deleted and replaced.
//!
//! An address is matched without regard to ASCII case (`crate::redact::needle`), in every text
//! column of the schema — read from the database's own catalogue, so that a column added later
//! is searched without anyone remembering to add it here — and in the bytes of raw mail.
use sqlx::{AnyConnection, FromRow, Row};

use super::retention::{FINAL_STATES, numbered};
use super::{Backend, Store, StoreError};

/// A text column of a table keyed by `id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TextColumn {
    pub table: String,
    pub column: String,
}

/// Tables poststelle keeps for itself (sqlx's record of migrations).
fn ours(table: &str) -> bool {
    !table.starts_with("_sqlx") && !table.starts_with("sqlite_")
}

/// A name from the catalogue as it may be written into SQL: poststelle's schema names are
/// lower-case words; anything else is left alone rather than quoted.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Every (table, column, type, table has `id`) of text or bytes in the schema.
async fn catalogue(store: &Store) -> Result<Vec<(String, String, bool, bool)>, StoreError> {
    let rows: Vec<(String, String, String)> = match store.backend() {
        Backend::Sqlite => {
            sqlx::query_as(
                "SELECT m.name, p.name, upper(p.type) FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY m.name, p.cid",
            )
            .fetch_all(store.pool())
            .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT), \
                 CAST(upper(data_type) AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
            )
            .fetch_all(store.pool())
            .await?
        }
    };
    let with_id: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|(_, c, _)| c == "id")
        .map(|(t, _, _)| t.as_str())
        .collect();
    Ok(rows
        .iter()
        .filter(|(t, c, ty)| {
            ours(t) && plain(t) && plain(c) && matches!(ty.as_str(), "TEXT" | "BLOB" | "BYTEA")
        })
        .map(|(t, c, ty)| {
            let blob = ty != "TEXT";
            (t.clone(), c.clone(), blob, with_id.contains(t.as_str()))
        })
        .collect())
}

/// The text columns of tables keyed by `id`: where an address is searched and replaced.
pub async fn text_columns(store: &Store) -> Result<Vec<TextColumn>, StoreError> {
    Ok(catalogue(store)
        .await?
        .into_iter()
        .filter(|(_, _, blob, id)| *id && !blob)
        .map(|(table, column, _, _)| TextColumn { table, column })
        .collect())
}

/// Text and byte columns the generic search cannot reach (tables without `id`, bytes other
/// than raw mail): each must be handled by name ([`KEYLESS_HANDLED`]) or hold nothing from
/// people ([`KEYLESS_NOTHING_PERSONAL`]); a test holds the schema to that.
pub async fn unreachable_columns(store: &Store) -> Result<Vec<TextColumn>, StoreError> {
    Ok(catalogue(store)
        .await?
        .into_iter()
        .filter(|(t, c, blob, id)| !id || (*blob && !(t == "raw_messages" && c == "bytes")))
        .map(|(table, column, _, _)| TextColumn { table, column })
        .collect())
}

/// Columns of tables without `id` that `privacy erase` handles by name. SQLite's middle and
/// big tiers of Message-IDs follow `articles.message_id`, which the search reaches, by the
/// triggers of migrations/sqlite/0026_message_id_middle_tier.sql.
pub const KEYLESS_HANDLED: &[(&str, &str)] = &[
    ("participants", "address"),
    ("ticket_sla", "reacted_by"),
    ("message_ids", "message_id"),
    ("message_ids_middle", "message_id"),
];

/// Columns of tables without `id` that hold only poststelle's own names and keys.
pub const KEYLESS_NOTHING_PERSONAL: &[(&str, &str)] = &[
    ("participants", "role"),
    ("ticket_counters", "day"),
    ("ticket_sla", "calendar"),
    ("sla_escalations", "kind"),
    ("sla_escalations", "message_id"),
    ("mailbox_state", "mailbox"),
    ("leases", "name"),
    ("leases", "holder"),
    ("incident_tickets", "linked_by"),
    ("job_runs", "name"),
    ("job_runs", "summary"),
];

/// `column` contains `$1` (lower-cased), in this backend's words.
fn contains(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!("instr(lower({column}), $1) > 0"),
        Backend::Postgres => format!("strpos(lower({column}), $1) > 0"),
    }
}

/// Rows of `col` whose text contains `needle` (lower-cased): (id, text).
pub async fn find_text(
    store: &Store,
    col: &TextColumn,
    needle: &str,
) -> Result<Vec<(i64, String)>, StoreError> {
    let sql = format!(
        "SELECT id, {c} AS v FROM {t} WHERE {c} IS NOT NULL AND {w} ORDER BY id",
        c = col.column,
        t = col.table,
        w = contains(store.backend(), &col.column)
    );
    // Table and column names come from the schema's catalogue and are plain words.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(needle)
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((r.try_get("id")?, r.try_get("v")?));
    }
    Ok(out)
}

/// Writes `new` where the row still holds `old` (another writer may have changed it since it
/// was read); whether it did.
pub async fn replace_text(
    conn: &mut AnyConnection,
    col: &TextColumn,
    id: i64,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {t} SET {c} = $1 WHERE id = $2 AND {c} = $3",
        t = col.table,
        c = col.column
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A raw mail whose bytes contain the address.
#[derive(Debug, Clone, FromRow)]
pub struct RawHit {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub outcome: String,
    pub received_at: i64,
}

/// `needle` as PostgreSQL's `encode(bytes, 'escape')` writes it: the search there runs on
/// that text, which any bytes (NUL, invalid UTF-8) can be turned into.
fn escape_encoded(needle: &str) -> String {
    let mut out = String::new();
    for b in needle.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            1..=0x7f => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

/// Raw mail whose bytes contain `needle` (ASCII case ignored; bytes deleted already are
/// empty and never match).
pub async fn raw_containing(store: &Store, needle: &str) -> Result<Vec<RawHit>, StoreError> {
    let (cond, value) = match store.backend() {
        // lower() takes the bytes as they are, NUL and invalid UTF-8 included.
        Backend::Sqlite => ("instr(lower(bytes), $1) > 0", needle.to_string()),
        Backend::Postgres => (
            "strpos(lower(encode(bytes, 'escape')), $1) > 0",
            escape_encoded(needle),
        ),
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, ticket_id, outcome, received_at FROM raw_messages WHERE {cond} ORDER BY id"
    )))
    .bind(value)
    .fetch_all(store.pool())
    .await?)
}

/// Replaces the bytes of raw mail `id` where they are still `old`; whether it did.
pub async fn replace_raw(
    conn: &mut AnyConnection,
    id: i64,
    old: &[u8],
    new: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE raw_messages SET bytes = $1 WHERE id = $2 AND bytes = $3")
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A ticket the address is part of, as the export shows it.
#[derive(Debug, Clone, FromRow)]
pub struct TicketRecord {
    pub id: i64,
    pub number: String,
    pub queue: String,
    pub state: String,
    pub severity: i64,
    pub category: Option<String>,
    pub subject: String,
    pub requester: String,
    pub requester_name: Option<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    /// requester | cc | sender (wrote an article on it)
    pub role: String,
}

/// Tickets whose requester, participant or an article's sender is the address (lower-cased),
/// one row per ticket and role.
pub async fn tickets_of(store: &Store, needle: &str) -> Result<Vec<TicketRecord>, StoreError> {
    const COLS: &str = "t.id, t.number, t.queue, t.state, t.severity, t.category, t.subject, \
                        t.requester, t.requester_name, t.created_at, t.closed_at";
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, 'requester' AS role FROM tickets t WHERE lower(t.requester) = $1 \
         UNION SELECT {COLS}, p.role AS role FROM participants p JOIN tickets t ON t.id = p.ticket_id \
         WHERE lower(p.address) = $1 \
         UNION SELECT {COLS}, 'sender' AS role FROM articles a JOIN tickets t ON t.id = a.ticket_id \
         WHERE lower(a.sender) = $1 ORDER BY 1"
    )))
    .bind(needle)
    .fetch_all(store.pool())
    .await?)
}

/// An article as the export shows it.
#[derive(Debug, Clone, FromRow)]
pub struct ArticleRecord {
    pub id: i64,
    pub kind: String,
    pub message_id: Option<String>,
    pub raw_message_id: Option<i64>,
    pub sender: Option<String>,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

pub async fn articles(store: &Store, ticket_id: i64) -> Result<Vec<ArticleRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, kind, message_id, raw_message_id, sender, subject, body, created_at \
         FROM articles WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(store.pool())
    .await?)
}

/// An attachment's record: (article id, name, content type, size).
pub async fn attachments(
    store: &Store,
    ticket_id: i64,
) -> Result<Vec<(i64, Option<String>, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT x.article_id, x.name, x.content_type, x.size FROM attachments x \
         JOIN articles a ON a.id = x.article_id WHERE a.ticket_id = $1 ORDER BY x.id",
    )
    .bind(ticket_id)
    .fetch_all(store.pool())
    .await?)
}

/// Raw mail of a ticket (by its own ticket or an article's): (id, bytes, received at,
/// outcome).
pub async fn raw_of_ticket(
    store: &Store,
    ticket_id: i64,
) -> Result<Vec<(i64, Vec<u8>, i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, bytes, received_at, outcome FROM raw_messages WHERE ticket_id = $1 \
         OR id IN (SELECT raw_message_id FROM articles WHERE ticket_id = $1) ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(store.pool())
    .await?)
}

/// One raw mail: (bytes, received at, outcome).
pub async fn raw_record(
    store: &Store,
    id: i64,
) -> Result<Option<(Vec<u8>, i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT bytes, received_at, outcome FROM raw_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// An outgoing mail as the export shows it; a notice's text is its announcement's.
#[derive(Debug, Clone, FromRow)]
pub struct MailRecord {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub cc: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub state: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub message_id: String,
}

const MAIL_COLUMNS: &str = "o.id, o.ticket_id, o.kind, o.recipient, o.cc, o.subject, \
     COALESCE(b.body_text, o.body_text) AS body_text, o.state, o.created_at, o.sent_at, o.message_id";

pub async fn mail_of_ticket(store: &Store, ticket_id: i64) -> Result<Vec<MailRecord>, StoreError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MAIL_COLUMNS} FROM outbox o LEFT JOIN announcement_bodies b ON b.id = o.body_id \
         WHERE o.ticket_id = $1 ORDER BY o.id"
    )))
    .bind(ticket_id)
    .fetch_all(store.pool())
    .await?)
}

/// Mail to the address (recipient or Cc), on any ticket or none.
pub async fn mail_to(store: &Store, needle: &str) -> Result<Vec<MailRecord>, StoreError> {
    let cc = contains(store.backend(), "o.cc");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MAIL_COLUMNS} FROM outbox o LEFT JOIN announcement_bodies b ON b.id = o.body_id \
         WHERE lower(o.recipient) = $1 OR (o.cc IS NOT NULL AND {cc}) ORDER BY o.id"
    )))
    .bind(needle)
    .fetch_all(store.pool())
    .await?)
}

/// A list membership of the address.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipRecord {
    pub id: i64,
    pub list: String,
    pub address: String,
    pub name: String,
    pub role: String,
    pub organisation: String,
    pub language: String,
    pub bounces: i64,
    pub flagged_at: Option<i64>,
    pub unsubscribed_at: Option<i64>,
    pub added_at: i64,
}

pub async fn memberships(store: &Store, needle: &str) -> Result<Vec<MembershipRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.id, l.name AS list, m.address, m.name, m.role, m.organisation, m.language, \
         m.bounces, m.flagged_at, m.unsubscribed_at, m.added_at FROM list_members m \
         JOIN lists l ON l.id = m.list_id WHERE lower(m.address_key) = $1 ORDER BY l.name",
    )
    .bind(needle)
    .fetch_all(store.pool())
    .await?)
}

/// An audit line naming the address.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub ticket_id: Option<i64>,
    pub actor: String,
    pub event: String,
    pub detail: String,
}

pub async fn audit_naming(store: &Store, needle: &str) -> Result<Vec<AuditRecord>, StoreError> {
    let w = contains(store.backend(), "detail");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, at, ticket_id, actor, event, detail FROM audit WHERE {w} ORDER BY id"
    )))
    .bind(needle)
    .fetch_all(store.pool())
    .await?)
}

pub async fn audit_of_ticket(
    store: &Store,
    ticket_id: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, at, ticket_id, actor, event, detail FROM audit WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(store.pool())
    .await?)
}

/// Deletes the address's list memberships; the names of the lists it was on.
pub async fn delete_memberships(
    conn: &mut AnyConnection,
    needle: &str,
) -> Result<Vec<String>, StoreError> {
    let lists: Vec<String> = sqlx::query_scalar(
        "SELECT l.name FROM list_members m JOIN lists l ON l.id = m.list_id \
         WHERE lower(m.address_key) = $1 ORDER BY l.name",
    )
    .bind(needle)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM list_members WHERE lower(address_key) = $1")
        .bind(needle)
        .execute(&mut *conn)
        .await?;
    Ok(lists)
}

/// Deletes the address as a participant of any ticket; how many rows.
pub async fn delete_participants(
    conn: &mut AnyConnection,
    needle: &str,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM participants WHERE lower(address) = $1")
            .bind(needle)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

/// The reaction clocks naming the address as who reacted forget it.
pub async fn forget_reactor(conn: &mut AnyConnection, needle: &str) -> Result<u64, StoreError> {
    let w = contains(Backend::of(conn), "reacted_by");
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE ticket_sla SET reacted_by = NULL WHERE reacted_by IS NOT NULL AND {w}"
    )))
    .bind(needle)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Mail to the address that is still to be sent is not sent: suppressed, with the reason.
pub async fn suppress_mail_to(
    conn: &mut AnyConnection,
    needle: &str,
    why: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(concat!(
        "UPDATE outbox SET state = 'suppressed', last_error = $2, claimed_until = NULL, \
             claimed_by = NULL WHERE lower(recipient) = $1 AND id IN (",
        pending_outbox_ids!(),
        ")",
    ))
    .bind(needle)
    .bind(why)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Finished mail to the address (as recipient) loses its texts, and its recipient becomes
/// `anonymous`; the ids.
pub async fn anonymise_mail_to(
    conn: &mut AnyConnection,
    needle: &str,
    anonymous: &str,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM outbox WHERE lower(recipient) = $1 AND state IN {FINAL_STATES} ORDER BY id"
    )))
    .bind(needle)
    .fetch_all(&mut *conn)
    .await?;
    for chunk in ids.chunks(super::MAX_PARAMS - 3) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET recipient = $1, subject = '', body_text = '', body_html = NULL, \
             ical = NULL, last_error = NULL, bounce_reason = NULL, \
             purged_at = COALESCE(purged_at, $2) WHERE id IN ({})",
            numbered(3, chunk.len())
        )))
        .persistent(false)
        .bind(anonymous)
        .bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(ids)
}

/// Ticket ids of the tickets whose requester is the address.
pub async fn requested_by(store: &Store, needle: &str) -> Result<Vec<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tickets WHERE lower(requester) = $1 ORDER BY id")
            .bind(needle)
            .fetch_all(store.pool())
            .await?,
    )
}

/// Raw mail ids of articles: (article id, raw mail id) for the articles `ids`.
pub async fn raw_of_articles(store: &Store, table_ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::new();
    for chunk in table_ids.chunks(super::MAX_PARAMS) {
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT raw_message_id FROM articles WHERE raw_message_id IS NOT NULL AND id IN ({})",
            numbered(1, chunk.len())
        )))
        .persistent(false);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(store.pool()).await?);
    }
    Ok(out)
}

/// The ticket an article belongs to.
pub async fn article_ticket(store: &Store, article: i64) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT ticket_id FROM articles WHERE id = $1")
            .bind(article)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// A ticket's number.
pub async fn ticket_number(store: &Store, ticket: i64) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT number FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// Mail of the tickets `ids` still to be sent is not sent: suppressed, with the reason; how
/// many.
pub async fn suppress_mail_of_tickets(
    conn: &mut AnyConnection,
    ids: &[i64],
    why: &str,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for chunk in ids.chunks(super::MAX_PARAMS - 1) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET state = 'suppressed', last_error = $1, claimed_until = NULL, \
             claimed_by = NULL WHERE state IN ('scheduled', 'temporary_failure') \
             AND ticket_id IN ({})",
            numbered(2, chunk.len())
        )))
        .persistent(false)
        .bind(why);
        for id in chunk {
            q = q.bind(*id);
        }
        n += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}
