//! Bounces of notices and unsubscribing by mail (issue 16, item 6), on SQLite and PostgreSQL:
//! real failure reports of Postfix, Exim, Exchange, Office 365, OpenSMTPD, Sendmail and qmail
//! (tests/corpus/bounces/sisimai), rewritten the way they would come back to us — addressed to
//! the notice's bounce token, returning the notice's Message-ID — and filed like any mail.
//! A failure counts once per notice for its member, a delay does not; the member is flagged at
//! `announcements.bounce_limit` and skipped by the next notice; a forged token changes nothing;
//! an unsubscribe mail unsubscribes where the list offers it. None of these mails opens a
//! ticket or gets a reply. `bounces_smtp_*` runs it end to end through OpenSMTPD and Dovecot
//! (tests/run.sh).

use jiff::{Timestamp, ToSpan};
use poststelle::announce::{self, Plan};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::store::lists::{self as lists_store, MemberFields};
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use serde_json::Value;

use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both, scalar};

/// A configuration with the platform "zidkor" on the test's database; bounce limit `limit`.
fn desk(db: &TestDb, limit: u32) -> TempConfig {
    let text = format!(
        "database_url = {:?}\n{}\n[[platform]]\nname = \"zidkor\"\ncalendar = \"rlp\"\n\
         lists = [\"verteiler\"]\n\n[announcements]\nbounce_limit = {limit}\n",
        db.url(),
        TempConfig::shipped_text()
    );
    TempConfig::new(&text, &[])
}

async fn list(store: &Store, name: &str, unsubscribe: bool, members: &[&str]) {
    lists_store::create(store, name, "", unsubscribe, "test")
        .await
        .expect("list");
    for m in members {
        lists_store::add_member(store, name, m, &MemberFields::default(), "test")
            .await
            .expect("member");
    }
}

/// Announces a maintenance to `lists` (the platform's when empty): the announcement's id and
/// its mails as (recipient, Message-ID).
async fn announce(
    store: &Store,
    config: &Config,
    lists: &[&str],
) -> (i64, announce::FanOut, Vec<(String, String)>) {
    let start = Timestamp::now() + (20 * 24).hours();
    let done = announce::schedule(
        store,
        config,
        Plan {
            platform: "zidkor".into(),
            start,
            end: start + 2.hours(),
            reason: "Umzug".into(),
            impact: "keine Anmeldung".into(),
            lists: lists.iter().map(|l| l.to_string()).collect(),
            emergency: false,
        },
        Timestamp::now(),
    )
    .await
    .expect("schedule");
    let mails = sqlx::query_as(
        "SELECT recipient, message_id FROM outbox WHERE announcement_id = $1 ORDER BY recipient",
    )
    .bind(done.announcement)
    .fetch_all(store.pool())
    .await
    .expect("mails");
    (done.announcement, done.fan_out, mails)
}

fn message_id_of(mails: &[(String, String)], recipient: &str) -> String {
    mails
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(recipient))
        .map(|(_, id)| id.clone())
        .unwrap_or_else(|| panic!("no notice to {recipient} in {mails:?}"))
}

