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
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use std::fmt;

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub number: String,
    pub state: String,
    pub queue: String,
    pub severity: i64,
    pub subject: String,
    pub requester: String,
    pub articles: i64,
    /// RFC 3339, UTC, in JSON (as every instant of these views).
    pub created: Timestamp,
    pub linked_to: Option<String>,
}

/// A stored instant (microseconds since 1970, UTC).
fn instant(micros: i64) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_microsecond(micros)?)
}

/// Tickets by state and queue (each filter optional), oldest first.
pub async fn list_tickets(
    store: &Store,
    state: Option<State>,
    queue: Option<&str>,
) -> Result<Vec<TicketSummary>, StoreError> {
    store
        .tickets(state.map(State::as_str), queue, None)
        .await?
        .into_iter()
        .map(TicketSummary::try_from)
        .collect()
}

impl TryFrom<TicketListRow> for TicketSummary {
    type Error = StoreError;

    fn try_from(r: TicketListRow) -> Result<Self, StoreError> {
        Ok(TicketSummary {
            number: r.number,
            state: r.state,
            queue: r.queue,
            severity: r.severity,
            subject: r.subject,
            requester: r.requester,
            articles: r.articles,
            created: instant(r.created_at)?,
            linked_to: r.linked_to,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleView {
    pub kind: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub body: String,
    pub created: Timestamp,
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
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub at: Timestamp,
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
    #[error("there is no ticket {0}; `poststelle tickets list` shows the numbers")]
    NoTicket(String),
    #[error("there is no outgoing mail #{0}; `poststelle outbox list` shows the ids")]
    NoOutboxRow(i64),
    #[error("there is no quarantined message #{0}; `poststelle quarantine list` shows the ids")]
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
        .map(|r| {
            Ok(ArticleView {
                kind: r.kind,
                message_id: r.message_id,
                sender: r.sender,
                subject: r.subject,
                body: r.body,
                created: instant(r.created_at)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let outbox = list_outbox(store, None, Some(id)).await?;
    let audit = store
        .audit_of(id)
        .await?
        .into_iter()
        .map(|r| {
            Ok(AuditView {
                at: instant(r.at)?,
                actor: r.actor,
                event: r.event,
                detail: serde_json::from_str(&r.detail)
                    .unwrap_or(serde_json::Value::String(r.detail)),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let sla = sla::view(store, id).await?;
    Ok(TicketView {
        summary: TicketSummary::try_from(row)?,
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
    pub state: Option<State>,
    pub severity: Option<u8>,
    pub queue: Option<&'a str>,
    pub note: Option<&'a str>,
    pub actor: &'a str,
}

/// One thing [`set_ticket`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    State { from: String, to: State },
    Severity { from: i64, to: i64 },
    Queue { from: String, to: String },
    Note,
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Applied::State { from, to } => write!(f, "state {from} → {}", to.as_str()),
            Applied::Severity { from, to } => write!(f, "class {from} → {to}"),
            Applied::Queue { from, to } => write!(f, "queue {from} → {to}"),
            Applied::Note => f.write_str("note added"),
        }
    }
}

/// Applies a staff change in one transaction; what changed, empty when every value given was
/// already so (nothing is written then).
pub async fn set_ticket(
    store: &Store,
    config: &Config,
    number: &str,
    change: Change<'_>,
) -> Result<Vec<Applied>, OpsError> {
    let id = ticket_id(store, number).await?;
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
            "queue \"{q}\" is not configured; the queues of {} are: {}",
            config.origin,
            queue_names(config)
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
        change.state.filter(|s| s.as_str() != old.state).map(|s| {
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
    let mut applied = Vec::new();
    for (field, event, detail) in changes.into_iter().flatten() {
        applied.push(match field {
            FieldChange::State(to) => Applied::State {
                from: old.state.clone(),
                to,
            },
            FieldChange::Severity(to) => Applied::Severity {
                from: old.severity,
                to,
            },
            FieldChange::Queue(to) => Applied::Queue {
                from: old.queue.clone(),
                to: to.to_string(),
            },
        });
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
        applied.push(Applied::Note);
    }
    if applied.is_empty() {
        return Ok(applied);
    }
    if new_sev != old.severity || new_queue != old.queue {
        sla::recompute(&mut tx, &config.settings, id, new_queue, new_sev).await?;
    }
    if state_changed || change.note.is_some() {
        sla::record_reaction(&mut tx, &config.settings, id, now_ts, change.actor).await?;
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    Ok(applied)
}

/// The configured queues' names, for messages.
pub fn queue_names(config: &Config) -> String {
    config
        .settings
        .queues
        .iter()
        .map(|q| q.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Outgoing mail in a state and of a ticket (each filter optional), oldest first.
pub async fn list_outbox(
    store: &Store,
    state: Option<OutboxState>,
    ticket_id: Option<i64>,
) -> Result<Vec<OutboxView>, OpsError> {
    Ok(store
        .outbox_rows(state, ticket_id)
        .await?
        .into_iter()
        .map(|r| {
            Ok(OutboxView {
                id: r.id,
                ticket: r.ticket,
                kind: r.kind,
                recipient: r.recipient,
                subject: r.subject,
                state: r.state,
                attempts: r.attempts,
                next_attempt: instant(r.next_attempt_at)?,
                last_error: r.last_error,
                message_id: r.message_id,
            })
        })
        .collect::<Result<_, StoreError>>()?)
}

/// Puts a failed row back in line, to be sent at once.
pub async fn retry_outbox(store: &Store, id: i64) -> Result<(), OpsError> {
    let now = jiff::Timestamp::now().as_microsecond();
    match store.retry_outbox(id, now).await? {
        Ok(()) => Ok(()),
        Err(None) => Err(OpsError::NoOutboxRow(id)),
        Err(Some(s)) => Err(OpsError::Invalid(format!(
            "outgoing mail #{id} is {s}; only failed or suppressed mail can be retried"
        ))),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub id: i64,
    pub source: String,
    pub size: i64,
    pub reason: String,
    pub received: Timestamp,
}

pub async fn list_quarantine(store: &Store) -> Result<Vec<QuarantineView>, StoreError> {
    store
        .quarantined()
        .await?
        .into_iter()
        .map(|r| {
            Ok(QuarantineView {
                id: r.id,
                source: r.source_key,
                size: r.size,
                reason: r.reason,
                received: instant(r.received_at)?,
            })
        })
        .collect()
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
/// itself): if filing fails, or the message still cannot be read, it stays in the quarantine
/// list as it was, under its id; the outcome then says why.
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
    let outcome = ingestor
        .file_in(&mut tx, batch)
        .await?
        .pop()
        .ok_or(OpsError::NoQuarantined(id))?;
    if matches!(outcome, super::ingest::Outcome::Quarantined { .. }) {
        // Quarantined again would be a new row with a new id: whoever replays it after the
        // next fix would have to look the id up again. Dropping the transaction rolls it back.
        drop(tx);
        return Ok(outcome);
    }
    tx.commit().await?;
    store.checkpoint_in_background();
    Ok(outcome)
}
