//! Hand-over (issue 17, item 5): a change of queue — `tickets set --queue/--level`, a staff
//! answer's `#queue`/`#level`, an escalation with `sla.escalation_moves_ticket` — sends the
//! new queue's staff a copy with the ticket's history and its reply address, once, audited;
//! clearing handing a Nutzerkonto question to a Ressort can tell the citizen the contact
//! person, once per ticket; a Betreff that matches several services equally goes to clearing.
use std::path::Path;

use jiff::Timestamp;
use mail_parser::{MessageParser, MimeHeaders};
use poststelle::config::Config;
use poststelle::jobs::escalation::{self, NoticeKind};
use poststelle::outbox::sender::{Mailer, Sender};
use poststelle::reply_token::{Keys, Pattern};
use poststelle::store::Store;
use poststelle::ticket::handover::ContactReply;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops::{self, Applied, Change, OpsError};

use crate::support::bin;
use crate::support::config::{REPLY_KEY, TempConfig};
use crate::support::db::{TestDb, both};
use crate::support::mail::mail;
use crate::support::tickets::new_number;

const STAFF: &str = "servicedesk@kommunal-it.example";
const MEMBER: &str = "jan.berger@kommunal-it.example";
const BETRIEB: &str = "betrieb@kommunal-it.example";
const HERSTELLER: &str = "support@hersteller.example";
const CLEARING: &str = "clearing@ministerium.hessen.example";
const SOZIALES: &str = "nutzerkonto@soziales.hessen.example";
const WIRTSCHAFT: &str = "nutzerkonto@wirtschaft.hessen.example";
const CITIZEN: &str = "erika@example.org";

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// Wednesday 10:00 in Hessen: the request; later mail comes in the minutes after.
fn at(minute: u32) -> Timestamp {
    ts(&format!("2026-11-25T10:{minute:02}:00+01:00"))
}

/// The shipped configuration with reply addresses, a member of support, the support levels
/// support → betrieb → hersteller (`escalate_to`), the contact list `kontakte.toml`
/// ([`CONTACTS`]) and `extra` appended.
fn desk(extra: &str) -> (TempConfig, Config) {
    let t = TempConfig::staff_desk(&[MEMBER], "");
    let text = std::fs::read_to_string(t.path())
        .expect("config")
        .replacen(
            "escalation = \"servicedesk-leitung@kommunal-it.example\"\n",
            "escalate_to = \"betrieb\"\n",
            1,
        )
        .replacen(
            "escalation = \"rufbereitschaft@kommunal-it.example\"\n",
            "escalate_to = \"hersteller\"\n",
            1,
        );
    let shipped = format!(
        "contacts = {:?}",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contacts/hessen.toml")
    );
    assert!(text.contains(&shipped), "the shipped contact list is named");
    let text = text.replace(&shipped, "contacts = \"kontakte.toml\"")
        + "\n[[queue]]\nname = \"hersteller\"\ndescription = \"3rd level: the vendor\"\n\
           staff = \"support@hersteller.example\"\n"
        + extra;
    t.write("poststelle.toml", text.as_bytes());
    t.write("kontakte.toml", CONTACTS.as_bytes());
    let cfg = t.load();
    (t, cfg)
}

/// "Elterngeld" and "Kfz-Steuer" are both ten characters long: a Betreff naming both matches
/// two services equally.
const CONTACTS: &str = r#"
[[service]]
name = "Wohngeld"
keywords = ["Wohngeld"]
ressort = "ressort-wirtschaft"
contact = "Referat Wohngeld"
email = "wohngeld@wirtschaft.hessen.example"

[[service]]
name = "Kfz-Steuer"
keywords = ["Kfz-Steuer"]
ressort = "ressort-wirtschaft"
contact = "Team Kfz-Steuer"
email = "kfz-steuer@wirtschaft.hessen.example"
efa = "outbound"

[[service]]
name = "Elterngeld"
keywords = ["Elterngeld"]
ressort = "ressort-soziales"
contact = "Elterngeldstelle"
email = "elterngeld@soziales.hessen.example"
phone = "+49 611 0000-300"

[[service]]
name = "Kinderzuschlag"
keywords = ["Kinderzuschlag"]
ressort = "ressort-soziales"
contact = "Familienkasse (Beispiel)"