/// A real failure report from the corpus as it would come back for a notice: the mbox line
/// dropped, its own Message-ID `own_id`, addressed to `to` (the notice's bounce token, or the
/// plain support address), with `Delivered-To` as Dovecot and Postfix add it unless
/// `delivered_to` is false, and the Message-ID of the mail it returns replaced by `notice`.
fn bounce_sample(name: &str, to: &str, own_id: &str, notice: &str, delivered_to: bool) -> Vec<u8> {
    let path = crate::support::corpus().join("bounces/sisimai").join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let returned = poststelle::dsn::read(&raw).returned_ids;
    let mut text = String::from_utf8_lossy(&raw).into_owned();
    if text.starts_with("From ") {
        text = text
            .split_once('\n')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
    }
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let blank = format!("{nl}{nl}");
    let (header, body) = text.split_once(&blank).expect("a header");
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in header.split(nl) {
        if line.starts_with([' ', '\t']) {
            if !skipping {
                kept.push(line);
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        skipping = matches!(name.as_str(), "to" | "message-id" | "delivered-to");
        if !skipping {
            kept.push(line);
        }
    }
    let mut out = String::new();
    if delivered_to {
        out.push_str(&format!("Delivered-To: {to}{nl}"));
    }
    out.push_str(&format!("To: {to}{nl}Message-ID: <{own_id}>{nl}"));
    out.push_str(&kept.join(nl));
    out.push_str(&blank);
    let mut body = body.to_string();
    for id in &returned {
        body = body.replace(&format!("<{id}>"), &format!("<{notice}>"));
    }
    out.push_str(&body);
    out.into_bytes()
}

fn token_address(tag: char, notice: &str) -> String {
    let base = "servicedesk@kommunal-it.example";
    match tag {
        'b' => poststelle::verp::bounce_address(base, notice),
        _ => poststelle::verp::unsubscribe_address(base, notice),
    }
    .expect("a token address")
}

async fn file(store: &Store, config: &Config, raw: &[u8], key: &str) -> Outcome {
    Ingestor::new(store, config)
        .ingest(raw, SourceKey::file(key))
        .await
        .expect("filed")
}

/// The audit lines of `event`, oldest first.
async fn audited(store: &Store, event: &str) -> Vec<Value> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit WHERE event = $1 ORDER BY id")
            .bind(event)
            .fetch_all(store.pool())
            .await
            .expect("audit");
    rows.iter()
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect()
}

fn outcomes(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap_or("?"))
        .collect()
}

/// (bounces, flagged) of an address on a list.
async fn member(store: &Store, list: &str, address: &str) -> (i64, bool, bool) {
    let view = lists_store::show(store, list).await.expect("show");
    let m = view
        .members
        .iter()
        .find(|m| m.member.address.eq_ignore_ascii_case(address))
        .unwrap_or_else(|| panic!("{address} on {list}"));
    (m.bounces, m.flagged.is_some(), m.unsubscribed.is_some())
}

async fn bounced_at(store: &Store, message_id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT bounced_at FROM outbox WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(store.pool())
        .await
        .expect("row")
}

/// Nothing of what came back opened a ticket or wrote mail: the outbox holds the notices only.
async fn no_ticket_no_reply(store: &Store) {
    assert_eq!(scalar(store, "SELECT COUNT(*) FROM tickets").await, 0);
    assert_eq!(
        scalar(
            store,
            "SELECT COUNT(*) FROM outbox WHERE announcement_id IS NULL"
        )
        .await,
        0
    );
}

