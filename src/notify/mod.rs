//! What templates see: the one place that turns a ticket, a message and a decision into the
//! context of an acknowledgement, a staff copy, a forward or an SLA notice. Every template of
//! every language reads the same names (`ticket`, `requester`, `service`, `article`, `sla`,
//! `follow_up`, `ticket_tag`, `sender_name`), documented in README.md, "Templates".
pub mod alerts;
pub mod incident;
pub mod maintenance;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::classify::{self, ServiceMatch};
use crate::config::Config;
use crate::diag::is_invisible_format;
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

/// Header text from a mail (a name, a subject) as one line: line breaks and other control
/// characters become blanks, so that a display name like `Eve\r\nBcc: …` cannot start a line
/// of its own in our mail. Runs of blanks shrink to one.
pub fn single_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for c in text.chars() {
        let c = if c.is_control() || is_invisible_format(c) {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if !blank && !out.is_empty() {
                out.push(' ');
            }
            blank = true;
        } else {
            out.push(c);
            blank = false;
        }
    }
    out.truncate(out.trim_end().len());
    out
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
            "subject": single_line(t.subject),
            "queue": t.queue,
            "severity": t.severity,
            "severity_name": classify::class_name(t.severity),
            "received_local": local(t.received, tz),
            "requester": single_line(t.requester),
        },
        "requester": {
            "address": single_line(t.requester),
            "name": t.requester_name.map(single_line),
        },
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
    let (body, shortened) = excerpt(&msg.body);
    v["article"] = json!({
        "from": msg.from_address().map(single_line),
        "subject": single_line(&msg.subject),
        "body": body,
        "body_shortened": shortened,
        "attachments": msg.attachments,
    });
    v["follow_up"] = json!(follow_up);
    v
}

/// How much of a message's text our mail quotes. The staff copy carries the original as an
/// attachment, so a longer text adds nothing but size: a 20 MB text would otherwise be copied
/// into every context and stored again in the outbox with each mail.
pub const BODY_EXCERPT: usize = 64 * 1024;

/// The start of `body`, at most [`BODY_EXCERPT`] bytes, cut at a line end where there is one
/// in its last quarter; and whether it was shortened.
fn excerpt(body: &str) -> (&str, bool) {
    if body.len() <= BODY_EXCERPT {
        return (body, false);
    }
    let mut end = BODY_EXCERPT;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &body[..end];
    let cut = match cut.rfind('\n') {
        Some(i) if i >= BODY_EXCERPT * 3 / 4 => &cut[..i],
        _ => cut,
    };
    (cut, true)
}

/// One article of a ticket's history as mail about the ticket quotes it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// `inbound`, `note` or `answer` (relayed to the requester).
    pub kind: &'a str,
    pub from: Option<&'a str>,
    pub at: Timestamp,
    pub subject: &'a str,
    pub body: &'a str,
    /// The body was cut before it reached us.
    pub shortened: bool,
    pub attachments: &'a [crate::message::Attachment],
}

impl Entry<'_> {
    fn context(&self, tz: &TimeZone) -> Value {
        let (body, cut) = excerpt(self.body);
        let quoted: String = body
            .lines()
            .map(|l| {
                if l.is_empty() {
                    ">\n".to_string()
                } else {
                    format!("> {l}\n")
                }
            })
            .collect();
        json!({
            "kind": self.kind,
            "from": self.from.map(single_line),
            "at_local": local(self.at, tz),
            "subject": single_line(self.subject),
            "body": body,
            "quoted": quoted.trim_end(),
            "body_shortened": self.shortened || cut,
            "attachments": self.attachments,
        })
    }
}

/// A ticket handed from one queue to another.
#[derive(Debug, Clone)]
pub struct HandOver<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Who handed it over (a staff member, `poststelle` for an escalation).
    pub by: &'a str,
    /// The reaction deadline that passed, when an escalation handed it on.
    pub escalated: Option<Timestamp>,
    /// The Nutzerkonto question's state, origin and Betreff.
    pub nutzerkonto: Option<(&'a str, &'a str, &'a str)>,
    /// The service whose contact person the requester is told in the same change.
    pub contact_reply: Option<&'a ServiceMatch>,
    /// The ticket's first mail goes along as the original.
    pub original_attached: bool,
}

