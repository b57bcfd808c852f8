//! Commands at the top of a staff answer (issue 17, item 3), in English and German: each does
//! what the same option of `tickets set` does, audited with the staff member as actor; an
//! unknown or malformed one refuses the whole mail and tells its sender the valid ones; a
//! mail of commands only relays nothing; a forged sender's commands do nothing.
use jiff::Timestamp;
use poststelle::config::Config;
use poststelle::reply_token::{Keys, Pattern};
use poststelle::store::Store;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops;

use crate::support::bin;
use crate::support::config::{REPLY_KEY, TempConfig};
use crate::support::db::{TestDb, both};
use crate::support::mail::mail;
use crate::support::tickets::new_number;

const STAFF: &str = "servicedesk@kommunal-it.example";
const MEMBER: &str = "jan.berger@kommunal-it.example";
const BETRIEB: &str = "betrieb@kommunal-it.example";
const CITIZEN: &str = "erika@example.org";

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// Wednesday 10:00 in Hessen: the request; the answers come at 10:30.
fn received() -> Timestamp {
    ts("2026-11-25T10:00:00+01:00")
}
fn answered() -> Timestamp {
    ts("2026-11-25T10:30:00+01:00")
}

/// The shipped configuration with the support levels support → betrieb → hersteller
/// (`escalate_to`) and a member of support.
fn levels_text() -> String {
    let t = TempConfig::staff_desk(&[MEMBER], "");
    let text = std::fs::read_to_string(t.path()).expect("config");
    text.replacen(
        "escalation = \"servicedesk-leitung@kommunal-it.example\"\n",
        "escalate_to = \"betrieb\"\n",
        1,
    )
    .replacen(
        "escalation = \"rufbereitschaft@kommunal-it.example\"\n",
        "escalate_to = \"hersteller\"\n",
        1,
    ) + "\n[[queue]]\nname = \"hersteller\"\ndescription = \"3rd level: the vendor\"\n\
         staff = \"support@hersteller.example\"\n"
}

fn desk() -> (TempConfig, Config) {
    let t = TempConfig::new(&levels_text(), &[]);
    t.write("reply.key", REPLY_KEY);
    let cfg = t.load();
    (t, cfg)
}

fn token_address(number: &str) -> String {
    Pattern::plus_addressing(STAFF)
        .expect("pattern")
        .address(&Keys::new(REPLY_KEY.to_vec(), Vec::new()), number)
}

async fn file(store: &Store, cfg: &Config, at: Timestamp, raw: &[u8], key: &str) -> Outcome {
    let mut ing = Ingestor::new(store, cfg);
    ing.clock = Some(at);
    ing.ingest(raw, SourceKey::file(key)).await.expect("ingest")
}

async fn open(store: &Store, cfg: &Config, id: &str) -> String {
    let request = mail(
        &[
            "From: Erika Mustermann <erika@example.org>",
            &format!("To: {STAFF}"),
            "Subject: Drucker defekt",
            &format!("Message-ID: <{id}@example.org>"),
        ],
        "Guten Tag,\r\nder Drucker im Buergerbuero druckt nicht.\r\n",
    );
    new_number(&file(store, cfg, received(), &request, id).await)
}

/// An answer from `from` to the ticket's reply address (or `to`), with the staff copy quoted.
fn answer(from: &str, to: &str, number: &str, id: &str, body: &str) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            &format!("To: {to}"),
            &format!("Subject: Re: [Ticket#{number}] Neu (support, Klasse 3): Drucker defekt"),
            &format!("Message-ID: <{id}@kommunal-it.example>"),
        ],
        &format!("{body}\r\nAm 25.11.2026 um 10:00 schrieb Servicedesk:\r\n> Neuer Vorgang\r\n"),
    )
}

async fn by_token(
    store: &Store,
    cfg: &Config,
    from: &str,
    number: &str,
    id: &str,
    body: &str,
) -> Outcome {
    let raw = answer(from, &token_address(number), number, id, body);
    file(store, cfg, answered(), &raw, id).await
}

#[derive(Debug, PartialEq)]
struct Fields {
    state: String,
    severity: i64,
    queue: String,
    assignee: Option<String>,
    pending_until: Option<i64>,
}

