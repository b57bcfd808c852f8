//! Service calendars and reaction deadlines (MISSION §2–§3): the worked examples, daylight
//! saving, the public holidays of Hessen and Rheinland-Pfalz, custom calendars in the
//! configuration, the `sla` commands, and properties that hold for any receipt time.
use std::process::Command;

use jiff::civil::{Date, date};
use jiff::{SignedDuration, Timestamp, ToSpan};
use poststelle::sla::calendar::{CalendarSpec, Span};
use poststelle::sla::holidays::{State, holidays};
use poststelle::sla::{Calendar, Calendars, Class, Deadline, deadline};
use poststelle::time::berlin;
use proptest::prelude::*;

use crate::support::config::TempConfig;

fn builtin(name: &str) -> std::sync::Arc<Calendar> {
    Calendars::builtin()
        .expect("built-in calendars")
        .get(name)
        .cloned()
        .expect("known calendar")
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// RFC 3339 with the Berlin offset of that instant, as `sla deadline` prints it.
fn local(t: Timestamp) -> String {
    let tz = berlin().expect("tz");
    t.display_with_offset(tz.to_offset(t)).to_string()
}

fn due(cal: &str, class: Class, received: &str) -> String {
    local(deadline(&builtin(cal), class, ts(received)).expect("deadline"))
}

/// A calendar open around the clock every day: its service time is plain elapsed time.
fn always_open() -> Calendar {
    let day = vec![Span {
        start: 0,
        end: 1440,
    }];
    let spec = CalendarSpec {
        name: "always".into(),
        weekly: std::array::from_fn(|_| day.clone()),
        holidays: None,
        closed: vec![],
        open: vec![],
        maintenance_is_closed: false,
    };
    Calendar::new(spec, berlin().expect("tz")).expect("calendar")
}

#[test]
fn every_worked_example_of_mission_section_3() {
    let cases = [
        (
            "hessen",
            1,
            "2026-11-25T10:00:00+01:00",
            "2026-11-25T12:00:00+01:00",
        ),
        (
            "hessen",
            1,
            "2026-11-26T17:30:00+01:00",
            "2026-11-27T08:30:00+01:00",
        ),
        (
            "hessen",
            1,
            "2026-11-26T16:00:00+01:00",
            "2026-11-26T18:00:00+01:00",
        ),
        (
            "hessen",
            3,
            "2026-12-22T16:00:00+01:00",
            "2026-12-28T10:00:00+01:00",
        ),
        (
            "rlp",
            1,
            "2026-02-16T08:00:00+01:00",
            "2026-02-17T09:30:00+01:00",
        ),
        (
            "hessen",
            4,
            "2026-11-23T10:00:00+01:00",
            "2026-11-25T18:00:00+01:00",
        ),
    ];
    for (cal, class, received, expected) in cases {
        let class = Class::from_severity(class).expect("class");
        assert_eq!(
            due(cal, class, received),
            expected,
            "{cal} {class} {received}"
        );
    }
}

#[test]
fn a_budget_used_up_exactly_at_closing_gives_the_closing_instant() {
    // Friday closes at 15:00 in Hessen: 2 h from 13:00 end there, not on Monday 07:00.
    assert_eq!(
        due("hessen", Class::Verhindernd, "2026-11-27T13:00:00+01:00"),
        "2026-11-27T15:00:00+01:00"
    );
    // 8 h from Monday 10:00 in RLP use 7 h until 17:00, then one more on Tuesday.
    assert_eq!(
        due("rlp", Class::Behindernd, "2026-11-23T10:00:00+01:00"),
        "2026-11-24T08:30:00+01:00"
    );
    // 16 h in RLP: from Tuesday 07:30, 9.5 h on Tuesday and 6.5 h on Wednesday; from 10:30,
    // 6.5 h and then all 9.5 h of Wednesday, up to its closing instant.
    assert_eq!(
        due("rlp", Class::Leicht, "2026-11-24T07:30:00+01:00"),
        "2026-11-25T14:00:00+01:00"
    );
    assert_eq!(
        due("rlp", Class::Leicht, "2026-11-24T10:30:00+01:00"),
        "2026-11-25T17:00:00+01:00"
    );
    // One second later the budget spills into the next morning.
    assert_eq!(
        due("rlp", Class::Leicht, "2026-11-24T10:30:01+01:00"),
        "2026-11-26T07:30:01+01:00"
    );
}

#[test]
fn a_report_on_a_closed_day_starts_the_clock_at_the_next_opening() {
    // Saturday: Monday 07:00 + 2 h.
    assert_eq!(
        due("hessen", Class::Verhindernd, "2026-11-28T11:00:00+01:00"),
        "2026-11-30T09:00:00+01:00"
    );
    // Karfreitag 2026 (3 April) and Ostermontag (6 April) are closed: Tuesday 07:00 + 2 h,
    // now in summer time.
    assert_eq!(
        due("hessen", Class::Verhindernd, "2026-04-03T09:00:00+02:00"),
        "2026-04-07T09:00:00+02:00"
    );
    // Rosenmontag is closed in RLP but open in Hessen.
    assert_eq!(
        due("hessen", Class::Verhindernd, "2026-02-16T08:00:00+01:00"),
        "2026-02-16T10:00:00+01:00"
    );
    // Received at night before a working day: the clock starts at the opening.
    assert_eq!(
        due("rlp", Class::Verhindernd, "2026-11-24T03:12:00+01:00"),
        "2026-11-24T09:30:00+01:00"
    );
}

#[test]
fn class_4_counts_service_days_and_skips_holidays() {
    // Received Wednesday 23 Dec 2026 in Hessen: 24 (closed), 25/26 (holidays), 27 Sun,
    // 28 Mon = 1st, 29 Tue = 2nd.
    assert_eq!(
        due("hessen", Class::Sonstige, "2026-12-23T09:00:00+01:00"),
        "2026-12-29T18:00:00+01:00"
    );
    // Received on a Friday evening: Mon 1st, Tue 2nd.
    assert_eq!(
        due("hessen", Class::Sonstige, "2026-11-27T22:00:00+01:00"),
        "2026-12-01T18:00:00+01:00"
    );
    // Received Thursday before Easter 2027 in RLP (Karfreitag 26 Mar, Ostermontag 29 Mar):
    // Tue 30 Mar 1st, Wed 31 Mar 2nd.
    assert_eq!(
        due("rlp", Class::Sonstige, "2027-03-25T12:00:00+01:00"),
        "2027-03-31T17:00:00+02:00"
    );
    // Received on Sunday: the day of receipt is Sunday, Mon 1st, Tue 2nd — the 2nd day closes
    // at 18:00 in Hessen (Mon–Thu hours).
    assert_eq!(
        due("hessen", Class::Sonstige, "2026-11-29T12:00:00+01:00"),
        "2026-12-01T18:00:00+01:00"
    );
    // The 2nd service day is a Friday: its earlier close counts.
    assert_eq!(
        due("hessen", Class::Sonstige, "2026-11-25T16:00:00+01:00"),
        "2026-11-27T15:00:00+01:00"
    );
    // Across the new year: 30 Dec 2026 (Wed); 31 Dec closed, 1 Jan holiday, weekend, Mon 4 Jan
    // 1st, Tue 5 Jan 2nd.
    assert_eq!(
        due("rlp", Class::Sonstige, "2026-12-30T08:00:00+01:00"),
        "2027-01-05T17:00:00+01:00"
    );
}

/// The last Sunday of a month: the day Europe/Berlin switches its clocks.
fn last_sunday(year: i16, month: i8) -> Date {
    let last = date(year, month, 1).last_of_month();
    last.checked_sub(i64::from(last.weekday().to_sunday_zero_offset()).days())
        .expect("date")
}

#[test]
fn days_around_each_daylight_saving_switch_have_their_real_length() {
    let cal = always_open();
    let tz = berlin().expect("tz");
    for year in 2026..=2030 {
        for (month, switch_hours) in [(3, 23), (10, 25)] {
            let switch = last_sunday(year, month);
            for (day, hours) in [
                (switch.yesterday().expect("date"), 24),
                (switch, switch_hours),
                (switch.tomorrow().expect("date"), 24),
            ] {
                let start = day.to_zoned(tz.clone()).expect("zoned").timestamp();
                let end = day
                    .tomorrow()
                    .expect("date")
                    .to_zoned(tz.clone())
                    .expect("zoned")
                    .timestamp();
                assert_eq!(
                    cal.service_time(start, end).expect("service time"),
                    SignedDuration::from_hours(hours),
                    "{day}"
                );
            }
        }
    }
    // Two service hours from 01:30 on the spring switch end at 04:30 summer time (02:00-03:00
    // never happens); from 01:30 on the autumn switch at 02:30 winter time (02:00-03:00 twice).
    let two_hours = |t: &str| local(deadline(&cal, Class::Verhindernd, ts(t)).expect("deadline"));
    assert_eq!(
        two_hours("2026-03-29T01:30:00+01:00"),
        "2026-03-29T04:30:00+02:00"
    );
    assert_eq!(
        two_hours("2026-10-25T01:30:00+02:00"),
        "2026-10-25T02:30:00+01:00"
    );
}

#[test]
fn hessen_deadlines_across_the_switch_weekends() {
    let mut checked = 0;
    for year in 2026..=2030 {
        let tz = berlin().expect("tz");
        for month in [3, 10] {
            let switch = last_sunday(year, month);
            let friday = switch.checked_sub(2.days()).expect("date");
            let monday = switch.tomorrow().expect("date");
            // Skip weekends touching a holiday (Easter can fall on the switch weekend).
            let he = builtin("hessen");
            if he.intervals_on(friday).expect("day").len() != 1
                || he.intervals_on(monday).expect("day").is_empty()
            {
                continue;
            }
            checked += 1;
            let received = friday
                .at(14, 0, 0, 0)
                .to_zoned(tz.clone())
                .expect("zoned")
                .timestamp();
            // 1 h on Friday until 15:00, 1 h on Monday from 07:00 in the new offset.
            let expected = monday
                .at(8, 0, 0, 0)
                .to_zoned(tz.clone())
                .expect("zoned")
                .timestamp();
            assert_eq!(
                deadline(&he, Class::Verhindernd, received).expect("deadline"),
                expected,
                "{year}-{month}"
            );
            assert_eq!(
                he.service_time(received, expected).expect("service time"),
                SignedDuration::from_hours(2)
            );
        }
    }
    // Only 2027's spring switch falls on Easter.
    assert_eq!(checked, 9);
}

/// Public holidays 2026–2030 as published, not computed.
///
/// Hessen: <https://die-feiertage-in-deutschland.de/feiertage-in-hessen?jahr=2026> (to
/// `jahr=2030`), the days of the Hessisches Feiertagsgesetz §1 (Neujahr, Karfreitag,
/// Ostermontag, Tag der Arbeit, Christi Himmelfahrt, Pfingstmontag, Fronleichnam, Tag der
/// Deutschen Einheit, both Christmas days). Rheinland-Pfalz:
/// <https://die-feiertage-in-deutschland.de/feiertage-in-rheinland-pfalz?jahr=2026> (to
/// `jahr=2030`), Landesfeiertagsgesetz §2: the same plus Allerheiligen. Rosenmontag (no
/// statutory holiday, but closed on the `rlp` calendar) from the same site.
const HESSEN: [(i16, [(i8, i8); 10]); 5] = [
    (
        2026,
        [
            (1, 1),
            (4, 3),
            (4, 6),
            (5, 1),
            (5, 14),
            (5, 25),
            (6, 4),
            (10, 3),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2027,
        [
            (1, 1),
            (3, 26),
            (3, 29),
            (5, 1),
            (5, 6),
            (5, 17),
            (5, 27),
            (10, 3),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2028,
        [
            (1, 1),
            (4, 14),
            (4, 17),
            (5, 1),
            (5, 25),
            (6, 5),
            (6, 15),
            (10, 3),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2029,
        [
            (1, 1),
            (3, 30),
            (4, 2),
            (5, 1),
            (5, 10),
            (5, 21),
            (5, 31),
            (10, 3),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2030,
        [
            (1, 1),
            (4, 19),
            (4, 22),
            (5, 1),
            (5, 30),
            (6, 10),
            (6, 20),
            (10, 3),
            (12, 25),
            (12, 26),
        ],
    ),
];

const ROSENMONTAG: [(i16, i8, i8); 5] = [
    (2026, 2, 16),
    (2027, 2, 8),
    (2028, 2, 28),
    (2029, 2, 12),
    (2030, 3, 4),
];

#[test]
fn every_holiday_of_hessen_and_rlp_2026_to_2030_matches_the_published_table() {
    for (year, days) in HESSEN {
        let expected: Vec<Date> = days.iter().map(|&(m, d)| date(year, m, d)).collect();
        let he: Vec<Date> = holidays(State::HE, year).iter().map(|h| h.date).collect();
        assert_eq!(he, expected, "Hessen {year}");

        let mut rp_expected = expected.clone();
        rp_expected.push(date(year, 11, 1));
        rp_expected.sort();
        let rp: Vec<Date> = holidays(State::RP, year).iter().map(|h| h.date).collect();
        assert_eq!(rp, rp_expected, "Rheinland-Pfalz {year}");

        // The calendars close on exactly these days plus their extra closed days.
        for (cal, mut closed) in [("hessen", expected), ("rlp", rp_expected)] {
            closed.extend([date(year, 12, 24), date(year, 12, 31)]);
            if cal == "rlp" {
                let (_, m, d) = ROSENMONTAG
                    .iter()
                    .find(|r| r.0 == year)
                    .copied()
                    .expect("year");
                closed.push(date(year, m, d));
            }
            closed.sort();
            let listed: Vec<Date> = builtin(cal)
                .closed_days(year)
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            assert_eq!(listed, closed, "{cal} {year}");
            for day in &closed {
                assert!(
                    builtin(cal).intervals_on(*day).expect("day").is_empty(),
                    "{cal} open on {day}"
                );
            }
        }
    }
}

#[test]
fn class_names_and_numbers_parse() {
    for (text, class) in [
        ("1", Class::Verhindernd),
        ("verhindernd", Class::Verhindernd),
        ("Betriebsbehindernd", Class::Behindernd),
        ("leicht", Class::Leicht),
        ("4", Class::Sonstige),
        ("sonstige", Class::Sonstige),
    ] {
        assert_eq!(text.parse::<Class>(), Ok(class), "{text}");
    }
    assert!("5".parse::<Class>().is_err());
    assert!("dringend".parse::<Class>().is_err());
}

#[test]
fn the_warning_comes_at_three_quarters_of_the_budget() {
    let he = builtin("hessen");
    let d = Deadline::compute(&he, Class::Behindernd, ts("2026-11-26T17:30:00+01:00"), 75)
        .expect("deadline");
    assert_eq!(local(d.clock_start), "2026-11-26T17:30:00+01:00");
    // 6 of 8 h: 30 min on Thursday, then Friday 07:00 + 5.5 h.
    assert_eq!(local(d.warn_at), "2026-11-27T12:30:00+01:00");
    // 8 h: the remaining 7.5 h of Friday's 8 end at 14:30.
    assert_eq!(local(d.due), "2026-11-27T14:30:00+01:00");
    assert_eq!(d.budget, SignedDuration::from_hours(8));

    // Class 4: the budget is the service time up to the close of the 2nd day.
    let d = Deadline::compute(&he, Class::Sonstige, ts("2026-11-23T10:00:00+01:00"), 75)
        .expect("deadline");
    assert_eq!(d.budget, SignedDuration::from_hours(8 + 11 + 11));
    assert_eq!(local(d.warn_at), "2026-11-25T10:30:00+01:00");
}

fn run(args: &[&str], config: Option<&TempConfig>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poststelle"));
    cmd.env_remove("POSTSTELLE_CONFIG");
    if let Some(c) = config {
        cmd.arg("--config").arg(c.path());
    }
    let out = cmd.args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sla_deadline_prints_one_rfc3339_timestamp_with_the_berlin_offset() {
    let (code, out, err) = run(
        &[
            "sla",
            "deadline",
            "--calendar",
            "rlp",
            "--class",
            "verhindernd",
            "--received",
            "2026-02-16T08:00:00+01:00",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "2026-02-17T09:30:00+01:00\n");
    // A UTC receipt time in summer gives a +02:00 deadline.
    let (code, out, err) = run(
        &[
            "sla",
            "deadline",
            "--calendar",
            "hessen",
            "--class",
            "2",
            "--received",
            "2026-07-01T06:00:00Z",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "2026-07-01T16:00:00+02:00\n");
    let (code, _, err) = run(
        &[
            "sla",
            "deadline",
            "--calendar",
            "bayern",
            "--class",
            "1",
            "--received",
            "2026-07-01T06:00:00Z",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("unknown calendar \"bayern\""), "{err}");
    assert!(err.contains("hessen, rlp"), "{err}");
}

const CUSTOM: &str = r#"
[sla]
calendar = "kdz"

[calendars.kdz]
hours = { mon-thu = "07:30-12:00, 13:00-17:00", fri = "07:30-13:00" }
holidays = "BY"
closed = ["rosenmontag", "12-24", "2026-11-20"]
open = ["2026-12-24 09:00-11:00"]
"#;

#[test]
fn configured_calendars_reach_the_commands() {
    let t = TempConfig::new(&(TempConfig::shipped_text() + CUSTOM), &[]);
    let cfg = t.load();
    assert_eq!(cfg.settings.sla.default_calendar, "kdz");
    // Queues that name no calendar run on the default.
    assert!(cfg.settings.queues.iter().all(|q| q.calendar == "kdz"));

    // Thursday 11:00: 1 h until the lunch break, 1 h after it.
    let (code, out, err) = run(
        &[
            "sla",
            "deadline",
            "--calendar",
            "kdz",
            "--class",
            "1",
            "--received",
            "2026-11-26T11:00:00+01:00",
        ],
        Some(&t),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "2026-11-26T14:00:00+01:00\n");

    // Friday 20 Nov is an extra closed day: Thursday 16:00 + 1 h, then Monday 07:30 + 1 h.
    let (_, out, _) = run(
        &[
            "sla",
            "deadline",
            "--calendar",
            "kdz",
            "--class",
            "1",
            "--received",
            "2026-11-19T16:00:00+01:00",
        ],
        Some(&t),
    );
    assert_eq!(out, "2026-11-23T08:30:00+01:00\n");

    let (code, out, err) = run(&["sla", "calendar", "kdz", "--year", "2026"], Some(&t));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Mon  07:30-12:00, 13:00-17:00"), "{out}");
    assert!(out.contains("Fri  07:30-13:00"), "{out}");
    assert!(out.contains("Sat  closed"), "{out}");
    assert!(
        out.contains("clock changes in 2026: 2026-03-29 (+01 → +02), 2026-10-25 (+02 → +01)"),
        "{out}"
    );
    // Bavarian holidays (Heilige Drei Könige), the extra closed dates, not the opened 24 Dec.
    assert!(out.contains("2026-01-06 Tue  Heilige Drei Könige"), "{out}");
    assert!(
        out.contains("2026-02-16 Mon  closed (rosenmontag)"),
        "{out}"
    );
    assert!(out.contains("2026-11-20 Fri  closed (2026-11-20)"), "{out}");
    assert!(!out.contains("2026-12-24 Thu  closed"), "{out}");
    assert!(out.contains("2026-12-24 Thu  09:00-11:00"), "{out}");
}

#[test]
fn calendar_mistakes_name_file_line_and_fix() {
    let text = TempConfig::shipped_text()
        + r#"
[sla]
warn_at_percent = 100

[calendars.kaputt]
hours = { mon-fri = "08:00-12:00, 11:00-16:00", sat = "9-12", som = "08:00-10:00" }
holidays = "XY"
closed = ["2026-13-01"]

[calendars.hessen]
hours = { mon = "08:00-09:00" }
"#;
    let t = TempConfig::new(
        &text.replacen(
            "[[queue]]\nname = \"support\"",
            "[[queue]]\nname = \"support\"\ncalendar = \"bayern\"",
            1,
        ),
        &[],
    );
    let (code, out, _) = run(&["check"], Some(&t));
    assert_eq!(code, 1, "{out}");
    let written = std::fs::read_to_string(t.path()).expect("config");
    let line_of = |needle: &str| {
        written
            .lines()
            .position(|l| l.contains(needle))
            .expect("line")
            + 1
    };
    for (needle, message) in [
        ("warn_at_percent = 100", "sla.warn_at_percent is 100"),
        (
            "hours = { mon-fri",
            "the intervals 08:00-12:00 and 11:00-16:00 overlap",
        ),
        ("hours = { mon-fri", "\"9\" is not a time like 07:30"),
        ("hours = { mon-fri", "\"som\", which is no day"),
        ("holidays = \"XY\"", "\"XY\" is no German state code"),
        ("2026-13-01", "\"2026-13-01\" is neither a date"),
        (
            "[calendars.hessen]",
            "would replace the built-in calendar \"hessen\"",
        ),
        (
            "calendar = \"bayern\"",
            "queue \"support\" names the unknown calendar \"bayern\"",
        ),
    ] {
        let line = line_of(needle);
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("poststelle.toml:{line}: ")) && l.contains(message)),
            "{message} at line {line}:\n{out}"
        );
    }
    assert!(
        out.contains("fix: use one of: hessen, rlp, or define it in a [calendars.bayern] table"),
        "{out}"
    );
}

/// A configured calendar with a lunch break, Saturday hours, Bavarian holidays and extra
/// closed and open days.
static LUNCH_BREAK: std::sync::LazyLock<std::sync::Arc<Calendar>> =
    std::sync::LazyLock::new(|| {
        let t = TempConfig::new(
            &(TempConfig::shipped_text()
                + r#"
[calendars.mittag]
hours = { mon-fri = "07:30-12:00, 12:45-16:15", sat = "09:00-12:00" }
holidays = "BY"
closed = ["rosenmontag", "12-24", "12-31", "2027-06-04"]
open = ["2026-12-24 09:00-11:00", "2028-01-06"]
"#),
            &[],
        );
        t.load()
            .settings
            .sla
            .calendars
            .get("mittag")
            .cloned()
            .expect("configured")
    });

/// Any instant from 2026 to 2031.
fn any_instant() -> impl Strategy<Value = Timestamp> {
    (1_767_225_600i64..1_924_992_000).prop_map(|s| Timestamp::from_second(s).expect("in range"))
}

fn any_class() -> impl Strategy<Value = Class> {
    prop::sample::select(Class::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn deadlines_are_never_early_never_closed_and_use_exactly_the_budget(
        received in any_instant(),
        class in any_class(),
        which in 0..3usize,
    ) {
        let cal = [builtin("hessen"), builtin("rlp"), LUNCH_BREAK.clone()][which].clone();
        let due = deadline(&cal, class, received).expect("deadline");
        prop_assert!(due >= received);
        // The deadline lies in service time or is the closing instant of an interval:
        // just before it the service is open.
        let just_before = due - SignedDuration::from_nanos(1);
        prop_assert!(cal.is_open(just_before).expect("open?"), "{due} not in service time");
        let start = cal.advance(received, SignedDuration::ZERO).expect("clock start");
        prop_assert!(cal.is_open(start).expect("open?"));
        prop_assert!(start >= received && start <= due);
        let d = Deadline::compute(&cal, class, received, 75).expect("clock");
        prop_assert!(d.clock_start <= d.warn_at && d.warn_at <= d.due);
        prop_assert_eq!(d.due, due);
        match class.budget() {
            Some(budget) => prop_assert_eq!(
                cal.service_time(received, due).expect("service time"),
                budget
            ),
            None => {
                // Class 4: two service days after the day of receipt, ending at a close.
                prop_assert!(!cal.is_open(due).expect("open?"));
                let tz = berlin().expect("tz");
                let (r, d) = (received.to_zoned(tz.clone()).date(), due.to_zoned(tz).date());
                let mut days = 0;
                let mut day = r.tomorrow().expect("date");
                while day <= d {
                    if !cal.intervals_on(day).expect("day").is_empty() {
                        days += 1;
                    }
                    day = day.tomorrow().expect("date");
                }
                prop_assert_eq!(days, 2);
            }
        }
    }

    #[test]
    fn service_time_adds_up_over_a_split(
        a in any_instant(),
        hours in 0i64..400,
        split in 0i64..1000,
    ) {
        let cal = builtin("hessen");
        let b = a + SignedDuration::from_hours(hours);
        let m = a + SignedDuration::from_secs(hours * 3600 * split / 1000);
        let whole = cal.service_time(a, b).expect("service time");
        let parts = cal.service_time(a, m).expect("service time")
            + cal.service_time(m, b).expect("service time");
        prop_assert_eq!(whole, parts);
        prop_assert!(whole <= b.duration_since(a));
    }
}

mod report {
    use poststelle::sla::report::{Incident, ReactionRecord, Records, compute};

    use super::*;

    fn hours(h: f64) -> i64 {
        (h * 3600.0) as i64
    }

    #[test]
    fn outage_in_service_time_without_maintenance_against_the_target() {
        let cal = builtin("hessen");
        let records = Records {
            incidents: vec![
                // 10:00-14:00, and a second report of the same outage inside it: 4 h once.
                Incident {
                    received: ts("2026-11-25T10:00:00+01:00"),
                    restored: Some(ts("2026-11-25T14:00:00+01:00")),
                },
                Incident {
                    received: ts("2026-11-25T11:00:00+01:00"),
                    restored: Some(ts("2026-11-25T12:00:00+01:00")),
                },
                // On a Saturday: outside service time, no outage.
                Incident {
                    received: ts("2026-11-28T10:00:00+01:00"),
                    restored: Some(ts("2026-11-28T12:00:00+01:00")),
                },
                // Across the month's end: Mon 30 Nov 17:00 to Tue 1 Dec 08:00 = 1 h + 1 h.
                Incident {
                    received: ts("2026-11-30T17:00:00+01:00"),
                    restored: Some(ts("2026-12-01T08:00:00+01:00")),
                },
            ],
            // Announced maintenance 13:00-15:00: 1 h of the outage and 2 h of service time.
            maintenance: vec![(
                ts("2026-11-25T13:00:00+01:00"),
                ts("2026-11-25T15:00:00+01:00"),
            )],
            reactions: vec![
                ReactionRecord {
                    severity: 1,
                    received: ts("2026-11-25T10:00:00+01:00"),
                    due: ts("2026-11-25T12:00:00+01:00"),
                    met: Some(true),
                },
                ReactionRecord {
                    severity: 1,
                    received: ts("2026-11-30T17:00:00+01:00"),
                    due: ts("2026-12-01T08:00:00+01:00"),
                    met: Some(false),
                },
                // No reaction and the deadline passed: breached; still ahead: open.
                ReactionRecord {
                    severity: 4,
                    received: ts("2026-11-02T10:00:00+01:00"),
                    due: ts("2026-11-04T18:00:00+01:00"),
                    met: None,
                },
                ReactionRecord {
                    severity: 3,
                    received: ts("2026-12-01T10:00:00+01:00"),
                    due: ts("2026-12-02T15:00:00+01:00"),
                    met: None,
                },
            ],
        };
        let now = ts("2026-12-01T12:00:00+01:00");
        let r = compute(
            &cal,
            date(2026, 11, 1),
            date(2026, 12, 31),
            97.5,
            now,
            &records,
        )
        .expect("report");
        assert_eq!(r.months.len(), 2);
        let nov = &r.months[0];
        assert_eq!(nov.period, "2026-11");
        // 17 days Mon-Thu at 11 h, 4 Fridays at 8 h; no holiday in November in Hessen.
        assert_eq!(nov.service_seconds, hours(219.0));
        assert_eq!(nov.maintenance_seconds, hours(2.0));
        assert_eq!(nov.outage_seconds, hours(4.0));
        assert_eq!(nov.availability_percent, 98.157);
        assert!(nov.target_met);
        assert_eq!(nov.reactions.expect("classes")[0].met, 1);
        assert_eq!(nov.reactions.expect("classes")[0].breached, 1);
        assert_eq!(nov.reactions.expect("classes")[3].breached, 1);
        let dec = &r.months[1];
        assert_eq!(dec.period, "2026-12");
        assert_eq!(dec.outage_seconds, hours(1.0));
        assert_eq!(dec.reactions.expect("classes")[2].open, 1);
        assert_eq!(r.total.outage_seconds, hours(5.0));
        assert_eq!(
            r.total.service_seconds,
            nov.service_seconds + dec.service_seconds
        );

        // A stricter target is missed.
        let strict = compute(
            &cal,
            date(2026, 11, 1),
            date(2026, 11, 30),
            99.0,
            now,
            &records,
        )
        .expect("report");
        assert!(!strict.total.target_met);
        assert_eq!(strict.months.len(), 1);
    }
}

#[test]
fn escalate_to_must_name_another_queue() {
    let text = TempConfig::shipped_text()
        .replacen(
            "escalation = \"servicedesk-leitung@kommunal-it.example\"",
            "escalate_to = \"leitung\"",
            1,
        )
        .replacen(
            "escalation = \"rufbereitschaft@kommunal-it.example\"",
            "escalation = \"rufbereitschaft@kommunal-it.example\"\nescalate_to = \"betrieb\"",
            1,
        );
    let t = TempConfig::new(&text, &[]);
    let (code, out, _) = run(&["check"], Some(&t));
    assert_eq!(code, 1, "{out}");
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).expect("line") + 1;
    assert!(
        out.contains(&format!(
            "poststelle.toml:{}: queue \"support\" escalates to the unknown queue \"leitung\"",
            line("escalate_to = \"leitung\"")
        )),
        "{out}"
    );
    let betrieb = line("escalate_to = \"betrieb\"");
    assert!(
        out.contains(&format!(
            "poststelle.toml:{betrieb}: queue \"betrieb\" escalates to itself"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "poststelle.toml:{betrieb}: queue \"betrieb\" has both escalation and escalate_to"
        )),
        "{out}"
    );
}
