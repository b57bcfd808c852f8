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
    /// Whom the ticket is assigned to (`--assign`, `#assign`).
    pub assignee: Option<String>,
    /// Until when a pending ticket waits.
    pub pending_until: Option<Timestamp>,
}

/// A stored instant (microseconds since 1970, UTC).
fn instant(micros: i64) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_microsecond(micros)?)
}

/// A page of `tickets list`.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<TicketSummary>,
    /// The number to list after for the next page; `None` when this page is the last.
    pub next: Option<String>,
}

/// Up to `limit` tickets by state and queue (each filter optional), oldest first, after the
/// ticket `after` (a number a page gave as its `next`): keyset pagination, so a page costs the
/// same on the first ticket as on the millionth, and tickets made or changed meanwhile neither
/// repeat nor slip through.
pub async fn list_tickets(
    store: &Store,
    state: Option<State>,
    queue: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<TicketPage, OpsError> {
    let after_id = match after {
        Some(number) => ticket_id(store, number).await?,
        None => 0,
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
    // One more than the page: whether there is a next one.
    let mut rows = store
        .ticket_page(
            state.map(State::as_str),
            queue,
            after_id,
            i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
        )
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let tickets = rows
        .into_iter()
        .map(TicketSummary::try_from)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let next = if more {
        tickets.last().map(|t| t.number.clone())
    } else {
        None
    };
    Ok(TicketPage { tickets, next })
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
            assignee: r.assignee,
            pending_until: r.pending_until.map(instant).transpose()?,
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
        .ticket_by_number(number)
        .await?
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

/// A staff change; fields left `None` stay as they are. The command line (`tickets set`) and
/// the commands of a staff answer by mail ([`super::staff_reply::commands`]) both apply it
/// with [`apply_change`], so the two do exactly the same.
#[derive(Debug, Default, Clone)]
pub struct Change<'a> {
    pub state: Option<State>,
    pub severity: Option<u8>,
    pub queue: Option<&'a str>,
    /// The support level (1, 2, 3): the queue of that level along the ticket's queue's
    /// `escalate_to` chain, one level at a time.
    pub level: Option<u8>,
    pub assignee: Option<&'a str>,
    /// Waits until then: the state becomes pending.
    pub pending_until: Option<Timestamp>,
    pub note: Option<&'a str>,
    /// With a hand-over from the clearing queue to a Ressort: the requester is told the
    /// contact person of the Ressort's service ([`super::handover`]), the one named by
    /// `service` or else the one the Nutzerkonto Betreff finds.
    pub contact_reply: bool,
    pub service: Option<&'a str>,
    /// The escalation job hands the ticket on because this reaction deadline passed.
    pub escalated: Option<Timestamp>,
    pub actor: &'a str,
}

/// One thing [`set_ticket`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    State {
        from: String,
        to: State,
    },
    Severity {
        from: i64,
        to: i64,
    },
    Queue {
        from: String,
        to: String,
    },
    Assignee {
        from: Option<String>,
        to: String,
    },
    PendingUntil {
        to: Timestamp,
    },
    Note,
    /// The new queue's staff got the copy with the history ([`super::handover`]).
    HandOver(super::handover::HandedOver),
}

impl Applied {
    /// The audit event's name.
    pub fn event(&self) -> &'static str {
        match self {
            Applied::State { .. } => "state_changed",
            Applied::Severity { .. } => "severity_changed",
            Applied::Queue { .. } => "queue_changed",
            Applied::Assignee { .. } => "assignee_changed",
            Applied::PendingUntil { .. } => "pending_until_set",
            Applied::Note => "note_added",
            Applied::HandOver(_) => "handed_over",
        }
    }
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Applied::State { from, to } => write!(f, "state {from} → {}", to.as_str()),
            Applied::Severity { from, to } => write!(f, "class {from} → {to}"),
            Applied::Queue { from, to } => write!(f, "queue {from} → {to}"),
            Applied::Assignee { from, to } => {
                write!(f, "assigned {} → {to}", from.as_deref().unwrap_or("nobody"))
            }
            Applied::PendingUntil { to } => {
                write!(f, "pending until {}", crate::time::for_people(*to))
            }
            Applied::Note => f.write_str("note added"),
            Applied::HandOver(h) => h.fmt(f),
        }
    }
}