async fn fields(store: &Store, number: &str) -> Fields {
    let (state, severity, queue, assignee, pending_until): (
        String,
        i64,
        String,
        Option<String>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT state, severity, queue, assignee, pending_until FROM tickets WHERE number = $1",
    )
    .bind(number)
    .fetch_one(store.pool())
    .await
    .expect("ticket");
    Fields {
        state,
        severity,
        queue,
        assignee,
        pending_until,
    }
}

/// The relayed answers' texts of a ticket.
async fn relayed(store: &Store, number: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT o.body_text FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE t.number = $1 AND o.kind = 'staff_answer' ORDER BY o.id",
    )
    .bind(number)
    .fetch_all(store.pool())
    .await
    .expect("outbox")
}

/// The ticket's audit lines as (actor, event, whether a raw message is named).
async fn audit(store: &Store, number: &str) -> Vec<(String, String, bool)> {
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT a.actor, a.event, a.raw_message_id FROM audit a JOIN tickets t ON t.id = a.ticket_id \
         WHERE t.number = $1 ORDER BY a.id",
    )
    .bind(number)
    .fetch_all(store.pool())
    .await
    .expect("audit");
    rows.into_iter()
        .map(|(a, e, r)| (a, e, r.is_some()))
        .collect()
}

fn has(lines: &[(String, String, bool)], actor: &str, event: &str) -> bool {
    lines
        .iter()
        .any(|(a, e, raw)| a == actor && e == event && *raw)
}

both!(each_command_by_mail_in_english_and_german);
async fn each_command_by_mail_in_english_and_german(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    // English: state, class, assignee and the answer relayed without the commands.
    let en = open(s, &cfg, "en").await;
    let o = by_token(
        s,
        &cfg,
        MEMBER,
        &en,
        "en1",
        "#status pending\r\n#class 2\r\n#assign jan.berger@kommunal-it.example\r\n\r\nGuten Tag,\r\nwir bestellen Toner.\r\n",
    )
    .await;
    assert_eq!(o, Outcome::StaffAnswer { number: en.clone() });
    let f = fields(s, &en).await;
    assert_eq!((f.state.as_str(), f.severity), ("pending", 2));
    assert_eq!(f.assignee.as_deref(), Some(MEMBER));
    assert_eq!(
        relayed(s, &en).await,
        vec!["Guten Tag,\nwir bestellen Toner.".to_string()]
    );
    let lines = audit(s, &en).await;
    for event in ["state_changed", "severity_changed", "assignee_changed"] {
        assert!(has(&lines, MEMBER, event), "{event} by {MEMBER}: {lines:?}");
    }
    // Then: queue, pending until (RFC 3339 and Berlin time), resolved.
    by_token(
        s,
        &cfg,
        MEMBER,
        &en,
        "en2",
        "#pending until 2026-12-16 19:00\r\n",
    )
    .await;
    assert_eq!(
        fields(s, &en).await.pending_until,
        Some(ts("2026-12-16T18:00:00Z").as_microsecond())
    );
    by_token(
        s,
        &cfg,
        MEMBER,
        &en,
        "en3",
        "#status resolved\r\n#queue betrieb\r\n",
    )
    .await;
    let f = fields(s, &en).await;
    assert_eq!(
        (f.state.as_str(), f.queue.as_str()),
        ("resolved", "betrieb")
    );
    assert_eq!(f.pending_until, None, "a resolved ticket waits for nothing");
    assert!(has(&audit(s, &en).await, MEMBER, "queue_changed"));

    // German, upper and lower case alike.
    let de = open(s, &cfg, "de").await;
    by_token(
        s,
        &cfg,
        MEMBER,
        &de,
        "de1",
        "#Status Wartend\r\n#Klasse 1\r\n#zuweisen <anna.schmidt@kommunal-it.example>\r\nTeile bestellt.\r\n",
    )
    .await;
    let f = fields(s, &de).await;
    assert_eq!((f.state.as_str(), f.severity), ("pending", 1));
    assert_eq!(
        f.assignee.as_deref(),
        Some("anna.schmidt@kommunal-it.example")
    );
    by_token(
        s,
        &cfg,
        MEMBER,
        &de,
        "de2",
        "#wartend bis 16.12.2026 19:00\r\n",
    )
    .await;
    assert_eq!(
        fields(s, &de).await.pending_until,
        Some(ts("2026-12-16T18:00:00Z").as_microsecond())
    );
    by_token(s, &cfg, MEMBER, &de, "de3", "#status offen\r\n").await;
    assert_eq!(fields(s, &de).await.state, "open");
    by_token(s, &cfg, MEMBER, &de, "de4", "#status erledigt\r\n").await;
    assert_eq!(fields(s, &de).await.state, "resolved");
    by_token(
        s,
        &cfg,
        MEMBER,
        &de,
        "de5",
        "#status geschlossen\r\n#queue betrieb\r\n",
    )
    .await;
    assert_eq!(fields(s, &de).await.queue, "betrieb");
    assert_eq!(
        relayed(s, &de).await,
        vec!["Teile bestellt.".to_string()],
        "commands-only answers relay nothing"
    );
}

