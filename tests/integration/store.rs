//! Tickets and the outbox on real databases: every test runs on SQLite (a file) and on
//! PostgreSQL (its own database on 127.0.0.1:5432, or $POSTSTELLE_TEST_PG). When PostgreSQL is
//! unreachable these tests fail; they never skip.
use jiff::{Timestamp, ToSpan};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::store::outbox::OutboxState;
use poststelle::store::raw::RawOutcome;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops;

use crate::support::config::{DEFAULT, TempConfig};
use crate::support::corpus;
use crate::support::daemon::free_port;
use crate::support::db::{TestDb, both, scalar, scalar_text};
use crate::support::mail::{mail, request};
use crate::support::tickets::{close, file, new_number, open_ticket};

fn cfg() -> &'static Config {
    &DEFAULT
}

async fn outbox_rows(db: &TestDb, number: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT o.kind, o.recipient, o.state FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE t.number = $1 ORDER BY o.id",
    )
    .bind(number)
    .fetch_all(db.store.pool())
    .await
    .expect("rows")
}

async fn ack_message_id(db: &TestDb, number: &str) -> String {
    sqlx::query_scalar(
        "SELECT o.message_id FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE t.number = $1 AND o.kind = 'acknowledgement'",
    )
    .bind(number)
    .fetch_one(db.store.pool())
    .await
    .expect("ack")
}

both!(new_ticket_acknowledgement_and_staff_copy);
async fn new_ticket_acknowledgement_and_staff_copy(db: &TestDb) {
    let number = open_ticket(
        &db.store,
        "Erika <erika@example.org>",
        "Drucker defekt",
        "r1",
    )
    .await;
    assert_eq!(number.len(), 16, "{number}");
    assert!(number[8..].starts_with("10"), "instance id 10: {number}");
    assert_eq!(
        outbox_rows(db, &number).await,
        vec![
            (
                "acknowledgement".into(),
                "erika@example.org".into(),
                "scheduled".into()
            ),
            (
                "staff_copy".into(),
                "servicedesk@kommunal-it.example".into(),
                "scheduled".into()
            ),
        ]
    );
    let t = ops::show_ticket(&db.store, &number).await.expect("show");
    assert_eq!(t.summary.severity, 3);
    assert_eq!(t.summary.state, "new");
    assert_eq!(t.summary.requester, "erika@example.org");
    assert!(t.audit.iter().any(|a| a.event == "ticket_created"));
    let subject = scalar_text(
        &db.store,
        "SELECT subject FROM outbox WHERE kind = 'acknowledgement'",
    )
    .await;
    assert_eq!(
        subject,
        format!("[Ticket#{number}] Eingangsbestätigung: Drucker defekt")
    );
}

both!(the_same_message_twice_changes_nothing);
async fn the_same_message_twice_changes_nothing(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let raw = request("erika@example.org", "Drucker defekt", "dup@example.org");
    let first = ing
        .ingest(&raw, SourceKey::imap("INBOX", 7, 1))
        .await
        .expect("ingest");
    let number = new_number(&first);
    let filed = db.store.counts().await.expect("counts");
    assert_eq!(
        (
            filed["tickets"],
            filed["raw_messages"],
            filed["quarantined"]
        ),
        (1, 1, 0)
    );
    assert_eq!(filed["raw_mail_bytes"], raw.len() as i64);
    let again = ing
        .ingest(&raw, SourceKey::imap("INBOX", 7, 1))
        .await
        .expect("ingest");
    assert_eq!(
        again,
        Outcome::Duplicate {
            previous: RawOutcome::NewTicket,
            number: Some(number.clone())
        }
    );
    // The same bytes from another source (a UIDVALIDITY change, a second mailbox).
    let moved = ing
        .ingest(&raw, SourceKey::imap("INBOX", 8, 1))
        .await
        .expect("ingest");
    assert!(matches!(moved, Outcome::Duplicate { .. }), "{moved:?}");
    assert_eq!(db.store.counts().await.expect("counts"), filed);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM outbox").await, 2);
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM raw_messages").await,
        1
    );
}