/// The support level of `queue`: 1 for a queue no other queue escalates to, else one more than
/// the level of the queue that escalates to it.
pub fn level_of(config: &Config, queue: &str) -> u8 {
    let mut level = 1u8;
    let mut at = queue.to_string();
    // The configuration refuses cycles; the bound only guards against one all the same.
    for _ in 0..config.settings.queues.len() {
        match config
            .settings
            .queues
            .iter()
            .find(|q| q.escalate_to.as_deref() == Some(at.as_str()))
        {
            Some(q) => {
                level = level.saturating_add(1);
                at = q.name.clone();
            }
            None => break,
        }
    }
    level
}

/// The queue that level `to` of a ticket in `queue` is: the same queue at its own level, the
/// queue it escalates to one level up, the queue that escalates to it one or more levels
/// down. Levels are handed on one at a time (the RLP platform's 1st → 2nd → 3rd level), so a
/// jump upwards is refused.
pub fn level_queue(config: &Config, queue: &str, to: u8) -> Result<String, String> {
    if !(1..=3).contains(&to) {
        return Err(format!("level {to} is no support level: use 1, 2 or 3"));
    }
    let at = level_of(config, queue);
    if to == at {
        return Ok(queue.to_string());
    }
    if to == at + 1 {
        return config
            .settings
            .queue(queue)
            .and_then(|q| q.escalate_to.clone())
            .ok_or_else(|| {
                format!(
                    "queue \"{queue}\" is level {at} and has no next level: set escalate_to on \
                     its [[queue]] in {}",
                    config.origin
                )
            });
    }
    if to > at {
        return Err(format!(
            "queue \"{queue}\" is level {at}: levels are handed on one at a time, so the next \
             is level {}",
            at + 1
        ));
    }
    let mut q = queue.to_string();
    for _ in to..at {
        q = config
            .settings
            .queues
            .iter()
            .find(|p| p.escalate_to.as_deref() == Some(q.as_str()))
            .map(|p| p.name.clone())
            .unwrap_or(q);
    }
    Ok(q)
}

