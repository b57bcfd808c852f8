//! Incidents (issue 16, item 4): open, update, resolve and link, each in one transaction with
//! everything it causes — the incident row and its timeline, its outage in `sla_outages`
//! (start on opening, restoration on resolution: what `sla report --platform` counts), the
//! audit lines, the notice to its lists through the maintenance fan-out ("Störung", each
//! update, "behoben"), and mail on every linked ticket to its requester.
//!
//! Threading: each member's update and resolution answer the opening notice that member got
//! (In-Reply-To and References), and each requester's mail answers the latest mail of their
//! own ticket, so that a mail client shows one conversation either way.
use jiff::Timestamp;
use serde_json::json;
use sqlx::AnyConnection;

use super::{AnnounceError, FanOut, Notice, fan_out_notice, instant, lists_of, platform};
use crate::config::Config;
use crate::notify::incident::{self as notice, Update};
use crate::outbox::{self, Kind, NewMail};
use crate::store::announcements::{self as announcements, About};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::incidents::{self as stored, EventKind, Incident, IncidentState};
use crate::store::{Backend, Store};
use crate::ticket::incident_link;

/// Which notice an incident announcement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentNotice {
    /// "Störung": the incident is open.
    Opened,
    Update,
    /// "behoben".
    Resolved,
}

impl IncidentNotice {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentNotice::Opened => "opened",
            IncidentNotice::Update => "update",
            IncidentNotice::Resolved => "resolved",
        }
    }

    /// The template of the notice to the lists.
    pub fn template(self) -> &'static str {
        match self {
            IncidentNotice::Opened => crate::templates::INCIDENT_OPENED,
            IncidentNotice::Update => crate::templates::INCIDENT_UPDATE,
            IncidentNotice::Resolved => crate::templates::INCIDENT_RESOLVED,
        }
    }

    /// The template of the mail to a linked ticket's requester (none on opening: the
    /// acknowledgement answered the report).
    pub fn ticket_template(self) -> Option<&'static str> {
        match self {
            IncidentNotice::Opened => None,
            IncidentNotice::Update => Some(crate::templates::INCIDENT_TICKET_UPDATE),
            IncidentNotice::Resolved => Some(crate::templates::INCIDENT_TICKET_RESOLVED),
        }
    }
}

/// Every notice, for `check`.
pub const NOTICES: [IncidentNotice; 3] = [
    IncidentNotice::Opened,
    IncidentNotice::Update,
    IncidentNotice::Resolved,
];

/// An incident to open.
#[derive(Debug, Clone)]
pub struct Report {
    pub platform: String,
    pub title: String,
    pub impact: String,
    /// Störungsklasse 1–4.
    pub class: u8,
    /// The platform's lists when empty.
    pub lists: Vec<String>,
    /// Tickets to link at once.
    pub tickets: Vec<String>,
    /// When the outage began; default now.
    pub since: Option<Timestamp>,
}

/// What an operation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Announced {
    pub incident: i64,
    pub announcement: i64,
    pub notice: IncidentNotice,
    pub fan_out: FanOut,
    /// Mails written to requesters of linked tickets, on their tickets.
    pub requesters: usize,
    /// Members whose mail answers their opening notice.
    pub threaded: usize,
}

/// What linking did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Linked {
    pub incident: i64,
    pub linked: Vec<String>,
    /// Linked before.
    pub already: Vec<String>,
    pub class: u8,
    /// This link made the incident class 2.
    pub raised: bool,
}

async fn load(conn: &mut AnyConnection, id: i64) -> Result<Incident, AnnounceError> {
    stored::incident(conn, id)
        .await?
        .ok_or(AnnounceError::IncidentNotFound(id))
}

async fn open_one(conn: &mut AnyConnection, id: i64) -> Result<Incident, AnnounceError> {
    let i = load(conn, id).await?;
    if i.state == IncidentState::Resolved {
        return Err(AnnounceError::IncidentResolved(id));
    }
    Ok(i)
}

