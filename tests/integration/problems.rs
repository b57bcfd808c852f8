//! Problems (issue 19, item 4), on SQLite and PostgreSQL: the third occurrence of an incident
//! with one fingerprint within the window makes a problem record that links them, and the
//! queue's escalation address is told exactly once — also when the fourth comes through
//! another store handle on the same database, as after a restart; closing it lets the count
//! start afresh; a subject's fingerprint counts new tickets of class 1–3 only, within the
//! window; the command line lists, shows and closes problems, and the platform's
//! availability report lists them.
use jiff::{SignedDuration, Timestamp};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use serde_json::Value;

use crate::support::alerts::icinga;
use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both, scalar};
use crate::support::mail::request;

fn desk(db: Option<&TestDb>) -> TempConfig {
    let text = format!(
        "{}{}\n[calendars.rund]\nhours = {{ mon-sun = \"00:00-24:00\" }}\n\n\
         [[platform]]\nname = \"portal\"\ncalendar = \"rund\"\n\n\
         [[alerts.platform]]\nkey = '^icinga:web01\\.portal\\.'\nplatform = \"portal\"\n",
        db.map(|d| format!("database_url = {:?}\n", d.url()))
            .unwrap_or_default(),
        TempConfig::shipped_text().replace(
            "rules_dir = \"rules\"",
            &format!("rules_dir = {:?}", crate::support::repo().join("rules")),
        )
    );
    TempConfig::new(&text, &[])
}

fn day(n: i64) -> Timestamp {
    "2026-11-02T08:00:00Z"
        .parse::<Timestamp>()
        .expect("instant")
        + SignedDuration::from_hours(24 * n)
}

async fn file(store: &Store, config: &Config, raw: &[u8], id: &str, now: Timestamp) -> Outcome {
    let mut ing = Ingestor::new(store, config);
    ing.clock = Some(now);
    ing.ingest(raw, SourceKey::file(id)).await.expect("ingest")
}

/// The key's problem on day `d`, recovered an hour later.
async fn episode(store: &Store, config: &Config, d: i64) {
    let start = day(d);
    file(
        store,
        config,
        &icinga(false, start, &format!("e{d}-p")),
        &format!("e{d}-p"),
        start,
    )
    .await;
    let end = start + SignedDuration::from_hours(1);
    file(
        store,
        config,
        &icinga(true, end, &format!("e{d}-r")),
        &format!("e{d}-r"),
        end,
    )
    .await;
}

const TOLD: &str = "SELECT COUNT(*) FROM outbox WHERE template = 'problem-erkannt'";

both!(the_third_occurrence_makes_a_problem_told_once_also_across_a_restart);
async fn the_third_occurrence_makes_a_problem_told_once_also_across_a_restart(db: &TestDb) {
    let t = desk(None);
    let config = t.load();
    episode(&db.store, &config, 0).await;
    episode(&db.store, &config, 1).await;
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM problems").await, 0);
    assert_eq!(scalar(&db.store, TOLD).await, 0);
    // The third within a week: the problem, told to the queue's escalation address.
    episode(&db.store, &config, 2).await;
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM problems").await, 1);
    assert_eq!(scalar(&db.store, TOLD).await, 1);
    let (fingerprint, platform, notified_to, title): (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as("SELECT fingerprint, platform, notified_to, title FROM problems")
        .fetch_one(db.store.pool())
        .await
        .expect("problem");
    let key = "icinga:web01.portal.kommunal-it.example/https-portal";
    assert_eq!(fingerprint, format!("alert:{key}"));
    assert_eq!(platform.as_deref(), Some("portal"));
    assert_eq!(
        notified_to.as_deref(),
        Some("rufbereitschaft@kommunal-it.example")
    );
    assert_eq!(title.as_deref(), Some(key));
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE template = 'problem-erkannt' \
             AND recipient = 'rufbereitschaft@kommunal-it.example'"
        )
        .await,
        1
    );
    let body: String =
        sqlx::query_scalar("SELECT body_text FROM outbox WHERE template = 'problem-erkannt'")
            .fetch_one(db.store.pool())
            .await
            .expect("mail");
    assert!(body.contains("3-mal"), "{body}");
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM ticket_fingerprints WHERE problem_id IS NOT NULL"
        )
        .await,
        3
    );

    // A restart: another store handle on the same database, as a new daemon run has. The
    // fourth joins the open problem without a second mail.
    let again = Store::open(&db.url).await.expect("store");
    episode(&again, &config, 3).await;
    again.close().await;
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM problems").await, 1);
    assert_eq!(scalar(&db.store, TOLD).await, 1);
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM ticket_fingerprints WHERE problem_id IS NOT NULL"
        )
        .await,
        4
    );

    // Closed: the next ones count afresh — two are no problem yet, the third is a new one.
    let id: i64 = sqlx::query_scalar("SELECT id FROM problems")
        .fetch_one(db.store.pool())
        .await
        .expect("id");
    let close = poststelle::ticket::problems::close;
    assert!(
        close(&db.store, id, "jan", Some("Zertifikat"), day(3))
            .await
            .expect("close")
    );
    assert!(
        !close(&db.store, id, "jan", None, day(3))
            .await
            .expect("close")
    );
    episode(&db.store, &config, 4).await;
    episode(&db.store, &config, 5).await;
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM problems").await, 1);
    episode(&db.store, &config, 6).await;
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM problems").await, 2);
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM problems WHERE state = 'open'"
        )
        .await,
        1
    );
    assert_eq!(scalar(&db.store, TOLD).await, 2);
}

