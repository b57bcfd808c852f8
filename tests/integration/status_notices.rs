//! Status notices (issue 17, item 4): taking a ticket tells its requester it is being worked
//! on, and that notice is the SLA's reaction (a note alone is none); later changes of state,
//! class and level tell the requester and the queue's observers; `resolved` asks for an answer
//! if the problem persists, and the answer reopens the ticket; open class-1/2 tickets get an
//! update every N service hours with the latest answer; a pending ticket whose time has come
//! reminds staff — each once per due time.
use jiff::Timestamp;
use poststelle::config::Config;
use poststelle::jobs::status::{Round, run_due};
use poststelle::notify;
use poststelle::reply_token::{Keys, Pattern};
use poststelle::store::Store;
use poststelle::store::buffer::WriteBuffer;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::{State, ops};

use crate::support::config::{REPLY_KEY, TempConfig};
use crate::support::db::{TestDb, both};
use crate::support::mail::mail;
use crate::support::tickets::new_number;

const STAFF: &str = "servicedesk@kommunal-it.example";
const MEMBER: &str = "jan.berger@kommunal-it.example";
const OBSERVER: &str = "auftraggeber@landkreis.example";
const BETRIEB_OBSERVER: &str = "leitstelle@landkreis.example";
const CITIZEN: &str = "erika@example.org";

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// The shipped configuration with the levels support → betrieb, observers on both, the queue
/// clearing without notices, a member of support and the reply key.
fn desk_text(language: &str) -> String {
    TempConfig::shipped_text()
        .replace("language = \"de\"", &format!("language = \"{language}\""))
        .replacen(
            "staff = \"servicedesk@kommunal-it.example\"\nescalation = \"servicedesk-leitung@kommunal-it.example\"\n",
            &format!(
                "staff = \"{STAFF}\"\nescalate_to = \"betrieb\"\nmembers = [\"{MEMBER}\"]\n\
                 observers = [\"{OBSERVER}\", \"{CITIZEN}\", \"servicedesk@kommunal-it.example\"]\n"
            ),
            1,
        )
        .replacen(
            "staff = \"betrieb@kommunal-it.example\"\n",
            &format!("staff = \"betrieb@kommunal-it.example\"\nobservers = [\"{BETRIEB_OBSERVER}\"]\n"),
            1,
        )
        .replacen(
            "staff = \"clearing@ministerium.hessen.example\"\n",
            "staff = \"clearing@ministerium.hessen.example\"\nstatus_notices = false\n",
            1,
        )
        + "\n[reply]\nkey_file = \"reply.key\"\n"
}

/// The shipped rules (monitoring alarms open tickets in betrieb).
fn shipped_rules() -> Vec<(String, String)> {
    ["10-system.toml", "80-severity.toml"]
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(crate::support::repo().join("rules").join(f));
            (f.to_string(), text.expect("shipped rule"))
        })
        .collect()
}

fn desk_in(language: &str) -> (TempConfig, Config) {
    let rules = shipped_rules();
    let rules: Vec<(&str, &str)> = rules
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let t = TempConfig::new(&desk_text(language), &rules);
    t.write("reply.key", REPLY_KEY);
    let cfg = t.load();
    (t, cfg)
}

fn desk() -> (TempConfig, Config) {
    desk_in("de")
}

async fn file(store: &Store, cfg: &Config, at: Timestamp, raw: &[u8], key: &str) -> Outcome {
    let mut ing = Ingestor::new(store, cfg);
    ing.clock = Some(at);
    ing.ingest(raw, SourceKey::file(key)).await.expect("ingest")
}

/// A citizen's request `<{id}@example.org>` about a broken printer, filed at `at`.
async fn open(store: &Store, cfg: &Config, id: &str, at: Timestamp) -> String {
    let request = mail(
        &[
            "From: Erika Mustermann <erika@example.org>",
            &format!("To: {STAFF}"),
            "Subject: Drucker im Bürgerbüro defekt",
            &format!("Message-ID: <{id}@example.org>"),
        ],
        "Guten Tag,\r\nder Drucker druckt nicht.\r\n",
    );
    new_number(&file(store, cfg, at, &request, id).await)
}

