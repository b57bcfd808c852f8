//! Regular maintenance windows and the lead time of maintenance announcements (MISSION §4,
//! seed 001 §4.3 and §5.1.3), in Europe/Berlin.
//!
//! The seeds: maintenance takes place "in der Regel mittwochs zwischen 19.00 und 23.00 Uhr
//! sowie am letzten Samstag im Monat von 14.00 bis ca. 19.00 Uhr"; it is announced to all users
//! "innerhalb von 7 Tagen vor dem Update"; "planbare Abweichungen vom Wartungsfenster werden mit
//! vierzehn Tagen Vorlauf angekündigt". So a planned window that lies entirely inside one
//! occurrence of a regular window needs 7 days' notice, any other 14.
//!
//! **What "7 days ahead" means here: calendar days in Berlin.** An announcement made on day D
//! (at any hour) allows a start on day D+7 (from 00:00) or later; D+14 outside the regular
//! window. That is how the seeds count (*Tage*, not hours) and how an administrator reads it:
//! announced on a Wednesday, any time of day, for the Wednesday a week later. Counting 7 × 24
//! hours instead would refuse a notice sent at 19:30 for next Wednesday 19:00, and — across
//! the spring switch to summer time, when that week has 167 hours — even one sent at 19:00 for
//! 19:00. The day of the announcement does not count as a day of notice (as in German
//! deadline reckoning, § 187 BGB): announced at 00:05 on Thursday gives no more notice than at
//! 23:55, and both allow the Thursday a week later.
//!
//! Times of day in a regular window are Berlin wall-clock times. Where the clock skips an hour
//! (last Sunday of March, 02:00→03:00) a time in the gap means the instant after it; where it
//! repeats one (last Sunday of October, 03:00→02:00) a window starts at the first and ends at
//! the second reading, so it spans everything the clock shows. A window whose end is not
//! after its start ("Sat 22:00-06:00") runs past midnight into the next day.
use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// Days of notice for a window inside a regular maintenance window (seed 001 §5.1.3).
pub const INSIDE_LEAD_DAYS: i32 = 7;
/// Days of notice for a window outside the regular ones (seed 001 §4.3).
pub const OUTSIDE_LEAD_DAYS: i32 = 14;

const MINUTES_PER_DAY: u16 = 1440;

/// Which days of a month a regular window falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recurrence {
    /// Every such weekday.
    Every,
    /// The first (1) to fourth (4) such weekday of the month.
    Nth(u8),
    /// The last such weekday of the month.
    Last,
}

/// A regular maintenance window: a weekday (every one, or the first…fourth or last of the
/// month) and a span of Berlin wall-clock time, e.g. `Wed 19:00-23:00`, `last Sat 14:00-19:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegularWindow {
    recurrence: Recurrence,
    weekday: Weekday,
    /// Minutes after local midnight of the day the window falls on.
    start: u16,
    /// Minutes after the same midnight; more than 1440 when the window runs into the next day.
    end: u16,
}

/// The default regular windows of MISSION §4: Wednesdays 19:00–23:00 and the last Saturday
/// of the month 14:00–19:00.
pub fn default_windows() -> Vec<RegularWindow> {
    vec![
        RegularWindow {
            recurrence: Recurrence::Every,
            weekday: Weekday::Wednesday,
            start: 19 * 60,
            end: 23 * 60,
        },
        RegularWindow {
            recurrence: Recurrence::Last,
            weekday: Weekday::Saturday,
            start: 14 * 60,
            end: 19 * 60,
        },
    ]
}

/// One regular window on one day, as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub window: RegularWindow,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Occurrence {
    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }
}

impl fmt::Display for Occurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&span_for_people(self.start, self.end))
    }
}

impl RegularWindow {
    pub fn recurrence(&self) -> Recurrence {
        self.recurrence
    }

    pub fn weekday(&self) -> Weekday {
        self.weekday
    }

    /// Whether the window falls on `date` (its start lies on that day).
    pub fn falls_on(&self, date: Date) -> bool {
        date.weekday() == self.weekday
            && match self.recurrence {
                Recurrence::Every => true,
                Recurrence::Nth(n) => (date.day() - 1) / 7 + 1 == n as i8,
                Recurrence::Last => date.day() + 7 > date.days_in_month(),
            }
    }

    /// The window on `date`, if it falls on that day.
    pub fn on(&self, date: Date, tz: &TimeZone) -> Result<Option<Occurrence>, jiff::Error> {
        if !self.falls_on(date) {
            return Ok(None);
        }
        let midnight = date.to_datetime(Time::midnight());
        let at = |minutes: u16| midnight.checked_add(i64::from(minutes).minutes());
        // A start in the gap of the spring switch is the instant after it, one in the repeated
        // hour of the autumn the first reading; an end the second reading (module docs).
        let start = tz.to_ambiguous_timestamp(at(self.start)?).compatible()?;
        let end = tz.to_ambiguous_timestamp(at(self.end)?).later()?;
        Ok(Some(Occurrence {
            window: *self,
            start,
            end,
        }))
    }
}