/// Checks a change against the configuration before anything is written: the class, the
/// queue, the level from `queue` (the ticket's queue), the address and the state.
pub fn validate(config: &Config, change: &Change<'_>, queue: &str) -> Result<(), String> {
    if let Some(sev) = change.severity
        && !(1..=4).contains(&sev)
    {
        return Err(format!(
            "severity {sev} is no Störungsklasse: use 1, 2, 3 or 4"
        ));
    }
    if let Some(q) = change.queue
        && config.settings.queue(q).is_none()
    {
        return Err(format!(
            "queue \"{q}\" is not configured; the queues of {} are: {}",
            config.origin,
            queue_names(config)
        ));
    }
    if let Some(level) = change.level {
        level_queue(config, change.queue.unwrap_or(queue), level)?;
    }
    if let Some(a) = change.assignee
        && !crate::diag::is_plausible_address(a)
    {
        return Err(format!(
            "\"{a}\" is no mail address to assign the ticket to"
        ));
    }
    if change.pending_until.is_some() && change.state.is_some_and(|s| s != State::Pending) {
        return Err(
            "a ticket that waits until a time is pending: leave out the state or make it pending"
                .to_string(),
        );
    }
    super::handover::validate(config, change, queue)
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
    let now = jiff::Timestamp::now();
    let mut tx = store.begin_write().await?;
    let mut buf = WriteBuffer::default();
    let applied = apply_change(&mut tx, &mut buf, config, id, &change, now, None).await?;
    if applied.is_empty() {
        return Ok(applied);
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Applies a staff change in the caller's transaction, its audit lines into `buf` (with
/// `raw_id`, the staff answer that asked for it, when there is one).
pub async fn apply_change(
    conn: &mut sqlx::AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    id: i64,
    change: &Change<'_>,
    now_ts: Timestamp,
    raw_id: Option<i64>,
) -> Result<Vec<Applied>, OpsError> {
    let now = now_ts.as_microsecond();
    let old = tickets::changeable(conn, id).await?;
    validate(config, change, &old.queue).map_err(OpsError::Invalid)?;
    let new_sev = change.severity.map_or(old.severity, i64::from);
    let new_queue = match change.level {
        Some(level) => level_queue(config, change.queue.unwrap_or(&old.queue), level)
            .map_err(OpsError::Invalid)?,
        None => change.queue.unwrap_or(&old.queue).to_string(),
    };
    let handover = super::handover::plan(conn, config, id, change, &old.queue, &new_queue).await?;
    let new_state = change
        .state
        .or(change.pending_until.map(|_| State::Pending));
    let mut applied = Vec::new();
    if let Some(s) = new_state.filter(|s| s.as_str() != old.state) {
        tickets::change_field(conn, id, FieldChange::State(s), now).await?;
        applied.push(Applied::State {
            from: old.state.clone(),
            to: s,
        });
        // A ticket that no longer waits has no time it waits until.
        if s != State::Pending && old.pending_until.is_some() {
            tickets::change_field(conn, id, FieldChange::PendingUntil(None), now).await?;
        }
    }
    if new_sev != old.severity {
        tickets::change_field(conn, id, FieldChange::Severity(new_sev), now).await?;
        applied.push(Applied::Severity {
            from: old.severity,
            to: new_sev,
        });
    }
    if new_queue != old.queue {
        tickets::change_field(conn, id, FieldChange::Queue(&new_queue), now).await?;
        applied.push(Applied::Queue {
            from: old.queue.clone(),
            to: new_queue.clone(),
        });
    }
    if let Some(a) = change.assignee
        && old.assignee.as_deref() != Some(a)
    {
        tickets::change_field(conn, id, FieldChange::Assignee(a), now).await?;
        applied.push(Applied::Assignee {
            from: old.assignee.clone(),
            to: a.to_string(),
        });
    }
    if let Some(until) = change.pending_until
        && old.pending_until != Some(until.as_microsecond())
    {
        tickets::change_field(
            conn,
            id,
            FieldChange::PendingUntil(Some(until.as_microsecond())),
            now,
        )
        .await?;
        applied.push(Applied::PendingUntil { to: until });
    }
    if let Some(note) = change.note {
        tickets::add_note(conn, id, change.actor, note, now).await?;
        applied.push(Applied::Note);
    }
    if let Some(plan) = handover {
        let done = super::handover::hand_over(conn, buf, config, id, plan, change, now_ts).await?;
        applied.push(Applied::HandOver(done));
    }
    for a in &applied {
        let detail = match a {
            Applied::State { from, to } => json!({ "from": from, "to": to.as_str() }),
            Applied::Severity { from, to } => json!({ "from": from, "to": to }),
            Applied::Queue { from, to } => json!({ "from": from, "to": to, "level": change.level,
                "escalated_due": change.escalated.map(|t| t.to_string()) }),
            Applied::Assignee { from, to } => json!({ "from": from, "to": to }),
            Applied::PendingUntil { to } => json!({ "until": to.to_string() }),
            Applied::Note => json!({ "length": change.note.map_or(0, str::len) }),
            Applied::HandOver(h) => h.detail(change.actor),
        };
        audit(buf, now, Some(id), raw_id, change.actor, a.event(), &detail);
    }
    if applied.is_empty() {
        return Ok(applied);
    }
    if new_sev != old.severity || new_queue != old.queue {
        sla::recompute(conn, &config.settings, id, &new_queue, new_sev).await?;
    }
    // The reaction, the requester's and observers' notices, the next periodic update.
    super::status_notice::after_change(conn, buf, config, id, &applied, change.actor, now_ts)
        .await?;
    Ok(applied)
}

/// A mail written on this machine (`tickets reply`), as an RFC 5322 message that the ingest
/// path files like any other: `authserv_id` is `reply.authserv_id`, whose
/// Authentication-Results field the receiving server would add; here the person at the
/// command line is who the check stands for.
pub fn local_message(
    config: &Config,
    from: (Option<&str>, &str),
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(Vec<u8>, String), OpsError> {
    let address = |a: &str| {
        a.trim()
            .parse::<lettre::Address>()
            .map_err(|e| OpsError::Invalid(format!("\"{a}\" is no mail address: {e}")))
    };
    let from = lettre::message::Mailbox::new(from.0.map(str::to_string), address(from.1)?);
    let to = lettre::message::Mailbox::new(None, address(to)?);
    let message_id = format!(
        "{}@{}",
        uuid::Uuid::now_v7(),
        config.settings.outbox.message_id_domain
    );
    let built = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{message_id}>")))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(body.replace("\r\n", "\n"))
        .map_err(|e| OpsError::Invalid(format!("the mail cannot be built: {e}")))?;
    let mut raw = Vec::new();
    if let Some(id) = &config.settings.reply.authserv_id {
        raw.extend_from_slice(
            format!("Authentication-Results: {id}; dmarc=pass (poststelle command line)\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(&built.formatted());
    Ok((raw, message_id))
}

/// `tickets reply`: a staff answer from the command line, filed as the mail `actor` would
/// send to the ticket's reply address — the same checks, commands and relay as an answer by
/// mail ([`super::staff_reply`]). `actor` is by default the queue's staff address.
pub async fn reply(
    store: &Store,
    config: &Config,
    number: &str,
    body: &str,
    actor: Option<&str>,
) -> Result<super::ingest::Outcome, OpsError> {
    let row = store
        .ticket_by_number(number)
        .await?
        .ok_or_else(|| OpsError::NoTicket(number.to_string()))?;
    let queue = config.settings.queue(&row.queue).ok_or_else(|| {
        OpsError::Invalid(format!(
            "ticket {number} is in queue \"{}\", which {} no longer configures; move it with \
             `poststelle tickets set {number} --queue NAME` first",
            row.queue, config.origin
        ))
    })?;
    let actor = match actor.or(queue.staff.as_deref()) {
        Some(a) => a,
        None => {
            return Err(OpsError::Invalid(format!(
                "queue \"{}\" has no staff address: give --actor with the address of one of its \
                 members",
                queue.name
            )));
        }
    };
    if !queue.is_staff(actor) {
        return Err(OpsError::Invalid(format!(
            "{actor} is not staff of queue \"{}\": give --actor with its staff address or a \
             member's (members in its [[queue]] of {})",
            queue.name, config.origin
        )));
    }
    let to = config.settings.reply.address(number).ok_or_else(|| {
        OpsError::Invalid(
            "no reply token key exists yet, so no answer can be filed: `poststelle run` or \
             `poststelle ingest` creates it"
                .to_string(),
        )
    })?;
    let subject = super::staff_reply::subject(config, number, &row.subject);
    let (raw, message_id) = local_message(config, (None, actor), &to, &subject, body)?;
    let ingestor = super::ingest::Ingestor::new(store, config);
    let key = super::ingest::SourceKey::from_stored(&format!("cli:reply/{message_id}"));
    Ok(ingestor.ingest(&raw, key).await?)
}

/// A ticket staff open for a requester who called or came to the counter.
#[derive(Debug, Clone)]
pub struct NewByHand<'a> {
    pub queue: &'a str,
    pub severity: u8,
    pub requester: &'a str,
    pub name: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    /// Who opened it, for the audit trail.
    pub actor: &'a str,
}

/// `tickets create`: opens a ticket as the requester's mail would — the mail is written here
/// (From the requester, To the support address) and filed through the ingest path with the
/// queue and class given, so the acknowledgement, the staff copy and the deadline are those
/// of any new ticket. Its number.
pub async fn create_ticket(
    store: &Store,
    config: &Config,
    t: NewByHand<'_>,
) -> Result<String, OpsError> {
    validate(
        config,
        &Change {
            severity: Some(t.severity),
            queue: Some(t.queue),
            ..Change::default()
        },
        t.queue,
    )
    .map_err(OpsError::Invalid)?;
    if t.subject.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the subject is empty: give --subject with a few words on the problem".to_string(),
        ));
    }
    let (raw, message_id) = local_message(
        config,
        (t.name, t.requester),
        &config.settings.outbox.from,
        t.subject,
        t.body,
    )?;
    let ingestor = super::ingest::Ingestor::new(store, config);
    let key = super::ingest::SourceKey::from_stored(&format!("cli:create/{message_id}"));
    let items = [super::ingest::Incoming {
        raw: &raw,
        source: key,
    }];
    let mut batch = super::ingest::PreparedBatch::new(config, &items);
    batch.force(t.queue, t.severity);
    let outcome = ingestor
        .ingest_prepared(batch)
        .await?
        .pop()
        .ok_or_else(|| OpsError::Invalid("the ticket's mail was not filed".to_string()))?;
    let super::ingest::Outcome::NewTicket { number, .. } = outcome else {
        return Err(OpsError::Invalid(format!(
            "the ticket's mail was filed as {}, not as a new ticket: {outcome:?}",
            outcome.label()
        )));
    };
    let id = ticket_id(store, &number).await?;
    let now = Timestamp::now().as_microsecond();
    let mut tx = store.begin_write().await?;
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        now,
        Some(id),
        None,
        t.actor,
        "ticket_created",
        &json!({ "via": "command line", "queue": t.queue, "class": t.severity,
                 "requester": t.requester, "message_id": message_id }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    Ok(number)
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

/// Puts a failed, held-back or uncertain row back in line, to be sent at once.
pub async fn retry_outbox(store: &Store, id: i64) -> Result<(), OpsError> {
    let now = jiff::Timestamp::now().as_microsecond();
    match store.retry_outbox(id, now).await? {
        Ok(()) => Ok(()),
        Err(None) => Err(OpsError::NoOutboxRow(id)),
        Err(Some(s)) => Err(OpsError::Invalid(format!(
            "outgoing mail #{id} is {s}; only failed, suppressed or uncertain mail can be retried"
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
