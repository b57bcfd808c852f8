//! Monitoring alerts (issue 19): mail the rules give an alert key (`then.alert_key`) is one
//! incident per key. The first problem opens an incident ticket; the same problem again is
//! counted, not filed as an article each (a check that alarms every minute sends hundreds); a
//! recovery restores the ticket and the platform's incident at the alert's own time; a
//! problem after a recovery reopens the ticket within `ingest.reopen_days`, or opens a new
//! one linked to it after that. A key that changes state more than `alerts.flapping_changes`
//! times within `alerts.flapping_window_minutes` is flapping: its per-change mails stop, the
//! queue's staff hear it once, and once more when it is quiet again. Nothing ever goes back to
//! the monitoring sender (invariant 3: the classifier gives alert mail no automatic reply, and
//! its ticket's requester gets no status notices).
//!
//! Filing decides every mail in memory ([`step`], phase 3 of [`super::ingest`]); [`apply`]
//! then writes what a batch did to each key once — the ticket's state, one note for its
//! repeats, the platform's incident and its outage, the flapping mails, the key's row — so
//! 10,000 repeats in one batch cost one row each for the raw mail and its audit line, and a
//! handful of statements for the key.
use jiff::Timestamp;
use serde_json::json;
use sqlx::AnyConnection;

use crate::classify::{Alert, AlertState};
use crate::config::{Config, Settings};
use crate::notify;
use crate::outbox::{self, Kind, NewMail};
use crate::store::alerts::{self as stored, AlertRow, SaveAlert};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::incidents::{self as incidents, EventKind, Incident, IncidentState};
use crate::store::{Backend, Store, StoreError};

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Problem,
    Recovered,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Problem => "problem",
            Phase::Recovered => "recovered",
        }
    }

    fn parse(s: &str) -> Phase {
        if s == "recovered" {
            Phase::Recovered
        } else {
            Phase::Problem
        }
    }
}

/// What one alert mail does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The key's first problem, or one after the reopen period: a new incident ticket.
    Open,
    /// A problem after a recovery within the reopen period: the ticket is open again.
    Reopen,
    /// A problem after a recovery while the ticket stayed open (staff reopened it).
    Reproblem,
    /// A recovery: the ticket and the incident are restored at the alert's time.
    Restore,
    /// The state it is in already: counted on the ticket, no article.
    Repeat,
    /// Someone at the monitoring took it on: a note.
    Acknowledge,
    /// Anything else about it (flapping, downtime): a note.
    Info,
}

impl Effect {
    /// Whether the key's state changes (what flapping counts).
    fn changes_state(self) -> bool {
        matches!(
            self,
            Effect::Open | Effect::Reopen | Effect::Reproblem | Effect::Restore
        )
    }
}

/// A change a batch made to a key, in order: what [`apply`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// The alert's own time.
    pub at: i64,
    /// Planner slot of the ticket it happened on.
    pub ticket: usize,
    /// Whether the key was flapping after it.
    pub flapping: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A problem began: a new ticket.
    Opened,
    /// A problem began again: its ticket reopened.
    Reopened,
    /// A problem began again on a ticket that was still open.
    Reproblem,
    /// Recovered; `ticket` says whether the ticket was restored (staff may have closed it).
    Restored {
        ticket: bool,
    },
    FlappingStarted {
        changes: usize,
    },
    Stable,
}

/// An alert key as a batch sees it: stored, or opened by an earlier mail of the batch.
#[derive(Debug, Clone)]
pub struct Key {
    pub key: String,
    pub id: Option<i64>,
    pub queue: String,
    pub platform: Option<String>,
    pub incident_id: Option<i64>,
    /// Planner slot of its ticket.
    pub ticket: usize,
    pub ticket_state: String,
    pub ticket_closed_at: Option<i64>,
    /// Störungsklasse of its ticket.
    pub class: u8,
    pub phase: Phase,
    pub severity: Option<String>,
    pub problem_at: i64,
    pub recovered_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub repeats: i64,
    pub mails: i64,
    /// Alert times of its recent changes of state.
    pub changes: Vec<i64>,
    pub flapping_since: Option<i64>,
    pub last_change_at: i64,
    pub last_mail_at: i64,
    pub created_at: i64,
    pub events: Vec<Event>,
    /// Repeats this batch filed: how many, the alert times of the first and last.
    pub batch_repeats: i64,
    pub repeat_span: Option<(i64, i64)>,
}

