//! Staff answers by mail (issue 17, items 1 and 2): the reply address with the ticket's token
//! on mail to staff, a member's answer relayed to the requester (parsed as it goes out), and
//! every forged, misdirected or unauthenticated answer refused — nothing changed, audited, its
//! sender told once. The last test runs the whole way through OpenSMTPD and Dovecot.
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use mail_parser::{MessageParser, MimeHeaders};
use poststelle::config::Config;
use poststelle::outbox::sender::{Mailer, Sender};
use poststelle::reply_token::{Keys, Pattern};
use poststelle::store::Store;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops;

use crate::support::config::{REPLY_KEY, TempConfig};
use crate::support::db::{TestDb, both, scalar};
use crate::support::mail::mail;
use crate::support::tickets::new_number;

const STAFF: &str = "servicedesk@kommunal-it.example";
const MEMBER: &str = "jan.berger@kommunal-it.example";
const PARTNER: &str = "techniker@it-partner.example";
const CITIZEN: &str = "erika@example.org";
const CC: &str = "bernd@example.org";
const OLD_KEY: &[u8] = b"the key before the rotation, 32B";

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// Wednesday 10:00 in Hessen: the request arrives; 10:30: the answer.
fn received() -> Timestamp {
    ts("2026-11-25T10:00:00+01:00")
}
fn answered() -> Timestamp {
    ts("2026-11-25T10:30:00+01:00")
}

/// The support queue with a member address and a member domain; `reply_extra` goes into
/// `[reply]`.
fn desk(reply_extra: &str) -> (TempConfig, Config) {
    let t = TempConfig::staff_desk(&[MEMBER, "@it-partner.example"], reply_extra);
    t.write("old.key", OLD_KEY);
    let cfg = t.load();
    (t, cfg)
}

/// The reply address of ticket `number`, made here from the key as the configuration's own
/// would be: both must agree.
fn token_address(number: &str, key: &[u8]) -> String {
    Pattern::plus_addressing(STAFF)
        .expect("pattern")
        .address(&Keys::new(key.to_vec(), Vec::new()), number)
}

async fn file(store: &Store, cfg: &Config, at: Timestamp, raw: &[u8], key: &str) -> Outcome {
    let mut ing = Ingestor::new(store, cfg);
    ing.clock = Some(at);
    ing.ingest(raw, SourceKey::file(key)).await.expect("ingest")
}

/// Erika's request with Bernd in Cc, Message-ID `<{id}@example.org>`: its ticket number.
async fn open(store: &Store, cfg: &Config, id: &str, subject: &str) -> String {
    let request = mail(
        &[
            "From: Erika Mustermann <erika@example.org>",
            &format!("To: {STAFF}"),
            &format!("Cc: {CC}"),
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}@example.org>"),
        ],
        "Guten Tag,\r\nder Drucker im Buergerbuero druckt nicht.\r\n",
    );
    new_number(&file(store, cfg, received(), &request, id).await)
}

/// An answer from `from` to `to` on ticket `number`, with `extra` header fields.
fn answer(from: &str, to: &str, number: &str, id: &str, extra: &[&str], body: &str) -> Vec<u8> {
    let mut headers = vec![
        format!("From: {from}"),
        format!("To: {to}"),
        format!("Subject: Re: [Ticket#{number}] Neu (support, Klasse 3): Drucker defekt"),
        format!("Message-ID: <{id}@kommunal-it.example>"),
    ];
    headers.extend(extra.iter().map(|h| h.to_string()));
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    mail(&headers, body)
}

const BODY: &str = "Guten Tag Frau Mustermann,\r\n\r\nder Drucker ist repariert.\r\n\r\n\
    Am 25.11.2026 um 10:00 schrieb Servicedesk Kommunale IT:\r\n> Neuer Vorgang\r\n\
    > der Drucker druckt nicht.\r\n";

/// What a refused answer must leave as it was.
#[derive(Debug, PartialEq)]
struct Seen {
    state: String,
    articles: usize,
    outbox: usize,
    reacted: Option<Timestamp>,
    tickets: i64,
}

async fn seen(store: &Store, number: &str) -> Seen {
    let v = ops::show_ticket(store, number).await.expect("show");
    Seen {
        state: v.summary.state,
        articles: v.articles.len(),
        outbox: v.outbox.len(),
        reacted: v.sla.and_then(|s| s.reacted),
        tickets: scalar(store, "SELECT COUNT(*) FROM tickets").await,
    }
}

/// The `staff_answer_refused` audit lines, as JSON.
async fn refusals(store: &Store) -> Vec<serde_json::Value> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit WHERE event = 'staff_answer_refused' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .expect("audit");
    rows.iter()
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect()
}

/// Files `raw` on a ticket and checks that it was refused for `why`, changed nothing on the
/// ticket, left one audit line and its raw row, and told the sender (or not).
#[allow(clippy::too_many_arguments)]
async fn refused(
    store: &Store,
    cfg: &Config,
    number: &str,
    raw: &[u8],
    key: &str,
    why: &str,
    names_ticket: bool,
    explained_to: Option<&str>,
) {
    let before = seen(store, number).await;
    let audited = refusals(store).await.len();
    let outcome = file(store, cfg, answered(), raw, key).await;
    match &outcome {
        Outcome::Refused { number: n, .. } => {
            assert_eq!(n.is_some(), names_ticket, "{outcome:?}");
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    }
    assert_eq!(seen(store, number).await, before, "{why}: nothing changed");
    let lines = refusals(store).await;
    assert_eq!(lines.len(), audited + 1, "{why}: one audit line");
    let line = lines.last().expect("line");
    assert_eq!(line["why"], why, "{line}");
    assert_eq!(line["explained"], explained_to.is_some(), "{line}");
    let explanations = ops::list_outbox(store, None, None)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| r.kind == "auto_reply" && r.ticket.is_none())
        .filter(|r| Some(r.recipient.as_str()) == explained_to)
        .count();
    if explained_to.is_some() {
        assert!(explanations >= 1, "{why}: the sender is told");
    }
}

