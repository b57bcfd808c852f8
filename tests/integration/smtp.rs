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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_each_mail_once() {
    // A port that refuses connections until the forwarder listens on it.
    let port = free_port();
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
        + &format!(
            "\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 5\n"
        );
    let t = TempConfig::new(&text, &[]);
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
            + &format!(
                "\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 5\n"
            );
        let t = TempConfig::new(&text, &[]);
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
