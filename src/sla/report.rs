//! The availability report (MISSION §4): per month and in total, the outage time inside
//! service time, without announced maintenance, as availability against a target; and, for a
//! calendar's report, how many reaction deadlines were met or breached per class.
//!
//! Availability = 1 − outage / (service time − maintenance), all measured on the report's
//! calendar. Overlapping outages count once: an outage is an outage, however many report it.
//! What an outage is depends on the report: on a calendar, the class-1 tickets on it (received
//! → closed); on a platform, its recorded outages (incidents: start → restoration).
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Serialize;

use super::{Calendar, SlaError};

/// An outage: from a class-1 report's receipt or an incident's start to its restoration
/// (`None` while it lasts).
#[derive(Debug, Clone, Copy)]
pub struct Incident {
    pub received: Timestamp,
    pub restored: Option<Timestamp>,
}

/// The reaction clock of one ticket, for the met/breached counts.
#[derive(Debug, Clone, Copy)]
pub struct ReactionRecord {
    pub severity: i64,
    pub received: Timestamp,
    pub due: Timestamp,
    /// `Some(true)` met, `Some(false)` breached, `None` no reaction yet.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Reactions {
    pub met: u32,
    pub breached: u32,
    /// No reaction yet and the deadline still ahead.
    pub open: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Period {
    /// `2026-11`, or `total`.
    pub period: String,
    pub service_seconds: i64,
    pub maintenance_seconds: i64,
    pub outage_seconds: i64,
    pub availability_percent: f64,
    pub target_percent: f64,
    pub target_met: bool,
    /// Classes 1–4; `None` in a platform's report (reaction deadlines belong to queues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<[Reactions; 4]>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The platform whose availability this is; `None` for a calendar's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub calendar: String,
    #[serde(serialize_with = "display")]
    pub from: Date,
    #[serde(serialize_with = "display")]
    pub to: Date,
    pub months: Vec<Period>,
    pub total: Period,
    /// A platform's problems (recurring incidents, issue 19) open at some time in the
    /// report's period; left out of a calendar's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<ProblemLine>>,
}

/// A problem as the availability report lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProblemLine {
    pub id: i64,
    pub title: String,
    pub state: String,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// Incidents recorded with it.
    pub occurrences: i64,
}

fn display<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Sorted, merged intervals.
fn merge(mut v: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    v.retain(|(a, b)| a < b);
    v.sort();
    let mut out: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `a` without the parts covered by `b` (both merged).
fn subtract(
    a: &[(Timestamp, Timestamp)],
    b: &[(Timestamp, Timestamp)],
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    for &(mut start, end) in a {
        for &(bs, be) in b {
            if be <= start || bs >= end {
                continue;
            }
            if bs > start {
                out.push((start, bs));
            }
            start = start.max(be);
        }
        if start < end {
            out.push((start, end));
        }
    }
    out
}

fn service_in(
    cal: &Calendar,
    intervals: &[(Timestamp, Timestamp)],
    from: Timestamp,
    to: Timestamp,
) -> Result<SignedDuration, SlaError> {
    let mut total = SignedDuration::ZERO;
    for &(a, b) in intervals {
        total += cal.service_time(a.max(from), b.min(to))?;
    }
    Ok(total)
}

/// What a report is computed from.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// The outages: class-1 tickets, or a platform's incidents.
    pub incidents: Vec<Incident>,
    /// Announced maintenance windows.
    pub maintenance: Vec<(Timestamp, Timestamp)>,
    pub reactions: Vec<ReactionRecord>,
}

/// The report over `[from, to]` (whole local days) from already loaded records.
pub fn compute(
    cal: &Calendar,
    from: Date,
    to: Date,
    target: f64,
    now: Timestamp,
    records: &Records,
) -> Result<Report, SlaError> {
    let (incidents, reactions) = (&records.incidents, &records.reactions);
    let tz = cal.time_zone();
    let midnight =
        |d: Date| -> Result<Timestamp, SlaError> { Ok(d.to_zoned(tz.clone())?.timestamp()) };
    let outages = merge(
        incidents
            .iter()
            .map(|i| {
                (
                    i.received,
                    i.restored.unwrap_or(now).min(now.max(i.received)),
                )
            })
            .collect(),
    );
    let maintenance = merge(records.maintenance.clone());
    let outages = subtract(&outages, &maintenance);

    let period = |label: String, start: Timestamp, end: Timestamp| -> Result<Period, SlaError> {
        let service = cal.service_time(start, end)?;
        let maint = service_in(cal, &maintenance, start, end)?;
        let outage = service_in(cal, &outages, start, end)?;
        let agreed = service - maint;
        let availability = if agreed.is_zero() {
            100.0
        } else {
            100.0 * (1.0 - outage.as_secs_f64() / agreed.as_secs_f64())
        };
        let mut counts = [Reactions::default(); 4];
        for r in reactions
            .iter()
            .filter(|r| r.received >= start && r.received < end)
        {
            let Some(c) = usize::try_from(r.severity - 1)
                .ok()
                .and_then(|i| counts.get_mut(i))
            else {
                continue;
            };
            match r.met {
                Some(true) => c.met += 1,
                Some(false) => c.breached += 1,
                None if r.due < now => c.breached += 1,
                None => c.open += 1,
            }
        }
        Ok(Period {
            period: label,
            service_seconds: service.as_secs(),
            maintenance_seconds: maint.as_secs(),
            outage_seconds: outage.as_secs(),
            availability_percent: (availability * 1000.0).round() / 1000.0,
            target_percent: target,
            target_met: availability >= target,
            reactions: Some(counts),
        })
    };

    let end = midnight(to.tomorrow()?)?;
    let mut months = Vec::new();
    let mut month_start = from;
    while month_start <= to {
        let next = month_start.first_of_month().checked_add(1.month())?;
        let stop = if next > to { to.tomorrow()? } else { next };
        months.push(period(
            month_start.strftime("%Y-%m").to_string(),
            midnight(month_start)?,
            midnight(stop)?,
        )?);
        month_start = next;
    }
    let total = period("total".into(), midnight(from)?, end)?;
    Ok(Report {
        platform: None,
        calendar: cal.name().to_string(),
        from,
        to,
        months,
        total,
        problems: None,
    })
}

impl Report {
    /// The report as a platform's: named after it, without reaction counts, which belong to
    /// the queues' calendars.
    pub fn of_platform(mut self, platform: &str) -> Report {
        self.platform = Some(platform.to_string());
        for p in self.months.iter_mut().chain([&mut self.total]) {
            p.reactions = None;
        }
        self
    }
}