/// The context of the copy that hands a ticket to another queue's staff: the ticket (in its
/// new queue), `handover`, and its `history` — `history_omitted` older articles left out.
pub fn for_handover(
    config: &Config,
    tz: &TimeZone,
    t: &Ticket<'_>,
    h: &HandOver<'_>,
    history: &[Entry<'_>],
    omitted: usize,
) -> Value {
    let mut v = common(config, tz, t);
    v["handover"] = json!({
        "from": h.from,
        "to": h.to,
        "by": single_line(h.by),
        "escalation": h.escalated.map(|due| json!({ "due_local": local(due, tz) })),
        "contact_reply": h.contact_reply,
    });
    v["nutzerkonto"] = match h.nutzerkonto {
        Some((state, origin, betreff)) => json!({
            "state": state, "origin": origin, "betreff": single_line(betreff),
        }),
        None => Value::Null,
    };
    v["history"] = Value::Array(history.iter().map(|e| e.context(tz)).collect());
    v["history_omitted"] = json!(omitted);
    v["original_attached"] = json!(h.original_attached);
    v
}

/// The context of an automatic reply about a stored ticket (the Nutzerkonto contact person
/// named when clearing hands the question to its Ressort): the same names as
/// [`for_message`], with `article` the mail the ticket began with.
pub fn for_ticket_reply(
    config: &Config,
    tz: &TimeZone,
    t: &Ticket<'_>,
    first: Option<&Entry<'_>>,
    service: Option<&ServiceMatch>,
) -> Value {
    let mut v = common(config, tz, t);
    v["service"] = json!(service);
    v["article"] = match first {
        Some(e) => {
            let (body, cut) = excerpt(e.body);
            json!({
                "from": e.from.map(single_line),
                "subject": single_line(e.subject),
                "body": body,
                "body_shortened": e.shortened || cut,
                "attachments": e.attachments,
            })
        }
        None => json!({
            "from": null, "subject": single_line(t.subject), "body": "",
            "body_shortened": false, "attachments": [],
        }),
    };
    v["follow_up"] = json!(false);
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

/// What a status notice (or a pending reminder) says beyond its ticket.
#[derive(Debug, Clone, Default)]
pub struct Status<'a> {
    /// The ticket's state now (`open`, `pending`, `resolved`, `closed`).
    pub state: &'a str,
    /// What changed: (`state` | `class` | `level`, from, to).
    pub changes: Vec<(&'static str, Value, Value)>,
    /// The support level now (1, 2, 3).
    pub level: u8,
    pub pending_until: Option<Timestamp>,
    pub assignee: Option<&'a str>,
    /// The latest answer relayed to the requester and when, for the periodic update.
    pub answer: Option<(&'a str, Timestamp)>,
    /// The mail goes to an observer of the queue, not to the requester.
    pub for_observer: bool,
}

/// The context of a status notice to a requester or observer, and of a pending reminder.
pub fn for_status(config: &Config, tz: &TimeZone, t: &Ticket<'_>, st: &Status<'_>) -> Value {
    let mut v = common(config, tz, t);
    let (answer, shortened) = st.answer.map_or(("", false), |(a, _)| excerpt(a));
    v["status"] = json!({
        "state": st.state,
        "changes": st.changes.iter().map(|(what, from, to)| json!({ "what": what, "from": from, "to": to })).collect::<Vec<_>>(),
        "level": st.level,
        "pending_until_local": st.pending_until.map(|p| local(p, tz)),
        "assignee": st.assignee.map(single_line),
        "answer": st.answer.map(|_| answer),
        "answer_shortened": shortened,
        "answer_local": st.answer.map(|(_, at)| local(at, tz)),
        "for_observer": st.for_observer,
        "reopen_days": config.settings.ingest.reopen_days,
        "every_hours": config.settings.status_notices.update_every_service_hours,
    });
    v
}

#[cfg(test)]
mod tests {
    use super::{BODY_EXCERPT, excerpt, single_line};

    #[test]
    fn header_text_becomes_one_line() {
        assert_eq!(
            single_line("Eve\r\nBcc: victim@example.org"),
            "Eve Bcc: victim@example.org"
        );
        assert_eq!(single_line("  Jörg\t Müller \u{2028}"), "Jörg Müller");
        assert_eq!(single_line("a\u{0}b\u{1b}[31mc"), "a b [31mc");
        assert_eq!(single_line("Grüße aus Köln"), "Grüße aus Köln");
        assert_eq!(single_line("Eve\u{202E}gpj.exe"), "Eve gpj.exe");
    }

    #[test]
    fn a_long_text_is_quoted_in_part() {
        assert_eq!(excerpt("kurz\nText"), ("kurz\nText", false));
        // A line end in the last quarter: cut there.
        let lines = "Zeile mit Umlauten äöü\n".repeat(10_000);
        let (cut, shortened) = excerpt(&lines);
        assert!(shortened);
        assert!(cut.len() <= BODY_EXCERPT && cut.len() > BODY_EXCERPT * 3 / 4);
        assert!(
            cut.ends_with("äöü"),
            "cut at a line end: {:?}",
            &cut[cut.len() - 10..]
        );
        // One long line of two-byte characters: cut at a character boundary.
        let long_line = "ä".repeat(BODY_EXCERPT);
        let (cut, shortened) = excerpt(&long_line);
        assert!(shortened && cut.len() == BODY_EXCERPT && cut.chars().all(|c| c == 'ä'));
    }
}
