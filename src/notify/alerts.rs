//! What the templates of monitoring alerts and problems see (issue 19).
//!
//! `alarm-flattert` and `alarm-stabil` (to the queue's staff, on the incident ticket) see the
//! ticket's names as every mail on a ticket does (`ticket`, `ticket_tag`, `sender_name`) and
//! `alert`: `key`, `state` (`problem` or `recovered`), `severity`, `changes` (state changes
//! within the window), `window_minutes`, `since_local` (when it began flapping).
//!
//! `problem-erkannt` (to the queue's escalation address) sees `problem`: `id`, `title` (the
//! alert key or the subject), `queue`, `platform`, `count`, `window_days`, `tickets` (each
//! `number`, `subject`, `at_local`), and `sender_name`.
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Ticket, common, local, single_line};
use crate::config::Config;

/// An alert as its mails name it.
#[derive(Debug, Clone, Copy)]
pub struct AlertFacts<'a> {
    pub key: &'a str,
    /// `problem` or `recovered`.
    pub state: &'a str,
    pub severity: Option<&'a str>,
    pub changes: usize,
    pub window_minutes: i64,
    pub since: Option<Timestamp>,
}

/// The context of `alarm-flattert` and `alarm-stabil`.
pub fn for_alert(config: &Config, t: &Ticket<'_>, a: &AlertFacts<'_>) -> Value {
    let tz = crate::time::berlin_or_utc();
    let mut v = common(config, &tz, t);
    v["alert"] = json!({
        "key": single_line(a.key),
        "state": a.state,
        "severity": a.severity.map(single_line),
        "changes": a.changes,
        "window_minutes": a.window_minutes,
        "since_local": a.since.map(|s| local(s, &tz)),
    });
    v
}

/// One occurrence of a problem.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence<'a> {
    pub number: &'a str,
    pub subject: &'a str,
    pub at: Timestamp,
}

/// A problem as its notice names it.
#[derive(Debug, Clone, Copy)]
pub struct ProblemFacts<'a> {
    pub id: i64,
    pub title: &'a str,
    pub queue: &'a str,
    pub platform: Option<&'a str>,
    pub window_days: u32,
    pub occurrences: &'a [Occurrence<'a>],
}

/// The context of `problem-erkannt`.
pub fn for_problem(config: &Config, p: &ProblemFacts<'_>) -> Value {
    let tz = crate::time::berlin_or_utc();
    json!({
        "sender_name": config.settings.outbox.from_name,
        "ticket_tag": config.settings.ticket_tag,
        "problem": {
            "id": p.id,
            "title": single_line(p.title),
            "queue": p.queue,
            "platform": p.platform,
            "count": p.occurrences.len(),
            "window_days": p.window_days,
            "tickets": p.occurrences.iter().map(|o| json!({
                "number": o.number,
                "subject": single_line(o.subject),
                "at_local": local(o.at, &tz),
            })).collect::<Vec<_>>(),
        },
    })
}

/// Samples for checking the templates.
pub fn samples(config: &Config) -> (Value, Value) {
    let at = Timestamp::from_second(1_795_943_643).unwrap_or(Timestamp::UNIX_EPOCH);
    let t = Ticket {
        number: "2026112510000001",
        subject: "[PROBLEM] HTTPS portal on web01.example is CRITICAL!",
        queue: "betrieb",
        severity: 1,
        requester: "icinga@monitor.example",
        requester_name: None,
        received: at,
    };
    let alert = for_alert(
        config,
        &t,
        &AlertFacts {
            key: "icinga:web01.example/https",
            state: "problem",
            severity: Some("critical"),
            changes: 6,
            window_minutes: 60,
            since: Some(at),
        },
    );
    let occurrences = [
        Occurrence {
            number: "2026112510000001",
            subject: "Drucker druckt nicht",
            at,
        },
        Occurrence {
            number: "2026112610000004",
            subject: "Drucker druckt nicht",
            at,
        },
    ];
    let problem = for_problem(
        config,
        &ProblemFacts {
            id: 1,
            title: "Drucker druckt nicht",
            queue: "support",
            platform: None,
            window_days: 7,
            occurrences: &occurrences,
        },
    );
    (alert, problem)
}
