//! Hand-over (issue 17, item 5): a ticket that changes queue — `tickets set --queue/--level`, a
//! staff answer's `#queue`/`#level`, an escalation that moves it ([`crate::jobs::escalation`]
//! with `sla.escalation_moves_ticket`) — brings the new queue's staff a copy
//! ([`crate::templates::HANDOVER`]) with the ticket's history: what the requester wrote, the
//! internal notes and the answers relayed so far, oldest first, each quoted, and the first
//! mail attached as the original, as the staff copy of a new ticket has it. The copy is staff
//! mail, so it carries the ticket's reply address.
//!
//! When the clearing queue hands a Nutzerkonto question to a Ressort, staff may ask for the
//! requester to be told the contact person of the Ressort's service (`--contact-reply`,
//! `#contact`): the same reply an EfA-Outbound service's requester gets at filing
//! (`nutzerkonto.efa_outbound_template`), threaded under the requester's mail, once per
//! ticket — a ticket whose requester already got it (at filing, or at an earlier hand-over)
//! gets no second one.
//!
//! Both are written in the transaction of the change, by [`super::ops::apply_change`]: what
//! could refuse the change is checked before anything is written ([`validate`], [`plan`]), the
//! mail is queued after the ticket has moved ([`hand_over`]). One `handed_over` audit line and
//! one log event per hand-over.
use std::fmt;

use jiff::Timestamp;
use serde_json::json;
use sqlx::AnyConnection;

use super::ops::{Change, OpsError};
use crate::classify::ServiceMatch;
use crate::classify::nutzerkonto::{Service, fold};
use crate::config::Config;
use crate::notify;
use crate::outbox::{self, Kind, NewMail};
use crate::store::buffer::WriteBuffer;
use crate::store::handover::{self as stored, HistoryRow};
use crate::store::{Backend, StoreError};

/// How much of each article the copy quotes, in characters: the first mail is attached
/// whole, and a long thread must not make a copy of megabytes.
pub const HISTORY_CHARS: usize = 16 * 1024;

/// At most this many articles are quoted: the first (what the ticket is about) and the most
/// recent ones; the copy says how many it left out.
pub const HISTORY_ARTICLES: usize = 30;

/// The queue a change moves a ticket in `queue` to.
fn target<'c>(config: &Config, change: &'c Change<'_>, queue: &'c str) -> Result<String, String> {
    match change.level {
        Some(level) => super::ops::level_queue(config, change.queue.unwrap_or(queue), level),
        None => Ok(change.queue.unwrap_or(queue).to_string()),
    }
}

/// Checks the contact reply of a change against the configuration, before anything is
/// written (`queue` is the ticket's queue): only with a hand-over from the clearing queue to
/// a queue that the contact list names as some service's Ressort, and a service named must
/// be one of that Ressort's.
pub fn validate(config: &Config, change: &Change<'_>, queue: &str) -> Result<(), String> {
    if !change.contact_reply {
        return match change.service {
            Some(_) => Err(
                "a service is named only for the contact reply (--contact-reply, #contact)"
                    .to_string(),
            ),
            None => Ok(()),
        };
    }
    let clearing = &config.settings.clearing_queue;
    if queue != clearing.as_str() {
        return Err(format!(
            "the requester is told the contact person when the clearing queue \"{clearing}\" \
             hands a Nutzerkonto question to a Ressort; this ticket is in queue \"{queue}\""
        ));
    }
    let to = target(config, change, queue)?;
    if to == *clearing {
        return Err(format!(
            "the contact reply goes with a hand-over: give the Ressort's queue (--queue NAME, \
             #queue NAME); the ticket stays in \"{clearing}\" otherwise"
        ));
    }
    let services: Vec<&Service> = ressort_services(config, &to);
    if services.is_empty() {
        return Err(format!(
            "queue \"{to}\" is the Ressort of no service in the contact list, so there is no \
             contact person to name (contact list: `contacts` in {})",
            config.origin
        ));
    }
    if let Some(name) = change.service {
        named(config, name, &to)?;
    }
    Ok(())
}

fn ressort_services<'c>(config: &'c Config, queue: &str) -> Vec<&'c Service> {
    config
        .contacts
        .services
        .iter()
        .filter(|s| s.ressort == queue)
        .collect()
}