both!(the_corpus_twice_gives_the_same_tickets_as_once);
async fn the_corpus_twice_gives_the_same_tickets_as_once(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let mut files = Vec::new();
    for dir in [
        "helpdesk-real",
        "autoreplies",
        "bounces/flanker",
        "mime-torture/stalwart-malformed",
    ] {
        for e in std::fs::read_dir(corpus().join(dir))
            .expect("dir")
            .flatten()
        {
            if e.path().is_dir() {
                for f in std::fs::read_dir(e.path()).expect("dir").flatten() {
                    files.push(f.path());
                }
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    let raws: Vec<(Vec<u8>, String)> = files
        .iter()
        .map(|f| (std::fs::read(f).expect("read"), f.display().to_string()))
        .collect();
    for (raw, key) in &raws {
        ing.ingest(raw, SourceKey::file(key)).await.expect("ingest");
    }
    let once = ops::list_tickets(&db.store, None, None, None, 1000)
        .await
        .expect("list")
        .tickets;
    let outbox_once = scalar(&db.store, "SELECT COUNT(*) FROM outbox").await;
    assert!(!once.is_empty());
    for (raw, key) in &raws {
        let o = ing.ingest(raw, SourceKey::file(key)).await.expect("ingest");
        assert!(matches!(o, Outcome::Duplicate { .. }), "{key}: {o:?}");
    }
    let twice = ops::list_tickets(&db.store, None, None, None, 1000)
        .await
        .expect("list")
        .tickets;
    assert_eq!(
        once.iter()
            .map(|t| (&t.number, t.articles))
            .collect::<Vec<_>>(),
        twice
            .iter()
            .map(|t| (&t.number, t.articles))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM outbox").await,
        outbox_once
    );
    // No bounce or automatic reply of the corpus opened a ticket (but the one challenge-response
    // mail that carries no machine signal at all, see corpus.rs).
    let machine_tickets = scalar(
        &db.store,
        "SELECT COUNT(*) FROM raw_messages r JOIN tickets t ON t.id = r.ticket_id \
         WHERE (r.source_key LIKE '%bounces%' OR r.source_key LIKE '%autoreplies%') \
         AND r.source_key NOT LIKE '%bluebottle%'",
    )
    .await;
    assert_eq!(machine_tickets, 0);
}

both!(threading_by_tag_by_references_and_outlook_chains);
async fn threading_by_tag_by_references_and_outlook_chains(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let number = open_ticket(&db.store, "erika@example.org", "VPN geht nicht", "t1").await;
    let ack = ack_message_id(db, &number).await;

    // (a) The tag, behind an Outlook chain, without any reference header.
    let o = file(
        &ing,
        "erika@example.org",
        &format!("AW: WG: AW: [Ticket#{number}] VPN geht nicht"),
        "t2@example.org",
        "t2",
    )
    .await;
    assert_eq!(
        o,
        Outcome::FollowUp {
            number: number.clone(),
            reopened: false
        }
    );

    // (b) References only: the requester answered our acknowledgement, the subject lost the tag.
    let referenced = mail(
        &[
            "From: erika@example.org",
            "Subject: AW: Ihre Nachricht",
            "Message-ID: <t3@example.org>",
            &format!("In-Reply-To: <{ack}>"),
            &format!("References: <t1@example.org> <{ack}>"),
        ],
        "Danke!",
    );
    let o = ing
        .ingest(&referenced, SourceKey::file("t3"))
        .await
        .expect("ingest");
    assert_eq!(
        o,
        Outcome::FollowUp {
            number: number.clone(),
            reopened: false
        }
    );

    // (c) References to the requester's own first mail (a colleague in Cc answered all).
    let t = ops::show_ticket(&db.store, &number).await.expect("show");
    assert_eq!(t.articles.iter().filter(|a| a.kind == "inbound").count(), 3);
    // A follow-up is not acknowledged again, but staff get it.
    let rows = outbox_rows(db, &number).await;
    assert_eq!(rows.iter().filter(|r| r.0 == "acknowledgement").count(), 1);
    assert_eq!(rows.iter().filter(|r| r.0 == "staff_copy").count(), 3);
}

both!(foreign_references_open_a_linked_ticket);
async fn foreign_references_open_a_linked_ticket(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let number = open_ticket(
        &db.store,
        "erika@example.org",
        "Passwort zurücksetzen",
        "f1",
    )
    .await;
    // Someone else forwards the thread (WG:) or quotes the number: never onto Erika's ticket.
    let o = file(
        &ing,
        "max@andere-gemeinde.example",
        &format!("WG: [Ticket#{number}] Passwort zurücksetzen"),
        "f2@example.org",
        "f2",
    )
    .await;
    match o {
        Outcome::NewTicket { linked_to, .. } => {
            assert_eq!(linked_to.as_deref(), Some(number.as_str()))
        }
        other => panic!("{other:?}"),
    }
    // The queue's staff address answering without the ticket's reply address (a forged From
    // looks the same) changes nothing: issue 17.
    let o = file(
        &ing,
        "servicedesk@kommunal-it.example",
        &format!("Re: [Ticket#{number}] Passwort"),
        "f3@example.org",
        "f3",
    )
    .await;
    assert!(
        matches!(&o, Outcome::Refused { number: Some(n), .. } if *n == number),
        "{o:?}"
    );
    // A Cc of the first mail is a participant too.
    let with_cc = mail(
        &[
            "From: anna@example.org",
            "Cc: bernd@example.org",
            "Subject: Zugang",
            "Message-ID: <f4@example.org>",
        ],
        "x",
    );
    let n2 = new_number(
        &ing.ingest(&with_cc, SourceKey::file("f4"))
            .await
            .expect("ingest"),
    );
    assert_eq!(
        file(
            &ing,
            "bernd@example.org",
            &format!("AW: [Ticket#{n2}] Zugang"),
            "f5@example.org",
            "f5",
        )
        .await,
        Outcome::FollowUp {
            number: n2,
            reopened: false
        }
    );
}

both!(reopen_within_the_window_and_link_after_it);
async fn reopen_within_the_window_and_link_after_it(db: &TestDb) {
    let mut ing = Ingestor::new(&db.store, cfg());
    let number = open_ticket(&db.store, "erika@example.org", "Scanner", "o1").await;
    close(&db.store, &number).await;

    ing.clock = Some(Timestamp::now() + 72.hours());
    let reply = format!("Re: [Ticket#{number}] Scanner");
    let o = file(&ing, "erika@example.org", &reply, "o2@example.org", "o2").await;
    assert_eq!(
        o,
        Outcome::FollowUp {
            number: number.clone(),
            reopened: true
        }
    );
    let t = ops::show_ticket(&db.store, &number).await.expect("show");
    assert_eq!(t.summary.state, "open");

    close(&db.store, &number).await;
    ing.clock = Some(Timestamp::now() + (15 * 24).hours());
    let o = file(&ing, "erika@example.org", &reply, "o3@example.org", "o3").await;
    match o {
        Outcome::NewTicket { linked_to, .. } => {
            assert_eq!(linked_to.as_deref(), Some(number.as_str()))
        }
        other => panic!("{other:?}"),
    }
}

both!(an_auto_reply_to_our_acknowledgement_becomes_a_note);
async fn an_auto_reply_to_our_acknowledgement_becomes_a_note(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let number = open_ticket(&db.store, "erika@example.org", "Drucker", "a1").await;
    let ack = ack_message_id(db, &number).await;
    let before = scalar(&db.store, "SELECT COUNT(*) FROM outbox").await;
    let oof = mail(
        &[
            "From: erika@example.org",
            &format!(
                "Subject: Automatische Antwort: [Ticket#{number}] Eingangsbestätigung: Drucker"
            ),
            "Auto-Submitted: auto-replied",
            "Message-ID: <a2@example.org>",
            &format!("In-Reply-To: <{ack}>"),
        ],
        "Ich bin nicht im Büro.",
    );
    let o = ing
        .ingest(&oof, SourceKey::file("a2"))
        .await
        .expect("ingest");
    assert_eq!(
        o,
        Outcome::Note {
            number: number.clone()
        }
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM outbox").await,
        before,
        "a note triggers nothing"
    );
    let t = ops::show_ticket(&db.store, &number).await.expect("show");
    assert_eq!(t.summary.state, "new");
    assert_eq!(t.articles.iter().filter(|a| a.kind == "note").count(), 1);
    // A bounce with no ticket to name opens nothing.
    let bounce =
        std::fs::read(corpus().join("bounces/sisimai/lhost-postfix-02.eml")).expect("read");
    assert!(matches!(
        ing.ingest(&bounce, SourceKey::file("a3"))
            .await
            .expect("ingest"),
        Outcome::Ignored { .. }
    ));
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 1);
}

both!(poison_is_quarantined_and_can_be_replayed);
async fn poison_is_quarantined_and_can_be_replayed(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let o = ing
        .ingest(b"\x00\x01 not a mail", SourceKey::file("q1"))
        .await
        .expect("ingest");
    assert!(matches!(o, Outcome::Quarantined { .. }), "{o:?}");
    let next = file(&ing, "erika@example.org", "Nächste", "q2@example.org", "q2").await;
    assert!(
        matches!(next, Outcome::NewTicket { .. }),
        "poison does not block the line"
    );
    let q = ops::list_quarantine(&db.store).await.expect("list");
    assert_eq!(q.len(), 1);
    assert_eq!(
        ops::quarantined_bytes(&db.store, q[0].id)
            .await
            .expect("bytes"),
        b"\x00\x01 not a mail"
    );
    // Replaying unchanged bytes quarantines again, once, and the list stays one long.
    let again = ops::replay_quarantined(&db.store, cfg(), q[0].id)
        .await
        .expect("replay");
    assert!(matches!(again, Outcome::Quarantined { .. }));
    assert_eq!(
        ops::list_quarantine(&db.store).await.expect("list").len(),
        1
    );
}

both!(the_loop_brake_holds_back_the_sixth_reply_within_an_hour);
async fn the_loop_brake_holds_back_the_sixth_reply_within_an_hour(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    for i in 0..7 {
        file(
            &ing,
            "vielschreiber@example.org",
            &format!("Anfrage {i}"),
            &format!("l{i}@example.org"),
            &format!("l{i}"),
        )
        .await;
    }
    let acks = scalar(
        &db.store,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND state = 'scheduled'",
    )
    .await;
    let held = scalar(
        &db.store,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND state = 'suppressed'",
    )
    .await;
    assert_eq!((acks, held), (5, 2));
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM tickets").await,
        7,
        "the tickets are still opened"
    );
}

both!(ticket_numbers_stay_unique_under_concurrent_ingest);
async fn ticket_numbers_stay_unique_under_concurrent_ingest(db: &TestDb) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let ing = Ingestor::new(&store, cfg());
            file(
                &ing,
                &format!("u{i}@example.org"),
                &format!("Parallel {i}"),
                &format!("c{i}@example.org"),
                &format!("c{i}"),
            )
            .await
        }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    for t in tasks {
        numbers.insert(new_number(&t.await.expect("task")));
    }
    assert_eq!(numbers.len(), 40);
}

async fn sent_files(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("sent dir").flatten() {
        if e.path().extension().is_some_and(|x| x == "eml") {
            out.push(std::fs::read(e.path()).expect("read"));
        }
    }
    out
}