/// Ticket ids of `numbers`, all or an error naming the unknown ones.
async fn tickets(
    conn: &mut AnyConnection,
    numbers: &[String],
) -> Result<Vec<(i64, String)>, AnnounceError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in numbers {
        let n = n.trim();
        match stored::ticket_id(conn, n).await? {
            Some(id) => found.push((id, n.to_string())),
            None => missing.push(n.to_string()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(AnnounceError::UnknownTicket(missing.join(", ")))
    }
}

/// Opens an incident: its outage begins at `since` (default now), its lists get the
/// "Störung" notice, the named tickets are linked.
pub async fn open(
    store: &Store,
    config: &Config,
    report: Report,
    actor: &str,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let p = platform(config, &report.platform)?;
    let since = report.since.unwrap_or(now);
    if since > now {
        return Err(AnnounceError::BadTime(format!(
            "--since {} lies in the future; give when the outage began, or leave it out for now",
            crate::time::for_people(since)
        )));
    }
    let lists = lists_of(store, p, &report.lists).await?;
    let at = now.as_microsecond();
    let mut i = Incident {
        id: 0,
        platform: p.name.clone(),
        title: report.title,
        impact: report.impact,
        class: report.class,
        lists,
        state: IncidentState::Open,
        started_at: since.as_microsecond(),
        resolved_at: None,
        outage_id: None,
        raised_at: None,
        created_at: at,
        changed_at: at,
        alert_key: None,
        // An operator's incident is told at once, in this transaction.
        confirmed_at: Some(at),
        confirmed_by: Some(actor.to_string()),
        announced_state: Some(IncidentState::Open),
    };
    let mut tx = store.begin_write().await?;
    let linked = tickets(&mut tx, &report.tickets).await?;
    i.id = stored::insert_incident(&mut tx, &i).await?;
    let outage = crate::store::sla::record_outage(
        &mut tx,
        &i.platform,
        i.started_at,
        None,
        &format!("incident {}", i.id),
        &i.title,
    )
    .await?;
    i.outage_id = Some(outage);
    stored::update_incident(&mut tx, &i).await?;
    stored::add_event(&mut tx, i.id, EventKind::Opened, &i.title, actor, at).await?;
    for (ticket_id, number) in &linked {
        incident_link::link(
            &mut tx, config, &mut i, *ticket_id, number, "command", actor, now,
        )
        .await?;
    }
    let done = announce(&mut tx, config, &i, IncidentNotice::Opened, None, now).await?;
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        None,
        None,
        actor,
        "incident_opened",
        &json!({ "incident": i.id, "platform": i.platform, "class": i.class,
                 "since": since.to_string(), "lists": i.lists, "tickets": report.tickets,
                 "announcement": done.announcement, "mails": done.fan_out.enqueued }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(
        incident = i.id,
        platform = %i.platform,
        class = i.class,
        since = %since,
        mails = done.fan_out.enqueued,
        "incident opened"
    );
    Ok(done)
}

/// Confirms an incident monitoring opened on a platform whose notices wait for an operator
/// (`alert_notices = "confirm"`): from now on its lists hear of it, and the notice due now —
/// "Störung" while it lasts, "behoben" when monitoring restored it already — goes in the
/// same transaction. `None` when it was confirmed before (nothing is sent twice).
pub async fn confirm(
    store: &Store,
    config: &Config,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<Option<Announced>, AnnounceError> {
    let at = now.as_microsecond();
    let mut tx = store.begin_write().await?;
    let mut i = load(&mut tx, id).await?;
    if i.confirmed_at.is_some() {
        tx.rollback().await?;
        return Ok(None);
    }
    let missing = crate::store::lists::missing(store, &i.lists).await?;
    if i.lists.is_empty() {
        return Err(AnnounceError::NoLists(i.platform.clone()));
    }
    if !missing.is_empty() {
        return Err(AnnounceError::UnknownLists(missing.join(", ")));
    }
    i.confirmed_at = Some(at);
    i.confirmed_by = Some(actor.to_string());
    stored::add_event(&mut tx, i.id, EventKind::Confirmed, "", actor, at).await?;
    let done = announce_state(&mut tx, config, &mut i, now).await?;
    stored::update_incident(&mut tx, &i).await?;
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        None,
        None,
        actor,
        "incident_confirmed",
        &json!({ "incident": i.id, "platform": i.platform, "state": i.state.as_str(),
                 "announcement": done.as_ref().map(|d| d.announcement),
                 "mails": done.as_ref().map(|d| d.fan_out.enqueued) }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(incident = i.id, platform = %i.platform, actor, "incident confirmed");
    Ok(done)
}

/// The notices due for incidents monitoring opened: each confirmed incident whose lists have
/// not heard its present state — opened, restored, back again — is announced, one
/// transaction each, unless a key of it is flapping (then it waits until the key is quiet and
/// tells only the state it settled in). The daemon runs this every half minute and after
/// filing. What went out.
pub async fn announce_due(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<Announced>, AnnounceError> {
    let due = {
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::StoreError::from)?;
        stored::unannounced(&mut conn).await?
    };
    let mut out = Vec::new();
    for id in due {
        let mut tx = store.begin_write().await?;
        // Another instance may have told it meanwhile: decided again under the lock.
        let mut i = load(&mut tx, id).await?;
        let Some(done) = announce_state(&mut tx, config, &mut i, now).await? else {
            tx.rollback().await?;
            continue;
        };
        stored::update_incident(&mut tx, &i).await?;
        tx.commit().await?;
        tracing::info!(
            incident = i.id,
            platform = %i.platform,
            notice = done.notice.as_str(),
            mails = done.fan_out.enqueued,
            "incident notice sent"
        );
        out.push(done);
    }
    Ok(out)
}

/// The notice that brings the lists to `i`'s present state, in the caller's transaction; it
/// records what they heard (`announced_state`, stored by the caller). `None` when they are
/// there already or it is not confirmed.
async fn announce_state(
    conn: &mut AnyConnection,
    config: &Config,
    i: &mut Incident,
    now: Timestamp,
) -> Result<Option<Announced>, AnnounceError> {
    if i.confirmed_at.is_none() || i.announced_state == Some(i.state) {
        return Ok(None);
    }
    let again = if config.settings.language == "en" {
        "The fault has occurred again."
    } else {
        "Die Störung ist erneut aufgetreten."
    };
    let at = now.as_microsecond();
    let (kind, text) = match (i.announced_state, i.state) {
        (None, IncidentState::Open) => (IncidentNotice::Opened, None),
        // Never told while it lasted: the one notice names start, restoration and duration.
        (_, IncidentState::Resolved) => (IncidentNotice::Resolved, None),
        (Some(_), IncidentState::Open) => (IncidentNotice::Update, Some(again)),
    };
    let update = text.map(|text| Update { text, at });
    let done = announce(conn, config, i, kind, update, now).await?;
    i.announced_state = Some(i.state);
    i.changed_at = at;
    Ok(Some(done))
}

/// Tells the lists and the requesters of linked tickets what is new about an open incident.
pub async fn update(
    store: &Store,
    config: &Config,
    id: i64,
    text: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let at = now.as_microsecond();
    let mut tx = store.begin_write().await?;
    let mut i = open_one(&mut tx, id).await?;
    if i.confirmed_at.is_none() {
        return Err(AnnounceError::NotConfirmed(id));
    }
    i.changed_at = at;
    stored::update_incident(&mut tx, &i).await?;
    stored::add_event(&mut tx, i.id, EventKind::Update, text, actor, at).await?;
    let update = Update { text, at };
    let done = announce(
        &mut tx,
        config,
        &i,
        IncidentNotice::Update,
        Some(update),
        now,
    )
    .await?;
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        None,
        None,
        actor,
        "incident_updated",
        &json!({ "incident": i.id, "platform": i.platform, "text": text,
                 "announcement": done.announcement, "mails": done.fan_out.enqueued,
                 "requesters": done.requesters }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(
        incident = i.id,
        platform = %i.platform,
        mails = done.fan_out.enqueued,
        requesters = done.requesters,
        "incident updated"
    );
    Ok(done)
}

/// Resolves an open incident: its outage ends at `restored` (default now), the lists and the
/// requesters of linked tickets hear it is "behoben".
pub async fn resolve(
    store: &Store,
    config: &Config,
    id: i64,
    restored: Option<Timestamp>,
    text: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let at = now.as_microsecond();
    let restored = restored.unwrap_or(now);
    let mut tx = store.begin_write().await?;
    let mut i = open_one(&mut tx, id).await?;
    if restored > now {
        return Err(AnnounceError::BadTime(format!(
            "--at {} lies in the future; resolve the incident once the platform is restored",
            crate::time::for_people(restored)
        )));
    }
    if restored.as_microsecond() < i.started_at {
        return Err(AnnounceError::BadTime(format!(
            "--at {} lies before the incident began ({}); give the time of restoration",
            crate::time::for_people(restored),
            crate::time::for_people(instant(i.started_at)?)
        )));
    }
    i.state = IncidentState::Resolved;
    i.resolved_at = Some(restored.as_microsecond());
    i.changed_at = at;
    if i.confirmed_at.is_none() {
        // Resolving is telling: the lists hear of it now.
        i.confirmed_at = Some(at);
        i.confirmed_by = Some(actor.to_string());
    }
    i.announced_state = Some(IncidentState::Resolved);
    match i.outage_id {
        Some(outage)
            if crate::store::sla::restore_outage(&mut tx, outage, restored.as_microsecond())
                .await? => {}
        // An outage row someone removed: the report still needs the span.
        _ => {
            let outage = crate::store::sla::record_outage(
                &mut tx,
                &i.platform,
                i.started_at,
                i.resolved_at,
                &format!("incident {}", i.id),
                &i.title,
            )
            .await?;
            i.outage_id = Some(outage);
        }
    }
    stored::update_incident(&mut tx, &i).await?;
    stored::add_event(
        &mut tx,
        i.id,
        EventKind::Resolved,
        text.unwrap_or(""),
        actor,
        at,
    )
    .await?;
    let update = text.map(|text| Update { text, at });
    let done = announce(&mut tx, config, &i, IncidentNotice::Resolved, update, now).await?;
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        None,
        None,
        actor,
        "incident_resolved",
        &json!({ "incident": i.id, "platform": i.platform, "restored": restored.to_string(),
                 "text": text, "announcement": done.announcement,
                 "mails": done.fan_out.enqueued, "requesters": done.requesters }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(
        incident = i.id,
        platform = %i.platform,
        restored = %restored,
        mails = done.fan_out.enqueued,
        requesters = done.requesters,
        "incident resolved"
    );
    Ok(done)
}

/// Links tickets to an incident (open or resolved: the record may be completed later; only
/// an open one is raised to class 2 by them).
pub async fn link(
    store: &Store,
    config: &Config,
    id: i64,
    numbers: &[String],
    actor: &str,
    now: Timestamp,
) -> Result<Linked, AnnounceError> {
    let mut tx = store.begin_write().await?;
    let mut i = load(&mut tx, id).await?;
    let class = i.class;
    let mut out = Linked {
        incident: id,
        ..Linked::default()
    };
    for (ticket_id, number) in tickets(&mut tx, numbers).await? {
        if incident_link::link(
            &mut tx, config, &mut i, ticket_id, &number, "command", actor, now,
        )
        .await?
        {
            out.linked.push(number);
        } else {
            out.already.push(number);
        }
    }
    tx.commit().await?;
    out.class = i.class;
    out.raised = i.class != class;
    Ok(out)
}

/// Writes an announcement of `i` with its mails to the lists (threaded under each member's
/// opening notice) and, for updates and the resolution, a mail on every linked ticket to its
/// requester; in the caller's transaction.
async fn announce(
    conn: &mut AnyConnection,
    config: &Config,
    i: &Incident,
    kind: IncidentNotice,
    update: Option<Update<'_>>,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let about = About::Incident(i.id);
    let sequence = announcements::count_about(conn, about).await?;
    let opening = match kind {
        IncidentNotice::Opened => None,
        _ => announcements::first_of_kind(conn, about, IncidentNotice::Opened.as_str()).await?,
    };
    let replies_to = match opening {
        Some(a) => announcements::message_ids(conn, a).await?,
        None => Default::default(),
    };
    let announcement = announcements::insert_announcement(
        conn,
        about,
        kind.as_str(),
        sequence,
        now.as_microsecond(),
    )
    .await?;
    let context = |lang: &'static str| notice::context(config, i, update, lang);
    let n = Notice {
        template: kind.template(),
        lists: &i.lists,
        context: &context,
        calendar: None,
        replies_to: Some(&replies_to),
    };
    let fan_out = fan_out_notice(conn, config, announcement, &n, now).await?;
    let requesters = match kind.ticket_template() {
        Some(template) => tell_requesters(conn, config, i, template, update, now).await?,
        None => 0,
    };
    Ok(Announced {
        incident: i.id,
        announcement,
        notice: kind,
        threaded: if opening.is_some() {
            replies_to.len()
        } else {
            0
        },
        fan_out,
        requesters,
    })
}

/// How many earlier Message-IDs of a ticket a mail's References name besides the first: a
/// long conversation would otherwise grow the header without bound.
const REFERENCES_KEPT: usize = 10;

/// A mail to the requester of every ticket linked to `i`, on that ticket (an outbound
/// article, audited) and in its conversation. Requesters that are no address, or ours, get
/// none. How many were written.
async fn tell_requesters(
    conn: &mut AnyConnection,
    config: &Config,
    i: &Incident,
    template: &'static str,
    update: Option<Update<'_>>,
    now: Timestamp,
) -> Result<usize, AnnounceError> {
    let s = &config.settings;
    let mut buf = WriteBuffer::default();
    let mut written = 0;
    for t in stored::linked_tickets(conn, i.id).await? {
        let requester = t.requester.trim();
        let ours = requester.eq_ignore_ascii_case(&s.outbox.from)
            || s.queues.iter().any(|q| {
                q.staff
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(requester))
            });
        if ours || !crate::diag::is_plausible_address(requester) {
            tracing::info!(incident = i.id, ticket = %t.number, "requester not told: no address of a user");
            continue;
        }
        let thread = stored::conversation(conn, t.ticket_id, requester).await?;
        let mut references: Vec<String> = thread.first().cloned().into_iter().collect();
        let tail = thread.len().saturating_sub(REFERENCES_KEPT).max(1);
        references.extend(thread.iter().skip(tail).cloned());
        let facts = crate::notify::Ticket {
            number: &t.number,
            subject: &t.subject,
            queue: &t.queue,
            severity: u8::try_from(t.severity).unwrap_or(4),
            requester,
            requester_name: t.requester_name.as_deref(),
            received: instant(t.created_at)?,
        };
        let context = notice::for_ticket(config, i, update, &facts);
        outbox::enqueue(
            conn,
            &mut buf,
            config,
            now,
            NewMail {
                ticket_id: Some(t.ticket_id),
                kind: Kind::Notice,
                template,
                recipient: requester,
                in_reply_to: thread.last().map(String::as_str),
                references,
                context: &context,
                attach_raw: None,
            },
        )
        .await?;
        written += 1;
    }
    buf.flush(conn, Backend::of(conn)).await?;
    Ok(written)
}
