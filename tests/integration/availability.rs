//! Availability the way the contracts define it (issue 16, item 5): per platform, over the
//! platform's own calendar and target, its announced maintenance excluded and its outages
//! counted; on SQLite and PostgreSQL, and through the command line.
use jiff::Timestamp;
use jiff::civil::date;
use poststelle::config::Config;
use poststelle::jobs::report;
use poststelle::store::{self, Store};

use crate::support::bin::poststelle;
use crate::support::config::{DEFAULT, TempConfig};
use crate::support::db::{TestDb, both};
use crate::support::tickets::{file, new_number, set_severity};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// The ekom21 core time of MISSION §4 (Mon–Fri 06:30–18:30, Hessen's holidays, 97.5 %) as the
/// platform `portal`'s availability calendar, and a second platform.
const PLATFORMS: &str = r#"
[calendars.kernzeit]
hours = { mon-fri = "06:30-18:30" }
holidays = "HE"

[[platform]]
name = "portal"
calendar = "kernzeit"
availability_target = 97.5

[[platform]]
name = "zidkor"
calendar = "rlp"
availability_target = 98.0
"#;

fn config() -> TempConfig {
    TempConfig::new(&format!("{}\n{PLATFORMS}", TempConfig::shipped_text()), &[])
}

async fn window(store: &Store, platform: Option<&str>, start: &str, end: &str) {
    sqlx::query(
        "INSERT INTO sla_maintenance (platform, starts_at, ends_at, announced_at, description) \
         VALUES ($1, $2, $3, $4, 'Update')",
    )
    .bind(platform)
    .bind(ts(start).as_microsecond())
    .bind(ts(end).as_microsecond())
    .bind(ts("2026-11-01T09:00:00+01:00").as_microsecond())
    .execute(store.pool())
    .await
    .expect("maintenance");
}

async fn outage(store: &Store, platform: &str, start: &str, end: Option<&str>) {
    let mut conn = store.pool().acquire().await.expect("connection");
    store::sla::record_outage(
        &mut conn,
        platform,
        ts(start).as_microsecond(),
        end.map(|e| ts(e).as_microsecond()),
        "test",
        "Portal nicht erreichbar",
    )
    .await
    .expect("outage");
}

/// November 2026 for `portal`: 21 weekdays of 12 h = 252 h of core time. Announced: its own
/// window Wed 18 Nov 12:00–14:00 (2 h) and one for every platform Fri 20 Nov 07:00–08:00 (1 h);
/// another platform's window does not count. Outages: 10:00–13:00 on the 18th (of which 1 h
/// lies in the announced window) and 08:00–08:30 on the 25th, so 2.5 h of 249 h.
async fn november(store: &Store) {
    window(
        store,
        Some("portal"),
        "2026-11-18T12:00:00+01:00",
        "2026-11-18T14:00:00+01:00",
    )
    .await;
    window(
        store,
        None,
        "2026-11-20T07:00:00+01:00",
        "2026-11-20T08:00:00+01:00",
    )
    .await;
    window(
        store,
        Some("zidkor"),
        "2026-11-19T09:00:00+01:00",
        "2026-11-19T11:00:00+01:00",
    )
    .await;
    outage(
        store,
        "portal",
        "2026-11-18T10:00:00+01:00",
        Some("2026-11-18T13:00:00+01:00"),
    )
    .await;
    outage(
        store,
        "portal",
        "2026-11-25T08:00:00+01:00",
        Some("2026-11-25T08:30:00+01:00"),
    )
    .await;
    // Another platform's outage, and a class-1 ticket: neither is an outage of `portal`.
    outage(
        store,
        "zidkor",
        "2026-11-23T10:00:00+01:00",
        Some("2026-11-23T16:00:00+01:00"),
    )
    .await;
    let mut ing = poststelle::ticket::ingest::Ingestor::new(store, &DEFAULT);
    ing.clock = Some(ts("2026-11-24T10:00:00+01:00"));
    let number = new_number(
        &file(
            &ing,
            "erika@example.org",
            "Portal komplett ausgefallen",
            "p1@example.org",
            "p1@example.org",
        )
        .await,
    );
    set_severity(store, &number, 1).await;
}