both!(sending_through_the_file_transport_once_with_safe_headers);
async fn sending_through_the_file_transport_once_with_safe_headers(db: &TestDb) {
    use poststelle::outbox::sender::{Mailer, Sender};
    let ing = Ingestor::new(&db.store, cfg());
    // A subject whose encoded words decode to CR LF and a header: it must stay one subject.
    let evil = mail(
        &[
            "From: Erika <erika@example.org>",
            "Subject: =?UTF-8?Q?Drucker=0D=0ABcc:_evil@example.org?=",
            "Message-ID: <evil@example.org>",
        ],
        "x",
    );
    let number = new_number(
        &ing.ingest(&evil, SourceKey::file("s1"))
            .await
            .expect("ingest"),
    );
    let data = tempfile::tempdir().expect("tmp");
    let mailer = Mailer::from_settings(&cfg().settings.outbox, data.path()).expect("mailer");
    let sender = Sender {
        store: &db.store,
        config: cfg(),
        mailer: &mailer,
    };
    let s = sender.send_due(100).await.expect("send");
    assert_eq!(
        (s.sent, s.temporary_failures, s.permanent_failures),
        (2, 0, 0)
    );
    let again = sender.send_due(100).await.expect("send");
    assert_eq!(again.sent, 0, "a sent row is never sent again");
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND sent_at IS NOT NULL"
        )
        .await,
        2
    );

    let files = sent_files(&data.path().join("sent")).await;
    assert_eq!(files.len(), 2);
    let ack_id = ack_message_id(db, &number).await;
    let mut saw_ack = false;
    for raw in &files {
        let text = String::from_utf8_lossy(raw);
        let header_part = text.split("\r\n\r\n").next().unwrap_or("");
        let names: Vec<String> = header_part
            .lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect();
        assert_eq!(
            names.iter().filter(|n| *n == "subject").count(),
            1,
            "{header_part}"
        );
        assert!(!names.contains(&"bcc".to_string()), "{header_part}");
        assert!(names.contains(&"x-poststelle-loop".to_string()));
        let msg = poststelle::InboundMessage::parse(raw).expect("our mail parses");
        assert!(
            msg.subject.contains(&format!("[Ticket#{number}]")),
            "{}",
            msg.subject
        );
        assert!(!msg.subject.contains('\n') && !msg.subject.contains('\r'));
        if msg.message_id.as_deref() == Some(ack_id.as_str()) {
            saw_ack = true;
            assert_eq!(msg.header("auto-submitted"), Some("auto-replied"));
            assert_eq!(msg.in_reply_to, vec!["evil@example.org".to_string()]);
            assert_eq!(msg.to[0].address, "erika@example.org");
            assert!(msg.body.contains(&number));
        } else {
            assert_eq!(msg.header("auto-submitted"), Some("auto-generated"));
            assert_eq!(
                msg.attachments.len(),
                1,
                "the staff copy carries the original"
            );
        }
        // Our own mail coming back in is recognised and ignored.
        let back = ing
            .ingest(
                raw,
                SourceKey::file(&format!("back-{}", msg.message_id.unwrap_or_default())),
            )
            .await
            .expect("ingest");
        assert!(matches!(back, Outcome::Ignored { .. }), "{back:?}");
    }
    assert!(saw_ack);
}

both!(temporary_smtp_failures_back_off_and_can_be_retried);
async fn temporary_smtp_failures_back_off_and_can_be_retried(db: &TestDb) {
    use poststelle::outbox::sender::{Mailer, Sender};
    // A port nobody listens on: connection refused is a temporary failure.
    let port = free_port();
    let text = TempConfig::shipped_text()
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace("max_attempts = 10", "max_attempts = 3")
        + &format!(
            "\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 2\n"
        );
    let t = TempConfig::new(&text, &[]);
    let cfg = t.load();
    let ing = Ingestor::new(&db.store, &cfg);
    file(&ing, "erika@example.org", "Frage", "m1@example.org", "m1").await;
    let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
    let sender = Sender {
        store: &db.store,
        config: &cfg,
        mailer: &mailer,
    };
    let s = sender.send_due(10).await.expect("send");
    assert_eq!(s.temporary_failures, 2, "acknowledgement and staff copy");
    let rows = ops::list_outbox(&db.store, Some(OutboxState::TemporaryFailure), None)
        .await
        .expect("list");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].attempts, 1);
    assert!(rows[0].last_error.is_some());
    // Not due again before its backoff.
    assert_eq!(sender.send_due(10).await.expect("send"), Default::default());
    ops::retry_outbox(&db.store, rows[0].id)
        .await
        .expect("retry");
    let s = sender.send_due(10).await.expect("send");
    assert_eq!(s.temporary_failures, 1);
    ops::retry_outbox(&db.store, rows[0].id)
        .await
        .expect("retry");
    let s = sender.send_due(10).await.expect("send");
    assert_eq!(s.permanent_failures, 1, "gives up after max_attempts");
    let failed = ops::list_outbox(&db.store, Some(OutboxState::PermanentFailure), None)
        .await
        .expect("list");
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("gave up after 3 attempts")
    );
}

both!(one_batch_counts_its_own_replies_and_participants);
async fn one_batch_counts_its_own_replies_and_participants(db: &TestDb) {
    use poststelle::ticket::ingest::Incoming;
    let ing = Ingestor::new(&db.store, cfg());
    let raws: Vec<Vec<u8>> = (0..7)
        .map(|i| {
            request(
                "eilig@example.org",
                &format!("Batch {i}"),
                &format!("b{i}@example.org"),
            )
        })
        .collect();
    let items: Vec<Incoming<'_>> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| Incoming {
            raw,
            source: SourceKey::file(&format!("b{i}")),
        })
        .collect();
    let outcomes = ing.ingest_batch(&items).await.expect("batch");
    let first = new_number(&outcomes[0]);
    let scheduled = scalar(
        &db.store,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND state = 'scheduled'",
    )
    .await;
    let held = scalar(
        &db.store,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND state = 'suppressed'",
    )
    .await;
    assert_eq!(
        (scheduled, held),
        (5, 2),
        "the loop brake sees the batch's own replies"
    );
    // A follow-up in the next batch from the requester is hers; from a stranger it is not.
    let mine = request(
        "eilig@example.org",
        &format!("AW: [Ticket#{first}] Batch 0"),
        "b7@example.org",
    );
    let theirs = request(
        "fremd@example.org",
        &format!("AW: [Ticket#{first}] Batch 0"),
        "b8@example.org",
    );
    let outcomes = ing
        .ingest_batch(&[
            Incoming {
                raw: &mine,
                source: SourceKey::file("b7"),
            },
            Incoming {
                raw: &theirs,
                source: SourceKey::file("b8"),
            },
        ])
        .await
        .expect("batch");
    assert_eq!(
        outcomes[0],
        Outcome::FollowUp {
            number: first.clone(),
            reopened: false
        }
    );
    assert!(matches!(&outcomes[1], Outcome::NewTicket { linked_to: Some(n), .. } if *n == first));
}

fn batch<'a>(raws: &'a [(Vec<u8>, &str)]) -> Vec<poststelle::ticket::ingest::Incoming<'a>> {
    raws.iter()
        .map(|(raw, key)| poststelle::ticket::ingest::Incoming {
            raw,
            source: SourceKey::file(key),
        })
        .collect()
}