/// The most recent changes a key keeps: enough for any flapping count that is sensible.
const CHANGES_KEPT: usize = 64;

impl Key {
    /// A stored key whose ticket is at planner slot `ticket`.
    pub fn stored(row: &AlertRow, ticket: usize) -> Key {
        Key {
            key: row.alert_key.clone(),
            id: Some(row.id),
            queue: row.queue.clone(),
            platform: row.platform.clone(),
            incident_id: row.incident_id,
            ticket,
            ticket_state: row.ticket_state.clone(),
            ticket_closed_at: row.closed_at,
            class: u8::try_from(row.ticket_severity).unwrap_or(4),
            phase: Phase::parse(&row.state),
            severity: row.severity.clone(),
            problem_at: row.problem_at,
            recovered_at: row.recovered_at,
            acknowledged_at: row.acknowledged_at,
            repeats: row.repeats,
            mails: row.mails,
            changes: row
                .changes
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect(),
            flapping_since: row.flapping_since,
            last_change_at: row.last_change_at,
            last_mail_at: row.last_mail_at,
            created_at: row.created_at,
            events: Vec::new(),
            batch_repeats: 0,
            repeat_span: None,
        }
    }

    /// A key whose first problem opened the ticket at slot `ticket`.
    pub fn first(alert: &Alert, queue: &str, class: u8, ticket: usize, at: i64, now: i64) -> Key {
        Key {
            key: alert.key.clone(),
            id: None,
            queue: queue.to_string(),
            platform: alert.platform.clone(),
            incident_id: None,
            ticket,
            ticket_state: crate::ticket::State::New.as_str().into(),
            ticket_closed_at: None,
            class,
            phase: Phase::Problem,
            severity: alert.severity.clone(),
            problem_at: at,
            recovered_at: None,
            acknowledged_at: None,
            repeats: 0,
            mails: 1,
            changes: vec![at],
            flapping_since: None,
            last_change_at: now,
            last_mail_at: now,
            created_at: now,
            events: vec![Event {
                kind: EventType::Opened,
                at,
                ticket,
                flapping: false,
            }],
            batch_repeats: 0,
            repeat_span: None,
        }
    }

    fn ticket_closed(&self) -> bool {
        self.ticket_state == "resolved" || self.ticket_state == "closed"
    }

    fn push(&mut self, kind: EventType, at: i64) {
        self.events.push(Event {
            kind,
            at,
            ticket: self.ticket,
            flapping: self.flapping_since.is_some(),
        });
    }
}

/// What [`step`] decided for one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub effect: Effect,
    /// The key's per-change mails go out: it is not flapping.
    pub notify: bool,
}

/// The alert's own time as filing counts it: never after now (a monitoring server's clock
/// ahead of ours must not put a restoration in the future).
pub fn alert_time(alert: &Alert, now: i64) -> i64 {
    alert
        .at
        .map(Timestamp::as_microsecond)
        .unwrap_or(now)
        .min(now)
}