/// Applies a staff change at `at`, as `tickets set` does at its now.
async fn change_at(
    store: &Store,
    cfg: &Config,
    number: &str,
    change: ops::Change<'_>,
    at: Timestamp,
) {
    let id = store.ticket_id(number).await.expect("id").expect("ticket");
    let mut tx = store.begin_write().await.expect("tx");
    let mut buf = WriteBuffer::default();
    ops::apply_change(&mut tx, &mut buf, cfg, id, &change, at, None)
        .await
        .expect("change");
    buf.flush(&mut tx, store.backend()).await.expect("flush");
    tx.commit().await.expect("commit");
}

fn take(actor: &str) -> ops::Change<'_> {
    ops::Change {
        state: Some(State::Open),
        actor,
        ..Default::default()
    }
}

/// A staff answer to the ticket's reply address, filed at `at`.
async fn answer(
    store: &Store,
    cfg: &Config,
    number: &str,
    id: &str,
    body: &str,
    at: Timestamp,
) -> Outcome {
    let to = Pattern::plus_addressing(STAFF)
        .expect("pattern")
        .address(&Keys::new(REPLY_KEY.to_vec(), Vec::new()), number);
    let raw = mail(
        &[
            &format!("From: {MEMBER}"),
            &format!("To: {to}"),
            &format!("Subject: Re: [Ticket#{number}] Neu (support, Klasse 3): Drucker"),
            &format!("Message-ID: <{id}@kommunal-it.example>"),
        ],
        body,
    );
    file(store, cfg, at, &raw, id).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Mail {
    kind: String,
    template: Option<String>,
    recipient: String,
    subject: String,
    body_text: String,
    in_reply_to: Option<String>,
    auto_submitted: String,
    created_at: i64,
    message_id: String,
}

/// The ticket's mail whose template starts with `prefix`, oldest first.
async fn mails(store: &Store, number: &str, prefix: &str) -> Vec<Mail> {
    sqlx::query_as(
        "SELECT o.kind, o.template, o.recipient, o.subject, o.body_text, o.in_reply_to, \
         o.auto_submitted, o.created_at, o.message_id FROM outbox o \
         JOIN tickets t ON t.id = o.ticket_id WHERE t.number = $1 ORDER BY o.id",
    )
    .bind(number)
    .fetch_all(store.pool())
    .await
    .map(|all: Vec<Mail>| {
        all.into_iter()
            .filter(|m| m.template.as_deref().is_some_and(|t| t.starts_with(prefix)))
            .collect()
    })
    .expect("outbox")
}

fn to<'m>(all: &'m [Mail], recipient: &str) -> Vec<&'m Mail> {
    all.iter().filter(|m| m.recipient == recipient).collect()
}

async fn reaction(store: &Store, number: &str) -> (Option<i64>, Option<String>) {
    sqlx::query_as(
        "SELECT s.reacted_at, s.reacted_by FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id \
         WHERE t.number = $1",
    )
    .bind(number)
    .fetch_one(store.pool())
    .await
    .expect("clock")
}

async fn state(store: &Store, number: &str) -> String {
    sqlx::query_scalar("SELECT state FROM tickets WHERE number = $1")
        .bind(number)
        .fetch_one(store.pool())
        .await
        .expect("state")
}

async fn update_due(store: &Store, number: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT update_due_at FROM tickets WHERE number = $1")
        .bind(number)
        .fetch_one(store.pool())
        .await
        .expect("due")
}

async fn events(store: &Store, number: &str) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.event, a.detail FROM audit a JOIN tickets t ON t.id = a.ticket_id \
         WHERE t.number = $1 ORDER BY a.id",
    )
    .bind(number)
    .fetch_all(store.pool())
    .await
    .expect("audit");
    rows.into_iter()
        .map(|(e, d)| (e, serde_json::from_str(&d).expect("json")))
        .collect()
}

