//! Service calendars: weekly service hours, closed days (public holidays of a state plus extra
//! dates) and extra open days, in Europe/Berlin.
//!
//! A calendar turns its rules into service intervals as UTC instants, one table per year, built
//! on first use. Every question after that (the deadline, the service time between two instants)
//! is a binary search and a short walk over integers; the time zone is consulted only while a
//! year's table is built, where each interval's ends are converted on their own date — so a day
//! of 23 or 25 hours has exactly the service time its clock shows.
use std::fmt;
use std::sync::OnceLock;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::SlaError;
use super::holidays::{self, State};

/// Years a calendar can answer for.
pub const MIN_YEAR: i16 = 1900;
pub const MAX_YEAR: i16 = 2199;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// A service interval within one day, in minutes after local midnight; `end` may be 1440
/// (24:00, the following midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: u16,
    pub end: u16,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Parses `"07:00-12:00, 13:00-17:00"`: sorted, non-overlapping intervals within one day.
pub fn parse_spans(text: &str) -> Result<Vec<Span>, String> {
    let mut spans = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("\"{part}\" is not an interval like 07:00-18:00"))?;
        let span = Span {
            start: parse_clock(a)?,
            end: parse_clock(b)?,
        };
        if span.start >= span.end {
            return Err(format!(
                "\"{part}\" ends before it starts (intervals cannot run past midnight)"
            ));
        }
        spans.push(span);
    }
    spans.sort();
    if let Some(w) = spans.windows(2).find(|w| w[0].end > w[1].start) {
        return Err(format!("the intervals {} and {} overlap", w[0], w[1]));
    }
    Ok(spans)
}

/// `HH:MM`, 00:00 to 24:00.
fn parse_clock(s: &str) -> Result<u16, String> {
    let s = s.trim();
    let bad = || format!("\"{s}\" is not a time like 07:30");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A day named in a calendar's `closed` or `open` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRule {
    /// `2026-06-05`: that date.
    Date(Date),
    /// `12-24`: that day every year.
    Annual { month: i8, day: i8 },
    /// `easter-48` / `rosenmontag`: days relative to Easter Sunday, every year.
    Easter(i16),
}

impl DayRule {
    pub fn parse(text: &str) -> Result<DayRule, String> {
        let t = text.trim().to_ascii_lowercase();
        if t == "rosenmontag" {
            return Ok(DayRule::Easter(-48));
        }
        if let Some(rest) = t.strip_prefix("easter") {
            let days = if rest.is_empty() {
                0
            } else {
                rest.trim_start_matches('+')
                    .parse::<i16>()
                    .ok()
                    .filter(|d| d.abs() <= 300)
                    .ok_or_else(|| format!("\"{text}\" is not a day like easter-48"))?
            };
            return Ok(DayRule::Easter(days));
        }
        if let Ok(date) = t.parse::<Date>() {
            return Ok(DayRule::Date(date));
        }
        let annual = t.split_once('-').and_then(|(m, d)| {
            let (month, day) = (m.parse::<i8>().ok()?, d.parse::<i8>().ok()?);
            // 2024 is a leap year, so 02-29 is accepted (and simply absent in other years).
            Date::new(2024, month, day).ok()?;
            Some(DayRule::Annual { month, day })
        });
        annual.ok_or_else(|| {
            format!("\"{text}\" is neither a date (2026-06-05), a day of every year (12-24) nor a day relative to Easter (easter-48, rosenmontag)")
        })
    }

    /// The day this rule names in `year`, if any.
    pub fn in_year(self, year: i16) -> Option<Date> {
        match self {
            DayRule::Date(d) => (d.year() == year).then_some(d),
            DayRule::Annual { month, day } => Date::new(year, month, day).ok(),
            DayRule::Easter(days) => Some(holidays::easter_offset(year, days)),
        }
    }
}

impl fmt::Display for DayRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DayRule::Date(d) => write!(f, "{d}"),
            DayRule::Annual { month, day } => write!(f, "{month:02}-{day:02}"),
            DayRule::Easter(-48) => f.write_str("rosenmontag"),
            DayRule::Easter(0) => f.write_str("easter"),
            DayRule::Easter(d) => write!(f, "easter{d:+}"),
        }
    }
}

/// An extra open day; without its own hours it has the weekly hours of its weekday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDay {
    pub day: DayRule,
    pub hours: Option<Vec<Span>>,
}