impl fmt::Display for RegularWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.recurrence {
            Recurrence::Every => {}
            Recurrence::Nth(n) => {
                match ["first", "second", "third", "fourth"].get(usize::from(n).wrapping_sub(1)) {
                    Some(word) => write!(f, "{word} ")?,
                    None => write!(f, "{n}th ")?,
                }
            }
            Recurrence::Last => f.write_str("last ")?,
        }
        let end = if self.end == MINUTES_PER_DAY {
            MINUTES_PER_DAY
        } else {
            self.end % MINUTES_PER_DAY
        };
        write!(
            f,
            "{} {:02}:{:02}-{:02}:{:02}",
            weekday_abbrev(self.weekday),
            self.start / 60,
            self.start % 60,
            end / 60,
            end % 60
        )
    }
}

fn weekday_abbrev(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

/// A regular window that could not be read, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{text}\" is not a maintenance window: {problem}; write it like \"Wed 19:00-23:00\", \"last Sat 14:00-19:00\" or \"first Mon 06:00-08:00\""
)]
pub struct WindowParseError {
    pub text: String,
    pub problem: String,
}

impl FromStr for RegularWindow {
    type Err = WindowParseError;

    /// `[every|first|second|third|fourth|last] WEEKDAY HH:MM-HH:MM`, case-insensitive;
    /// weekdays in English or German (`Wed`, `Wednesday`, `Mi`, `Mittwoch`), the ordinals too
    /// (`letzter Sa 14:00-19:00`), `of the month` / `im Monat` allowed after the weekday.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| WindowParseError {
            text: text.to_string(),
            problem,
        };
        let lower = text.trim().to_lowercase();
        // The span starts at the first number that is no ordinal ("4th"); the words before
        // it name the day.
        let split = lower
            .char_indices()
            .filter(|&(i, c)| {
                c.is_ascii_digit() && !lower[..i].ends_with(|p: char| p.is_ascii_digit())
            })
            .map(|(i, _)| i)
            .find(|&i| {
                !lower[i..]
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .starts_with(char::is_alphabetic)
            })
            .ok_or_else(|| fail("it has no time span".into()))?;
        let (words, span) = lower.split_at(split);
        let mut words: Vec<&str> = words
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|w| w.trim_end_matches('.'))
            .filter(|w| !w.is_empty())
            .collect();
        if let [.., a, b, c] = words[..]
            && (a, b, c) == ("of", "the", "month")
        {
            words.truncate(words.len() - 3);
        }
        if let [.., a, b] = words[..]
            && (a, b) == ("im", "monat")
        {
            words.truncate(words.len() - 2);
        }
        let (recurrence, weekday) = match words[..] {
            [day] => (Recurrence::Every, day),
            [which, day] => (
                recurrence(which).ok_or_else(|| {
                    fail(format!(
                        "\"{which}\" is not one of every, first, second, third, fourth, last (a fifth weekday is not in every month: use last)"
                    ))
                })?,
                day,
            ),
            [] => return Err(fail("it names no weekday".into())),
            _ => return Err(fail("too many words before the time span".into())),
        };
        let weekday = weekday_named(weekday)
            .ok_or_else(|| fail(format!("\"{weekday}\" is not a weekday (Mon … Sun)")))?;
        let (start, end) = parse_span(span).map_err(fail)?;
        Ok(RegularWindow {
            recurrence,
            weekday,
            start,
            end,
        })
    }
}

fn recurrence(word: &str) -> Option<Recurrence> {
    Some(match word {
        "every" | "jeden" | "jeder" => Recurrence::Every,
        "first" | "1st" | "erster" | "erste" | "ersten" => Recurrence::Nth(1),
        "second" | "2nd" | "zweiter" | "zweite" | "zweiten" => Recurrence::Nth(2),
        "third" | "3rd" | "dritter" | "dritte" | "dritten" => Recurrence::Nth(3),
        "fourth" | "4th" | "vierter" | "vierte" | "vierten" => Recurrence::Nth(4),
        "last" | "letzter" | "letzte" | "letzten" => Recurrence::Last,
        _ => return None,
    })
}

fn weekday_named(word: &str) -> Option<Weekday> {
    Some(match word {
        "mon" | "monday" | "mo" | "montag" => Weekday::Monday,
        "tue" | "tues" | "tuesday" | "di" | "dienstag" => Weekday::Tuesday,
        "wed" | "wednesday" | "mi" | "mittwoch" => Weekday::Wednesday,
        "thu" | "thur" | "thurs" | "thursday" | "do" | "donnerstag" => Weekday::Thursday,
        "fri" | "friday" | "fr" | "freitag" => Weekday::Friday,
        "sat" | "saturday" | "sa" | "samstag" | "sonnabend" => Weekday::Saturday,
        "sun" | "sunday" | "so" | "sonntag" => Weekday::Sunday,
        _ => return None,
    })
}

/// `19:00-23:00` (also `19.00 - 23.00 Uhr`, an en dash): start and end in minutes after the
/// midnight of the start day; an end not after the start is on the next day.
fn parse_span(span: &str) -> Result<(u16, u16), String> {
    let span = span.trim();
    let span = span.strip_suffix("uhr").unwrap_or(span).trim();
    let (a, b) = span
        .split_once(['-', '–'])
        .ok_or_else(|| format!("\"{span}\" is not a span of time like 19:00-23:00"))?;
    let start = parse_clock(a)?;
    let end = parse_clock(b)?;
    if start == MINUTES_PER_DAY {
        return Err("a window cannot start at 24:00 (write 00:00 of the next weekday)".into());
    }
    if start == end {
        return Err(format!(
            "\"{span}\" starts and ends at the same time (a whole day is 00:00-24:00)"
        ));
    }
    let end = if end < start {
        end + MINUTES_PER_DAY
    } else {
        end
    };
    Ok((start, end))
}