[[service]]
name = "Waffenrecht"
keywords = ["Waffenschein"]
ressort = "ressort-inneres"
contact = "Referat Waffenrecht"

[[service]]
name = "Personalausweis"
keywords = ["Personalausweis"]
ressort = "ressort-inneres"
contact = "Referat Pass- und Ausweiswesen"
"#;

fn token_address(number: &str) -> String {
    Pattern::plus_addressing(STAFF)
        .expect("pattern")
        .address(&Keys::new(REPLY_KEY.to_vec(), Vec::new()), number)
}

async fn file(store: &Store, cfg: &Config, when: Timestamp, raw: &[u8], key: &str) -> Outcome {
    let mut ing = Ingestor::new(store, cfg);
    ing.clock = Some(when);
    ing.ingest(raw, SourceKey::file(key)).await.expect("ingest")
}

/// The citizen's first mail about the printer, with the error log attached.
fn request(id: &str) -> Vec<u8> {
    mail(
        &[
            "From: Erika Mustermann <erika@example.org>",
            &format!("To: {STAFF}"),
            "Subject: Drucker defekt",
            &format!("Message-ID: <{id}@example.org>"),
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=\"b1\"",
        ],
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Guten Tag,\r\nder Drucker im Buergerbuero druckt nicht.\r\n\
         --b1\r\nContent-Type: text/plain; name=\"fehler.txt\"\r\n\
         Content-Disposition: attachment; filename=\"fehler.txt\"\r\n\r\n\
         Fehler 49.4C02\r\n--b1--\r\n",
    )
}

/// A mail from `from` to `to` on ticket `number`.
fn on_ticket(from: &str, to: &str, number: &str, id: &str, body: &str) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            &format!("To: {to}"),
            &format!("Subject: Re: [Ticket#{number}] Drucker defekt"),
            &format!("Message-ID: <{id}@example.org>"),
        ],
        body,
    )
}

/// A staff answer from `from` to the ticket's reply address.
async fn answer(
    store: &Store,
    cfg: &Config,
    from: &str,
    number: &str,
    id: &str,
    body: &str,
) -> Outcome {
    let raw = on_ticket(from, &token_address(number), number, id, body);
    file(store, cfg, at(30), &raw, id).await
}

/// An outbox row of a ticket.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    recipient: String,
    subject: String,
    #[sqlx(rename = "body_text")]
    body: String,
    raw_message_id: Option<i64>,
    message_id: String,
    in_reply_to: Option<String>,
}

/// The ticket's outgoing mail made with `template`, oldest first.
async fn mails(store: &Store, number: &str, template: &str) -> Vec<Row> {
    sqlx::query_as(
        "SELECT o.recipient, o.subject, o.body_text, o.raw_message_id, o.message_id, \
         o.in_reply_to FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE t.number = $1 AND o.template = $2 ORDER BY o.id",
    )
    .bind(number)
    .bind(template)
    .fetch_all(store.pool())
    .await
    .expect("outbox")
}

async fn copies(store: &Store, number: &str) -> Vec<Row> {
    mails(store, number, "uebergabe").await
}

/// The `handed_over` audit lines of a ticket: actor, detail, whether a raw message is named.
async fn handed_over(store: &Store, number: &str) -> Vec<(String, serde_json::Value, bool)> {
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT a.actor, a.detail, a.raw_message_id FROM audit a \
         JOIN tickets t ON t.id = a.ticket_id WHERE t.number = $1 AND a.event = 'handed_over' \
         ORDER BY a.id",
    )
    .bind(number)
    .fetch_all(store.pool())
    .await
    .expect("audit");
    rows.into_iter()
        .map(|(a, d, r)| (a, serde_json::from_str(&d).expect("json"), r.is_some()))
        .collect()
}

async fn queue_of(store: &Store, number: &str) -> String {
    ops::show_ticket(store, number)
        .await
        .expect("show")
        .summary
        .queue
}

/// `needles` occur in `text`, in this order.
fn in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for n in needles {
        match text[from..].find(n) {
            Some(i) => from += i + n.len(),
            None => panic!("{n:?} (in this order) missing from:\n{text}"),
        }
    }
}

fn change<'a>(actor: &'a str) -> Change<'a> {
    Change {
        actor,
        ..Change::default()
    }
}

