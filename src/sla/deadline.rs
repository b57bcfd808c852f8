//! Reaction deadlines (MISSION §2–§3).
//!
//! Classes 1–3 have a budget of service time: the clock starts at receipt, or at the next
//! opening when the report arrives outside service hours, runs only inside service intervals,
//! and a budget used up exactly at a closing time ends at that instant. Class 4 is due at the
//! close of service on the 2nd service day strictly after the local day of receipt.
//!
//! On a calendar whose announced maintenance is no service time (`maintenance_is_closed`,
//! `rlp`), the clock also stands still inside announced windows: a deadline that spans one
//! moves by the window's service time, and a report received during one starts the clock at
//! its end (at the next opening after it).
use jiff::{SignedDuration, Timestamp};

use super::{Calendar, Class, SlaError};

/// The deadline of a report of `class` received at `received`.
pub fn deadline(cal: &Calendar, class: Class, received: Timestamp) -> Result<Timestamp, SlaError> {
    match class.budget() {
        Some(budget) => cal.advance(received, budget),
        None => cal.close_of_service_day_after(received, 2),
    }
}

/// A ticket's reaction clock: everything the store and the escalation loop need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub class: Class,
    /// Where the clock starts: receipt, or the next opening after it.
    pub clock_start: Timestamp,
    /// When the warning share of the budget is used up.
    pub warn_at: Timestamp,
    pub due: Timestamp,
    /// Service time between `clock_start` and `due` (for class 4 what its days hold).
    pub budget: SignedDuration,
}

impl Deadline {
    /// The clock of a report received at `received`, warning when `warn_percent` of the budget
    /// is used up.
    pub fn compute(
        cal: &Calendar,
        class: Class,
        received: Timestamp,
        warn_percent: u8,
    ) -> Result<Deadline, SlaError> {
        Deadline::compute_around(cal, class, received, warn_percent, &[])
    }

    /// [`Deadline::compute`] with the clock standing still inside `closed` (announced
    /// maintenance windows `(start, end)`, in any order, overlapping or not).
    pub fn compute_around(
        cal: &Calendar,
        class: Class,
        received: Timestamp,
        warn_percent: u8,
        closed: &[(Timestamp, Timestamp)],
    ) -> Result<Deadline, SlaError> {
        let closed = merge(closed);
        let plain_start = cal.advance(received, SignedDuration::ZERO)?;
        let budget = match class.budget() {
            Some(b) => b,
            None => cal.service_time(plain_start, deadline(cal, class, received)?)?,
        };
        let mut clock_start = plain_start;
        while let Some(&(_, end)) = closed
            .iter()
            .find(|(s, e)| *s <= clock_start && clock_start < *e)
        {
            clock_start = cal.advance(end, SignedDuration::ZERO)?;
        }
        let due = advance_around(cal, clock_start, budget, &closed)?;
        let warn_budget = budget.as_nanos() * i128::from(warn_percent.min(100)) / 100;
        let warn_at = advance_around(
            cal,
            clock_start,
            SignedDuration::from_nanos(i64::try_from(warn_budget).unwrap_or(i64::MAX)),
            &closed,
        )?;
        Ok(Deadline {
            class,
            clock_start,
            warn_at,
            due,
            budget,
        })
    }
}

/// Sorted, merged, non-empty intervals.
fn merge(v: &[(Timestamp, Timestamp)]) -> Vec<(Timestamp, Timestamp)> {
    let mut v: Vec<_> = v.iter().copied().filter(|(a, b)| a < b).collect();
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

/// The instant at which `budget` of service time outside `closed` (merged), counted from
/// `from`, is used up. Each round adds the service time the windows took out of the span so
/// far; the span only grows, so the rounds end once no further window falls into it (a
/// budget used up exactly where a window begins gives that instant).
fn advance_around(
    cal: &Calendar,
    from: Timestamp,
    budget: SignedDuration,
    closed: &[(Timestamp, Timestamp)],
) -> Result<Timestamp, SlaError> {
    let mut taken = SignedDuration::ZERO;
    loop {
        let until = cal.advance(from, budget + taken)?;
        let mut inside = SignedDuration::ZERO;
        for &(s, e) in closed {
            if s >= until {
                break;
            }
            inside += cal.service_time(s.max(from), e.min(until))?;
        }
        if inside <= taken {
            return Ok(until);
        }
        taken = inside;
    }
}