both!(a_platform_report_excludes_its_announced_window_and_counts_its_outages);
async fn a_platform_report_excludes_its_announced_window_and_counts_its_outages(db: &TestDb) {
    november(&db.store).await;
    let t = config();
    let cfg: Config = t.load();
    let portal = cfg.settings.platform("portal").expect("portal");
    let cal = cfg
        .settings
        .sla
        .calendars
        .get("kernzeit")
        .expect("kernzeit");
    let r = report::platform_report(
        &db.store,
        portal,
        cal,
        date(2026, 11, 1),
        date(2026, 11, 30),
        portal.availability_target,
        ts("2026-12-01T00:00:00+01:00"),
    )
    .await
    .expect("report");
    assert_eq!(r.platform.as_deref(), Some("portal"));
    assert_eq!(r.calendar, "kernzeit");
    assert_eq!(r.total.service_seconds, 252 * 3600);
    assert_eq!(r.total.maintenance_seconds, 3 * 3600);
    assert_eq!(r.total.outage_seconds, 9000);
    // 1 − 2.5 / 249
    assert_eq!(r.total.availability_percent, 98.996);
    assert!(r.total.target_met);
    assert_eq!(r.total.reactions, None);

    // The same store on the calendar of the queues (hessen): every announced window, and
    // the class-1 ticket (not the platforms' outages) as its outage, as before.
    let hessen = DEFAULT
        .settings
        .sla
        .calendars
        .get("hessen")
        .expect("hessen");
    let by_calendar = report::report(
        &db.store,
        hessen,
        date(2026, 11, 1),
        date(2026, 11, 30),
        97.5,
        ts("2026-11-24T11:00:00+01:00"),
    )
    .await
    .expect("report");
    assert_eq!(by_calendar.platform, None);
    assert_eq!(by_calendar.total.outage_seconds, 3600);
    assert_eq!(by_calendar.total.maintenance_seconds, 5 * 3600);
}

both!(an_outage_that_lasts_counts_until_now);
async fn an_outage_that_lasts_counts_until_now(db: &TestDb) {
    outage(&db.store, "portal", "2026-11-30T16:00:00+01:00", None).await;
    let t = config();
    let cfg = t.load();
    let portal = cfg.settings.platform("portal").expect("portal");
    let cal = cfg
        .settings
        .sla
        .calendars
        .get("kernzeit")
        .expect("kernzeit");
    let r = report::platform_report(
        &db.store,
        portal,
        cal,
        date(2026, 11, 1),
        date(2026, 11, 30),
        97.5,
        ts("2026-11-30T17:00:00+01:00"),
    )
    .await
    .expect("report");
    assert_eq!(r.total.outage_seconds, 3600);
    let mut conn = db.store.pool().acquire().await.expect("connection");
    let id: i64 = sqlx::query_scalar("SELECT id FROM sla_outages")
        .fetch_one(&mut *conn)
        .await
        .expect("id");
    assert!(
        store::sla::restore_outage(
            &mut conn,
            id,
            ts("2026-11-30T16:30:00+01:00").as_microsecond()
        )
        .await
        .expect("restore")
    );
    drop(conn);
    let r = report::platform_report(
        &db.store,
        portal,
        cal,
        date(2026, 11, 1),
        date(2026, 11, 30),
        97.5,
        ts("2026-12-01T00:00:00+01:00"),
    )
    .await
    .expect("report");
    assert_eq!(r.total.outage_seconds, 1800);
}

