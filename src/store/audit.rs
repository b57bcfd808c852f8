//! The audit log: one line per change, with its time, actor and a JSON detail. Lines are
//! written with the batch of the change they record.
use sqlx::FromRow;

use super::buffer::{Val, WriteBuffer};
use super::{Store, StoreError};

/// One line to write.
#[derive(Debug, Clone)]
pub struct AuditLine<'a> {
    pub at: i64,
    pub ticket_id: Option<i64>,
    pub raw_message_id: Option<i64>,
    pub actor: &'a str,
    pub event: &'a str,
    pub detail: &'a serde_json::Value,
}

impl WriteBuffer {
    pub fn audit(&mut self, l: AuditLine<'_>) {
        self.push(
            "audit",
            &[
                "at",
                "ticket_id",
                "raw_message_id",
                "actor",
                "event",
                "detail",
            ],
            vec![
                Val::Int(l.at),
                Val::OptInt(l.ticket_id),
                Val::OptInt(l.raw_message_id),
                Val::Text(l.actor.to_string()),
                Val::Text(l.event.to_string()),
                Val::Text(l.detail.to_string()),
            ],
        );
    }
}

/// A line as stored.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub detail: String,
}

impl Store {
    /// A ticket's audit trail, oldest first.
    pub async fn audit_of(&self, ticket_id: i64) -> Result<Vec<AuditRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, actor, event, detail FROM audit WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(self.pool())
        .await?)
    }
}

/// Writes one line of the audit log with the batch in `buf`.
pub fn audit(
    buf: &mut WriteBuffer,
    at: i64,
    ticket_id: Option<i64>,
    raw_message_id: Option<i64>,
    actor: &str,
    event: &str,
    detail: &serde_json::Value,
) {
    buf.audit(AuditLine {
        at,
        ticket_id,
        raw_message_id,
        actor,
        event,
        detail,
    });
}