/// The service called `name` (case, umlaut spelling and punctuation aside), which must be one
/// of Ressort `to`'s.
fn named<'c>(config: &'c Config, name: &str, to: &str) -> Result<&'c Service, String> {
    let wanted = fold(name);
    let svc = config
        .contacts
        .services
        .iter()
        .find(|s| fold(&s.name) == wanted)
        .ok_or_else(|| {
            format!(
                "the contact list has no service \"{name}\"; the services of queue \"{to}\" \
                 are: {}",
                names(&ressort_services(config, to))
            )
        })?;
    if svc.ressort != to {
        return Err(format!(
            "service \"{}\" belongs to the Ressort \"{}\", not to \"{to}\"",
            svc.name, svc.ressort
        ));
    }
    Ok(svc)
}

fn names(services: &[&Service]) -> String {
    services
        .iter()
        .map(|s| format!("\"{}\"", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The service of Ressort `to` whose contact person answers a question about `betreff`: the
/// one named, else the only service of the Ressort, else the one that matches the Betreff
/// best. Several equally good, or none, cannot be decided here.
fn choose<'c>(
    config: &'c Config,
    betreff: &str,
    to: &str,
    name: Option<&str>,
) -> Result<&'c Service, String> {
    if let Some(name) = name {
        return named(config, name, to);
    }
    let of_ressort = ressort_services(config, to);
    if let [only] = of_ressort.as_slice() {
        return Ok(only);
    }
    let matching: Vec<_> = config
        .contacts
        .matches(betreff)
        .into_iter()
        .filter(|(s, _)| s.ressort == to)
        .collect();
    let best = matching.first().map(|(_, sc)| sc.len);
    let top: Vec<&Service> = matching
        .iter()
        .filter(|(_, sc)| Some(sc.len) == best)
        .map(|(s, _)| *s)
        .collect();
    match top.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "queue \"{to}\" answers for {} services of the contact list ({}) and the Betreff \
             \"{betreff}\" matches none of them: name the service (--service NAME, or \
             #contact NAME)",
            of_ressort.len(),
            names(&of_ressort)
        )),
        several => Err(format!(
            "the Betreff \"{betreff}\" matches {} services of queue \"{to}\" equally ({}): \
             name the service (--service NAME, or #contact NAME)",
            several.len(),
            names(several)
        )),
    }
}

/// The service whose contact person the requester of a Nutzerkonto question about
/// `betreff` (`None`: the ticket is no such question) is told when it goes to queue `to`.
fn contact_service<'c>(
    config: &'c Config,
    change: &Change<'_>,
    to: &str,
    betreff: Option<&str>,
) -> Result<&'c Service, String> {
    let Some(betreff) = betreff else {
        return Err(
            "the ticket is no Nutzerkonto question (its first subject did not follow \
                    HE_<Betreff>_NKB or _MUK), so there is no contact person to name"
                .to_string(),
        );
    };
    let svc = choose(config, betreff, to, change.service)?;
    if svc.contact.name.trim().is_empty() {
        return Err(format!(
            "service \"{}\" names no contact person in the contact list (`contact`)",
            svc.name
        ));
    }
    Ok(svc)
}

/// [`validate`], and what [`plan`] would refuse, for a staff answer's commands while its batch
/// is planned (before anything is filed): the ticket in `queue`, its Nutzerkonto Betreff.
pub fn check_contact(
    config: &Config,
    change: &Change<'_>,
    queue: &str,
    betreff: Option<&str>,
) -> Result<(), String> {
    if !change.contact_reply {
        return Ok(());
    }
    let to = target(config, change, queue)?;
    contact_service(config, change, &to, betreff).map(|_| ())
}

/// What a queue change does besides moving the ticket, decided before anything is written.
#[derive(Debug, Clone)]
pub struct Plan {
    from: String,
    to: String,
    contact: Option<Contact>,
}

#[derive(Debug, Clone)]
enum Contact {
    Send(ServiceMatch),
    /// The requester was told a contact person before: this Message-ID.
    AlreadySent(String),
}

/// Reads what the hand-over of ticket `id` from `from` to `to` needs to decide, before the
/// change writes anything: `None` when the queue stays. A contact reply that cannot be made
/// (the ticket is no Nutzerkonto question, the service cannot be told) refuses the change.
pub async fn plan(
    conn: &mut AnyConnection,
    config: &Config,
    id: i64,
    change: &Change<'_>,
    from: &str,
    to: &str,
) -> Result<Option<Plan>, OpsError> {
    if from == to {
        return Ok(None);
    }
    let contact = if change.contact_reply {
        let betreff = stored::nutzerkonto_betreff(conn, id).await?;
        let svc =
            contact_service(config, change, to, betreff.as_deref()).map_err(OpsError::Invalid)?;
        let template = &config.settings.nutzerkonto.efa_outbound_template;
        Some(
            match stored::requester_mail_with(conn, id, template).await? {
                Some(message_id) => Contact::AlreadySent(message_id),
                None => Contact::Send(ServiceMatch {
                    name: svc.name.clone(),
                    efa: svc.efa,
                    contact: svc.contact.clone(),
                }),
            },
        )
    } else {
        None
    };
    Ok(Some(Plan {
        from: from.to_string(),
        to: to.to_string(),
        contact,
    }))
}