/// `HH:MM` or `HH.MM`, 00:00 to 24:00.
fn parse_clock(s: &str) -> Result<u16, String> {
    let s = s.trim();
    let bad = || format!("\"{s}\" is not a time of day like 19:00");
    let (h, m) = s.split_once([':', '.']).ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The occurrence of a regular window that holds all of `[start, end)`, if any. A window that
/// starts inside a regular one and ends after it is not inside.
pub fn containing(
    windows: &[RegularWindow],
    start: Timestamp,
    end: Timestamp,
    tz: &TimeZone,
) -> Result<Option<Occurrence>, jiff::Error> {
    let day = start.to_zoned(tz.clone()).date();
    // A window that runs past midnight holds the early hours of the day after it falls on.
    for date in [day.yesterday()?, day] {
        for w in windows {
            if let Some(o) = w.on(date, tz)?
                && o.start <= start
                && end <= o.end
            {
                return Ok(Some(o));
            }
        }
    }
    Ok(None)
}

/// The first occurrence of a regular window that starts at `from` or later and lasts at
/// least `min_len`.
pub fn next_occurrence(
    windows: &[RegularWindow],
    from: Timestamp,
    min_len: SignedDuration,
    tz: &TimeZone,
) -> Result<Option<Occurrence>, jiff::Error> {
    let mut date = from.to_zoned(tz.clone()).date();
    // Every recurrence comes round at least once a month.
    for _ in 0..62 {
        let mut best: Option<Occurrence> = None;
        for w in windows {
            if let Some(o) = w.on(date, tz)?
                && o.start >= from
                && o.duration() >= min_len
                && best.is_none_or(|b| o.start < b.start)
            {
                best = Some(o);
            }
        }
        if best.is_some() {
            return Ok(best);
        }
        date = date.tomorrow()?;
    }
    Ok(None)
}

/// Which lead-time rule applies to a planned window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Entirely inside one regular window: 7 days.
    InsideRegularWindow,
    /// Anywhere else (also partly inside): 14 days.
    OutsideRegularWindow,
}

impl Rule {
    pub fn days(self) -> i32 {
        match self {
            Rule::InsideRegularWindow => INSIDE_LEAD_DAYS,
            Rule::OutsideRegularWindow => OUTSIDE_LEAD_DAYS,
        }
    }
}

/// A planned window that may be announced now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadTime {
    pub rule: Rule,
    /// The regular window occurrence that holds the planned window, if it lies inside one.
    pub inside: Option<Occurrence>,
    /// Calendar days in Berlin from the day of the announcement to the day of the start.
    pub days_ahead: i32,
    /// The earliest start the rule allows for an announcement now: 00:00 Berlin time of the
    /// day `rule.days()` after today.
    pub earliest_start: Timestamp,
    /// Whether the announcement gives the notice its rule asks for.
    pub rule_met: bool,
    /// Announced as an emergency (`--emergency`): the rule did not stop it, and the notice
    /// says so.
    pub emergency: bool,
}

impl LeadTime {
    /// An emergency that the rule alone would have refused.
    pub fn bypassed(&self) -> bool {
        self.emergency && !self.rule_met
    }
}

/// Why a planned window may not be announced now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadTimeError {
    #[error("{0}")]
    TooShort(Box<TooShort>),
    #[error(
        "the maintenance would end ({}) before it starts ({}); give an end after the start",
        instant_for_people(*end),
        instant_for_people(*start)
    )]
    EndNotAfterStart { start: Timestamp, end: Timestamp },
    #[error(
        "the maintenance ended at {} (now it is {}); a notice after the fact announces nothing — give the planned start and end of work still to come",
        instant_for_people(*end),
        instant_for_people(*now)
    )]
    AlreadyOver { end: Timestamp, now: Timestamp },
    #[error("the time zone Europe/Berlin or a date is out of reach: {0}")]
    Time(String),
}

impl From<jiff::Error> for LeadTimeError {
    fn from(e: jiff::Error) -> Self {
        LeadTimeError::Time(e.to_string())
    }
}

/// An announcement with less notice than its rule asks: the rule, the earliest allowed start
/// and the next regular window that the work would fit into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooShort {
    pub rule: Rule,
    /// The occurrence that holds the planned window (inside rule only).
    pub inside: Option<Occurrence>,
    /// The regular windows the check knew (named in the message of the outside rule).
    pub windows: Vec<RegularWindow>,
    pub announced: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
    pub earliest_start: Timestamp,
    /// The first regular window on or after the 7th day that is long enough for the work.
    pub next_regular: Option<Occurrence>,
}