both!(a_failure_counts_once_per_notice_and_a_delay_not_at_all);
/// Postfix's failure for anna's notice counts; for ben's notice OpenSMTPD's "delayed" report
/// counts nothing, its later "failed" report counts, and Exim's failure for the same notice
/// again counts nothing more; Office 365's failure for carla's notice, sent to the support
/// address (no token), is found by the Message-ID it returns. Sendmail's delay and a qmail
/// failure without a status report: the first counts nothing, the second counts.
async fn a_failure_counts_once_per_notice_and_a_delay_not_at_all(db: &TestDb) {
    let t = desk(db, 3);
    let config = t.load();
    let store = &db.store;
    list(
        store,
        "verteiler",
        false,
        &[
            "anna@kommune.example",
            "ben@kommune.example",
            "carla@land.example",
            "dora@land.example",
        ],
    )
    .await;
    let (announcement, _, mails) = announce(store, &config, &[]).await;
    let id = |r: &str| message_id_of(&mails, r);
    let (anna, ben, carla, dora) = (
        id("anna@kommune.example"),
        id("ben@kommune.example"),
        id("carla@land.example"),
        id("dora@land.example"),
    );

    let o = file(
        store,
        &config,
        &bounce_sample(
            "lhost-postfix-05.eml",
            &token_address('b', &anna),
            "b1@mx.example",
            &anna,
            true,
        ),
        "b1",
    )
    .await;
    assert!(matches!(o, Outcome::Ignored { .. }), "{o:?}");
    assert_eq!(
        member(store, "verteiler", "anna@kommune.example").await,
        (1, false, false)
    );
    assert!(bounced_at(store, &anna).await.is_some());

    // Ben: delayed, then failed, then another failure report of the same notice.
    for (sample, key) in [
        ("lhost-opensmtpd-06.eml", "b2"),
        ("lhost-opensmtpd-10.eml", "b3"),
        ("lhost-exim-29.eml", "b4"),
    ] {
        let raw = bounce_sample(
            sample,
            &token_address('b', &ben),
            &format!("{key}@mx.example"),
            &ben,
            false,
        );
        file(store, &config, &raw, key).await;
        if key == "b2" {
            assert_eq!(
                member(store, "verteiler", "ben@kommune.example").await.0,
                0,
                "a delay counts nothing"
            );
            assert_eq!(bounced_at(store, &ben).await, None);
        }
    }
    assert_eq!(
        member(store, "verteiler", "ben@kommune.example").await,
        (1, false, false)
    );

    // Carla: a failure report sent to the support address, found by the returned Message-ID.
    let raw = bounce_sample(
        "lhost-office365-07.eml",
        "servicedesk@kommunal-it.example",
        "b5@mx.example",
        &carla,
        false,
    );
    file(store, &config, &raw, "b5").await;
    assert_eq!(
        member(store, "verteiler", "carla@land.example").await,
        (1, false, false)
    );

    // Dora: Sendmail's delay warning, then qmail's plain-text failure (no status part).
    for (sample, key) in [
        ("lhost-sendmail-55.eml", "b6"),
        ("lhost-qmail-09.eml", "b7"),
    ] {
        let raw = bounce_sample(
            sample,
            &token_address('b', &dora),
            &format!("{key}@mx.example"),
            &dora,
            true,
        );
        file(store, &config, &raw, key).await;
    }
    assert_eq!(
        member(store, "verteiler", "dora@land.example").await,
        (1, false, false)
    );

    // The same report filed again (another copy in the mailbox) is a duplicate: no line more.
    let again = bounce_sample(
        "lhost-postfix-05.eml",
        &token_address('b', &anna),
        "b1@mx.example",
        &anna,
        true,
    );
    assert!(matches!(
        file(store, &config, &again, "b1-copy").await,
        Outcome::Duplicate { .. }
    ));

    // A reply to the envelope sender that looks like a person's (some out-of-office
    // responders write no Auto-Submitted): no ticket, no acknowledgement, no bounce counted.
    let reply = format!(
        "From: Anna <anna@kommune.example>\r\nTo: {}\r\nSubject: Re: Wartung\r\n\
         Message-ID: <b8@kommune.example>\r\nDate: Fri, 4 Dec 2026 10:00:00 +0100\r\n\r\n\
         Ich bin bis Montag nicht im Haus.\r\n",
        token_address('b', &anna)
    );
    assert!(matches!(
        file(store, &config, reply.as_bytes(), "b8").await,
        Outcome::Ignored { .. }
    ));
    assert_eq!(
        member(store, "verteiler", "anna@kommune.example").await,
        (1, false, false)
    );

    let lines = audited(store, "notice_bounce").await;
    assert_eq!(
        outcomes(&lines),
        [
            "counted",
            "delayed",
            "counted",
            "already_counted",
            "counted",
            "delayed",
            "counted",
            "not_a_bounce"
        ]
    );
    assert_eq!(
        scalar(
            store,
            "SELECT COUNT(*) FROM audit WHERE event = 'notice_bounce' AND raw_message_id IS NULL"
        )
        .await,
        0,
        "every line points at the mail it is about"
    );
    assert_eq!(lines[0]["member"], "anna@kommune.example");
    assert_eq!(lines[0]["announcement"], announcement);
    assert_eq!(lines[0]["notice"], anna.as_str());
    assert_eq!(lines[0]["found_by"]["token"], "delivered-to");
    assert_eq!(lines[2]["found_by"]["token"], "to");
    assert_eq!(lines[4]["found_by"]["returned_message_id"], carla.as_str());
    // Postfix gave up on a 450 after retrying: Action failed, Status 4.1.1.
    assert!(
        lines[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("4.1.1 450") && r.contains("User unknown")),
        "{}",
        lines[0]
    );
    assert_eq!(
        poststelle::store::notices::bounced(
            &mut store.pool().acquire().await.expect("conn"),
            announcement
        )
        .await
        .expect("bounced"),
        4
    );
    no_ticket_no_reply(store).await;
}