fn hand_over_of(applied: &[Applied]) -> &poststelle::ticket::handover::HandedOver {
    applied
        .iter()
        .find_map(|a| match a {
            Applied::HandOver(h) => Some(h),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no hand-over in {applied:?}"))
}

/// Sends what is due with the file transport; the mail with Message-ID `id` as written.
async fn sent(store: &Store, cfg: &Config, dir: &Path, id: &str) -> Vec<u8> {
    let mailer = Mailer::from_settings(&cfg.settings.outbox, dir).expect("mailer");
    Sender {
        store,
        config: cfg,
        mailer: &mailer,
    }
    .send_due(100)
    .await
    .expect("send");
    std::fs::read(dir.join("sent").join(format!("{id}.eml"))).expect("the mail was written")
}

both!(tickets_set_queue_sends_the_new_queue_a_copy_with_the_history);
async fn tickets_set_queue_sends_the_new_queue_a_copy_with_the_history(db: &TestDb) {
    let (t, cfg) = desk("");
    let s = &db.store;
    let number = new_number(&file(s, &cfg, at(0), &request("h1"), "h1").await);
    // The history: a follow-up of the citizen, a staff answer relayed to her, a note.
    let follow_up = on_ticket(
        "Erika Mustermann <erika@example.org>",
        STAFF,
        &number,
        "h2",
        "Es ist das Modell LaserJet 4000.\r\n",
    );
    assert!(matches!(
        file(s, &cfg, at(10), &follow_up, "h2").await,
        Outcome::FollowUp { .. }
    ));
    let o = answer(
        s,
        &cfg,
        MEMBER,
        &number,
        "h3",
        "Bitte starten Sie den Drucker neu.\r\n",
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    let note = Change {
        note: Some("Leasingvertrag pruefen."),
        ..change("anna")
    };
    ops::set_ticket(s, &cfg, &number, note).await.expect("note");
    assert!(copies(s, &number).await.is_empty(), "no hand-over yet");

    let applied = ops::set_ticket(
        s,
        &cfg,
        &number,
        Change {
            queue: Some("betrieb"),
            ..change("anna")
        },
    )
    .await
    .expect("set");
    assert!(applied.contains(&Applied::Queue {
        from: "support".into(),
        to: "betrieb".into()
    }));
    let h = hand_over_of(&applied);
    assert_eq!(h.copy_to.as_deref(), Some(BETRIEB));
    assert_eq!(h.history, 4, "{h:?}");

    let c = copies(s, &number).await;
    assert_eq!(c.len(), 1);
    let copy = &c[0];
    assert_eq!(copy.recipient, BETRIEB);
    assert!(
        copy.subject
            .starts_with(&format!("[Ticket#{number}] Übergabe (support → betrieb")),
        "{}",
        copy.subject
    );
    in_order(
        &copy.body,
        &[
            "von anna",
            "Nachricht von erika@example.org",
            "Anhänge: fehler.txt",
            "> der Drucker im Buergerbuero druckt nicht.",
            "Nachricht von erika@example.org",
            "> Es ist das Modell LaserJet 4000.",
            "Antwort an die anfragende Person",
            "> Bitte starten Sie den Drucker neu.",
            "Interne Notiz von anna",
            "> Leasingvertrag pruefen.",
            "Die erste Nachricht hängt im Original an.",
        ],
    );
    // Our automatic mail is no history: neither the acknowledgement nor earlier copies.
    assert!(!copy.body.contains("Eingangsbestätigung"), "{}", copy.body);
    assert!(!copy.body.contains("Neuer Vorgang"), "{}", copy.body);
    // The original attached is the first mail's, as with the copy of a new ticket.
    let first_raw: i64 =
        sqlx::query_scalar("SELECT id FROM raw_messages WHERE message_id = 'h1@example.org'")
            .fetch_one(s.pool())
            .await
            .expect("raw");
    assert_eq!(copy.raw_message_id, Some(first_raw));

    let lines = handed_over(s, &number).await;
    assert_eq!(lines.len(), 1);
    let (actor, detail, _) = &lines[0];
    assert_eq!(actor, "anna");
    assert_eq!(detail["from"], "support");
    assert_eq!(detail["to"], "betrieb");
    assert_eq!(detail["copy_to"], BETRIEB);
    assert_eq!(detail["message_id"], copy.message_id.as_str());

    // As it goes out: to the new queue's staff, with the ticket's reply address and the
    // original with its attachment.
    let raw = sent(s, &cfg, t.dir.path(), &copy.message_id).await;
    let m = MessageParser::default().parse(&raw).expect("parse");
    assert_eq!(
        m.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some(BETRIEB)
    );
    assert_eq!(
        m.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(token_address(&number).as_str())
    );
    let original = m
        .parts
        .iter()
        .find(|p| p.attachment_name() == Some("original.eml"))
        .expect("the original is attached");
    let original = String::from_utf8_lossy(original.contents());
    assert!(original.contains("fehler.txt") && original.contains("Fehler 49.4C02"));

    // The same queue again, or another field alone: no hand-over, no copy.
    let same = ops::set_ticket(
        s,
        &cfg,
        &number,
        Change {
            queue: Some("betrieb"),
            ..change("anna")
        },
    )
    .await
    .expect("set");
    assert!(same.is_empty(), "{same:?}");
    let class = ops::set_ticket(
        s,
        &cfg,
        &number,
        Change {
            severity: Some(2),
            level: Some(2),
            ..change("anna")
        },
    )
    .await
    .expect("set");
    assert_eq!(class.len(), 1, "only the class: {class:?}");
    assert_eq!(copies(s, &number).await.len(), 1);
    assert_eq!(handed_over(s, &number).await.len(), 1);

    // --level is a queue change too: level 3 is the vendor's queue.
    let up = ops::set_ticket(
        s,
        &cfg,
        &number,
        Change {
            level: Some(3),
            ..change("anna")
        },
    )
    .await
    .expect("set");
    assert_eq!(hand_over_of(&up).copy_to.as_deref(), Some(HERSTELLER));
    let c = copies(s, &number).await;
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].recipient, HERSTELLER);
    assert!(
        c[1].subject.contains("(betrieb → hersteller, Klasse 2)"),
        "{}",
        c[1].subject
    );
}

both!(a_queue_command_by_mail_hands_over_the_same);
async fn a_queue_command_by_mail_hands_over_the_same(db: &TestDb) {
    let (t, cfg) = desk("");
    let s = &db.store;
    let number = new_number(&file(s, &cfg, at(0), &request("m1"), "m1").await);
    let o = answer(
        s,
        &cfg,
        MEMBER,
        &number,
        "m2",
        "#queue betrieb\r\n\r\nWir geben das an den Betrieb weiter.\r\n",
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(queue_of(s, &number).await, "betrieb");
    let c = copies(s, &number).await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].recipient, BETRIEB);
    // The answer relayed with the command is part of the history handed over.
    in_order(
        &c[0].body,
        &[
            &format!("von {MEMBER}"),
            "> der Drucker im Buergerbuero druckt nicht.",
            "Antwort an die anfragende Person",
            "> Wir geben das an den Betrieb weiter.",
        ],
    );
    let lines = handed_over(s, &number).await;
    assert_eq!(lines.len(), 1);
    let (actor, detail, names_raw) = &lines[0];
    assert_eq!(actor, MEMBER);
    assert!(names_raw, "the answer that asked for it is named");
    assert_eq!(
        (&detail["from"], &detail["to"]),
        (&"support".into(), &"betrieb".into())
    );

    let raw = sent(s, &cfg, t.dir.path(), &c[0].message_id).await;
    let m = MessageParser::default().parse(&raw).expect("parse");
    assert_eq!(
        m.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(token_address(&number).as_str())
    );
    assert!(
        m.subject()
            .is_some_and(|s| s.contains(&format!("[Ticket#{number}]")))
    );

    // Betrieb's staff answer with the queue it already is in: nothing handed over.
    let o = answer(
        s,
        &cfg,
        BETRIEB,
        &number,
        "m3",
        "#queue betrieb\r\nNoch in Arbeit.\r\n",
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(copies(s, &number).await.len(), 1);
    // `#stufe` hands it on one level.
    answer(s, &cfg, BETRIEB, &number, "m4", "#stufe 3\r\n").await;
    let c = copies(s, &number).await;
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].recipient, HERSTELLER);
    assert!(c[1].body.contains("> Noch in Arbeit."), "{}", c[1].body);
}