both!(forged_from_without_a_token_changes_nothing);
async fn forged_from_without_a_token_changes_nothing(db: &TestDb) {
    let (_t, cfg) = desk("");
    let number = open(&db.store, &cfg, "f1", "Drucker defekt").await;
    // A member's address without the reply address: to the support address, tag in Subject.
    let raw = answer(MEMBER, STAFF, &number, "f1a", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "f1a",
        "no_token",
        true,
        Some(MEMBER),
    )
    .await;
    // The queue's own staff address (also the sender of our mail here): refused, and no
    // explanation goes to our own address.
    let raw = answer(STAFF, STAFF, &number, "f1b", &[], BODY);
    refused(
        &db.store, &cfg, &number, &raw, "f1b", "no_token", true, None,
    )
    .await;
    // Threaded by In-Reply-To alone, without the tag.
    let raw = mail(
        &[
            &format!("From: {MEMBER}"),
            &format!("To: {STAFF}"),
            "Subject: Drucker",
            "In-Reply-To: <f1@example.org>",
            "Message-ID: <f1c@kommunal-it.example>",
        ],
        BODY,
    );
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "f1c",
        "no_token",
        true,
        Some(MEMBER),
    )
    .await;
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM raw_messages WHERE outcome = 'refused' AND ticket_id IS NULL"
        )
        .await,
        3
    );
}

both!(a_valid_token_of_another_ticket_changes_nothing);
async fn a_valid_token_of_another_ticket_changes_nothing(db: &TestDb) {
    let (_t, cfg) = desk("");
    let a = open(&db.store, &cfg, "o1", "Drucker defekt").await;
    let b = open(&db.store, &cfg, "o2", "Telefon tot").await;
    let before_a = seen(&db.store, &a).await;
    // A's reply address on an answer to B (B's tag, B's thread).
    let raw = answer(
        MEMBER,
        &token_address(&a, REPLY_KEY),
        &b,
        "o3",
        &["In-Reply-To: <o2@example.org>"],
        BODY,
    );
    refused(
        &db.store,
        &cfg,
        &b,
        &raw,
        "o3",
        "other_ticket",
        true,
        Some(MEMBER),
    )
    .await;
    assert_eq!(seen(&db.store, &a).await, before_a);
    // A's MAC under B's number.
    let forged = token_address(&a, REPLY_KEY).replace(&a, &b);
    let raw = answer(MEMBER, &forged, &b, "o4", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &b,
        &raw,
        "o4",
        "bad_token",
        false,
        Some(MEMBER),
    )
    .await;
    assert_eq!(seen(&db.store, &a).await, before_a);
}

both!(a_tampered_token_changes_nothing);
async fn a_tampered_token_changes_nothing(db: &TestDb) {
    let (_t, cfg) = desk("");
    let number = open(&db.store, &cfg, "t1", "Drucker defekt").await;
    let good = token_address(&number, REPLY_KEY);
    assert_eq!(
        cfg.settings.reply.address(&number).as_deref(),
        Some(good.as_str())
    );
    // One hex digit of the MAC changed.
    let at = good.find('@').expect("@") - 1;
    let mut bytes = good.clone().into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(bytes).expect("ascii");
    let raw = answer(MEMBER, &tampered, &number, "t2", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "t2",
        "bad_token",
        false,
        Some(MEMBER),
    )
    .await;
    // A token made with a key that is not ours.
    let raw = answer(
        MEMBER,
        &token_address(&number, OLD_KEY),
        &number,
        "t3",
        &[],
        BODY,
    );
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "t3",
        "bad_token",
        false,
        Some(MEMBER),
    )
    .await;
}

both!(a_token_from_a_non_staff_address_changes_nothing);
async fn a_token_from_a_non_staff_address_changes_nothing(db: &TestDb) {
    let (_t, cfg) = desk("");
    let number = open(&db.store, &cfg, "n1", "Drucker defekt").await;
    let to = token_address(&number, REPLY_KEY);
    let raw = answer("mallory@evil.example", &to, &number, "n2", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "n2",
        "not_staff",
        true,
        Some("mallory@evil.example"),
    )
    .await;
    // The requester herself, had she got hold of the address, is no staff either.
    let raw = answer(CITIZEN, &to, &number, "n3", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "n3",
        "not_staff",
        true,
        Some(CITIZEN),
    )
    .await;
    // A member's From with an outsider's Sender: both must be staff.
    let raw = answer(
        MEMBER,
        &to,
        &number,
        "n4",
        &["Sender: mallory@evil.example"],
        BODY,
    );
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "n4",
        "not_staff",
        true,
        Some(MEMBER),
    )
    .await;
    // Staff of another queue.
    let raw = answer("betrieb@kommunal-it.example", &to, &number, "n5", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "n5",
        "not_staff",
        true,
        Some("betrieb@kommunal-it.example"),
    )
    .await;
}

both!(an_old_key_token_is_refused_after_its_grace_time);
async fn an_old_key_token_is_refused_after_its_grace_time(db: &TestDb) {
    // Rotated: the old key was accepted until the Monday before the answer.
    let (_t, cfg) = desk(
        "\n[[reply.retired_keys]]\nkey_file = \"old.key\"\naccepted_until = \"2026-11-23T00:00:00+01:00\"\n",
    );
    let number = open(&db.store, &cfg, "k1", "Drucker defekt").await;
    let old = token_address(&number, OLD_KEY);
    let raw = answer(MEMBER, &old, &number, "k2", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "k2",
        "expired_token",
        true,
        Some(MEMBER),
    )
    .await;
    // Within its grace time the same token is relayed.
    let (_t2, within) = desk(
        "\n[[reply.retired_keys]]\nkey_file = \"old.key\"\naccepted_until = \"2026-12-31T00:00:00+01:00\"\n",
    );
    let raw = answer(MEMBER, &old, &number, "k3", &[], BODY);
    let o = file(&db.store, &within, answered(), &raw, "k3").await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
}

