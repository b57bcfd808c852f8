//! Maintenance announcements (issue 16, items 3, 6 and 7) through the real binary on SQLite and
//! PostgreSQL: the lead-time rule at its boundary, one outbox row per unique member of a
//! nested list (flagged and unsubscribed members skipped) with List-Id, Auto-Submitted,
//! Precedence and a calendar part that Python's icalendar reads, a change that raises
//! SEQUENCE under the same UID, a cancellation with STATUS:CANCELLED, a fan-out run twice that
//! adds nothing, and the announced window in `sla_maintenance`. `maintenance_smtp_*` delivers
//! through the real OpenSMTPD into Dovecot mailboxes (tests/run.sh).
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use mail_parser::{MessageParser, MimeHeaders};
use poststelle::store::announcements::{self as stored, NoticeKind};
use poststelle::store::lists as lists_store;
use serde_json::Value;

use crate::ical::read_back;
use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both, scalar};

/// A configuration with the platform "zidkor" (lists "alle") on the test's database.
struct Desk {
    config: TempConfig,
    data: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Desk {
    fn new(db: &TestDb) -> Desk {
        let text = format!(
            "database_url = {:?}\n{}\n[[platform]]\nname = \"zidkor\"\ndescription = \"Zentrales Dokumentenregister\"\ncalendar = \"rlp\"\nlists = [\"alle\"]\n",
            db.url(),
            TempConfig::shipped_text()
        );
        Desk {
            config: TempConfig::new(&text, &[]),
            data: tempfile::tempdir().expect("data dir"),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = poststelle()
            .arg("--config")
            .arg(self.config.path())
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .env("USER", "test-actor")
            .output()
            .expect("runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    fn import(&self, list: &str, csv: &str) {
        let name = format!("{list}.csv");
        self.config.write(&name, csv.as_bytes());
        let file = self.config.dir.path().join(name);
        self.ok(&["lists", "import", list, file.to_str().expect("utf8")]);
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }
}

/// Today in Berlin.
fn today() -> Date {
    Timestamp::now()
        .to_zoned(poststelle::time::berlin().expect("tz"))
        .date()
}

/// `YYYY-MM-DD HH:MM` on the day `days` after today, Berlin time.
fn berlin(days: i32, time: &str) -> String {
    let d = today().checked_add(days.days()).expect("date");
    format!("{d} {time}")
}

/// 08:00–09:00 lies in no default regular window, whatever the weekday: 14 days' notice.
async fn lead_time_is_checked_at_its_boundary(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import("alle", "E-Mail;Name\nanna@kommune.example;Anna\n");
    let schedule = |days: i32, extra: &[&str]| {
        let (start, end) = (berlin(days, "08:00"), berlin(days, "09:00"));
        let mut args = vec![
            "maintenance",
            "schedule",
            "--platform",
            "zidkor",
            "--start",
            &start,
            "--end",
            &end,
            "--reason",
            "Sicherheitsupdates",
            "--impact",
            "nicht erreichbar",
        ];
        args.extend_from_slice(extra);
        desk.run(&args)
    };
    let r = schedule(13, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let earliest = format!(
        "{} 00:00",
        today()
            .checked_add(14.days())
            .expect("d")
            .strftime("%a %Y-%m-%d")
    );
    assert!(
        r.stderr.contains("outside the regular maintenance windows")
            && r.stderr.contains("at least 14 days ahead")
            && r.stderr.contains(&format!("may start on {earliest}")),
        "{}",
        r.stderr
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM maintenances").await,
        0
    );
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM outbox").await, 0);

    let r = schedule(14, &["--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["emergency"], false);
    assert_eq!(v["fan_out"]["enqueued"], 1);
    // Moving it a day earlier breaks the rule again: refused, nothing changed or sent.
    let id = v["id"].to_string();
    let (start, end) = (berlin(13, "08:00"), berlin(13, "09:00"));
    let r = desk.run(&[
        "maintenance",
        "change",
        &id,
        "--start",
        &start,
        "--end",
        &end,
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("at least 14 days ahead"), "{}", r.stderr);
    let shown = desk.json(&["maintenance", "show", &id, "--json"]);
    assert_eq!(shown["sequence"], 0);
    assert_eq!(shown["excluded_from_availability"], true);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM outbox").await, 1);

    let r = schedule(13, &["--emergency"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("emergency: announced 13 day(s) ahead"),
        "{}",
        r.stdout
    );
    let listed: Vec<Value> = desk
        .ok(&["maintenance", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|m| m["emergency"] == true));
    // The emergency notice says so.
    let subject: String = sqlx::query_scalar(
        "SELECT o.subject FROM outbox o JOIN announcements a ON a.id = o.announcement_id \
         JOIN maintenances m ON m.id = a.maintenance_id WHERE m.emergency = 1",
    )
    .fetch_one(db.store.pool())
    .await
    .expect("subject");
    assert!(subject.starts_with("Notfallwartung: zidkor"), "{subject}");
}
both!(lead_time_is_checked_at_its_boundary);

/// The sent mails of the file transport, parsed: (recipient, raw bytes).
pub(crate) fn sent(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("sent")).expect("sent dir") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "eml") {
            let raw = std::fs::read(&path).expect("eml");
            let msg = MessageParser::default().parse(&raw).expect("mail");
            let to = msg
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .expect("to")
                .to_string();
            out.push((to, raw));
        }
    }
    out.sort();
    out
}

/// The calendar part of a mail, written to a file for the Python parser.
pub(crate) fn calendar_of(raw: &[u8], dir: &Path, name: &str) -> PathBuf {
    let msg = MessageParser::default().parse(raw).expect("mail");
    let part = msg
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some("calendar"))
        })
        .expect("a text/calendar part");
    let ct = part.content_type().expect("ct");
    assert_eq!(ct.attribute("method"), Some("PUBLISH"));
    let path = dir.join(name);
    std::fs::write(&path, part.contents()).expect("ics");
    path
}

async fn a_nested_list_gets_one_notice_per_member_with_calendar(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import(
        "kommunen",
        "E-Mail;Name;Sprache\nanna@kommune.example;Anna;de\nBen@Kommune.example;Ben;en\nflag@kommune.example;Flag;de\n",
    );
    desk.import(
        "auftraggeber",
        "E-Mail;Name\nANNA@kommune.example;Anna doppelt\ncarla@land.example;Carla\nweg@land.example;Weg\n",
    );
    desk.import("alle", "E-Mail;Name\nanna@KOMMUNE.example;Anna doppelt\n");
    desk.ok(&["lists", "include", "alle", "kommunen"]);
    desk.ok(&["lists", "include", "alle", "auftraggeber"]);
    {
        let mut conn = db.store.pool().acquire().await.expect("conn");
        let now = Timestamp::now().as_microsecond();
        lists_store::record_bounce(&mut conn, "flag@kommune.example", now, 1)
            .await
            .expect("bounce");
        assert!(
            lists_store::unsubscribe(&mut conn, "auftraggeber", "weg@land.example", now)
                .await
                .expect("unsubscribe")
        );
    }

    let (start, end) = (berlin(20, "08:00"), berlin(20, "12:30"));
    let v = desk.json(&[
        "maintenance",
        "schedule",
        "--platform",
        "zidkor",
        "--start",
        &start,
        "--end",
        &end,
        "--reason",
        "Umzug ins neue Rechenzentrum",
        "--impact",
        "Anmeldung nicht möglich",
        "--json",
    ]);
    let id = v["id"].as_i64().expect("id");
    assert_eq!(v["lists"], serde_json::json!(["alle"]));
    assert_eq!(v["fan_out"]["reached"], 5);
    assert_eq!(v["fan_out"]["enqueued"], 3);
    assert_eq!(v["fan_out"]["skipped_flagged"], 1);
    assert_eq!(v["fan_out"]["skipped_unsubscribed"], 1);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, kind FROM outbox WHERE announcement_id IS NOT NULL")
            .fetch_all(db.store.pool())
            .await
            .expect("rows");
    let mut recipients: Vec<&str> = rows.iter().map(|(r, _)| r.as_str()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "Ben@kommune.example",
            "anna@kommune.example",
            "carla@land.example"
        ]
    );
    assert!(rows.iter().all(|(_, k)| k == "announcement"));

    // The announced window is in the availability report's table, on the platform's calendar.
    let (calendar, starts_at): (Option<String>, i64) =
        sqlx::query_as("SELECT calendar, starts_at FROM sla_maintenance WHERE maintenance_id = $1")
            .bind(id)
            .fetch_one(db.store.pool())
            .await
            .expect("window");
    assert_eq!(calendar.as_deref(), Some("rlp"));
    assert_eq!(
        starts_at,
        scalar(&db.store, "SELECT starts_at FROM maintenances").await
    );

    // A crash and a second run of the same announcement's fan-out: nothing added.
    let config = desk.config.load();
    let announcement: i64 = scalar(&db.store, "SELECT MAX(id) FROM announcements").await;
    {
        let mut tx = db.store.begin_write().await.expect("tx");
        let m = stored::maintenance(&mut tx, id)
            .await
            .expect("read")
            .expect("there");
        let again = poststelle::announce::fan_out(
            &mut tx,
            &config,
            &m,
            announcement,
            NoticeKind::Scheduled,
            None,
            Timestamp::now(),
        )
        .await
        .expect("fan out again");
        tx.commit().await.expect("commit");
        assert_eq!(again.enqueued, 0);
        assert_eq!(again.reached, 5);
    }
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM outbox").await, 3);
    // The text is stored once per language (German, English), not once per member, also
    // after the second fan-out.
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM announcement_bodies").await,
        2
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE body_id IS NOT NULL AND body_text = '' AND ical IS NULL"
        )
        .await,
        3
    );

    // Sent: one mail each, with the list headers and a calendar part.
    desk.ok(&["outbox", "send"]);
    let mails = sent(desk.data.path());
    assert_eq!(mails.len(), 3);
    // Anna's and Carla's mails share their German text (built once, copied with each one's
    // own fields): each names its own recipient and has its own Message-ID, as stored.
    for (to, raw) in &mails {
        let msg = MessageParser::default().parse(raw).expect("mail");
        let stored: String =
            sqlx::query_scalar("SELECT message_id FROM outbox WHERE recipient = $1")
                .bind(to)
                .fetch_one(db.store.pool())
                .await
                .expect("row");
        assert_eq!(msg.message_id(), Some(stored.as_str()), "{to}");
    }
    let ics = tempfile::tempdir().expect("ics dir");
    let mut first = Vec::new();
    for (i, (to, raw)) in mails.iter().enumerate() {
        let msg = MessageParser::default().parse(raw).expect("mail");
        let header = |name: &str| {
            msg.header_raw(name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        assert_eq!(header("List-Id"), "alle <alle.kommunal-it.example>", "{to}");
        assert_eq!(header("Auto-Submitted"), "auto-generated");
        assert_eq!(header("Precedence"), "bulk");
        let text = msg.body_text(0).expect("text").to_string();
        let subject = msg.subject().expect("subject").to_string();
        // The HTML alternative: the member's language, the facts as a table for screen readers.
        let html = msg.body_html(0).expect("an HTML part").to_string();
        let lang = if to == "Ben@kommune.example" {
            "en"
        } else {
            "de"
        };
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
        assert!(html.contains("<th scope=\"row\""), "{html}");
        assert!(html.contains("Umzug ins neue Rechenzentrum"), "{html}");
        if to == "Ben@kommune.example" {
            assert!(
                subject.starts_with("Planned maintenance: zidkor"),
                "{subject}"
            );
            assert!(
                text.contains("Restrictions:  Anmeldung nicht möglich"),
                "{text}"
            );
            assert!(text.contains("Duration:      4 hours 30 minutes"), "{text}");
        } else {
            assert!(
                subject.starts_with("Wartungsankündigung: zidkor"),
                "{subject}"
            );
            assert!(
                text.contains("Dauer:              4 Stunden 30 Minuten"),
                "{text}"
            );
            assert!(text.contains("Grund:              Umzug ins neue Rechenzentrum"));
            assert!(!text.contains("Notfallwartung"), "{text}");
        }
        first.push(calendar_of(raw, ics.path(), &format!("first-{i}.ics")));
    }
    let parsed = read_back(&first);
    let uid = format!("maintenance-{id}@kommunal-it.example");
    for c in &parsed {
        assert_eq!(c["method"], "PUBLISH");
        assert_eq!(c["uid"], uid.as_str());
        assert_eq!(c["sequence"], 0);
        assert_eq!(c["status"], "CONFIRMED");
        assert!(c["errors"].as_array().expect("errors").is_empty(), "{c}");
    }
    let start_utc: Timestamp = v["start"].as_str().expect("start").parse().expect("ts");
    let dtstart: Timestamp = parsed[0]["dtstart"]
        .as_str()
        .expect("dt")
        .parse()
        .expect("ts");
    assert_eq!(dtstart, start_utc);

    // A change moves the end: SEQUENCE 1, same UID, a 'changed' notice naming the old plan.
    let new_end = berlin(20, "13:00");
    let v = desk.json(&[
        "maintenance",
        "change",
        &id.to_string(),
        "--end",
        &new_end,
        "--json",
    ]);
    assert_eq!(v["sequence"], 1);
    assert_eq!(v["fan_out"]["enqueued"], 3);
    // Cancelled: SEQUENCE 2, STATUS:CANCELLED, "Abgesagt:" in the title, the window gone.
    let v = desk.json(&["maintenance", "cancel", &id.to_string(), "--json"]);
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["sequence"], 2);
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM sla_maintenance").await,
        0
    );
    let r = desk.run(&["maintenance", "cancel", &id.to_string()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is cancelled already"), "{}", r.stderr);

    desk.ok(&["outbox", "send"]);
    let mails = sent(desk.data.path());
    assert_eq!(mails.len(), 9);
    let mut later = Vec::new();
    let mut subjects = Vec::new();
    for (i, (to, raw)) in mails.iter().enumerate() {
        let msg = MessageParser::default().parse(raw).expect("mail");
        let subject = msg.subject().unwrap_or_default().to_string();
        if subject.starts_with("Geänderte Wartung") || subject.starts_with("Abgesagt:") {
            assert!(to != "Ben@kommune.example");
            later.push(calendar_of(raw, ics.path(), &format!("later-{i}.ics")));
        }
        if subject.starts_with("Geänderte Wartung") {
            let text = msg.body_text(0).expect("text");
            assert!(text.contains("Bisher geplant:"), "{text}");
        }
        subjects.push(subject);
    }
    assert_eq!(later.len(), 4, "{subjects:?}");
    let parsed = read_back(&later);
    let changed: Vec<&Value> = parsed.iter().filter(|c| c["sequence"] == 1).collect();
    let cancelled: Vec<&Value> = parsed.iter().filter(|c| c["sequence"] == 2).collect();
    assert_eq!((changed.len(), cancelled.len()), (2, 2), "{parsed:?}");
    for c in &parsed {
        assert_eq!(c["uid"], uid.as_str());
    }
    for c in &changed {
        assert_eq!(c["status"], "CONFIRMED");
        let end: Timestamp = c["dtend"].as_str().expect("dtend").parse().expect("ts");
        assert_eq!(end.as_second() - dtstart.as_second(), 5 * 3600);
    }
    for c in &cancelled {
        assert_eq!(c["status"], "CANCELLED");
        assert!(
            c["summary"].as_str().expect("s").starts_with("Abgesagt:"),
            "{c}"
        );
    }

    // `show` counts the notices and their mails.
    let shown = desk.json(&["maintenance", "show", &id.to_string(), "--json"]);
    let kinds: Vec<&str> = shown["announcements"]
        .as_array()
        .expect("announcements")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["scheduled", "changed", "cancelled"]);
    assert!(
        shown["announcements"]
            .as_array()
            .expect("a")
            .iter()
            .all(|a| a["sent"] == 3 && a["pending"] == 0)
    );
    assert_eq!(shown["excluded_from_availability"], false);
}
both!(a_nested_list_gets_one_notice_per_member_with_calendar);

