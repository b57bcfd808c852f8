//! Status notices (issue 17, item 4). The contract's reaction is "the first notice that the
//! incident is being worked on", so taking a ticket tells its requester so, and that notice —
//! queued in the transaction of the change, at its time — is the SLA's reaction; a note alone
//! is none. Later changes of state, class or level tell the requester and the queue's
//! `observers`; `resolved` asks the requester to answer if the problem persists (the answer
//! reopens it, [`super::ingest`]); an open class-1 or class-2 ticket gets an update every
//! `status_notices.update_every_service_hours` of its queue's calendar with the latest answer
//! relayed; a pending ticket whose `pending until` has come reminds staff.
//!
//! A relayed staff answer takes a new ticket too: the answer itself is the requester's notice,
//! so no "wird bearbeitet" goes out on top of it; observers get theirs.
//!
//! Mail to the requester is an automatic reply (`Auto-Submitted: auto-replied`, under the loop
//! brake), threaded under the requester's last mail; never to a machine or another ticket
//! system (`tickets.requester_no_notice`, set when the ticket was opened) nor to our own
//! addresses. The periodic update and the reminder are claimed with a conditional UPDATE of
//! their due time in the transaction that queues them: once per due time, across restarts
//! and instances.
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::State;
use super::clock;
use super::ops::{Applied, level_of};
use crate::config::Config;
use crate::notify;
use crate::outbox::{self, Kind, NewMail};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::status::{self as rows, NoticeFacts};
use crate::store::{Backend, Store, StoreError};

/// What a notice tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The ticket is being worked on ("wird bearbeitet").
    Taken,
    /// Its state, class or level changed.
    Changed,
    /// It is resolved: answer if the problem persists.
    Resolved,
    /// The periodic update of an open class-1 or class-2 ticket.
    Update,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Taken => "taken",
            Event::Changed => "changed",
            Event::Resolved => "resolved",
            Event::Update => "update",
        }
    }

    pub fn template(self) -> &'static str {
        match self {
            Event::Taken => crate::templates::STATUS_TAKEN,
            Event::Changed => crate::templates::STATUS_CHANGED,
            Event::Resolved => crate::templates::STATUS_RESOLVED,
            Event::Update => crate::templates::STATUS_UPDATE,
        }
    }
}

/// Who is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    RequesterAndObservers,
    /// The requester knows already (a relayed answer took the ticket, or their own mail
    /// reopened it).
    Observers,
}

