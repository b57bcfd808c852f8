//! What templates see: the one place that turns a ticket, a message and a decision into the
//! context of an acknowledgement, a staff copy, a forward or an SLA notice. Every template of
//! every language reads the same names (`ticket`, `requester`, `service`, `article`, `sla`,
//! `follow_up`, `ticket_tag`, `sender_name`), documented in README.md, "Templates".
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::classify::{self, ServiceMatch};
use crate::config::Config;
use crate::message::InboundMessage;

/// A ticket as mail about it names it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket<'a> {
    pub number: &'a str,
    pub subject: &'a str,
    pub queue: &'a str,
    pub severity: u8,
    pub requester: &'a str,
    pub requester_name: Option<&'a str>,
    /// When the request arrived (its Date, else when it was filed).
    pub received: Timestamp,
}

/// Dates as a person in Germany reads them: `24.12.2026 09:30`, Europe/Berlin.
fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%d.%m.%Y %H:%M")
        .to_string()
}

fn common(config: &Config, tz: &TimeZone, t: &Ticket<'_>) -> Value {
    let s = &config.settings;
    json!({
        "ticket_tag": s.ticket_tag,
        "sender_name": s.outbox.from_name,
        "ticket": {
            "number": t.number,
            "subject": t.subject,
            "queue": t.queue,
            "severity": t.severity,
            "severity_name": classify::class_name(t.severity),
            "received_local": local(t.received, tz),
            "requester": t.requester,
        },
        "requester": { "address": t.requester, "name": t.requester_name },
    })
}

/// The context of mail caused by an inbound message: the acknowledgement and other automatic
/// replies, the staff copy (`follow_up` when the message added to an existing ticket), forwards.
pub fn for_message(
    config: &Config,
    tz: &TimeZone,
    t: &Ticket<'_>,
    msg: &InboundMessage,
    service: Option<&ServiceMatch>,
    follow_up: bool,
) -> Value {
    let mut v = common(config, tz, t);
    v["service"] = json!(service);
    v["article"] = json!({
        "from": msg.from_address(),
        "subject": msg.subject,
        "body": msg.body,
        "attachments": msg.attachments,
    });
    v["follow_up"] = json!(follow_up);
    v
}

/// The context of an SLA notice to the next support level.
pub fn for_sla_notice(
    config: &Config,
    tz: &TimeZone,
    t: &Ticket<'_>,
    kind: &str,
    calendar: &str,
    due: Timestamp,
) -> Value {
    let mut v = common(config, tz, t);
    v["sla"] = json!({
        "kind": kind,
        "calendar": calendar,
        "due_local": local(due, tz),
        "warn_at_percent": config.settings.sla.warn_at_percent,
    });
    v
}
