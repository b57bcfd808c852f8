//! iCalendar objects (RFC 5545) for maintenance notices: one VEVENT per maintenance that
//! calendar programs file once and update in place.
//!
//! - `METHOD:PUBLISH` always (RFC 5546 §3.2.1): the notices inform, nobody is invited or asked
//!   to reply. A change is the same `UID` with a higher `SEQUENCE` (the caller raises it on
//!   every change) and a newer `DTSTAMP`. A cancellation is published too, with
//!   `STATUS:CANCELLED` (which RFC 5546 allows in PUBLISH): `METHOD:CANCEL` is the organizer's
//!   message to the attendees of a meeting and needs them listed (§3.2.5); members of a
//!   distribution list are not attendees, and mail programs act on a CANCEL only for a
//!   meeting they know. A program that honours STATUS shows the entry cancelled; one that
//!   merely replaces the entry shows the new title — so the caller's SUMMARY of a
//!   cancellation says it (e.g. "Abgesagt: …"), as Outlook's own cancellations do. (How each
//!   mail program treats it was not tried here; the object follows RFC 5546.)
//! - Times: `DTSTART;TZID=Europe/Berlin` with a VTIMEZONE for Europe/Berlin (DST rules as
//!   `RRULE`s, which Outlook handles best), so calendars show the wall-clock time the notice
//!   names. The rule is checked against the bundled time-zone database for the years of the
//!   event; should Berlin's rules ever differ there (say the EU stops switching), the times
//!   are written in UTC instead — always the right instant. So is a time in the hour that the
//!   autumn switch repeats (02:00–02:59 on the last Sunday of October): RFC 5545 reads such a
//!   local time as its first occurrence, but not every parser does.
//! - `TRANSP:TRANSPARENT` (with Outlook's `X-MICROSOFT-CDO-BUSYSTATUS:FREE`): maintenance of
//!   a platform does not make its users busy.
//! - Hand-written, not the `icalendar` crate: that one brings chrono into a jiff code base,
//!   writes parameters in hash order, has no VTIMEZONE and folds by a mix of character and
//!   byte counts; what is needed here is a page. Text is escaped (`\\`, `\;`, `\,`, `\n`,
//!   other control characters dropped), content lines are folded at 75 octets without
//!   splitting a UTF-8 character, and every line ends in CRLF.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// The MIME type of a part (or attachment) that carries [`publish`]'s output.
pub const CONTENT_TYPE: &str = "text/calendar; charset=UTF-8; method=PUBLISH";

const TZID: &str = "Europe/Berlin";

/// `STATUS` of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Confirmed,
    Cancelled,
}

/// Who publishes the entry: RFC 5546 asks PUBLISH for an `ORGANIZER` (the sender of the
/// notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organizer {
    pub name: String,
    pub address: String,
}

/// One maintenance as a calendar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Stable for the life of the maintenance: [`maintenance_uid`].
    pub uid: String,
    /// 0 for the first notice, raised by the caller on every change and on cancellation.
    pub sequence: u32,
    /// When this version of the object was made.
    pub stamp: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
    /// Reason and restrictions; newlines are kept.
    pub description: String,
    pub location: Option<String>,
    pub organizer: Organizer,
    pub status: Status,
}