both!(one_batch_threads_replies_onto_tickets_opened_earlier_in_it);
async fn one_batch_threads_replies_onto_tickets_opened_earlier_in_it(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let first = "From: Erika <erika@example.org>\r\nTo: support@kommunal-it.example\r\n\
        Subject: Drucker druckt nicht\r\nMessage-ID: <p0@example.org>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\nDer Drucker druckt nicht.\r\n--xx\r\n\
        Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"fehler.pdf\"\r\n\r\n\
        %PDF-1.4\r\n--xx--\r\n"
        .as_bytes()
        .to_vec();
    let raws = vec![
        (first.clone(), "p0"),
        // A reply to the first mail, and one that only names it in References.
        (
            mail(
                &[
                    "From: erika@example.org",
                    "Subject: AW: Drucker druckt nicht",
                    "Message-ID: <p1@example.org>",
                    "In-Reply-To: <p0@example.org>",
                ],
                "Noch ein Nachtrag.",
            ),
            "p1",
        ),
        (
            mail(
                &[
                    "From: erika@example.org",
                    "Subject: Noch etwas",
                    "Message-ID: <p2@example.org>",
                    "References: <p0@example.org> <p1@example.org>",
                ],
                "Und noch einer.",
            ),
            "p2",
        ),
        // The first mail again from another source, and the second from the same source.
        (first, "p0-copy"),
        (
            mail(&["Subject: egal", "Message-ID: <p9@example.org>"], "x"),
            "p1",
        ),
        // A stranger replying to the thread gets a new ticket that points at it.
        (
            mail(
                &[
                    "From: max@andere-gemeinde.example",
                    "Subject: AW: Drucker druckt nicht",
                    "Message-ID: <p3@example.org>",
                    "In-Reply-To: <p2@example.org>",
                ],
                "Bei uns auch.",
            ),
            "p3",
        ),
    ];
    let outcomes = ing.ingest_batch(&batch(&raws)).await.expect("batch");
    let number = new_number(&outcomes[0]);
    let follow_up = Outcome::FollowUp {
        number: number.clone(),
        reopened: false,
    };
    assert_eq!(outcomes[1], follow_up);
    assert_eq!(outcomes[2], follow_up);
    assert_eq!(
        outcomes[3],
        Outcome::Duplicate {
            previous: RawOutcome::NewTicket,
            number: Some(number.clone())
        }
    );
    assert_eq!(
        outcomes[4],
        Outcome::Duplicate {
            previous: RawOutcome::FollowUp,
            number: Some(number.clone())
        }
    );
    assert!(
        matches!(&outcomes[5], Outcome::NewTicket { linked_to: Some(n), .. } if *n == number),
        "{:?}",
        outcomes[5]
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM raw_messages").await,
        4
    );
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 2);

    let t = ops::show_ticket(&db.store, &number).await.expect("show");
    let inbound: Vec<Option<&str>> = t
        .articles
        .iter()
        .filter(|a| a.kind == "inbound")
        .map(|a| a.message_id.as_deref())
        .collect();
    assert_eq!(
        inbound,
        [
            Some("p0@example.org"),
            Some("p1@example.org"),
            Some("p2@example.org")
        ]
    );
    // Articles in the order they happened: each inbound mail before the mail it caused.
    let kinds: Vec<&str> = t.articles.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "inbound", "outbound", "outbound", "inbound", "outbound", "inbound", "outbound"
        ]
    );
    let attached: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.message_id, x.name FROM attachments x JOIN articles a ON a.id = x.article_id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("attachments");
    assert_eq!(
        attached,
        [("p0@example.org".to_string(), "fehler.pdf".to_string())]
    );
    let rows = outbox_rows(db, &number).await;
    assert_eq!(rows.iter().filter(|r| r.0 == "acknowledgement").count(), 1);
    assert_eq!(rows.iter().filter(|r| r.0 == "staff_copy").count(), 3);
    // The whole batch again changes nothing.
    let again = ing.ingest_batch(&batch(&raws)).await.expect("batch");
    assert!(again.iter().all(|o| matches!(o, Outcome::Duplicate { .. })));
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM raw_messages").await,
        4
    );
}

both!(one_batch_reopens_a_closed_ticket_once);
async fn one_batch_reopens_a_closed_ticket_once(db: &TestDb) {
    let ing = Ingestor::new(&db.store, cfg());
    let number = open_ticket(&db.store, "erika@example.org", "Scanner", "z0").await;
    close(&db.store, &number).await;
    let raws: Vec<(Vec<u8>, &str)> = ["z1", "z2"]
        .into_iter()
        .map(|k| {
            (
                request(
                    "erika@example.org",
                    &format!("Re: [Ticket#{number}] Scanner"),
                    &format!("{k}@example.org"),
                ),
                k,
            )
        })
        .collect();
    let outcomes = ing.ingest_batch(&batch(&raws)).await.expect("batch");
    assert_eq!(
        outcomes,
        [
            Outcome::FollowUp {
                number: number.clone(),
                reopened: true
            },
            Outcome::FollowUp {
                number: number.clone(),
                reopened: false
            }
        ]
    );
    let t = ops::show_ticket(&db.store, &number).await.expect("show");
    assert_eq!(t.summary.state, "open");
    let reopens = t
        .audit
        .iter()
        .filter(|a| a.event == "state_changed" && a.actor == "poststelle")
        .count();
    assert_eq!(reopens, 1);
    let closed_at: Option<i64> = sqlx::query_scalar("SELECT closed_at FROM tickets")
        .fetch_one(db.store.pool())
        .await
        .expect("closed_at");
    assert_eq!(closed_at, None);
}

both!(ticket_numbers_stay_unique_across_instances_filing_batches);
/// Several instances (here: one store, i.e. pool, each) filing batches into one database at
/// once: every ticket number is handed out once, and none is skipped.
async fn ticket_numbers_stay_unique_across_instances_filing_batches(db: &TestDb) {
    let mut tasks = Vec::new();
    for instance in 0..4 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.expect("store");
            let ing = Ingestor::new(&store, cfg());
            let mut numbers = Vec::new();
            for b in 0..5 {
                let raws: Vec<(Vec<u8>, String)> = (0..8)
                    .map(|i| {
                        let id = format!("i{instance}b{b}m{i}");
                        (
                            request(
                                &format!("{id}@example.org"),
                                &format!("Parallel {id}"),
                                &format!("{id}@example.org"),
                            ),
                            id,
                        )
                    })
                    .collect();
                let items: Vec<poststelle::ticket::ingest::Incoming<'_>> = raws
                    .iter()
                    .map(|(raw, key)| poststelle::ticket::ingest::Incoming {
                        raw,
                        source: SourceKey::file(key),
                    })
                    .collect();
                for o in ing.ingest_batch(&items).await.expect("batch") {
                    numbers.push(new_number(&o));
                }
            }
            store.close().await;
            numbers
        }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    for t in tasks {
        numbers.extend(t.await.expect("task"));
    }
    assert_eq!(numbers.len(), 160);
    let counters: std::collections::BTreeSet<u32> = numbers
        .iter()
        .map(|n| n[10..].parse().expect("counter"))
        .collect();
    assert_eq!(counters, (1..=160).collect());
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM articles").await,
        480
    );
}

/// Several processes (here: pools) opening a new SQLite file at once all get a migrated store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_opens_of_a_sqlite_file_all_succeed() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = Store::default_url(dir.path());
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    for o in opens {
        let store = o.await.expect("task").expect("open");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 0);
        store.close().await;
    }
}

// Preparing a batch on several threads files it exactly as one thread does: in order, so a
// reply in the second half threads onto the ticket its first half opened.
both!(parallel_preparation_keeps_the_order);
async fn parallel_preparation_keeps_the_order(db: &TestDb) {
    use poststelle::ticket::ingest::{Incoming, PreparedBatch};
    let raws: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            if i < 20 {
                request(
                    &format!("p{i}@gemeinde.example"),
                    &format!("Drucker {i}"),
                    &format!("par{i}@gemeinde.example"),
                )
            } else {
                let j = i - 20;
                mail(
                    &[
                        &format!("From: p{j}@gemeinde.example"),
                        &format!("Subject: AW: Drucker {j}"),
                        &format!("Message-ID: <par{i}@gemeinde.example>"),
                        &format!("In-Reply-To: <par{j}@gemeinde.example>"),
                    ],
                    "Noch eine Frage.\r\n",
                )
            }
        })
        .collect();
    let items: Vec<Incoming<'_>> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| Incoming {
            raw,
            source: SourceKey::file(&format!("par/{i}")),
        })
        .collect();
    let batch = PreparedBatch::new_parallel(
        &std::sync::Arc::new(Config::load(None).expect("default config")),
        &items,
        4,
    );
    assert_eq!(batch.len(), 40);
    let outcomes = Ingestor::new(&db.store, cfg())
        .ingest_prepared(batch)
        .await
        .expect("ingest");
    for i in 0..20 {
        let opened = new_number(&outcomes[i]);
        match &outcomes[i + 20] {
            Outcome::FollowUp { number, .. } => assert_eq!(number, &opened, "reply {i}"),
            other => panic!("reply {i}: {other:?}"),
        }
    }
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 20);
}