both!(a_note_is_kept_and_not_relayed);
async fn a_note_is_kept_and_not_relayed(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "n").await;
    let o = by_token(
        s,
        &cfg,
        MEMBER,
        &number,
        "n1",
        "#note\r\nRueckruf bei Frau Mustermann, Drucker ist Leasing.\r\n",
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    by_token(
        s,
        &cfg,
        MEMBER,
        &number,
        "n2",
        "#class 2\r\n#notiz Techniker kommt morgen\r\num 9 Uhr.\r\n",
    )
    .await;
    assert!(
        relayed(s, &number).await.is_empty(),
        "a note is never relayed"
    );
    let v = ops::show_ticket(s, &number).await.expect("show");
    let notes: Vec<(&str, &str)> = v
        .articles
        .iter()
        .filter(|a| a.kind == "note")
        .map(|a| (a.sender.as_deref().unwrap_or(""), a.body.as_str()))
        .collect();
    assert_eq!(
        notes,
        vec![
            (MEMBER, "Rueckruf bei Frau Mustermann, Drucker ist Leasing."),
            (MEMBER, "Techniker kommt morgen\num 9 Uhr."),
        ]
    );
    assert_eq!(v.summary.severity, 2);
    assert!(has(&audit(s, &number).await, MEMBER, "note_added"));
}

both!(levels_step_along_escalate_to);
async fn levels_step_along_escalate_to(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "l").await;
    assert_eq!(fields(s, &number).await.queue, "support");
    // A jump from level 1 to 3 is refused: levels are handed on one at a time.
    let o = by_token(s, &cfg, MEMBER, &number, "l0", "#level 3\r\n").await;
    assert!(
        matches!(o, Outcome::Refused { ref reason, .. } if reason.contains("one at a time")),
        "{o:?}"
    );
    assert_eq!(fields(s, &number).await.queue, "support");
    by_token(s, &cfg, MEMBER, &number, "l1", "#level 2\r\n").await;
    assert_eq!(fields(s, &number).await.queue, "betrieb");
    // Level 2's staff hands it on to level 3; support's member is no longer staff of it.
    let o = by_token(s, &cfg, MEMBER, &number, "l2", "#stufe 3\r\n").await;
    assert!(matches!(o, Outcome::Refused { .. }), "{o:?}");
    by_token(s, &cfg, BETRIEB, &number, "l3", "#stufe 3\r\n").await;
    assert_eq!(fields(s, &number).await.queue, "hersteller");
    let o = by_token(
        s,
        &cfg,
        "support@hersteller.example",
        &number,
        "l4",
        "#level 1\r\n",
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(
        fields(s, &number).await.queue,
        "support",
        "back down the chain"
    );
    assert!(has(&audit(s, &number).await, BETRIEB, "queue_changed"));
}

