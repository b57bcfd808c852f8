//! Retention (issue 20, item 1), with a controlled clock: after its period the raw mail,
//! attachments and texts of closed tickets are gone — from the rows, and on SQLite from the
//! bytes of the database file — while the SLA and availability reports give the same
//! figures, and mail filed alongside is filed without a failed batch.
use std::path::Path;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use poststelle::config::Config;
use poststelle::jobs::report;
use poststelle::jobs::retention::{self, Options, Report};
use poststelle::redact::ANONYMOUS;
use poststelle::store::{self, Backend, Store};
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, PreparedBatch, SourceKey};
use poststelle::ticket::ops;

use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both, scalar};
use crate::support::tickets::{close, new_number, set_severity, take};

/// The shipped configuration with retention on: texts of closed tickets 30 days, anonymised
/// after 60; the queue `betrieb` keeps its own for 90 and 120; mail on no ticket and sent mail
/// 30 days; a platform for the availability report. betrieb's deadlines run on the rlp
/// calendar, so that what is filed there stays out of the hessen report.
pub fn config() -> TempConfig {
    let text = TempConfig::shipped_text().replacen(
        "name = \"betrieb\"\n",
        "name = \"betrieb\"\ncalendar = \"rlp\"\nretention_days = 90\nanonymise_after_days = 120\n",
        1,
    ) + "\n[retention]\ndays = 30\nanonymise_after_days = 60\nquarantine_days = 30\n\
         sent_mail_days = 30\n\n[[platform]]\nname = \"portal\"\ncalendar = \"hessen\"\n";
    TempConfig::new(&text, &[])
}

/// A request from `person{i:03}@buerger.example` with `marker` in its text and in the name of
/// an attached scan (whose bytes are base64 and say it too).
fn request(i: usize, marker: &str) -> Vec<u8> {
    let scan = base64(format!("%PDF-1.4 Personalausweis {marker}").as_bytes());
    format!(
        "From: Person {i} <person{i:03}@buerger.example>\r\nTo: support@kommunal-it.example\r\n\
         Subject: Drucker {i} im Buergerbuero\r\nMessage-ID: <ret-{i}@buerger.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGuten Tag,\r\nmein Kennwort ist \
         {marker} und der Drucker druckt nicht.\r\n--b\r\nContent-Type: application/pdf; \
         name=\"scan {marker}.pdf\"\r\nContent-Disposition: attachment; filename=\"scan \
         {marker}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{scan}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// `n` days of 24 hours: the clock moved on by a run's period.
pub fn days(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(n * 24)
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The figures the reports give as of `now`: the reaction report of calendar hessen and the
/// availability of platform portal, this month and the next two.
async fn figures(store: &Store, cfg: &Config, now: Timestamp) -> serde_json::Value {
    let cal = cfg.settings.sla.calendars.get("hessen").expect("hessen");
    let today = Timestamp::now()
        .to_zoned(poststelle::time::berlin().expect("tz"))
        .date();
    let from = today.first_of_month();
    let to = from
        .checked_add(3.months())
        .expect("date")
        .yesterday()
        .expect("date");
    let r = report::report(store, cal, from, to, 97.5, now)
        .await
        .expect("report");
    let portal = cfg.settings.platform("portal").expect("portal");
    let p = report::platform_report(store, portal, cal, from, to, 97.5, now)
        .await
        .expect("platform report");
    serde_json::json!({ "sla": r, "availability": p })
}

/// Counts per state and queue, articles, mails and raw mail: what stays after retention.
async fn counts(store: &Store) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT state, queue, COUNT(*) FROM tickets GROUP BY state, queue ORDER BY state, queue",
    )
    .fetch_all(store.pool())
    .await
    .expect("counts")
}

/// How many rows of raw mail, article texts, attachment names and mail texts say `marker`.
async fn rows_saying(store: &Store, marker: &str) -> i64 {
    let raw = match store.backend() {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM raw_messages WHERE instr(bytes, CAST($1 AS BLOB)) > 0"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM raw_messages WHERE strpos(encode(bytes, 'escape'), $1) > 0"
        }
    };
    let mut n = 0;
    for sql in [
        raw,
        "SELECT COUNT(*) FROM articles WHERE body LIKE '%' || $1 || '%'",
        "SELECT COUNT(*) FROM attachments WHERE name LIKE '%' || $1 || '%'",
        "SELECT COUNT(*) FROM outbox WHERE body_text LIKE '%' || $1 || '%' \
         OR body_html LIKE '%' || $1 || '%'",
    ] {
        n += sqlx::query_scalar::<_, i64>(sql)
            .bind(marker)
            .fetch_one(store.pool())
            .await
            .expect(sql);
    }
    n
}