fn run(t: &TempConfig, data: &std::path::Path, args: &[&str]) -> std::process::Output {
    poststelle()
        .arg("--config")
        .arg(t.path())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("runs")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn sla_report_platform_on_the_command_line() {
    let t = config();
    let data = tempfile::tempdir().expect("dir");
    let store = Store::open(&Store::default_url(data.path()))
        .await
        .expect("store");
    november(&store).await;
    store.close().await;
    let base = [
        "sla",
        "report",
        "--platform",
        "portal",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
    ];

    let text = stdout(&run(&t, data.path(), &base));
    let first = text.lines().next().expect("title");
    assert!(
        first.starts_with("Availability of platform portal on calendar kernzeit, 2026-11-01 – 2026-11-30 (target 97.5 %"),
        "{text}"
    );
    // No reaction columns: deadlines belong to the queues' calendars.
    assert!(!text.contains("C1"), "{text}");
    let total = text
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("total row");
    let cells: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(
        cells,
        ["total", "252.00", "3.00", "2.50", "98.996", "met"],
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(&run(
        &t,
        data.path(),
        &[&base[..], &["--json"]].concat(),
    )))
    .expect("JSON");
    assert_eq!(json["platform"], "portal");
    assert_eq!(json["calendar"], "kernzeit");
    assert_eq!(json["total"]["maintenance_seconds"], 3 * 3600);
    assert_eq!(json["total"]["outage_seconds"], 9000);
    assert_eq!(json["total"]["target_percent"], 97.5);
    assert!(json["total"].get("reactions").is_none(), "{json}");

    // The platform's own target unless --target says otherwise: 98.996 % misses 99.
    let strict = stdout(&run(
        &t,
        data.path(),
        &[&base[..], &["--target", "99", "--csv"]].concat(),
    ));
    let mut lines = strict.lines();
    assert_eq!(
        lines.next(),
        Some(
            "period,service_seconds,maintenance_seconds,outage_seconds,availability_percent,target_percent,target_met"
        )
    );
    assert_eq!(
        lines.next(),
        Some("2026-11,907200,10800,9000,98.996,99,false")
    );

    // The zidkor platform's target (98 %) and calendar (rlp: 07:30–17:00) by default.
    let z: serde_json::Value = serde_json::from_str(&stdout(&run(
        &t,
        data.path(),
        &[
            "sla",
            "report",
            "--platform",
            "zidkor",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--json",
        ],
    )))
    .expect("JSON");
    assert_eq!(z["calendar"], "rlp");
    assert_eq!(z["total"]["target_percent"], 98.0);
    // Its own window (2 h) and the one for all platforms (07:30–08:00 of it in rlp's hours).
    assert_eq!(z["total"]["maintenance_seconds"], 2 * 3600 + 1800);
    assert_eq!(z["total"]["outage_seconds"], 6 * 3600);
}

#[test]
fn an_unknown_platform_names_the_known_ones_and_creates_no_store() {
    let t = config();
    let data = tempfile::tempdir().expect("dir");
    let out = run(
        &t,
        data.path(),
        &[
            "sla",
            "report",
            "--platform",
            "nosuch",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown platform \"nosuch\"; use one of: portal, zidkor"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(data.path())
            .expect("dir")
            .next()
            .is_none()
    );

    // Without platforms in the configuration, it says how to add one.
    let out = poststelle()
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "sla",
            "report",
            "--platform",
            "nosuch",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("defines no platforms; add a [[platform]] table"),
        "{err}"
    );

    // One of --calendar and --platform, not both, not none.
    for args in [
        &[
            "sla",
            "report",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ][..],
        &[
            "sla",
            "report",
            "--calendar",
            "hessen",
            "--platform",
            "portal",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ][..],
    ] {
        let out = run(&t, data.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// Announced maintenance is no service time for RLP's reaction deadlines (MISSION §3).
mod rlp_deadlines {
    use jiff::Timestamp;
    use poststelle::sla::{Class, Deadline};

    use super::*;

    fn rlp() -> std::sync::Arc<poststelle::sla::Calendar> {
        DEFAULT
            .settings
            .sla
            .calendars
            .get("rlp")
            .cloned()
            .expect("rlp")
    }

    fn due(class: Class, received: &str, closed: &[(&str, &str)]) -> Deadline {
        let closed: Vec<(Timestamp, Timestamp)> =
            closed.iter().map(|(a, b)| (ts(a), ts(b))).collect();
        Deadline::compute_around(&rlp(), class, ts(received), 75, &closed).expect("deadline")
    }

    #[test]
    fn an_rlp_deadline_that_spans_an_announced_window_moves_by_the_windows_service_time() {
        // Class 1, Wed 10:00: due 12:00; a window 11:00–11:30 moves it to 12:30.
        let plain = due(Class::Verhindernd, "2026-11-25T10:00:00+01:00", &[]);
        assert_eq!(plain.due, ts("2026-11-25T12:00:00+01:00"));
        let moved = due(
            Class::Verhindernd,
            "2026-11-25T10:00:00+01:00",
            &[("2026-11-25T11:00:00+01:00", "2026-11-25T11:30:00+01:00")],
        );
        assert_eq!(moved.due, ts("2026-11-25T12:30:00+01:00"));
        assert_eq!(moved.budget, plain.budget);

        // Class 2 (8 h), Tue 15:00: due Wed 13:30. A window from Tue 16:00 to Wed 08:30 is
        // 16.5 h long but holds 2 h of service time (Tue 16–17, Wed 07:30–08:30): Wed 15:30.
        let received = "2026-11-24T15:00:00+01:00";
        assert_eq!(
            due(Class::Behindernd, received, &[]).due,
            ts("2026-11-25T13:30:00+01:00")
        );
        let night = ("2026-11-24T16:00:00+01:00", "2026-11-25T08:30:00+01:00");
        let d = due(Class::Behindernd, received, &[night]);
        assert_eq!(d.due, ts("2026-11-25T15:30:00+01:00"));
        // The warning at 75 % (6 h): Tue 15–16 and Wed 08:30–13:30.
        assert_eq!(d.warn_at, ts("2026-11-25T13:30:00+01:00"));

        // A window that the deadline (pushed by a first one) reaches moves it again: 12:00
        // → 12:30, and 12:15–12:45 inside that adds 30 min more.
        let chained = due(
            Class::Verhindernd,
            "2026-11-25T10:00:00+01:00",
            &[
                ("2026-11-25T11:00:00+01:00", "2026-11-25T11:30:00+01:00"),
                ("2026-11-25T12:15:00+01:00", "2026-11-25T12:45:00+01:00"),
            ],
        );
        assert_eq!(chained.due, ts("2026-11-25T13:00:00+01:00"));

        // A window after the deadline, or one that starts exactly at it, changes nothing.
        let after = due(
            Class::Verhindernd,
            "2026-11-25T10:00:00+01:00",
            &[("2026-11-25T12:00:00+01:00", "2026-11-25T13:00:00+01:00")],
        );
        assert_eq!(after.due, ts("2026-11-25T12:00:00+01:00"));

        // Received during a window: the clock starts at its end.
        let inside = due(
            Class::Verhindernd,
            "2026-11-25T10:00:00+01:00",
            &[("2026-11-25T09:00:00+01:00", "2026-11-25T10:30:00+01:00")],
        );
        assert_eq!(inside.clock_start, ts("2026-11-25T10:30:00+01:00"));
        assert_eq!(inside.due, ts("2026-11-25T12:30:00+01:00"));

        // Class 4 (close of the 2nd service day after receipt: Fri 17:00) moves by 1 h.
        let c4 = due(
            Class::Sonstige,
            "2026-11-25T10:00:00+01:00",
            &[("2026-11-26T09:00:00+01:00", "2026-11-26T10:00:00+01:00")],
        );
        assert_eq!(c4.due, ts("2026-11-30T08:30:00+01:00"));
    }

    /// The shipped configuration with the `support` queue on `calendar`.
    fn support_on(calendar: &str) -> Config {
        let queue = "[[queue]]\nname = \"support\"\n";
        let text = TempConfig::shipped_text()
            .replace(queue, &format!("{queue}calendar = \"{calendar}\"\n"));
        TempConfig::new(&text, &[]).load()
    }

    async fn due_of(store: &Store, number: &str) -> Timestamp {
        let due: i64 = sqlx::query_scalar(
            "SELECT s.due_at FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id \
             WHERE t.number = $1",
        )
        .bind(number)
        .fetch_one(store.pool())
        .await
        .expect("clock");
        Timestamp::from_microsecond(due).expect("instant")
    }

    both!(a_ticket_on_rlp_gets_its_deadline_around_announced_windows);
    async fn a_ticket_on_rlp_gets_its_deadline_around_announced_windows(db: &TestDb) {
        // The maintenance helper records zidkor's window with its platform.
        window(
            &db.store,
            Some("zidkor"),
            "2026-11-25T11:00:00+01:00",
            "2026-11-25T11:30:00+01:00",
        )
        .await;
        let received = ts("2026-11-25T10:00:00+01:00");
        for (calendar, id, plain, moved) in [
            (
                "rlp",
                "r1@example.org",
                // Class 4 (a question): close of service on the 2nd service day after
                // receipt, Fri 17:00; the 30 min window moves it to Mon 08:00.
                "2026-11-27T17:00:00+01:00",
                "2026-11-30T08:00:00+01:00",
            ),
            (
                "hessen",
                "h1@example.org",
                "2026-11-27T15:00:00+01:00",
                "2026-11-27T15:00:00+01:00",
            ),
        ] {
            let cfg = support_on(calendar);
            let mut ing = poststelle::ticket::ingest::Ingestor::new(&db.store, &cfg);
            ing.clock = Some(received);
            let number = new_number(&file(&ing, "erika@example.org", "Frage", id, id).await);
            let severity: i64 =
                sqlx::query_scalar("SELECT severity FROM tickets WHERE number = $1")
                    .bind(&number)
                    .fetch_one(db.store.pool())
                    .await
                    .expect("severity");
            assert_eq!(severity, 4, "{calendar}");
            if calendar == "rlp" {
                assert_eq!(
                    Deadline::compute(&rlp(), Class::Sonstige, received, 75)
                        .expect("deadline")
                        .due,
                    ts(plain)
                );
            }
            assert_eq!(due_of(&db.store, &number).await, ts(moved), "{calendar}");

            // Recomputed (class 1 from the original receipt): 12:00, moved to 12:30 on rlp.
            let change = poststelle::ticket::ops::Change {
                severity: Some(1),
                actor: "leitstelle",
                ..Default::default()
            };
            poststelle::ticket::ops::set_ticket(&db.store, &cfg, &number, change)
                .await
                .expect("set");
            let expect = if calendar == "rlp" {
                "2026-11-25T12:30:00+01:00"
            } else {
                "2026-11-25T12:00:00+01:00"
            };
            assert_eq!(due_of(&db.store, &number).await, ts(expect), "{calendar}");
        }
    }
    both!(a_window_announced_later_moves_the_running_rlp_clocks);
    async fn a_window_announced_later_moves_the_running_rlp_clocks(db: &TestDb) {
        let received = ts("2026-11-25T10:00:00+01:00");
        let mut numbers = Vec::new();
        for (calendar, id) in [("rlp", "r2@example.org"), ("hessen", "h2@example.org")] {
            let cfg = support_on(calendar);
            let mut ing = poststelle::ticket::ingest::Ingestor::new(&db.store, &cfg);
            ing.clock = Some(received);
            let number = new_number(&file(&ing, "erika@example.org", "Ausfall", id, id).await);
            let change = poststelle::ticket::ops::Change {
                severity: Some(1),
                actor: "leitstelle",
                ..Default::default()
            };
            poststelle::ticket::ops::set_ticket(&db.store, &cfg, &number, change)
                .await
                .expect("set");
            assert_eq!(
                due_of(&db.store, &number).await,
                ts("2026-11-25T12:00:00+01:00")
            );
            numbers.push(number);
        }
        // Emergency maintenance 11:00–11:30, announced at 10:15 while both clocks run.
        window(
            &db.store,
            Some("zidkor"),
            "2026-11-25T11:00:00+01:00",
            "2026-11-25T11:30:00+01:00",
        )
        .await;
        let cfg = support_on("rlp");
        let mut conn = db.store.pool().acquire().await.expect("connection");
        let moved = poststelle::ticket::clock::on_window_announced(
            &mut conn,
            &cfg.settings,
            ts("2026-11-25T11:00:00+01:00"),
        )
        .await
        .expect("moved");
        drop(conn);
        assert_eq!(moved, 1);
        assert_eq!(
            due_of(&db.store, &numbers[0]).await,
            ts("2026-11-25T12:30:00+01:00")
        );
        assert_eq!(
            due_of(&db.store, &numbers[1]).await,
            ts("2026-11-25T12:00:00+01:00")
        );
    }

    both!(a_maintenance_scheduled_on_an_rlp_platform_moves_the_running_clock);
    /// The whole path: `maintenance schedule` (here its library call, `announce::schedule`)
    /// records the window with its platform and, in the same transaction, moves the running
    /// clock of a ticket on the platform's `rlp` calendar; a cancellation moves it back.
    async fn a_maintenance_scheduled_on_an_rlp_platform_moves_the_running_clock(db: &TestDb) {
        let queue = "[[queue]]\nname = \"support\"\n";
        let text = TempConfig::shipped_text()
            .replace(queue, &format!("{queue}calendar = \"rlp\"\n"))
            + "\n[[platform]]\nname = \"zidkor\"\ncalendar = \"rlp\"\nlists = [\"betrieb\"]\n";
        let cfg = TempConfig::new(&text, &[]).load();
        poststelle::store::lists::create(&db.store, "betrieb", "", false, "test")
            .await
            .expect("list");
        let received = ts("2026-11-25T10:00:00+01:00");
        let mut ing = poststelle::ticket::ingest::Ingestor::new(&db.store, &cfg);
        ing.clock = Some(received);
        let number =
            new_number(&file(&ing, "erika@example.org", "Ausfall", "r9@example.org", "r9").await);
        let change = poststelle::ticket::ops::Change {
            severity: Some(1),
            actor: "leitstelle",
            ..Default::default()
        };
        poststelle::ticket::ops::set_ticket(&db.store, &cfg, &number, change)
            .await
            .expect("set");
        assert_eq!(
            due_of(&db.store, &number).await,
            ts("2026-11-25T12:00:00+01:00")
        );
        let plan = poststelle::announce::Plan {
            platform: "zidkor".into(),
            start: ts("2026-11-25T11:00:00+01:00"),
            end: ts("2026-11-25T11:30:00+01:00"),
            reason: "Notfall-Patch".into(),
            impact: "keine Anmeldung".into(),
            lists: Vec::new(),
            emergency: true,
        };
        let done =
            poststelle::announce::schedule(&db.store, &cfg, plan, ts("2026-11-25T10:15:00+01:00"))
                .await
                .expect("scheduled as an emergency");
        assert_eq!(
            due_of(&db.store, &number).await,
            ts("2026-11-25T12:30:00+01:00")
        );
        let platform: Option<String> = sqlx::query_scalar("SELECT platform FROM sla_maintenance")
            .fetch_one(db.store.pool())
            .await
            .expect("window");
        assert_eq!(platform.as_deref(), Some("zidkor"));
        poststelle::announce::cancel(
            &db.store,
            &cfg,
            done.maintenance,
            ts("2026-11-25T10:20:00+01:00"),
        )
        .await
        .expect("cancelled");
        assert_eq!(
            due_of(&db.store, &number).await,
            ts("2026-11-25T12:00:00+01:00")
        );
    }
}

#[test]
fn a_calendar_declares_that_announced_maintenance_stops_the_clock() {
    let t = TempConfig::new(
        &format!(
            "{}\n[calendars.kdz]\nhours = {{ mon-fri = \"08:00-16:00\" }}\nmaintenance_is_closed = true\n\n[calendars.plain]\nhours = {{ mon-fri = \"08:00-16:00\" }}\n",
            TempConfig::shipped_text()
        ),
        &[],
    );
    let cfg = t.load();
    let closes = |name: &str| {
        cfg.settings
            .sla
            .calendars
            .get(name)
            .expect(name)
            .spec()
            .maintenance_is_closed
    };
    assert!(closes("kdz"));
    assert!(!closes("plain"));
    // Built in: MISSION §3 closes rlp during announced maintenance, not hessen.
    assert!(closes("rlp"));
    assert!(!closes("hessen"));
}