/// A citizen's Nutzerkonto question with subject `HE_{betreff}_{origin}`.
fn question(betreff: &str, origin: &str, id: &str) -> Vec<u8> {
    mail(
        &[
            "From: Nutzerkonto Bund <noreply@nutzerkonto.example>",
            "Reply-To: Erika Mustermann <erika@example.org>",
            &format!("To: {STAFF}"),
            &format!("Subject: HE_{betreff}_{origin}"),
            &format!("Message-ID: <{id}@nutzerkonto.example>"),
        ],
        "Guten Tag,\r\nich habe eine Frage zu meinem Antrag.\r\n",
    )
}

/// The reason of the ticket's `ticket_created` line.
async fn created_reason(store: &Store, number: &str) -> String {
    let detail: String = sqlx::query_scalar(
        "SELECT a.detail FROM audit a JOIN tickets t ON t.id = a.ticket_id \
         WHERE t.number = $1 AND a.event = 'ticket_created'",
    )
    .bind(number)
    .fetch_one(store.pool())
    .await
    .expect("audit");
    let v: serde_json::Value = serde_json::from_str(&detail).expect("json");
    v["reason"].as_str().expect("reason").to_string()
}

fn invalid(r: Result<Vec<Applied>, OpsError>) -> String {
    match r {
        Err(OpsError::Invalid(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

both!(clearing_hands_a_question_to_its_ressort_and_the_citizen_gets_the_contact_once);
async fn clearing_hands_a_question_to_its_ressort_and_the_citizen_gets_the_contact_once(
    db: &TestDb,
) {
    let (_t, cfg) = desk("");
    let s = &db.store;
    // Two services match equally: unclear, clearing, and the audit says why.
    let number = new_number(
        &file(
            s,
            &cfg,
            at(0),
            &question("Elterngeld und Kfz-Steuer", "NKB", "q1"),
            "q1",
        )
        .await,
    );
    assert_eq!(queue_of(s, &number).await, "clearing");
    let reason = created_reason(s, &number).await;
    for part in [
        "matches 2 services of the contact list equally",
        "\"Elterngeld\"",
        "\"Kfz-Steuer\"",
        "clearing",
    ] {
        assert!(reason.contains(part), "{part}: {reason}");
    }
    let efa = "nutzerkonto-efa-outbound";
    assert!(
        mails(s, &number, efa).await.is_empty(),
        "no contact named at filing"
    );

    let (cfg_ref, num) = (&cfg, number.as_str());
    let set = move |c: Change<'static>| ops::set_ticket(s, cfg_ref, num, c);
    // What cannot be done is refused before anything changes.
    let why = invalid(
        set(Change {
            queue: Some("ressort-inneres"),
            contact_reply: true,
            ..change("clara")
        })
        .await,
    );
    assert!(
        why.contains("matches none of them") && why.contains("\"Personalausweis\""),
        "{why}"
    );
    let why = invalid(
        set(Change {
            queue: Some("ressort-soziales"),
            contact_reply: true,
            service: Some("Wohngeld"),
            ..change("clara")
        })
        .await,
    );
    assert!(
        why.contains("belongs to the Ressort \"ressort-wirtschaft\""),
        "{why}"
    );
    let why = invalid(
        set(Change {
            queue: Some("support"),
            contact_reply: true,
            ..change("clara")
        })
        .await,
    );
    assert!(why.contains("Ressort of no service"), "{why}");
    assert_eq!(queue_of(s, &number).await, "clearing");
    assert!(copies(s, &number).await.is_empty());

    // Clearing hands it to Soziales: of its services only Elterngeld matches the Betreff.
    let applied = set(Change {
        queue: Some("ressort-soziales"),
        contact_reply: true,
        ..change("clara")
    })
    .await
    .expect("set");
    let h = hand_over_of(&applied);
    assert!(
        matches!(&h.contact_reply, Some(ContactReply::Queued { service, to, held: None, .. })
            if service == "Elterngeld" && to == CITIZEN),
        "{h:?}"
    );
    let replies = mails(s, &number, efa).await;
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert_eq!(r.recipient, CITIZEN);
    assert!(
        r.subject.starts_with(&format!("[Ticket#{number}]")) && r.subject.contains("Elterngeld"),
        "{}",
        r.subject
    );
    for part in [
        "Elterngeldstelle",
        "elterngeld@soziales.hessen.example",
        "+49 611 0000-300",
    ] {
        assert!(r.body.contains(part), "{part}: {}", r.body);
    }
    assert_eq!(
        r.in_reply_to.as_deref(),
        Some("q1@nutzerkonto.example"),
        "threaded"
    );
    let c = copies(s, &number).await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].recipient, SOZIALES);
    in_order(
        &c[0].body,
        &[
            "Nutzerkonto: HE, NKB, Betreff „Elterngeld und Kfz-Steuer“",
            "Ansprechperson für „Elterngeld“: Elterngeldstelle",
            "> ich habe eine Frage zu meinem Antrag.",
        ],
    );
    let lines = handed_over(s, &number).await;
    assert_eq!(lines[0].1["contact_reply"]["state"], "queued");
    assert_eq!(lines[0].1["contact_reply"]["service"], "Elterngeld");

    // Back to clearing and to Soziales again: the citizen was told already, once is enough.
    set(Change {
        queue: Some("clearing"),
        ..change("sofia")
    })
    .await
    .expect("set");
    let again = set(Change {
        queue: Some("ressort-soziales"),
        contact_reply: true,
        service: Some("Kinderzuschlag"),
        ..change("clara")
    })
    .await
    .expect("set");
    assert!(
        matches!(&hand_over_of(&again).contact_reply, Some(ContactReply::AlreadySent { message_id }) if *message_id == r.message_id),
        "{again:?}"
    );
    assert_eq!(mails(s, &number, efa).await.len(), 1, "exactly once");
    assert_eq!(
        copies(s, &number).await.len(),
        3,
        "each hand-over has its copy"
    );

    // A ticket that is no Nutzerkonto question has no contact person.
    let plain = new_number(&file(s, &cfg, at(5), &request("q2"), "q2").await);
    ops::set_ticket(
        s,
        &cfg,
        &plain,
        Change {
            queue: Some("clearing"),
            ..change("sofia")
        },
    )
    .await
    .expect("set");
    let why = invalid(
        ops::set_ticket(
            s,
            &cfg,
            &plain,
            Change {
                queue: Some("ressort-soziales"),
                contact_reply: true,
                ..change("clara")
            },
        )
        .await,
    );
    assert!(why.contains("no Nutzerkonto question"), "{why}");
}

both!(clearing_names_the_contact_by_mail);
async fn clearing_names_the_contact_by_mail(db: &TestDb) {
    let (_t, cfg) = desk("");
    let s = &db.store;
    let number = new_number(
        &file(
            s,
            &cfg,
            at(0),
            &question("Elterngeld oder Kfz-Steuer", "MUK", "k1"),
            "k1",
        )
        .await,
    );
    assert_eq!(queue_of(s, &number).await, "clearing");
    // A Ressort whose services the Betreff does not name: refused before anything is filed,
    // and clearing is told why.
    let o = answer(
        s,
        &cfg,
        CLEARING,
        &number,
        "k2",
        "#queue ressort-inneres\r\n#contact\r\n",
    )
    .await;
    match &o {
        Outcome::Refused { reason, .. } => assert!(reason.contains("name the service"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(queue_of(s, &number).await, "clearing");
    assert!(copies(s, &number).await.is_empty());
    // German, naming nothing: of Wirtschaft's services only Kfz-Steuer matches.
    let o = answer(
        s,
        &cfg,
        CLEARING,
        &number,
        "k3",
        "#queue ressort-wirtschaft\r\n#ansprechperson\r\n",
    )
    .await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(queue_of(s, &number).await, "ressort-wirtschaft");
    let replies = mails(s, &number, "nutzerkonto-efa-outbound").await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].recipient, CITIZEN);
    assert!(
        replies[0].body.contains("Team Kfz-Steuer"),
        "{}",
        replies[0].body
    );
    let c = copies(s, &number).await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].recipient, WIRTSCHAFT);
    let lines = handed_over(s, &number).await;
    assert_eq!(lines[0].0, CLEARING);
}

both!(an_escalation_moves_the_ticket_only_when_configured);
async fn an_escalation_moves_the_ticket_only_when_configured(db: &TestDb) {
    let s = &db.store;
    let late = ts("2026-12-31T12:00:00+01:00");
    // Off (the default): the next level is told, the ticket stays.
    let (_t, off) = desk("");
    let stays = new_number(&file(s, &off, at(0), &request("e1"), "e1").await);
    let notices = escalation::escalate_due(s, &off, late).await.expect("run");
    assert_eq!(notices.len(), 1);
    assert_eq!(queue_of(s, &stays).await, "support");
    assert_eq!(mails(s, &stays, "sla-fristverletzung").await.len(), 1);
    assert!(copies(s, &stays).await.is_empty());

    // On: the breach hands the ticket to the next level, whose copy says why.
    let (_t, on) = desk("\n[sla]\nescalation_moves_ticket = true\n");
    let moves = new_number(&file(s, &on, at(1), &request("e2"), "e2").await);
    let notices = escalation::escalate_due(s, &on, late).await.expect("run");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].kind, NoticeKind::Breach);
    assert_eq!(notices[0].recipient.as_deref(), Some(BETRIEB));
    assert_eq!(queue_of(s, &moves).await, "betrieb");
    assert!(
        mails(s, &moves, "sla-fristverletzung").await.is_empty(),
        "the copy is the notice"
    );
    let c = copies(s, &moves).await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].recipient, BETRIEB);
    in_order(
        &c[0].body,
        &[
            "die Reaktionsfrist ist am",
            "ohne Reaktion abgelaufen",
            "> der Drucker im Buergerbuero",
        ],
    );
    let sent_as: Option<String> = sqlx::query_scalar(
        "SELECT e.message_id FROM sla_escalations e JOIN tickets t ON t.id = e.ticket_id \
         WHERE t.number = $1 AND e.kind = 'breach'",
    )
    .bind(&moves)
    .fetch_one(s.pool())
    .await
    .expect("escalation row");
    assert_eq!(sent_as.as_deref(), Some(c[0].message_id.as_str()));
    let lines = handed_over(s, &moves).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].0, "poststelle");
    // Once: the next round finds nothing due.
    assert!(
        escalation::escalate_due(s, &on, late)
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(copies(s, &moves).await.len(), 1);
}

