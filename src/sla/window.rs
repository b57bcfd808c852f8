//! A platform's regular maintenance windows (MISSION §4: "Wednesdays 19:00–23:00 and the last
//! Saturday of the month 14:00–19:00"): one span of one weekday, every week or on the first …
//! fourth or the last such weekday of a month, in Europe/Berlin wall-clock time. The
//! configuration writes them as `"Wed 19:00-23:00"` and `"last Sat 14:00-19:00"`.
//!
//! Wall-clock time, not a duration: on the Saturday of a clock change the window still runs
//! from 14:00 to 19:00 as the clock on the wall shows them.
use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time, Weekday};

use super::calendar::{Span, parse_spans};

/// Which of a month's days of that weekday a window falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// Every week.
    Every,
    /// The first (1) to fourth (4) of the month; a fifth is not in every month.
    Nth(u8),
    /// The last of the month (the fourth or the fifth).
    Last,
}

/// One regular maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegularWindow {
    pub occurrence: Occurrence,
    pub weekday: Weekday,
    /// Minutes after local midnight; `span.end` may be 1440, the following midnight. A window
    /// ends on the day it starts.
    pub span: Span,
}

/// Why a window's text could not be read; the message names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowError(String);

/// What a window looks like, for the fix of a diagnostic.
pub const WINDOW_SYNTAX: &str = "write a weekday and a time span, e.g. \"Wed 19:00-23:00\", \
    optionally after first, second, third, fourth or last: \"last Sat 14:00-19:00\" (a window \
    ends on the day it starts; 24:00 is midnight)";

const DAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Monday, "mon", "monday"),
    (Weekday::Tuesday, "tue", "tuesday"),
    (Weekday::Wednesday, "wed", "wednesday"),
    (Weekday::Thursday, "thu", "thursday"),
    (Weekday::Friday, "fri", "friday"),
    (Weekday::Saturday, "sat", "saturday"),
    (Weekday::Sunday, "sun", "sunday"),
];

const ORDINALS: [&str; 4] = ["first", "second", "third", "fourth"];

impl RegularWindow {
    /// The windows of a platform that names none: Wednesdays 19:00–23:00 and the last Saturday
    /// of the month 14:00–19:00 (MISSION §4).
    pub fn defaults() -> Vec<RegularWindow> {
        vec![
            RegularWindow {
                occurrence: Occurrence::Every,
                weekday: Weekday::Wednesday,
                span: Span {
                    start: 19 * 60,
                    end: 23 * 60,
                },
            },
            RegularWindow {
                occurrence: Occurrence::Last,
                weekday: Weekday::Saturday,
                span: Span {
                    start: 14 * 60,
                    end: 19 * 60,
                },
            },
        ]
    }

    /// Whether the window falls on `date`.
    pub fn occurs_on(&self, date: Date) -> bool {
        if date.weekday() != self.weekday {
            return false;
        }
        match self.occurrence {
            Occurrence::Every => true,
            Occurrence::Nth(n) => (date.day() - 1) / 7 + 1 == n as i8,
            Occurrence::Last => date.day() + 7 > date.days_in_month(),
        }
    }

    /// Start and end on `date` as wall-clock times (the end at 24:00 is the next day's 00:00);
    /// `None` when the window does not fall on that date.
    pub fn on(&self, date: Date) -> Option<(DateTime, DateTime)> {
        if !self.occurs_on(date) {
            return None;
        }
        let at = |minutes: u16| -> Option<DateTime> {
            let midnight = date.to_datetime(Time::midnight());
            midnight
                .checked_add(jiff::SignedDuration::from_mins(i64::from(minutes)))
                .ok()
        };
        Some((at(self.span.start)?, at(self.span.end)?))
    }
}

impl FromStr for RegularWindow {
    type Err = WindowError;

    /// `[every|first|second|third|fourth|last] <weekday> HH:MM-HH:MM`, case-insensitive;
    /// weekdays as `mon` … `sun` or in full.
    fn from_str(text: &str) -> Result<RegularWindow, WindowError> {
        let mut words = text.split_whitespace();
        let first = words
            .next()
            .ok_or_else(|| WindowError("the window is empty".into()))?;
        let (occurrence, weekday) = match weekday(first) {
            Some(day) => (Occurrence::Every, day),
            None => {
                let occurrence = occurrence(first)?;
                let day = words.next().unwrap_or_default();
                let weekday = weekday(day).ok_or_else(|| {
                    WindowError(format!(
                        "\"{day}\" after \"{first}\" is no weekday (mon, tue, wed, thu, fri, sat, sun)"
                    ))
                })?;
                (occurrence, weekday)
            }
        };
        let span = words.collect::<Vec<_>>().join(" ");
        if span.is_empty() {
            return Err(WindowError(format!(
                "\"{}\" has no time span after the weekday",
                text.trim()
            )));
        }
        let spans = parse_spans(&span).map_err(WindowError)?;
        let [span] = spans.as_slice() else {
            return Err(WindowError(format!(
                "\"{span}\" is not one time span like 19:00-23:00"
            )));
        };
        Ok(RegularWindow {
            occurrence,
            weekday,
            span: *span,
        })
    }
}