both!(a_note_is_no_reaction_and_the_wird_bearbeitet_notice_is);
async fn a_note_is_no_reaction_and_the_wird_bearbeitet_notice_is(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "take", ts("2026-11-25T10:00:00+01:00")).await;
    let note = ops::Change {
        note: Some("Rückruf vereinbart"),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, note, ts("2026-11-25T10:10:00+01:00")).await;
    assert_eq!(
        reaction(s, &number).await,
        (None, None),
        "a note alone is no reaction"
    );
    assert!(
        mails(s, &number, "vorgang-").await.is_empty(),
        "and tells nobody"
    );

    let taken = ts("2026-11-25T10:20:00+01:00");
    change_at(s, &cfg, &number, take(MEMBER), taken).await;
    let all = mails(s, &number, "vorgang-").await;
    let citizen = to(&all, CITIZEN);
    assert_eq!(citizen.len(), 1, "{all:?}");
    let n = citizen[0];
    assert_eq!(n.template.as_deref(), Some("vorgang-in-bearbeitung"));
    assert_eq!(
        (n.kind.as_str(), n.auto_submitted.as_str()),
        ("auto_reply", "auto-replied")
    );
    assert_eq!(
        n.subject,
        format!("[Ticket#{number}] Ihr Anliegen wird bearbeitet: Drucker im Bürgerbüro defekt")
    );
    assert!(
        n.body_text
            .contains(&format!("Vorgangsnummer {number} wird jetzt bearbeitet")),
        "{}",
        n.body_text
    );
    assert!(
        n.body_text.contains("Status:  in Bearbeitung"),
        "{}",
        n.body_text
    );
    assert_eq!(
        n.in_reply_to.as_deref(),
        Some("take@example.org"),
        "threaded under the request"
    );
    // The SLA's reaction is that notice: its time and the staff member who took the ticket.
    assert_eq!(
        reaction(s, &number).await,
        (Some(n.created_at), Some(MEMBER.to_string()))
    );
    assert_eq!(n.created_at, taken.as_microsecond());
    // The observer is told too; the requester (also listed) and our own address only once
    // and never.
    let observer = to(&all, OBSERVER);
    assert_eq!(observer.len(), 1, "{all:?}");
    assert_eq!(
        (
            observer[0].kind.as_str(),
            observer[0].auto_submitted.as_str()
        ),
        ("notice", "auto-generated")
    );
    assert!(
        observer[0].body_text.contains(&format!(
            "der Vorgang {number} von {CITIZEN} wird jetzt bearbeitet"
        )),
        "{}",
        observer[0].body_text
    );
    assert_eq!(all.len(), 2, "{all:?}");
    let notice = events(s, &number)
        .await
        .into_iter()
        .find(|(e, _)| e == "status_notice")
        .expect("audited");
    assert_eq!(notice.1["event"], "taken");
    assert_eq!(notice.1["requester"], CITIZEN);
    assert_eq!(notice.1["observers"], serde_json::json!([OBSERVER]));

    // Taking it again changes nothing and tells nobody.
    change_at(
        s,
        &cfg,
        &number,
        take(MEMBER),
        ts("2026-11-25T11:00:00+01:00"),
    )
    .await;
    assert_eq!(mails(s, &number, "vorgang-").await.len(), 2);
}

