//! What runs over the store on its own schedule: SLA escalations and status notices (loops of
//! the daemon), the availability report, retention (a daily loop and `retention run`) and data subject
//! requests (`privacy export`, `privacy erase`).
pub mod escalation;
pub mod privacy;
pub mod report;
pub mod retention;
pub mod status;