/// Phase 3: what an alert mail does to a key that has a ticket (a key without one is opened
/// by the planner). For [`Effect::Open`] the planner opens the new ticket and then calls
/// [`Key::reopened_as`].
pub fn step(k: &mut Key, alert: &Alert, at: i64, now: i64, s: &Settings) -> Step {
    k.mails += 1;
    k.last_mail_at = now;
    // Quiet for a whole window: stable again, before this mail counts.
    if k.flapping_since.is_some() && now - k.last_change_at >= s.alerts.flapping_window {
        k.flapping_since = None;
        k.push(EventType::Stable, at);
    }
    let effect = match alert.state {
        AlertState::Problem => match (k.phase, k.ticket_closed()) {
            (Phase::Problem, false) => Effect::Repeat,
            (_, true) => {
                let closed_at = k.ticket_closed_at.or(k.recovered_at).unwrap_or(at);
                let window = i64::from(s.ingest.reopen_days) * 86_400_000_000;
                if at - closed_at <= window {
                    Effect::Reopen
                } else {
                    Effect::Open
                }
            }
            (Phase::Recovered, false) => Effect::Reproblem,
        },
        AlertState::Recovery => match k.phase {
            Phase::Problem => Effect::Restore,
            Phase::Recovered => Effect::Repeat,
        },
        AlertState::Acknowledgement => Effect::Acknowledge,
        AlertState::Info => Effect::Info,
    };
    match effect {
        Effect::Open | Effect::Reopen | Effect::Reproblem => {
            k.phase = Phase::Problem;
            k.problem_at = at;
            k.recovered_at = None;
            k.acknowledged_at = None;
            k.repeats = 0;
            if alert.severity.is_some() {
                k.severity.clone_from(&alert.severity);
            }
        }
        Effect::Restore => {
            k.phase = Phase::Recovered;
            let restored = at.max(k.problem_at);
            k.recovered_at = Some(restored);
            k.repeats = 0;
        }
        Effect::Repeat => {
            k.repeats += 1;
            k.batch_repeats += 1;
            k.repeat_span = Some(match k.repeat_span {
                Some((first, last)) => (first.min(at), last.max(at)),
                None => (at, at),
            });
        }
        Effect::Acknowledge => k.acknowledged_at = Some(at),
        Effect::Info => {}
    }
    if effect.changes_state() {
        let was_flapping = k.flapping_since.is_some();
        count_change(k, at, now, s);
        match effect {
            // The planner records the opening with the new ticket's slot.
            Effect::Open => {}
            Effect::Reopen => {
                k.ticket_state = crate::ticket::State::Open.as_str().into();
                k.ticket_closed_at = None;
                k.push(EventType::Reopened, at);
            }
            Effect::Reproblem => k.push(EventType::Reproblem, at),
            Effect::Restore => {
                // A ticket staff closed meanwhile stays as they left it.
                let ticket = !k.ticket_closed();
                if ticket {
                    k.ticket_state = crate::ticket::State::Resolved.as_str().into();
                    k.ticket_closed_at = k.recovered_at;
                }
                let restored = k.recovered_at.unwrap_or(at);
                k.push(EventType::Restored { ticket }, restored);
            }
            _ => {}
        }
        return Step {
            effect,
            notify: !was_flapping && k.flapping_since.is_none(),
        };
    }
    Step {
        effect,
        notify: false,
    }
}

impl Key {
    /// After [`Effect::Open`]: the key's new ticket is at `slot`.
    pub fn reopened_as(&mut self, slot: usize, class: u8, at: i64) {
        self.ticket = slot;
        self.class = class;
        self.ticket_state = crate::ticket::State::New.as_str().into();
        self.ticket_closed_at = None;
        // The new ticket's problem is another incident of the platform.
        self.incident_id = None;
        self.push(EventType::Opened, at);
    }
}

/// Counts a change of state in the flapping window; more than `alerts.flapping_changes` in
/// it make the key flapping.
fn count_change(k: &mut Key, at: i64, now: i64, s: &Settings) {
    k.last_change_at = now;
    k.changes.push(at);
    let newest = k.changes.iter().copied().max().unwrap_or(at);
    let window = s.alerts.flapping_window;
    k.changes.retain(|&c| c > newest - window);
    if k.changes.len() > CHANGES_KEPT {
        let drop = k.changes.len() - CHANGES_KEPT;
        k.changes.drain(..drop);
    }
    let limit = s.alerts.flapping_changes as usize;
    if limit > 0 && k.flapping_since.is_none() && k.changes.len() > limit {
        k.flapping_since = Some(now);
        k.push(
            EventType::FlappingStarted {
                changes: k.changes.len(),
            },
            at,
        );
    }
}

/// What the record of one alert mail says.
pub fn reason(alert: &Alert, step: Step, at: i64, number: &str, linked: Option<&str>) -> String {
    let key = &alert.key;
    let quiet = if step.effect.changes_state() && !step.notify {
        "; flapping: no mail of its own"
    } else {
        ""
    };
    let what = match step.effect {
        Effect::Open => match linked {
            Some(old) => format!(
                "new incident ticket {number}, linked to ticket {old}: that one was restored \
                 longer ago than ingest.reopen_days"
            ),
            None => format!("new incident ticket {number}"),
        },
        Effect::Reopen => format!("problem again, reopened incident ticket {number}"),
        Effect::Reproblem => format!("problem again on incident ticket {number}"),
        Effect::Restore => format!(
            "recovered at {}: incident ticket {number} restored",
            crate::time::for_people(crate::time::stored(at))
        ),
        Effect::Repeat => format!(
            "{} again: counted on incident ticket {number}, no article of its own",
            alert.state.as_str()
        ),
        Effect::Acknowledge => format!("acknowledged: a note on incident ticket {number}"),
        Effect::Info => format!("a note on incident ticket {number}"),
    };
    format!("monitoring alert {key}: {what}{quiet}; never a reply")
}