both!(state_class_and_level_changes_tell_requester_and_observers);
async fn state_class_and_level_changes_tell_requester_and_observers(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "chg", ts("2026-11-25T10:00:00+01:00")).await;
    change_at(
        s,
        &cfg,
        &number,
        take(MEMBER),
        ts("2026-11-25T10:05:00+01:00"),
    )
    .await;
    let pending = ops::Change {
        severity: Some(2),
        pending_until: Some(ts("2026-12-16T18:00:00Z")),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, pending, ts("2026-11-25T10:30:00+01:00")).await;
    let all = mails(s, &number, "vorgang-status").await;
    let citizen = to(&all, CITIZEN);
    assert_eq!(citizen.len(), 1, "{all:?}");
    assert_eq!(
        citizen[0].subject,
        format!("[Ticket#{number}] Neuer Stand: wartend (Klasse 2): Drucker im Bürgerbüro defekt")
    );
    let body = &citizen[0].body_text;
    for line in [
        "der Stand Ihres Vorgangs",
        "hat sich geändert",
        "Status:  wartend bis 16.12.2026 19:00",
        "- Status: in Bearbeitung → wartend",
        "- Störungsklasse: 3 → 2",
    ] {
        assert!(body.contains(line), "{line} in {body}");
    }
    assert_eq!(to(&all, OBSERVER).len(), 1, "{all:?}");

    // Level 2: the ticket goes to betrieb, whose observer is told (the requester as ever).
    let level = ops::Change {
        level: Some(2),
        state: Some(State::Open),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, level, ts("2026-11-25T11:00:00+01:00")).await;
    let all = mails(s, &number, "vorgang-status").await;
    assert_eq!(to(&all, CITIZEN).len(), 2, "{all:?}");
    assert_eq!(
        to(&all, OBSERVER).len(),
        1,
        "the old queue's observer no longer"
    );
    let leitstelle = to(&all, BETRIEB_OBSERVER);
    assert_eq!(leitstelle.len(), 1, "{all:?}");
    assert!(
        leitstelle[0]
            .body_text
            .contains("- Bearbeitung: 1. Level → 2. Level"),
        "{}",
        leitstelle[0].body_text
    );
    assert!(
        leitstelle[0].body_text.contains("Stufe:   2. Level"),
        "{}",
        leitstelle[0].body_text
    );

    // An assignment alone is internal: no notice.
    let assign = ops::Change {
        assignee: Some(MEMBER),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, assign, ts("2026-11-25T11:10:00+01:00")).await;
    assert_eq!(mails(s, &number, "vorgang-").await.len(), 6);

    // In a queue with status_notices = false nobody hears of a change.
    let quiet = ops::Change {
        queue: Some("clearing"),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, quiet, ts("2026-11-25T11:20:00+01:00")).await;
    let before = mails(s, &number, "vorgang-").await.len();
    let closed = ops::Change {
        state: Some(State::Closed),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, closed, ts("2026-11-25T11:30:00+01:00")).await;
    assert_eq!(mails(s, &number, "vorgang-").await.len(), before);
    assert_eq!(state(s, &number).await, "closed");
}

both!(resolved_asks_for_an_answer_and_the_answer_reopens);
async fn resolved_asks_for_an_answer_and_the_answer_reopens(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "res", ts("2026-11-25T10:00:00+01:00")).await;
    let o = answer(
        s,
        &cfg,
        &number,
        "res1",
        "#status erledigt\r\n",
        ts("2026-11-25T10:30:00+01:00"),
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(state(s, &number).await, "resolved");
    let listed = ops::list_tickets(s, Some(State::Resolved), None, None, 50)
        .await
        .expect("list")
        .tickets;
    assert_eq!(
        listed.iter().map(|t| t.number.as_str()).collect::<Vec<_>>(),
        vec![number.as_str()]
    );
    let all = mails(s, &number, "vorgang-geloest").await;
    let citizen = to(&all, CITIZEN);
    assert_eq!(citizen.len(), 1, "{all:?}");
    assert_eq!(
        citizen[0].subject,
        format!("[Ticket#{number}] Gelöst: Drucker im Bürgerbüro defekt")
    );
    let body = &citizen[0].body_text;
    assert!(
        body.contains(
            "Sollte das Problem weiterhin bestehen, antworten Sie bitte innerhalb von 14 Tagen"
        ),
        "{body}"
    );
    assert!(
        body.contains("Ihre Antwort öffnet den Vorgang wieder"),
        "{body}"
    );
    // Resolving a new ticket was its reaction.
    assert_eq!(
        reaction(s, &number).await,
        (
            Some(ts("2026-11-25T10:30:00+01:00").as_microsecond()),
            Some(MEMBER.to_string())
        )
    );

    // The citizen answers the notice: the ticket is open again, its observers are told.
    let reply = mail(
        &[
            "From: Erika Mustermann <erika@example.org>",
            &format!("To: {STAFF}"),
            &format!("Subject: Re: {}", citizen[0].subject),
            &format!("In-Reply-To: <{}>", citizen[0].message_id),
            "Message-ID: <res2@example.org>",
        ],
        "Leider druckt er immer noch nicht.\r\n",
    );
    assert_eq!(
        file(s, &cfg, ts("2026-11-27T09:00:00+01:00"), &reply, "res2").await,
        Outcome::FollowUp {
            number: number.clone(),
            reopened: true
        }
    );
    assert_eq!(state(s, &number).await, "open");
    let reopened = mails(s, &number, "vorgang-status").await;
    assert!(
        to(&reopened, CITIZEN).is_empty(),
        "the citizen knows: they wrote"
    );
    let observer = to(&reopened, OBSERVER);
    assert_eq!(observer.len(), 1, "{reopened:?}");
    assert!(
        observer[0]
            .body_text
            .contains("- Status: gelöst → in Bearbeitung"),
        "{}",
        observer[0].body_text
    );

    // Resolved and not answered within ingest.reopen_days: closed by the daemon's round,
    // once, without a mail.
    let quiet = open(s, &cfg, "res3", ts("2026-11-25T10:00:00+01:00")).await;
    let resolved_at = ts("2026-11-25T11:00:00+01:00");
    let resolve = ops::Change {
        state: Some(State::Resolved),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &quiet, resolve, resolved_at).await;
    let day = jiff::SignedDuration::from_hours(24);
    let r = run_due(
        s,
        &cfg,
        resolved_at + day * 14 - jiff::SignedDuration::from_secs(1),
    )
    .await
    .expect("round");
    assert_eq!(r.closed, 0);
    assert_eq!(state(s, &quiet).await, "resolved");
    let mailed = mails(s, &quiet, "").await.len();
    let r = run_due(s, &cfg, resolved_at + day * 14)
        .await
        .expect("round");
    assert_eq!(
        r,
        Round {
            updates: 0,
            reminders: 0,
            closed: 1
        }
    );
    assert_eq!(state(s, &quiet).await, "closed");
    assert_eq!(
        run_due(s, &cfg, resolved_at + day * 15)
            .await
            .expect("round")
            .closed,
        0
    );
    assert_eq!(mails(s, &quiet, "").await.len(), mailed);
    assert!(
        events(s, &quiet)
            .await
            .iter()
            .any(|(e, d)| e == "state_changed" && d["from"] == "resolved" && d["to"] == "closed")
    );
}

