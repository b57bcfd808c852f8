//! The one time zone of everything a person reads: Europe/Berlin, with its daylight-saving
//! switches. Instants are stored in UTC; calendars and every date shown are computed here.
use jiff::tz::TimeZone;

/// Europe/Berlin. The zone database is compiled into the binary (jiff's bundled tzdb), so this
/// fails only on a broken build; it still errors rather than falling back to UTC, which would
/// shift every deadline and ticket number by one or two hours without a word.
pub fn berlin() -> Result<TimeZone, jiff::Error> {
    TimeZone::get("Europe/Berlin")
}