both!(a_subject_makes_a_problem_only_three_times_within_the_window);
async fn a_subject_makes_a_problem_only_three_times_within_the_window(db: &TestDb) {
    let t = desk(None);
    let config = t.load();
    // Class 3 (a Störung), from three people, differing in case and blanks.
    let subjects = [
        "Störung Drucker Bürgerbüro",
        "störung  drucker Bürgerbüro",
        "STÖRUNG Drucker Bürgerbüro",
        "Störung Drucker Bürgerbüro",
    ];
    // Day 0, then days 8, 9 and 10: the first is outside the week of the others.
    for (i, d) in [0, 8, 9, 10].into_iter().enumerate() {
        let raw = request(
            &format!("person{i}@kommune.example"),
            subjects[i],
            &format!("s{i}@kommune.example"),
        );
        let o = file(&db.store, &config, &raw, &format!("s{i}"), day(d)).await;
        assert!(matches!(o, Outcome::NewTicket { .. }), "{o:?}");
        let want = if i < 3 { 0 } else { 1 };
        assert_eq!(
            scalar(&db.store, "SELECT COUNT(*) FROM problems").await,
            want,
            "{i}"
        );
    }
    let (queue, notified_to, fingerprint): (String, Option<String>, String) =
        sqlx::query_as("SELECT queue, notified_to, fingerprint FROM problems")
            .fetch_one(db.store.pool())
            .await
            .expect("problem");
    assert_eq!(queue, "support");
    assert_eq!(
        notified_to.as_deref(),
        Some("servicedesk-leitung@kommunal-it.example")
    );
    // The fingerprint keeps no subject that retention would have to find.
    assert!(
        !fingerprint.to_lowercase().contains("drucker"),
        "{fingerprint}"
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM ticket_fingerprints WHERE problem_id IS NOT NULL"
        )
        .await,
        3
    );
    // Class 4 (no incident) never makes a problem, however often.
    for i in 0..4 {
        let raw = request(
            &format!("frage{i}@kommune.example"),
            "Frage zur Rechnung",
            &format!("f{i}@kommune.example"),
        );
        file(&db.store, &config, &raw, &format!("f{i}"), day(11)).await;
    }
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM problems").await, 1);
    assert_eq!(scalar(&db.store, TOLD).await, 1);
}

/// `problems list|show|close` and the availability report, through the binary.
fn run(t: &TempConfig, data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = poststelle()
        .arg("--config")
        .arg(t.path())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("USER", "test-actor")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

both!(the_command_line_lists_shows_and_closes_problems);
async fn the_command_line_lists_shows_and_closes_problems(db: &TestDb) {
    let t = desk(Some(db));
    let data = tempfile::tempdir().expect("data");
    // Three problems and their recoveries of one key, filed in one run.
    let now = Timestamp::now();
    for i in 0..3i64 {
        let start = now - SignedDuration::from_hours(10 - 2 * i);
        let end = start + SignedDuration::from_mins(30);
        t.write(
            &format!("mails/{i}a.eml"),
            &icinga(false, start, &format!("cli-{i}a")),
        );
        t.write(
            &format!("mails/{i}b.eml"),
            &icinga(true, end, &format!("cli-{i}b")),
        );
    }
    let dir = t.dir.path().join("mails");
    let (code, out, err) = run(&t, data.path(), &["ingest", dir.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&t, data.path(), &["problems", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    let p = &rows[0];
    assert_eq!(p["state"], "open");
    assert_eq!(p["occurrences"], 3);
    assert_eq!(p["tickets"], 1);
    assert_eq!(p["platform"], "portal");
    assert_eq!(p["notified_to"], "rufbereitschaft@kommunal-it.example");
    let id = p["id"].to_string();
    let (code, out, _) = run(&t, data.path(), &["problems", "show", &id, "--json"]);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(shown["incidents"].as_array().map(Vec::len), Some(3));
    let (code, text, _) = run(&t, data.path(), &["problems", "show", &id]);
    assert_eq!(code, 0);
    assert!(
        text.contains("rufbereitschaft@kommunal-it.example"),
        "{text}"
    );

    // The platform's availability report lists it.
    let today = now
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"))
        .date();
    let from = (today - jiff::Span::new().days(3)).to_string();
    let to = today.to_string();
    let (code, out, err) = run(
        &t,
        data.path(),
        &[
            "sla",
            "report",
            "--platform",
            "portal",
            "--from",
            &from,
            "--to",
            &to,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["problems"][0]["id"].to_string(), id, "{out}");
    assert_eq!(report["problems"][0]["occurrences"], 3);
    // Three outages of 30 minutes, from the alerts' own times.
    assert_eq!(report["total"]["outage_seconds"], 3 * 30 * 60, "{out}");
    let (code, text, _) = run(
        &t,
        data.path(),
        &[
            "sla",
            "report",
            "--platform",
            "portal",
            "--from",
            &from,
            "--to",
            &to,
        ],
    );
    assert_eq!(code, 0);
    assert!(text.contains(&format!("problem {id:>4}")), "{text}");

    let (code, out, err) = run(
        &t,
        data.path(),
        &[
            "problems",
            "close",
            &id,
            "--note",
            "Zertifikat erneuert",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let closed: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["closed_by"], "test-actor");
    assert_eq!(closed["close_note"], "Zertifikat erneuert");
    let (code, _, err) = run(&t, data.path(), &["problems", "close", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("closed already"), "{err}");
    let (code, _, err) = run(&t, data.path(), &["problems", "show", "999"]);
    assert_eq!(code, 1);
    assert!(err.contains("no problem 999"), "{err}");
    let (code, out, _) = run(&t, data.path(), &["alerts", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("icinga:web01.portal.kommunal-it.example/https-portal"),
        "{out}"
    );
    assert_eq!(scalar(&db.store, TOLD).await, 1);
}