both!(a_relayed_answer_takes_the_ticket_without_an_extra_notice);
async fn a_relayed_answer_takes_the_ticket_without_an_extra_notice(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "rel", ts("2026-11-25T10:00:00+01:00")).await;
    let answered = ts("2026-11-25T10:40:00+01:00");
    let o = answer(
        s,
        &cfg,
        &number,
        "rel1",
        "Guten Tag,\r\nder Toner ist bestellt.\r\n",
        answered,
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(state(s, &number).await, "open", "the relay took the ticket");
    let all = mails(s, &number, "vorgang-").await;
    assert!(
        to(&all, CITIZEN).is_empty(),
        "the relayed answer is the citizen's notice: {all:?}"
    );
    assert_eq!(to(&all, OBSERVER).len(), 1, "{all:?}");
    assert_eq!(
        to(&all, OBSERVER)[0].template.as_deref(),
        Some("vorgang-in-bearbeitung")
    );
    assert_eq!(
        reaction(s, &number).await,
        (Some(answered.as_microsecond()), Some(MEMBER.to_string()))
    );
    assert!(
        events(s, &number)
            .await
            .iter()
            .any(|(e, d)| e == "state_changed"
                && d["from"] == "new"
                && d["why"] == "a relayed answer takes the ticket")
    );
}