both!(a_restart_takes_over_what_dead_processes_of_its_own_held);
/// Leases and outbox claims of a process of this host and instance that no longer runs are
/// given up at once; those of a live process or of another instance are not (on SQLite,
/// where the lock file proves no other daemon runs, every lease is).
async fn a_restart_takes_over_what_dead_processes_of_its_own_held(db: &TestDb) {
    use poststelle::holder;
    let me = holder::this_process(10);
    let host = me.split(':').next().expect("host");
    let dead = format!("{host}:10:{}:1:dead01", u32::MAX);
    let other_instance = format!("{host}:11:{}:1:other1", u32::MAX);
    let ttl = std::time::Duration::from_secs(300);
    for (name, holder) in [
        ("mailbox:a", &dead),
        ("mailbox:b", &other_instance),
        ("mailbox:c", &me),
    ] {
        assert!(
            db.store
                .acquire_lease(name, holder, ttl)
                .await
                .expect("lease")
        );
    }
    let ing = Ingestor::new(&db.store, cfg());
    for i in 0..3 {
        let (id, key) = (format!("c{i}@example.org"), format!("c{i}"));
        file(&ing, "Erika <erika@example.org>", "Drucker", &id, &key).await;
    }
    // Six rows: two claimed by each holder.
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(db.store.pool())
        .await
        .expect("ids");
    assert_eq!(ids.len(), 6);
    let far = Timestamp::now().as_microsecond() + 3_600_000_000;
    for (id, holder) in ids
        .iter()
        .zip([&dead, &dead, &other_instance, &other_instance, &me, &me])
    {
        sqlx::query("UPDATE outbox SET claimed_until = $1, claimed_by = $2 WHERE id = $3")
            .bind(far)
            .bind(holder)
            .bind(id)
            .execute(db.store.pool())
            .await
            .expect("claim");
    }

    let taken = db
        .store
        .take_over_dead(|h| holder::is_gone(h, 10))
        .await
        .expect("take over");
    let sqlite = db.store.backend() == poststelle::store::Backend::Sqlite;
    let mut leases: Vec<String> = sqlx::query_scalar("SELECT name FROM leases ORDER BY name")
        .fetch_all(db.store.pool())
        .await
        .expect("leases");
    leases.sort();
    if sqlite {
        assert!(leases.is_empty(), "{leases:?}");
        assert_eq!(taken.leases.len(), 3);
    } else {
        assert_eq!(leases, vec!["mailbox:b", "mailbox:c"]);
        assert_eq!(taken.leases, vec![dead.clone()]);
    }
    assert_eq!(taken.claims, vec![(dead.clone(), 2)]);
    let claimed: Vec<String> = sqlx::query_scalar(
        "SELECT claimed_by FROM outbox WHERE claimed_until IS NOT NULL ORDER BY id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("claims");
    assert_eq!(
        claimed,
        vec![other_instance.clone(), other_instance, me.clone(), me]
    );
}

both!(a_renewal_extends_only_its_holders_lease);
/// A renewal is an UPDATE of the holder's own row: it extends it, never takes a lease over
/// nor creates one, and says when the holder has it no longer.
async fn a_renewal_extends_only_its_holders_lease(db: &TestDb) {
    let ttl = std::time::Duration::from_secs(60);
    let store = &db.store;
    assert!(
        store
            .acquire_lease("mailbox:x", "a", ttl)
            .await
            .expect("take")
    );
    let until = || async {
        scalar(
            store,
            "SELECT expires_at FROM leases WHERE name = 'mailbox:x'",
        )
        .await
    };
    let first = until().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(
        store
            .renew_lease("mailbox:x", "a", ttl)
            .await
            .expect("renew")
    );
    assert!(until().await > first, "extended");
    assert!(
        !store
            .renew_lease("mailbox:x", "b", ttl)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_lease("mailbox:y", "a", ttl)
            .await
            .expect("renew")
    );
    assert_eq!(scalar(store, "SELECT COUNT(*) FROM leases").await, 1);
    assert_eq!(
        store
            .lease_holder("mailbox:x")
            .await
            .expect("holder")
            .as_deref(),
        Some("a")
    );
}

/// On SQLite a single write (the sender recording a mail as sent) waits for the transaction
/// under way, but not for transactions queued after it: the window in which a crash sends a
/// mail twice stays one transaction wide, whatever the mailboxes have queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_writes_go_ahead_of_queued_transactions() {
    use std::sync::{Arc, Mutex};
    let db = TestDb::sqlite().await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let first = db.store.begin_write().await.expect("first transaction");
    let queued = {
        let (store, order) = (db.store.clone(), Arc::clone(&order));
        tokio::spawn(async move {
            let tx = store.begin_write().await.expect("second transaction");
            order.lock().expect("order").push("transaction");
            tx.commit().await.expect("commit");
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let single = {
        let (store, order) = (db.store.clone(), Arc::clone(&order));
        tokio::spawn(async move {
            let _gate = store.write_gate().await;
            order.lock().expect("order").push("single");
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(order.lock().expect("order").is_empty(), "both wait");
    first.commit().await.expect("commit");
    single.await.expect("single");
    queued.await.expect("queued");
    assert_eq!(*order.lock().expect("order"), vec!["single", "transaction"]);
    db.finish().await;
}

both!(the_originals_of_a_claim_are_read_in_one_statement);
/// The sender reads the originals of a claim's staff copies at once: the same bytes as one by
/// one, none larger than the limit, none for an id that is not stored.
async fn the_originals_of_a_claim_are_read_in_one_statement(db: &TestDb) {
    for (i, subject) in ["Drucker defekt", "VPN geht nicht", "Passwort vergessen"]
        .iter()
        .enumerate()
    {
        open_ticket(
            &db.store,
            "Erika <erika@example.org>",
            subject,
            &format!("orig{i}"),
        )
        .await;
    }
    let ids: Vec<(i64, i64)> = sqlx::query_as("SELECT id, size FROM raw_messages ORDER BY id")
        .fetch_all(db.store.pool())
        .await
        .expect("raw ids");
    assert_eq!(ids.len(), 3);
    let mut wanted: Vec<i64> = ids.iter().map(|(id, _)| *id).collect();
    wanted.push(999_999);
    let all = db
        .store
        .raw_bytes_of(&wanted, i64::MAX)
        .await
        .expect("read");
    assert_eq!(all.len(), 3, "the id that is not stored is missing");
    for (id, _) in &ids {
        let one = db.store.raw_bytes(*id).await.expect("one").expect("stored");
        assert_eq!(all.get(id), Some(&one), "raw message {id}");
    }
    let smallest = ids.iter().map(|(_, size)| *size).min().expect("sizes");
    let small = db
        .store
        .raw_bytes_of(&wanted, smallest)
        .await
        .expect("read");
    assert!(!small.is_empty() && small.len() < 3 || ids.iter().all(|(_, s)| *s == smallest));
    assert!(
        small
            .keys()
            .all(|id| ids.iter().any(|(i, s)| i == id && *s <= smallest))
    );
    assert!(
        db.store
            .raw_bytes_of(&[], 0)
            .await
            .expect("none")
            .is_empty()
    );
}

both!(a_batch_of_marks_and_results_writes_what_one_by_one_writes);
/// The sender's group commit writes a batch of marks and results as one statement over a
/// bound JSON array: rows written so end as rows written one by one do (marks, sent, failures
/// with an error text that is SQL, a row marked before), and a batch with a row twice
/// applies both writes in their order.
async fn a_batch_of_marks_and_results_writes_what_one_by_one_writes(db: &TestDb) {
    use poststelle::store::outbox::{Attempt, SenderWrite};
    // Six requesters: the loop brake would hold back a sixth acknowledgement to one.
    for i in 0..6 {
        open_ticket(
            &db.store,
            &format!("Erika <erika{i}@example.org>"),
            &format!("Drucker {i} defekt"),
            &format!("batch{i}"),
        )
        .await;
    }
    let now = Timestamp::now().as_microsecond();
    let claimed = db
        .store
        .claim_outbox(now, now + 60_000_000, 100, 100, "batch-test")
        .await
        .expect("claim");
    let mut ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 12, "an acknowledgement and a staff copy each");
    // Rows 3 and 4 (and their twins 9 and 10) were handed over by a sender before.
    for id in [ids[3], ids[4], ids[9], ids[10]] {
        db.store
            .sender_writes(&[SenderWrite::Handed { id, at: 500 }])
            .await
            .expect("mark");
    }
    let attempt = |state, error, next| Attempt {
        state,
        attempts: 2,
        error,
        next_attempt_at: next,
        at: 2_000,
    };
    let sql = Some("'); DROP TABLE outbox; -- \"Anführung\" ünd \\ Ende");
    let writes = |first: usize| {
        vec![
            SenderWrite::Handed {
                id: ids[first],
                at: 1_500,
            },
            SenderWrite::Attempt {
                id: ids[first + 1],
                attempt: attempt(OutboxState::Sent, None, 2_000),
            },
            SenderWrite::Attempt {
                id: ids[first + 2],
                attempt: attempt(OutboxState::TemporaryFailure, sql, 9_999),
            },
            SenderWrite::Attempt {
                id: ids[first + 3],
                attempt: attempt(OutboxState::PermanentFailure, Some("550 no"), 2_000),
            },
            SenderWrite::Attempt {
                id: ids[first + 4],
                attempt: attempt(OutboxState::Uncertain, Some("uncertain"), 2_000),
            },
        ]
    };
    db.store.sender_writes(&writes(0)).await.expect("batch");
    for w in writes(6) {
        db.store.sender_writes(&[w]).await.expect("one");
    }
    type Row = (
        String,
        i64,
        Option<String>,
        i64,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT state, attempts, last_error, next_attempt_at, claimed_until, claimed_by, \
         handed_at, sent_at FROM outbox ORDER BY id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("rows");
    assert_eq!(rows.len(), 12);
    for k in 0..6 {
        let (mut a, mut b) = (rows[k].clone(), rows[k + 6].clone());
        if k == 0 || k == 5 {
            // Not set by a mark or by nothing: the instant each row was filed.
            (a.3, b.3) = (0, 0);
        }
        assert_eq!(a, b, "row {k} of the batch and its twin");
    }
    assert_eq!(rows[0].6, Some(1_500), "marked");
    assert_eq!(
        rows[0].5.as_deref(),
        Some("batch-test"),
        "a mark keeps the claim"
    );
    assert_eq!((rows[1].0.as_str(), rows[1].7), ("sent", Some(2_000)));
    assert_eq!(rows[2].2.as_deref(), sql, "the error text as it was");
    assert_eq!(
        (rows[3].6, rows[3].4),
        (None, None),
        "mark and claim cleared"
    );
    assert_eq!(rows[5].0, "scheduled", "untouched");

    // A row twice in one batch: marked, then sent, as one by one would leave it.
    let twice = [
        SenderWrite::Handed {
            id: ids[5],
            at: 1_700,
        },
        SenderWrite::Attempt {
            id: ids[5],
            attempt: attempt(OutboxState::Sent, None, 2_000),
        },
    ];
    db.store.sender_writes(&twice).await.expect("twice");
    let (state, handed): (String, Option<i64>) =
        sqlx::query_as("SELECT state, handed_at FROM outbox WHERE id = $1")
            .bind(ids[5])
            .fetch_one(db.store.pool())
            .await
            .expect("row");
    assert_eq!((state.as_str(), handed), ("sent", None));
}

/// A SQLite store's outbox rows for the marks' tests: (id, attempts, message_id), oldest first.
async fn outbox_keys(store: &Store) -> Vec<(i64, i64, String)> {
    sqlx::query_as("SELECT id, attempts, message_id FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("rows")
}

/// A SQLite store with one request filed (its acknowledgement and staff copy queued), and
/// its outbox rows as [`outbox_keys`] gives them.
async fn one_request_on_sqlite(tag: &str) -> (TestDb, Vec<(i64, i64, String)>) {
    let db = TestDb::sqlite().await;
    open_ticket(
        &db.store,
        "Erika <erika@example.org>",
        "Drucker defekt",
        tag,
    )
    .await;
    let keys = outbox_keys(&db.store).await;
    (db, keys)
}

/// Beside a SQLite store the hand-over marks are in a database of their own (store::marks) so
/// that a sender's mark never waits for the filing: with a write transaction open on the
/// store — as the filing of a batch holds it — a mark is committed at once, and the store's
/// own writes still wait. A mark lives in that file, not on the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_beside_a_sqlite_store_does_not_wait_for_the_filing() {
    use poststelle::store::marks::{Mark, path_of};
    let (db, mut keys) = one_request_on_sqlite("m1").await;
    let (id, attempts, message_id) = keys.remove(0);
    assert!(db.store.marks_apart());
    let filing = db.store.begin_write().await.expect("transaction");
    let mark = Mark {
        id,
        attempt: attempts,
        message_id: &message_id,
        at: 1_234,
        ended: None,
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        db.store.mark_handed(&mark),
    )
    .await
    .expect("the mark waited for the filing's transaction")
    .expect("mark");
    let gate =
        tokio::time::timeout(std::time::Duration::from_millis(300), db.store.write_gate()).await;
    assert!(gate.is_err(), "the store's own writes wait for the filing");
    filing.rollback().await.expect("rollback");
    assert_eq!(
        db.store.handed_over_at(id).await.expect("mark"),
        Some(1_234)
    );
    let on_row: Option<i64> = sqlx::query_scalar("SELECT handed_at FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(db.store.pool())
        .await
        .expect("row");
    assert_eq!(on_row, None, "the mark is beside the store, not on the row");
    let file = db.store.sqlite_file().expect("file");
    assert!(path_of(file).is_file(), "{}", path_of(file).display());
    db.finish().await;
}

/// A mark counts only for the attempt and the Message-ID its row has: the marks a sender
/// killed after recording its results leaves (the row sent, its attempt counted, the row
/// gone or its id used again for another mail) are stale, and the pass's clean-up removes
/// exactly those; a live mark and a live mark with its answer journaled stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_hand_over_marks_are_removed_and_live_ones_kept() {
    use poststelle::store::marks::Mark;
    use poststelle::store::outbox::Attempt;
    let db = TestDb::sqlite().await;
    let store = &db.store;
    for i in 0..3 {
        open_ticket(
            store,
            &format!("Erika <erika{i}@example.org>"),
            &format!("Drucker {i} defekt"),
            &format!("marks{i}"),
        )
        .await;
    }
    let rows = outbox_keys(store).await;
    assert_eq!(rows.len(), 6, "an acknowledgement and a staff copy each");
    let sent = Attempt {
        state: OutboxState::Sent,
        attempts: 1,
        error: None,
        next_attempt_at: 7,
        at: 7,
    };
    fn mark<'a>(
        row: &'a (i64, i64, String),
        message_id: Option<&'a str>,
        at: i64,
        ended: Option<Attempt<'a>>,
    ) -> Mark<'a> {
        Mark {
            id: row.0,
            attempt: row.1,
            message_id: message_id.unwrap_or(&row.2),
            at,
            ended,
        }
    }
    let marks = [
        mark(&rows[0], None, 100, None),                       // live
        mark(&rows[1], None, 101, Some(sent.clone())),         // live, its answer journaled
        mark(&rows[2], None, 102, None),                       // its row is then recorded as sent
        mark(&rows[3], Some("other@example.test"), 103, None), // another mail under the row's id
        mark(&rows[4], None, 104, None),                       // its row's attempt is then counted
    ];
    for m in &marks {
        store.mark_handed(m).await.expect("mark");
    }
    store.record_attempt(rows[2].0, &sent).await.expect("sent");
    store
        .record_attempt(
            rows[4].0,
            &Attempt {
                state: OutboxState::TemporaryFailure,
                next_attempt_at: i64::MAX / 2,
                error: Some("451 later"),
                ..sent.clone()
            },
        )
        .await
        .expect("failed");
    // The row of a mark deleted since (retention): its id is past the last row.
    let gone = Mark {
        id: rows[5].0 + 1_000,
        attempt: 0,
        message_id: "gone@example.test",
        at: 1,
        ended: None,
    };
    store.mark_handed(&gone).await.expect("mark");

    let live: Vec<Option<i64>> = {
        let mut v = Vec::new();
        for r in &rows {
            v.push(store.handed_over_at(r.0).await.expect("mark"));
        }
        v
    };
    assert_eq!(live, [Some(100), Some(101), None, None, None, None]);
    assert_eq!(store.prune_marks().await.expect("prune"), 4);
    assert_eq!(
        store.prune_marks().await.expect("prune"),
        0,
        "nothing left to remove"
    );
    assert_eq!(
        store.handed_over_at(rows[0].0).await.expect("mark"),
        Some(100)
    );
    assert_eq!(
        store.handed_over_at(rows[1].0).await.expect("mark"),
        Some(101)
    );
    // The claim finds both live marks, the journaled answer with it.
    let now = Timestamp::now().as_microsecond();
    let claimed = store
        .claim_outbox(now, now + 60_000_000, 100, 100, "marks-test")
        .await
        .expect("claim");
    let by_id: std::collections::HashMap<i64, _> = claimed.iter().map(|c| (c.id, c)).collect();
    assert_eq!(by_id[&rows[0].0].handed_at, Some(100));
    assert_eq!(by_id[&rows[0].0].journaled, None);
    let j = by_id[&rows[1].0].journaled.as_ref().expect("journaled");
    assert_eq!((j.state, j.attempts, j.at), (OutboxState::Sent, 1, 7));
    assert_eq!(by_id[&rows[3].0].handed_at, None, "another mail's mark");
    assert!(!by_id.contains_key(&rows[2].0), "sent");
    db.finish().await;
}

/// A mark written late for an earlier attempt (by another process, say) never replaces the
/// mark of a later attempt of the same row: that one still holds the mail after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_attempts_mark_never_replaces_a_later_ones() {
    use poststelle::store::marks::Mark;
    use poststelle::store::outbox::Attempt;
    let (db, mut keys) = one_request_on_sqlite("late").await;
    let store = &db.store;
    let (id, _, message_id) = keys.remove(0);
    let failed = Attempt {
        state: OutboxState::TemporaryFailure,
        attempts: 1,
        error: Some("451 later"),
        next_attempt_at: 0,
        at: 5,
    };
    store
        .record_attempt(id, &failed)
        .await
        .expect("first attempt");
    let second = Mark {
        id,
        attempt: 1,
        message_id: &message_id,
        at: 200,
        ended: None,
    };
    store.mark_handed(&second).await.expect("mark");
    let late = Mark {
        attempt: 0,
        at: 100,
        ended: Some(failed.clone()),
        ..second.clone()
    };
    store.mark_handed(&late).await.expect("late mark");
    assert_eq!(store.handed_over_at(id).await.expect("mark"), Some(200));
    let now = Timestamp::now().as_microsecond();
    let claimed = store
        .claim_outbox(now, now + 60_000_000, 100, 100, "late-test")
        .await
        .expect("claim");
    let row = claimed.iter().find(|c| c.id == id).expect("due again");
    assert_eq!((row.handed_at, row.journaled.is_none()), (Some(200), true));
    db.finish().await;
}

/// A claim whose marks cannot be read (here: the marks' file is no database) fails, and gives
/// its rows back at once: once the file is mended the next claim takes them, instead of
/// waiting for the failed claim to run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_cannot_read_its_marks_gives_its_rows_back() {
    use poststelle::store::marks::path_of;
    let (db, keys) = one_request_on_sqlite("broken").await;
    let store = &db.store;
    let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let marks = path_of(store.sqlite_file().expect("file"));
    std::fs::write(&marks, vec![0x5a; 8192]).expect("garbage");
    let now = Timestamp::now().as_microsecond();
    let hour = 3_600_000_000;
    let failed = store
        .claim_outbox(now, now + hour, 100, 100, "broken-test")
        .await;
    assert!(failed.is_err(), "{failed:?}");
    std::fs::remove_file(&marks).expect("mend");
    let claimed = store
        .claim_outbox(now, now + hour, 100, 100, "broken-test")
        .await
        .expect("claim");
    let mut again: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    again.sort_unstable();
    assert_eq!(again, ids, "every row is free again");
    db.finish().await;
}

/// A row id SQLite gives again after its row was deleted may find the old mail's mark of a
/// later attempt still there (a killed sender's, not yet pruned): the new mail's mark
/// replaces it, or a crash would send the new mail again instead of holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_of_another_mail_on_the_same_row_id_replaces_the_old_one() {
    use poststelle::store::marks::Mark;
    let (db, mut keys) = one_request_on_sqlite("reused").await;
    let store = &db.store;
    let (id, attempts, message_id) = keys.remove(0);
    let old = Mark {
        id,
        attempt: attempts + 3,
        message_id: "<old-mail@poststelle.example>",
        at: 100,
        ended: None,
    };
    store.mark_handed(&old).await.expect("old mark");
    assert_eq!(store.handed_over_at(id).await.expect("read"), None);
    let new = Mark {
        attempt: attempts,
        message_id: &message_id,
        at: 200,
        ..old.clone()
    };
    store.mark_handed(&new).await.expect("new mark");
    assert_eq!(store.handed_over_at(id).await.expect("read"), Some(200));
    db.finish().await;
}

both!(the_follow_up_lookup_finds_the_same_tickets_in_every_message_id_tier);
/// SQLite keeps the articles' Message-IDs in a small tier of new keys, a middle one they move
/// to in sorted ranges and a big one the middle one moves to (issue 20); PostgreSQL indexes
/// the column. Whatever tier a key is in, after moves in ranges of a few keys, a changed and a
/// removed Message-ID, the lookup gives what a plain search of the articles gives, and replies
/// by References find their tickets.
async fn the_follow_up_lookup_finds_the_same_tickets_in_every_message_id_tier(db: &TestDb) {
    use poststelle::store::tickets::{TierLimits, move_recent_message_ids, tickets_by_message_id};
    let limits = |middle, chunk| TierLimits {
        recent: 0,
        middle,
        chunk,
    };
    let ing = Ingestor::new(&db.store, cfg());
    // Keys spread over the key space, as real ones are.
    let id = |i: u64| {
        format!(
            "{:08x}.{i}@gemeinde.example",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40
        )
    };
    let mut numbers = Vec::new();
    for i in 0..60 {
        let from = format!("person{i}@gemeinde.example");
        numbers.push(new_number(
            &file(
                &ing,
                &from,
                &format!("Anfrage {i}"),
                &id(i),
                &format!("t{i}"),
            )
            .await,
        ));
        if i == 19 {
            // The first third into the middle tier, which waits for a thousand keys.
            move_recent_message_ids(&db.store, limits(1_000, 7))
                .await
                .expect("move");
        }
        if i == 39 {
            // The second third after it, and both into the big tier, seven keys per range.
            move_recent_message_ids(&db.store, limits(21, 7))
                .await
                .expect("move");
        }
        if i == 49 {
            move_recent_message_ids(&db.store, limits(1_000, 3))
                .await
                .expect("move");
        }
    }
    let sqlite = db.store.backend() == poststelle::store::Backend::Sqlite;
    if sqlite {
        let recent = scalar(&db.store, "SELECT COUNT(*) FROM message_ids_recent").await;
        let middle = scalar(&db.store, "SELECT COUNT(*) FROM message_ids_middle").await;
        // Our own mail's Message-IDs go straight to the big tier.
        let big = scalar(
            &db.store,
            "SELECT COUNT(*) FROM message_ids k JOIN articles a ON a.id = k.article_id \
             WHERE a.kind <> 'outbound'",
        )
        .await;
        assert_eq!(
            (recent, middle, big),
            (10, 10, 40),
            "new keys, one move's keys, and the two moves before it"
        );
        assert_eq!(
            scalar(&db.store, "SELECT middle FROM message_id_tiers").await,
            middle,
            "the moves count the middle tier's keys"
        );
    }
    // A changed Message-ID, and one removed, whatever tier they were in.
    for (old, new) in [(id(3), Some("changed@gemeinde.example")), (id(40), None)] {
        sqlx::query("UPDATE articles SET message_id = $1 WHERE message_id = $2")
            .bind(new)
            .bind(&old)
            .execute(db.store.pool())
            .await
            .expect("update");
    }
    let mut keys: Vec<String> = sqlx::query_scalar(
        "SELECT message_id FROM articles WHERE message_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("keys");
    keys.extend([id(3), id(40), "unknown@gemeinde.example".into()]);
    let check = |phase: &'static str| {
        let keys = keys.clone();
        let store = &db.store;
        async move {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let mut conn = store.pool().acquire().await.expect("conn");
            let found = tickets_by_message_id(&mut conn, store.backend(), &refs)
                .await
                .expect("lookup");
            for key in &keys {
                let plain: Option<String> = sqlx::query_scalar(
                    "SELECT t.number FROM articles a JOIN tickets t ON t.id = a.ticket_id \
                     WHERE a.message_id = $1 ORDER BY a.id DESC LIMIT 1",
                )
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .expect("plain");
                assert_eq!(
                    found.get(key).map(|t| t.number.clone()),
                    plain,
                    "{phase}: {key}"
                );
            }
            assert!(found.contains_key("changed@gemeinde.example"), "{phase}");
            assert!(
                !found.contains_key(&id(3)) && !found.contains_key(&id(40)),
                "{phase}"
            );
        }
    };
    check("keys in both tiers").await;
    let moved = move_recent_message_ids(&db.store, limits(0, 5))
        .await
        .expect("move");
    if sqlite {
        assert!(
            moved.to_middle > 0 && moved.to_big > moved.to_middle,
            "{moved:?}"
        );
        for count in [
            "SELECT COUNT(*) FROM message_ids_recent",
            "SELECT COUNT(*) FROM message_ids_middle",
        ] {
            assert_eq!(scalar(&db.store, count).await, 0, "{count}");
        }
        assert_eq!(
            scalar(&db.store, "SELECT middle FROM message_id_tiers").await,
            0
        );
        assert_eq!(
            scalar(&db.store, "SELECT COUNT(*) FROM message_ids").await,
            scalar(
                &db.store,
                "SELECT COUNT(*) FROM articles WHERE message_id IS NOT NULL"
            )
            .await,
            "every key once"
        );
    } else {
        assert_eq!(moved, Default::default(), "PostgreSQL has one index");
    }
    check("all keys moved").await;
    // Replies by References alone, to requests whose keys were moved early, late, or not.
    for i in [0, 29, 30, 59] {
        let reply = mail(
            &[
                &format!("From: person{i}@gemeinde.example"),
                &format!("Subject: AW: Anfrage {i}"),
                &format!("Message-ID: <re.{}>", id(i)),
                &format!("References: <{}>", id(i)),
            ],
            "Nachtrag\r\n",
        );
        match ing
            .ingest(&reply, SourceKey::file(&format!("r{i}")))
            .await
            .expect("ingest")
        {
            Outcome::FollowUp { number, .. } => assert_eq!(number, numbers[i as usize]),
            other => panic!("reply {i}: {other:?}"),
        }
    }
}

both!(the_same_mail_from_another_source_is_found_by_its_day_first_key_and_by_the_old_key);
/// Dedup keys begin with the UTC day of the mail's Date, so that new keys land together in the
/// store's index (issue 20); in a store upgraded with mail in it, mail filed before under the
/// key that began with the Message-ID is still found when its bytes come again from another
/// source, and looked for only when dated before the upgrade (and a week).
async fn the_same_mail_from_another_source_is_found_by_its_day_first_key_and_by_the_old_key(
    db: &TestDb,
) {
    use sha2::{Digest, Sha256};
    let ing = Ingestor::new(&db.store, cfg());
    let dated = |id: &str| {
        mail(
            &[
                "From: erika@example.org",
                "Subject: Drucker defekt",
                "Date: Sun, 01 Mar 2026 00:30:00 +0100",
                &format!("Message-ID: <{id}>"),
            ],
            "Guten Tag\r\n",
        )
    };
    let hex = |raw: &[u8]| {
        Sha256::digest(raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM legacy_dedup_keys WHERE dated_before IS NULL"
        )
        .await,
        1,
        "a new store has no old keys"
    );
    // The store as if upgraded with mail in it: old keys are looked for in mail dated before.
    let upgraded_at = |dated_before: i64| async move {
        sqlx::query("UPDATE legacy_dedup_keys SET dated_before = $1")
            .bind(dated_before)
            .execute(db.store.pool())
            .await
            .expect("upgraded store");
    };
    let raw = dated("neu@example.org");
    new_number(
        &ing.ingest(&raw, SourceKey::imap("INBOX", 7, 1))
            .await
            .expect("ingest"),
    );
    // 00:30 at +01:00 is the day before in UTC.
    assert_eq!(
        scalar_text(&db.store, "SELECT dedup_key FROM raw_messages").await,
        format!("20260228 neu@example.org {}", hex(&raw))
    );
    let again = ing
        .ingest(&raw, SourceKey::imap("INBOX", 8, 1))
        .await
        .expect("ingest");
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");

    // A mail filed under the old key, in a store that got this version with mail in it.
    upgraded_at(1_800_000_000).await;
    let old = dated("alt@example.org");
    new_number(
        &ing.ingest(&old, SourceKey::imap("INBOX", 7, 2))
            .await
            .expect("ingest"),
    );
    sqlx::query("UPDATE raw_messages SET dedup_key = $1 WHERE message_id = 'alt@example.org'")
        .bind(format!("alt@example.org {}", hex(&old)))
        .execute(db.store.pool())
        .await
        .expect("old key");
    let again = ing
        .ingest(&old, SourceKey::imap("INBOX", 8, 2))
        .await
        .expect("ingest");
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 2);
    // Mail dated after the upgrade's week cannot have an old key and is not looked for by one
    // (the upgrade put before the mail's Date to show it).
    upgraded_at(1_700_000_000).await;
    let again = ing
        .ingest(&old, SourceKey::imap("INBOX", 9, 2))
        .await
        .expect("ingest");
    assert!(matches!(again, Outcome::NewTicket { .. }), "{again:?}");
    // Without a Date the day is "-".
    assert_eq!(
        poststelle::ticket::ingest::dedup_key(None, Some("x@y"), "ab"),
        "- x@y ab"
    );
}