/// The bytes of the SQLite database and its WAL, as a disk holds them.
pub fn file_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).expect("database file");
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(w) = std::fs::read(&wal) {
        bytes.extend(w);
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Marks every mail as sent: only mail that is done loses its text.
async fn all_sent(store: &Store) {
    sqlx::query("UPDATE outbox SET state = 'sent', sent_at = created_at WHERE state <> 'sent'")
        .execute(store.pool())
        .await
        .expect("sent");
}

async fn run(store: &Store, cfg: &Config, now: Timestamp, dry: bool) -> Report {
    let opts = Options {
        dry_run: dry,
        chunk: 5,
        pause: Duration::from_millis(2),
    };
    retention::run(store, cfg, now, opts, "test", None)
        .await
        .expect("retention")
}

/// Files `n` requests in batches of 10 through a store of its own (another process's pool),
/// while retention runs: every batch must be filed. They are open, so nothing of them goes.
async fn file_alongside(url: String, cfg: Config, n: usize) -> usize {
    let store = Store::open(&url).await.expect("second store");
    let ing = Ingestor::new(&store, &cfg);
    let mails: Vec<Vec<u8>> = (0..n).map(|i| request(1000 + i, "NEBENHER")).collect();
    let mut filed = 0;
    for (b, chunk) in mails.chunks(10).enumerate() {
        let items: Vec<Incoming<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(k, raw)| Incoming {
                raw,
                source: SourceKey::file(&format!("alongside/{b}/{k}")),
            })
            .collect();
        // Into betrieb (rlp), so that the hessen report compared before and after is the same
        // set of tickets.
        let mut batch = PreparedBatch::new(&cfg, &items);
        batch.force("betrieb", 3);
        let out = ing
            .ingest_prepared(batch)
            .await
            .expect("a batch filed alongside retention");
        filed += out
            .iter()
            .filter(|o| matches!(o, Outcome::NewTicket { .. }))
            .count();
    }
    store.close().await;
    filed
}