both!(an_unknown_or_malformed_command_refuses_the_whole_mail);
async fn an_unknown_or_malformed_command_refuses_the_whole_mail(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "u").await;
    let before = fields(s, &number).await;
    for (id, body, line) in [
        (
            "u1",
            "#status erledigt\r\n#prio hoch\r\nErledigt.\r\n",
            "#prio hoch",
        ),
        ("u2", "#klasse 7\r\nErledigt.\r\n", "#klasse 7"),
        (
            "u3",
            "#queue nirgendwo\r\nErledigt.\r\n",
            "#queue nirgendwo",
        ),
        ("u4", "#status fertig\r\nErledigt.\r\n", "#status fertig"),
        ("u5", "#wartend bis morgen\r\n", "#wartend bis morgen"),
        ("u6", "#assign jemand\r\n", "#assign jemand"),
    ] {
        let o = by_token(s, &cfg, MEMBER, &number, id, body).await;
        match &o {
            Outcome::Refused { reason, number: n } => {
                assert!(reason.contains(line), "{reason}");
                assert_eq!(n.as_deref(), Some(number.as_str()));
            }
            other => panic!("{id}: expected a refusal, got {other:?}"),
        }
        assert_eq!(fields(s, &number).await, before, "{id}: nothing applied");
        assert!(
            relayed(s, &number).await.is_empty(),
            "{id}: nothing relayed"
        );
    }
    // Recorded as refused with the reason, and the sender told the valid commands.
    let detail: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit WHERE event = 'staff_answer_refused' ORDER BY id",
    )
    .fetch_all(s.pool())
    .await
    .expect("audit");
    let first: serde_json::Value = serde_json::from_str(&detail[0]).expect("json");
    assert_eq!(first["why"], "bad_command");
    assert_eq!(first["command"], "#prio hoch");
    let raw_outcomes: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages WHERE outcome = 'refused'")
            .fetch_one(s.pool())
            .await
            .expect("raw");
    assert_eq!(raw_outcomes, 6);
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body_text FROM outbox WHERE kind = 'auto_reply' AND recipient = $1 ORDER BY id",
    )
    .bind(MEMBER)
    .fetch_all(s.pool())
    .await
    .expect("outbox");
    assert!(!bodies.is_empty(), "the sender is told");
    let b = &bodies[0];
    for valid in [
        "#status offen|wartend|erledigt|geschlossen",
        "#klasse",
        "#stufe",
        "#zuweisen",
        "#wartend bis",
        "#notiz",
        "#prio hoch",
    ] {
        assert!(b.contains(valid), "{valid} in {b}");
    }
}

both!(commands_of_a_forged_sender_do_nothing);
async fn commands_of_a_forged_sender_do_nothing(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "x").await;
    let before = fields(s, &number).await;
    // A member without the reply address.
    let raw = answer(
        MEMBER,
        STAFF,
        &number,
        "x1",
        "#status erledigt\r\n#klasse 1\r\n",
    );
    let o = file(s, &cfg, answered(), &raw, "x1").await;
    assert!(matches!(o, Outcome::Refused { .. }), "{o:?}");
    // The requester herself, with the token (from a forwarded copy).
    let o = by_token(
        s,
        &cfg,
        CITIZEN,
        &number,
        "x2",
        "#status closed\r\n#queue betrieb\r\n",
    )
    .await;
    assert!(matches!(o, Outcome::Refused { .. }), "{o:?}");
    // A tampered token.
    let mut to = token_address(&number);
    to = to.replacen(".", ".0", 1);
    let raw = answer(MEMBER, &to, &number, "x3", "#status closed\r\n");
    assert!(matches!(
        file(s, &cfg, answered(), &raw, "x3").await,
        Outcome::Refused { .. }
    ));
    assert_eq!(fields(s, &number).await, before);
    let lines = audit(s, &number).await;
    assert!(
        !lines.iter().any(|(_, e, _)| e.ends_with("_changed")),
        "{lines:?}"
    );
}