/// A move of SQLite's middle Message-ID tier into the big one that was cut short (a crash, a
/// failed write) is taken up after the next batch, though the small tier has too few keys to
/// move: the middle tier is looked at every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_tier_left_full_moves_on_without_new_keys() {
    use poststelle::store::tickets::{Moved, TierLimits, move_recent_message_ids};
    let db = TestDb::sqlite().await;
    let ing = Ingestor::new(&db.store, cfg());
    for i in 0..5 {
        file(
            &ing,
            &format!("person{i}@gemeinde.example"),
            &format!("Anfrage {i}"),
            &format!("{i}.middle@gemeinde.example"),
            &format!("m{i}"),
        )
        .await;
    }
    let limits = |recent, middle| TierLimits {
        recent,
        middle,
        chunk: 2,
    };
    let into_middle = move_recent_message_ids(&db.store, limits(0, i64::MAX))
        .await
        .expect("move");
    assert_eq!(
        into_middle,
        Moved {
            to_middle: 5,
            to_big: 0
        }
    );
    // The small tier is empty; the middle one is over its limit of 3.
    let on = move_recent_message_ids(&db.store, limits(1_000, 3))
        .await
        .expect("move");
    assert_eq!(
        on,
        Moved {
            to_middle: 0,
            to_big: 5
        }
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM message_ids_middle").await,
        0
    );
    db.finish().await;
}