both!(a_token_with_failing_dmarc_is_refused_where_the_check_is_on);
async fn a_token_with_failing_dmarc_is_refused_where_the_check_is_on(db: &TestDb) {
    let (_t, cfg) = desk("authserv_id = \"mx.kommunal-it.example\"\n");
    let number = open(&db.store, &cfg, "d1", "Drucker defekt").await;
    let to = token_address(&number, REPLY_KEY);
    let failing = "Authentication-Results: mx.kommunal-it.example; spf=softfail smtp.mailfrom=kommunal-it.example; dmarc=fail header.from=kommunal-it.example";
    let raw = answer(MEMBER, &to, &number, "d2", &[failing], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "d2",
        "not_authenticated",
        true,
        Some(MEMBER),
    )
    .await;
    // A field the sender wrote under another server's name proves nothing.
    let forged =
        "Authentication-Results: mx.evil.example; dmarc=pass header.from=kommunal-it.example";
    let raw = answer(MEMBER, &to, &number, "d3", &[forged, failing], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "d3",
        "not_authenticated",
        true,
        Some(MEMBER),
    )
    .await;
    // No field at all.
    let raw = answer(MEMBER, &to, &number, "d4", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "d4",
        "not_authenticated",
        true,
        Some(MEMBER),
    )
    .await;
    // Our server says DMARC passed: relayed.
    let passing = "Authentication-Results: mx.kommunal-it.example; dkim=pass; dmarc=pass (p=quarantine) header.from=kommunal-it.example";
    let raw = answer(MEMBER, &to, &number, "d5", &[passing], BODY);
    let o = file(&db.store, &cfg, answered(), &raw, "d5").await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
}

/// Sends what is due with the file transport; the mail with Message-ID `id`, parsed from its
/// bytes, and the bytes.
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

/// The outbox row of a ticket's relayed answer.
async fn relay_row(store: &Store, number: &str) -> ops::OutboxView {
    ops::show_ticket(store, number)
        .await
        .expect("show")
        .outbox
        .into_iter()
        .find(|r| r.kind == "staff_answer")
        .expect("a relayed answer")
}

both!(a_members_answer_with_the_token_is_relayed_and_without_it_refused);
async fn a_members_answer_with_the_token_is_relayed_and_without_it_refused(db: &TestDb) {
    let (t, cfg) = desk("");
    let number = open(&db.store, &cfg, "r1", "Drucker im Bürgerbüro defekt").await;

    // The staff copy carries the ticket's reply address.
    let copy = ops::show_ticket(&db.store, &number)
        .await
        .expect("show")
        .outbox
        .into_iter()
        .find(|r| r.kind == "staff_copy")
        .expect("staff copy");
    let raw = sent(&db.store, &cfg, t.dir.path(), &copy.message_id).await;
    let parsed = MessageParser::default().parse(&raw).expect("parse");
    let reply_to = parsed
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    let token = token_address(&number, REPLY_KEY);
    assert_eq!(reply_to, Some(token.as_str()));
    // … and the acknowledgement to the citizen has none.
    let ack = ops::show_ticket(&db.store, &number)
        .await
        .expect("show")
        .outbox
        .into_iter()
        .find(|r| r.kind == "acknowledgement")
        .expect("acknowledgement");
    let raw = std::fs::read(
        t.dir
            .path()
            .join("sent")
            .join(format!("{}.eml", ack.message_id)),
    )
    .expect("sent");
    let parsed = MessageParser::default().parse(&raw).expect("parse");
    assert!(
        parsed.reply_to().is_none(),
        "only mail to staff has a reply address"
    );

    // Without the token: nothing, and the member is told why.
    let tickets = scalar(&db.store, "SELECT COUNT(*) FROM tickets").await;
    let raw = answer(MEMBER, STAFF, &number, "r2", &[], BODY);
    refused(
        &db.store,
        &cfg,
        &number,
        &raw,
        "r2",
        "no_token",
        true,
        Some(MEMBER),
    )
    .await;
    let explanation = ops::list_outbox(&db.store, None, None)
        .await
        .expect("outbox")
        .into_iter()
        .find(|r| r.recipient == MEMBER)
        .expect("explanation");
    assert!(
        explanation.subject.starts_with("Nicht weitergeleitet"),
        "{explanation:?}"
    );
    let raw = sent(&db.store, &cfg, t.dir.path(), &explanation.message_id).await;
    let text = MessageParser::default()
        .parse(&raw)
        .and_then(|m| m.body_text(0).map(|b| b.to_string()))
        .expect("text");
    assert!(text.contains("Antwortadresse des Vorgangs"), "{text}");
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM tickets").await,
        tickets
    );

    // With the token, from the member's personal address: relayed.
    let raw = answer(MEMBER, &token, &number, "r3", &[], BODY);
    let o = file(&db.store, &cfg, answered(), &raw, "r3").await;
    assert_eq!(
        o,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM tickets").await,
        tickets
    );
    let row = relay_row(&db.store, &number).await;
    assert_eq!(row.recipient, CITIZEN);
    let raw = sent(&db.store, &cfg, t.dir.path(), &row.message_id).await;
    let m = MessageParser::default().parse(&raw).expect("parse");
    let first = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string)
    };
    assert_eq!(
        first(m.from()).as_deref(),
        Some(STAFF),
        "from the support address"
    );
    assert_eq!(first(m.to()).as_deref(), Some(CITIZEN));
    assert_eq!(first(m.cc()).as_deref(), Some(CC), "the first mail's Cc");
    assert_eq!(
        m.subject(),
        Some(format!("Re: [Ticket#{number}] Drucker im Bürgerbüro defekt").as_str())
    );
    assert_eq!(
        m.in_reply_to().as_text(),
        Some("r1@example.org"),
        "threaded"
    );
    assert!(
        m.reply_to().is_none(),
        "the requester answers the support address"
    );
    let whole = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(!whole.contains("jan.berger"), "no staff address: {whole}");
    assert!(!whole.contains("+t"), "no reply token to the requester");
    let body = m.body_text(0).expect("text").to_string();
    assert!(body.contains("der Drucker ist repariert."), "{body}");
    assert!(
        !body.contains("Neuer Vorgang") && !body.contains("schrieb"),
        "{body}"
    );

    // On the ticket: an outbound article from the support address; the reaction is the relay.
    let v = ops::show_ticket(&db.store, &number).await.expect("show");
    let article = v
        .articles
        .iter()
        .find(|a| a.message_id.as_deref() == Some(row.message_id.as_str()))
        .expect("article");
    assert_eq!(article.kind, "outbound");
    assert_eq!(article.sender.as_deref(), Some(STAFF));
    let sla = v.sla.expect("clock");
    assert_eq!(
        sla.reacted,
        Some(answered()),
        "the reaction is the relay's time"
    );
    assert_eq!(sla.reacted_by.as_deref(), Some(MEMBER));
    assert_eq!(sla.met, Some(true));
    assert_eq!(sla.service_used_minutes, Some(30));
    assert!(
        v.audit
            .iter()
            .any(|a| a.event == "staff_answer_relayed" && a.detail["by"] == MEMBER)
    );

    // The citizen's answer to the relayed mail threads onto the ticket.
    let reply = mail(
        &[
            &format!("From: {CITIZEN}"),
            &format!("To: {STAFF}"),
            "Subject: Re: Drucker",
            &format!("In-Reply-To: <{}>", row.message_id),
            "Message-ID: <r5@example.org>",
        ],
        "Danke, geht wieder.\r\n",
    );
    assert!(
        matches!(file(&db.store, &cfg, answered(), &reply, "r5").await, Outcome::FollowUp { number: n, .. } if n == number)
    );

    // A member by domain answers later: relayed too, but the reaction stays the first.
    let raw = answer(
        PARTNER,
        &token,
        &number,
        "r4",
        &[],
        "Nachtrag: Toner getauscht.\r\n",
    );
    let later = answered() + SignedDuration::from_mins(10);
    assert_eq!(
        file(&db.store, &cfg, later, &raw, "r4").await,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    let v = ops::show_ticket(&db.store, &number).await.expect("show");
    assert_eq!(v.sla.expect("clock").reacted, Some(answered()));
    // Filed again (a re-delivery): nothing twice.
    assert!(matches!(
        file(&db.store, &cfg, later, &raw, "r4").await,
        Outcome::Duplicate { .. }
    ));
    assert_eq!(
        ops::show_ticket(&db.store, &number)
            .await
            .expect("show")
            .outbox
            .iter()
            .filter(|r| r.kind == "staff_answer")
            .count(),
        2
    );
}