/// `check` renders every maintenance notice: a misspelt name fails it.
#[test]
fn check_renders_the_maintenance_templates() {
    let tpl = crate::support::repo().join("templates");
    let text = TempConfig::shipped_text().replace(
        &format!("templates_dir = {tpl:?}"),
        "templates_dir = \"tpl\"",
    );
    let t = TempConfig::new(&text, &[]);
    for lang in ["de", "en"] {
        for e in std::fs::read_dir(tpl.join(lang)).expect("templates") {
            let path = e.expect("entry").path();
            // The status page's templates (status/) are no mail templates.
            if path.is_dir() {
                continue;
            }
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            t.write(
                &format!("tpl/{lang}/{name}"),
                &std::fs::read(&path).expect("tpl"),
            );
        }
    }
    let out = poststelle()
        .args(["--config"])
        .arg(t.path())
        .arg("check")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    t.write(
        "tpl/en/wartung-abgesagt.txt",
        b"{% block subject %}{{ maintenance.platfrom }}{% endblock %}\n{% block body %}x{% endblock %}\n",
    );
    let out = poststelle()
        .args(["--config"])
        .arg(t.path())
        .arg("check")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("en/wartung-abgesagt.txt"), "{text}");
}

/// Every message in `user`'s INBOX with `id` as its Message-ID, once delivery has had a moment.
async fn delivered(user: &str, id: &str) -> Vec<Vec<u8>> {
    let addr = crate::support::daemon::env("POSTSTELLE_TEST_IMAP");
    let mut got = Vec::new();
    for _ in 0..50 {
        got = crate::support::imap::messages(&addr, user, "INBOX")
            .await
            .into_iter()
            .filter(|raw| {
                MessageParser::default()
                    .parse(raw)
                    .and_then(|m| m.message_id().map(|i| i == id))
                    .unwrap_or(false)
            })
            .collect();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got
}

/// A small list announced through OpenSMTPD into Dovecot mailboxes: each member has its notice
/// once (counted in the mailboxes), with the list headers and the calendar part; the sender run
/// again sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_smtp_a_small_list_reaches_real_mailboxes_once() {
    use poststelle::lists::Language;
    use poststelle::outbox::sender::{Mailer, Sender};
    use poststelle::store::Store;
    use poststelle::store::lists::MemberFields;

    let smtp = crate::support::daemon::env("POSTSTELLE_TEST_SMTP");
    let (host, port) = smtp.rsplit_once(':').expect("host:port");
    let text = TempConfig::shipped_text()
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace(
            "from = \"servicedesk@kommunal-it.example\"",
            "from = \"support@example.test\"",
        )
        + &format!(
            "\n[outbox.smtp]\nhost = {host:?}\nport = {port}\ntls = \"none\"\ntimeout_seconds = 5\n\
             \n[[platform]]\nname = \"zidkor\"\ncalendar = \"rlp\"\nlists = [\"verteiler\"]\n"
        );
    let t = TempConfig::new(&text, &[]);
    let cfg = t.load();
    let store = Store::open(&Store::default_url(t.dir.path()))
        .await
        .expect("store");
    lists_store::create(&store, "verteiler", "", false, "test")
        .await
        .expect("list");
    for (address, language) in [
        ("erika@example.test", Language::De),
        ("max@example.test", Language::En),
        ("staff@example.test", Language::De),
        ("ERIKA@example.test", Language::De),
    ] {
        let fields = MemberFields {
            language: Some(language),
            ..MemberFields::default()
        };
        lists_store::add_member(&store, "verteiler", address, &fields, "test")
            .await
            .expect("member");
    }
    let start = Timestamp::now() + (20 * 24).hours();
    let done = poststelle::announce::schedule(
        &store,
        &cfg,
        poststelle::announce::Plan {
            platform: "zidkor".into(),
            start,
            end: start + 2.hours(),
            reason: format!("Test {}", crate::support::daemon::unique()),
            impact: "keine Anmeldung".into(),
            lists: Vec::new(),
            emergency: false,
        },
        Timestamp::now(),
    )
    .await
    .expect("schedule");
    assert_eq!(done.fan_out.enqueued, 3);

    let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
    let sender = Sender {
        store: &store,
        config: &cfg,
        mailer: &mailer,
    };
    let s = sender.send_due(10).await.expect("send");
    assert_eq!(
        (s.sent, s.temporary_failures, s.permanent_failures),
        (3, 0, 0)
    );
    assert_eq!(
        sender.send_due(10).await.expect("send").sent,
        0,
        "nothing twice"
    );

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, message_id FROM outbox ORDER BY recipient")
            .fetch_all(store.pool())
            .await
            .expect("rows");
    for (recipient, message_id) in &rows {
        let user = recipient.split('@').next().expect("user");
        let got = delivered(user, message_id).await;
        assert_eq!(got.len(), 1, "{recipient}: exactly one notice");
        let msg = MessageParser::default().parse(&got[0]).expect("mail");
        assert_eq!(
            msg.header_raw("List-Id").map(str::trim),
            Some("verteiler <verteiler.example.test>")
        );
        assert_eq!(msg.header_raw("Precedence").map(str::trim), Some("bulk"));
        let subject = msg.subject().unwrap_or_default();
        if user == "max" {
            assert!(
                subject.starts_with("Planned maintenance: zidkor"),
                "{subject}"
            );
        } else {
            assert!(
                subject.starts_with("Wartungsankündigung: zidkor"),
                "{subject}"
            );
        }
        let ics = tempfile::tempdir().expect("dir");
        let parsed = read_back(&[calendar_of(&got[0], ics.path(), "n.ics")]);
        assert_eq!(
            parsed[0]["uid"],
            format!("maintenance-{}@example.test", done.maintenance)
        );
    }
    store.close().await;
}

