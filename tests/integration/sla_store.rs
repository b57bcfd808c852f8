//! Reaction clocks on tickets, first reactions and escalations, on SQLite and PostgreSQL, with
//! a controlled clock.
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use poststelle::jobs::escalation::{self, Clock, NoticeKind};
use poststelle::sla::{Class, deadline};
use poststelle::store::Store;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::{State, ops};

use crate::support::bin;
use crate::support::config::{DEFAULT, TempConfig};
use crate::support::db::{TestDb, both, scalar_text};
use crate::support::mail::mail;
use crate::support::tickets::{add_note, file, new_number, set, set_severity, take};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

const ESCALATION: &str = "servicedesk-leitung@kommunal-it.example";
const STAFF: &str = "servicedesk@kommunal-it.example";

/// Files a request into the `support` queue (calendar `hessen`) as if it arrived at `at`.
async fn file_at(store: &Store, at: Timestamp, id: &str, from: &str, subject: &str) -> Outcome {
    let mut ing = Ingestor::new(store, &DEFAULT);
    ing.clock = Some(at);
    file(&ing, from, subject, id, id).await
}

async fn open_at(store: &Store, at: Timestamp, id: &str) -> String {
    new_number(&file_at(store, at, id, "erika@example.org", "Drucker defekt").await)
}

/// A ticket's reaction clock, as stored.
#[derive(sqlx::FromRow)]
struct ClockRow {
    severity: i64,
    received_at: i64,
    due_at: i64,
    warn_at: i64,
    reacted_at: Option<i64>,
    met: Option<i64>,
    service_used: Option<i64>,
    reacted_by: Option<String>,
}

struct Clocks {
    severity: i64,
    received: Timestamp,
    due: Timestamp,
    warn: Timestamp,
    reacted: Option<Timestamp>,
    met: Option<i64>,
    used: Option<SignedDuration>,
    by: Option<String>,
}

async fn clocks(store: &Store, number: &str) -> Clocks {
    let r: ClockRow = sqlx::query_as(
        "SELECT s.* FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id WHERE t.number = $1",
    )
    .bind(number)
    .fetch_one(store.pool())
    .await
    .expect("ticket_sla row");
    let t = |v: i64| Timestamp::from_microsecond(v).expect("instant");
    Clocks {
        severity: r.severity,
        received: t(r.received_at),
        due: t(r.due_at),
        warn: t(r.warn_at),
        reacted: r.reacted_at.map(t),
        met: r.met,
        used: r.service_used.map(SignedDuration::from_micros),
        by: r.reacted_by,
    }
}