/// A planner slot's ticket as [`apply`] needs it.
#[derive(Debug, Clone)]
pub struct TicketRef {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub queue: String,
}

/// An occurrence of an incident for problem management ([`super::problems`]).
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub ticket_id: i64,
    pub fingerprint: String,
    pub queue: String,
    pub platform: Option<String>,
    /// The alert key, for a problem's title.
    pub title: Option<String>,
}

/// Phase 5 for every key the batch touched, in the filing transaction: its tickets' states,
/// one note for its repeats, the platform's incident, the flapping mails, its row. The
/// incidents' occurrences for problem management.
pub async fn apply(
    conn: &mut AnyConnection,
    config: &Config,
    keys: &mut [Key],
    tickets: &[TicketRef],
    now: Timestamp,
) -> Result<Vec<Occurrence>, StoreError> {
    let mut occurrences = Vec::new();
    let mut buf = WriteBuffer::default();
    let at_now = now.as_microsecond();
    for k in keys.iter_mut() {
        let Some(ticket) = tickets.get(k.ticket) else {
            continue;
        };
        ticket_states(conn, &mut buf, k, tickets, at_now).await?;
        if k.batch_repeats > 0 {
            repeats_note(conn, config, k, ticket, at_now).await?;
        }
        if k.platform.is_some() {
            for ev in k.events.clone() {
                incident_event(conn, config, k, ev, tickets, now).await?;
            }
        }
        flapping_mails(conn, &mut buf, config, k, tickets, now).await?;
        for ev in &k.events {
            let recurs = matches!(
                ev.kind,
                EventType::Opened | EventType::Reopened | EventType::Reproblem
            );
            // A flapping key's changes are one fault going on, not incidents of their own.
            if recurs
                && !ev.flapping
                && let Some(t) = tickets.get(ev.ticket)
            {
                occurrences.push(Occurrence {
                    ticket_id: t.id,
                    fingerprint: format!("alert:{}", k.key),
                    queue: k.queue.clone(),
                    platform: k.platform.clone(),
                    title: Some(k.key.clone()),
                });
            }
        }
        let changes: Vec<String> = k.changes.iter().map(i64::to_string).collect();
        let id = stored::save(
            conn,
            &SaveAlert {
                id: k.id,
                alert_key: &k.key,
                queue: &k.queue,
                platform: k.platform.as_deref(),
                ticket_id: ticket.id,
                incident_id: k.incident_id,
                state: k.phase.as_str(),
                severity: k.severity.as_deref(),
                problem_at: k.problem_at,
                recovered_at: k.recovered_at,
                acknowledged_at: k.acknowledged_at,
                repeats: k.repeats,
                mails: k.mails,
                changes: changes.join(" "),
                flapping_since: k.flapping_since,
                last_change_at: k.last_change_at,
                last_mail_at: k.last_mail_at,
                created_at: k.created_at,
            },
        )
        .await?;
        k.id = Some(id);
        tracing::info!(
            key = %k.key,
            ticket = %ticket.number,
            state = k.phase.as_str(),
            repeats = k.batch_repeats,
            changes = k.events.len(),
            flapping = k.flapping_since.is_some(),
            "alert key filed"
        );
    }
    buf.flush(conn, Backend::of(conn)).await?;
    Ok(occurrences)
}