/// A change of state, class or level: (`state` | `class` | `level`, from, to).
type Change = (&'static str, Value, Value);

/// After [`super::ops::apply_change`] applied `applied` for `actor` at `now`: a state change
/// is the reaction (the first one counts), the notice of what changed is queued, and the next
/// periodic update moves.
pub async fn after_change(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    id: i64,
    applied: &[Applied],
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let state = applied.iter().find_map(|a| match a {
        Applied::State { from, to } => Some((from.as_str(), *to)),
        _ => None,
    });
    // Taking the ticket is the reaction: with notices on, the notice queued below carries the
    // same time. Where the requester gets none (notices off, a machine's ticket) the change
    // still counts, or such a queue could never meet its deadlines.
    if state.is_some() {
        clock::record_reaction(conn, &config.settings, id, now, actor).await?;
    }
    let mut changes: Vec<Change> = Vec::new();
    if let Some((from, to)) = state {
        changes.push(("state", json!(from), json!(to.as_str())));
    }
    for a in applied {
        match a {
            Applied::Severity { from, to } => changes.push(("class", json!(from), json!(to))),
            Applied::Queue { from, to } => {
                let (was, is) = (level_of(config, from), level_of(config, to));
                if was != is {
                    changes.push(("level", json!(was), json!(is)));
                }
            }
            _ => {}
        }
    }
    let event = match state {
        Some((from, State::Open)) if from == State::New.as_str() => Some(Event::Taken),
        Some((_, State::Resolved)) => Some(Event::Resolved),
        _ if !changes.is_empty() => Some(Event::Changed),
        _ => None,
    };
    let facts = rows::notice_facts(conn, id).await?;
    let told = match event {
        Some(e) => {
            let audience = Audience::RequesterAndObservers;
            tell(conn, buf, config, &facts, e, audience, changes, now).await?
        }
        None => false,
    };
    schedule(conn, config, &facts, told, now).await
}

/// A staff answer relayed at `now` by `by`: it is the reaction, and it takes a new ticket
/// (open, audited) without a notice of its own to the requester — the answer is that notice;
/// the observers are told. The next periodic update counts from the answer.
pub async fn on_relayed(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    id: i64,
    by: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let taken = rows::take_if_new(conn, id, now.as_microsecond()).await?;
    clock::record_reaction(conn, &config.settings, id, now, by).await?;
    let facts = rows::notice_facts(conn, id).await?;
    if taken {
        audit(
            buf,
            now.as_microsecond(),
            Some(id),
            None,
            by,
            "state_changed",
            &json!({ "from": State::New.as_str(), "to": State::Open.as_str(),
                     "why": "a relayed answer takes the ticket" }),
        );
        tracing::info!(
            ticket = facts.number,
            by,
            "a relayed answer took the ticket: open"
        );
        let changes = vec![("state", json!(State::New.as_str()), json!(facts.state))];
        tell(
            conn,
            buf,
            config,
            &facts,
            Event::Taken,
            Audience::Observers,
            changes,
            now,
        )
        .await?;
    }
    schedule(conn, config, &facts, true, now).await
}

/// A requester's mail reopened ticket `id` (from `from`): its observers are told, and the
/// periodic updates start again.
pub async fn on_reopened(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    id: i64,
    from: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let facts = rows::notice_facts(conn, id).await?;
    let changes = vec![("state", json!(from), json!(facts.state))];
    let audience = Audience::Observers;
    tell(
        conn,
        buf,
        config,
        &facts,
        Event::Changed,
        audience,
        changes,
        now,
    )
    .await?;
    schedule(conn, config, &facts, false, now).await
}

/// When an update of this ticket falls due if one is sent at `now`: `None` when none is
/// (not open, class 3 or 4, periodic updates or the queue's notices off).
fn next_update(config: &Config, facts: &NoticeFacts, now: Timestamp) -> Option<i64> {
    let s = &config.settings;
    let hours = s.status_notices.update_every_service_hours;
    let on = s.queue(&facts.queue).is_some_and(|q| q.status_notices);
    if hours == 0
        || !on
        || facts.state != State::Open.as_str()
        || !(1..=2).contains(&facts.severity)
    {
        return None;
    }
    let cal = clock::calendar_of(s, &facts.queue)?;
    match cal.advance(now, SignedDuration::from_hours(i64::from(hours))) {
        Ok(t) => Some(t.as_microsecond()),
        Err(e) => {
            tracing::warn!(ticket = facts.number, error = %e, "no periodic update: the calendar cannot say when");
            None
        }
    }
}

/// Moves the next periodic update: N service hours after a mail the requester just got
/// (`told`), kept where one is already due, dropped where none is to come.
async fn schedule(
    conn: &mut AnyConnection,
    config: &Config,
    facts: &NoticeFacts,
    told: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    let want = match next_update(config, facts, now) {
        Some(next) if told || facts.update_due_at.is_none() => Some(next),
        Some(_) => facts.update_due_at,
        None => None,
    };
    if want != facts.update_due_at {
        rows::set_update_due(conn, facts.id, want).await?;
    }
    Ok(())
}

/// Why the requester of a ticket gets no notice; `None` when they do.
fn requester_refusal(config: &Config, facts: &NoticeFacts) -> Option<String> {
    if let Some(why) = &facts.requester_no_notice {
        return Some(why.clone());
    }
    let r = facts.requester.trim();
    if !crate::diag::is_plausible_address(r) {
        return Some("the requester has no valid address".to_string());
    }
    if is_ours(config, r) {
        return Some(format!("{r} is one of our own addresses"));
    }
    None
}

/// Our sender address, a reply address, or a queue's staff address: mail there would come
/// back to us.
fn is_ours(config: &Config, address: &str) -> bool {
    let s = &config.settings;
    address.eq_ignore_ascii_case(&s.outbox.from)
        || s.reply.pattern.read(address).is_some()
        || s.queues.iter().any(|q| {
            q.staff
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(address))
        })
}

