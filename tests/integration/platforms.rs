//! `[[platform]]` in the configuration (issue 16, item 1): what a valid one becomes, and every
//! problem of one reported by `poststelle check` with file, line and fix.
use jiff::civil::{Weekday, date};
use poststelle::maintenance::{Recurrence, default_windows};

use crate::support::bin::poststelle;
use crate::support::config::TempConfig;

fn with_platforms(tables: &str) -> TempConfig {
    TempConfig::new(&format!("{}\n{tables}", TempConfig::shipped_text()), &[])
}

/// The number of the line of `text` that starts with `prefix`, counted from 1.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}"))
        + 1
}

#[test]
fn a_platform_names_calendar_lists_and_windows() {
    let t = with_platforms(
        r#"
[calendars.kernzeit]
hours = { mon-fri = "06:30-18:30" }
holidays = "HE"

[[platform]]
name = "ekom21-portal"
description = "Bürgerportal"
calendar = "kernzeit"
lists = ["Portal-Nutzer", "kommunen"]
maintenance_windows = ["Tue 20:00-22:00", "first sun 06:00-10:00"]
availability_target = 97.5

[[platform]]
name = "zidkor"
"#,
    );
    let cfg = t.load();
    let portal = cfg.settings.platform("ekom21-portal").expect("portal");
    assert_eq!(portal.description, "Bürgerportal");
    assert_eq!(portal.calendar, "kernzeit");
    assert_eq!(portal.lists, ["portal-nutzer", "kommunen"]);
    assert_eq!(portal.maintenance_windows.len(), 2);
    assert_eq!(
        portal.maintenance_windows[1].recurrence(),
        Recurrence::Nth(1)
    );
    assert_eq!(portal.maintenance_windows[1].weekday(), Weekday::Sunday);
    assert!(portal.maintenance_windows[1].falls_on(date(2026, 3, 1)));

    // Without windows and calendar: the regular windows of MISSION §4 and sla.calendar.
    let zidkor = cfg.settings.platform("zidkor").expect("zidkor");
    assert_eq!(zidkor.maintenance_windows, default_windows());
    assert_eq!(
        zidkor
            .maintenance_windows
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["Wed 19:00-23:00", "last Sat 14:00-19:00"]
    );
    assert_eq!(zidkor.calendar, "hessen");
    assert_eq!(zidkor.availability_target, 97.5);
    assert!(zidkor.lists.is_empty());

    let out = poststelle()
        .arg("--config")
        .arg(t.path())
        .arg("check")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.trim_end().ends_with("3 calendar(s), 2 platform(s)"),
        "{text}"
    );
}

#[test]
fn every_problem_of_a_platform_is_reported_with_its_line_and_fix() {
    let tables = r#"
[[platform]]
name = "portal"
calendar = "kdz"
lists = ["gute-liste", "böse liste", "gute-liste"]
maintenance_windows = ["Mie 19:00-23:00", "last Sat 14:00-19:00", "fifth Sat 10:00-12:00", "Sat 19:00"]
availability_target = 120.0

[[platform]]
name = "portal"
windows = ["Wed 19:00-23:00"]

[[platform]]
name = "Groß Portal"
"#;
    let t = with_platforms(tables);
    let text = std::fs::read_to_string(t.path()).expect("config");
    let out = poststelle()
        .arg("--config")
        .arg(t.path())
        .arg("check")
        .output()
        .expect("runs");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let at = |prefix: &str| format!("poststelle.toml:{}: ", line_of(&text, prefix));
    for (prefix, message, fix) in [
        (
            "calendar = \"kdz\"",
            "platform \"portal\" names the unknown calendar \"kdz\"",
            "define it in a [calendars.kdz] table",
        ),
        (
            "lists = ",
            "platform \"portal\": \"böse liste\" is no list name",
            "section 'Platforms and announcements'",
        ),
        (
            "lists = ",
            "platform \"portal\" names the list \"gute-liste\" twice",
            "name every list once",
        ),
        (
            "maintenance_windows",
            "platform \"portal\": maintenance window \"Mie 19:00-23:00\": ",
            "write a window like \"Wed 19:00-23:00\"",
        ),
        (
            "maintenance_windows",
            "platform \"portal\": maintenance window \"fifth Sat 10:00-12:00\": ",
            "last Sat 14:00-19:00",
        ),
        (
            "maintenance_windows",
            "platform \"portal\": maintenance window \"Sat 19:00\": ",
            "section 'Platforms and announcements'",
        ),
        (
            "availability_target",
            "platform \"portal\": availability_target = 120 is no share of the service time",
            "at most 100",
        ),
        (
            "windows = ",
            "unknown field `windows`, expected one of `name`, `description`, `calendar`, \
             `lists`, `maintenance_windows`, `availability_target`",
            "section 'Platforms and announcements'",
        ),
        (
            "name = \"Groß Portal\"",
            "platform name \"Groß Portal\" is not usable",
            "lower-case letters a-z",
        ),
    ] {
        let wanted = format!("{}{message}", at(prefix));
        let found = report
            .lines()
            .position(|l| l.contains(&wanted))
            .unwrap_or_else(|| panic!("missing {wanted:?} in:\n{report}"));
        let next = report.lines().nth(found + 1).unwrap_or("");
        assert!(
            next.contains("fix:") && next.contains(fix),
            "{wanted}: fix {next:?}"
        );
    }
    let second = text
        .match_indices("name = \"portal\"")
        .nth(1)
        .map(|(i, _)| i);
    let second_line = second.map(|i| text[..i].matches('\n').count() + 1);
    assert!(
        report.contains(&format!(
            "poststelle.toml:{}: platform \"portal\" is defined twice",
            second_line.expect("second")
        )),
        "{report}"
    );
}