both!(the_daemon_sends_reminder_start_and_completion_once_each);
/// What the daemon sends by itself (`announce::run_due`, called every half minute): nothing
/// before the reminder time; one reminder from 24 hours ahead; one start notice once it
/// began; completion at the planned end, after which the maintenance is done. Asked again at
/// each point, it sends nothing twice. A maintenance changed within the reminder time gets
/// no reminder of its own (its change notice is fresh), but still its start and completion.
async fn the_daemon_sends_reminder_start_and_completion_once_each(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import(
        "alle",
        "E-Mail;Name\nanna@kommune.example;Anna\nben@kommune.example;Ben\n",
    );
    let config = desk.config.load();
    let (start, end) = (berlin(20, "08:00"), berlin(20, "12:00"));
    let v = desk.json(&[
        "maintenance",
        "schedule",
        "--platform",
        "zidkor",
        "--start",
        &start,
        "--end",
        &end,
        "--reason",
        "Update",
        "--impact",
        "keine Anmeldung",
        "--json",
    ]);
    let id = v["id"].as_i64().expect("id");
    let m = {
        let mut conn = db.store.pool().acquire().await.expect("conn");
        stored::maintenance(&mut conn, id)
            .await
            .expect("read")
            .expect("there")
    };
    let at = |micros: i64| Timestamp::from_microsecond(micros).expect("instant");
    let hour = 3_600_000_000;
    let kinds_at = |t: Timestamp| {
        let (store, config) = (&db.store, &config);
        async move {
            poststelle::announce::run_due(store, config, t)
                .await
                .expect("run_due")
                .iter()
                .map(|a| a.kind)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(kinds_at(at(m.starts_at - 25 * hour)).await, []);
    assert_eq!(
        kinds_at(at(m.starts_at - 23 * hour)).await,
        [NoticeKind::Reminder]
    );
    assert_eq!(kinds_at(at(m.starts_at - 22 * hour)).await, []);
    assert_eq!(kinds_at(at(m.starts_at + 1)).await, [NoticeKind::Started]);
    assert_eq!(kinds_at(at(m.starts_at + hour)).await, []);
    assert_eq!(kinds_at(at(m.ends_at)).await, [NoticeKind::Done]);
    assert_eq!(kinds_at(at(m.ends_at + hour)).await, []);
    let shown = desk.json(&["maintenance", "show", &id.to_string(), "--json"]);
    assert_eq!(shown["state"], "done", "{shown}");
    // Two members each: scheduled, reminder, started, done.
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'announcement'"
        )
        .await,
        8
    );

    // Changed ten hours before its start: its change notice is the fresh one, no reminder.
    let (start, end) = (berlin(21, "08:00"), berlin(21, "12:00"));
    let v = desk.json(&[
        "maintenance",
        "schedule",
        "--platform",
        "zidkor",
        "--start",
        &start,
        "--end",
        &end,
        "--reason",
        "Update",
        "--impact",
        "keine Anmeldung",
        "--json",
    ]);
    let id = v["id"].as_i64().expect("id");
    let starts_at = {
        let mut conn = db.store.pool().acquire().await.expect("conn");
        stored::maintenance(&mut conn, id)
            .await
            .expect("read")
            .expect("there")
            .starts_at
    };
    let change = poststelle::announce::Change {
        reason: Some("Update, verschoben".into()),
        ..Default::default()
    };
    poststelle::announce::change(&db.store, &config, id, change, at(starts_at - 10 * hour))
        .await
        .expect("changed");
    assert_eq!(kinds_at(at(starts_at - 9 * hour)).await, []);
    assert_eq!(kinds_at(at(starts_at)).await, [NoticeKind::Started]);
}

