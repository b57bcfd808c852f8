//! What the templates of incident notices see: `incident` (id, platform, its description,
//! title, impact, class and its name, start, restoration and duration, state), `update` (the
//! text of an update or of the resolution and when it was given, else null) and
//! `sender_name`; the notices to a linked ticket's requester also see the ticket's names
//! (`ticket`, `requester`, `ticket_tag`) as acknowledgements do. Times are Berlin wall-clock
//! time, worded per language.
use serde_json::{Value, json};

use super::maintenance::{duration, when};
use crate::config::Config;
use crate::store::incidents::{Incident, IncidentState};

/// An update's (or the resolution's) words and when they were given.
#[derive(Debug, Clone, Copy)]
pub struct Update<'a> {
    pub text: &'a str,
    pub at: i64,
}

/// A class's name as the notices word it.
pub fn class_name(class: u8, lang: &str) -> &'static str {
    if lang == "en" {
        match class {
            1 => "service unusable",
            2 => "service considerably restricted",
            3 => "light fault",
            _ => "other request",
        }
    } else {
        match class {
            1 => "betriebsverhindernde Störung",
            2 => "betriebsbehindernde Störung",
            3 => "leichte Störung",
            _ => "sonstige Anfrage",
        }
    }
}

/// The context of a notice about `i` in `lang` to the lists.
pub fn context(config: &Config, i: &Incident, update: Option<Update<'_>>, lang: &str) -> Value {
    let tz = crate::time::berlin_or_utc();
    let platform = config.settings.platform(&i.platform);
    json!({
        "sender_name": config.settings.outbox.from_name,
        "incident": {
            "id": i.id,
            "platform": i.platform,
            "platform_description": platform.map(|p| p.description.as_str()).unwrap_or(""),
            "title": i.title,
            "impact": i.impact,
            "class": i.class,
            "class_name": class_name(i.class, lang),
            "started_local": when(crate::time::stored(i.started_at), lang, &tz),
            "resolved_local": i.resolved_at.map(|t| when(crate::time::stored(t), lang, &tz)),
            "duration": i.resolved_at.map(|t| duration(i.started_at, t, lang)),
            "state": i.state.as_str(),
        },
        "update": update.map(|u| json!({
            "text": u.text,
            "at_local": when(crate::time::stored(u.at), lang, &tz),
        })),
    })
}

/// The context of a notice about `i` to the requester of the linked ticket `t`, in the
/// configured language (as every mail on a ticket).
pub fn for_ticket(
    config: &Config,
    i: &Incident,
    update: Option<Update<'_>>,
    t: &super::Ticket<'_>,
) -> Value {
    let tz = crate::time::berlin_or_utc();
    let lang = config.settings.language.as_str();
    let mut v = super::common(config, &tz, t);
    let own = context(config, i, update, lang);
    v["incident"] = own["incident"].clone();
    v["update"] = own["update"].clone();
    v
}

/// An incident for checking templates: every field filled, resolved.
pub fn sample() -> (Incident, Update<'static>) {
    let start = 1_797_444_000_000_000; // 2026-12-16 19:00 Berlin
    (
        Incident {
            id: 1,
            platform: "beispiel".into(),
            title: "Anmeldung nicht möglich".into(),
            impact: "Keine Anmeldung am Portal".into(),
            class: 2,
            lists: vec!["kommunen".into()],
            state: IncidentState::Resolved,
            started_at: start,
            resolved_at: Some(start + 90 * 60_000_000),
            outage_id: Some(1),
            raised_at: Some(start),
            created_at: start,
            changed_at: start,
            alert_key: None,
            confirmed_at: Some(start),
            confirmed_by: Some("poststelle".into()),
            announced_state: Some(IncidentState::Resolved),
        },
        Update {
            text: "Der Datenbankserver wurde neu gestartet.",
            at: start + 30 * 60_000_000,
        },
    )
}
