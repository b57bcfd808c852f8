//! Staff's basic operations and the read side: list and show tickets, change state, class and
//! queue, add notes; list the outbox and quarantine. Every change is audited with its time.
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use super::State;
use super::clock as sla;
use super::ingest::audit;
use crate::config::Config;
use crate::store::buffer::WriteBuffer;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub number: String,
    pub state: String,
    pub queue: String,
    pub severity: i64,
    pub subject: String,
    pub requester: String,
    pub articles: i64,
    /// RFC 3339, UTC.
    pub created: String,
    pub linked_to: Option<String>,
}

fn rfc3339(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub async fn list_tickets(
    store: &Store,
    state: Option<&str>,
    queue: Option<&str>,
) -> Result<Vec<TicketSummary>, StoreError> {
    select_tickets(store, state, queue, None).await
}

/// Tickets by state, queue and number (each filter optional).
async fn select_tickets(
    store: &Store,
    state: Option<&str>,
    queue: Option<&str>,
    number: Option<&str>,
) -> Result<Vec<TicketSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.number, t.state, t.queue, t.severity, t.subject, t.requester, \
         (SELECT COUNT(*) FROM articles a WHERE a.ticket_id = t.id), t.created_at, l.number \
         FROM tickets t LEFT JOIN tickets l ON l.id = t.linked_ticket_id \
         WHERE ($1 IS NULL OR t.state = $1) AND ($2 IS NULL OR t.queue = $2) \
         AND ($3 IS NULL OR t.number = $3) ORDER BY t.id",
    )
    .bind(state)
    .bind(queue)
    .bind(number)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TicketSummary {
                number: r.try_get(0)?,
                state: r.try_get(1)?,
                queue: r.try_get(2)?,
                severity: r.try_get(3)?,
                subject: r.try_get(4)?,
                requester: r.try_get(5)?,
                articles: r.try_get(6)?,
                created: rfc3339(r.try_get(7)?),
                linked_to: r.try_get(8)?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleView {
    pub kind: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub body: String,
    pub created: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    pub id: i64,
    pub ticket: Option<String>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt: String,
    pub last_error: Option<String>,
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub event: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    #[serde(flatten)]
    pub summary: TicketSummary,
    pub category: Option<String>,
    pub articles: Vec<ArticleView>,
    pub outbox: Vec<OutboxView>,
    pub audit: Vec<AuditView>,
    /// The reaction clock; `None` for tickets opened before deadlines existed.
    pub sla: Option<sla::SlaView>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("no ticket {0}")]
    NoTicket(String),
    #[error("no outbox row {0}")]
    NoOutboxRow(i64),
    #[error("no quarantined message {0}")]
    NoQuarantined(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OpsError {
    fn from(e: sqlx::Error) -> Self {
        OpsError::Store(e.into())
    }
}

async fn ticket_id(store: &Store, number: &str) -> Result<i64, OpsError> {
    sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
        .bind(number)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| OpsError::NoTicket(number.to_string()))
}

pub async fn show_ticket(store: &Store, number: &str) -> Result<TicketView, OpsError> {
    let id = ticket_id(store, number).await?;
    let summary = select_tickets(store, None, None, Some(number))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| OpsError::NoTicket(number.to_string()))?;
    let category: Option<String> = sqlx::query_scalar("SELECT category FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await?;
    let articles = sqlx::query(
        "SELECT kind, message_id, sender, subject, body, created_at FROM articles WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(ArticleView {
            kind: r.try_get(0)?,
            message_id: r.try_get(1)?,
            sender: r.try_get(2)?,
            subject: r.try_get(3)?,
            body: r.try_get(4)?,
            created: rfc3339(r.try_get(5)?),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let outbox = list_outbox(store, None, Some(id)).await?;
    let audit =
        sqlx::query("SELECT at, actor, event, detail FROM audit WHERE ticket_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(store.pool())
            .await?
            .iter()
            .map(|r| {
                let detail: String = r.try_get(3)?;
                Ok(AuditView {
                    at: rfc3339(r.try_get(0)?),
                    actor: r.try_get(1)?,
                    event: r.try_get(2)?,
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let sla = sla::view(store, id).await?;
    Ok(TicketView {
        summary,
        category,
        articles,
        outbox,
        audit,
        sla,
    })
}

/// A staff change; fields left `None` stay as they are.
#[derive(Debug, Default)]
pub struct Change<'a> {
    pub state: Option<&'a str>,
    pub severity: Option<u8>,
    pub queue: Option<&'a str>,
    pub note: Option<&'a str>,
    pub actor: &'a str,
}

pub async fn set_ticket(
    store: &Store,
    config: &Config,
    number: &str,
    change: Change<'_>,
) -> Result<(), OpsError> {
    let id = ticket_id(store, number).await?;
    let state = change
        .state
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                OpsError::Invalid(format!(
                    "state \"{s}\" is unknown: use new, open, pending or closed"
                ))
            })
        })
        .transpose()?;
    if let Some(sev) = change.severity
        && !(1..=4).contains(&sev)
    {
        return Err(OpsError::Invalid(format!(
            "severity {sev} is no Störungsklasse: use 1, 2, 3 or 4"
        )));
    }
    if let Some(q) = change.queue
        && config.settings.queue(q).is_none()
    {
        return Err(OpsError::Invalid(format!(
            "queue \"{q}\" is not configured"
        )));
    }
    let now_ts = jiff::Timestamp::now();
    let now = now_ts.as_microsecond();
    let mut tx = store.begin_write().await?;
    let mut buf = WriteBuffer::default();
    let row = sqlx::query("SELECT state, severity, queue FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let (old_state, old_sev, old_queue): (String, i64, String) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if let Some(s) = state
        && s.as_str() != old_state
    {
        sqlx::query(
            "UPDATE tickets SET state = $1, updated_at = $2, \
                 closed_at = CASE WHEN $1 = 'closed' THEN $2 ELSE NULL END WHERE id = $3",
        )
        .bind(s.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut buf,
            now,
            Some(id),
            None,
            change.actor,
            "state_changed",
            &json!({ "from": old_state, "to": s.as_str() }),
        );
    }
    if let Some(sev) = change.severity
        && i64::from(sev) != old_sev
    {
        sqlx::query("UPDATE tickets SET severity = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(sev))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut buf,
            now,
            Some(id),
            None,
            change.actor,
            "severity_changed",
            &json!({ "from": old_sev, "to": sev }),
        );
    }
    if let Some(q) = change.queue
        && q != old_queue
    {
        sqlx::query("UPDATE tickets SET queue = $1, updated_at = $2 WHERE id = $3")
            .bind(q)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut buf,
            now,
            Some(id),
            None,
            change.actor,
            "queue_changed",
            &json!({ "from": old_queue, "to": q }),
        );
    }
    if let Some(note) = change.note {
        sqlx::query(
            "INSERT INTO articles (ticket_id, kind, sender, subject, body, created_at) \
             VALUES ($1, 'note', $2, '', $3, $4)",
        )
        .bind(id)
        .bind(change.actor)
        .bind(note)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut buf,
            now,
            Some(id),
            None,
            change.actor,
            "note_added",
            &json!({ "length": note.len() }),
        );
    }
    let new_sev = change.severity.map_or(old_sev, i64::from);
    let new_queue = change.queue.unwrap_or(&old_queue);
    if new_sev != old_sev || new_queue != old_queue {
        sla::recompute(&mut tx, &config.settings, id, new_queue, new_sev).await?;
    }
    let state_changed = state.is_some_and(|s| s.as_str() != old_state);
    if state_changed || change.note.is_some() {
        sla::record_reaction(&mut tx, &config.settings, id, now_ts, change.actor).await?;
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list_outbox(
    store: &Store,
    state: Option<&str>,
    ticket_id: Option<i64>,
) -> Result<Vec<OutboxView>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, t.number, o.kind, o.recipient, o.subject, o.state, o.attempts, o.next_attempt_at, \
         o.last_error, o.message_id FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id \
         WHERE ($1 IS NULL OR o.state = $1) AND ($2 IS NULL OR o.ticket_id = $2) ORDER BY o.id",
    )
    .bind(state)
    .bind(ticket_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxView {
                id: r.try_get(0)?,
                ticket: r.try_get(1)?,
                kind: r.try_get(2)?,
                recipient: r.try_get(3)?,
                subject: r.try_get(4)?,
                state: r.try_get(5)?,
                attempts: r.try_get(6)?,
                next_attempt: rfc3339(r.try_get(7)?),
                last_error: r.try_get(8)?,
                message_id: r.try_get(9)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Puts a failed row back in line, to be sent at once.
pub async fn retry_outbox(store: &Store, id: i64) -> Result<(), OpsError> {
    let now = jiff::Timestamp::now().as_microsecond();
    let done = sqlx::query(
        "UPDATE outbox SET state = 'scheduled', next_attempt_at = $1, claimed_until = NULL \
         WHERE id = $2 AND state IN ('temporary_failure', 'permanent_failure', 'suppressed')",
    )
    .bind(now)
    .bind(id)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 0 {
        let exists: Option<String> = sqlx::query_scalar("SELECT state FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
        return match exists {
            None => Err(OpsError::NoOutboxRow(id)),
            Some(s) => Err(OpsError::Invalid(format!(
                "outbox row {id} is {s}; only failed or suppressed rows can be retried"
            ))),
        };
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub id: i64,
    pub source: String,
    pub size: i64,
    pub reason: String,
    pub received: String,
}

pub async fn list_quarantine(store: &Store) -> Result<Vec<QuarantineView>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, source_key, size, reason, received_at FROM raw_messages WHERE outcome = 'quarantined' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(QuarantineView {
                id: r.try_get(0)?,
                source: r.try_get(1)?,
                size: r.try_get(2)?,
                reason: r.try_get(3)?,
                received: rfc3339(r.try_get(4)?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The raw bytes of a quarantined message.
pub async fn quarantined_bytes(store: &Store, id: i64) -> Result<Vec<u8>, OpsError> {
    sqlx::query_scalar("SELECT bytes FROM raw_messages WHERE id = $1 AND outcome = 'quarantined'")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or(OpsError::NoQuarantined(id))
}

/// Files a quarantined message again (after a fix: a new rule, a larger size limit). The old
/// row makes way, so the message is not taken for a duplicate of itself.
pub async fn replay_quarantined(
    store: &Store,
    config: &Config,
    id: i64,
) -> Result<super::ingest::Outcome, OpsError> {
    let bytes = quarantined_bytes(store, id).await?;
    let source: String = sqlx::query_scalar("SELECT source_key FROM raw_messages WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await?;
    let mut tx = store.begin_write().await?;
    sqlx::query("UPDATE raw_messages SET source_key = $1, dedup_key = $1, outcome = 'replayed' WHERE id = $2")
        .bind(format!("replayed:{id}"))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let ingestor = super::ingest::Ingestor::new(store, config);
    let key = super::ingest::SourceKey::from_stored(&source);
    Ok(ingestor.ingest(&bytes, key).await?)
}