async fn escalations(store: &Store) -> Vec<(String, String)> {
    sqlx::query_as("SELECT recipient, template FROM outbox WHERE kind = 'escalation' ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("rows")
}

fn hessen() -> Arc<poststelle::sla::Calendar> {
    DEFAULT
        .settings
        .sla
        .calendars
        .get("hessen")
        .cloned()
        .expect("hessen")
}

both!(the_clock_starts_with_the_ticket_and_follows_its_class);
async fn the_clock_starts_with_the_ticket_and_follows_its_class(db: &TestDb) {
    let received = ts("2026-11-26T17:30:00+01:00");
    let number = open_at(&db.store, received, "c1@example.org").await;
    let c = clocks(&db.store, &number).await;
    let class = Class::from_severity(c.severity).expect("class");
    assert_eq!(c.received, received);
    assert_eq!(
        c.due,
        deadline(&hessen(), class, received).expect("deadline")
    );
    assert!(c.reacted.is_none());

    // Class 1 from the original receipt: MISSION §3's second example.
    set_severity(&db.store, &number, 1).await;
    let c = clocks(&db.store, &number).await;
    assert_eq!(c.severity, 1);
    assert_eq!(c.received, received);
    assert_eq!(c.due, ts("2026-11-27T08:30:00+01:00"));
    assert_eq!(c.warn, ts("2026-11-27T08:00:00+01:00"));
    // A change of class is no reaction.
    assert!(c.reacted.is_none());
}

both!(the_first_staff_reaction_is_recorded_once);
async fn the_first_staff_reaction_is_recorded_once(db: &TestDb) {
    // Received Wednesday 10:00; the staff address answers the copy by mail at 10:30 (to its
    // reply address, as every answer by mail must be: issue 17).
    let received = ts("2026-11-25T10:00:00+01:00");
    let number = open_at(&db.store, received, "r1@example.org").await;
    let answered = ts("2026-11-25T10:30:00+01:00");
    let desk = TempConfig::staff_desk(&[], "");
    let cfg = desk.load();
    let mut ing = Ingestor::new(&db.store, &cfg);
    ing.clock = Some(answered);
    let to = cfg.settings.reply.address(&number).expect("a reply key");
    let answer = mail(
        &[
            &format!("From: {STAFF}"),
            &format!("To: {to}"),
            &format!("Subject: Re: [Ticket#{number}] Drucker defekt"),
            "Message-ID: <r2@example.org>",
        ],
        "Wir kuemmern uns.\r\n",
    );
    let relayed = ing
        .ingest(&answer, SourceKey::file("r2"))
        .await
        .expect("ingest");
    assert!(
        matches!(relayed, Outcome::StaffAnswer { .. }),
        "{relayed:?}"
    );
    let c = clocks(&db.store, &number).await;
    assert_eq!(c.reacted, Some(answered));
    assert_eq!(c.met, Some(1));
    assert_eq!(c.used, Some(SignedDuration::from_mins(30)));
    assert_eq!(c.by.as_deref(), Some(STAFF));
    let shown = ops::show_ticket(&db.store, &number)
        .await
        .expect("show")
        .sla
        .expect("clock");
    assert_eq!(shown.received, received);
    assert_eq!(shown.reacted, Some(answered));
    assert_eq!(shown.met, Some(true));
    assert_eq!(shown.service_used_minutes, Some(30));

    // A later note is no first reaction.
    add_note(&db.store, &number, "jan", "Techniker informiert").await;
    assert_eq!(clocks(&db.store, &number).await.reacted, Some(answered));

    // The requester writing again is no reaction either.
    // (Received in January: `tickets set` acts at the real now, long after its deadline.)
    let january = ts("2026-01-05T10:00:00+01:00");
    let other = open_at(&db.store, january, "r3@example.org").await;
    file_at(
        &db.store,
        january + SignedDuration::from_mins(5),
        "r4@example.org",
        "erika@example.org",
        &format!("Re: [Ticket#{other}] Drucker defekt"),
    )
    .await;
    assert!(clocks(&db.store, &other).await.reacted.is_none());

    // A state change through `tickets set` is one; long after the deadline it is a breach.
    set(
        &db.store,
        &other,
        ops::Change {
            state: Some(State::Open),
            actor: "jan",
            ..Default::default()
        },
    )
    .await;
    let c = clocks(&db.store, &other).await;
    assert!(c.reacted.is_some());
    assert_eq!(c.met, Some(0));
    assert_eq!(c.by.as_deref(), Some("jan"));
    assert!(c.used.expect("used") > SignedDuration::from_hours(16));
}

both!(each_notice_is_written_exactly_once);
async fn each_notice_is_written_exactly_once(db: &TestDb) {
    let received = ts("2026-11-25T10:00:00+01:00");
    let number = open_at(&db.store, received, "e1@example.org").await;
    set_severity(&db.store, &number, 1).await;
    assert_eq!(
        escalation::next_due(&db.store).await.expect("next"),
        Some(ts("2026-11-25T11:30:00+01:00"))
    );
    let at = |t: &str| escalation::escalate_due(&db.store, &DEFAULT, ts(t));
    assert!(
        at("2026-11-25T11:29:59+01:00")
            .await
            .expect("run")
            .is_empty()
    );
    let warned = at("2026-11-25T11:30:00+01:00").await.expect("run");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].kind, NoticeKind::Warning);
    assert_eq!(warned[0].recipient.as_deref(), Some(ESCALATION));
    assert!(
        at("2026-11-25T11:45:00+01:00")
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(
        escalation::next_due(&db.store).await.expect("next"),
        Some(ts("2026-11-25T12:00:00+01:00"))
    );
    let breached = at("2026-11-25T12:00:00+01:00").await.expect("run");
    assert_eq!(breached.len(), 1);
    assert_eq!(breached[0].kind, NoticeKind::Breach);
    assert!(
        at("2026-11-25T15:00:00+01:00")
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(escalation::next_due(&db.store).await.expect("next"), None);
    assert_eq!(
        escalations(&db.store).await,
        vec![
            (ESCALATION.to_string(), "sla-vorwarnung".to_string()),
            (ESCALATION.to_string(), "sla-fristverletzung".to_string()),
        ]
    );
    let subject = scalar_text(
        &db.store,
        "SELECT subject FROM outbox WHERE template = 'sla-fristverletzung'",
    )
    .await;
    assert!(
        subject.starts_with(&format!(
            "[Ticket#{number}] Reaktionsfrist überschritten (Klasse 1)"
        )),
        "{subject}"
    );

    // A reaction in time stops the clock: no notice for a second ticket.
    let quiet = open_at(&db.store, received, "e2@example.org").await;
    take(&db.store, &quiet).await;
    assert!(
        at("2026-11-30T12:00:00+01:00")
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(escalations(&db.store).await.len(), 2);
}

struct Fixed(Timestamp);

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        self.0
    }
}

