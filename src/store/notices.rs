//! What comes back about notices to distribution lists (issue 16, item 6): the outbox row a
//! bounce or an unsubscribe mail names, a bounce recorded on it once, the member's bounce
//! state after counting, and the audit lines of these decisions. Counting itself is
//! `lists::record_bounce`, unsubscribing `lists::unsubscribe_reached`; the decisions are
//! made in `crate::ticket::notices`.
use sqlx::{AnyConnection, FromRow};

use super::audit::audit;
use super::buffer::WriteBuffer;
use super::{Backend, StoreError, placeholders};
use crate::lists::address_key;

/// An outbox row a token or a returned Message-ID named.
#[derive(Debug, Clone, FromRow)]
pub struct SentMail {
    pub id: i64,
    pub message_id: String,
    pub recipient: String,
    pub kind: String,
    pub announcement_id: Option<i64>,
    /// The `List-Id` the mail carried: set on notices to distribution lists only.
    pub list_id: Option<String>,
    pub state: String,
    pub bounced_at: Option<i64>,
}

impl SentMail {
    /// A notice to a distribution list: the only mail whose bounces count for a member.
    pub fn is_notice(&self) -> bool {
        self.list_id.is_some()
    }

    /// The list the notice was sent for: `List-Id` is `<name> <name.<domain>>`.
    pub fn list(&self) -> Option<&str> {
        let id = self.list_id.as_deref()?.trim();
        let name = id.split_once(' ').map_or(id, |(n, _)| n);
        (!name.is_empty()).then_some(name)
    }
}

/// The first outbox row, in the order of `message_ids`, with one of these Message-IDs.
pub async fn find_sent(
    conn: &mut AnyConnection,
    message_ids: &[String],
) -> Result<Option<SentMail>, StoreError> {
    if message_ids.is_empty() {
        return Ok(None);
    }
    let backend = Backend::of(conn);
    let ids = &message_ids[..message_ids.len().min(50)];
    let sql = format!(
        "SELECT id, message_id, recipient, kind, announcement_id, list_id, state, bounced_at \
         FROM outbox WHERE message_id IN ({})",
        placeholders(backend, 1, ids.len())
    );
    let mut q = sqlx::query_as::<_, SentMail>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    Ok(ids
        .iter()
        .find_map(|id| rows.iter().find(|r| &r.message_id == id))
        .cloned())
}

/// Records that the mail `id` bounced, unless a bounce was recorded already; whether this
/// call recorded it. The condition in the statement makes two instances filing two reports of
/// one mail at once count it once: PostgreSQL's second UPDATE waits for the first's row lock
/// and then finds `bounced_at` set.
pub async fn mark_bounced(
    conn: &mut AnyConnection,
    id: i64,
    at: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET bounced_at = $1, bounce_reason = $2 WHERE id = $3 AND bounced_at IS NULL",
    )
    .bind(at)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// A member's bounce state over all its memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BounceState {
    /// Memberships the address has.
    pub memberships: i64,
    /// The most bounces one of them has.
    pub bounces: i64,
    /// When the first of them was flagged.
    pub flagged_at: Option<i64>,
}

pub async fn bounce_state(
    conn: &mut AnyConnection,
    address: &str,
) -> Result<BounceState, StoreError> {
    let (memberships, bounces, flagged_at): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MAX(bounces), MIN(flagged_at) FROM list_members WHERE address_key = $1",
    )
    .bind(address_key(address))
    .fetch_one(&mut *conn)
    .await?;
    Ok(BounceState {
        memberships,
        bounces: bounces.unwrap_or(0),
        flagged_at,
    })
}

/// Mails of an announcement that bounced (for `announcements status`).
pub async fn bounced(conn: &mut AnyConnection, announcement_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE announcement_id = $1 AND bounced_at IS NOT NULL",
    )
    .bind(announcement_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// The stored raw message of a source key, filed in this transaction or before.
pub async fn raw_message_id(
    conn: &mut AnyConnection,
    source_key: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM raw_messages WHERE source_key = $1")
            .bind(source_key)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// One ticket-less audit line about a mail that came back, pointing at its raw message.
pub async fn audit_line(
    conn: &mut AnyConnection,
    at: i64,
    raw_message_id: Option<i64>,
    event: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    let backend = Backend::of(conn);
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        None,
        raw_message_id,
        "poststelle",
        event,
        detail,
    );
    buf.flush(conn, backend).await
}

/// The list and the recipient of the notice with `message_id`, if it is one to a list (for
/// the confirmation page of a one-click unsubscribe link).
pub async fn sent_notice(
    store: &super::Store,
    message_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let sent = find_sent(&mut conn, &[message_id.to_string()]).await?;
    Ok(sent.and_then(|s| Some((s.list()?.to_string(), s.recipient))))
}
