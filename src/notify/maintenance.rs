//! What the templates of maintenance notices see, and the calendar entry each notice carries:
//! `maintenance` (platform, start, end, duration, reason, impact, emergency, sequence),
//! `previous` (start and end before a change, else null) and `sender_name`. Times are
//! Berlin wall-clock time, worded per language.
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::config::Config;
use crate::ical::{self, Event, Organizer, Status};
use crate::store::announcements::{Maintenance, MaintenanceState, NoticeKind};

/// The template of each notice.
pub fn template(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Scheduled => crate::templates::MAINTENANCE_SCHEDULED,
        NoticeKind::Changed => crate::templates::MAINTENANCE_CHANGED,
        NoticeKind::Cancelled => crate::templates::MAINTENANCE_CANCELLED,
        NoticeKind::Reminder => crate::templates::MAINTENANCE_REMINDER,
        NoticeKind::Started => crate::templates::MAINTENANCE_STARTED,
        NoticeKind::Done => crate::templates::MAINTENANCE_DONE,
    }
}

/// Every notice, for `check`.
pub const KINDS: [NoticeKind; 6] = [
    NoticeKind::Scheduled,
    NoticeKind::Changed,
    NoticeKind::Cancelled,
    NoticeKind::Reminder,
    NoticeKind::Started,
    NoticeKind::Done,
];

const WOCHENTAGE: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];

/// `Mittwoch, 16.12.2026, 19:00 Uhr` or `Wednesday, 16 December 2026, 19:00`.
pub fn when(t: Timestamp, lang: &str, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if lang == "en" {
        z.strftime("%A, %-d %B %Y, %H:%M").to_string()
    } else {
        let day = WOCHENTAGE[usize::from(z.weekday().to_monday_zero_offset().unsigned_abs())];
        format!("{day}, {}", z.strftime("%d.%m.%Y, %H:%M Uhr"))
    }
}

/// `4 Stunden 30 Minuten` or `4 hours 30 minutes`.
pub fn duration(start: i64, end: i64, lang: &str) -> String {
    let minutes = (end - start).max(0) / 60_000_000;
    let (h, m) = (minutes / 60, minutes % 60);
    let (hour, hours, minute, minutes) = if lang == "en" {
        ("hour", "hours", "minute", "minutes")
    } else {
        ("Stunde", "Stunden", "Minute", "Minuten")
    };
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} {}", if h == 1 { hour } else { hours }));
    }
    if m > 0 || h == 0 {
        parts.push(format!("{m} {}", if m == 1 { minute } else { minutes }));
    }
    parts.join(" ")
}

/// The context of a notice about `m` in `lang`; `previous` is (start, end) before a change.
pub fn context(
    config: &Config,
    m: &Maintenance,
    previous: Option<(i64, i64)>,
    lang: &str,
) -> Value {
    let tz = crate::time::berlin_or_utc();
    let platform = config
        .settings
        .platforms
        .iter()
        .find(|p| p.name == m.platform);
    json!({
        "sender_name": config.settings.outbox.from_name,
        "maintenance": {
            "id": m.id,
            "platform": m.platform,
            "platform_description": platform.map(|p| p.description.as_str()).unwrap_or(""),
            "start_local": when(crate::time::stored(m.starts_at), lang, &tz),
            "end_local": when(crate::time::stored(m.ends_at), lang, &tz),
            "duration": duration(m.starts_at, m.ends_at, lang),
            "reason": m.reason,
            "impact": m.impact,
            "emergency": m.emergency,
            "sequence": m.sequence,
            "state": m.state.as_str(),
        },
        "previous": previous.map(|(s, e)| json!({
            "start_local": when(crate::time::stored(s), lang, &tz),
            "end_local": when(crate::time::stored(e), lang, &tz),
            "duration": duration(s, e, lang),
        })),
    })
}

/// The calendar entry of `m` as of `now`, in `lang`: cancelled once `m` is; the title of a
/// cancellation says so ("Abgesagt: …"), for programs that only replace the entry.
pub fn calendar_event(config: &Config, m: &Maintenance, lang: &str, now: Timestamp) -> Event {
    let s = &config.settings;
    let cancelled = m.state == MaintenanceState::Cancelled;
    let (title, prefix, impact) = if lang == "en" {
        ("Maintenance", "Cancelled: ", "Restrictions")
    } else {
        ("Wartung", "Abgesagt: ", "Einschränkungen")
    };
    Event {
        uid: ical::maintenance_uid(m.id, &s.outbox.message_id_domain),
        sequence: u32::try_from(m.sequence).unwrap_or(0),
        stamp: now,
        start: crate::time::stored(m.starts_at),
        end: crate::time::stored(m.ends_at),
        summary: format!(
            "{}{title} {}",
            if cancelled { prefix } else { "" },
            m.platform
        ),
        description: format!("{}\n\n{impact}: {}", m.reason, m.impact),
        location: None,
        organizer: Organizer {
            name: s.outbox.from_name.clone(),
            address: s.outbox.from.clone(),
        },
        status: if cancelled {
            Status::Cancelled
        } else {
            Status::Confirmed
        },
    }
}

/// A maintenance for checking templates: every field filled, a change before it.
pub fn sample() -> (Maintenance, Option<(i64, i64)>) {
    let start = 1_797_444_000_000_000; // 2026-12-16 19:00 Berlin
    (
        Maintenance {
            id: 1,
            platform: "beispiel".into(),
            starts_at: start,
            ends_at: start + 4 * 3_600_000_000,
            reason: "Einspielen von Sicherheitsupdates".into(),
            impact: "Die Plattform ist nicht erreichbar.".into(),
            lists: vec!["kommunen".into()],
            emergency: true,
            state: MaintenanceState::Scheduled,
            sequence: 1,
            created_at: start,
            changed_at: start,
        },
        Some((start - 3_600_000_000, start + 3_600_000_000)),
    )
}

#[cfg(test)]
mod tests {
    use super::{duration, when};

    #[test]
    fn times_and_durations_read_as_people_write_them() {
        let tz = crate::time::berlin().expect("tz");
        let t: jiff::Timestamp = "2026-12-16T18:00:00Z".parse().expect("t");
        assert_eq!(when(t, "de", &tz), "Mittwoch, 16.12.2026, 19:00 Uhr");
        assert_eq!(when(t, "en", &tz), "Wednesday, 16 December 2026, 19:00");
        let h = 3_600_000_000;
        assert_eq!(duration(0, 4 * h, "de"), "4 Stunden");
        assert_eq!(duration(0, h + h / 2, "de"), "1 Stunde 30 Minuten");
        assert_eq!(duration(0, h / 60, "en"), "1 minute");
    }
}