both!(a_restart_after_the_deadline_sends_the_breach_once);
async fn a_restart_after_the_deadline_sends_the_breach_once(db: &TestDb) {
    // Opened Friday 13:00 as class 1; the daemon was down from then until Monday.
    let number = open_at(&db.store, ts("2026-11-27T13:00:00+01:00"), "d1@example.org").await;
    set_severity(&db.store, &number, 1).await;
    assert_eq!(
        clocks(&db.store, &number).await.due,
        ts("2026-11-27T15:00:00+01:00")
    );
    let monday = Arc::new(Fixed(ts("2026-11-30T08:00:00+01:00")));
    // The daemon's loop comes up: it writes what fell due while it was away, then sleeps;
    // then it is restarted once more.
    let mut first = true;
    for _ in 0..2 {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let wake = Arc::new(tokio::sync::Notify::new());
        let sender_wake = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(escalation::run(
            db.store.clone(),
            Arc::new(poststelle::config::Config::load(None).expect("config")),
            monday.clone(),
            wake.clone(),
            sender_wake.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        if first {
            // The sender is told as soon as the breach is in the outbox.
            tokio::time::timeout(Duration::from_secs(10), sender_wake.notified())
                .await
                .expect("the sender is woken");
        }
        first = false;
        // A wake-up (a ticket changed) makes it look again: still nothing new.
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the loop stops on shutdown")
            .expect("no panic");
    }
    assert_eq!(
        escalations(&db.store).await,
        vec![(ESCALATION.to_string(), "sla-fristverletzung".to_string())]
    );
}

/// A class-1 incident of the `support` queue, received at `received` and closed at `closed`.
async fn incident(store: &Store, id: &str, received: &str, closed: &str) -> String {
    let number = open_at(store, ts(received), id).await;
    set_severity(store, &number, 1).await;
    // Restoration at a chosen instant (`tickets set` would close it at the real now).
    sqlx::query("UPDATE tickets SET state = 'closed', closed_at = $1 WHERE number = $2")
        .bind(ts(closed).as_microsecond())
        .bind(&number)
        .execute(store.pool())
        .await
        .expect("close");
    number
}

both!(the_report_reads_incidents_maintenance_and_reactions);
async fn the_report_reads_incidents_maintenance_and_reactions(db: &TestDb) {
    incident(
        &db.store,
        "i1@example.org",
        "2026-11-18T10:00:00+01:00",
        "2026-11-18T14:00:00+01:00",
    )
    .await;
    sqlx::query(
        "INSERT INTO sla_maintenance (calendar, starts_at, ends_at, announced_at, description) \
         VALUES ('hessen', $1, $2, $3, 'Update')",
    )
    .bind(ts("2026-11-18T13:00:00+01:00").as_microsecond())
    .bind(ts("2026-11-18T15:00:00+01:00").as_microsecond())
    .bind(ts("2026-11-01T09:00:00+01:00").as_microsecond())
    .execute(db.store.pool())
    .await
    .expect("maintenance");
    let r = poststelle::jobs::report::report(
        &db.store,
        &hessen(),
        jiff::civil::date(2026, 11, 1),
        jiff::civil::date(2026, 11, 30),
        97.5,
        ts("2026-12-01T00:00:00+01:00"),
    )
    .await
    .expect("report");
    assert_eq!(r.total.outage_seconds, 3 * 3600);
    assert_eq!(r.total.maintenance_seconds, 2 * 3600);
    assert_eq!(r.total.service_seconds, 219 * 3600);
    // No reaction to the incident before its deadline passed.
    assert_eq!(r.total.reactions.expect("classes")[0].breached, 1);
    assert_eq!(r.total.reactions.expect("classes")[0].met, 0);
}

#[tokio::test]
async fn sla_report_and_escalate_on_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&Store::default_url(dir.path()))
        .await
        .expect("store");
    incident(
        &store,
        "cli1@example.org",
        "2026-11-18T10:00:00+01:00",
        "2026-11-18T12:30:00+01:00",
    )
    .await;
    // A class-2 ticket from January, never answered: its breach is due (and, not being an
    // outage, it does not count against availability).
    let stale = open_at(&store, ts("2026-01-05T10:00:00+01:00"), "cli2@example.org").await;
    set_severity(&store, &stale, 2).await;
    store.close().await;

    let run = |args: &[&str]| bin::run(dir.path(), args);
    let base = [
        "sla",
        "report",
        "--calendar",
        "hessen",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
    ];
    let text = run(&base);
    assert!(text.contains("target 97.5 %"), "{text}");
    let nov = text
        .lines()
        .find(|l| l.starts_with("2026-11"))
        .expect("month row");
    // 2.5 h outage of 219 h: 98.858 %.
    assert!(
        nov.contains("2.50") && nov.contains("98.858") && nov.contains("met"),
        "{nov}"
    );
    assert!(text.lines().any(|l| l.starts_with("total")), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&run(&[&base[..], &["--json"]].concat())).expect("JSON");
    assert_eq!(json["total"]["outage_seconds"], 9000);
    assert_eq!(json["months"][0]["period"], "2026-11");
    assert_eq!(json["from"], "2026-11-01");

    let csv = run(&[&base[..], &["--csv"]].concat());
    let mut lines = csv.lines();
    assert!(lines.next().expect("header").starts_with(
        "period,service_seconds,maintenance_seconds,outage_seconds,availability_percent"
    ));
    assert!(
        lines
            .next()
            .expect("row")
            .starts_with("2026-11,788400,0,9000,98.858,"),
        "{csv}"
    );

    let first = run(&["sla", "escalate"]);
    assert!(
        first.contains(&format!("{stale} class 2 breach → {ESCALATION}")),
        "{first}"
    );
    assert!(
        first.ends_with("1 notice(s) written to the outbox\n"),
        "{first}"
    );
    let second = run(&["sla", "escalate"]);
    assert_eq!(second, "0 notice(s) written to the outbox\n");
}