async fn retention_deletes_what_is_due_and_keeps_the_figures(db: &TestDb) {
    let t = config();
    let cfg = t.load();
    let store = &db.store;
    let ing = Ingestor::new(store, &cfg);
    let mut numbers = Vec::new();
    for i in 0..20 {
        let marker = if i % 2 == 0 { "WEGDAMIT" } else { "BLEIBTDA" };
        let o = ing
            .ingest(&request(i, marker), SourceKey::file(&format!("ret/{i}")))
            .await
            .expect("ingest");
        numbers.push(new_number(&o));
    }
    // Reports need something to report: class-1 tickets taken in time or not, an outage.
    for (i, n) in numbers.iter().enumerate() {
        if i % 3 == 0 {
            set_severity(store, n, 1).await;
        }
        if i % 4 == 0 {
            take(store, n).await;
        }
        if i % 2 == 0 {
            close(store, n).await;
        }
    }
    let betrieb = ops::create_ticket(
        store,
        &cfg,
        ops::NewByHand {
            queue: "betrieb",
            severity: 2,
            requester: "leitstand@kreis.example",
            name: None,
            subject: "Betriebsgeheimnis",
            body: "Zugang BETRIEBSGEHEIM",
            actor: "test",
        },
    )
    .await
    .expect("betrieb ticket");
    close(store, &betrieb).await;
    let mut conn = store.pool().acquire().await.expect("conn");
    store::sla::record_outage(
        &mut conn,
        "portal",
        Timestamp::now().as_microsecond() - 3_600_000_000,
        Some(Timestamp::now().as_microsecond()),
        "test",
        "Portal weg",
    )
    .await
    .expect("outage");
    drop(conn);
    // Mail on no ticket: quarantined, and an auto-reply that is ignored.
    ing.quarantine(
        b"Subject: WEGDAMIT kaputt\r\n\r\nWEGDAMIT",
        40,
        &SourceKey::file("q/1"),
        "test",
    )
    .await
    .expect("quarantine");
    let ignored = ing
        .ingest(
            b"From: abwesend@buerger.example\r\nTo: support@kommunal-it.example\r\n\
              Subject: Abwesenheit\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <aw@x>\r\n\r\n\
              Bin weg. WEGDAMIT\r\n",
            SourceKey::file("ign/1"),
        )
        .await
        .expect("ignored");
    assert!(matches!(ignored, Outcome::Ignored { .. }), "{ignored:?}");
    all_sent(store).await;

    let now = Timestamp::now() + days(45);
    let before = figures(store, &cfg, now).await;
    let before_counts = counts(store).await;
    assert!(rows_saying(store, "WEGDAMIT").await > 0);

    // Dry first: it counts what the run then does, and changes nothing.
    let dry = run(store, &cfg, now, true).await;
    assert!(
        rows_saying(store, "WEGDAMIT").await > 0,
        "a dry run changed nothing"
    );
    let alongside = tokio::spawn(file_alongside(db.url.clone(), t.load(), 60));
    let done = run(store, &cfg, now, false).await;
    let filed = alongside.await.expect("filing task");
    assert_eq!(filed, 60, "every mail filed alongside opened its ticket");
    assert_eq!(
        done.purged, dry.purged,
        "the dry run counted what the run did"
    );
    assert_eq!(
        done.purged.tickets, 10,
        "the 10 closed tickets of the default queues"
    );
    assert_eq!(done.quarantine_deleted, 1);
    assert_eq!(dry.quarantine_deleted, 1);
    assert_eq!(done.unfiled_purged, dry.unfiled_purged);
    assert_eq!(done.unfiled_bytes, dry.unfiled_bytes);
    assert!(done.unfiled_purged >= 1);
    assert!(
        done.sent_mail_purged > 0,
        "sent mail of open tickets loses its text too"
    );
    assert!(
        done.transactions > 3,
        "done in chunks: {}",
        done.transactions
    );
    assert_eq!(done.anonymised, 0, "not yet 60 days");

    assert_eq!(
        rows_saying(store, "WEGDAMIT").await,
        0,
        "closed tickets' texts are gone"
    );
    assert!(
        rows_saying(store, "BLEIBTDA").await > 0,
        "open tickets keep theirs"
    );
    assert!(
        rows_saying(store, "BETRIEBSGEHEIM").await > 0,
        "betrieb keeps its tickets for 90 days"
    );
    assert_eq!(
        scalar(
            store,
            "SELECT COUNT(*) FROM raw_messages WHERE outcome = 'quarantined'"
        )
        .await,
        0
    );
    // The audit says what went, not what it said.
    let purged_lines = scalar(
        store,
        "SELECT COUNT(*) FROM audit WHERE event = 'ticket_purged' AND detail NOT LIKE '%WEGDAMIT%'",
    )
    .await;
    assert_eq!(purged_lines, 10);
    if let Some(path) = store.sqlite_file() {
        store::retention::truncate_wal(store)
            .await
            .expect("checkpoint");
        let bytes = file_bytes(path);
        assert!(
            !contains(&bytes, "WEGDAMIT"),
            "secure_delete overwrote the deleted texts in the file"
        );
        assert!(
            contains(&bytes, "BLEIBTDA"),
            "the search would find a marker"
        );
    }
    // What the reports read is untouched; the counts are the same.
    assert_eq!(figures(store, &cfg, now).await, before);
    let mut after_counts = counts(store).await;
    after_counts.retain(|(state, _, _)| state != "new");
    let mut expected = before_counts.clone();
    expected.retain(|(state, _, _)| state != "new");
    assert_eq!(after_counts, expected);

    // After 60 days the closed tickets of the default queues are anonymised.
    let later = now + days(30);
    let later_figures = figures(store, &cfg, later).await;
    let anon = run(store, &cfg, later, false).await;
    assert_eq!(anon.anonymised, 10);
    assert_eq!(anon.purged.tickets, 0, "their texts went before");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tickets WHERE requester = $1")
        .bind(ANONYMOUS)
        .fetch_one(store.pool())
        .await
        .expect("anonymised");
    assert_eq!(n, 10);
    assert_eq!(
        scalar(
            store,
            "SELECT COUNT(*) FROM tickets WHERE anonymised_at IS NOT NULL AND subject <> ''"
        )
        .await,
        0
    );
    assert_eq!(figures(store, &cfg, later).await, later_figures);
    if let Some(path) = store.sqlite_file() {
        store::retention::truncate_wal(store)
            .await
            .expect("checkpoint");
        let bytes = file_bytes(path);
        assert!(!contains(&bytes, "person000@buerger.example"));
        assert!(
            contains(&bytes, "person001@buerger.example"),
            "open tickets keep theirs"
        );
        // VACUUM gives the space back; nothing comes back with it.
        store::retention::vacuum(store).await.expect("vacuum");
        assert!(!contains(&file_bytes(path), "WEGDAMIT"));
    }

    // betrieb's own period: 90 days.
    let much_later = now + days(50);
    let r = run(store, &cfg, much_later, false).await;
    let betrieb_report = r
        .queues
        .iter()
        .find(|q| q.queue.as_deref() == Some("betrieb"))
        .expect("betrieb's own line");
    assert_eq!(betrieb_report.purged.tickets, 1);
    assert_eq!(rows_saying(store, "BETRIEBSGEHEIM").await, 0);
}
both!(retention_deletes_what_is_due_and_keeps_the_figures);