both!(a_member_flagged_for_bouncing_is_shown_and_skipped);
/// With `bounce_limit = 2`, two notices that bounce flag the member in every list it is on;
/// `lists show` says so, and the next notice skips it.
async fn a_member_flagged_for_bouncing_is_shown_and_skipped(db: &TestDb) {
    let t = desk(db, 2);
    let config = t.load();
    let store = &db.store;
    list(
        store,
        "verteiler",
        false,
        &["anna@kommune.example", "ben@kommune.example"],
    )
    .await;
    list(store, "andere", false, &["Anna@kommune.example"]).await;
    for round in 1..=2 {
        let (_, fan_out, mails) = announce(store, &config, &[]).await;
        assert_eq!(fan_out.skipped_flagged, 0);
        let anna = message_id_of(&mails, "anna@kommune.example");
        let raw = bounce_sample(
            "lhost-postfix-29.eml",
            &token_address('b', &anna),
            &format!("r{round}@mx.example"),
            &anna,
            true,
        );
        file(store, &config, &raw, &format!("r{round}")).await;
        assert_eq!(
            member(store, "verteiler", "anna@kommune.example").await,
            (round, round == 2, false)
        );
    }
    assert!(
        member(store, "andere", "anna@kommune.example").await.1,
        "flagged on every list"
    );
    assert_eq!(
        member(store, "verteiler", "ben@kommune.example").await,
        (0, false, false)
    );
    assert_eq!(
        outcomes(&audited(store, "notice_bounce").await),
        ["counted", "flagged"]
    );

    let out = poststelle()
        .arg("--config")
        .arg(t.path())
        .args(["lists", "show", "verteiler"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let anna_line = text
        .lines()
        .find(|l| l.contains("anna@kommune.example"))
        .unwrap_or_else(|| panic!("anna in\n{text}"));
    assert!(
        anna_line.contains("flagged") && anna_line.contains("(skipped)"),
        "{anna_line}"
    );
    let ben_line = text
        .lines()
        .find(|l| l.contains("ben@kommune.example"))
        .expect("ben");
    assert!(!ben_line.contains("flagged"), "{ben_line}");

    let (_, fan_out, mails) = announce(store, &config, &[]).await;
    assert_eq!(
        (fan_out.reached, fan_out.skipped_flagged, fan_out.enqueued),
        (2, 1, 1)
    );
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "ben@kommune.example");
    no_ticket_no_reply(store).await;
}

both!(a_forged_token_changes_no_member);
/// A bounce to a token no mail of ours has, and one whose token is the Message-ID of an
/// acknowledgement (no notice), change no member and open no ticket; both are audited.
async fn a_forged_token_changes_no_member(db: &TestDb) {
    let t = desk(db, 1);
    let config = t.load();
    let store = &db.store;
    list(store, "verteiler", false, &["anna@kommune.example"]).await;
    let (_, _, mails) = announce(store, &config, &[]).await;
    let anna = message_id_of(&mails, "anna@kommune.example");

    let forged = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@kommunal-it.example";
    let raw = bounce_sample(
        "lhost-postfix-05.eml",
        &token_address('b', forged),
        "f1@mx.example",
        &anna,
        true,
    );
    assert!(matches!(
        file(store, &config, &raw, "f1").await,
        Outcome::Ignored { .. }
    ));

    // An acknowledgement's Message-ID as the token: a ticket is opened by a request first.
    let request = crate::support::mail::request("erika@example.org", "Drucker", "req1@example.org");
    assert!(matches!(
        file(store, &config, &request, "req").await,
        Outcome::NewTicket { .. }
    ));
    let mails_of_the_request = scalar(
        store,
        "SELECT COUNT(*) FROM outbox WHERE announcement_id IS NULL",
    )
    .await;
    let ack: String =
        sqlx::query_scalar("SELECT message_id FROM outbox WHERE kind = 'acknowledgement'")
            .fetch_one(store.pool())
            .await
            .expect("acknowledgement");
    let raw = bounce_sample(
        "lhost-exim-29.eml",
        &token_address('b', &ack),
        "f2@mx.example",
        &anna,
        true,
    );
    file(store, &config, &raw, "f2").await;
    // And an unsubscribe mail with a forged token.
    let unsub = unsubscribe_mail("anna@kommune.example", forged, "f3@kommune.example");
    assert!(matches!(
        file(store, &config, &unsub, "f3").await,
        Outcome::Ignored { .. }
    ));

    assert_eq!(
        member(store, "verteiler", "anna@kommune.example").await,
        (0, false, false)
    );
    assert_eq!(bounced_at(store, &anna).await, None);
    assert_eq!(bounced_at(store, &ack).await, None);
    assert_eq!(
        outcomes(&audited(store, "notice_bounce").await),
        ["unknown_token", "not_a_notice"]
    );
    assert_eq!(
        outcomes(&audited(store, "notice_unsubscribe").await),
        ["unknown_token"]
    );
    // One ticket (the request) and the mails it caused; nothing from the forged ones.
    assert_eq!(scalar(store, "SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(
        scalar(
            store,
            "SELECT COUNT(*) FROM outbox WHERE announcement_id IS NULL"
        )
        .await,
        mails_of_the_request
    );
}

/// An unsubscribe mail as a mail client's button writes it: to the List-Unsubscribe mailto.
fn unsubscribe_mail(from: &str, notice: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {}\r\nSubject: unsubscribe\r\nMessage-ID: <{id}>\r\n\
         Date: Fri, 4 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         This message was automatically generated by Mail to unsubscribe.\r\n",
        token_address('u', notice)
    )
    .into_bytes()
}

both!(unsubscribing_by_mail_heeds_what_each_list_offers);
/// "newsletter" offers unsubscribing and includes "extra" (offers it too) and "kommunen"
/// (does not: municipalities must be informed); "pflicht" does not offer it. Anna (newsletter)
/// is unsubscribed, twice asked once done; dora (newsletter and extra) leaves both; carla, on
/// kommunen only, stays and is recorded as refused; ben's mail about a "pflicht" notice is
/// refused. The next notice skips the unsubscribed.
async fn unsubscribing_by_mail_heeds_what_each_list_offers(db: &TestDb) {
    let t = desk(db, 3);
    let config = t.load();
    let store = &db.store;
    list(
        store,
        "newsletter",
        true,
        &["anna@kommune.example", "dora@land.example"],
    )
    .await;
    list(store, "extra", true, &["dora@land.example"]).await;
    list(store, "kommunen", false, &["carla@stadt.example"]).await;
    list(store, "pflicht", false, &["ben@kommune.example"]).await;
    lists_store::include(store, "newsletter", "extra", "test")
        .await
        .expect("include");
    lists_store::include(store, "newsletter", "kommunen", "test")
        .await
        .expect("include");
    let (_, _, news) = announce(store, &config, &["newsletter"]).await;
    let (_, _, pflicht) = announce(store, &config, &["pflicht"]).await;

    let anna = message_id_of(&news, "anna@kommune.example");
    let raw = unsubscribe_mail("anna@kommune.example", &anna, "u1@kommune.example");
    assert!(matches!(
        file(store, &config, &raw, "u1").await,
        Outcome::Ignored { .. }
    ));
    assert!(member(store, "newsletter", "anna@kommune.example").await.2);
    // The same mail again (another copy), and a second click: nothing more.
    assert!(matches!(
        file(store, &config, &raw, "u1-copy").await,
        Outcome::Duplicate { .. }
    ));
    let raw = unsubscribe_mail("anna@kommune.example", &anna, "u2@kommune.example");
    file(store, &config, &raw, "u2").await;

    let dora = message_id_of(&news, "dora@land.example");
    file(
        store,
        &config,
        &unsubscribe_mail("dora@land.example", &dora, "u3@land.example"),
        "u3",
    )
    .await;
    assert!(member(store, "newsletter", "dora@land.example").await.2);
    assert!(member(store, "extra", "dora@land.example").await.2);

    let carla = message_id_of(&news, "carla@stadt.example");
    file(
        store,
        &config,
        &unsubscribe_mail("carla@stadt.example", &carla, "u4@stadt.example"),
        "u4",
    )
    .await;
    assert!(!member(store, "kommunen", "carla@stadt.example").await.2);

    let ben = message_id_of(&pflicht, "ben@kommune.example");
    file(
        store,
        &config,
        &unsubscribe_mail("ben@kommune.example", &ben, "u5@kommune.example"),
        "u5",
    )
    .await;
    assert!(!member(store, "pflicht", "ben@kommune.example").await.2);

    let lines = audited(store, "notice_unsubscribe").await;
    assert_eq!(
        outcomes(&lines),
        [
            "unsubscribed",
            "already_unsubscribed",
            "unsubscribed",
            "refused",
            "refused"
        ]
    );
    assert_eq!(lines[0]["list"], "newsletter");
    assert_eq!(lines[0]["member"], "anna@kommune.example");
    assert_eq!(
        lines[2]["unsubscribed"],
        serde_json::json!(["newsletter", "extra"])
    );
    assert_eq!(lines[3]["kept"], serde_json::json!(["kommunen"]));
    assert_eq!(lines[4]["list"], "pflicht");
    no_ticket_no_reply(store).await;

    let (_, fan_out, mails) = announce(store, &config, &["newsletter"]).await;
    assert_eq!((fan_out.reached, fan_out.skipped_unsubscribed), (3, 2));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "carla@stadt.example");
}

