//! Reaction clocks of tickets in the store: started when a ticket is opened, recomputed from
//! the original receipt when its class or queue changes, stopped by the first reaction of staff.
//! On a calendar with `maintenance_is_closed` the deadline goes around the announced windows
//! (`sla_maintenance`) known when it is computed.
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use sqlx::AnyConnection;

use crate::config::Settings;
use crate::sla::{Calendar, Class, Deadline};
use crate::store::buffer::WriteBuffer;
use crate::store::sla::{self as rows, AnnouncedWindow, NewClock};
use crate::store::{Store, StoreError};

/// The calendar of a queue: its own, else the configured default.
pub fn calendar_of<'a>(settings: &'a Settings, queue: &str) -> Option<&'a Arc<Calendar>> {
    let name = settings
        .queue(queue)
        .map_or(settings.sla.default_calendar.as_str(), |q| {
            q.calendar.as_str()
        });
    settings.sla.calendars.get(name)
}

/// Whether the calendar of any queue stops its clock during announced maintenance, so that
/// filing needs the announced windows.
pub fn needs_announced_windows(settings: &Settings) -> bool {
    let closes = |name: &str| {
        settings
            .sla
            .calendars
            .get(name)
            .is_some_and(|c| c.spec().maintenance_is_closed)
    };
    closes(&settings.sla.default_calendar) || settings.queues.iter().any(|q| closes(&q.calendar))
}

/// The announced windows during which the clock on `cal` stands still: none unless the
/// calendar says so; else those for every calendar and for `cal` (of every platform, as
/// tickets name none).
fn closed_windows(cal: &Calendar, windows: &[AnnouncedWindow]) -> Vec<(Timestamp, Timestamp)> {
    if !cal.spec().maintenance_is_closed {
        return Vec::new();
    }
    windows
        .iter()
        .filter(|w| w.calendar.as_deref().is_none_or(|c| c == cal.name()))
        .filter_map(|w| {
            Some((
                Timestamp::from_microsecond(w.starts_at).ok()?,
                Timestamp::from_microsecond(w.ends_at).ok()?,
            ))
        })
        .collect()
}

/// The clock of a ticket in `queue` with `severity`, received at `received`, around the
/// announced `windows` (read with [`crate::store::sla::announced_windows`]). `None` (logged)
/// when the class or the receipt time is outside what a calendar can answer.
fn compute(
    settings: &Settings,
    queue: &str,
    severity: i64,
    received: Timestamp,
    windows: &[AnnouncedWindow],
) -> Option<(Arc<Calendar>, Deadline)> {
    let class = Class::from_severity(severity)?;
    let cal = calendar_of(settings, queue)?;
    let closed = closed_windows(cal, windows);
    match Deadline::compute_around(cal, class, received, settings.sla.warn_at_percent, &closed) {
        Ok(d) => Some((Arc::clone(cal), d)),
        Err(e) => {
            tracing::warn!(queue, severity, %received, error = %e, "no reaction deadline");
            None
        }
    }
}

fn micros(d: SignedDuration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn new_clock(
    ticket_id: i64,
    cal: &Calendar,
    severity: i64,
    received: Timestamp,
    d: &Deadline,
) -> NewClock {
    NewClock {
        ticket_id,
        calendar: cal.name().to_string(),
        severity,
        received_at: received.as_microsecond(),
        clock_start: d.clock_start.as_microsecond(),
        warn_at: d.warn_at.as_microsecond(),
        due_at: d.due.as_microsecond(),
        budget: micros(d.budget),
    }
}

/// Starts the clock of a new ticket (written with the ingest batch); `windows` are the
/// announced windows that end after `received`.
pub fn on_ticket_created(
    buf: &mut WriteBuffer,
    settings: &Settings,
    ticket_id: i64,
    queue: &str,
    severity: i64,
    received: Timestamp,
    windows: &[AnnouncedWindow],
) {
    if let Some((cal, d)) = compute(settings, queue, severity, received, windows) {
        buf.clock(&new_clock(ticket_id, &cal, severity, received, &d));
    }
}

/// A recorded first reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub at: Timestamp,
    pub met: bool,
    pub service_used: SignedDuration,
}

/// Recomputes a ticket's clock for its current class and queue, from the original receipt
/// (the ticket's creation when it predates deadlines); a reaction already recorded is judged
/// again against the new deadline.
pub async fn recompute(
    conn: &mut AnyConnection,
    settings: &Settings,
    ticket_id: i64,
    queue: &str,
    severity: i64,
) -> Result<(), StoreError> {
    let basis = rows::clock_basis(conn, ticket_id).await?;
    let (created, received, reacted) = (basis.created_at, basis.received_at, basis.reacted_at);
    let received = Timestamp::from_microsecond(received.unwrap_or(created))?;
    let closes = calendar_of(settings, queue).is_some_and(|c| c.spec().maintenance_is_closed);
    let windows = if closes {
        rows::announced_windows(conn, received.as_microsecond()).await?
    } else {
        Vec::new()
    };
    let Some((cal, d)) = compute(settings, queue, severity, received, &windows) else {
        return Ok(());
    };
    let reaction = match reacted {
        Some(r) => Some(judge(&cal, &d, Timestamp::from_microsecond(r)?)?),
        None => None,
    };
    rows::replace_clock(conn, &new_clock(ticket_id, &cal, severity, received, &d)).await?;
    if let Some(r) = reaction {
        rows::judge_reaction(conn, ticket_id, r.met, micros(r.service_used)).await?;
    }
    tracing::info!(ticket_id, severity, calendar = cal.name(), due = %d.due, "deadline recomputed");
    Ok(())
}

