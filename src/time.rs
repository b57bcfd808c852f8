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

/// An instant as a person reads it: Berlin wall-clock time to the second with the zone's
/// abbreviation, which tells the two 02:30 of the October switch apart, e.g.
/// `2026-12-03 17:02:50 CET`. Machines get RFC 3339 in UTC (`--json`).
pub fn for_people(t: Timestamp) -> String {
    // Without a zone database (a broken build, see [`berlin`]) UTC, and it says so.
    let tz = berlin().unwrap_or(TimeZone::UTC);
    t.to_zoned(tz).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::for_people;

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
}