/// Every real failure report of the corpus with a `message/delivery-status` part reads as
/// its `Action` fields say: a "failed" report as a failure, a "delayed" one as a delay.
#[test]
fn real_status_reports_read_as_their_action_fields_say() {
    let dir = crate::support::corpus().join("bounces/sisimai");
    let (mut failed, mut delayed) = (0, 0);
    for e in std::fs::read_dir(&dir).expect("corpus") {
        let path = e.expect("entry").path();
        let raw = std::fs::read(&path).expect("sample");
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        // A report of its own, not one inside a returned bounce (a bounce of a bounce).
        let Some(status) = text.find("content-type: message/delivery-status") else {
            continue;
        };
        if text
            .find("content-type: message/rfc822")
            .is_some_and(|r| r < status)
        {
            continue;
        }
        let actions: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("action:"))
            .map(str::trim)
            .collect();
        let r = poststelle::dsn::read(&raw);
        let d = r.delivery();
        let name = path.display();
        if !actions.is_empty() && actions.iter().all(|a| a.starts_with("failed")) {
            assert!(
                matches!(d, Some(poststelle::dsn::Delivery::Failed(_))),
                "{name}: {d:?}"
            );
            failed += 1;
        } else if !actions.is_empty() && actions.iter().all(|a| a.starts_with("delayed")) {
            assert!(
                matches!(d, Some(poststelle::dsn::Delivery::Delayed(_))),
                "{name}: {d:?}"
            );
            delayed += 1;
        }
    }
    assert!(
        failed >= 150 && delayed >= 7,
        "failed {failed}, delayed {delayed}"
    );
}