/// What became of the contact reply of a hand-over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactReply {
    /// Queued to the requester (`held` by the loop brake: written as suppressed, with why).
    Queued {
        service: String,
        contact: String,
        to: String,
        message_id: String,
        held: Option<String>,
    },
    /// The requester had been told a contact person before, in this mail.
    AlreadySent { message_id: String },
    /// Nobody to send it to.
    Skipped { why: String },
}

/// A hand-over done: where the ticket went, where its copy went, what the requester got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOver {
    pub from: String,
    pub to: String,
    /// The new queue's staff address; `None` when it has none (nothing is sent).
    pub copy_to: Option<String>,
    pub copy_message_id: Option<String>,
    /// Articles quoted, and older ones left out.
    pub history: usize,
    pub omitted: usize,
    pub contact_reply: Option<ContactReply>,
}

impl HandedOver {
    /// The audit line's detail.
    pub fn detail(&self, by: &str) -> serde_json::Value {
        let contact = self.contact_reply.as_ref().map(|c| match c {
            ContactReply::Queued {
                service,
                contact,
                to,
                message_id,
                held,
            } => json!({ "state": if held.is_some() { "suppressed" } else { "queued" },
                         "service": service, "contact": contact, "to": to,
                         "message_id": message_id, "why": held }),
            ContactReply::AlreadySent { message_id } => {
                json!({ "state": "already_sent", "message_id": message_id })
            }
            ContactReply::Skipped { why } => json!({ "state": "skipped", "why": why }),
        });
        json!({
            "from": self.from, "to": self.to, "by": by,
            "copy_to": self.copy_to, "message_id": self.copy_message_id,
            "why": self.copy_to.is_none().then(|| format!("queue \"{}\" has no staff address", self.to)),
            "history": self.history, "history_omitted": self.omitted,
            "contact_reply": contact,
        })
    }
}

impl fmt::Display for HandedOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.copy_to {
            Some(to) => write!(
                f,
                "handed over to {}: copy with {} article(s) of its history to {to}",
                self.to, self.history
            )?,
            None => write!(
                f,
                "handed over to {}: no copy, the queue has no staff address",
                self.to
            )?,
        }
        match &self.contact_reply {
            Some(ContactReply::Queued {
                service,
                contact,
                to,
                held: None,
                ..
            }) => write!(
                f,
                "; requester {to} told the contact person for \"{service}\": {contact}"
            ),
            Some(ContactReply::Queued {
                to,
                held: Some(why),
                ..
            }) => write!(f, "; contact reply to {to} held back ({why})"),
            Some(ContactReply::AlreadySent { .. }) => f.write_str(
                "; the requester had been told a contact person before, so nothing more is sent",
            ),
            Some(ContactReply::Skipped { why }) => write!(f, "; no contact reply: {why}"),
            None => Ok(()),
        }
    }
}

/// The history the copy quotes: the first article and the most recent ones, at most
/// [`HISTORY_ARTICLES`]; and how many were left out.
fn kept(rows: &[HistoryRow]) -> (Vec<&HistoryRow>, usize) {
    if rows.len() <= HISTORY_ARTICLES {
        return (rows.iter().collect(), 0);
    }
    let omitted = rows.len() - HISTORY_ARTICLES;
    let mut out = vec![&rows[0]];
    out.extend(&rows[omitted + 1..]);
    (out, omitted)
}

fn entry(r: &HistoryRow) -> notify::Entry<'_> {
    notify::Entry {
        kind: r.kind,
        from: r.sender.as_deref(),
        at: crate::time::stored(r.created_at),
        subject: &r.subject,
        body: &r.body,
        shortened: r.shortened,
        attachments: &r.attachments,
    }
}

/// Whether mail to `address` may go out: an address, and none of ours.
fn may_write_to(config: &Config, address: &str) -> Result<(), String> {
    if !crate::diag::is_plausible_address(address) {
        return Err(format!(
            "the requester's address \"{}\" is no mail address",
            address.escape_debug()
        ));
    }
    let s = &config.settings;
    if address.eq_ignore_ascii_case(&s.outbox.from) || s.is_staff_anywhere(address) {
        return Err(format!("{address} is one of our own addresses"));
    }
    Ok(())
}