impl OpenDay {
    /// `2026-12-27` or `2026-12-27 09:00-12:00, 13:00-15:00`.
    pub fn parse(text: &str) -> Result<OpenDay, String> {
        let text = text.trim();
        match text.split_once(char::is_whitespace) {
            Some((day, hours)) => Ok(OpenDay {
                day: DayRule::parse(day)?,
                hours: Some(parse_spans(hours)?),
            }),
            None => Ok(OpenDay {
                day: DayRule::parse(text)?,
                hours: None,
            }),
        }
    }
}

/// What a calendar is made of, before its tables are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    pub name: String,
    /// Monday first.
    pub weekly: [Vec<Span>; 7],
    /// The state whose public holidays close the service.
    pub holidays: Option<State>,
    pub closed: Vec<(DayRule, String)>,
    pub open: Vec<OpenDay>,
    /// Announced maintenance is no service time for reaction deadlines either (`rlp`,
    /// MISSION §3): a deadline spanning an announced window moves by its service time.
    pub maintenance_is_closed: bool,
}

impl CalendarSpec {
    /// ekom21 support (seed 001 §4.4): Mon–Thu 07:00–18:00, Fri 07:00–15:00; closed on
    /// Hessen's public holidays, 24 and 31 December.
    pub fn hessen() -> CalendarSpec {
        let day = |a, b| vec![Span { start: a, end: b }];
        CalendarSpec {
            name: "hessen".into(),
            weekly: [
                day(420, 1080),
                day(420, 1080),
                day(420, 1080),
                day(420, 1080),
                day(420, 900),
                vec![],
                vec![],
            ],
            holidays: Some(State::HE),
            closed: christmas_and_new_years_eve(),
            open: vec![],
            maintenance_is_closed: false,
        }
    }

    /// ZIDKOR platform (seed 000): Mon–Fri 07:30–17:00; closed on Rheinland-Pfalz's public
    /// holidays, Rosenmontag, 24 and 31 December, and during announced maintenance.
    pub fn rlp() -> CalendarSpec {
        let day = vec![Span {
            start: 450,
            end: 1020,
        }];
        let mut closed = vec![(DayRule::Easter(-48), "Rosenmontag".to_string())];
        closed.extend(christmas_and_new_years_eve());
        CalendarSpec {
            name: "rlp".into(),
            weekly: [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ],
            holidays: Some(State::RP),
            closed,
            open: vec![],
            maintenance_is_closed: true,
        }
    }

    /// The built-in calendar of that name.
    pub fn builtin(name: &str) -> Option<CalendarSpec> {
        match name {
            "hessen" => Some(CalendarSpec::hessen()),
            "rlp" => Some(CalendarSpec::rlp()),
            _ => None,
        }
    }

    /// Why `date` is closed although its weekday has hours, or `None` when it is not closed
    /// by a holiday or an extra date.
    pub fn closure(&self, date: Date, holidays: &[holidays::Holiday]) -> Option<String> {
        if let Some(h) = holidays.iter().find(|h| h.date == date) {
            return Some(h.name.to_string());
        }
        self.closed
            .iter()
            .find(|(rule, _)| rule.in_year(date.year()) == Some(date))
            .map(|(_, why)| why.clone())
    }

    /// The service hours of one date.
    fn hours_on<'a>(&'a self, date: Date, holidays: &[holidays::Holiday]) -> &'a [Span] {
        let weekly = &self.weekly[weekday_index(date.weekday())];
        if let Some(open) = self
            .open
            .iter()
            .find(|o| o.day.in_year(date.year()) == Some(date))
        {
            return open.hours.as_deref().unwrap_or(weekly);
        }
        if self.closure(date, holidays).is_some() {
            return &[];
        }
        weekly
    }

    /// Whether any day could ever be open; a calendar without would never reach a deadline.
    pub fn has_service_hours(&self) -> bool {
        self.weekly.iter().any(|d| !d.is_empty())
            || self
                .open
                .iter()
                .any(|o| o.hours.as_ref().is_some_and(|h| !h.is_empty()))
    }
}

fn christmas_and_new_years_eve() -> Vec<(DayRule, String)> {
    vec![
        (
            DayRule::Annual { month: 12, day: 24 },
            "Heiligabend".to_string(),
        ),
        (
            DayRule::Annual { month: 12, day: 31 },
            "Silvester".to_string(),
        ),
    ]
}

pub fn weekday_index(w: Weekday) -> usize {
    usize::from(w.to_monday_zero_offset().unsigned_abs())
}