fn instant(micros: i64) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_microsecond(micros)?)
}

/// Queues `event`'s notice to the requester (unless `audience` or a refusal says otherwise)
/// and to the queue's observers, and audits it. Whether the requester's mail was queued.
#[allow(clippy::too_many_arguments)]
async fn tell(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    facts: &NoticeFacts,
    event: Event,
    audience: Audience,
    changes: Vec<Change>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let s = &config.settings;
    let Some(queue) = s.queue(&facts.queue).filter(|q| q.status_notices) else {
        tracing::info!(
            ticket = facts.number,
            event = event.as_str(),
            queue = facts.queue,
            "no status notice: the queue's status_notices are off"
        );
        return Ok(false);
    };
    let tz = crate::time::berlin()?;
    let answer = match event {
        Event::Update => rows::latest_public_answer(conn, facts.id).await?,
        _ => None,
    };
    let answer = match &answer {
        Some((text, at)) => Some((text.as_str(), instant(*at)?)),
        None => None,
    };
    let ticket = notify::Ticket {
        number: &facts.number,
        subject: &facts.subject,
        queue: &facts.queue,
        severity: u8::try_from(facts.severity).unwrap_or(4),
        requester: &facts.requester,
        requester_name: facts.requester_name.as_deref(),
        received: instant(facts.created_at)?,
    };
    let mut status = notify::Status {
        state: &facts.state,
        changes,
        level: level_of(config, &facts.queue),
        pending_until: facts.pending_until.map(instant).transpose()?,
        assignee: facts.assignee.as_deref(),
        answer,
        for_observer: false,
    };
    let template = event.template();
    let mut requester_mail = None;
    let skipped = match audience {
        Audience::Observers => Some("the requester knows already".to_string()),
        Audience::RequesterAndObservers => requester_refusal(config, facts),
    };
    if skipped.is_none() {
        let thread = crate::store::relay::relay_facts(conn, Backend::of(conn), &[facts.id])
            .await?
            .remove(&facts.id)
            .unwrap_or_default();
        let references: Vec<String> = thread
            .first_mail
            .iter()
            .chain(
                thread
                    .last_mail
                    .iter()
                    .filter(|l| Some(*l) != thread.first_mail.as_ref()),
            )
            .cloned()
            .collect();
        let context = notify::for_status(config, &tz, &ticket, &status);
        let message_id = outbox::enqueue(
            conn,
            buf,
            config,
            now,
            NewMail {
                ticket_id: Some(facts.id),
                kind: Kind::AutoReply,
                template,
                recipient: facts.requester.trim(),
                in_reply_to: thread.last_mail.as_deref(),
                references,
                context: &context,
                attach_raw: None,
            },
        )
        .await?;
        requester_mail = Some(message_id);
    }
    status.for_observer = true;
    let mut observers: Vec<&str> = Vec::new();
    for o in &queue.observers {
        let dup = observers.iter().any(|p| p.eq_ignore_ascii_case(o));
        if dup || o.eq_ignore_ascii_case(facts.requester.trim()) || is_ours(config, o) {
            continue;
        }
        let context = notify::for_status(config, &tz, &ticket, &status);
        outbox::enqueue(
            conn,
            buf,
            config,
            now,
            NewMail {
                ticket_id: Some(facts.id),
                kind: Kind::Notice,
                template,
                recipient: o,
                in_reply_to: None,
                references: Vec::new(),
                context: &context,
                attach_raw: None,
            },
        )
        .await?;
        observers.push(o);
    }
    audit(
        buf,
        now.as_microsecond(),
        Some(facts.id),
        None,
        "poststelle",
        "status_notice",
        &json!({
            "event": event.as_str(), "template": template, "state": facts.state,
            "requester": requester_mail.as_ref().map(|_| facts.requester.trim()),
            "message_id": requester_mail, "requester_skipped": skipped,
            "observers": observers,
        }),
    );
    tracing::info!(
        ticket = facts.number,
        event = event.as_str(),
        template,
        state = facts.state,
        requester = requester_mail.is_some(),
        skipped = skipped.as_deref().unwrap_or(""),
        observers = observers.len(),
        "status notice"
    );
    Ok(requester_mail.is_some())
}

