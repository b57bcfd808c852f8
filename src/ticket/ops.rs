//! Staff's basic operations and the read side: list and show tickets, change state, class and
//! queue, add notes; list the outbox and quarantine. Every change is audited with its time.
use super::State;
use super::clock as sla;
use crate::config::Config;
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::outbox::OutboxState;
use crate::store::raw;
use crate::store::tickets::{self, FieldChange, TicketListRow};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::json;

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
    Ok(store
        .tickets(state, queue, number)
        .await?
        .into_iter()
        .map(TicketSummary::from)
        .collect())
}

impl From<TicketListRow> for TicketSummary {
    fn from(r: TicketListRow) -> Self {
        TicketSummary {
            number: r.number,
            state: r.state,
            queue: r.queue,
            severity: r.severity,
            subject: r.subject,
            requester: r.requester,
            articles: r.articles,
            created: rfc3339(r.created_at),
            linked_to: r.linked_to,
        }
    }
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

async fn ticket_id(store: &Store, number: &str) -> Result<i64, OpsError> {
    store
        .ticket_id(number)
        .await?
        .ok_or_else(|| OpsError::NoTicket(number.to_string()))
}

pub async fn show_ticket(store: &Store, number: &str) -> Result<TicketView, OpsError> {
    let id = ticket_id(store, number).await?;
    let row = store
        .tickets(None, None, Some(number))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| OpsError::NoTicket(number.to_string()))?;
    let category = row.category.clone();
    let articles = store
        .articles_of(id)
        .await?
        .into_iter()
        .map(|r| ArticleView {
            kind: r.kind,
            message_id: r.message_id,
            sender: r.sender,
            subject: r.subject,
            body: r.body,
            created: rfc3339(r.created_at),
        })
        .collect();
    let outbox = list_outbox(store, None, Some(id)).await?;
    let audit = store
        .audit_of(id)
        .await?
        .into_iter()
        .map(|r| AuditView {
            at: rfc3339(r.at),
            actor: r.actor,
            event: r.event,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
        })
        .collect();
    let sla = sla::view(store, id).await?;
    Ok(TicketView {
        summary: TicketSummary::from(row),
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
    let old = tickets::changeable(&mut tx, id).await?;
    let new_sev = change.severity.map_or(old.severity, i64::from);
    let new_queue = change.queue.unwrap_or(&old.queue);
    let changes = [
        state.filter(|s| s.as_str() != old.state).map(|s| {
            (
                FieldChange::State(s),
                "state_changed",
                json!({ "from": old.state, "to": s.as_str() }),
            )
        }),
        (new_sev != old.severity).then(|| {
            (
                FieldChange::Severity(new_sev),
                "severity_changed",
                json!({ "from": old.severity, "to": new_sev }),
            )
        }),
        (new_queue != old.queue).then(|| {
            (
                FieldChange::Queue(new_queue),
                "queue_changed",
                json!({ "from": old.queue, "to": new_queue }),
            )
        }),
    ];
    let state_changed = changes[0].is_some();
    for (field, event, detail) in changes.into_iter().flatten() {
        tickets::change_field(&mut tx, id, field, now).await?;
        audit(&mut buf, now, Some(id), None, change.actor, event, &detail);
    }
    if let Some(note) = change.note {
        tickets::add_note(&mut tx, id, change.actor, note, now).await?;
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
    if new_sev != old.severity || new_queue != old.queue {
        sla::recompute(&mut tx, &config.settings, id, new_queue, new_sev).await?;
    }
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
) -> Result<Vec<OutboxView>, OpsError> {
    let state = state
        .map(|s| {
            OutboxState::parse(s).ok_or_else(|| {
                OpsError::Invalid(format!(
                    "outbox state \"{s}\" is unknown: use scheduled, sent, temporary_failure, \
                     permanent_failure or suppressed"
                ))
            })
        })
        .transpose()?;
    Ok(store
        .outbox_rows(state, ticket_id)
        .await?
        .into_iter()
        .map(|r| OutboxView {
            id: r.id,
            ticket: r.ticket,
            kind: r.kind,
            recipient: r.recipient,
            subject: r.subject,
            state: r.state,
            attempts: r.attempts,
            next_attempt: rfc3339(r.next_attempt_at),
            last_error: r.last_error,
            message_id: r.message_id,
        })
        .collect())
}

/// Puts a failed row back in line, to be sent at once.
pub async fn retry_outbox(store: &Store, id: i64) -> Result<(), OpsError> {
    let now = jiff::Timestamp::now().as_microsecond();
    match store.retry_outbox(id, now).await? {
        Ok(()) => Ok(()),
        Err(None) => Err(OpsError::NoOutboxRow(id)),
        Err(Some(s)) => Err(OpsError::Invalid(format!(
            "outbox row {id} is {s}; only failed or suppressed rows can be retried"
        ))),
    }
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
    Ok(store
        .quarantined()
        .await?
        .into_iter()
        .map(|r| QuarantineView {
            id: r.id,
            source: r.source_key,
            size: r.size,
            reason: r.reason,
            received: rfc3339(r.received_at),
        })
        .collect())
}

/// The raw bytes of a quarantined message.
pub async fn quarantined_bytes(store: &Store, id: i64) -> Result<Vec<u8>, OpsError> {
    Ok(store
        .quarantined_message(id)
        .await?
        .ok_or(OpsError::NoQuarantined(id))?
        .0)
}

/// Files a quarantined message again (after a fix: a new rule, a larger size limit), in one
/// transaction with moving its old row out of the way (so it is not taken for a duplicate of
/// itself): if filing fails, the message stays in the quarantine list as it was.
pub async fn replay_quarantined(
    store: &Store,
    config: &Config,
    id: i64,
) -> Result<super::ingest::Outcome, OpsError> {
    let (bytes, source, size) = store
        .quarantined_message(id)
        .await?
        .ok_or(OpsError::NoQuarantined(id))?;
    if bytes.len() as i64 != size {
        return Err(OpsError::Invalid(format!(
            "message {id} was too large to keep ({size} bytes; only its header is stored): it \
             lies in the quarantine folder of {source}; raise ingest.max_message_size and move \
             it back to the inbox there"
        )));
    }
    let ingestor = super::ingest::Ingestor::new(store, config);
    let key = super::ingest::SourceKey::from_stored(&source);
    let item = [super::ingest::Incoming {
        raw: &bytes,
        source: key,
    }];
    let batch = super::ingest::PreparedBatch::new(config, &item);
    let mut tx = store.begin_write().await?;
    if !raw::make_way_for_replay(&mut tx, id).await? {
        return Err(OpsError::NoQuarantined(id));
    }
    let mut outcomes = ingestor.file_in(&mut tx, batch).await?;
    tx.commit().await?;
    store.checkpoint_in_background();
    outcomes.pop().ok_or(OpsError::NoQuarantined(id))
}
