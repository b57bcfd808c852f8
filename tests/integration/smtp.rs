//! Delivery through a real SMTP server (OpenSMTPD, relaying to Dovecot over LMTP), read back
//! from the recipients' mailboxes over IMAP. tests/run.sh starts both servers and exports
//! their addresses; without them these tests fail.
use std::time::Duration;

use poststelle::outbox::sender::{Mailer, Sender};
use poststelle::store::Store;
use poststelle::store::outbox::OutboxState;
use poststelle::ticket::ingest::{Ingestor, SourceKey};
use poststelle::ticket::ops;
use tokio::net::{TcpListener, TcpStream};

use crate::support::config::TempConfig;
use crate::support::daemon::{env, free_port, unique};
use crate::support::imap::messages;
use crate::support::mail::mail;
use crate::support::tickets::new_number;

/// Every message in a user's INBOX, read over IMAP.
async fn inbox(user: &str) -> Vec<Vec<u8>> {
    messages(&env("POSTSTELLE_TEST_IMAP"), user, "INBOX").await
}

/// A TCP forwarder to the SMTP server that the test switches on when it wants the "server" up.
async fn forward_when_up(listener: TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn with_message_id(user: &str, id: &str) -> Vec<poststelle::InboundMessage> {
    inbox(user)
        .await
        .iter()
        .filter_map(|raw| poststelle::InboundMessage::parse(raw).ok())
        .filter(|m| m.message_id.as_deref() == Some(id))
        .collect()
}

/// [`with_message_id`] once the mail has arrived: delivery through OpenSMTPD and LMTP takes a
/// moment (up to 50 looks, 100 ms apart).
async fn delivered(user: &str, id: &str) -> Vec<poststelle::InboundMessage> {
    let mut got = Vec::new();
    for _ in 0..50 {
        got = with_message_id(user, id).await;
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

/// The shipped configuration sending to the relay at 127.0.0.1:`port` (no TLS, 5 s timeout),
/// from and to test addresses, with `outbox` added to `[outbox]` and `smtp` to `[outbox.smtp]`.
fn relay_config(port: impl std::fmt::Display, outbox: &str, smtp: &str) -> TempConfig {
    let text = TempConfig::shipped_text()
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace(
            "from = \"servicedesk@kommunal-it.example\"",
            "from = \"support@example.test\"",
        )
        .replace(
            "staff = \"servicedesk@kommunal-it.example\"",
            "staff = \"staff@example.test\"",
        )
        .replace("[outbox]\n", &format!("[outbox]\n{outbox}"))
        + &format!(
            "\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             timeout_seconds = 5\n{smtp}"
        );
    TempConfig::new(&text, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_each_mail_once() {
    // A port that refuses connections until the forwarder listens on it.
    let port = free_port();
    let t = relay_config(port, "", "");
    let cfg = t.load();
    let store = Store::open(&Store::default_url(t.dir.path()))
        .await
        .expect("store");
    let ingest = Ingestor::new(&store, &cfg);
    let unique = unique();
    let request = mail(
        &[
            "From: Erika Mustermann <erika@example.test>",
            &format!("Subject: Scanner im Bürgerbüro defekt {unique}"),
            &format!("Message-ID: <{unique}@example.test>"),
        ],
        "Grüße aus Kassel",
    );
    let number = new_number(
        &ingest
            .ingest(&request, SourceKey::file(&unique))
            .await
            .expect("ingest"),
    );

    let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
    let sender = Sender {
        store: &store,
        config: &cfg,
        mailer: &mailer,
    };

    // The server is down: both mails wait as temporary failures.
    let s = sender.send_due(10).await.expect("send");
    assert_eq!((s.sent, s.temporary_failures), (0, 2));

    // The server is back.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("forwarder");
    tokio::spawn(forward_when_up(listener, env("POSTSTELLE_TEST_SMTP")));
    for row in ops::list_outbox(&store, Some(OutboxState::TemporaryFailure), None)
        .await
        .expect("list")
    {
        ops::retry_outbox(&store, row.id).await.expect("retry");
    }
    let s = sender.send_due(10).await.expect("send");
    assert_eq!(
        (s.sent, s.temporary_failures, s.permanent_failures),
        (2, 0, 0)
    );
    assert_eq!(
        sender.send_due(10).await.expect("send").sent,
        0,
        "nothing twice"
    );

    let rows = ops::list_outbox(&store, Some(OutboxState::Sent), None)
        .await
        .expect("list");
    let ack = rows
        .iter()
        .find(|r| r.kind == "acknowledgement")
        .expect("ack row");
    let copy = rows
        .iter()
        .find(|r| r.kind == "staff_copy")
        .expect("copy row");

    let got = delivered("erika", &ack.message_id).await;
    assert_eq!(got.len(), 1, "the acknowledgement arrived once");
    let m = &got[0];
    assert_eq!(
        m.subject,
        format!("[Ticket#{number}] Eingangsbestätigung: Scanner im Bürgerbüro defekt {unique}")
    );
    assert_eq!(m.header("auto-submitted"), Some("auto-replied"));
    assert_eq!(m.in_reply_to, vec![format!("{unique}@example.test")]);
    assert!(m.body.contains(&number));

    let staff = delivered("staff", &copy.message_id).await;
    assert_eq!(staff.len(), 1, "the staff copy arrived once");
    assert_eq!(staff[0].attachments.len(), 1, "with the original attached");
    store.close().await;
}

/// A forwarder to the SMTP server that notes whether the client pipelined (MAIL FROM and RCPT
/// TO in one write) and, with `hide`, takes PIPELINING out of the server's EHLO answer (same
/// length, so nothing else shifts).
async fn watching_forwarder(
    listener: TcpListener,
    target: String,
    hide: bool,
    pipelined: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        let Ok(outbound) = TcpStream::connect(&target).await else {
            return;
        };
        let (mut client_r, mut client_w) = inbound.into_split();
        let (mut server_r, mut server_w) = outbound.into_split();
        let seen = pipelined.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = client_r.read(&mut buf).await {
                if n == 0 || server_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                let chunk = String::from_utf8_lossy(&buf[..n]);
                if chunk.contains("MAIL FROM:") && chunk.contains("RCPT TO:") {
                    seen.store(true, Ordering::SeqCst);
                }
            }
        });
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = server_r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut chunk = buf[..n].to_vec();
                if hide {
                    let text = String::from_utf8_lossy(&chunk).replace("PIPELINING", "XPIPELINE0");
                    chunk = text.into_bytes();
                }
                if client_w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// The mails Postfix's smtp-sink took (tests/servers.sh) that carry Message-ID `id`.
fn sunk(id: &str) -> Vec<poststelle::InboundMessage> {
    let dir = env("POSTSTELLE_TEST_SINK_DIR");
    let mut out = Vec::new();
    for _ in 0..50 {
        out = std::fs::read_dir(&dir)
            .expect("the sink's directory")
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .filter_map(|raw| poststelle::InboundMessage::parse(&raw).ok())
            .filter(|m| m.message_id.as_deref() == Some(id))
            .collect();
        if !out.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

/// The pipelined exchange (MAIL, RCPT and DATA in one write) and lettre's plain one deliver
/// the same mail: to Postfix's smtp-sink, which offers PIPELINING, once as it is and once
/// with the offer taken out of its EHLO answer; and to OpenSMTPD, which does not offer it.
/// The client pipelines exactly where it is offered, each mail arrives once, and the
/// acknowledgement and staff copy are alike in all three but for the ticket's own number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_pipelined_and_plain_deliver_the_same_mail() {
    let mut delivered_mails = Vec::new();
    for (server, hide, offered) in [
        ("POSTSTELLE_TEST_SINK", false, true),
        ("POSTSTELLE_TEST_SINK", true, false),
        ("POSTSTELLE_TEST_SMTP", false, false),
    ] {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let pipelined = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(watching_forwarder(
            listener,
            env(server),
            hide,
            pipelined.clone(),
        ));
        let t = relay_config(port, "", "");
        let cfg = t.load();
        let store = Store::open(&Store::default_url(t.dir.path()))
            .await
            .expect("store");
        let unique = unique();
        let request = mail(
            &[
                "From: Erika Mustermann <erika@example.test>",
                &format!("Subject: Drucker im Bürgerbüro defekt {unique}"),
                &format!("Message-ID: <{unique}@example.test>"),
            ],
            "Grüße aus Kassel",
        );
        let number = new_number(
            &Ingestor::new(&store, &cfg)
                .ingest(&request, SourceKey::file(&unique))
                .await
                .expect("ingest"),
        );
        let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
        let sender = Sender {
            store: &store,
            config: &cfg,
            mailer: &mailer,
        };
        let s = sender.send_due(10).await.expect("send");
        assert_eq!(
            (s.sent, s.temporary_failures, s.permanent_failures),
            (2, 0, 0),
            "{server} hidden: {hide}"
        );
        assert_eq!(
            pipelined.load(std::sync::atomic::Ordering::SeqCst),
            offered,
            "pipelined exactly where the server offers it ({server}, hidden: {hide})"
        );
        let rows = ops::list_outbox(&store, Some(OutboxState::Sent), None)
            .await
            .expect("list");
        let id_of = |kind: &str| {
            rows.iter()
                .find(|r| r.kind == kind)
                .map(|r| r.message_id.clone())
                .expect("row")
        };
        let (ack, copy) = if server == "POSTSTELLE_TEST_SINK" {
            (sunk(&id_of("acknowledgement")), sunk(&id_of("staff_copy")))
        } else {
            (
                delivered("erika", &id_of("acknowledgement")).await,
                delivered("staff", &id_of("staff_copy")).await,
            )
        };
        assert_eq!(
            (ack.len(), copy.len()),
            (1, 1),
            "each once ({server}, hidden: {hide})"
        );
        // Alike but for what differs by ticket (its number, the request's unique subject) and
        // how each server stores line ends (smtp-sink's files: LF and one fewer at the end).
        let same = |m: &poststelle::InboundMessage| {
            (
                m.subject.replace(&number, "N").replace(&unique, "U"),
                m.body
                    .replace("\r\n", "\n")
                    .trim_end()
                    .replace(&number, "N")
                    .replace(&unique, "U"),
                m.attachments.len(),
                m.header("auto-submitted").map(str::to_string),
            )
        };
        delivered_mails.push((same(&ack[0]), same(&copy[0])));
        store.close().await;
    }
    assert_eq!(delivered_mails[0], delivered_mails[1]);
    assert_eq!(delivered_mails[1], delivered_mails[2]);
}

/// What [`cutting_forwarder`] saw at each mail's final `.`: the mail's Message-ID and its
/// row's hand-over mark at that moment (wherever the store keeps it).
type Marks = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<i64>)>>>;

/// A forwarder to the SMTP server that, at each mail's final `.` from the client, notes the
/// row's hand-over mark in `store` before passing the `.` on; on the first `cut` connections
/// it then keeps the server's answer to it from the client and closes the connection once
/// the server has answered — the server has the mail, the client never hears so.
async fn cutting_forwarder(
    listener: TcpListener,
    target: String,
    store: Store,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    marks: Marks,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        let Ok(outbound) = TcpStream::connect(&target).await else {
            return;
        };
        let cut_this = cut
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let (store, marks) = (store.clone(), marks.clone());
        tokio::spawn(async move {
            let (mut client_r, mut client_w) = inbound.into_split();
            let (mut server_r, mut server_w) = outbound.into_split();
            let cutting = std::sync::Arc::new(AtomicBool::new(false));
            let relay_cut = cutting.clone();
            let answers = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_r.read(&mut buf).await {
                    // The server's answer to the cut mail's `.` ends the relay: dropping the
                    // client's side closes it.
                    if n == 0 || relay_cut.load(Ordering::SeqCst) {
                        break;
                    }
                    if client_w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let mut buf = vec![0u8; 64 * 1024];
            let mut mail: Vec<u8> = Vec::new();
            while let Ok(n) = client_r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                mail.extend_from_slice(&buf[..n]);
                let end = mail.ends_with(b"\r\n.\r\n");
                if end {
                    let text = String::from_utf8_lossy(&mail);
                    let id = text
                        .split("Message-ID: <")
                        .nth(1)
                        .and_then(|r| r.split('>').next())
                        .unwrap_or_default()
                        .to_string();
                    let row: i64 =
                        sqlx::query_scalar("SELECT id FROM outbox WHERE message_id = $1")
                            .bind(&id)
                            .fetch_one(store.pool())
                            .await
                            .expect("row");
                    let handed = store.handed_over_at(row).await.expect("mark");
                    marks.lock().expect("marks").push((id, handed));
                    mail.clear();
                    if cut_this {
                        cutting.store(true, Ordering::SeqCst);
                    }
                }
                if server_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                if end && cut_this {
                    // Held open until the server has answered the `.`: it has the mail.
                    let _ = answers.await;
                    return;
                }
            }
        });
    }
}

/// RFC 1047 on a live connection: the server takes a mail but its answer to the final `.`
/// never reaches poststelle (the connection breaks). Each mail's row was marked before its
/// `.` reached the server — with PIPELINING (Postfix's smtp-sink) and without (OpenSMTPD).
/// Under `outbox.after_crash = "hold"` such a mail is held as uncertain, not sent again,
/// and arrives once; under "resend" it goes again at once on a new connection and arrives
/// twice — the price that setting names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_an_answer_lost_after_the_data_holds_the_mail_it_was_marked_for() {
    use std::sync::atomic::AtomicUsize;
    for (server, after_crash) in [
        ("POSTSTELLE_TEST_SINK", "hold"),
        ("POSTSTELLE_TEST_SMTP", "hold"),
        ("POSTSTELLE_TEST_SMTP", "resend"),
    ] {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // One connection at a time under "resend", so that only the first mail's answer is
        // lost and its retry goes out on the next connection.
        let (cut, pool) = if after_crash == "hold" {
            (2, 4)
        } else {
            (1, 1)
        };
        let t = relay_config(
            port,
            &format!("after_crash = {after_crash:?}\n"),
            &format!("pool_size = {pool}\n"),
        );
        let cfg = t.load();
        let store = Store::open(&Store::default_url(t.dir.path()))
            .await
            .expect("store");
        let marks = Marks::default();
        tokio::spawn(cutting_forwarder(
            listener,
            env(server),
            store.clone(),
            std::sync::Arc::new(AtomicUsize::new(cut)),
            marks.clone(),
        ));
        let unique = unique();
        let request = mail(
            &[
                "From: Erika Mustermann <erika@example.test>",
                &format!("Subject: Kopierer im Standesamt defekt {unique}"),
                &format!("Message-ID: <{unique}@example.test>"),
            ],
            "Grüße aus Fulda",
        );
        Ingestor::new(&store, &cfg)
            .ingest(&request, SourceKey::file(&unique))
            .await
            .expect("ingest");
        let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
        let sender = Sender {
            store: &store,
            config: &cfg,
            mailer: &mailer,
        };
        let s = sender.send_due(10).await.expect("send");
        let case = format!("{server}, {after_crash}");
        let rows = ops::list_outbox(&store, None, None).await.expect("list");
        assert_eq!(rows.len(), 2);
        let marked = marks.lock().expect("marks").clone();
        for r in &rows {
            let seen: Vec<&Option<i64>> = marked
                .iter()
                .filter(|(id, _)| *id == r.message_id)
                .map(|(_, handed)| handed)
                .collect();
            assert!(
                !seen.is_empty() && seen.iter().all(|h| h.is_some()),
                "{case}: {} marked before each of its `.`: {marked:?}",
                r.kind
            );
        }
        if after_crash == "hold" {
            assert_eq!((s.sent, s.uncertain), (0, 2), "{case}");
            for r in &rows {
                assert_eq!(r.state, "uncertain", "{case}");
                let error = r.last_error.as_deref().unwrap_or_default();
                assert!(
                    error.contains("no answer after the end of the data")
                        && error.contains(&format!("<{}>", r.message_id)),
                    "{case}: {error}"
                );
                assert_eq!(
                    copies(server, &r.kind, &r.message_id, 1).await,
                    1,
                    "{case}: arrived once"
                );
            }
            let again = sender.send_due(10).await.expect("send");
            assert_eq!(again.total(), 0, "{case}: not claimed again");
        } else {
            assert_eq!((s.sent, s.uncertain), (2, 0), "{case}");
            let first = &marked[0].0;
            for r in &rows {
                let expected = if r.message_id == *first { 2 } else { 1 };
                assert_eq!(
                    copies(server, &r.kind, &r.message_id, expected).await,
                    expected,
                    "{case}: {} sent again at once",
                    r.kind
                );
            }
        }
        store.close().await;
    }
}

/// The copies of mail `id` (of `kind`) the server delivered, once there are at least `least`
/// (or after 50 looks, 100 ms apart): smtp-sink's files, or the mailbox of the
/// acknowledgement's requester or of the staff behind OpenSMTPD.
async fn copies(server: &str, kind: &str, id: &str, least: usize) -> usize {
    let user = if kind == "acknowledgement" {
        "erika"
    } else {
        "staff"
    };
    let mut n = 0;
    for _ in 0..50 {
        n = if server == "POSTSTELLE_TEST_SINK" {
            sunk(id).len()
        } else {
            with_message_id(user, id).await.len()
        };
        if n >= least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n
}

/// The Message-IDs among `ids` that Postfix's smtp-sink has taken (tests/servers.sh).
fn sunk_of(ids: &std::collections::HashSet<String>) -> usize {
    let dir = env("POSTSTELLE_TEST_SINK_DIR");
    std::fs::read_dir(&dir)
        .expect("the sink's directory")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|raw| poststelle::InboundMessage::parse(&raw).ok())
        .filter(|m| m.message_id.as_ref().is_some_and(|id| ids.contains(id)))
        .count()
}

/// Beside a SQLite store the sender's hand-over marks and the server's answers are in a
/// database of their own (store::marks), so mail goes out while the filing holds the store's
/// write lock: once the first of 20 mails is recorded, another process takes the lock (as a
/// filing transaction does) and keeps it — and every mail still reaches the server meanwhile,
/// over 4 connections. When the lock is let go, the pass records all 20 as sent and nothing is
/// sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_mail_goes_out_while_the_filing_holds_the_store() {
    use poststelle::outbox::sender::Watch;
    const REQUESTS: usize = 10;
    let sink = env("POSTSTELLE_TEST_SINK");
    let (_, port) = sink.rsplit_once(':').expect("host:port");
    let t = relay_config(port, "", "pool_size = 4\n");
    let cfg = t.load();
    let url = Store::default_url(t.dir.path());
    let store = Store::open(&url).await.expect("store");
    let ingest = Ingestor::new(&store, &cfg);
    let unique = unique();
    for i in 0..REQUESTS {
        let request = mail(
            &[
                &format!("From: Erika Mustermann <erika{i}@example.test>"),
                &format!("Subject: Drucker {i} im Standesamt defekt {unique}"),
                &format!("Message-ID: <{unique}.{i}@example.test>"),
            ],
            "Grüße aus Gießen",
        );
        ingest
            .ingest(&request, SourceKey::file(&format!("{unique}.{i}")))
            .await
            .expect("ingest");
    }
    let ids: std::collections::HashSet<String> = ops::list_outbox(&store, None, None)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.message_id)
        .collect();
    assert_eq!(
        ids.len(),
        2 * REQUESTS,
        "an acknowledgement and a staff copy each"
    );
    // The filing: another process on the same file.
    let filing = Store::open(&url).await.expect("second store");
    let first = std::sync::Arc::new(tokio::sync::Notify::new());
    let mailer = Mailer::from_settings(&cfg.settings.outbox, t.dir.path()).expect("mailer");
    let sender = Sender {
        store: &store,
        config: &cfg,
        mailer: &mailer,
    };
    let told = first.clone();
    let each = move |_| told.notify_one();
    let pass = sender.send_watched(
        100,
        Watch {
            stop: None,
            each: Some(&each),
        },
    );
    let hold = async {
        first.notified().await;
        let tx = filing.begin_write().await.expect("the filing's lock");
        // Well within the 10 s a result waits for the lock (busy_timeout).
        let mut out = 0;
        for _ in 0..60 {
            out = sunk_of(&ids);
            if out == ids.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tx.rollback().await.expect("let go");
        out
    };
    let (summary, out_while_held) = tokio::join!(pass, hold);
    let summary = summary.expect("send");
    assert_eq!(
        out_while_held,
        ids.len(),
        "every mail reached the server while the filing held the store"
    );
    assert_eq!((summary.sent, summary.total()), (ids.len(), ids.len()));
    let sent = ops::list_outbox(&store, Some(OutboxState::Sent), None)
        .await
        .expect("list");
    assert_eq!(sent.len(), ids.len());
    assert_eq!(sender.send_due(100).await.expect("send").total(), 0);
    assert_eq!(sunk_of(&ids), ids.len(), "nothing twice");
    filing.close().await;
    store.close().await;
}