both!(a_pending_reminder_goes_to_staff_once_when_due);
async fn a_pending_reminder_goes_to_staff_once_when_due(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let number = open(s, &cfg, "pend", ts("2026-11-25T10:00:00+01:00")).await;
    let until = ts("2026-11-30T09:00:00+01:00");
    let wait = ops::Change {
        pending_until: Some(until),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, wait, ts("2026-11-25T10:30:00+01:00")).await;
    let second = jiff::SignedDuration::from_secs(1);
    assert_eq!(
        run_due(s, &cfg, until - second)
            .await
            .expect("round")
            .reminders,
        0
    );
    assert_eq!(run_due(s, &cfg, until).await.expect("round").reminders, 1);
    // Not again: a later round, or another instance's, finds it sent.
    assert_eq!(
        run_due(s, &cfg, until + second * 3600)
            .await
            .expect("round")
            .reminders,
        0
    );
    let sent = mails(s, &number, "erinnerung-wiedervorlage").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].recipient.as_str(), sent[0].kind.as_str()),
        (STAFF, "reminder")
    );
    assert_eq!(
        sent[0].subject,
        format!("[Ticket#{number}] Wiedervorlage: Drucker im Bürgerbüro defekt")
    );
    assert!(
        sent[0]
            .body_text
            .contains("Wartend bis:   30.11.2026 09:00"),
        "{}",
        sent[0].body_text
    );
    assert!(
        events(s, &number)
            .await
            .iter()
            .any(|(e, _)| e == "pending_reminder")
    );

    // A new time, and an assignee: the next reminder goes to them, once.
    let later = ts("2026-12-02T08:00:00+01:00");
    let again = ops::Change {
        pending_until: Some(later),
        assignee: Some(MEMBER),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &number, again, ts("2026-11-30T10:00:00+01:00")).await;
    assert_eq!(run_due(s, &cfg, later).await.expect("round").reminders, 1);
    assert_eq!(run_due(s, &cfg, later).await.expect("round").reminders, 0);
    let sent = mails(s, &number, "erinnerung-wiedervorlage").await;
    assert_eq!(
        sent.iter()
            .map(|m| m.recipient.as_str())
            .collect::<Vec<_>>(),
        vec![STAFF, MEMBER]
    );
}

both!(an_open_class_1_ticket_gets_an_update_every_n_service_hours);
async fn an_open_class_1_ticket_gets_an_update_every_n_service_hours(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let taken = ts("2026-11-25T10:00:00+01:00");
    let urgent = open(s, &cfg, "u1", ts("2026-11-25T09:50:00+01:00")).await;
    let light = open(s, &cfg, "u3", ts("2026-11-25T09:50:00+01:00")).await;
    let class_1 = ops::Change {
        state: Some(State::Open),
        severity: Some(1),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &urgent, class_1, taken).await;
    change_at(s, &cfg, &light, take(MEMBER), taken).await;
    assert_eq!(
        update_due(s, &urgent).await,
        Some(ts("2026-11-25T14:00:00+01:00").as_microsecond())
    );
    assert_eq!(
        update_due(s, &light).await,
        None,
        "class 3 gets no periodic update"
    );
    // A relayed answer is news: the next update counts from it.
    answer(
        s,
        &cfg,
        &urgent,
        "u2",
        "Der Techniker ist unterwegs.\r\n",
        ts("2026-11-25T10:30:00+01:00"),
    )
    .await;
    let due = ts("2026-11-25T14:30:00+01:00");
    assert_eq!(update_due(s, &urgent).await, Some(due.as_microsecond()));

    let second = jiff::SignedDuration::from_secs(1);
    assert_eq!(
        run_due(s, &cfg, due - second).await.expect("round").updates,
        0
    );
    assert_eq!(run_due(s, &cfg, due).await.expect("round").updates, 1);
    assert_eq!(
        run_due(s, &cfg, due).await.expect("round").updates,
        0,
        "not twice"
    );
    let updates = mails(s, &urgent, "vorgang-zwischenstand").await;
    let citizen = to(&updates, CITIZEN);
    assert_eq!(citizen.len(), 1, "{updates:?}");
    assert_eq!(
        citizen[0].subject,
        format!("[Ticket#{urgent}] Zwischenstand: Drucker im Bürgerbüro defekt")
    );
    let body = &citizen[0].body_text;
    assert!(
        body.contains(
            "Unsere letzte Antwort vom 25.11.2026 10:30:\n\nDer Techniker ist unterwegs."
        ),
        "{body}"
    );
    assert!(body.contains("alle 4 Servicestunden"), "{body}");
    assert_eq!(to(&updates, OBSERVER).len(), 1);
    // 3.5 service hours are left on Wednesday (until 18:00), the other half hour is Thursday's
    // first: the next update is due then.
    let next = ts("2026-11-26T07:30:00+01:00");
    assert_eq!(update_due(s, &urgent).await, Some(next.as_microsecond()));
    assert_eq!(
        run_due(s, &cfg, next - second)
            .await
            .expect("round")
            .updates,
        0
    );
    assert_eq!(run_due(s, &cfg, next).await.expect("round").updates, 1);
    assert!(
        mails(s, &light, "vorgang-zwischenstand").await.is_empty(),
        "never for class 3"
    );

    // Pending: no updates while it waits.
    let wait = ops::Change {
        state: Some(State::Pending),
        actor: MEMBER,
        ..Default::default()
    };
    change_at(s, &cfg, &urgent, wait, ts("2026-11-26T08:00:00+01:00")).await;
    assert_eq!(update_due(s, &urgent).await, None);
    assert_eq!(
        run_due(s, &cfg, ts("2026-11-27T12:00:00+01:00"))
            .await
            .expect("round")
            .updates,
        0
    );
}

