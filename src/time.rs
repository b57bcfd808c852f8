//! The one time zone of everything a person reads: Europe/Berlin, with its daylight-saving
//! switches. Instants are stored in UTC; calendars and every date shown are computed here.
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Europe/Berlin. The zone database is compiled into the binary (jiff's bundled tzdb), so this
/// fails only on a broken build; it still errors rather than falling back to UTC, which would
/// shift every deadline and ticket number by one or two hours without a word.
pub fn berlin() -> Result<TimeZone, jiff::Error> {
    TimeZone::get("Europe/Berlin")
}

/// [`berlin`] for text a person reads, where a broken build should still show a time: UTC,
/// with its zone written beside it, rather than no time at all.
pub fn berlin_or_utc() -> TimeZone {
    berlin().unwrap_or(TimeZone::UTC)
}

/// An instant as the store keeps it (UTC microseconds). Only our own writes put them there,
/// all in range; should one not be, it shows as the epoch rather than failing a listing.
pub fn stored(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// An instant as a person reads it: Berlin wall-clock time to the second with the zone's
/// abbreviation, which tells the two 02:30 of the October switch apart, e.g.
/// `2026-12-03 17:02:50 CET`. Machines get RFC 3339 in UTC (`--json`).
pub fn for_people(t: Timestamp) -> String {
    t.to_zoned(berlin_or_utc())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// An instant as a person writes it: RFC 3339 with an offset, or Berlin wall-clock time as
/// `2026-12-16 19:00` (seconds optional, `T` allowed) or German `16.12.2026 19:00`; a date
/// alone is the start of that day. A Berlin time the autumn switch repeats is its first
/// reading. The error says what is wanted.
pub fn parse_for_people(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let wanted = || {
        format!(
            "\"{s}\": use Berlin time \"2026-12-16 19:00\" or \"16.12.2026 19:00\" (a date \
             alone is its start), or RFC 3339 \"2026-12-16T18:00:00Z\""
        )
    };
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| {
            s.parse::<jiff::civil::Date>()
                .ok()
                .map(|d| d.at(0, 0, 0, 0))
        })
        .or_else(|| {
            ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"]
                .iter()
                .find_map(|f| jiff::civil::DateTime::strptime(f, s).ok())
        })
        .or_else(|| {
            jiff::civil::Date::strptime("%d.%m.%Y", s)
                .ok()
                .map(|d| d.at(0, 0, 0, 0))
        })
        .ok_or_else(wanted)?;
    let tz = berlin().map_err(|e| e.to_string())?;
    tz.to_ambiguous_zoned(civil)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|e| format!("\"{s}\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::{for_people, parse_for_people};

    #[test]
    fn berlin_to_the_second_with_summer_and_winter_time() {
        let t = |s: &str| s.parse().expect("instant");
        assert_eq!(
            for_people(t("2026-12-03T16:02:50.166394Z")),
            "2026-12-03 17:02:50 CET"
        );
        assert_eq!(
            for_people(t("2026-07-01T08:00:00Z")),
            "2026-07-01 10:00:00 CEST"
        );
    }

    #[test]
    fn instants_as_people_write_them() {
        let utc = |s: &str| parse_for_people(s).map(|t| t.to_string());
        assert_eq!(
            utc("2026-12-16 19:00").as_deref(),
            Ok("2026-12-16T18:00:00Z")
        );
        assert_eq!(
            utc("16.12.2026 19:00").as_deref(),
            Ok("2026-12-16T18:00:00Z")
        );
        assert_eq!(utc("16.12.2026").as_deref(), Ok("2026-12-15T23:00:00Z"));
        assert_eq!(utc("2026-07-01").as_deref(), Ok("2026-06-30T22:00:00Z"));
        assert_eq!(
            utc("2026-12-16T18:00:00Z").as_deref(),
            Ok("2026-12-16T18:00:00Z")
        );
        assert!(utc("morgen").is_err_and(|e| e.contains("16.12.2026 19:00")));
    }
}