/// Moves the running clocks a newly announced window starting at `starts_at` may reach: those
/// on calendars with `maintenance_is_closed` whose deadline lies after its start are
/// recomputed around every announced window (emergency maintenance comes at short notice). Call it in the transaction that records the window in
/// `sla_maintenance`, after the row is written. The number of clocks recomputed.
pub async fn on_window_announced(
    conn: &mut AnyConnection,
    settings: &Settings,
    starts_at: Timestamp,
) -> Result<usize, StoreError> {
    let closing: Vec<&str> = settings
        .sla
        .calendars
        .names()
        .filter(|n| {
            settings
                .sla
                .calendars
                .get(n)
                .is_some_and(|c| c.spec().maintenance_is_closed)
        })
        .collect();
    let clocks = rows::clocks_running_past(conn, &closing, starts_at.as_microsecond()).await?;
    for c in &clocks {
        recompute(conn, settings, c.ticket_id, &c.queue, c.severity).await?;
    }
    Ok(clocks.len())
}

fn judge(cal: &Calendar, d: &Deadline, at: Timestamp) -> Result<Reaction, StoreError> {
    let service_used = cal.service_time(d.clock_start, at)?;
    Ok(Reaction {
        at,
        met: at <= d.due,
        service_used,
    })
}

/// Records the first reaction of staff on a ticket; later ones (and tickets without a clock)
/// change nothing. Returns the reaction when this was the first.
pub async fn record_reaction(
    conn: &mut AnyConnection,
    settings: &Settings,
    ticket_id: i64,
    at: Timestamp,
    by: &str,
) -> Result<Option<Reaction>, StoreError> {
    let Some(running) = rows::running_clock(conn, ticket_id).await? else {
        return Ok(None);
    };
    let calendar = running.calendar;
    let clock_start = Timestamp::from_microsecond(running.clock_start)?;
    let due = Timestamp::from_microsecond(running.due_at)?;
    let Some(cal) = settings.sla.calendars.get(&calendar) else {
        tracing::warn!(
            ticket_id,
            calendar,
            "calendar no longer configured; reaction not judged"
        );
        return Ok(None);
    };
    let service_used = cal.service_time(clock_start, at)?;
    let reaction = Reaction {
        at,
        met: at <= due,
        service_used,
    };
    rows::stop_clock(
        conn,
        ticket_id,
        at.as_microsecond(),
        by,
        micros(service_used),
        reaction.met,
    )
    .await?;
    tracing::info!(
        ticket_id,
        by,
        met = reaction.met,
        service_used_minutes = service_used.as_secs() / 60,
        "first reaction"
    );
    Ok(Some(reaction))
}

/// A mail filed on a ticket: from the queue's staff address it is staff's reaction.
pub async fn on_inbound_mail(
    conn: &mut AnyConnection,
    settings: &Settings,
    ticket_id: i64,
    queue: &str,
    sender: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let staff = settings.queue(queue).and_then(|q| q.staff.as_deref());
    if staff.is_some_and(|s| s.eq_ignore_ascii_case(sender)) {
        record_reaction(conn, settings, ticket_id, at, sender).await?;
    }
    Ok(())
}

/// A ticket's reaction clock as `tickets show` presents it (instants in RFC 3339, UTC, in
/// JSON, as every instant of the ticket views).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlaView {
    pub calendar: String,
    /// The class the deadline was computed for.
    pub class: i64,
    pub received: Timestamp,
    pub clock_start: Timestamp,
    pub warn_at: Timestamp,
    pub due: Timestamp,
    pub reacted: Option<Timestamp>,
    pub reacted_by: Option<String>,
    /// `true` met, `false` breached, `None` no reaction yet.
    pub met: Option<bool>,
    pub service_used_minutes: Option<i64>,
}

/// The clock of one ticket, if it has one.
pub async fn view(store: &Store, ticket_id: i64) -> Result<Option<SlaView>, StoreError> {
    let Some(r) = rows::clock_of(store, ticket_id).await? else {
        return Ok(None);
    };
    let t = |v: i64| Timestamp::from_microsecond(v);
    Ok(Some(SlaView {
        calendar: r.calendar,
        class: r.severity,
        received: t(r.received_at)?,
        clock_start: t(r.clock_start)?,
        warn_at: t(r.warn_at)?,
        due: t(r.due_at)?,
        reacted: r.reacted_at.map(t).transpose()?,
        reacted_by: r.reacted_by,
        met: r.met.map(|m| m != 0),
        service_used_minutes: r.service_used.map(|u| u / 60_000_000),
    }))
}
