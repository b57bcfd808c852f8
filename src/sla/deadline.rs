//! Reaction deadlines (MISSION §2–§3).
//!
//! Classes 1–3 have a budget of service time: the clock starts at receipt, or at the next
//! opening when the report arrives outside service hours, runs only inside service intervals,
//! and a budget used up exactly at a closing time ends at that instant. Class 4 is due at the
//! close of service on the 2nd service day strictly after the local day of receipt.
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
        let clock_start = cal.advance(received, SignedDuration::ZERO)?;
        let due = deadline(cal, class, received)?;
        let budget = match class.budget() {
            Some(b) => b,
            None => cal.service_time(clock_start, due)?,
        };
        let warn_budget = budget.as_nanos() * i128::from(warn_percent.min(100)) / 100;
        let warn_at = cal.advance(
            clock_start,
            SignedDuration::from_nanos(i64::try_from(warn_budget).unwrap_or(i64::MAX)),
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
