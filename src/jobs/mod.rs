//! What runs over the store on its own schedule: SLA escalations and status notices (loops of
//! the daemon) and the availability report.
pub mod escalation;
pub mod report;
pub mod status;