/// Queues the hand-over's mail in the change's transaction, after the ticket has moved: the
/// contact reply to the requester when planned, then the copy for the new queue's staff
/// (which mentions the reply). `buf` takes the rows; the caller writes the audit line.
#[allow(clippy::too_many_arguments)]
pub async fn hand_over(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    id: i64,
    plan: Plan,
    change: &Change<'_>,
    now: Timestamp,
) -> Result<HandedOver, StoreError> {
    let tz = crate::time::berlin()?;
    let t = stored::ticket(conn, id).await?;
    let rows = stored::history(conn, id, HISTORY_CHARS).await?;
    let first = rows.iter().find(|r| r.kind == "inbound");
    let facts = notify::Ticket {
        number: &t.number,
        subject: &t.subject,
        queue: &plan.to,
        severity: u8::try_from(t.severity).unwrap_or(4),
        requester: &t.requester,
        requester_name: t.requester_name.as_deref(),
        received: crate::time::stored(t.received_at.unwrap_or(t.created_at)),
    };

    let contact_reply = match &plan.contact {
        None => None,
        Some(Contact::AlreadySent(message_id)) => Some(ContactReply::AlreadySent {
            message_id: message_id.clone(),
        }),
        Some(Contact::Send(svc)) => Some(match may_write_to(config, &t.requester) {
            Err(why) => ContactReply::Skipped { why },
            Ok(()) => {
                let to = t.requester.as_str();
                let (root, last) = stored::thread(conn, id).await?;
                let mut refs: Vec<String> = root.iter().chain(last.iter()).cloned().collect();
                refs.dedup();
                let first_entry = first.map(entry);
                let context =
                    notify::for_ticket_reply(config, &tz, &facts, first_entry.as_ref(), Some(svc));
                let backend = Backend::of(conn);
                let recent = outbox::recent_auto_replies(conn, backend, &[to], now)
                    .await?
                    .remove(to)
                    .unwrap_or(0);
                let held = outbox::loop_brake(buf, config, to, recent);
                let message_id = outbox::enqueue_buffered(
                    buf,
                    config,
                    now,
                    NewMail {
                        ticket_id: Some(id),
                        kind: Kind::AutoReply,
                        template: &config.settings.nutzerkonto.efa_outbound_template,
                        recipient: to,
                        in_reply_to: last.as_deref(),
                        references: refs,
                        context: &context,
                        attach_raw: None,
                    },
                    recent,
                    &mut std::iter::empty(),
                );
                ContactReply::Queued {
                    service: svc.name.clone(),
                    contact: svc.contact.name.clone(),
                    to: to.to_string(),
                    message_id,
                    held,
                }
            }
        }),
    };

    let (quoted, omitted) = kept(&rows);
    let history: Vec<notify::Entry<'_>> = quoted.iter().map(|r| entry(r)).collect();
    let first_raw = first.and_then(|r| r.raw_message_id);
    let told = match (&plan.contact, &contact_reply) {
        (Some(Contact::Send(svc)), Some(ContactReply::Queued { held: None, .. })) => Some(svc),
        _ => None,
    };
    let nutzerkonto = match (&t.nk_state, &t.nk_origin, &t.nk_betreff) {
        (Some(s), Some(o), Some(b)) => Some((s.as_str(), o.as_str(), b.as_str())),
        _ => None,
    };
    let copy_to = config
        .settings
        .queue(&plan.to)
        .and_then(|q| q.staff.clone());
    let copy_message_id = copy_to.as_deref().map(|staff| {
        let context = notify::for_handover(
            config,
            &tz,
            &facts,
            &notify::HandOver {
                from: &plan.from,
                to: &plan.to,
                by: change.actor,
                escalated: change.escalated,
                nutzerkonto,
                contact_reply: told,
                original_attached: first_raw.is_some(),
            },
            &history,
            omitted,
        );
        outbox::enqueue_buffered(
            buf,
            config,
            now,
            NewMail {
                ticket_id: Some(id),
                kind: Kind::StaffCopy,
                template: crate::templates::HANDOVER,
                recipient: staff,
                in_reply_to: None,
                references: Vec::new(),
                context: &context,
                attach_raw: first_raw,
            },
            0,
            &mut std::iter::empty(),
        )
    });
    let done = HandedOver {
        from: plan.from,
        to: plan.to,
        copy_to,
        copy_message_id,
        history: history.len(),
        omitted,
        contact_reply,
    };
    tracing::info!(
        ticket = t.number,
        from = done.from,
        to = done.to,
        by = change.actor,
        copy_to = done.copy_to.as_deref().unwrap_or(""),
        history = done.history,
        "ticket handed over: {done}"
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> HistoryRow {
        HistoryRow {
            kind: "inbound",
            sender: None,
            subject: format!("{i}"),
            body: String::new(),
            shortened: false,
            created_at: i as i64,
            raw_message_id: None,
            attachments: Vec::new(),
        }
    }

    /// A long thread keeps what it is about (the first article) and the latest state.
    #[test]
    fn a_long_history_keeps_the_first_and_the_most_recent_articles() {
        let rows: Vec<HistoryRow> = (0..HISTORY_ARTICLES + 5).map(row).collect();
        let (kept_rows, omitted) = kept(&rows);
        assert_eq!(omitted, 5);
        assert_eq!(kept_rows.len(), HISTORY_ARTICLES);
        let subjects: Vec<&str> = kept_rows.iter().map(|r| r.subject.as_str()).collect();
        assert_eq!(subjects[0], "0");
        assert_eq!(subjects[1], "6", "articles 1 to 5 are left out");
        assert_eq!(
            subjects.last().copied(),
            Some(format!("{}", HISTORY_ARTICLES + 4).as_str())
        );
        let short: Vec<HistoryRow> = (0..3).map(row).collect();
        let (all, none) = kept(&short);
        assert_eq!((all.len(), none), (3, 0));
    }

    /// Both languages render the copy and the contact reply from the contexts built here.
    #[test]
    fn the_copy_and_the_contact_reply_render_in_german_and_english() {
        let config = Config::load(None).expect("the embedded configuration");
        let tz = crate::time::berlin().expect("tz");
        let at: Timestamp = "2026-11-25T10:00:00+01:00".parse().expect("ts");
        let facts = notify::Ticket {
            number: "2026112510000001",
            subject: "HE_Elterngeld_NKB",
            queue: "ressort-soziales",
            severity: 4,
            requester: "erika@example.org",
            requester_name: Some("Erika Mustermann"),
            received: at,
        };
        let attachments = vec![crate::message::Attachment {
            name: Some("antrag.pdf".into()),
            content_type: "application/pdf".into(),
            size: 10,
        }];
        let first = notify::Entry {
            kind: "inbound",
            from: Some("erika@example.org"),
            at,
            subject: "HE_Elterngeld_NKB",
            body: "Wann kommt der Bescheid?\n\nGruss",
            shortened: true,
            attachments: &attachments,
        };
        let svc = ServiceMatch {
            name: "Elterngeld".into(),
            efa: crate::classify::nutzerkonto::Efa::None,
            contact: crate::classify::nutzerkonto::Contact {
                name: "Elterngeldstelle".into(),
                email: Some("elterngeld@soziales.hessen.example".into()),
                phone: None,
            },
        };
        let context = notify::for_handover(
            &config,
            &tz,
            &facts,
            &notify::HandOver {
                from: "clearing",
                to: "ressort-soziales",
                by: "poststelle",
                escalated: Some(at),
                nutzerkonto: Some(("HE", "NKB", "Elterngeld")),
                contact_reply: Some(&svc),
                original_attached: true,
            },
            &[first],
            2,
        );
        let reply = notify::for_ticket_reply(&config, &tz, &facts, Some(&first), Some(&svc));
        for (lang, words) in [
            ("de", ["Reaktionsfrist", "2 weitere ältere", "gekürzt"]),
            ("en", ["reaction deadline", "2 older ones", "shortened"]),
        ] {
            let r = config
                .templates
                .render(crate::templates::HANDOVER, lang, &context)
                .expect("renders");
            assert!(
                r.subject.starts_with("[Ticket#2026112510000001]"),
                "{}",
                r.subject
            );
            for w in words.iter().chain(&[
                "> Wann kommt der Bescheid?",
                ">\n> Gruss",
                "antrag.pdf",
                "Elterngeldstelle",
            ]) {
                assert!(r.text.contains(w), "{lang}: {w} in\n{}", r.text);
            }
            let r = config
                .templates
                .render(
                    &config.settings.nutzerkonto.efa_outbound_template,
                    lang,
                    &reply,
                )
                .expect("renders");
            assert!(
                r.text.contains("elterngeld@soziales.hessen.example"),
                "{}",
                r.text
            );
        }
    }
}