/// Sends the periodic update of ticket `id`, due at `due`, in a transaction of its own, and
/// moves the next one N service hours on. `false` when another instance (or an earlier
/// round) sent it, or the ticket no longer wants one.
pub async fn send_update(
    store: &Store,
    config: &Config,
    id: i64,
    due: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let facts = rows::notice_facts(&mut tx, id).await?;
    let next = next_update(config, &facts, now);
    if !rows::claim_update(&mut tx, id, due, next).await? {
        return Ok(false);
    }
    let mut buf = WriteBuffer::default();
    if next.is_some() {
        let audience = Audience::RequesterAndObservers;
        tell(
            &mut tx,
            &mut buf,
            config,
            &facts,
            Event::Update,
            audience,
            Vec::new(),
            now,
        )
        .await?;
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    Ok(next.is_some())
}

/// Reminds staff that pending ticket `id` has waited until `until`, once for that time: to
/// its assignee, else its queue's staff address (with the reply address, as all mail to
/// staff). `false` when the reminder went out before.
pub async fn send_reminder(
    store: &Store,
    config: &Config,
    id: i64,
    until: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    if !rows::claim_reminder(&mut tx, id, until).await? {
        return Ok(false);
    }
    let facts = rows::notice_facts(&mut tx, id).await?;
    let s = &config.settings;
    let to = facts
        .assignee
        .clone()
        .or_else(|| s.queue(&facts.queue).and_then(|q| q.staff.clone()));
    let mut buf = WriteBuffer::default();
    let at = now.as_microsecond();
    match &to {
        Some(to) => {
            let tz = crate::time::berlin()?;
            let ticket = notify::Ticket {
                number: &facts.number,
                subject: &facts.subject,
                queue: &facts.queue,
                severity: u8::try_from(facts.severity).unwrap_or(4),
                requester: &facts.requester,
                requester_name: facts.requester_name.as_deref(),
                received: instant(facts.created_at)?,
            };
            let status = notify::Status {
                state: &facts.state,
                level: level_of(config, &facts.queue),
                pending_until: Some(instant(until)?),
                assignee: facts.assignee.as_deref(),
                ..notify::Status::default()
            };
            let context = notify::for_status(config, &tz, &ticket, &status);
            let message_id = outbox::enqueue(
                &mut tx,
                &mut buf,
                config,
                now,
                NewMail {
                    ticket_id: Some(id),
                    kind: Kind::Reminder,
                    template: crate::templates::PENDING_REMINDER,
                    recipient: to,
                    in_reply_to: None,
                    references: Vec::new(),
                    context: &context,
                    attach_raw: None,
                },
            )
            .await?;
            audit(
                &mut buf,
                at,
                Some(id),
                None,
                "poststelle",
                "pending_reminder",
                &json!({ "to": to, "until": instant(until)?.to_string(), "message_id": message_id }),
            );
        }
        None => audit(
            &mut buf,
            at,
            Some(id),
            None,
            "poststelle",
            "pending_reminder_unsent",
            &json!({ "until": instant(until)?.to_string(),
                     "why": format!("queue \"{}\" has no staff address and the ticket no assignee", facts.queue) }),
        ),
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(
        ticket = facts.number,
        to = to.as_deref().unwrap_or(""),
        until = %instant(until)?,
        "pending reminder"
    );
    Ok(true)
}

/// Closes ticket `id`, resolved at or before `cutoff` (its reopen window is over: an answer
/// would open a new ticket now either way), audited. `false` when it no longer is resolved.
pub async fn close_resolved(
    store: &Store,
    id: i64,
    number: &str,
    cutoff: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let at = now.as_microsecond();
    if !rows::close_resolved(&mut tx, id, cutoff, at).await? {
        return Ok(false);
    }
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        Some(id),
        None,
        "poststelle",
        "state_changed",
        &json!({ "from": State::Resolved.as_str(), "to": State::Closed.as_str(),
                 "why": "ingest.reopen_days have passed since it was resolved" }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(
        ticket = number,
        "resolved ticket closed: its reopen window is over"
    );
    Ok(true)
}