/// `maintenance-<id>@<domain>`: one UID per maintenance, the same in every notice about it.
pub fn maintenance_uid(id: impl std::fmt::Display, domain: &str) -> String {
    format!("maintenance-{id}@{domain}")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcalError {
    #[error("the calendar entry {uid} would end before it starts; give an end after the start")]
    EndNotAfterStart { uid: String },
    #[error("the time zone Europe/Berlin or a date is out of reach: {0}")]
    Time(String),
}

impl From<jiff::Error> for IcalError {
    fn from(e: jiff::Error) -> Self {
        IcalError::Time(e.to_string())
    }
}

/// The iCalendar object of `event`: VCALENDAR with METHOD:PUBLISH, the VTIMEZONE of
/// Europe/Berlin when the event's times use it, and one VEVENT. CRLF line ends, folded.
pub fn publish(event: &Event) -> Result<String, IcalError> {
    calendar(std::slice::from_ref(event), None)
}

/// A calendar feed (issue 18, `/maintenance.ics`): every event in one VCALENDAR with
/// METHOD:PUBLISH, each VEVENT exactly as [`publish`] writes it for the mailed notice (same
/// UID and SEQUENCE), and the calendar's display name. With no event the VTIMEZONE stands
/// alone: RFC 5545 asks a calendar for at least one component.
pub fn feed(events: &[Event], name: &str) -> Result<String, IcalError> {
    calendar(events, Some(name))
}

fn calendar(events: &[Event], name: Option<&str>) -> Result<String, IcalError> {
    if let Some(e) = events.iter().find(|e| e.end <= e.start) {
        return Err(IcalError::EndNotAfterStart { uid: e.uid.clone() });
    }
    let tz = crate::time::berlin()?;
    let mut zoned = Vec::with_capacity(events.len());
    for e in events {
        zoned.push(berlin_rule_holds(&tz, e.start)? && berlin_rule_holds(&tz, e.end)?);
    }
    let mut out = Lines::default();
    out.line("BEGIN:VCALENDAR");
    out.line(&format!(
        "PRODID:-//poststelle//poststelle {}//DE",
        env!("CARGO_PKG_VERSION")
    ));
    out.line("VERSION:2.0");
    out.line("CALSCALE:GREGORIAN");
    out.line("METHOD:PUBLISH");
    if let Some(name) = name {
        out.line(&format!("X-WR-CALNAME:{}", text(name)));
    }
    if zoned.iter().any(|z| *z) || events.is_empty() {
        vtimezone(&mut out);
    }
    for (event, zoned) in events.iter().zip(zoned) {
        vevent(&mut out, event, zoned, &tz)?;
    }
    out.line("END:VCALENDAR");
    Ok(out.0)
}

fn vevent(out: &mut Lines, event: &Event, zoned: bool, tz: &TimeZone) -> Result<(), IcalError> {
    out.line("BEGIN:VEVENT");
    out.line(&format!("UID:{}", text(&event.uid)));
    out.line(&format!("DTSTAMP:{}", utc(event.stamp)));
    out.line(&format!("SEQUENCE:{}", event.sequence));
    out.line(&date_time("DTSTART", event.start, zoned, tz)?);
    out.line(&date_time("DTEND", event.end, zoned, tz)?);
    out.line(&format!("SUMMARY:{}", text(&event.summary)));
    if !event.description.is_empty() {
        out.line(&format!("DESCRIPTION:{}", text(&event.description)));
    }
    if let Some(location) = event.location.as_deref().filter(|l| !l.is_empty()) {
        out.line(&format!("LOCATION:{}", text(location)));
    }
    out.line(&format!(
        "ORGANIZER;CN=\"{}\":mailto:{}",
        param(&event.organizer.name),
        event
            .organizer
            .address
            .chars()
            .filter(|c| !c.is_control() && !c.is_whitespace())
            .collect::<String>()
    ));
    out.line(match event.status {
        Status::Confirmed => "STATUS:CONFIRMED",
        Status::Cancelled => "STATUS:CANCELLED",
    });
    out.line("TRANSP:TRANSPARENT");
    out.line("X-MICROSOFT-CDO-BUSYSTATUS:FREE");
    out.line("CLASS:PUBLIC");
    out.line("END:VEVENT");
    Ok(())
}

/// Content lines, each folded at 75 octets and ended with CRLF.
#[derive(Default)]
struct Lines(String);

impl Lines {
    /// RFC 5545 §3.1: a line longer than 75 octets (without its CRLF) goes on in a line that
    /// starts with one space; the break falls between characters, never inside one.
    fn line(&mut self, line: &str) {
        let mut width = 0;
        for ch in line.chars() {
            let n = ch.len_utf8();
            if width + n > 75 {
                self.0.push_str("\r\n ");
                width = 1;
            }
            self.0.push(ch);
            width += n;
        }
        self.0.push_str("\r\n");
    }
}

/// A TEXT value (RFC 5545 §3.3.11): backslash, semicolon and comma escaped, any line break
/// written `\n`; other control characters, which TEXT cannot hold, dropped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A quoted parameter value (RFC 5545 §3.2): no double quote and no control character can
/// stand in one.
fn param(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect()
}

/// `20260325T180000Z`.
fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// `DTSTART;TZID=Europe/Berlin:20260325T190000`, or in UTC when the zone is not written or
/// the local time is one of the repeated hour of an autumn night. RFC 5545 §3.3.5 makes such
/// a time its first reading, but parsers disagree (Python's icalendar with pytz takes the
/// second), so neither reading is left to them.
fn date_time(name: &str, t: Timestamp, zoned: bool, tz: &TimeZone) -> Result<String, jiff::Error> {
    if zoned {
        let local = t.to_zoned(tz.clone()).datetime();
        if matches!(
            tz.to_ambiguous_timestamp(local).offset(),
            AmbiguousOffset::Unambiguous { .. }
        ) {
            return Ok(format!(
                "{name};TZID={TZID}:{}",
                local.strftime("%Y%m%dT%H%M%S")
            ));
        }
    }
    Ok(format!("{name}:{}", utc(t)))
}

/// Europe/Berlin since 1996, as every EU zone: CEST from 01:00 UTC on the last Sunday of March,
/// CET from 01:00 UTC on the last Sunday of October.
fn vtimezone(out: &mut Lines) {
    for line in [
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "X-LIC-LOCATION:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
    ] {
        out.line(line);
    }
}

/// Whether the bundled time-zone database has Berlin switch exactly as [`vtimezone`] says in
/// the year of `t`: +01:00 on 1 January, +02:00 from 01:00 UTC on the last Sunday of March,
/// +01:00 from 01:00 UTC on the last Sunday of October, and no other change.
fn berlin_rule_holds(tz: &TimeZone, t: Timestamp) -> Result<bool, jiff::Error> {
    let year = t.to_zoned(TimeZone::UTC).year();
    let last_sunday = |month: i8| -> Result<Timestamp, jiff::Error> {
        let day = Date::new(year, month, 1)?.nth_weekday_of_month(-1, Weekday::Sunday)?;
        DateTime::from(day)
            .checked_add(1.hour())?
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
    };
    let new_year = DateTime::from(Date::new(year, 1, 1)?)
        .to_zoned(TimeZone::UTC)?
        .timestamp();
    let next_year = DateTime::from(Date::new(year + 1, 1, 1)?)
        .to_zoned(TimeZone::UTC)?
        .timestamp();
    let cet = Offset::from_hours(1)?;
    let cest = Offset::from_hours(2)?;
    let expected = [(last_sunday(3)?, cest), (last_sunday(10)?, cet)];
    let found: Vec<(Timestamp, Offset)> = tz
        .following(new_year)
        .take_while(|tr| tr.timestamp() < next_year)
        .take(3)
        .map(|tr| (tr.timestamp(), tr.offset()))
        .collect();
    Ok(tz.to_offset(new_year) == cet && found == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            uid: maintenance_uid(42, "support.example.de"),
            sequence: 0,
            stamp: "2026-03-10T09:15:00Z".parse().expect("instant"),
            start: "2026-03-25T18:00:00Z".parse().expect("instant"),
            end: "2026-03-25T22:00:00Z".parse().expect("instant"),
            summary: "Wartung civento".into(),
            description: "Grund: Update.\nEinschränkungen: keine Anmeldung möglich.".into(),
            location: None,
            organizer: Organizer {
                name: "ekom21 Support".into(),
                address: "support@example.de".into(),
            },
            status: Status::Confirmed,
        }
    }

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_every_line_break() {
        assert_eq!(
            text("a\\b;c,d\ne\r\nf\rg:h\"i\u{7}j\tk"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng:h\"ij\tk"
        );
    }

    #[test]
    fn lines_fold_at_75_octets_without_splitting_a_character() {
        let mut out = Lines::default();
        let long = format!("DESCRIPTION:{}", "Störungsbeseitigung ".repeat(20));
        out.line(&long);
        assert!(out.0.ends_with("\r\n"));
        let physical: Vec<&str> = out.0.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(physical.len() > 5, "{physical:?}");
        for (i, l) in physical.iter().enumerate() {
            assert!(l.len() <= 75, "line {i} has {} octets: {l:?}", l.len());
            if i > 0 {
                assert!(l.starts_with(' '), "continuation {i}: {l:?}");
            }
        }
        // A line break at 74 octets of ASCII and a two-octet ö next: the ö moves whole.
        let mut out = Lines::default();
        out.line(&format!("{}ö", "x".repeat(74)));
        assert_eq!(out.0, format!("{}\r\n ö\r\n", "x".repeat(74)));
        let unfolded = out.0.replace("\r\n ", "");
        assert_eq!(unfolded, format!("{}ö\r\n", "x".repeat(74)));
    }

    #[test]
    fn berlin_times_with_vtimezone_and_the_object_in_crlf_lines() {
        let ics = publish(&event()).expect("ics");
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nPRODID:-//poststelle//"));
        assert!(ics.contains("\r\nMETHOD:PUBLISH\r\n"));
        assert!(ics.contains("\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"));
        assert!(ics.contains("\r\nUID:maintenance-42@support.example.de\r\n"));
        assert!(ics.contains("\r\nDTSTAMP:20260310T091500Z\r\n"));
        assert!(ics.contains("\r\nSEQUENCE:0\r\n"));
        // 18:00 UTC on 25 March 2026 is 19:00 CET (the switch is on the 29th).
        assert!(ics.contains("\r\nDTSTART;TZID=Europe/Berlin:20260325T190000\r\n"));
        assert!(ics.contains("\r\nDTEND;TZID=Europe/Berlin:20260325T230000\r\n"));
        assert!(ics.contains("\r\nORGANIZER;CN=\"ekom21 Support\":mailto:support@example.de\r\n"));
        assert!(ics.contains("\r\nSTATUS:CONFIRMED\r\n"));
        assert!(ics.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'), "a bare LF");
        assert!(!ics.replace("\r\n", "").contains('\r'), "a bare CR");
    }

    #[test]
    fn both_readings_of_the_repeated_autumn_hour_are_written_in_utc() {
        let mut e = event();
        // 2026-10-25 02:30 CET (after the switch) = 01:30 UTC; 02:30 CEST = 00:30 UTC.
        e.start = "2026-10-25T01:30:00Z".parse().expect("instant");
        e.end = "2026-10-25T04:00:00Z".parse().expect("instant");
        let ics = publish(&e).expect("ics");
        assert!(ics.contains("\r\nDTSTART:20261025T013000Z\r\n"), "{ics}");
        assert!(ics.contains("\r\nDTEND;TZID=Europe/Berlin:20261025T050000\r\n"));
        e.start = "2026-10-25T00:30:00Z".parse().expect("instant");
        let ics = publish(&e).expect("ics");
        assert!(ics.contains("\r\nDTSTART:20261025T003000Z\r\n"), "{ics}");
        // 01:59 CEST is before the repeated hour: local.
        e.start = "2026-10-24T23:59:00Z".parse().expect("instant");
        let ics = publish(&e).expect("ics");
        assert!(ics.contains("\r\nDTSTART;TZID=Europe/Berlin:20261025T015900\r\n"));
    }

    #[test]
    fn the_vtimezone_rule_matches_the_time_zone_database() {
        let tz = crate::time::berlin().expect("tz");
        for year in 1997..=2099 {
            let t: Timestamp = format!("{year}-07-01T00:00:00Z").parse().expect("instant");
            assert!(berlin_rule_holds(&tz, t).expect("rule"), "{year}");
        }
        // Before 1980 Germany had no summer time: the rule does not hold, UTC is written.
        let t: Timestamp = "1975-07-01T00:00:00Z".parse().expect("instant");
        assert!(!berlin_rule_holds(&tz, t).expect("rule"));
        let mut e = event();
        e.start = t;
        e.end = "1975-07-01T02:00:00Z".parse().expect("instant");
        let ics = publish(&e).expect("ics");
        assert!(!ics.contains("VTIMEZONE"));
        assert!(ics.contains("\r\nDTSTART:19750701T000000Z\r\n"));
    }

    #[test]
    fn a_feed_holds_each_event_as_its_notice_does() {
        let mut cancelled = event();
        cancelled.uid = maintenance_uid(43, "support.example.de");
        cancelled.sequence = 2;
        cancelled.status = Status::Cancelled;
        let feed = feed(&[event(), cancelled.clone()], "Wartungen").expect("feed");
        assert_eq!(feed.matches("BEGIN:VTIMEZONE").count(), 1);
        assert!(feed.contains("\r\nX-WR-CALNAME:Wartungen\r\n"));
        for e in [event(), cancelled] {
            let one = publish(&e).expect("ics");
            let vevent = &one[one.find("BEGIN:VEVENT").expect("vevent")
                ..one.find("END:VCALENDAR").expect("end")];
            assert!(feed.contains(vevent), "{vevent}");
        }
        let empty = super::feed(&[], "Wartungen").expect("empty feed");
        assert!(empty.contains("BEGIN:VTIMEZONE") && !empty.contains("VEVENT"));
    }

    #[test]
    fn an_end_before_the_start_is_refused() {
        let mut e = event();
        e.end = e.start;
        assert_eq!(
            publish(&e),
            Err(IcalError::EndNotAfterStart {
                uid: "maintenance-42@support.example.de".into()
            })
        );
    }

    #[test]
    fn a_quote_in_the_organizer_name_cannot_end_the_parameter() {
        let mut e = event();
        e.organizer.name = "KDZ \"Mainz\"\r\nX".into();
        let ics = publish(&e).expect("ics");
        assert!(ics.contains("\r\nORGANIZER;CN=\"KDZ 'Mainz'X\":mailto:support@example.de\r\n"));
    }
}