/// `tickets set --queue` and `--contact-reply` on the binary: it says what was handed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_says_what_was_handed_over() {
    let (t, _cfg) = desk("");
    let data = tempfile::tempdir().expect("tmp");
    let cmd = |args: &[&str]| {
        let mut c = bin::poststelle();
        c.arg("--config")
            .arg(t.path())
            .arg("--data-dir")
            .arg(data.path())
            .args(args);
        c
    };
    let q = data.path().join("q.eml");
    std::fs::write(&q, question("Elterngeld und Kfz-Steuer", "NKB", "cli")).expect("write");
    bin::stdout_of(&mut cmd(&["ingest", q.to_str().expect("utf8")]));
    let list = bin::stdout_of(&mut cmd(&["tickets", "list", "--json"]));
    let first: serde_json::Value =
        serde_json::from_str(list.lines().next().expect("a ticket")).expect("json");
    let number = first["number"].as_str().expect("number").to_string();
    assert_eq!(first["queue"], "clearing");

    // --service needs --contact-reply.
    let out = cmd(&[
        "tickets",
        "set",
        &number,
        "--queue",
        "ressort-soziales",
        "--service",
        "Elterngeld",
    ])
    .output()
    .expect("runs");
    assert!(!out.status.success());
    let out = bin::stdout_of(&mut cmd(&[
        "tickets",
        "set",
        &number,
        "--queue",
        "ressort-wirtschaft",
        "--contact-reply",
        "--service",
        "kfz steuer",
        "--actor",
        "clara",
    ]));
    assert!(out.contains("queue clearing → ressort-wirtschaft"), "{out}");
    assert!(
        out.contains(&format!("handed over to ressort-wirtschaft: copy with 1 article(s) of its history to {WIRTSCHAFT}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "requester {CITIZEN} told the contact person for \"Kfz-Steuer\": Team Kfz-Steuer"
        )),
        "{out}"
    );
    // Not from clearing: refused with the reason, nothing changed.
    let out = cmd(&[
        "tickets",
        "set",
        &number,
        "--queue",
        "ressort-soziales",
        "--contact-reply",
    ])
    .output()
    .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("when the clearing queue \"clearing\" hands"),
        "{err}"
    );
    let show = bin::stdout_of(&mut cmd(&["tickets", "show", &number]));
    assert!(show.contains("queue ressort-wirtschaft"), "{show}");
    assert!(show.contains("handed_over"), "{show}");
}