/// Two cancellations of one maintenance at once (two instances, or an operator twice): one
/// succeeds and announces, the other is refused — the maintenance row is locked while it
/// changes (PostgreSQL `FOR UPDATE`; SQLite's write transaction holds the database).
async fn two_cancellations_at_once_announce_once(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import("alle", "E-Mail;Name\nkommune@kommune.example;Kommune\n");
    let v = desk.json(&[
        "maintenance",
        "schedule",
        "--platform",
        "zidkor",
        "--start",
        &berlin(20, "08:00"),
        "--end",
        &berlin(20, "10:00"),
        "--reason",
        "Update",
        "--impact",
        "keine",
        "--json",
    ]);
    let id = v["id"].as_i64().expect("id");
    let config = desk.config.load();
    let now = Timestamp::now();
    let cancel = || poststelle::announce::cancel(&db.store, &config, id, now);
    let (a, b) = tokio::join!(cancel(), cancel());
    let refused = [&a, &b]
        .iter()
        .filter(|r| {
            matches!(r, Err(poststelle::announce::AnnounceError::NotScheduled { id: i, .. }) if *i == id)
        })
        .count();
    assert_eq!(
        (usize::from(a.is_ok()) + usize::from(b.is_ok()), refused),
        (1, 1),
        "{a:?} {b:?}"
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM announcements WHERE kind = 'cancelled'"
        )
        .await,
        1
    );
}
both!(two_cancellations_at_once_announce_once);