both!(notices_go_one_level_up);
async fn notices_go_one_level_up(db: &TestDb) {
    // 1st level (support) escalates to the 2nd level's queue (betrieb), not to an address.
    let text = TempConfig::shipped_text().replacen(
        "escalation = \"servicedesk-leitung@kommunal-it.example\"",
        "escalate_to = \"betrieb\"",
        1,
    );
    let t = TempConfig::new(&text, &[]);
    let cfg = t.load();
    let mut ing = Ingestor::new(&db.store, &cfg);
    ing.clock = Some(ts("2026-11-25T10:00:00+01:00"));
    let raw = mail(
        &[
            "From: erika@example.org",
            "Subject: Drucker defekt",
            "Message-ID: <lvl@example.org>",
        ],
        "Der Drucker druckt nicht.\r\n",
    );
    ing.ingest(&raw, SourceKey::file("lvl"))
        .await
        .expect("ingest");
    let notices = escalation::escalate_due(&db.store, &cfg, ts("2026-12-31T12:00:00+01:00"))
        .await
        .expect("run");
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, NoticeKind::Breach);
    assert_eq!(
        escalations(&db.store).await,
        vec![(
            "betrieb@kommunal-it.example".to_string(),
            "sla-fristverletzung".to_string()
        )]
    );
}

