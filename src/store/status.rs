//! Status notices (issue 17, item 4): what a notice names of its ticket, and the columns that
//! make the periodic update and the pending reminder go out once per due time — a conditional
//! UPDATE is the claim, so two instances or a restart never send one twice.
use sqlx::{AnyConnection, FromRow};

use super::{Store, StoreError};

/// What a status notice needs of its ticket.
#[derive(Debug, Clone, FromRow)]
pub struct NoticeFacts {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub queue: String,
    pub severity: i64,
    pub state: String,
    pub requester: String,
    pub requester_name: Option<String>,
    /// Why the requester never gets notices; `None`: they do.
    pub requester_no_notice: Option<String>,
    pub created_at: i64,
    pub assignee: Option<String>,
    pub pending_until: Option<i64>,
    pub update_due_at: Option<i64>,
}

pub(super) const NOTICE_FACTS: &str = "SELECT id, number, subject, queue, severity, state, requester, requester_name, \
     requester_no_notice, created_at, assignee, pending_until, update_due_at \
     FROM tickets WHERE id = $1";

pub async fn notice_facts(conn: &mut AnyConnection, id: i64) -> Result<NoticeFacts, StoreError> {
    Ok(sqlx::query_as(NOTICE_FACTS)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?)
}

pub(super) const TAKE_IF_NEW: &str =
    "UPDATE tickets SET state = 'open', updated_at = $1 WHERE id = $2 AND state = 'new'";

/// A new ticket becomes open (a relayed answer takes it); whether it was new.
pub async fn take_if_new(conn: &mut AnyConnection, id: i64, at: i64) -> Result<bool, StoreError> {
    let n = sqlx::query(TAKE_IF_NEW)
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Sets when the ticket's next periodic update is due (`None`: none is).
pub async fn set_update_due(
    conn: &mut AnyConnection,
    id: i64,
    due: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET update_due_at = $1 WHERE id = $2")
        .bind(due)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) const DUE_UPDATES: &str = "SELECT id, update_due_at FROM tickets WHERE update_due_at <= $1 AND state = 'open' \
     AND severity IN (1, 2) ORDER BY update_due_at, id";

/// Open class-1 and class-2 tickets whose periodic update is due at `now`: (id, due).
pub async fn due_updates(store: &Store, now: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(DUE_UPDATES)
        .bind(now)
        .fetch_all(store.pool())
        .await?)
}

pub(super) const CLAIM_UPDATE: &str = "UPDATE tickets SET update_due_at = $1 WHERE id = $2 AND update_due_at = $3 \
     AND state = 'open'";

/// Moves a due update from `due` to `next`; `false` when another instance (or an earlier
/// round) did so first, or the ticket is no longer open.
pub async fn claim_update(
    conn: &mut AnyConnection,
    id: i64,
    due: i64,
    next: Option<i64>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(CLAIM_UPDATE)
        .bind(next)
        .bind(id)
        .bind(due)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub(super) const DUE_REMINDERS: &str = "SELECT id, pending_until FROM tickets WHERE pending_until <= $1 AND state = 'pending' \
     AND (reminded_until IS NULL OR reminded_until <> pending_until) \
     ORDER BY pending_until, id";

/// Pending tickets whose time to wait until has come and whose reminder for that time has not
/// gone out: (id, pending_until).
pub async fn due_reminders(store: &Store, now: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(DUE_REMINDERS)
        .bind(now)
        .fetch_all(store.pool())
        .await?)
}

pub(super) const CLAIM_REMINDER: &str = "UPDATE tickets SET reminded_until = pending_until WHERE id = $1 AND state = 'pending' \
     AND pending_until = $2 AND (reminded_until IS NULL OR reminded_until <> pending_until)";

/// Records that the reminder for `until` goes out; `false` when it already did.
pub async fn claim_reminder(
    conn: &mut AnyConnection,
    id: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(CLAIM_REMINDER)
        .bind(id)
        .bind(until)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub(super) const LATEST_PUBLIC_ANSWER: &str = "SELECT body_text, created_at FROM outbox WHERE ticket_id = $1 AND kind = $2 \
     ORDER BY id DESC LIMIT 1";

/// The text and time of the latest staff answer relayed to the requester.
pub async fn latest_public_answer(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(LATEST_PUBLIC_ANSWER)
        .bind(id)
        .bind(super::relay::KIND)
        .fetch_optional(&mut *conn)
        .await?)
}

pub(super) const RESOLVED_BEFORE: &str =
    "SELECT id, number FROM tickets WHERE state = 'resolved' AND closed_at <= $1 ORDER BY id";

/// Resolved tickets resolved at or before `cutoff`, to be closed: (id, number).
pub async fn resolved_before(store: &Store, cutoff: i64) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(sqlx::query_as(RESOLVED_BEFORE)
        .bind(cutoff)
        .fetch_all(store.pool())
        .await?)
}

pub(super) const CLOSE_RESOLVED: &str = "UPDATE tickets SET state = 'closed', updated_at = $1, update_due_at = NULL \
     WHERE id = $2 AND state = 'resolved' AND closed_at <= $3";

/// Closes a ticket still resolved since `cutoff` or before; whether it was.
pub async fn close_resolved(
    conn: &mut AnyConnection,
    id: i64,
    cutoff: i64,
    at: i64,
) -> Result<bool, StoreError> {
    // closed_at stays the time it was resolved: the reopen window counts from then.
    let n = sqlx::query(CLOSE_RESOLVED)
        .bind(at)
        .bind(id)
        .bind(cutoff)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}