both!(machines_and_our_own_addresses_get_no_notice);
async fn machines_and_our_own_addresses_get_no_notice(db: &TestDb) {
    let (_t, cfg) = desk();
    let s = &db.store;
    let alarm = mail(
        &[
            "From: icinga@rz.kommunal-it.example",
            &format!("To: {STAFF}"),
            "Subject: PROBLEM: Host fileserver01 is DOWN",
            "Auto-Submitted: auto-generated",
            "Message-ID: <alarm@rz.kommunal-it.example>",
        ],
        "Host fileserver01 DOWN\r\n",
    );
    let number = new_number(&file(s, &cfg, ts("2026-11-25T10:00:00+01:00"), &alarm, "alarm").await);
    let taken = ts("2026-11-25T10:05:00+01:00");
    change_at(s, &cfg, &number, take("anna"), taken).await;
    let all = mails(s, &number, "vorgang-").await;
    assert!(
        to(&all, "icinga@rz.kommunal-it.example").is_empty(),
        "{all:?}"
    );
    assert_eq!(
        to(&all, BETRIEB_OBSERVER).len(),
        1,
        "the observer is told all the same"
    );
    let skipped = events(s, &number)
        .await
        .into_iter()
        .find(|(e, _)| e == "status_notice")
        .expect("audited");
    assert!(
        skipped.1["requester_skipped"]
            .as_str()
            .is_some_and(|w| w.contains("machine-made")),
        "{skipped:?}"
    );
    // Taking the ticket is the reaction even where no notice can go.
    assert_eq!(reaction(s, &number).await.0, Some(taken.as_microsecond()));

    // A ticket opened by our own staff address: no notice goes back to us.
    let own = mail(
        &[
            &format!("From: {STAFF}"),
            &format!("To: {STAFF}"),
            "Subject: Netzwerkdrucker 3. OG",
            "Message-ID: <own@kommunal-it.example>",
        ],
        "Bitte prüfen.\r\n",
    );
    let number = new_number(&file(s, &cfg, ts("2026-11-25T10:00:00+01:00"), &own, "own").await);
    change_at(s, &cfg, &number, take("anna"), taken).await;
    assert!(to(&mails(s, &number, "vorgang-").await, STAFF).is_empty());
}