/// The state each of the key's tickets was left in by this batch, written once per ticket,
/// each change audited.
async fn ticket_states(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    k: &Key,
    tickets: &[TicketRef],
    at: i64,
) -> Result<(), StoreError> {
    // (slot, state, closed_at), the last change of each ticket.
    let mut last: Vec<(usize, &'static str, Option<i64>)> = Vec::new();
    for ev in &k.events {
        let (state, closed_at) = match ev.kind {
            EventType::Restored { ticket: true } => (State::Resolved, Some(ev.at)),
            EventType::Reopened => (State::Open, None),
            _ => continue,
        };
        let Some(t) = tickets.get(ev.ticket) else {
            continue;
        };
        audit(
            buf,
            at,
            Some(t.id),
            None,
            "poststelle",
            "state_changed",
            &json!({ "to": state.as_str(), "why": match state {
                State::Resolved => format!("monitoring alert {} recovered at {}", k.key,
                    crate::time::stored(ev.at)),
                _ => format!("monitoring alert {} reported the problem again at {}", k.key,
                    crate::time::stored(ev.at)),
            } }),
        );
        match last.iter_mut().find(|(s, _, _)| *s == ev.ticket) {
            Some(entry) => *entry = (ev.ticket, state.as_str(), closed_at),
            None => last.push((ev.ticket, state.as_str(), closed_at)),
        }
    }
    for (slot, state, closed_at) in last {
        if let Some(t) = tickets.get(slot) {
            stored::set_ticket_state(conn, t.id, state, closed_at, at).await?;
        }
    }
    Ok(())
}

use super::State;

/// One internal note for the repeats this batch filed: how many, and over what time.
async fn repeats_note(
    conn: &mut AnyConnection,
    config: &Config,
    k: &Key,
    ticket: &TicketRef,
    at: i64,
) -> Result<(), StoreError> {
    let (first, last) = k.repeat_span.unwrap_or((at, at));
    let when = |t: i64| crate::time::for_people(crate::time::stored(t));
    let note = if config.settings.language == "en" {
        format!(
            "Monitoring alert {}: {} repeat(s) from {} to {} ({} mail(s) of the key in all; \
             the mails are kept as raw messages of this ticket).",
            k.key,
            k.batch_repeats,
            when(first),
            when(last),
            k.mails
        )
    } else {
        format!(
            "Überwachungsalarm {}: {} Wiederholung(en) von {} bis {} ({} Mail(s) des Alarms \
             insgesamt; die Mails sind als Rohnachrichten dieses Vorgangs gespeichert).",
            k.key,
            k.batch_repeats,
            when(first),
            when(last),
            k.mails
        )
    };
    crate::store::tickets::add_note(conn, ticket.id, "poststelle", &note, at).await
}

/// The platform's incident as monitoring reports it: opened (or joined, when the platform
/// has one open already) when a problem begins, reopened when the key's own incident comes
/// back, resolved at the recovery's time once no key of it is in trouble any more. Its
/// notices are not written here: [`crate::announce`] tells the lists once the incident is
/// confirmed, and waits while a key of it flaps.
async fn incident_event(
    conn: &mut AnyConnection,
    config: &Config,
    k: &mut Key,
    ev: Event,
    tickets: &[TicketRef],
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(platform) = k.platform.clone() else {
        return Ok(());
    };
    let at = now.as_microsecond();
    let current = match k.incident_id {
        Some(id) => incidents::incident(conn, id).await?,
        None => None,
    };
    match ev.kind {
        EventType::Opened | EventType::Reopened | EventType::Reproblem => {
            match current {
                Some(i) if i.state == IncidentState::Open => {}
                Some(mut i)
                    if ev.kind != EventType::Opened
                        && i.alert_key.as_deref() == Some(k.key.as_str()) =>
                {
                    // Its own incident, back within the reopen period: one incident with
                    // two outages, the restored time between them not counted.
                    i.state = IncidentState::Open;
                    i.resolved_at = None;
                    i.changed_at = at;
                    let outage = crate::store::sla::record_outage(
                        conn,
                        &i.platform,
                        ev.at,
                        None,
                        &format!("incident {}", i.id),
                        &i.title,
                    )
                    .await?;
                    i.outage_id = Some(outage);
                    incidents::update_incident(conn, &i).await?;
                    let text = if config.settings.language == "en" {
                        format!("Monitoring reports the fault again ({}).", k.key)
                    } else {
                        format!("Die Überwachung meldet die Störung erneut ({}).", k.key)
                    };
                    incidents::add_event(conn, i.id, EventKind::Reopened, &text, "poststelle", at)
                        .await?;
                    tracing::warn!(incident = i.id, platform = %i.platform, key = %k.key,
                        "incident reopened by monitoring");
                }
                _ => {
                    if let Some(i) = incidents::open_incident_of(conn, &platform).await? {
                        k.incident_id = Some(i.id);
                        let text = format!("monitoring: {}", k.key);
                        incidents::add_event(
                            conn,
                            i.id,
                            EventKind::Update,
                            &text,
                            "poststelle",
                            at,
                        )
                        .await?;
                        tracing::info!(incident = i.id, platform = %platform, key = %k.key,
                            "alert joins the platform's open incident");
                    } else if let Some(p) = config.settings.platform(&platform) {
                        let title = tickets
                            .get(ev.ticket)
                            .map(|t| t.subject.clone())
                            .unwrap_or_else(|| k.key.clone());
                        let impact = if config.settings.language == "en" {
                            format!("reported by monitoring ({})", k.key)
                        } else {
                            format!("von der Überwachung gemeldet ({})", k.key)
                        };
                        let auto = p.alert_notices_auto;
                        let mut i = Incident {
                            id: 0,
                            platform: platform.clone(),
                            title,
                            impact,
                            class: k.class,
                            lists: p.lists.clone(),
                            state: IncidentState::Open,
                            started_at: ev.at,
                            resolved_at: None,
                            outage_id: None,
                            raised_at: None,
                            created_at: at,
                            changed_at: at,
                            alert_key: Some(k.key.clone()),
                            confirmed_at: auto.then_some(at),
                            confirmed_by: auto.then(|| "poststelle (alert_notices = auto)".into()),
                            announced_state: None,
                        };
                        i.id = incidents::insert_incident(conn, &i).await?;
                        let outage = crate::store::sla::record_outage(
                            conn,
                            &i.platform,
                            i.started_at,
                            None,
                            &format!("incident {}", i.id),
                            &i.title,
                        )
                        .await?;
                        i.outage_id = Some(outage);
                        incidents::update_incident(conn, &i).await?;
                        incidents::add_event(
                            conn,
                            i.id,
                            EventKind::Opened,
                            &i.title,
                            "poststelle",
                            at,
                        )
                        .await?;
                        k.incident_id = Some(i.id);
                        tracing::warn!(incident = i.id, platform = %platform, key = %k.key,
                            confirmed = auto, "incident opened by monitoring");
                    } else {
                        tracing::warn!(platform = %platform, key = %k.key,
                            "the alert's platform is not configured: no incident");
                    }
                }
            }
        }
        EventType::Restored { .. } => {
            let Some(mut i) = current.filter(|i| i.state == IncidentState::Open) else {
                return Ok(());
            };
            // An operator's incident is theirs to resolve; one monitoring opened resolves
            // when the last of its keys recovers.
            if i.alert_key.is_none() || stored::others_in_problem(conn, i.id, &k.key).await? > 0 {
                return Ok(());
            }
            let restored = ev.at.max(i.started_at);
            i.state = IncidentState::Resolved;
            i.resolved_at = Some(restored);
            i.changed_at = at;
            match i.outage_id {
                Some(o) if crate::store::sla::restore_outage(conn, o, restored).await? => {}
                _ => {
                    let o = crate::store::sla::record_outage(
                        conn,
                        &i.platform,
                        i.started_at,
                        Some(restored),
                        &format!("incident {}", i.id),
                        &i.title,
                    )
                    .await?;
                    i.outage_id = Some(o);
                }
            }
            incidents::update_incident(conn, &i).await?;
            let text = if config.settings.language == "en" {
                format!("Monitoring reports recovery ({}).", k.key)
            } else {
                format!("Die Überwachung meldet die Wiederherstellung ({}).", k.key)
            };
            incidents::add_event(conn, i.id, EventKind::Resolved, &text, "poststelle", at).await?;
            tracing::info!(incident = i.id, platform = %i.platform, key = %k.key,
                restored = %crate::time::stored(restored), "incident restored by monitoring");
        }
        EventType::FlappingStarted { .. } | EventType::Stable => {}
    }
    Ok(())
}

/// The mails of a key that starts flapping or is stable again, to its queue's staff on its
/// ticket, with a note and an audit line each.
async fn flapping_mails(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    k: &Key,
    tickets: &[TicketRef],
    now: Timestamp,
) -> Result<(), StoreError> {
    for ev in &k.events {
        let (template, event, changes) = match ev.kind {
            EventType::FlappingStarted { changes } => {
                (crate::templates::ALERT_FLAPPING, "alert_flapping", changes)
            }
            EventType::Stable => (crate::templates::ALERT_STABLE, "alert_stable", 0),
            _ => continue,
        };
        let Some(t) = tickets.get(ev.ticket) else {
            continue;
        };
        tell_staff(
            conn,
            buf,
            config,
            k_facts(k, changes),
            t,
            k.class,
            template,
            event,
            now,
        )
        .await?;
    }
    Ok(())
}

/// What the flapping mails say of a key.
struct KeyFacts<'a> {
    key: &'a str,
    state: &'static str,
    severity: Option<&'a str>,
    changes: usize,
    since: Option<i64>,
}