both!(machine_mail_to_a_reply_address_is_neither_relayed_nor_answered);
async fn machine_mail_to_a_reply_address_is_neither_relayed_nor_answered(db: &TestDb) {
    let (_t, cfg) = desk("");
    let number = open(&db.store, &cfg, "m1", "Drucker defekt").await;
    let before = seen(&db.store, &number).await;
    let raw = answer(
        MEMBER,
        &token_address(&number, REPLY_KEY),
        &number,
        "m2",
        &["Auto-Submitted: auto-replied"],
        "Ich bin bis Montag nicht im Haus.\r\n",
    );
    let o = file(&db.store, &cfg, answered(), &raw, "m2").await;
    assert!(
        !matches!(o, Outcome::StaffAnswer { .. } | Outcome::NewTicket { .. }),
        "{o:?}"
    );
    let after = seen(&db.store, &number).await;
    assert_eq!(
        (after.outbox, after.reacted, after.tickets),
        (before.outbox, before.reacted, before.tickets)
    );
    assert!(
        ops::list_outbox(&db.store, None, None)
            .await
            .expect("outbox")
            .iter()
            .all(|r| r.recipient != MEMBER),
        "no explanation to an auto-reply"
    );
}

/// Header and body safety: the staff member's subject cannot add a header to the relayed mail
/// nor to the explanation (which names it); an HTML answer is relayed as text; quote and
/// signature are stripped; the answer's attachments go along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_tricks_html_quotes_and_attachments() {
    let db = TestDb::sqlite().await;
    let (t, cfg) = desk("");
    let number = open(&db.store, &cfg, "s1", "Drucker defekt").await;
    let token = token_address(&number, REPLY_KEY);
    // CR LF in encoded words (B and Q) and a folded line that tries a header of its own.
    let tricks = [
        "Subject: =?UTF-8?B?UmU6IHgNCkJjYzogZXZpbEBldmlsLmV4YW1wbGU=?=",
        "Subject: =?utf-8?q?Re=3A_a=0D=0AX-Injected=3A_1?=",
    ];
    for (i, subject) in tricks.iter().enumerate() {
        for (to, key) in [(token.as_str(), "ok"), (STAFF, "refused")] {
            let raw = mail(
                &[
                    &format!("From: {MEMBER}"),
                    &format!("To: {to}"),
                    subject,
                    "In-Reply-To: <s1@example.org>",
                    &format!("Message-ID: <s{i}{key}@kommunal-it.example>"),
                ],
                "Erledigt.\r\n",
            );
            file(&db.store, &cfg, answered(), &raw, &format!("s{i}{key}")).await;
        }
    }
    let rows = ops::list_outbox(&db.store, None, None)
        .await
        .expect("outbox");
    let checked: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == "staff_answer" || r.recipient == MEMBER)
        .collect();
    assert_eq!(checked.len(), 4, "two relayed, two explained: {rows:?}");
    for r in checked {
        let raw = sent(&db.store, &cfg, t.dir.path(), &r.message_id).await;
        let m = MessageParser::default().parse(&raw).expect("parse");
        for h in m.headers() {
            let name = h.name().to_ascii_lowercase();
            assert!(
                name != "bcc" && name != "x-injected",
                "injected {name}: {}",
                String::from_utf8_lossy(&raw)
            );
        }
        assert!(
            !m.subject().unwrap_or("").contains('\n'),
            "{:?}",
            m.subject()
        );
        let header = &raw[..raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end")];
        let header = String::from_utf8_lossy(header);
        assert!(
            !header
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
            "{header}"
        );
    }

    // HTML only, with script, tracker, javascript link and a Gmail quote.
    let html = "<html><head><script>steal()</script></head><body><div onclick=\"steal()\">Der Drucker ist <b>repariert</b>.</div>\
        <img src=\"https://tracker.example/p.gif\"><a href=\"javascript:steal()\">Details</a>\
        <div class=\"gmail_quote\">Am Mi., 25. Nov. 2026 schrieb Servicedesk:<blockquote>Neuer Vorgang</blockquote></div></body></html>";
    let raw = mail(
        &[
            &format!("From: {MEMBER}"),
            &format!("To: {token}"),
            &format!("Subject: Re: [Ticket#{number}] x"),
            "Message-ID: <h1@kommunal-it.example>",
            "MIME-Version: 1.0",
            "Content-Type: text/html; charset=utf-8",
        ],
        html,
    );
    assert_eq!(
        file(&db.store, &cfg, answered(), &raw, "h1").await,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    let row = ops::list_outbox(&db.store, None, None)
        .await
        .expect("outbox")
        .into_iter()
        .rfind(|r| r.kind == "staff_answer")
        .expect("row");
    let raw = sent(&db.store, &cfg, t.dir.path(), &row.message_id).await;
    let m = MessageParser::default().parse(&raw).expect("parse");
    assert!(
        m.parts
            .iter()
            .all(|p| !matches!(p.body, mail_parser::PartType::Html(_))),
        "relayed as text"
    );
    let whole = String::from_utf8_lossy(&raw);
    for bad in [
        "text/html",
        "<script",
        "steal",
        "tracker.example",
        "javascript:",
        "Neuer Vorgang",
        "onclick",
    ] {
        assert!(!whole.contains(bad), "{bad} in {whole}");
    }
    assert!(
        m.body_text(0)
            .expect("text")
            .contains("Der Drucker ist repariert.")
    );

    // Text with quote, Outlook header block and signature, and a PDF attached.
    let pdf = b"%PDF-1.4 pruefbericht \x00\x01\x02 ende".to_vec();
    let b64 = base64(&pdf);
    let body = format!(
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Anbei der Pruefbericht.\r\n\r\n-- \r\nJan Berger\r\njan.berger@kommunal-it.example\r\n\r\n\
         Von: Servicedesk <servicedesk@kommunal-it.example>\r\nGesendet: Mittwoch\r\n> alt\r\n\
         --b\r\nContent-Type: application/pdf; name=\"befund.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"befund.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    let raw = mail(
        &[
            &format!("From: Jan Berger <{MEMBER}>"),
            &format!("To: {token}"),
            &format!("Subject: Re: [Ticket#{number}] x"),
            "Message-ID: <a1@kommunal-it.example>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=b",
        ],
        &body,
    );
    assert_eq!(
        file(&db.store, &cfg, answered(), &raw, "a1").await,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    let row = ops::list_outbox(&db.store, None, None)
        .await
        .expect("outbox")
        .into_iter()
        .rfind(|r| r.kind == "staff_answer")
        .expect("row");
    let raw = sent(&db.store, &cfg, t.dir.path(), &row.message_id).await;
    let m = MessageParser::default().parse(&raw).expect("parse");
    assert_eq!(
        m.body_text(0).expect("text").trim(),
        "Anbei der Pruefbericht."
    );
    let atts: Vec<_> = m.attachments().collect();
    assert_eq!(
        atts.len(),
        1,
        "the answer's attachment, not the whole answer"
    );
    assert_eq!(atts[0].attachment_name(), Some("befund.pdf"));
    assert_eq!(
        atts[0]
            .content_type()
            .map(|c| (c.ctype().to_string(), c.subtype().map(str::to_string))),
        Some(("application".into(), Some("pdf".into())))
    );
    assert_eq!(atts[0].contents(), pdf.as_slice());
    assert!(
        !String::from_utf8_lossy(&raw)
            .to_lowercase()
            .contains("jan.berger")
    );
    // The ticket's article lists it.
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM attachments x JOIN articles a ON a.id = x.article_id \
             WHERE a.kind = 'outbound' AND x.name = 'befund.pdf'"
        )
        .await,
        1
    );
    db.finish().await;
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The mail with Message-ID `id` in `user`'s INBOX, once it arrived (delivery through
/// OpenSMTPD and LMTP takes a moment): its bytes.
async fn arrived(user: &str, id: &str) -> Option<Vec<u8>> {
    let imap = crate::support::daemon::env("POSTSTELLE_TEST_IMAP");
    for _ in 0..50 {
        let found = crate::support::imap::messages(&imap, user, "INBOX")
            .await
            .into_iter()
            .find(|raw| {
                MessageParser::default()
                    .parse(raw)
                    .and_then(|m| m.message_id().map(|i| i == id))
                    .unwrap_or(false)
            });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// Sends `raw` through the test's OpenSMTPD, as a mail client submits it.
async fn submit(from: &str, to: &str, raw: &[u8]) {
    use lettre::AsyncTransport;
    let addr = crate::support::daemon::env("POSTSTELLE_TEST_SMTP");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host)
        .port(port.parse().expect("port"))
        .tls(lettre::transport::smtp::client::Tls::None)
        .build();
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    smtp.send_raw(&envelope, raw).await.expect("submitted");
}

/// End to end through the real servers: a citizen's mail to the support mailbox, filed from
/// there; the acknowledgement and the staff copy go out through OpenSMTPD; a member reads the
/// copy over IMAP and answers its Reply-To through OpenSMTPD; the answer, filed from the
/// support mailbox, reaches the citizen's mailbox with the ticket tag, threaded, from the
/// support address, without the member's address; the reaction is the relay's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_smtp_and_imap_a_members_answer_reaches_the_citizen() {
    use crate::support::daemon::{env, unique};
    let smtp = env("POSTSTELLE_TEST_SMTP");
    let (host, port) = smtp.rsplit_once(':').expect("host:port");
    let text = TempConfig::shipped_text()
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace(
            "from = \"servicedesk@kommunal-it.example\"",
            "from = \"support@example.test\"",
        )
        .replacen(
            "staff = \"servicedesk@kommunal-it.example\"\n",
            "staff = \"staff@example.test\"\nmembers = [\"max@example.test\"]\n",
            1,
        )
        + &format!(
            "\n[outbox.smtp]\nhost = \"{host}\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 5\n\
             \n[reply]\nkey_file = \"reply.key\"\n"
        );
    let t = TempConfig::new(&text, &[]);
    t.write("reply.key", REPLY_KEY);
    let cfg = t.load();
    let store = Store::open(&Store::default_url(t.dir.path()))
        .await
        .expect("store");
    let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
    let sender = Sender {
        store: &store,
        config: &cfg,
        mailer: &mailer,
    };
    let tag = unique();

    // The citizen writes to the support address.
    let request_id = format!("{tag}.request@example.test");
    let request = mail(
        &[
            "From: Erika Mustermann <erika@example.test>",
            "To: support@example.test",
            &format!("Subject: Drucker im Buergerbuero defekt {tag}"),
            &format!("Message-ID: <{request_id}>"),
        ],
        "Guten Tag,\r\nder Drucker druckt nicht.\r\n",
    );
    submit("erika@example.test", "support@example.test", &request).await;
    let filed = arrived("support", &request_id)
        .await
        .expect("in the support mailbox");
    let number = new_number(&file(&store, &cfg, received(), &filed, &format!("{tag}.1")).await);
    let s = sender.send_due(10).await.expect("send");
    assert_eq!(
        (s.sent, s.permanent_failures),
        (2, 0),
        "acknowledgement and staff copy"
    );

    // Acknowledgement in the citizen's mailbox; the staff copy in the staff mailbox.
    let rows = ops::show_ticket(&store, &number)
        .await
        .expect("show")
        .outbox;
    let id_of = |kind: &str| {
        rows.iter()
            .find(|r| r.kind == kind)
            .map(|r| r.message_id.clone())
            .expect(kind)
    };
    assert!(arrived("erika", &id_of("acknowledgement")).await.is_some());
    let copy = arrived("staff", &id_of("staff_copy"))
        .await
        .expect("staff copy");
    let copy = MessageParser::default().parse(&copy).expect("parse");
    let reply_to = copy
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .expect("the copy has a Reply-To")
        .to_string();
    assert!(
        reply_to.starts_with(&format!("support+t{number}.")),
        "{reply_to}"
    );

    // Max, a member of the queue, answers the copy from his own address, as his client does.
    let answer_id = format!("{tag}.answer@example.test");
    let answer = mail(
        &[
            "From: Max Muster <max@example.test>",
            &format!("To: {reply_to}"),
            &format!("Subject: Re: {}", copy.subject().expect("subject")),
            &format!("In-Reply-To: <{}>", copy.message_id().expect("id")),
            &format!("Message-ID: <{answer_id}>"),
        ],
        &format!(
            "Guten Tag,\r\nder Toner war leer und ist getauscht.\r\n\r\n-- \r\nMax Muster, max@example.test\r\n\r\n\
             Am 25.11.2026 um 10:00 schrieb Servicedesk <support@example.test>:\r\n> {}\r\n",
            copy.body_text(0)
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or("")
        ),
    );
    submit("max@example.test", &reply_to, &answer).await;
    // Plus-addressing: the server delivers the reply address to the support mailbox.
    let filed = arrived("support", &answer_id)
        .await
        .expect("the answer in the support mailbox");
    assert_eq!(
        file(&store, &cfg, answered(), &filed, &format!("{tag}.2")).await,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    let s = sender.send_due(10).await.expect("send");
    assert_eq!((s.sent, s.permanent_failures), (1, 0), "the relayed answer");

    let relayed = ops::show_ticket(&store, &number)
        .await
        .expect("show")
        .outbox
        .into_iter()
        .find(|r| r.kind == "staff_answer")
        .expect("relayed");
    let raw = arrived("erika", &relayed.message_id)
        .await
        .expect("in the citizen's mailbox");
    let m = MessageParser::default().parse(&raw).expect("parse");
    assert_eq!(
        m.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("support@example.test")
    );
    assert_eq!(
        m.subject(),
        Some(format!("Re: [Ticket#{number}] Drucker im Buergerbuero defekt {tag}").as_str())
    );
    assert_eq!(
        m.in_reply_to().as_text(),
        Some(request_id.as_str()),
        "threaded"
    );
    let body = m.body_text(0).expect("text").to_string();
    assert!(
        body.contains("der Toner war leer und ist getauscht."),
        "{body}"
    );
    assert!(!body.contains("schrieb") && !body.contains("> "), "{body}");
    // Not even in the Received lines: OpenSMTPD names the envelope, which is ours.
    assert!(
        !String::from_utf8_lossy(&raw).contains("max@example.test"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let sla = ops::show_ticket(&store, &number)
        .await
        .expect("show")
        .sla
        .expect("clock");
    assert_eq!(
        sla.reacted,
        Some(answered()),
        "the reaction is the relay's time"
    );

    // The relay took the ticket, and was the citizen's notice: no "wird bearbeitet" on top.
    let view = ops::show_ticket(&store, &number).await.expect("show");
    assert_eq!(view.summary.state, "open");
    assert!(
        !view
            .outbox
            .iter()
            .any(|r| r.subject.contains("wird bearbeitet")),
        "{:?}",
        view.outbox
    );

    // Max resolves it with a command to the same reply address: the citizen gets the notice,
    // threaded, from the support address, asking for an answer if the problem persists.
    let resolve_id = format!("{tag}.resolve@example.test");
    let resolve = mail(
        &[
            "From: Max Muster <max@example.test>",
            &format!("To: {reply_to}"),
            &format!("Subject: Re: {}", copy.subject().expect("subject")),
            &format!("Message-ID: <{resolve_id}>"),
        ],
        "#status resolved\r\n",
    );
    submit("max@example.test", &reply_to, &resolve).await;
    let filed = arrived("support", &resolve_id)
        .await
        .expect("the command in the support mailbox");
    let resolved_at = ts("2026-11-25T11:30:00+01:00");
    assert_eq!(
        file(&store, &cfg, resolved_at, &filed, &format!("{tag}.3")).await,
        Outcome::StaffAnswer {
            number: number.clone()
        }
    );
    let s = sender.send_due(10).await.expect("send");
    assert_eq!((s.sent, s.permanent_failures), (1, 0), "the status notice");
    let view = ops::show_ticket(&store, &number).await.expect("show");
    assert_eq!(view.summary.state, "resolved");
    let notice = view
        .outbox
        .iter()
        .find(|r| r.subject.contains("Gelöst"))
        .expect("the resolved notice");
    assert_eq!(notice.recipient, "erika@example.test");
    let raw = arrived("erika", &notice.message_id)
        .await
        .expect("the notice in the citizen's mailbox");
    let n = MessageParser::default().parse(&raw).expect("parse");
    assert_eq!(
        n.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("support@example.test")
    );
    let subject = n.subject().expect("subject").to_string();
    assert_eq!(
        subject,
        format!("[Ticket#{number}] Gelöst: Drucker im Buergerbuero defekt {tag}")
    );
    assert_eq!(
        n.in_reply_to().as_text(),
        Some(request_id.as_str()),
        "threaded"
    );
    assert_eq!(
        n.header("Auto-Submitted").and_then(|h| h.as_text()),
        Some("auto-replied")
    );
    let body = n.body_text(0).expect("text").to_string();
    assert!(
        body.contains("Sollte das Problem weiterhin bestehen, antworten Sie bitte"),
        "{body}"
    );
    assert!(!String::from_utf8_lossy(&raw).contains("max@example.test"));

    // The citizen answers the notice: the ticket is open again, and staff get the copy.
    let again_id = format!("{tag}.again@example.test");
    let again = mail(
        &[
            "From: Erika Mustermann <erika@example.test>",
            "To: support@example.test",
            &format!("Subject: Re: {subject}"),
            &format!("In-Reply-To: <{}>", notice.message_id),
            &format!("Message-ID: <{again_id}>"),
        ],
        "Guten Tag,\r\nder Drucker druckt wieder nicht.\r\n",
    );
    submit("erika@example.test", "support@example.test", &again).await;
    let filed = arrived("support", &again_id)
        .await
        .expect("the citizen's answer in the support mailbox");
    assert_eq!(
        file(
            &store,
            &cfg,
            ts("2026-11-26T09:00:00+01:00"),
            &filed,
            &format!("{tag}.4")
        )
        .await,
        Outcome::FollowUp {
            number: number.clone(),
            reopened: true
        }
    );
    let view = ops::show_ticket(&store, &number).await.expect("show");
    assert_eq!(view.summary.state, "open");
    let s = sender.send_due(10).await.expect("send");
    assert_eq!((s.sent, s.permanent_failures), (1, 0), "the staff copy");
    // The reaction stays the relay's time, whatever came after.
    assert_eq!(view.sla.expect("clock").reacted, Some(answered()));
    store.close().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `check` says the key is missing and how to make one, and makes none; `ingest` makes it
/// (32 random octets, mode 0600); no output ever shows it.
#[test]
fn the_reply_key_is_made_by_ingest_only_and_never_printed() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempConfig::new(&TempConfig::shipped_text(), &[]);
    let key = t.dir.path().join("poststelle-data/reply-token.key");
    let run = |args: &[&str]| {
        let out = crate::support::bin::poststelle()
            .arg("--config")
            .arg(t.path())
            .args(args)
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, out) = run(&["check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "note: the reply token key {} does not exist yet",
            key.display()
        )) && out.contains("`poststelle run` and `poststelle ingest` create it")
            && out.contains("head -c 32 /dev/urandom"),
        "{out}"
    );
    assert!(!key.exists(), "check makes no key");

    t.write(
        "mail/1.eml",
        &crate::support::mail::request(CITIZEN, "Drucker defekt", "k@example.org"),
    );
    let mail_dir = t.dir.path().join("mail");
    let (code, ingest_out) = run(&["ingest", mail_dir.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{ingest_out}");
    let bytes = std::fs::read(&key).expect("ingest made the key");
    assert_eq!(bytes.len(), 32);
    let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (code, out) = run(&["check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("note: the reply token key"), "{out}");
    let (_, shown) = run(&["tickets", "list", "--json"]);
    for text in [&ingest_out, &out, &shown] {
        assert!(!text.contains(&hex(&bytes)), "the key in {text}");
        assert!(
            !text.contains(&hex(&bytes)[..16]),
            "part of the key in {text}"
        );
    }
    // A second ingest keeps the key.
    run(&["ingest", mail_dir.to_str().expect("utf-8")]);
    assert_eq!(std::fs::read(&key).expect("key"), bytes);
}

/// Every problem of `[reply]` and of queue members, each with its line and a fix; a key
/// that is too short is refused without showing it.
#[test]
fn reply_configuration_problems_name_line_and_fix() {
    let text = TempConfig::shipped_text().replacen(
        "staff = \"servicedesk@kommunal-it.example\"\n",
        "staff = \"servicedesk@kommunal-it.example\"\nmembers = [\"@kommunal-it.example\", \"nobody\"]\n",
        1,
    ) + "\n[reply]\naddress = \"support+{ticket}@kommunal-it.example\"\n\
           key_file = \"short.key\"\nauthserv_id = \"mx example; x\"\n\
           [[reply.retired_keys]]\nkey_file = \"old.key\"\naccepted_until = \"bald\"\n\
           [[reply.retired_keys]]\nkey_file = \"missing.key\"\n\
           accepted_until = \"2027-01-31T00:00:00+01:00\"\n";
    let t = TempConfig::new(&text, &[]);
    t.write("short.key", b"geheim-kurz\n");
    t.write("old.key", OLD_KEY);
    let out = crate::support::bin::poststelle()
        .arg("--config")
        .arg(t.path())
        .arg("check")
        .output()
        .expect("runs");
    let out =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = |prefix: &str| {
        text.lines()
            .position(|l| l.starts_with(prefix))
            .expect("line")
            + 1
    };
    let expect = [
        (
            line("members = "),
            "member \"nobody\" is neither an address nor a domain",
        ),
        (
            line("address = \"support+"),
            "reply.address: the reply address pattern",
        ),
        (
            line("key_file = \"short.key\""),
            "is too short (11 octets; at least 16)",
        ),
        (
            line("authserv_id"),
            "reply.authserv_id \"mx example; x\" is no authserv-id",
        ),
        (
            line("accepted_until = \"bald\""),
            "accepted_until \"bald\" is no instant",
        ),
        (line("key_file = \"missing.key\""), "does not exist"),
    ];
    for (line, what) in expect {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("poststelle.toml:{line}:")) && l.contains(what)),
            "line {line}: {what}\n{out}"
        );
    }
    assert!(out.contains("6 problem(s) found"), "{out}");
    assert!(out.matches("fix:").count() >= 6, "{out}");
    assert!(!out.contains("geheim"), "the key is never shown: {out}");
}

/// The SLA notice to the escalation address carries the ticket's reply address as the staff
/// copy does, and the escalation address (the queue's own) may answer with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_carries_the_reply_address_and_may_be_answered() {
    let db = TestDb::sqlite().await;
    let (t, cfg) = desk("");
    let number = open(&db.store, &cfg, "e1", "Drucker defekt").await;
    let notices = poststelle::jobs::escalation::escalate_due(
        &db.store,
        &cfg,
        ts("2026-12-01T12:00:00+01:00"),
    )
    .await
    .expect("escalate");
    assert!(!notices.is_empty(), "a breach notice");
    let row = ops::show_ticket(&db.store, &number)
        .await
        .expect("show")
        .outbox
        .into_iter()
        .find(|r| r.kind == "escalation")
        .expect("escalation row");
    assert_eq!(row.recipient, "servicedesk-leitung@kommunal-it.example");
    let raw = sent(&db.store, &cfg, t.dir.path(), &row.message_id).await;
    let m = MessageParser::default().parse(&raw).expect("parse");
    let token = token_address(&number, REPLY_KEY);
    assert_eq!(
        m.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(token.as_str())
    );
    let raw = answer(
        "servicedesk-leitung@kommunal-it.example",
        &token,
        &number,
        "e2",
        &[],
        "Wir übernehmen.\r\n",
    );
    assert_eq!(
        file(&db.store, &cfg, ts("2026-12-01T12:05:00+01:00"), &raw, "e2").await,
        Outcome::StaffAnswer { number }
    );
    db.finish().await;
}

both!(explanations_are_held_back_by_the_loop_brake);
/// A sender refused again and again gets `ingest.auto_reply_limit_per_hour` explanations
/// within the hour; the rest are recorded as held back — in one batch and across batches.
async fn explanations_are_held_back_by_the_loop_brake(db: &TestDb) {
    let (_t, cfg) = desk("");
    let number = open(&db.store, &cfg, "lreq", "Drucker defekt").await;
    let limit = cfg.settings.ingest.auto_reply_limit_per_hour as usize;
    let to = token_address(&number, REPLY_KEY);
    // Three one by one, the rest in one batch.
    for i in 0..3 {
        let raw = answer(
            "mallory@evil.example",
            &to,
            &number,
            &format!("l{i}"),
            &[],
            BODY,
        );
        file(&db.store, &cfg, answered(), &raw, &format!("l{i}")).await;
    }
    let raws: Vec<Vec<u8>> = (3..limit + 3)
        .map(|i| {
            answer(
                "mallory@evil.example",
                &to,
                &number,
                &format!("l{i}"),
                &[],
                BODY,
            )
        })
        .collect();
    let items: Vec<_> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| poststelle::ticket::ingest::Incoming {
            raw,
            source: SourceKey::file(&format!("batch{i}")),
        })
        .collect();
    let mut ing = Ingestor::new(&db.store, &cfg);
    ing.clock = Some(answered());
    let outcomes = ing.ingest_batch(&items).await.expect("batch");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Refused { .. }))
    );
    let rows: Vec<_> = ops::list_outbox(&db.store, None, None)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| r.recipient == "mallory@evil.example")
        .collect();
    assert_eq!(rows.len(), limit + 3, "each refusal is recorded");
    assert_eq!(
        rows.iter().filter(|r| r.state == "scheduled").count(),
        limit
    );
    assert_eq!(rows.iter().filter(|r| r.state == "suppressed").count(), 3);
    assert_eq!(refusals(&db.store).await.len(), limit + 3);
}