/// `mon` … `sun` or the full name, any case.
fn weekday(word: &str) -> Option<Weekday> {
    DAYS.iter()
        .find(|(_, short, long)| {
            word.eq_ignore_ascii_case(short) || word.eq_ignore_ascii_case(long)
        })
        .map(|(w, _, _)| *w)
}

fn occurrence(word: &str) -> Result<Occurrence, WindowError> {
    let w = word.to_ascii_lowercase();
    if w == "every" {
        return Ok(Occurrence::Every);
    }
    if w == "last" {
        return Ok(Occurrence::Last);
    }
    let nth = ORDINALS
        .iter()
        .position(|o| *o == w)
        .or_else(|| ["1st", "2nd", "3rd", "4th"].iter().position(|o| *o == w));
    match nth {
        Some(i) => Ok(Occurrence::Nth(i as u8 + 1)),
        None if w == "fifth" || w == "5th" => Err(WindowError(
            "a fifth weekday is not in every month; write \"last\" for the last of the month"
                .into(),
        )),
        None => Err(WindowError(format!(
            "\"{word}\" is no weekday (mon, tue, wed, thu, fri, sat, sun), nor first, second, \
             third, fourth or last"
        ))),
    }
}

impl fmt::Display for RegularWindow {
    /// The form the configuration takes: `Wed 19:00-23:00`, `last Sat 14:00-19:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.occurrence {
            Occurrence::Every => {}
            Occurrence::Nth(n) => write!(
                f,
                "{} ",
                ORDINALS
                    .get(usize::from(n).saturating_sub(1))
                    .unwrap_or(&"?")
            )?,
            Occurrence::Last => write!(f, "last ")?,
        }
        let short = DAYS
            .iter()
            .find(|(w, _, _)| *w == self.weekday)
            .map_or("?", |(_, s, _)| s);
        let mut day = short.to_string();
        if let Some(first) = day.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        write!(f, "{day} {}", self.span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn w(s: &str) -> RegularWindow {
        s.parse().expect(s)
    }

    #[test]
    fn the_defaults_read_as_written() {
        let d = RegularWindow::defaults();
        assert_eq!(d[0], w("Wed 19:00-23:00"));
        assert_eq!(d[1], w("last Sat 14:00-19:00"));
        assert_eq!(d[1].to_string(), "last Sat 14:00-19:00");
        assert_eq!(
            w("SECOND monday 06:00-24:00").to_string(),
            "second Mon 06:00-24:00"
        );
    }

    #[test]
    fn the_last_saturday_of_a_month_with_five() {
        // August 2026 has five Saturdays: 1, 8, 15, 22, 29.
        let last = w("last Sat 14:00-19:00");
        assert!(!last.occurs_on(date(2026, 8, 22)));
        assert!(last.occurs_on(date(2026, 8, 29)));
        assert!(w("fourth Sat 14:00-19:00").occurs_on(date(2026, 8, 22)));
        assert!(!last.occurs_on(date(2026, 8, 30)), "a Sunday");
        // February 2026 has four: the last is the fourth.
        assert!(last.occurs_on(date(2026, 2, 28)));
        let (start, end) = w("Wed 19:00-24:00")
            .on(date(2026, 3, 4))
            .expect("a Wednesday");
        assert_eq!(start.to_string(), "2026-03-04T19:00:00");
        assert_eq!(end.to_string(), "2026-03-05T00:00:00");
    }

    #[test]
    fn mistakes_say_which_part_is_wrong() {
        let err = |s: &str| s.parse::<RegularWindow>().expect_err(s).to_string();
        assert!(err("Mi 19:00-23:00").contains("\"Mi\" is no weekday"));
        assert!(err("fifth Sat 14:00-19:00").contains("write \"last\""));
        assert!(err("Sat 22:00-02:00").contains("ends before it starts"));
        assert!(err("Sat 14:00").contains("not an interval"));
        assert!(err("Sat 14:00-15:00, 16:00-17:00").contains("not one time span"));
        assert!(
            err("every other Sat 14:00-19:00").contains("\"other\" after \"every\" is no weekday")
        );
        assert!(err("last Sat").contains("no time span"));
        assert!(err("  ").contains("empty"));
    }
}