fn k_facts(k: &Key, changes: usize) -> KeyFacts<'_> {
    KeyFacts {
        key: &k.key,
        state: k.phase.as_str(),
        severity: k.severity.as_deref(),
        changes,
        since: k.flapping_since,
    }
}

#[allow(clippy::too_many_arguments)]
async fn tell_staff(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    f: KeyFacts<'_>,
    t: &TicketRef,
    class: u8,
    template: &'static str,
    event: &'static str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let at = now.as_microsecond();
    let staff = config
        .settings
        .queue(&t.queue)
        .and_then(|q| q.staff.clone());
    audit(
        buf,
        at,
        Some(t.id),
        None,
        "poststelle",
        event,
        &json!({ "key": f.key, "state": f.state, "changes": f.changes, "to": staff }),
    );
    let window_minutes = config.settings.alerts.flapping_window / 60_000_000;
    let note = match (event, config.settings.language == "en") {
        ("alert_flapping", true) => format!(
            "Monitoring alert {} is flapping ({} changes of state within {window_minutes} \
             minutes): no mail of its own per change until it is quiet.",
            f.key, f.changes
        ),
        ("alert_flapping", false) => format!(
            "Überwachungsalarm {} flattert ({} Zustandswechsel in {window_minutes} Minuten): \
             keine Mail je Wechsel, bis er ruhig ist.",
            f.key, f.changes
        ),
        (_, true) => format!("Monitoring alert {} is quiet again ({}).", f.key, f.state),
        (_, false) => format!(
            "Überwachungsalarm {} ist wieder ruhig ({}).",
            f.key,
            if f.state == "problem" {
                "Störung"
            } else {
                "wiederhergestellt"
            }
        ),
    };
    crate::store::tickets::add_note(conn, t.id, "poststelle", &note, at).await?;
    tracing::warn!(key = f.key, ticket = %t.number, event, "alert flapping state changed");
    let Some(staff) = staff else {
        return Ok(());
    };
    let facts = notify::Ticket {
        number: &t.number,
        subject: &t.subject,
        queue: &t.queue,
        severity: class,
        requester: "",
        requester_name: None,
        received: now,
    };
    let context = notify::alerts::for_alert(
        config,
        &facts,
        &notify::alerts::AlertFacts {
            key: f.key,
            state: f.state,
            severity: f.severity,
            changes: f.changes,
            window_minutes,
            since: f.since.map(crate::time::stored),
        },
    );
    outbox::enqueue(
        conn,
        buf,
        config,
        now,
        NewMail {
            ticket_id: Some(t.id),
            kind: Kind::StaffCopy,
            template,
            recipient: &staff,
            in_reply_to: None,
            references: Vec::new(),
            context: &context,
            attach_raw: None,
        },
    )
    .await?;
    Ok(())
}