/// One year of service intervals as UTC nanoseconds since the epoch.
struct YearTable {
    /// Local midnight of every day of the year and of the next 1 January (days + 1 entries).
    day_start: Vec<i64>,
    /// Index of each day's first interval in `intervals` (days + 1 entries).
    day_first: Vec<u32>,
    /// Sorted, non-overlapping, non-empty `(start, end)` intervals.
    intervals: Vec<(i64, i64)>,
}

impl YearTable {
    fn build(spec: &CalendarSpec, tz: &TimeZone, year: i16) -> Result<YearTable, SlaError> {
        let holidays = spec
            .holidays
            .map(|s| holidays::holidays(s, year))
            .unwrap_or_default();
        let to_nanos = |date: Date, minutes: u16| -> Result<i64, SlaError> {
            let dt = date
                .to_datetime(jiff::civil::Time::midnight())
                .checked_add(i64::from(minutes).minutes())?;
            // At a gap (spring forward) this is the later instant, at a fold (fall back) the
            // earlier one: the hours the wall clock shows.
            let ts = tz.to_timestamp(dt)?;
            Ok(nanos(ts))
        };
        let first = Date::new(year, 1, 1)?;
        let days = first.days_in_year();
        let mut table = YearTable {
            day_start: Vec::with_capacity(usize::from(days.unsigned_abs()) + 1),
            day_first: Vec::with_capacity(usize::from(days.unsigned_abs()) + 1),
            intervals: Vec::new(),
        };
        let mut date = first;
        for _ in 0..days {
            table.day_start.push(to_nanos(date, 0)?);
            table.day_first.push(table.intervals.len() as u32);
            for span in spec.hours_on(date, &holidays) {
                let (start, end) = (to_nanos(date, span.start)?, to_nanos(date, span.end)?);
                if end > start {
                    table.intervals.push((start, end));
                }
            }
            date = date.tomorrow()?;
        }
        table.day_start.push(to_nanos(date, 0)?);
        table.day_first.push(table.intervals.len() as u32);
        Ok(table)
    }

    fn start(&self) -> i64 {
        self.day_start[0]
    }

    fn end(&self) -> i64 {
        self.day_start[self.day_start.len() - 1]
    }

    /// Index of the first interval that ends after `t`.
    fn first_ending_after(&self, t: i64) -> usize {
        self.intervals.partition_point(|&(_, end)| end <= t)
    }

    /// Index of the day containing `t` (which must lie in this year).
    fn day_of(&self, t: i64) -> usize {
        self.day_start
            .partition_point(|&s| s <= t)
            .saturating_sub(1)
    }
}

