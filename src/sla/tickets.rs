//! Reaction clocks of tickets in the store: started when a ticket is opened, recomputed from
//! the original receipt when its class or queue changes, stopped by the first reaction of staff.
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use sqlx::{AnyConnection, Row};

use super::{Calendar, Class, Deadline};
use crate::config::Settings;
use crate::store::StoreError;
use crate::store::buffer::{Val, WriteBuffer};

/// The calendar of a queue: its own, else the configured default.
pub fn calendar_of<'a>(settings: &'a Settings, queue: &str) -> Option<&'a Arc<Calendar>> {
    let name = settings
        .queue(queue)
        .map_or(settings.sla.default_calendar.as_str(), |q| {
            q.calendar.as_str()
        });
    settings.sla.calendars.get(name)
}

/// The clock of a ticket in `queue` with `severity`, received at `received`. `None` (logged)
/// when the class or the receipt time is outside what a calendar can answer.
fn compute(
    settings: &Settings,
    queue: &str,
    severity: i64,
    received: Timestamp,
) -> Option<(Arc<Calendar>, Deadline)> {
    let class = Class::from_severity(severity)?;
    let cal = calendar_of(settings, queue)?;
    match Deadline::compute(cal, class, received, settings.sla.warn_at_percent) {
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

const COLUMNS: &[&str] = &[
    "ticket_id",
    "calendar",
    "severity",
    "received_at",
    "clock_start",
    "warn_at",
    "due_at",
    "budget",
];

/// Starts the clock of a new ticket (written with the ingest batch).
pub fn on_ticket_created(
    buf: &mut WriteBuffer,
    settings: &Settings,
    ticket_id: i64,
    queue: &str,
    severity: i64,
    received: Timestamp,
) {
    if let Some((cal, d)) = compute(settings, queue, severity, received) {
        buf.push(
            "ticket_sla",
            COLUMNS,
            vec![
                Val::Int(ticket_id),
                Val::Text(cal.name().to_string()),
                Val::Int(severity),
                Val::Int(received.as_microsecond()),
                Val::Int(d.clock_start.as_microsecond()),
                Val::Int(d.warn_at.as_microsecond()),
                Val::Int(d.due.as_microsecond()),
                Val::Int(micros(d.budget)),
            ],
        );
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
    let row = sqlx::query(
        "SELECT t.created_at, s.received_at, s.reacted_at FROM tickets t \
         LEFT JOIN ticket_sla s ON s.ticket_id = t.id WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_one(&mut *conn)
    .await?;
    let created: i64 = row.try_get(0)?;
    let received: Option<i64> = row.try_get(1)?;
    let reacted: Option<i64> = row.try_get(2)?;
    let received = Timestamp::from_microsecond(received.unwrap_or(created))?;
    let Some((cal, d)) = compute(settings, queue, severity, received) else {
        return Ok(());
    };
    let reaction = match reacted {
        Some(r) => Some(judge(&cal, &d, Timestamp::from_microsecond(r)?)?),
        None => None,
    };
    sqlx::query(
        "INSERT INTO ticket_sla (ticket_id, calendar, severity, received_at, clock_start, warn_at, \
         due_at, budget) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (ticket_id) DO UPDATE SET calendar = $2, severity = $3, clock_start = $5, \
         warn_at = $6, due_at = $7, budget = $8",
    )
    .bind(ticket_id)
    .bind(cal.name())
    .bind(severity)
    .bind(received.as_microsecond())
    .bind(d.clock_start.as_microsecond())
    .bind(d.warn_at.as_microsecond())
    .bind(d.due.as_microsecond())
    .bind(micros(d.budget))
    .execute(&mut *conn)
    .await?;
    if let Some(r) = reaction {
        sqlx::query("UPDATE ticket_sla SET met = $1, service_used = $2 WHERE ticket_id = $3")
            .bind(i64::from(r.met))
            .bind(micros(r.service_used))
            .bind(ticket_id)
            .execute(&mut *conn)
            .await?;
    }
    tracing::info!(ticket_id, severity, calendar = cal.name(), due = %d.due, "deadline recomputed");
    Ok(())
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
    let row = sqlx::query(
        "SELECT calendar, clock_start, due_at FROM ticket_sla \
         WHERE ticket_id = $1 AND reacted_at IS NULL",
    )
    .bind(ticket_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let calendar: String = row.try_get(0)?;
    let clock_start = Timestamp::from_microsecond(row.try_get(1)?)?;
    let due = Timestamp::from_microsecond(row.try_get(2)?)?;
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
    sqlx::query(
        "UPDATE ticket_sla SET reacted_at = $1, reacted_by = $2, service_used = $3, met = $4 \
         WHERE ticket_id = $5 AND reacted_at IS NULL",
    )
    .bind(at.as_microsecond())
    .bind(by)
    .bind(micros(service_used))
    .bind(i64::from(reaction.met))
    .bind(ticket_id)
    .execute(&mut *conn)
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

/// A ticket's reaction clock as `tickets show` presents it (instants in RFC 3339 with the
/// Europe/Berlin offset).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlaView {
    pub calendar: String,
    /// The class the deadline was computed for.
    pub class: i64,
    pub received: String,
    pub clock_start: String,
    pub warn_at: String,
    pub due: String,
    pub reacted: Option<String>,
    pub reacted_by: Option<String>,
    /// `true` met, `false` breached, `None` no reaction yet.
    pub met: Option<bool>,
    pub service_used_minutes: Option<i64>,
}

/// The clock of one ticket, if it has one.
pub async fn view(conn: &mut AnyConnection, ticket_id: i64) -> Result<Option<SlaView>, StoreError> {
    let Some(r) = sqlx::query(
        "SELECT calendar, severity, received_at, clock_start, warn_at, due_at, reacted_at, \
         reacted_by, met, service_used FROM ticket_sla WHERE ticket_id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let tz = crate::time::berlin()?;
    let local = |v: i64| -> Result<String, StoreError> {
        let t = Timestamp::from_microsecond(v)?;
        Ok(t.display_with_offset(tz.to_offset(t)).to_string())
    };
    let reacted: Option<i64> = r.try_get(6)?;
    let met: Option<i64> = r.try_get(8)?;
    let used: Option<i64> = r.try_get(9)?;
    Ok(Some(SlaView {
        calendar: r.try_get(0)?,
        class: r.try_get(1)?,
        received: local(r.try_get(2)?)?,
        clock_start: local(r.try_get(3)?)?,
        warn_at: local(r.try_get(4)?)?,
        due: local(r.try_get(5)?)?,
        reacted: reacted.map(local).transpose()?,
        reacted_by: r.try_get(7)?,
        met: met.map(|m| m != 0),
        service_used_minutes: used.map(|u| u / 60_000_000),
    }))
}