/// A ticket staff reopen and close again after its texts went is due again: what it got
/// meanwhile goes too.
async fn a_ticket_closed_again_is_due_again(db: &TestDb) {
    let cfg = config().load();
    let store = &db.store;
    let ing = Ingestor::new(store, &cfg);
    let n = new_number(
        &ing.ingest(&request(1, "ERSTERTEXT"), SourceKey::file("again/1"))
            .await
            .expect("ingest"),
    );
    close(store, &n).await;
    all_sent(store).await;
    let now = Timestamp::now() + days(40);
    assert_eq!(run(store, &cfg, now, false).await.purged.tickets, 1);
    assert_eq!(
        run(store, &cfg, now, false).await.purged.tickets,
        0,
        "done once"
    );
    take(store, &n).await;
    crate::support::tickets::add_note(store, &n, "jan", "ZWEITERTEXT").await;
    close(store, &n).await;
    all_sent(store).await;
    assert_eq!(
        run(store, &cfg, now, true).await.purged.tickets,
        0,
        "closed just now"
    );
    let later = now + days(40);
    assert_eq!(run(store, &cfg, later, false).await.purged.tickets, 1);
    assert_eq!(rows_saying(store, "ZWEITERTEXT").await, 0);
}
both!(a_ticket_closed_again_is_due_again);

/// The daily run is claimed once per day however many instances (or restarts) ask.
async fn the_daily_run_is_claimed_once_a_day(db: &TestDb) {
    let store = &db.store;
    let tz = poststelle::time::berlin().expect("tz");
    let s = poststelle::config::RetentionSettings::default();
    let t: Timestamp = "2026-12-03T05:00:00Z".parse().expect("instant");
    let due = retention::last_due(t, &s, &tz).as_microsecond();
    let claim = |now: Timestamp, due: i64| {
        store::retention::claim_daily(store, retention::JOB, due, now.as_microsecond())
    };
    assert!(claim(t, due).await.expect("claim"));
    assert!(
        !claim(t + 1.hour(), due).await.expect("claim"),
        "once a day"
    );
    let next_day = t + 24.hours();
    let due2 = retention::last_due(next_day, &s, &tz).as_microsecond();
    assert!(due2 > due);
    assert!(
        claim(next_day, due2).await.expect("claim"),
        "the next day again"
    );
}
both!(the_daily_run_is_claimed_once_a_day);