impl fmt::Display for TooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let planned = span_for_people(self.start, self.end);
        let days = self.rule.days();
        match &self.inside {
            Some(o) => write!(
                f,
                "the maintenance {planned} lies inside the regular window \"{}\" and must be announced at least {days} days ahead",
                o.window
            )?,
            None => {
                let names: Vec<String> = self.windows.iter().map(|w| w.to_string()).collect();
                let names = if names.is_empty() {
                    "none are configured".to_string()
                } else {
                    names.join(", ")
                };
                write!(
                    f,
                    "the maintenance {planned} lies outside the regular maintenance windows ({names}) and must be announced at least {days} days ahead"
                )?
            }
        }
        write!(
            f,
            " (calendar days, Europe/Berlin): announced on {}, it may start on {} at the earliest. ",
            date_for_people(self.announced),
            instant_for_people(self.earliest_start)
        )?;
        f.write_str("Move the start to then or later")?;
        if let Some(next) = &self.next_regular {
            match self.rule {
                Rule::InsideRegularWindow => {
                    write!(f, " (the next regular window that fits: {next})")?
                }
                Rule::OutsideRegularWindow => write!(
                    f,
                    ", or into a regular window, which needs {INSIDE_LEAD_DAYS} days' notice (the first that fits: {next})"
                )?,
            }
        }
        f.write_str(", or pass --emergency for unplanned work (the notice says so)")
    }
}

/// Whether a maintenance planned for `[start, end)` may be announced at `now` (module docs:
/// 7 calendar days inside a regular window, 14 outside). With `emergency` it may, and the
/// result records whether the rule was bypassed; a window that is already over is refused
/// either way.
pub fn check_lead_time(
    now: Timestamp,
    start: Timestamp,
    end: Timestamp,
    windows: &[RegularWindow],
    emergency: bool,
) -> Result<LeadTime, LeadTimeError> {
    if end <= start {
        return Err(LeadTimeError::EndNotAfterStart { start, end });
    }
    if end <= now {
        return Err(LeadTimeError::AlreadyOver { end, now });
    }
    let tz = crate::time::berlin()?;
    let inside = containing(windows, start, end, &tz)?;
    let rule = match inside {
        Some(_) => Rule::InsideRegularWindow,
        None => Rule::OutsideRegularWindow,
    };
    let announced_day = now.to_zoned(tz.clone()).date();
    let start_day = start.to_zoned(tz.clone()).date();
    let days_ahead = announced_day.until(start_day)?.get_days();
    let midnight_after = |days: i32| -> Result<Timestamp, jiff::Error> {
        Ok(announced_day
            .checked_add(days.days())?
            .to_zoned(tz.clone())?
            .timestamp())
    };
    let earliest_start = midnight_after(rule.days())?;
    let rule_met = days_ahead >= rule.days();
    if !rule_met && !emergency {
        let next_regular = next_occurrence(
            windows,
            midnight_after(INSIDE_LEAD_DAYS)?,
            end.duration_since(start),
            &tz,
        )?;
        return Err(LeadTimeError::TooShort(Box::new(TooShort {
            rule,
            inside,
            windows: windows.to_vec(),
            announced: now,
            start,
            end,
            earliest_start,
            next_regular,
        })));
    }
    Ok(LeadTime {
        rule,
        inside,
        days_ahead,
        earliest_start,
        rule_met,
        emergency,
    })
}