/// PostgreSQL: a store that began empty has its planner statistics renewed once filing has
/// grown it, before autovacuum's nap is over; with the estimates of an empty store the
/// follow-up lookup hashed every ticket for each batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_postgres_store_renews_its_statistics_as_it_grows() {
    use poststelle::store::hot::{full_scans, hot_queries};
    use poststelle::ticket::ingest::Incoming;
    let db = TestDb::postgres().await;
    let ing = Ingestor::new(&db.store, cfg());
    let n = poststelle::store::ANALYZE_AFTER_MAILS as usize + 100;
    let mails: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            crate::support::mail::request(
                &format!("person{}@gemeinde{}.example", i, i % 40),
                &format!("Anfrage {i} zum Drucker"),
                &format!("{i:05}.grow@gemeinde.example"),
            )
        })
        .collect();
    for (b, chunk) in mails.chunks(100).enumerate() {
        let items: Vec<Incoming<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(i, raw)| Incoming {
                raw,
                source: SourceKey::file(&format!("grow/{b}/{i}")),
            })
            .collect();
        ing.ingest_batch(&items).await.expect("ingest");
    }
    let analyzed = "SELECT COUNT(*) FROM pg_stat_user_tables \
                    WHERE relname IN ('tickets', 'articles') AND last_analyze IS NOT NULL";
    let mut waited = 0;
    while scalar(&db.store, analyzed).await < 2 {
        assert!(waited < 300, "no ANALYZE within 30 s of filing {n} mails");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let lookup = hot_queries(db.store.backend())
        .into_iter()
        .find(|q| q.name == "filing: tickets by Message-ID")
        .expect("the lookup is a hot statement");
    let plan = db.store.explain(&lookup).await.expect("explain");
    assert_eq!(
        full_scans(db.store.backend(), &plan),
        Vec::<String>::new(),
        "{}",
        plan.join("\n")
    );
    db.finish().await;
}