/// `announcements.bounce_limit` must be a number of bounces; the error names the key, the
/// line and the range.
#[test]
fn a_bounce_limit_out_of_range_is_refused() {
    for bad in ["0", "-1", "1001"] {
        let text = format!(
            "{}\n[announcements]\nbounce_limit = {bad}\n",
            TempConfig::shipped_text()
        );
        let t = TempConfig::new(&text, &[]);
        let err = match Config::load(Some(&t.path())) {
            Ok(_) => panic!("bounce_limit = {bad} was accepted"),
            Err(d) => d.to_string(),
        };
        assert!(
            err.contains("announcements.bounce_limit") && err.contains("from 1 to 1000"),
            "{err}"
        );
    }
    let ok = format!(
        "{}\n[announcements]\nbounce_limit = 5\n",
        TempConfig::shipped_text()
    );
    assert_eq!(
        TempConfig::new(&ok, &[])
            .load()
            .settings
            .announcements
            .bounce_limit,
        5
    );
    assert_eq!(
        crate::support::config::DEFAULT
            .settings
            .announcements
            .bounce_limit,
        3
    );
}

/// End to end through the test servers (tests/run.sh): a notice to an address OpenSMTPD takes
/// but Dovecot does not know (`ghost@nobody.example.test`, tests/servers.sh) is bounced by
/// OpenSMTPD to the notice's envelope sender `d28+b<token>@example.test`, delivered by
/// plus-addressing into d28's INBOX, which the daemon reads and files: the member's bounce is
/// counted (bounce limit 1: flagged), no ticket opened, no reply sent, and the next notice
/// skips the member. The other member, d29, gets its notice and keeps a clean record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_smtp_an_unknown_user_bounces_back_and_is_counted() {
    use std::time::Duration;

    use crate::support::config::{config_text, imap_mailbox};
    use crate::support::daemon::{Daemon, env, sqlite_of, until};
    use crate::support::imap::{messages, reset};

    let imap = env("POSTSTELLE_TEST_IMAP");
    let smtp = env("POSTSTELLE_TEST_SMTP");
    let (host, port) = smtp.rsplit_once(':').expect("host:port");
    for user in ["d28", "d29"] {
        reset(&imap, user).await;
    }
    let text = config_text(
        &imap_mailbox("bounces", &imap, "d28", "INBOX", ""),
        &format!(
            "[outbox.smtp]\nhost = {host:?}\nport = {port}\ntls = \"none\"\ntimeout_seconds = 5\n\n\
             [[platform]]\nname = \"zidkor\"\ncalendar = \"rlp\"\nlists = [\"verteiler\"]\n\n\
             [announcements]\nbounce_limit = 1\n"
        ),
    )
    .replace("transport = \"file\"", "transport = \"smtp\"")
    .replace(
        "from = \"servicedesk@kommunal-it.example\"",
        "from = \"d28@example.test\"",
    );
    let t = TempConfig::new(&text, &[]);
    let config = t.load();
    let store = sqlite_of(&t).await;
    list(
        &store,
        "verteiler",
        false,
        &["ghost@nobody.example.test", "d29@example.test"],
    )
    .await;
    let (announcement, fan_out, mails) = announce(&store, &config, &[]).await;
    assert_eq!(fan_out.enqueued, 2);
    let ghost = message_id_of(&mails, "ghost@nobody.example.test");
    let d29 = message_id_of(&mails, "d29@example.test");

    let mut daemon = Daemon::start(&t, "run");
    let start = std::time::Instant::now();
    while bounced_at(&store, &ghost).await.is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let rows: Vec<(String, String, Option<String>)> =
                sqlx::query_as("SELECT recipient, state, last_error FROM outbox")
                    .fetch_all(store.pool())
                    .await
                    .expect("rows");
            panic!(
                "the bounce of ghost's notice was not counted within 60 s; outbox {rows:?}; \
                 d28's INBOX holds {} mail(s); the daemon's log:\n{}",
                messages(&imap, "d28", "INBOX").await.len(),
                daemon.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until(
        Duration::from_secs(10),
        "d29's notice delivered",
        || async {
            messages(&imap, "d29", "INBOX")
                .await
                .iter()
                .any(|raw| String::from_utf8_lossy(raw).contains(&d29))
        },
    )
    .await;
    daemon.stop_ok();

    // What came back: OpenSMTPD's report, to the notice's token address (plus-addressed).
    let filed: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT outcome, bytes FROM raw_messages ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("raw");
    assert_eq!(filed.len(), 1, "one mail came back");
    assert_eq!(filed[0].0, "ignored");
    let bounce = String::from_utf8_lossy(&filed[0].1).to_ascii_lowercase();
    let token = poststelle::verp::bounce_address("d28@example.test", &ghost).expect("token");
    assert!(bounce.contains(&format!("to: {token}")), "{bounce}");
    assert!(bounce.contains("action: failed"), "{bounce}");

    assert_eq!(
        member(&store, "verteiler", "ghost@nobody.example.test").await,
        (1, true, false)
    );
    assert_eq!(
        member(&store, "verteiler", "d29@example.test").await,
        (0, false, false)
    );
    assert_eq!(bounced_at(&store, &d29).await, None);
    let lines = audited(&store, "notice_bounce").await;
    assert_eq!(outcomes(&lines), ["flagged"]);
    assert_eq!(lines[0]["announcement"], announcement);
    assert_eq!(lines[0]["member"], "ghost@nobody.example.test");
    let reason: String =
        sqlx::query_scalar("SELECT bounce_reason FROM outbox WHERE message_id = $1")
            .bind(&ghost)
            .fetch_one(store.pool())
            .await
            .expect("reason");
    assert!(reason.starts_with("5."), "{reason}");
    no_ticket_no_reply(&store).await;

    // d29 has its notice (counted in the mailbox), and the next notice skips the ghost.
    let got = messages(&imap, "d29", "INBOX").await;
    let notices = got
        .iter()
        .filter(|raw| String::from_utf8_lossy(raw).contains(&d29))
        .count();
    assert_eq!(notices, 1);
    let (_, fan_out, mails) = announce(&store, &config, &[]).await;
    assert_eq!((fan_out.skipped_flagged, fan_out.enqueued), (1, 1));
    assert_eq!(mails[0].0, "d29@example.test");
    store.close().await;
}