/// `tickets set --level --assign --pending-until` and `tickets reply` on the binary: the same
/// operations as the commands by mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_does_the_same() {
    let t = TempConfig::new(&levels_text(), &[]);
    t.write("reply.key", REPLY_KEY);
    let data = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        bin::stdout_of(
            bin::poststelle()
                .arg("--config")
                .arg(t.path())
                .arg("--data-dir")
                .arg(data.path())
                .args(args),
        )
    };
    let request = data.path().join("request.eml");
    std::fs::write(
        &request,
        mail(
            &[
                "From: Erika Mustermann <erika@example.org>",
                &format!("To: {STAFF}"),
                "Subject: Drucker defekt",
                "Message-ID: <cli@example.org>",
            ],
            "Der Drucker druckt nicht.\r\n",
        ),
    )
    .expect("write");
    run(&["ingest", request.to_str().expect("utf8")]);
    let list = run(&["tickets", "list", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(list.lines().next().expect("a ticket")).expect("json");
    let number = first["number"].as_str().expect("number").to_string();
    let out = run(&[
        "tickets",
        "set",
        &number,
        "--level",
        "2",
        "--assign",
        MEMBER,
        "--pending-until",
        "16.12.2026 19:00",
        "--actor",
        "anna",
    ]);
    assert!(out.contains("queue support → betrieb"), "{out}");
    assert!(
        out.contains(&format!("assigned nobody → {MEMBER}")),
        "{out}"
    );
    assert!(
        out.contains("pending until 2026-12-16 19:00:00 CET"),
        "{out}"
    );
    assert!(out.contains("state new → pending"), "{out}");
    // A jump of two levels is refused with the reason.
    let jump = |args: &[&str]| {
        bin::poststelle()
            .arg("--config")
            .arg(t.path())
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let up = jump(&["tickets", "set", &number, "--level", "3"]);
    assert!(up.status.success(), "level 3 from 2 is the next");
    let down = jump(&["tickets", "set", &number, "--level", "1"]);
    assert!(down.status.success(), "back down the chain");
    let up2 = jump(&["tickets", "set", &number, "--level", "3"]);
    assert!(!up2.status.success(), "a jump of two levels is refused");
    let err = String::from_utf8_lossy(&up2.stderr);
    assert!(err.contains("one at a time"), "{err}");
    let show: serde_json::Value =
        serde_json::from_str(&run(&["tickets", "show", &number, "--json"])).expect("json");
    assert_eq!(show["assignee"], MEMBER);
    assert_eq!(show["pending_until"], "2026-12-16T18:00:00Z");
    let text = run(&["tickets", "show", &number]);
    assert!(text.contains(&format!("Assigned:  {MEMBER}")), "{text}");
    assert!(
        text.contains("Pending until: 2026-12-16 19:00:00 CET"),
        "{text}"
    );
    let events: Vec<(&str, &str)> = show["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap_or(""),
                a["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for e in [
        "queue_changed",
        "assignee_changed",
        "pending_until_set",
        "state_changed",
    ] {
        assert!(events.contains(&("anna", e)), "{e}: {events:?}");
    }

    // `tickets reply`: a non-staff actor is refused before anything is filed.
    let answer = data.path().join("answer.txt");
    std::fs::write(
        &answer,
        "#status erledigt\n#zuweisen anna.schmidt@kommunal-it.example\n\nDer Toner ist bestellt.\n",
    )
    .expect("write");
    let file = answer.to_str().expect("utf8");
    let not_staff = jump(&[
        "tickets", "reply", &number, "--file", file, "--actor", CITIZEN,
    ]);
    assert!(!not_staff.status.success());
    assert!(String::from_utf8_lossy(&not_staff.stderr).contains("is not staff of queue"));
    let out = run(&[
        "tickets", "reply", &number, "--file", file, "--actor", MEMBER,
    ]);
    assert!(out.contains("state resolved"), "{out}");
    let show: serde_json::Value =
        serde_json::from_str(&run(&["tickets", "show", &number, "--json"])).expect("json");
    let relayed: Vec<&serde_json::Value> = show["outbox"]
        .as_array()
        .expect("outbox")
        .iter()
        .filter(|r| r["kind"] == "staff_answer")
        .collect();
    assert_eq!(relayed.len(), 1, "{show}");
    assert_eq!(relayed[0]["recipient"], CITIZEN);
    let events: Vec<(&str, &str)> = show["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap_or(""),
                a["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for e in ["staff_answer_relayed", "state_changed", "assignee_changed"] {
        assert!(events.contains(&(MEMBER, e)), "{e}: {events:?}");
    }
    let body = &show["articles"]
        .as_array()
        .expect("articles")
        .iter()
        // The relayed answer ("Re: …"), not the status notice that followed it.
        .rfind(|a| {
            a["kind"] == "outbound" && a["subject"].as_str().is_some_and(|s| s.starts_with("Re: "))
        })
        .expect("the relayed article")["body"];
    assert_eq!(body, "Der Toner ist bestellt.");
    // The default actor is the queue's staff address; commands only relay nothing.
    std::fs::write(&answer, "#status offen\n").expect("write");
    let out = run(&["tickets", "reply", &number, "--file", file]);
    assert!(out.contains("state open"), "{out}");
}

both!(an_empty_answer_relays_nothing);
async fn an_empty_answer_relays_nothing(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "e").await;
    // Only the quoted copy and a signature: the requester would get a mail without content.
    let o = by_token(s, &cfg, MEMBER, &number, "e1", "\r\n-- \r\nJan Berger\r\n").await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert!(relayed(s, &number).await.is_empty());
    assert_eq!(fields(s, &number).await.state, "new");
}