#[test]
fn each_notice_renders_in_german_and_english_with_umlauts() {
    let tz = poststelle::time::berlin().expect("tz");
    for (lang, words) in [
        (
            "de",
            [
                "wird bearbeitet",
                "Neuer Stand: wartend",
                "Gelöst",
                "Zwischenstand",
                "Wiedervorlage",
            ],
        ),
        (
            "en",
            [
                "is being worked on",
                "New state: waiting",
                "Resolved",
                "Progress update",
                "Follow-up due",
            ],
        ),
    ] {
        let (_t, cfg) = desk_in(lang);
        let ticket = notify::Ticket {
            number: "2026112510000001",
            subject: "Störung im Bürgerbüro: Drucker grüßt nicht",
            queue: "support",
            severity: 2,
            requester: "joerg@example.org",
            requester_name: Some("Jörg Müller"),
            received: ts("2026-11-25T10:00:00+01:00"),
        };
        let status = notify::Status {
            state: "pending",
            changes: vec![
                ("state", "open".into(), "pending".into()),
                ("class", 3.into(), 2.into()),
            ],
            level: 1,
            pending_until: Some(ts("2026-12-16T18:00:00Z")),
            assignee: Some("jan.berger@kommunal-it.example"),
            answer: Some((
                "Die Störung ist an die Fachabteilung übergeben.",
                ts("2026-11-25T10:30:00+01:00"),
            )),
            for_observer: false,
        };
        let ctx = notify::for_status(&cfg, &tz, &ticket, &status);
        let names = [
            poststelle::templates::STATUS_TAKEN,
            poststelle::templates::STATUS_CHANGED,
            poststelle::templates::STATUS_RESOLVED,
            poststelle::templates::STATUS_UPDATE,
            poststelle::templates::PENDING_REMINDER,
        ];
        for (name, word) in names.into_iter().zip(words) {
            let r = cfg
                .templates
                .render(name, &cfg.settings.language, &ctx)
                .unwrap_or_else(|e| panic!("{lang}/{name}: {e}"));
            assert!(r.subject.contains(word), "{lang}/{name}: {}", r.subject);
            assert!(
                r.subject.starts_with("[Ticket#2026112510000001] ")
                    && r.subject
                        .ends_with("Störung im Bürgerbüro: Drucker grüßt nicht"),
                "{lang}/{name}: {}",
                r.subject
            );
            assert!(
                r.text.contains("2026112510000001"),
                "{lang}/{name}: {}",
                r.text
            );
            if name != poststelle::templates::PENDING_REMINDER {
                assert!(r.text.contains("Jörg Müller"), "{lang}/{name}: {}", r.text);
            }
        }
        let update = cfg
            .templates
            .render(poststelle::templates::STATUS_UPDATE, lang, &ctx)
            .expect("update");
        assert!(
            update
                .text
                .contains("Die Störung ist an die Fachabteilung übergeben."),
            "{}",
            update.text
        );
        let changed = cfg
            .templates
            .render(poststelle::templates::STATUS_CHANGED, lang, &ctx)
            .expect("changed");
        let line = if lang == "de" {
            "Störungsklasse: 3 → 2"
        } else {
            "incident class: 3 → 2"
        };
        assert!(changed.text.contains(line), "{}", changed.text);
        let until = if lang == "de" {
            "wartend bis 16.12.2026 19:00"
        } else {
            "waiting until 16.12.2026 19:00"
        };
        assert!(changed.text.contains(until), "{}", changed.text);
    }
}

#[test]
fn status_notice_settings_name_line_and_fix() {
    let text = TempConfig::shipped_text()
        .replace(
            "update_every_service_hours = 4",
            "update_every_service_hours = -1",
        )
        .replacen(
            "staff = \"servicedesk@kommunal-it.example\"\n",
            "staff = \"servicedesk@kommunal-it.example\"\nobservers = [\"Auftraggeber <a@b.example>\"]\n",
            1,
        );
    let line = |prefix: &str| {
        text.lines()
            .position(|l| l.starts_with(prefix))
            .expect("line")
            + 1
    };
    let (hours, observers) = (line("update_every_service_hours"), line("observers"));
    let t = TempConfig::new(&text, &[]);
    let err = match poststelle::config::Config::load(Some(&t.path())) {
        Ok(_) => panic!("invalid settings load"),
        Err(d) => d.to_string(),
    };
    assert!(
        err.contains(&format!(
            "poststelle.toml:{hours}: status_notices.update_every_service_hours = -1 is no interval"
        )),
        "{err}"
    );
    assert!(err.contains("or 0 for no periodic updates"), "{err}");
    assert!(
        err.contains(&format!(
            "poststelle.toml:{observers}: \"Auftraggeber <a@b.example>\" is not an e-mail address"
        )),
        "{err}"
    );
    // The shipped configuration: four hours, every queue on, no observers.
    let cfg = TempConfig::new(&TempConfig::shipped_text(), &[]).load();
    assert_eq!(cfg.settings.status_notices.update_every_service_hours, 4);
    assert!(
        cfg.settings
            .queues
            .iter()
            .all(|q| q.status_notices && q.observers.is_empty())
    );
}
