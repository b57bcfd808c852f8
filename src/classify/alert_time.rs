//! The time a monitoring system gives an alert, as its default mail writes it: the instant a
//! problem began or ended, which may lie minutes before the mail arrives (Alertmanager's
//! `group_wait`, a queue at the mail server) and hours before it is filed (a mailbox read
//! after an outage). Restoration and availability count from these instants, not from the
//! filing.
//!
//! Icinga 2 writes `2026-11-25 09:14:03 +0100` (`$icinga.long_date_time$`), Nagios and
//! Checkmk `Wed Nov 25 09:14:03 CET 2026` (`$LONGDATETIME$`), Zabbix `13:10:22 on 2026.11.25`
//! (server time, no zone), Go programs such as Alertmanager `2026-11-25 08:14:03.5 +0000 UTC`;
//! mail headers RFC 2822. A time without zone is Berlin time; a zone abbreviation other than
//! CET/CEST/MEZ/MESZ/UTC/GMT/Z is ignored and the time read as Berlin time too.
use jiff::civil::DateTime;
use jiff::{Timestamp, tz::Offset};

/// The instant `text` names, or `None` when it is none of the forms above.
pub fn parse(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(z) = jiff::fmt::rfc2822::parse(text) {
        return Some(z.timestamp());
    }
    // Zabbix: "13:10:22 on 2026.11.25".
    if let Some((time, date)) = text.split_once(" on ") {
        return parse(&format!("{} {}", date.trim(), time.trim()));
    }
    let mut offset: Option<Offset> = None;
    let mut rest: Vec<&str> = Vec::new();
    for token in text.split_whitespace() {
        if let Some(o) = numeric_offset(token) {
            offset = Some(o);
        } else if let Some(o) = abbreviation(token) {
            // "+0000 UTC": the number decides; an abbreviation alone names the offset.
            offset.get_or_insert(o);
        } else if token.chars().all(|c| c.is_ascii_alphabetic()) && !is_name(token) {
            // An unknown zone abbreviation: read as Berlin time.
        } else {
            rest.push(token);
        }
    }
    let civil = civil(&rest.join(" "))?;
    match offset {
        Some(o) => o.to_timestamp(civil).ok(),
        None => crate::time::berlin()
            .ok()?
            .to_ambiguous_zoned(civil)
            .compatible()
            .ok()
            .map(|z| z.timestamp()),
    }
}

/// Weekday and month names that forms like `Wed Nov 25 09:14:03 2026` carry.
fn is_name(token: &str) -> bool {
    const NAMES: [&str; 19] = [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun", "jan", "feb", "mar", "apr", "may", "jun",
        "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let t = token.to_ascii_lowercase();
    NAMES.iter().any(|n| t.starts_with(n))
}

/// `+0100`, `+01:00`, `-0500`.
fn numeric_offset(token: &str) -> Option<Offset> {
    let (sign, digits) = match token.as_bytes().first()? {
        b'+' => (1, &token[1..]),
        b'-' => (-1, &token[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

fn abbreviation(token: &str) -> Option<Offset> {
    let hours: i8 = match token.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "Z" => 0,
        "CET" | "MEZ" => 1,
        "CEST" | "MESZ" => 2,
        _ => return None,
    };
    Offset::from_hours(hours).ok()
}

/// The wall-clock time left once the zone is taken out.
fn civil(s: &str) -> Option<DateTime> {
    if let Ok(dt) = s.parse::<DateTime>() {
        return Some(dt);
    }
    const FORMATS: [&str; 8] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y.%m.%d %H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%a %b %d %H:%M:%S %Y",
        "%a %d %b %Y %H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
    ];
    FORMATS.iter().find_map(|f| DateTime::strptime(f, s).ok())
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn utc(s: &str) -> String {
        parse(s).map(|t| t.to_string()).unwrap_or_default()
    }

    #[test]
    fn the_default_forms_of_the_monitoring_systems() {
        // Icinga 2, winter and summer time.
        assert_eq!(utc("2026-11-25 09:14:03 +0100"), "2026-11-25T08:14:03Z");
        assert_eq!(utc("2026-07-01 09:14:03 +0200"), "2026-07-01T07:14:03Z");
        // Nagios and Checkmk.
        assert_eq!(utc("Wed Nov 25 11:20:08 CET 2026"), "2026-11-25T10:20:08Z");
        assert_eq!(utc("Wed Jul  1 11:20:08 CEST 2026"), "2026-07-01T09:20:08Z");
        // Zabbix: server time, Berlin.
        assert_eq!(utc("13:10:22 on 2026.11.25"), "2026-11-25T12:10:22Z");
        assert_eq!(utc("2026.07.01 13:10:22"), "2026-07-01T11:10:22Z");
        // Go's time.String() (Alertmanager's .StartsAt in a text template).
        assert_eq!(
            utc("2026-11-25 08:14:03.512 +0000 UTC"),
            "2026-11-25T08:14:03.512Z"
        );
        assert_eq!(utc("2026-11-25T08:14:03Z"), "2026-11-25T08:14:03Z");
        // A mail's Date.
        assert_eq!(
            utc("Wed, 25 Nov 2026 14:02:11 +0100"),
            "2026-11-25T13:02:11Z"
        );
        // An unknown abbreviation: Berlin time.
        assert_eq!(utc("Wed Nov 25 11:20:08 XYZ 2026"), "2026-11-25T10:20:08Z");
    }

    #[test]
    fn no_time_is_none() {
        for s in ["", "soon", "25 o'clock", "2026-13-45 99:00:00"] {
            assert!(parse(s).is_none(), "{s}");
        }
    }
}
