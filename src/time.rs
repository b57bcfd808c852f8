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

/// An instant as a person reads it: Berlin wall-clock time to the second with the zone's
/// abbreviation, which tells the two 02:30 of the October switch apart, e.g.
/// `2026-12-03 17:02:50 CET`. Machines get RFC 3339 in UTC (`--json`).
pub fn for_people(t: Timestamp) -> String {
    t.to_zoned(berlin_or_utc())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
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