/// `Wed 2026-03-25 19:00 CET`.
pub fn instant_for_people(t: Timestamp) -> String {
    t.to_zoned(crate::time::berlin_or_utc())
        .strftime("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `Wed 2026-03-25`.
fn date_for_people(t: Timestamp) -> String {
    t.to_zoned(crate::time::berlin_or_utc())
        .strftime("%a %Y-%m-%d")
        .to_string()
}

/// `Wed 2026-03-25 19:00–23:00 CET`; the end with its date when it is on another day, with
/// its zone when the clock changed in between.
pub fn span_for_people(start: Timestamp, end: Timestamp) -> String {
    let tz = crate::time::berlin_or_utc();
    let (s, e) = (start.to_zoned(tz.clone()), end.to_zoned(tz));
    if s.date() != e.date() {
        return format!(
            "{} – {}",
            instant_for_people(start),
            instant_for_people(end)
        );
    }
    let (sz, ez) = (s.strftime("%Z").to_string(), e.strftime("%Z").to_string());
    if sz == ez {
        format!(
            "{}–{} {ez}",
            s.strftime("%a %Y-%m-%d %H:%M"),
            e.strftime("%H:%M")
        )
    } else {
        format!(
            "{} {sz}–{} {ez}",
            s.strftime("%a %Y-%m-%d %H:%M"),
            e.strftime("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::DateTime;

    fn tz() -> TimeZone {
        crate::time::berlin().expect("Europe/Berlin")
    }

    /// Berlin wall-clock time `2026-03-25T19:00` as an instant (first reading at a fold).
    fn b(s: &str) -> Timestamp {
        let dt: DateTime = s.parse().expect("civil date-time");
        dt.to_zoned(tz()).expect("in Berlin").timestamp()
    }

    fn u(s: &str) -> Timestamp {
        s.parse().expect("instant")
    }

    fn w(s: &str) -> RegularWindow {
        s.parse().expect("window")
    }

    fn check(now: &str, start: &str, end: &str) -> Result<LeadTime, LeadTimeError> {
        check_lead_time(b(now), b(start), b(end), &default_windows(), false)
    }

    fn too_short(r: Result<LeadTime, LeadTimeError>) -> TooShort {
        match r {
            Err(LeadTimeError::TooShort(t)) => *t,
            other => panic!("expected a refusal for too short notice, got {other:?}"),
        }
    }

    #[test]
    fn windows_parse_in_english_and_german_and_print_canonically() {
        for (text, canonical) in [
            ("Wed 19:00-23:00", "Wed 19:00-23:00"),
            ("last Sat 14:00-19:00", "last Sat 14:00-19:00"),
            ("first Mon 06:00-08:00", "first Mon 06:00-08:00"),
            (
                "second tuesday of the month 05:00 - 07:00",
                "second Tue 05:00-07:00",
            ),
            ("4th Thu 20:30-22:00", "fourth Thu 20:30-22:00"),
            ("1st mon 6:00-8:00", "first Mon 06:00-08:00"),
            ("every Wednesday 19:00-23:00", "Wed 19:00-23:00"),
            ("Mittwoch 19:00–23:00", "Wed 19:00-23:00"),
            (
                "letzter Samstag im Monat 14.00 - 19.00 Uhr",
                "last Sat 14:00-19:00",
            ),
            ("Sa, 22:00-06:00", "Sat 22:00-06:00"),
            ("Sun 00:00-24:00", "Sun 00:00-24:00"),
            ("Fri 22:00-00:00", "Fri 22:00-24:00"),
        ] {
            let window = w(text);
            assert_eq!(window.to_string(), canonical, "{text}");
            assert_eq!(w(canonical), window, "{canonical} reads back");
        }
    }

    #[test]
    fn bad_windows_say_what_is_wrong_and_how_to_write_one() {
        for (text, problem) in [
            ("", "no time span"),
            ("Wed", "no time span"),
            ("19:00-23:00", "names no weekday"),
            (
                "fifth Sat 14:00-19:00",
                "a fifth weekday is not in every month: use last",
            ),
            ("Wen 19:00-23:00", "\"wen\" is not a weekday"),
            ("Wed 19:00-19:00", "starts and ends at the same time"),
            ("Wed 19:00", "not a span of time"),
            ("Wed 25:00-26:00", "\"25:00\" is not a time of day"),
            ("Wed 19:60-23:00", "\"19:60\" is not a time of day"),
            ("Wed 24:00-02:00", "cannot start at 24:00"),
            ("last Sat of June 14:00-19:00", "too many words"),
        ] {
            let err = text.parse::<RegularWindow>().expect_err(text).to_string();
            assert!(err.contains(problem), "{text}: {err}");
            assert!(
                err.starts_with(&format!("\"{text}\" is not a maintenance window")),
                "{err}"
            );
            assert!(err.contains("write it like \"Wed 19:00-23:00\""), "{err}");
        }
    }

    #[test]
    fn the_default_windows_are_wednesday_evenings_and_the_last_saturday_afternoon() {
        let names: Vec<String> = default_windows().iter().map(|w| w.to_string()).collect();
        assert_eq!(names, ["Wed 19:00-23:00", "last Sat 14:00-19:00"]);
        assert_eq!(
            default_windows(),
            vec![w("Wed 19:00-23:00"), w("last Sat 14:00-19:00")]
        );
    }

    #[test]
    fn august_2026_has_five_saturdays_and_only_the_29th_is_the_last() {
        let saturdays: Vec<i8> = (1..=31)
            .filter_map(|d| Date::new(2026, 8, d).ok())
            .filter(|d| d.weekday() == Weekday::Saturday)
            .map(|d| d.day())
            .collect();
        assert_eq!(saturdays, [1, 8, 15, 22, 29]);
        let last = w("last Sat 14:00-19:00");
        let fourth = w("fourth Sat 14:00-19:00");
        let falls = |win: RegularWindow| -> Vec<i8> {
            saturdays
                .iter()
                .filter(|&&d| Date::new(2026, 8, d).is_ok_and(|date| win.falls_on(date)))
                .copied()
                .collect()
        };
        assert_eq!(falls(last), [29]);
        assert_eq!(falls(fourth), [22]);
        // In a month of four Saturdays the fourth is the last: February 2026 (7, 14, 21, 28).
        assert!(last.falls_on(Date::new(2026, 2, 28).expect("date")));
        assert!(fourth.falls_on(Date::new(2026, 2, 28).expect("date")));

        let windows = default_windows();
        let inside = containing(
            &windows,
            b("2026-08-29T14:00"),
            b("2026-08-29T19:00"),
            &tz(),
        )
        .expect("tz")
        .expect("inside the last Saturday");
        assert_eq!(inside.window, last);
        assert_eq!(inside.to_string(), "Sat 2026-08-29 14:00–19:00 CEST");
        assert_eq!(
            containing(
                &windows,
                b("2026-08-22T14:00"),
                b("2026-08-22T19:00"),
                &tz()
            )
            .expect("tz"),
            None,
            "the fourth of five Saturdays is no regular window"
        );
        // Announced a week ahead: fine on the 29th, two weeks needed on the 22nd.
        let ok = check("2026-08-22T23:30", "2026-08-29T15:00", "2026-08-29T18:00").expect("7 days");
        assert_eq!((ok.rule, ok.days_ahead), (Rule::InsideRegularWindow, 7));
        let refused = too_short(check(
            "2026-08-15T08:00",
            "2026-08-22T15:00",
            "2026-08-22T18:00",
        ));
        assert_eq!(refused.rule, Rule::OutsideRegularWindow);
        assert_eq!(refused.earliest_start, b("2026-08-29T00:00"));
    }

    #[test]
    fn a_window_that_starts_inside_and_ends_outside_the_regular_one_is_outside() {
        let windows = default_windows();
        let inside = |s: &str, e: &str| {
            containing(&windows, b(s), b(e), &tz())
                .expect("tz")
                .is_some()
        };
        assert!(
            inside("2026-11-25T19:00", "2026-11-25T23:00"),
            "exactly the window"
        );
        assert!(inside("2026-11-25T20:00", "2026-11-25T21:30"));
        assert!(
            !inside("2026-11-25T22:00", "2026-11-25T23:01"),
            "ends a minute late"
        );
        assert!(
            !inside("2026-11-25T18:59", "2026-11-25T21:00"),
            "starts a minute early"
        );
        assert!(!inside("2026-11-24T19:00", "2026-11-24T23:00"), "a Tuesday");

        // Announced 10 days ahead: enough inside, not when it overruns the window.
        let ok = check("2026-11-15T12:00", "2026-11-25T22:00", "2026-11-25T23:00").expect("inside");
        assert_eq!(ok.rule, Rule::InsideRegularWindow);
        let refused = too_short(check(
            "2026-11-15T12:00",
            "2026-11-25T22:00",
            "2026-11-25T23:30",
        ));
        assert_eq!(refused.rule, Rule::OutsideRegularWindow);
        assert_eq!(refused.inside, None);
        assert_eq!(refused.earliest_start, b("2026-11-29T00:00"));
        let msg = refused.to_string();
        assert!(
            msg.contains("lies outside the regular maintenance windows (Wed 19:00-23:00, last Sat 14:00-19:00)"),
            "{msg}"
        );
        assert!(msg.contains("at least 14 days ahead"), "{msg}");
        assert!(msg.contains("Sun 2026-11-29 00:00 CET"), "{msg}");
    }

    #[test]
    fn seven_days_inside_a_regular_window_to_the_minute() {
        // Announced on Wednesday 18 Nov, any time of day: Wednesday 25 Nov is allowed.
        for now in ["2026-11-18T00:00", "2026-11-18T19:30", "2026-11-18T23:59"] {
            let ok = check(now, "2026-11-25T19:00", "2026-11-25T23:00").expect(now);
            assert_eq!(ok.rule, Rule::InsideRegularWindow);
            assert_eq!(ok.days_ahead, 7);
            assert!(ok.rule_met && !ok.emergency && !ok.bypassed());
            assert_eq!(ok.earliest_start, b("2026-11-25T00:00"));
            assert_eq!(
                ok.inside.map(|o| o.to_string()).as_deref(),
                Some("Wed 2026-11-25 19:00–23:00 CET")
            );
        }
        // One minute later it is Thursday: six days of notice.
        let refused = too_short(check(
            "2026-11-19T00:00",
            "2026-11-25T19:00",
            "2026-11-25T23:00",
        ));
        assert_eq!(refused.rule, Rule::InsideRegularWindow);
        assert_eq!(refused.earliest_start, b("2026-11-26T00:00"));
        // The first regular window from then that holds four hours: the last Saturday.
        assert_eq!(
            refused.next_regular.map(|o| o.start),
            Some(b("2026-11-28T14:00"))
        );
        let msg = refused.to_string();
        for part in [
            "the maintenance Wed 2026-11-25 19:00–23:00 CET lies inside the regular window \"Wed 19:00-23:00\"",
            "at least 7 days ahead (calendar days, Europe/Berlin)",
            "announced on Thu 2026-11-19, it may start on Thu 2026-11-26 00:00 CET at the earliest",
            "the next regular window that fits: Sat 2026-11-28 14:00–19:00 CET",
            "--emergency",
        ] {
            assert!(msg.contains(part), "missing {part:?} in {msg}");
        }
        // One day short, at noon.
        too_short(check(
            "2026-11-19T12:00",
            "2026-11-25T19:00",
            "2026-11-25T23:00",
        ));
    }

    #[test]
    fn fourteen_days_outside_the_regular_windows_to_the_minute() {
        // Tuesday morning work, announced two weeks before on Tuesday, late at night.
        let ok =
            check("2026-11-10T23:59", "2026-11-24T09:00", "2026-11-24T12:00").expect("14 days");
        assert_eq!((ok.rule, ok.days_ahead), (Rule::OutsideRegularWindow, 14));
        assert_eq!(ok.inside, None);
        // A minute later: 13 days.
        let refused = too_short(check(
            "2026-11-11T00:00",
            "2026-11-24T09:00",
            "2026-11-24T12:00",
        ));
        assert_eq!(refused.rule, Rule::OutsideRegularWindow);
        assert_eq!(refused.earliest_start, b("2026-11-25T00:00"));
        // Midnight Berlin is 23:00 UTC the day before in winter.
        assert_eq!(refused.earliest_start, u("2026-11-24T23:00:00Z"));
        // The alternative: a regular window a week on that holds three hours.
        assert_eq!(
            refused.next_regular.map(|o| o.to_string()).as_deref(),
            Some("Wed 2026-11-18 19:00–23:00 CET")
        );
        let msg = refused.to_string();
        assert!(
            msg.contains("or into a regular window, which needs 7 days' notice (the first that fits: Wed 2026-11-18 19:00–23:00 CET)"),
            "{msg}"
        );
        // The earliest start itself is allowed, a minute before it is not.
        let now = "2026-11-11T10:00";
        check(now, "2026-11-25T00:00", "2026-11-25T03:00").expect("the earliest start");
        too_short(check(now, "2026-11-24T23:59", "2026-11-25T03:00"));
        // One day short.
        too_short(check(
            "2026-11-11T10:00",
            "2026-11-24T09:00",
            "2026-11-24T12:00",
        ));
    }

    #[test]
    fn the_day_of_the_announcement_is_berlins_not_utcs() {
        // 00:30 CET on Thursday is still Wednesday in UTC; in Berlin it is Thursday: too late
        // for the next Wednesday.
        let now = b("2026-11-19T00:30");
        assert_eq!(now, u("2026-11-18T23:30:00Z"));
        let r = check_lead_time(
            now,
            b("2026-11-25T19:00"),
            b("2026-11-25T23:00"),
            &default_windows(),
            false,
        );
        assert_eq!(too_short(r).earliest_start, b("2026-11-26T00:00"));
    }

    #[test]
    fn a_week_across_the_spring_switch_has_167_hours_and_is_still_seven_days() {
        // Last Sunday of March: 29 March 2026, 28 March 2027.
        let last_sunday = |y| {
            Date::new(y, 3, 1)
                .and_then(|d| d.nth_weekday_of_month(-1, Weekday::Sunday))
                .expect("date")
        };
        assert_eq!(last_sunday(2026), Date::new(2026, 3, 29).expect("date"));
        assert_eq!(last_sunday(2027), Date::new(2027, 3, 28).expect("date"));

        let (now, start) = (b("2026-03-25T19:00"), b("2026-04-01T19:00"));
        assert_eq!(start.duration_since(now), SignedDuration::from_hours(167));
        let ok = check_lead_time(now, start, b("2026-04-01T23:00"), &default_windows(), false)
            .expect("7 calendar days");
        assert_eq!((ok.rule, ok.days_ahead), (Rule::InsideRegularWindow, 7));
        assert_eq!(
            ok.inside.map(|o| o.to_string()).as_deref(),
            Some("Wed 2026-04-01 19:00–23:00 CEST")
        );
        // The last Saturday of March 2026 is the day before the switch.
        let ok =
            check("2026-03-21T09:00", "2026-03-28T14:00", "2026-03-28T19:00").expect("last Sat");
        assert_eq!(ok.inside.map(|o| o.window), Some(w("last Sat 14:00-19:00")));
        // Work through the night of the switch, 2027: outside, 14 days, earliest start the
        // Monday after at midnight (summer time by then).
        let refused = too_short(check(
            "2027-03-15T00:00",
            "2027-03-28T01:00",
            "2027-03-28T04:00",
        ));
        assert_eq!(refused.rule, Rule::OutsideRegularWindow);
        assert_eq!(refused.earliest_start, u("2027-03-28T22:00:00Z"));
        assert!(
            refused.to_string().contains("Mon 2027-03-29 00:00 CEST"),
            "{refused}"
        );
        check("2027-03-14T23:59", "2027-03-28T01:00", "2027-03-28T04:00").expect("14 days");
    }

    #[test]
    fn a_week_across_the_autumn_switch_has_169_hours_and_is_still_seven_days() {
        // Last Sunday of October: 25 October 2026, 31 October 2027.
        for (y, day) in [(2026, 25), (2027, 31)] {
            let d = Date::new(y, 10, 1)
                .and_then(|d| d.nth_weekday_of_month(-1, Weekday::Sunday))
                .expect("date");
            assert_eq!(d.day(), day, "{y}");
        }
        let (now, start) = (b("2026-10-21T19:00"), b("2026-10-28T19:00"));
        assert_eq!(start.duration_since(now), SignedDuration::from_hours(169));
        let ok = check_lead_time(now, start, b("2026-10-28T23:00"), &default_windows(), false)
            .expect("7 calendar days");
        assert_eq!(ok.days_ahead, 7);
        // The last Saturday of October 2027 is the eve of the switch: a week's notice from
        // Saturday the 23rd, late in the evening; from Sunday the 24th six days only.
        let ok = check("2027-10-23T22:00", "2027-10-30T14:00", "2027-10-30T19:00").expect("7 days");
        assert_eq!(ok.inside.map(|o| o.window), Some(w("last Sat 14:00-19:00")));
        too_short(check(
            "2027-10-24T00:00",
            "2027-10-30T14:00",
            "2027-10-30T19:00",
        ));
        // Over the repeated hour: 01:30 CEST to the second 02:30 (CET), outside, 14 days.
        let (s, e) = (u("2027-10-30T23:30:00Z"), u("2027-10-31T01:30:00Z"));
        let ok = check_lead_time(b("2027-10-17T08:00"), s, e, &default_windows(), false)
            .expect("14 days");
        assert_eq!(ok.rule, Rule::OutsideRegularWindow);
        let r = check_lead_time(b("2027-10-18T08:00"), s, e, &default_windows(), false);
        assert_eq!(too_short(r).earliest_start, b("2027-11-01T00:00"));
    }

    #[test]
    fn a_regular_window_on_the_switch_night_spans_the_hours_the_clock_shows() {
        let tz = tz();
        let night = w("last Sun 01:00-04:00");
        let hours = |date: Date| {
            night
                .on(date, &tz)
                .expect("tz")
                .expect("falls on it")
                .duration()
        };
        // Spring: 01:00 CET to 04:00 CEST is two hours; autumn: 01:00 CEST to 04:00 CET four.
        assert_eq!(
            hours(Date::new(2027, 3, 28).expect("d")),
            SignedDuration::from_hours(2)
        );
        assert_eq!(
            hours(Date::new(2027, 10, 31).expect("d")),
            SignedDuration::from_hours(4)
        );
        // A start in the spring gap is the instant after it.
        let gap = w("Sun 02:30-04:00").on(Date::new(2026, 3, 29).expect("d"), &tz);
        let gap = gap.expect("tz").expect("Sunday");
        assert_eq!(gap.start, u("2026-03-29T01:30:00Z"));
        assert_eq!(gap.duration(), SignedDuration::from_mins(30));
        // An end in the repeated hour is its second reading.
        let fold = w("Sun 00:00-02:30").on(Date::new(2026, 10, 25).expect("d"), &tz);
        let fold = fold.expect("tz").expect("Sunday");
        assert_eq!(fold.end, u("2026-10-25T01:30:00Z"));
        assert_eq!(fold.duration(), SignedDuration::from_mins(210));
        // Work in the switch night that the regular window holds needs 7 days.
        let windows = [night];
        let (s, e) = (u("2027-10-30T23:30:00Z"), u("2027-10-31T02:30:00Z"));
        let ok = check_lead_time(b("2027-10-24T23:00"), s, e, &windows, false).expect("inside");
        assert_eq!(ok.rule, Rule::InsideRegularWindow);
    }

    #[test]
    fn a_window_past_midnight_holds_the_early_hours_of_the_next_day() {
        let windows = [w("Sat 22:00-06:00")];
        let inside = |s: &str, e: &str| {
            containing(&windows, b(s), b(e), &tz())
                .expect("tz")
                .map(|o| o.to_string())
        };
        assert_eq!(
            inside("2026-11-29T01:00", "2026-11-29T05:00").as_deref(),
            Some("Sat 2026-11-28 22:00 CET – Sun 2026-11-29 06:00 CET")
        );
        assert_eq!(inside("2026-11-28T23:00", "2026-11-29T07:00"), None);
    }

    #[test]
    fn the_next_regular_window_is_one_long_enough() {
        // Five hours do not fit a Wednesday evening; the last Saturday of November 2026 is
        // the 28th.
        let next = next_occurrence(
            &default_windows(),
            b("2026-11-19T00:00"),
            SignedDuration::from_hours(5),
            &tz(),
        )
        .expect("tz")
        .expect("found");
        assert_eq!(next.to_string(), "Sat 2026-11-28 14:00–19:00 CET");
        // Six hours fit none of them.
        let none = next_occurrence(
            &default_windows(),
            b("2026-11-19T00:00"),
            SignedDuration::from_hours(6),
            &tz(),
        )
        .expect("tz");
        assert_eq!(none, None);
        let refused = too_short(check(
            "2026-11-19T10:00",
            "2026-11-24T08:00",
            "2026-11-24T14:00",
        ));
        assert_eq!(refused.next_regular, None);
        assert!(!refused.to_string().contains("regular window that fits"));
    }

    #[test]
    fn an_emergency_bypasses_the_rule_and_says_so() {
        let windows = default_windows();
        // Today, outside the regular window.
        let ok = check_lead_time(
            b("2026-11-24T10:00"),
            b("2026-11-24T12:00"),
            b("2026-11-24T14:00"),
            &windows,
            true,
        )
        .expect("an emergency may start at once");
        assert_eq!(ok.rule, Rule::OutsideRegularWindow);
        assert_eq!(ok.days_ahead, 0);
        assert!(ok.emergency && !ok.rule_met && ok.bypassed());
        // Already running (started before the notice): still an emergency notice.
        let ok = check_lead_time(
            b("2026-11-24T10:00"),
            b("2026-11-24T09:30"),
            b("2026-11-24T11:00"),
            &windows,
            true,
        )
        .expect("work under way");
        assert!(ok.bypassed());
        // An emergency with notice enough bypasses nothing.
        let ok = check_lead_time(
            b("2026-11-01T10:00"),
            b("2026-11-25T19:00"),
            b("2026-11-25T23:00"),
            &windows,
            true,
        )
        .expect("plenty of notice");
        assert!(ok.emergency && ok.rule_met && !ok.bypassed());
        // Over before it is announced: refused even as an emergency.
        let over = check_lead_time(
            b("2026-11-24T10:00"),
            b("2026-11-24T08:00"),
            b("2026-11-24T09:00"),
            &windows,
            true,
        );
        assert!(
            matches!(over, Err(LeadTimeError::AlreadyOver { .. })),
            "{over:?}"
        );
        let msg = over.expect_err("over").to_string();
        assert!(msg.contains("ended at Tue 2026-11-24 09:00 CET"), "{msg}");
    }

    #[test]
    fn an_end_not_after_the_start_is_refused() {
        let r = check("2026-11-01T10:00", "2026-11-25T19:00", "2026-11-25T19:00");
        assert!(
            matches!(r, Err(LeadTimeError::EndNotAfterStart { .. })),
            "{r:?}"
        );
        let msg = r.expect_err("refused").to_string();
        assert!(msg.contains("give an end after the start"), "{msg}");
    }
}