/// A service calendar with its year tables.
pub struct Calendar {
    spec: CalendarSpec,
    tz: TimeZone,
    years: Box<[OnceLock<Result<YearTable, SlaError>>]>,
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// Instants while a year table is built: years 1900..=2199 fit in i64 nanoseconds.
fn nanos(t: Timestamp) -> i64 {
    t.as_nanosecond() as i64
}

pub(crate) fn timestamp(n: i64) -> Result<Timestamp, SlaError> {
    Ok(Timestamp::from_nanosecond(i128::from(n))?)
}

/// The proleptic Gregorian year of a count of days since 1970-01-01 (H. Hinnant's
/// `civil_from_days`), to pick a year table without a time-zone conversion.
fn utc_year(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    yoe + era * 400 + i64::from(mp >= 10)
}

impl Calendar {
    pub fn new(spec: CalendarSpec, tz: TimeZone) -> Result<Calendar, SlaError> {
        if !spec.has_service_hours() {
            return Err(SlaError::NoServiceHours {
                calendar: spec.name,
            });
        }
        let years = (MIN_YEAR..=MAX_YEAR).map(|_| OnceLock::new()).collect();
        Ok(Calendar { spec, tz, years })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn spec(&self) -> &CalendarSpec {
        &self.spec
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    fn table(&self, year: i64) -> Result<&YearTable, SlaError> {
        let slot = i16::try_from(year)
            .ok()
            .filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))
            .map(|y| (y, &self.years[usize::from((y - MIN_YEAR).unsigned_abs())]));
        let Some((y, slot)) = slot else {
            return Err(SlaError::OutOfRange { year });
        };
        slot.get_or_init(|| YearTable::build(&self.spec, &self.tz, y))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The year (by this calendar's local time) that contains `t`, with its table.
    fn locate(&self, t: i64) -> Result<(i64, &YearTable), SlaError> {
        let mut year = utc_year(t.div_euclid(NANOS_PER_DAY));
        loop {
            let table = self.table(year)?;
            if t < table.start() {
                year -= 1;
            } else if t >= table.end() {
                year += 1;
            } else {
                return Ok((year, table));
            }
        }
    }

    /// The instant at which `budget` of service time, counted from `from`, is used up. A budget
    /// that ends exactly at the close of an interval gives that instant, not the next opening.
    pub fn advance(&self, from: Timestamp, budget: SignedDuration) -> Result<Timestamp, SlaError> {
        let budget = i64::try_from(budget.as_nanos().max(0)).unwrap_or(i64::MAX);
        timestamp(self.advance_nanos(self.checked(from)?, budget)?)
    }

    /// `t` in nanoseconds; the year tables reject what lies outside their range.
    fn checked(&self, t: Timestamp) -> Result<i64, SlaError> {
        i64::try_from(t.as_nanosecond()).map_err(|_| SlaError::OutOfRange {
            year: i64::from(t.to_zoned(TimeZone::UTC).year()),
        })
    }

    pub(crate) fn advance_nanos(&self, from: i64, mut budget: i64) -> Result<i64, SlaError> {
        let (mut year, mut table) = self.locate(from)?;
        let mut i = table.first_ending_after(from);
        loop {
            if let Some(&(start, end)) = table.intervals.get(i) {
                let start = start.max(from);
                if budget <= end - start {
                    return Ok(start + budget);
                }
                budget -= end - start;
                i += 1;
            } else {
                year += 1;
                table = self.table(year)?;
                i = 0;
            }
        }
    }

    /// The service time inside `[from, to)`; zero when `to` is not after `from`.
    pub fn service_time(&self, from: Timestamp, to: Timestamp) -> Result<SignedDuration, SlaError> {
        let (from, to) = (self.checked(from)?, self.checked(to)?);
        Ok(SignedDuration::from_nanos(self.service_nanos(from, to)?))
    }

    pub(crate) fn service_nanos(&self, from: i64, to: i64) -> Result<i64, SlaError> {
        if to <= from {
            return Ok(0);
        }
        let (mut year, mut table) = self.locate(from)?;
        let mut i = table.first_ending_after(from);
        let mut total = 0;
        loop {
            match table.intervals.get(i) {
                Some(&(start, _)) if start >= to => return Ok(total),
                Some(&(start, end)) => {
                    total += end.min(to) - start.max(from);
                    if end >= to {
                        return Ok(total);
                    }
                    i += 1;
                }
                None if table.end() >= to => return Ok(total),
                None => {
                    year += 1;
                    table = self.table(year)?;
                    i = 0;
                }
            }
        }
    }

    /// Whether `t` lies inside a service interval.
    pub fn is_open(&self, t: Timestamp) -> Result<bool, SlaError> {
        let t = self.checked(t)?;
        let (_, table) = self.locate(t)?;
        Ok(table
            .intervals
            .get(table.first_ending_after(t))
            .is_some_and(|&(start, _)| start <= t))
    }

    /// The close of service on the `n`th service day strictly after the local calendar day of
    /// `t` (a service day is one with any service hours).
    pub fn close_of_service_day_after(&self, t: Timestamp, n: u32) -> Result<Timestamp, SlaError> {
        timestamp(self.close_of_service_day_nanos(self.checked(t)?, n)?)
    }

    pub(crate) fn close_of_service_day_nanos(&self, t: i64, n: u32) -> Result<i64, SlaError> {
        let (mut year, mut table) = self.locate(t)?;
        let mut day = table.day_of(t) + 1;
        let mut left = n.max(1);
        loop {
            if day + 1 >= table.day_start.len() {
                year += 1;
                table = self.table(year)?;
                day = 0;
                continue;
            }
            let (first, next) = (table.day_first[day], table.day_first[day + 1]);
            if next > first {
                left -= 1;
                if left == 0 {
                    return Ok(table.intervals[next as usize - 1].1);
                }
            }
            day += 1;
        }
    }

    /// Every service interval of one local date, as instants.
    pub fn intervals_on(&self, date: Date) -> Result<Vec<(Timestamp, Timestamp)>, SlaError> {
        let table = self.table(i64::from(date.year()))?;
        let day = usize::from(date.day_of_year().unsigned_abs()) - 1;
        table.intervals[table.day_first[day] as usize..table.day_first[day + 1] as usize]
            .iter()
            .map(|&(s, e)| Ok((timestamp(s)?, timestamp(e)?)))
            .collect()
    }

    /// The public holidays and extra closed dates of `year` that an open date does not
    /// override, with the reason (weekends included: a holiday on a Saturday is listed too).
    pub fn closed_days(&self, year: i16) -> Vec<(Date, String)> {
        let holidays = self
            .spec
            .holidays
            .map(|s| holidays::holidays(s, year))
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut date = Date::new(year, 1, 1).ok();
        while let Some(d) = date.filter(|d| d.year() == year) {
            if self.spec.hours_on(d, &holidays).is_empty()
                && let Some(why) = self.spec.closure(d, &holidays)
            {
                out.push((d, why));
            }
            date = d.tomorrow().ok();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn spans_parse_sorted_and_up_to_midnight() {
        let spans = parse_spans("13:00-17:00, 07:30-12:00").expect("valid");
        assert_eq!(
            spans,
            vec![
                Span {
                    start: 450,
                    end: 720
                },
                Span {
                    start: 780,
                    end: 1020
                }
            ]
        );
        assert_eq!(
            parse_spans("00:00-24:00").expect("valid")[0].to_string(),
            "00:00-24:00"
        );
        assert!(parse_spans("18:00-07:00").is_err());
        assert!(parse_spans("08:00-12:00, 11:59-13:00").is_err());
        assert!(parse_spans("24:30-24:45").is_err());
        assert!(parse_spans("8-12").is_err());
        // Touching intervals are fine: no overlap.
        assert_eq!(
            parse_spans("08:00-12:00, 12:00-13:00")
                .expect("valid")
                .len(),
            2
        );
    }

    #[test]
    fn day_rules_name_one_day_per_year() {
        assert_eq!(
            DayRule::parse("rosenmontag").expect("valid").in_year(2027),
            Some(date(2027, 2, 8))
        );
        assert_eq!(
            DayRule::parse("easter+1").expect("valid").in_year(2026),
            Some(date(2026, 4, 6))
        );
        assert_eq!(
            DayRule::parse("12-24").expect("valid").in_year(2030),
            Some(date(2030, 12, 24))
        );
        assert_eq!(DayRule::parse("02-29").expect("valid").in_year(2027), None);
        let fixed = DayRule::parse("2026-06-05").expect("valid");
        assert_eq!(fixed.in_year(2026), Some(date(2026, 6, 5)));
        assert_eq!(fixed.in_year(2027), None);
        for bad in ["13-01", "2026-02-30", "easter+x", "ostern", ""] {
            assert!(DayRule::parse(bad).is_err(), "{bad}");
        }
        for text in [
            "rosenmontag",
            "easter",
            "easter+60",
            "easter-2",
            "12-24",
            "2026-06-05",
        ] {
            assert_eq!(DayRule::parse(text).expect("valid").to_string(), text);
        }
    }

    #[test]
    fn an_open_day_overrides_a_holiday_with_its_own_hours() {
        let mut spec = CalendarSpec::hessen();
        spec.open
            .push(OpenDay::parse("2026-12-24 09:00-11:00").expect("valid"));
        spec.open.push(OpenDay::parse("2026-12-31").expect("valid"));
        let cal = Calendar::new(spec, crate::time::berlin().expect("tz")).expect("calendar");
        let hours = |d| cal.intervals_on(d).expect("day");
        assert_eq!(
            hours(date(2026, 12, 24)),
            vec![(
                "2026-12-24T08:00:00Z".parse().expect("ts"),
                "2026-12-24T10:00:00Z".parse().expect("ts")
            )]
        );
        // Without hours of its own: the weekday's (Thursday 07:00-18:00).
        assert_eq!(hours(date(2026, 12, 31)).len(), 1);
        assert!(hours(date(2026, 12, 25)).is_empty());
    }

    #[test]
    fn a_calendar_without_hours_is_refused() {
        let mut spec = CalendarSpec::rlp();
        spec.weekly = Default::default();
        assert!(matches!(
            Calendar::new(spec, crate::time::berlin().expect("tz")),
            Err(SlaError::NoServiceHours { .. })
        ));
    }

    #[test]
    fn years_outside_the_tables_are_errors_not_panics() {
        let cal = Calendar::new(CalendarSpec::hessen(), crate::time::berlin().expect("tz"))
            .expect("calendar");
        let far: Timestamp = "2300-01-01T00:00:00Z".parse().expect("ts");
        assert!(matches!(
            cal.advance(far, SignedDuration::from_hours(2)),
            Err(SlaError::OutOfRange { .. })
        ));
        // The last covered year runs into the end of the tables.
        let late: Timestamp = "2199-12-31T12:00:00Z".parse().expect("ts");
        assert!(cal.advance(late, SignedDuration::from_hours(2)).is_err());
    }
}