/// A member unsubscribed from one list still gets the notice through a list that must inform
/// it (the municipalities'); one unsubscribed on every way it is reached does not.
async fn unsubscribed_on_one_list_is_still_informed_by_another(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import(
        "newsletter",
        "E-Mail;Name\nanna@kommune.example;Anna\nben@kommune.example;Ben\n",
    );
    desk.import("kommunen", "E-Mail;Name\nAnna@Kommune.example;Anna\n");
    desk.import("alle", "E-Mail;Name\nchef@land.example;Chef\n");
    desk.ok(&["lists", "include", "alle", "newsletter"]);
    desk.ok(&["lists", "include", "alle", "kommunen"]);
    {
        let mut conn = db.store.pool().acquire().await.expect("conn");
        let now = Timestamp::now().as_microsecond();
        for who in ["anna@kommune.example", "ben@kommune.example"] {
            assert!(
                lists_store::unsubscribe(&mut conn, "newsletter", who, now)
                    .await
                    .expect("unsubscribe")
            );
        }
    }
    for lists in ["alle", "newsletter,kommunen"] {
        let v = desk.json(&[
            "maintenance",
            "schedule",
            "--platform",
            "zidkor",
            "--start",
            &berlin(20, "08:00"),
            "--end",
            &berlin(20, "10:00"),
            "--reason",
            "Update",
            "--impact",
            "keine",
            "--lists",
            lists,
            "--json",
        ]);
        let reached = if lists == "alle" { 3 } else { 2 };
        assert_eq!(v["fan_out"]["reached"], reached, "{lists}: {v}");
        assert_eq!(v["fan_out"]["skipped_unsubscribed"], 1, "{lists}: {v}");
        let announcement = v["announcement"].as_i64().expect("announcement");
        let to: Vec<String> =
            sqlx::query_scalar("SELECT recipient FROM outbox WHERE announcement_id = $1")
                .bind(announcement)
                .fetch_all(db.store.pool())
                .await
                .expect("rows");
        let mut to: Vec<String> = to.iter().map(|a| a.to_lowercase()).collect();
        to.sort();
        let mut want = vec!["anna@kommune.example".to_string()];
        if lists == "alle" {
            want.push("chef@land.example".into());
        }
        assert_eq!(to, want, "{lists}");
    }
}
both!(unsubscribed_on_one_list_is_still_informed_by_another);
