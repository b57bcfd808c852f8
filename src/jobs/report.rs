//! The availability report over the store, handed to the pure computation in
//! [`crate::sla::report`]: on a calendar, the class-1 tickets, maintenance windows and reaction
//! clocks of the calendar; on a platform, its recorded outages (`sla_outages`) and announced
//! maintenance over its own availability calendar.
use jiff::Timestamp;
use jiff::civil::Date;

use crate::config::Platform;
use crate::sla::Calendar;
use crate::sla::report::{Incident, ProblemLine, ReactionRecord, Records, Report, compute};
use crate::store::{self, Store, StoreError};

/// Loads the class-1 incidents, maintenance windows and reaction clocks of `cal` and computes
/// the report.
pub async fn report(
    store: &Store,
    cal: &Calendar,
    from: Date,
    to: Date,
    target: f64,
    now: Timestamp,
) -> Result<Report, StoreError> {
    let t = Timestamp::from_microsecond;
    let (start, end) = period(cal, from, to)?;
    let mut records = Records::default();
    for r in store::sla::report_rows(store, cal.name(), start, end).await? {
        let received = t(r.received_at)?;
        if r.severity == 1 {
            records.incidents.push(Incident {
                received,
                restored: r.closed_at.map(t).transpose()?,
            });
        }
        records.reactions.push(ReactionRecord {
            severity: r.severity,
            received,
            due: t(r.due_at)?,
            met: r.met.map(|m| m != 0),
        });
    }
    records.maintenance = store::sla::maintenance(store, cal.name(), start, end)
        .await?
        .into_iter()
        .map(|(start, end)| Ok((t(start)?, t(end)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(compute(cal, from, to, target, now, &records)?)
}

/// The availability of `platform` over its calendar `cal`: its outages (`sla_outages`, which
/// incidents write) against the service time without its announced maintenance and that of
/// every platform.
pub async fn platform_report(
    store: &Store,
    platform: &Platform,
    cal: &Calendar,
    from: Date,
    to: Date,
    target: f64,
    now: Timestamp,
) -> Result<Report, StoreError> {
    let t = Timestamp::from_microsecond;
    let (start, end) = period(cal, from, to)?;
    let mut records = Records::default();
    for (start, end) in store::sla::outages(store, &platform.name, start, end).await? {
        records.incidents.push(Incident {
            received: t(start)?,
            restored: end.map(t).transpose()?,
        });
    }
    records.maintenance =
        store::sla::platform_maintenance(store, &platform.name, cal.name(), start, end)
            .await?
            .into_iter()
            .map(|(start, end)| Ok((t(start)?, t(end)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
    let mut report = compute(cal, from, to, target, now, &records)?.of_platform(&platform.name);
    // Its problems open at some time in the period: opened before its end, not closed
    // before its start.
    let problems = store::problems::problems(store, None, Some(&platform.name)).await?;
    report.problems = Some(
        problems
            .into_iter()
            .filter(|p| p.opened_at < end && p.closed_at.is_none_or(|c| c >= start))
            .map(|p| {
                Ok(ProblemLine {
                    id: p.id,
                    title: p.title,
                    state: p.state,
                    opened_at: t(p.opened_at)?,
                    closed_at: p.closed_at.map(t).transpose()?,
                    occurrences: p.occurrences,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?,
    );
    Ok(report)
}

/// The report's period `[from, to]` (whole days on the calendar's clock) in UTC µs, end
/// exclusive: what it reads of the store. Records outside change nothing (the computation
/// clips every interval to its periods), and reading only these keeps a report of a month as
/// fast on a store of years as on a new one.
fn period(cal: &Calendar, from: Date, to: Date) -> Result<(i64, i64), StoreError> {
    let midnight = |d: Date| -> Result<i64, StoreError> {
        Ok(d.to_zoned(cal.time_zone().clone())?
            .timestamp()
            .as_microsecond())
    };
    Ok((midnight(from)?, midnight(to.tomorrow()?)?))
}