/// The queries of a run read the partial indexes of what is due, not every ticket (SQLite's
/// plan; PostgreSQL's planner decides by statistics), also where an index of the queue would
/// offer itself (`tickets_queue`, migration 0022). The statements are the store's own
/// (`store::hot`).
#[tokio::test]
async fn due_tickets_are_read_from_their_index() {
    let db = TestDb::sqlite().await;
    for (name, index) in [
        (
            "retention: tickets of a queue due for purging",
            "tickets_to_purge",
        ),
        (
            "retention: tickets of a queue due for anonymising",
            "tickets_to_anonymise",
        ),
    ] {
        let q = poststelle::store::hot::hot_queries(db.store.backend())
            .into_iter()
            .find(|q| q.name == name)
            .expect("listed");
        let plan = db.store.explain(&q).await.expect("plan");
        assert!(plan.iter().any(|l| l.contains(index)), "{plan:?}");
        assert!(
            !plan.iter().any(|l| l.contains("TEMP B-TREE")),
            "read in the index's order: {plan:?}"
        );
    }
    db.finish().await;
}

/// Periods that contradict each other, or the reopen window, are configuration errors with
/// the line and the fix.
#[test]
fn contradicting_periods_are_refused() {
    let shipped = TempConfig::shipped_text();
    let load = |extra: &str| {
        let t = TempConfig::new(&format!("{shipped}\n{extra}"), &[]);
        Config::load(Some(&t.path())).err().map(|d| d.to_string())
    };
    let short = load("[retention]\ndays = 7\n").expect("shorter than reopen_days");
    assert!(short.contains("ingest.reopen_days = 14"), "{short}");
    let order = load("[retention]\ndays = 60\nanonymise_after_days = 30\n").expect("order");
    assert!(order.contains("anonymising after 30 days"), "{order}");
    let forever = load("[retention]\nanonymise_after_days = 30\n").expect("texts for ever");
    assert!(forever.contains("for ever"), "{forever}");
    let time = load("[retention]\nrun_at = \"25:00\"\n").expect("time");
    assert!(time.contains("run_at"), "{time}");
    let neg = load("[retention]\nsent_mail_days = -1\n").expect("negative");
    assert!(
        neg.contains("sent_mail_days = -1 is no number of days"),
        "{neg}"
    );
    assert_eq!(
        load("[retention]\ndays = 365\nanonymise_after_days = 730\n"),
        None
    );
}

/// `poststelle retention run --dry-run --json` and `retention status` on a store.
#[test]
fn the_command_line_counts_runs_and_reports() {
    let t = config();
    let data = tempfile::tempdir().expect("dir");
    let base = |args: &[&str]| {
        let mut c = poststelle();
        c.arg("--config")
            .arg(t.path())
            .arg("--data-dir")
            .arg(data.path())
            .args(args);
        c
    };
    let mails = tempfile::tempdir().expect("mails");
    std::fs::write(mails.path().join("1.eml"), request(1, "CLITEXT")).expect("mail");
    crate::support::bin::stdout_of(&mut base(&["ingest", &mails.path().display().to_string()]));
    let list = crate::support::bin::stdout_of(&mut base(&["tickets", "list", "--json"]));
    let number = serde_json::from_str::<serde_json::Value>(list.lines().next().expect("ticket"))
        .expect("json")["number"]
        .as_str()
        .expect("number")
        .to_string();
    crate::support::bin::stdout_of(&mut base(&[
        "tickets", "set", &number, "--status", "closed",
    ]));
    let at = (Timestamp::now() + days(31)).to_string();
    let dry = crate::support::bin::stdout_of(&mut base(&[
        "retention",
        "run",
        "--dry-run",
        "--json",
        "--now",
        &at,
    ]));
    let v: serde_json::Value = serde_json::from_str(&dry).expect("json");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["purged"]["tickets"], 1);
    let human = crate::support::bin::stdout_of(&mut base(&["retention", "run", "--now", &at]));
    assert!(human.contains("(the others)"), "{human}");
    let again =
        crate::support::bin::stdout_of(&mut base(&["retention", "run", "--json", "--now", &at]));
    let v: serde_json::Value = serde_json::from_str(&again).expect("json");
    assert_eq!(v["purged"]["tickets"], 0, "nothing left to do");
    let status = crate::support::bin::stdout_of(&mut base(&["retention", "status"]));
    assert!(status.contains("30 days"), "{status}");
    // A read-only command on a data directory without a store creates none.
    let empty = tempfile::tempdir().expect("dir");
    let out = poststelle()
        .arg("--config")
        .arg(t.path())
        .arg("--data-dir")
        .arg(empty.path().join("none"))
        .args(["retention", "run", "--dry-run"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(!empty.path().join("none").exists());
}