both!(on_call_duty_is_alarmed_once_outside_service_hours);
/// A class-1 ticket outside service hours alarms the queue's on-call duty (Rufbereitschaft)
/// at once and once; inside service hours its staff have it, and a class-1 ticket still
/// unanswered when the desk closes alarms the duty then. Class 2 and a queue without on-call
/// duty alarm no one.
async fn on_call_duty_is_alarmed_once_outside_service_hours(db: &TestDb) {
    const ON_CALL: &str = "rufbereitschaft-support@kommunal-it.example";
    let text = TempConfig::shipped_text().replacen(
        "escalation = \"servicedesk-leitung@kommunal-it.example\"",
        &format!(
            "escalation = \"servicedesk-leitung@kommunal-it.example\"\non_call = \"{ON_CALL}\""
        ),
        1,
    );
    let t = TempConfig::new(&text, &[]);
    let cfg = t.load();
    let at = |t: &str| escalation::escalate_due(&db.store, &cfg, ts(t));
    let on_call = |notices: Vec<escalation::Notice>| -> Vec<(String, Option<String>)> {
        notices
            .into_iter()
            .filter(|n| n.kind == NoticeKind::OnCall)
            .map(|n| (n.ticket, n.recipient))
            .collect()
    };

    // Wednesday 03:00: the hessen calendar is closed.
    let night = open_at(
        &db.store,
        ts("2026-11-25T03:00:00+01:00"),
        "oc1@example.org",
    )
    .await;
    set_severity(&db.store, &night, 1).await;
    let light = open_at(
        &db.store,
        ts("2026-11-25T03:05:00+01:00"),
        "oc2@example.org",
    )
    .await;
    set_severity(&db.store, &light, 2).await;
    assert_eq!(
        on_call(at("2026-11-25T03:10:00+01:00").await.expect("run")),
        vec![(night.clone(), Some(ON_CALL.to_string()))]
    );
    assert!(on_call(at("2026-11-25T03:20:00+01:00").await.expect("run")).is_empty());
    let subject = scalar_text(
        &db.store,
        "SELECT subject FROM outbox WHERE template = 'rufbereitschaft'",
    )
    .await;
    assert!(
        subject.starts_with(&format!(
            "[Ticket#{night}] Rufbereitschaft: Störung der Klasse 1"
        )),
        "{subject}"
    );

    // Wednesday 10:00, open: no alarm while the desk works; at 18:30, closed and still
    // unanswered: the alarm.
    let day = open_at(
        &db.store,
        ts("2026-11-25T10:00:00+01:00"),
        "oc3@example.org",
    )
    .await;
    set_severity(&db.store, &day, 1).await;
    assert!(on_call(at("2026-11-25T10:05:00+01:00").await.expect("run")).is_empty());
    assert_eq!(
        on_call(at("2026-11-25T18:30:00+01:00").await.expect("run")),
        vec![(day.clone(), Some(ON_CALL.to_string()))]
    );
    // Answered in time: no alarm for a class-1 ticket of the next night.
    let answered = open_at(
        &db.store,
        ts("2026-11-26T02:00:00+01:00"),
        "oc4@example.org",
    )
    .await;
    set_severity(&db.store, &answered, 1).await;
    take(&db.store, &answered).await;
    assert!(on_call(at("2026-11-26T02:30:00+01:00").await.expect("run")).is_empty());

    // Without on-call duty configured (the shipped queue): nothing.
    let plain = escalation::escalate_due(&db.store, &DEFAULT, ts("2026-11-27T03:00:00+01:00"))
        .await
        .expect("run");
    assert!(on_call(plain).is_empty());
    let alarms: Vec<(String, String)> = escalations(&db.store)
        .await
        .into_iter()
        .filter(|(_, t)| t == "rufbereitschaft")
        .collect();
    assert_eq!(alarms.len(), 2, "{alarms:?}");
}