/// Keys that stopped flapping: quiet for a whole `alerts.flapping_window_minutes`. The
/// daemon runs this every half minute (a key that goes quiet sends no mail that could tell);
/// each key is told stable once, in one transaction with its note and mail. How many.
pub async fn settle(store: &Store, config: &Config, now: Timestamp) -> Result<usize, StoreError> {
    let s = &config.settings.alerts;
    if s.flapping_changes == 0 {
        return Ok(0);
    }
    let at = now.as_microsecond();
    // Read first: the write lock (SQLite's only one) is taken only when a key is due.
    {
        let mut conn = store.pool().acquire().await?;
        if stored::quiet_flapping(&mut conn, at - s.flapping_window)
            .await?
            .is_empty()
        {
            return Ok(0);
        }
    }
    let mut tx = store.begin_write().await?;
    // Again under the lock: another instance may have settled them meanwhile.
    let quiet = stored::quiet_flapping(&mut tx, at - s.flapping_window).await?;
    let mut buf = WriteBuffer::default();
    for row in &quiet {
        stored::clear_flapping(&mut tx, row.id).await?;
        let t = TicketRef {
            id: row.ticket_id,
            number: row.number.clone(),
            subject: row.subject.clone(),
            queue: row.ticket_queue.clone(),
        };
        let f = KeyFacts {
            key: &row.alert_key,
            state: Phase::parse(&row.state).as_str(),
            severity: row.severity.as_deref(),
            changes: 0,
            since: None,
        };
        let class = u8::try_from(row.ticket_severity).unwrap_or(4);
        tell_staff(
            &mut tx,
            &mut buf,
            config,
            f,
            &t,
            class,
            crate::templates::ALERT_STABLE,
            "alert_stable",
            now,
        )
        .await?;
    }
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    Ok(quiet.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Alert;

    fn alert(state: AlertState, at: i64) -> Alert {
        Alert {
            key: "icinga:web01/https".into(),
            state,
            severity: Some("critical".into()),
            at: Timestamp::from_microsecond(at).ok(),
            at_from: "alert_time",
            platform: None,
        }
    }

    const MIN: i64 = 60_000_000;

    fn settings() -> Settings {
        let mut s = crate::config::Config::load(None)
            .expect("shipped config")
            .settings;
        s.alerts.flapping_changes = 5;
        s.alerts.flapping_window = 60 * MIN;
        s
    }

    #[test]
    fn repeats_count_recovery_restores_and_a_problem_reopens() {
        let s = settings();
        let t0 = 1_795_000_000_000_000;
        let first = alert(AlertState::Problem, t0);
        let mut k = Key::first(&first, "betrieb", 1, 0, t0, t0);
        for i in 1..=3 {
            let st = step(
                &mut k,
                &alert(AlertState::Problem, t0 + i * MIN),
                t0,
                t0,
                &s,
            );
            assert_eq!(st.effect, Effect::Repeat);
        }
        assert_eq!((k.repeats, k.batch_repeats), (3, 3));
        let st = step(
            &mut k,
            &alert(AlertState::Recovery, t0 + 30 * MIN),
            t0 + 30 * MIN,
            t0,
            &s,
        );
        assert_eq!(
            st,
            Step {
                effect: Effect::Restore,
                notify: true
            }
        );
        assert_eq!(k.recovered_at, Some(t0 + 30 * MIN));
        assert_eq!(k.ticket_state, "resolved");
        assert_eq!(k.ticket_closed_at, Some(t0 + 30 * MIN));
        // A second recovery is a repeat, not another restoration.
        let st = step(
            &mut k,
            &alert(AlertState::Recovery, t0 + 31 * MIN),
            t0 + 31 * MIN,
            t0,
            &s,
        );
        assert_eq!(st.effect, Effect::Repeat);
        // Within the reopen period: the same ticket.
        let back = t0 + 2 * 86_400_000_000;
        let st = step(&mut k, &alert(AlertState::Problem, back), back, back, &s);
        assert_eq!(st.effect, Effect::Reopen);
        assert_eq!(k.ticket_state, "open");
        // After it: a new one.
        let st = step(
            &mut k,
            &alert(AlertState::Recovery, back + MIN),
            back + MIN,
            back,
            &s,
        );
        assert_eq!(st.effect, Effect::Restore);
        let late = back + 20 * 86_400_000_000;
        let st = step(&mut k, &alert(AlertState::Problem, late), late, late, &s);
        assert_eq!(st.effect, Effect::Open);
    }

    #[test]
    fn more_changes_than_the_limit_make_it_flap_and_quiet_makes_it_stable() {
        let s = settings();
        let t0 = 1_795_000_000_000_000;
        let mut k = Key::first(&alert(AlertState::Problem, t0), "betrieb", 1, 0, t0, t0);
        let mut notified = 1;
        for i in 1..20 {
            let at = t0 + i * MIN / 2;
            let state = if i % 2 == 1 {
                AlertState::Recovery
            } else {
                AlertState::Problem
            };
            let st = step(&mut k, &alert(state, at), at, at, &s);
            assert!(st.effect.changes_state(), "{i}: {st:?}");
            notified += usize::from(st.notify);
        }
        // The opening and four more changes: five within the limit, the sixth flaps.
        assert_eq!(notified, 5);
        assert!(k.flapping_since.is_some());
        let flapped: Vec<_> = k
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventType::FlappingStarted { .. }))
            .collect();
        assert_eq!(flapped.len(), 1);
        // A repeat an hour after the last change: stable before it counts.
        let later = t0 + 20 * MIN / 2 + 61 * MIN;
        let state = if k.phase == Phase::Problem {
            AlertState::Problem
        } else {
            AlertState::Recovery
        };
        let st = step(&mut k, &alert(state, later), later, later, &s);
        assert_eq!(st.effect, Effect::Repeat);
        assert!(k.flapping_since.is_none());
        assert_eq!(k.events.last().map(|e| e.kind), Some(EventType::Stable));
    }
}
