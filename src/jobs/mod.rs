//! What runs over the store on its own schedule: SLA escalations (a loop of the daemon) and
//! the availability report.
pub mod escalation;
pub mod report;