both!(announcements_status_counts_sent_pending_failed_and_bounced);
/// `announcements status` counts a notice's mails by where they stand and names each member
/// that has not got it, with the reason; `maintenance show` carries the same counts; an
/// unknown id is an error that says where the ids are.
async fn announcements_status_counts_sent_pending_failed_and_bounced(db: &TestDb) {
    let t = desk(db, 3);
    let config = t.load();
    let store = &db.store;
    list(
        store,
        "verteiler",
        false,
        &[
            "anna@kommune.example",
            "ben@kommune.example",
            "carla@kommune.example",
            "dora@kommune.example",
        ],
    )
    .await;
    let (id, _, mails) = announce(store, &config, &[]).await;
    let run = |args: &[&str]| {
        poststelle()
            .arg("--config")
            .arg(t.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let status = |id: i64| -> Value {
        let out = run(&["announcements", "status", &id.to_string(), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let v = status(id);
    assert_eq!(
        (
            &v["mails"],
            &v["sent"],
            &v["pending"],
            &v["failed"],
            &v["bounced"]
        ),
        (&4.into(), &0.into(), &4.into(), &0.into(), &0.into())
    );
    assert_eq!(v["kind"], "scheduled");
    assert_eq!(v["platform"], "zidkor");

    // Sent (file transport); then Carla's server refused it for good, Dora's is retried and
    // Anna's came back as a bounce.
    // `--wait` returns once the sender has sent them all.
    let waiting = poststelle()
        .arg("--config")
        .arg(t.path())
        .args([
            "announcements",
            "status",
            &id.to_string(),
            "--json",
            "--wait",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(run(&["outbox", "send"]).status.success());
    let waited = waiting.wait_with_output().expect("waits");
    let v: Value = serde_json::from_slice(&waited.stdout).expect("json");
    assert_eq!((&v["sent"], &v["pending"]), (&4.into(), &0.into()), "{v}");
    let carla = message_id_of(&mails, "carla@kommune.example");
    let dora = message_id_of(&mails, "dora@kommune.example");
    for (mid, state, error) in [
        (&carla, "permanent_failure", "550 5.1.1 carla: no such user"),
        (&dora, "temporary_failure", "451 4.3.0 try again later"),
    ] {
        sqlx::query(
            "UPDATE outbox SET state = $1, last_error = $2, attempts = 2 WHERE message_id = $3",
        )
        .bind(state)
        .bind(error)
        .bind(mid)
        .execute(store.pool())
        .await
        .expect("update");
    }
    let anna = message_id_of(&mails, "anna@kommune.example");
    let raw = bounce_sample(
        "lhost-postfix-29.eml",
        &token_address('b', &anna),
        "st1@mx.example",
        &anna,
        true,
    );
    file(store, &config, &raw, "st1").await;

    let v = status(id);
    assert_eq!(
        (
            &v["mails"],
            &v["sent"],
            &v["pending"],
            &v["failed"],
            &v["bounced"]
        ),
        (&4.into(), &2.into(), &1.into(), &1.into(), &1.into())
    );
    let undelivered: Vec<(&str, &str)> = v["undelivered"]
        .as_array()
        .expect("undelivered")
        .iter()
        .map(|u| {
            (
                u["recipient"].as_str().expect("r"),
                u["state"].as_str().expect("s"),
            )
        })
        .collect();
    assert_eq!(
        undelivered,
        [
            ("anna@kommune.example", "sent"),
            ("carla@kommune.example", "permanent_failure"),
            ("dora@kommune.example", "temporary_failure"),
        ]
    );
    let out = run(&["announcements", "status", &id.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  bounced:  1\n"), "{text}");
    assert!(
        text.contains("carla@kommune.example  failed: 550 5.1.1 carla: no such user"),
        "{text}"
    );
    assert!(
        text.contains("dora@kommune.example  waiting to retry (attempt 2)"),
        "{text}"
    );
    assert!(text.contains("anna@kommune.example  bounced: "), "{text}");

    let maintenance: i64 = scalar(store, "SELECT MAX(id) FROM maintenances").await;
    let out = run(&["maintenance", "show", &maintenance.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("4 mail(s): 2 sent, 1 pending, 1 failed, 1 bounced"),
        "{text}"
    );

    let out = run(&["announcements", "status", "999999"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("there is no announcement 999999") && err.contains("maintenance show"),
        "{err}"
    );
}
