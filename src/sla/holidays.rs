//! Statutory public holidays of the 16 German states, for any year of the Gregorian calendar.
//!
//! Only holidays that hold in a whole state are listed: Mariä Himmelfahrt in Bavaria's Catholic
//! communities, Fronleichnam in parts of Saxony and Thuringia and the Augsburger Friedensfest are
//! local and left to a calendar's `closed` dates. Holidays introduced recently apply from the
//! year their law took effect; earlier abolished ones (Buß- und Bettag outside Saxony before
//! 1995) are not modelled, so years before 1995 may differ from history.
use std::fmt;
use std::str::FromStr;

use jiff::ToSpan;
use jiff::civil::{Date, date};

/// A German state (Land), by the two-letter code the Nutzerkonto subjects use too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    BW,
    BY,
    BE,
    BB,
    HB,
    HH,
    HE,
    MV,
    NI,
    NW,
    RP,
    SL,
    SN,
    ST,
    SH,
    TH,
}

use State::*;

impl State {
    pub const ALL: [State; 16] = [
        BW, BY, BE, BB, HB, HH, HE, MV, NI, NW, RP, SL, SN, ST, SH, TH,
    ];

    pub fn code(self) -> &'static str {
        match self {
            BW => "BW",
            BY => "BY",
            BE => "BE",
            BB => "BB",
            HB => "HB",
            HH => "HH",
            HE => "HE",
            MV => "MV",
            NI => "NI",
            NW => "NW",
            RP => "RP",
            SL => "SL",
            SN => "SN",
            ST => "ST",
            SH => "SH",
            TH => "TH",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for State {
    type Err = ();

    /// A state code, case-insensitive (`HE`, `rp`).
    fn from_str(s: &str) -> Result<State, ()> {
        State::ALL
            .into_iter()
            .find(|st| st.code().eq_ignore_ascii_case(s.trim()))
            .ok_or(())
    }
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm, Meeus/Jones/Butcher).
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // month is 3 or 4 and day 1..=31 by construction of the algorithm.
    date(year, month as i8, day as i8)
}

/// A day relative to Easter Sunday, saturating at the ends of jiff's date range.
pub fn easter_offset(year: i16, days: i16) -> Date {
    let easter = easter_sunday(year);
    easter.checked_add(i32::from(days).days()).unwrap_or(easter)
}

/// One public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    pub date: Date,
    pub name: &'static str,
}

/// The Wednesday before 23 November (Buß- und Bettag).
fn buss_und_bettag(year: i16) -> Date {
    let nov22 = date(year, 11, 22);
    let back = (i32::from(nov22.weekday().to_monday_zero_offset()) - 2).rem_euclid(7);
    nov22.checked_sub(back.days()).unwrap_or(nov22)
}

/// Every public holiday of `state` in `year`, sorted by date.
pub fn holidays(state: State, year: i16) -> Vec<Holiday> {
    let fixed = |month: i8, day: i8, name| Holiday {
        date: date(year, month, day),
        name,
    };
    let easter = |days: i16, name| Holiday {
        date: easter_offset(year, days),
        name,
    };
    let is = |states: &[State]| states.contains(&state);

    let mut out = vec![
        fixed(1, 1, "Neujahr"),
        easter(-2, "Karfreitag"),
        easter(1, "Ostermontag"),
        fixed(5, 1, "Tag der Arbeit"),
        easter(39, "Christi Himmelfahrt"),
        easter(50, "Pfingstmontag"),
        fixed(10, 3, "Tag der Deutschen Einheit"),
        fixed(12, 25, "1. Weihnachtstag"),
        fixed(12, 26, "2. Weihnachtstag"),
    ];
    if is(&[BW, BY, ST]) {
        out.push(fixed(1, 6, "Heilige Drei Könige"));
    }
    // Berlin since 2019, Mecklenburg-Vorpommern since 2023.
    if (state == BE && year >= 2019) || (state == MV && year >= 2023) {
        out.push(fixed(3, 8, "Internationaler Frauentag"));
    }
    // Brandenburg's holiday law names the Sundays of Easter and Pentecost too; they only
    // matter to calendars open on Sundays.
    if state == BB {
        out.push(easter(0, "Ostersonntag"));
        out.push(easter(49, "Pfingstsonntag"));
    }
    if is(&[BW, BY, HE, NW, RP, SL]) {
        out.push(easter(60, "Fronleichnam"));
    }
    if state == SL {
        out.push(fixed(8, 15, "Mariä Himmelfahrt"));
    }
    if state == TH && year >= 2019 {
        out.push(fixed(9, 20, "Weltkindertag"));
    }
    // The 500th anniversary of the Reformation (2017) was a holiday everywhere; Bremen,
    // Hamburg, Niedersachsen and Schleswig-Holstein keep it since 2018.
    let reformation =
        is(&[BB, MV, SN, ST, TH]) || (is(&[HB, HH, NI, SH]) && year >= 2018) || year == 2017;
    if reformation {
        out.push(fixed(10, 31, "Reformationstag"));
    }
    if is(&[BW, BY, NW, RP, SL]) {
        out.push(fixed(11, 1, "Allerheiligen"));
    }
    if state == SN {
        out.push(Holiday {
            date: buss_und_bettag(year),
            name: "Buß- und Bettag",
        });
    }
    // One-off holidays by law: the 75th and 80th anniversaries of the end of the war in Berlin.
    if state == BE && (year == 2020 || year == 2025) {
        out.push(fixed(5, 8, "Tag der Befreiung"));
    }
    out.sort_by_key(|h| h.date);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easter_dates_match_the_published_table() {
        // Dates from the Physikalisch-Technische Bundesanstalt's Easter table.
        for (year, month, day) in [
            (1961, 4, 2),
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2028, 4, 16),
            (2029, 4, 1),
            (2030, 4, 21),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(year), date(year, month, day), "{year}");
        }
    }

    #[test]
    fn buss_und_bettag_is_the_wednesday_before_23_november() {
        assert_eq!(buss_und_bettag(2026), date(2026, 11, 18));
        assert_eq!(buss_und_bettag(2023), date(2023, 11, 22));
        assert_eq!(buss_und_bettag(2028), date(2028, 11, 22));
        assert_eq!(buss_und_bettag(2029), date(2029, 11, 21));
    }

    #[test]
    fn state_specific_holidays() {
        let names = |s: State, y| {
            holidays(s, y)
                .into_iter()
                .map(|h| h.name)
                .collect::<Vec<_>>()
        };
        assert!(names(BE, 2026).contains(&"Internationaler Frauentag"));
        assert!(!names(BE, 2018).contains(&"Internationaler Frauentag"));
        assert!(names(SN, 2026).contains(&"Buß- und Bettag"));
        assert!(names(NI, 2026).contains(&"Reformationstag"));
        assert!(!names(NI, 2016).contains(&"Reformationstag"));
        assert!(names(HE, 2017).contains(&"Reformationstag"));
        assert!(!names(HE, 2026).contains(&"Reformationstag"));
        assert!(names(TH, 2026).contains(&"Weltkindertag"));
        assert_eq!(holidays(HB, 2026).len(), 10);
        assert_eq!(holidays(BY, 2026).len(), 12);
    }

    #[test]
    fn state_codes_parse_case_insensitively() {
        assert_eq!("rp".parse::<State>(), Ok(RP));
        assert_eq!(" HE ".parse::<State>(), Ok(HE));
        assert!("XX".parse::<State>().is_err());
        assert_eq!(State::ALL.len(), 16);
    }
}
