//! `poststelle run` against a real Dovecot and a real OpenSMTPD (started by tests/run.sh), as
//! the binary a data centre installs: mail appended over IMAP becomes tickets, acknowledgements
//! and department copies arrive in the recipients' mailboxes, the originals move to the
//! processed folder — and all of it survives server restarts, SIGKILL and UIDVALIDITY changes.
//! Each test has Dovecot users of its own (d01…d40), so tests running at once never meet.
use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::support::bin::poststelle;
use crate::support::config::{TempConfig, config_text, imap_mailbox, one_mailbox};
use crate::support::daemon::{Daemon, env, free_port, http_get, port_of, sqlite_of, unique, until};
use crate::support::db::{TestDb, scalar};
use crate::support::imap::{append_all, count, messages, reset};
use crate::support::mail::{fresh_samples, message_ids, requests};
use crate::support::repo;

// ---------------------------------------------------------------------------------------------
// End to end

/// 200 mails appended over IMAP (half before the start, half while it idles) → 200 tickets,
/// 200 acknowledgements in the requester's mailbox, 200 copies in the staff mailbox, the
/// originals in the processed folder; SIGTERM then ends it with 0 within the deadline.
async fn end_to_end(tls: bool, support: &str, requester: &str, staff: &str) {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let smtp = env("POSTSTELLE_TEST_SMTP");
    let tag = unique();
    for u in [support, requester, staff] {
        reset(&imap, u).await;
    }
    let mailbox = if tls {
        let imaps = env("POSTSTELLE_TEST_IMAPS");
        format!(
            "[[mailbox]]\nname = \"support\"\nkind = \"imap\"\nhost = \"localhost\"\nport = {}\n\
             tls = \"implicit\"\nca_file = {:?}\nusername = \"{support}@example.test\"\n\
             password = \"secret\"\n",
            port_of(&imaps),
            env("POSTSTELLE_TEST_CA")
        )
    } else {
        imap_mailbox("support", &imap, support, "INBOX", "")
    };
    let metrics = format!("127.0.0.1:{}", free_port());
    let text = config_text(
        &mailbox,
        &format!(
            "[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            port_of(&smtp)
        ),
    )
    .replace("transport = \"file\"", "transport = \"smtp\"")
    .replace(
        "from = \"servicedesk@kommunal-it.example\"",
        &format!("from = \"{support}@example.test\""),
    )
    .replace(
        "staff = \"servicedesk@kommunal-it.example\"",
        &format!("staff = \"{staff}@example.test\""),
    )
    .replace(
        "# metrics_listen = \"127.0.0.1:9187\"",
        &format!("metrics_listen = \"{metrics}\""),
    );
    let cfg = TempConfig::new(&text, &[]);
    let mails = requests(200, requester, &tag);
    append_all(&imap, support, "INBOX", &mails[..100]).await;
    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(30), "the first 100 filed", || async {
        count(&imap, support, "Verarbeitet").await >= 100
    })
    .await;
    append_all(&imap, support, "INBOX", &mails[100..]).await;

    until(
        Duration::from_secs(60),
        "200 originals in Verarbeitet",
        || async { count(&imap, support, "Verarbeitet").await == 200 },
    )
    .await;
    until(Duration::from_secs(60), "200 acknowledgements", || async {
        count(&imap, requester, "INBOX").await >= 200
    })
    .await;
    until(Duration::from_secs(60), "200 staff copies", || async {
        count(&imap, staff, "INBOX").await >= 200
    })
    .await;
    assert_eq!(count(&imap, support, "INBOX").await, 0, "{}", daemon.log());

    let store = sqlite_of(&cfg).await;
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 200);
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'").await,
        400
    );
    // Every acknowledgement names its own ticket and answers its request.
    let acks = messages(&imap, requester, "INBOX").await;
    assert_eq!(acks.len(), 200, "nothing sent twice");
    let mut numbers = BTreeSet::new();
    let mut answered = BTreeSet::new();
    for raw in &acks {
        let m = poststelle::InboundMessage::parse(raw).expect("ack parses");
        let n = m
            .subject
            .split("[Ticket#")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap_or_else(|| panic!("no ticket tag in {:?}", m.subject));
        numbers.insert(n.to_string());
        answered.insert(m.in_reply_to.first().cloned().unwrap_or_default());
    }
    assert_eq!(numbers.len(), 200);
    assert_eq!(answered.len(), 200);
    let staff_ids = message_ids(&messages(&imap, staff, "INBOX").await);
    assert_eq!(staff_ids.iter().collect::<BTreeSet<_>>().len(), 200);
    let processed = message_ids(&messages(&imap, support, "Verarbeitet").await);
    let expected: BTreeSet<String> = (0..200)
        .map(|i| format!("{tag}.{i}@example.test"))
        .collect();
    assert_eq!(processed.into_iter().collect::<BTreeSet<_>>(), expected);

    let (status, body) = http_get(&metrics, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("poststelle_messages_fetched_total{mailbox=\"support\"} 200"),
        "{body}"
    );
    assert!(
        body.contains("poststelle_outbox_mails_total{result=\"sent\"} 400"),
        "{body}"
    );
    assert!(body.contains("poststelle_outbox_uncertain 0"), "{body}");
    assert_eq!(http_get(&metrics, "/healthz").await.0, 200);

    daemon.stop_ok();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_end_to_end_200_mails() {
    end_to_end(false, "d01", "d02", "d03").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_end_to_end_200_mails_with_test_ca() {
    end_to_end(true, "d04", "d05", "d06").await;
}

// ---------------------------------------------------------------------------------------------
// Faults

/// Dovecot stopped and started again in the middle of a run: the daemon reconnects and files
/// every message exactly once. Uses the second Dovecot, which no other test touches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restart_mid_run_loses_nothing() {
    let imap = env("POSTSTELLE_TEST_IMAP_FAULTS");
    let conf = env("POSTSTELLE_TEST_DOVECOT_FAULTS_CONF");
    let (user, tag) = ("d10", unique());
    reset(&imap, user).await;
    // Moves of 15 over a second connection: committed messages wait unmoved while Dovecot
    // restarts.
    let cfg = one_mailbox(
        "faults",
        &imap,
        user,
        "batch_size = 5\nmove_batch_size = 15",
    );
    let mails = requests(150, "d11", &tag);
    append_all(&imap, user, "INBOX", &mails[..100]).await;
    let mut daemon = Daemon::start(&cfg, "run");
    let store = sqlite_of(&cfg).await;
    until(Duration::from_secs(30), "some mail filed", || async {
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await >= 10
    })
    .await;
    // Dovecot's stop leaves running sessions alive; a real restart (or crash) does not.
    let kicked = Command::new("doveadm")
        .args(["-c", &conf, "kick", &format!("{user}@example.test")])
        .stdout(Stdio::null())
        .status()
        .expect("doveadm kick");
    assert!(kicked.success());
    let stopped = Command::new("doveadm")
        .args(["-c", &conf, "stop"])
        .status()
        .expect("doveadm stop");
    assert!(stopped.success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Detached from the test's output, which Dovecot would otherwise hold open.
    let started = Command::new("dovecot")
        .args(["-c", &conf])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("dovecot start");
    assert!(started.success());
    until(Duration::from_secs(10), "Dovecot back", || async {
        TcpStream::connect(&imap).await.is_ok()
    })
    .await;
    append_all(&imap, user, "INBOX", &mails[100..]).await;
    until(Duration::from_secs(90), "150 in Verarbeitet", || async {
        count(&imap, user, "Verarbeitet").await == 150
    })
    .await;
    assert_eq!(count(&imap, user, "INBOX").await, 0);
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 150);
    let ids = message_ids(&messages(&imap, user, "Verarbeitet").await);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 150, "each once");
    assert!(
        daemon.log().contains("mailbox session failed"),
        "the restart was noticed:\n{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("moving over a second connection"),
        "{}",
        daemon.log()
    );
    daemon.stop_ok();
    store.close().await;
}

/// SIGKILL in the middle of a batch, then a restart: every message exactly once in the store
/// and in the processed folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_files_each_once() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d12", unique());
    reset(&imap, user).await;
    let cfg = one_mailbox("kill", &imap, user, "batch_size = 20\nmove_batch_size = 50");
    append_all(&imap, user, "INBOX", &requests(300, "d13", &tag)).await;
    let mut daemon = Daemon::start(&cfg, "first");
    let store = sqlite_of(&cfg).await;
    until(Duration::from_secs(30), "a few batches filed", || async {
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await >= 50
    })
    .await;
    daemon.kill9();
    let filed_at_kill = scalar(&store, "SELECT COUNT(*) FROM raw_messages").await;
    assert!(
        filed_at_kill < 300,
        "killed before the end ({filed_at_kill})"
    );

    let mut again = Daemon::start(&cfg, "second");
    until(Duration::from_secs(60), "all 300 processed", || async {
        count(&imap, user, "Verarbeitet").await >= 300 && count(&imap, user, "INBOX").await == 0
    })
    .await;
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await,
        300
    );
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 300);
    let ids = message_ids(&messages(&imap, user, "Verarbeitet").await);
    assert_eq!(ids.len(), 300, "each message once in the processed folder");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 300);
    again.stop_ok();
    store.close().await;
}

/// A UIDVALIDITY change makes every UID new; what was filed before is recognised and not
/// filed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_files_nothing_twice() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let conf = env("POSTSTELLE_TEST_DOVECOT_CONF");
    let (user, tag) = ("d14", unique());
    reset(&imap, user).await;
    // "flag" leaves the mail in place, so the resync sees all of it again; batches of 5
    // flagged 5 at a time over a second connection, beside the fetches.
    let cfg = one_mailbox(
        "uv",
        &imap,
        user,
        "after = \"flag\"\nbatch_size = 5\nmove_batch_size = 5",
    );
    let mails = requests(25, "d15", &tag);
    append_all(&imap, user, "INBOX", &mails[..20]).await;
    let mut daemon = Daemon::start(&cfg, "first");
    let store = sqlite_of(&cfg).await;
    until(Duration::from_secs(30), "20 filed", || async {
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await == 20
    })
    .await;
    daemon.stop_ok();
    let status = Command::new("doveadm")
        .args([
            "-c",
            &conf,
            "-f",
            "flow",
            "mailbox",
            "status",
            "uidvalidity",
        ])
        .args(["-u", &format!("{user}@example.test"), "INBOX"])
        .output()
        .expect("doveadm mailbox status");
    let old: u32 = String::from_utf8_lossy(&status.stdout)
        .trim()
        .rsplit('=')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no UIDVALIDITY in {status:?}"));
    let new = (old + 1).to_string();
    let changed = Command::new("doveadm")
        .args(["-c", &conf, "mailbox", "update", "--uid-validity", &new])
        .args(["-u", &format!("{user}@example.test"), "INBOX"])
        .status()
        .expect("doveadm");
    assert!(changed.success());
    append_all(&imap, user, "INBOX", &mails[20..]).await;

    let mut again = Daemon::start(&cfg, "second");
    until(Duration::from_secs(30), "the 5 new ones filed", || async {
        scalar(&store, "SELECT COUNT(*) FROM tickets").await == 25
    })
    .await;
    // Give the resync time to go through all 25 (it files the old 20 as duplicates).
    until(Duration::from_secs(30), "resync done", || async {
        again.log().matches("outcome=\"duplicate\"").count() >= 20
    })
    .await;
    assert!(
        again.log().contains("UIDVALIDITY changed"),
        "{}",
        again.log()
    );
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 25);
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await,
        25
    );
    assert_eq!(
        count(&imap, user, "INBOX").await,
        25,
        "flag mode leaves mail in place"
    );
    again.stop_ok();
    store.close().await;
}

/// A message that cannot be parsed goes to the quarantine folder; the next one goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_mail_goes_to_the_quarantine_folder() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d16", unique());
    reset(&imap, user).await;
    let cfg = one_mailbox("q", &imap, user, "");
    let mut batch = vec![b"this is no mail at all, just a line of text\r\n".to_vec()];
    batch.extend(requests(1, "d17", &tag));
    append_all(&imap, user, "INBOX", &batch).await;
    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(30), "both moved", || async {
        count(&imap, user, "Quarantaene").await == 1 && count(&imap, user, "Verarbeitet").await == 1
    })
    .await;
    let quarantined = messages(&imap, user, "Quarantaene").await;
    assert!(quarantined[0].starts_with(b"this is no mail"));
    let store = sqlite_of(&cfg).await;
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM raw_messages WHERE outcome = 'quarantined'"
        )
        .await,
        1
    );
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 1);
    daemon.stop_ok();
    store.close().await;
}

/// With IDLE a mail is filed as it arrives, not at the next poll (set to five minutes here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_files_a_new_mail_within_two_seconds() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d18", unique());
    reset(&imap, user).await;
    let cfg = one_mailbox("idle", &imap, user, "poll_interval_seconds = 300");
    let mails = requests(2, "d19", &tag);
    append_all(&imap, user, "INBOX", &mails[..1]).await;
    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(30), "the first filed", || async {
        count(&imap, user, "Verarbeitet").await == 1
    })
    .await;
    // Now it idles.
    tokio::time::sleep(Duration::from_secs(1)).await;
    append_all(&imap, user, "INBOX", &mails[1..]).await;
    let appended = Instant::now();
    until(Duration::from_secs(10), "the second filed", || async {
        count(&imap, user, "Verarbeitet").await == 2
    })
    .await;
    let took = appended.elapsed();
    assert!(took < Duration::from_secs(2), "filed after {took:?}");
    daemon.stop_ok();
}

/// STARTTLS on the plain port, the server checked against the test CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_custom_ca() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d24", unique());
    reset(&imap, user).await;
    let mailbox = format!(
        "[[mailbox]]\nname = \"st\"\nkind = \"imap\"\nhost = \"localhost\"\nport = {}\n\
         tls = \"starttls\"\nca_file = {:?}\nusername = \"{user}@example.test\"\n\
         password_env = \"POSTSTELLE_TEST_IMAP_PASSWORD\"\n",
        port_of(&imap),
        env("POSTSTELLE_TEST_CA")
    );
    let cfg = TempConfig::new(&config_text(&mailbox, ""), &[]);
    append_all(&imap, user, "INBOX", &requests(3, "d25", &tag)).await;
    let mut daemon =
        Daemon::start_with(&cfg, "run", &[("POSTSTELLE_TEST_IMAP_PASSWORD", "secret")]);
    until(Duration::from_secs(30), "3 filed over STARTTLS", || async {
        count(&imap, user, "Verarbeitet").await == 3
    })
    .await;
    daemon.stop_ok();
}

/// `first_run = "new"`: what the mailbox held before the first connection stays untouched;
/// only what arrives later is filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_new_files_only_what_arrives_later() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d26", unique());
    reset(&imap, user).await;
    let cfg = one_mailbox("fr", &imap, user, "first_run = \"new\"");
    let mails = requests(4, "d27", &tag);
    append_all(&imap, user, "INBOX", &mails[..3]).await;
    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(30), "first connection made", || async {
        daemon.log().contains("mailbox selected")
    })
    .await;
    append_all(&imap, user, "INBOX", &mails[3..]).await;
    until(Duration::from_secs(30), "the new one filed", || async {
        count(&imap, user, "Verarbeitet").await == 1
    })
    .await;
    let store = sqlite_of(&cfg).await;
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(count(&imap, user, "INBOX").await, 3, "the old mail stays");
    let filed = message_ids(&messages(&imap, user, "Verarbeitet").await);
    assert_eq!(filed, vec![format!("{tag}.3@example.test")]);
    daemon.stop_ok();
    store.close().await;
}

/// A mailbox that cannot be reached makes /healthz fail once its limit has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_when_a_mailbox_is_not_polled() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let dead = format!("127.0.0.1:{}", free_port());
    let text = config_text(
        &imap_mailbox("dead", &dead, "d20", "INBOX", "max_silence_seconds = 1"),
        "",
    )
    .replace(
        "# metrics_listen = \"127.0.0.1:9187\"",
        &format!("metrics_listen = \"{metrics}\""),
    );
    let cfg = TempConfig::new(&text, &[]);
    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(10), "/healthz fails", || async {
        TcpStream::connect(&metrics).await.is_ok() && http_get(&metrics, "/healthz").await.0 == 503
    })
    .await;
    let (_, body) = http_get(&metrics, "/healthz").await;
    assert!(body.contains("mailbox dead: not polled"), "{body}");
    let (_, m) = http_get(&metrics, "/metrics").await;
    assert!(
        m.contains("poststelle_mailbox_reconnects_total{mailbox=\"dead\"}"),
        "{m}"
    );
    daemon.stop_ok();
}

/// SQLite is single-instance: a second `run` on the same database refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_sqlite_refuses_to_start() {
    let cfg = TempConfig::new(&config_text("", ""), &[]);
    let mut first = Daemon::start(&cfg, "first");
    let store = sqlite_of(&cfg).await;
    until(Duration::from_secs(10), "first running", || async {
        first.log().contains("poststelle running")
    })
    .await;
    let out = Command::new(env!("CARGO_BIN_EXE_poststelle"))
        .arg("--config")
        .arg(cfg.path())
        .arg("run")
        .output()
        .expect("second run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    first.stop_ok();
    store.close().await;
}

/// The embedded default: a Maildir in the data directory, SQLite, mail written to files. A
/// message dropped into new/ becomes a ticket and an acknowledgement file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_files_a_dropped_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let log = dir.path().join("run.log");
    let mut child = poststelle()
        .arg("--data-dir")
        .arg(&data)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run");
    let new = data.join("inbox/new");
    until(Duration::from_secs(10), "inbox/new created", || {
        let ok = new.is_dir();
        async move { ok }
    })
    .await;
    let samples = fresh_samples();
    std::fs::copy(samples.path().join("01-stoerung.eml"), new.join("1.eml")).expect("drop");
    let cur = data.join("inbox/cur/1.eml:2,S");
    until(Duration::from_secs(15), "filed into cur/", || {
        let ok = cur.exists();
        async move { ok }
    })
    .await;
    let sent = data.join("sent");
    until(Duration::from_secs(15), "acknowledgement written", || {
        let n = std::fs::read_dir(&sent).map(|d| d.count()).unwrap_or(0);
        async move { n >= 2 }
    })
    .await;
    let acks: Vec<String> = std::fs::read_dir(&sent)
        .expect("sent")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(
        acks.iter()
            .any(|a| a.contains("Ticket#") && a.contains("Auto-Submitted: auto-replied")),
        "{acks:?}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------------
// Idle

/// An idle daemon on SQLite writes nothing: the lock file proves it is the only instance, so
/// there are no leases to renew. With `lease_seconds = 3` a renewal would fall every second;
/// over four seconds the WAL (and so the database) stays exactly as it was, and the lease
/// table stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_on_sqlite_writes_nothing() {
    let maildir = "[[mailbox]]\nname = \"eingang\"\nkind = \"maildir\"\npath = \"inbox\"\n\
                   poll_interval_seconds = 1\n";
    let text = config_text(maildir, "").replace("lease_seconds = 30", "lease_seconds = 3");
    assert!(text.contains("lease_seconds = 3\n"), "{text}");
    let cfg = TempConfig::new(&text, &[]);
    let mut daemon = Daemon::start(&cfg, "idle");
    until(Duration::from_secs(10), "watching the Maildir", || {
        let ok = daemon.log().contains("watching Maildir");
        async move { ok }
    })
    .await;
    // The first rounds of the sender and the escalation loop, which only read.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let wal = cfg.dir.path().join("data/poststelle.sqlite-wal");
    let look = || {
        let m = std::fs::metadata(&wal).expect("the WAL file");
        (m.len(), m.modified().expect("mtime"))
    };
    let before = look();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = look();
    assert_eq!(
        before,
        after,
        "the WAL grew by {} bytes while idle\n{}",
        after.0 as i64 - before.0 as i64,
        daemon.log()
    );
    let store = sqlite_of(&cfg).await;
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM leases").await, 0);
    store.close().await;
    daemon.stop_ok();
}

// ---------------------------------------------------------------------------------------------
// Scale-out

/// Two instances on one PostgreSQL and one Dovecot with four mailboxes and 1,000 mails: every
/// mail filed exactly once; one instance killed, the other takes its mailboxes over within the
/// lease time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_four_mailboxes() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d21", unique());
    reset(&imap, user).await;
    let db = TestDb::postgres().await;
    let folders = ["box1", "box2", "box3", "box4"];
    let mailboxes: String = folders
        .iter()
        .map(|f| {
            imap_mailbox(
                f,
                &imap,
                user,
                f,
                "batch_size = 25\npoll_interval_seconds = 1",
            )
        })
        .collect();
    let lease: u64 = 6;
    let url = db.url();
    let text = |instance: u8| {
        config_text(&mailboxes, "")
            .replacen(
                "data_dir = \"data\"\n",
                &format!("data_dir = \"data\"\ndatabase_url = {url:?}\n"),
                1,
            )
            .replace("instance_id = 10", &format!("instance_id = {instance}"))
            .replace("lease_seconds = 30", &format!("lease_seconds = {lease}"))
    };
    let cfg_a = TempConfig::new(&text(11), &[]);
    let cfg_b = TempConfig::new(&text(12), &[]);
    let mails = requests(1000, "d22", &tag);
    for f in folders {
        append_all(&imap, user, f, &[]).await;
    }
    let mut a = Daemon::start(&cfg_a, "a");
    let b = Daemon::start(&cfg_b, "b");
    let store = &db.store;
    // Whoever starts first takes everything; at its next renewal it hands half over.
    until(
        Duration::from_secs(lease * 3),
        "two mailboxes each",
        || async {
            let per_holder: Vec<i64> = sqlx::query_scalar(
                "SELECT COUNT(*) FROM leases WHERE name LIKE 'mailbox:%' AND expires_at > $1 \
             GROUP BY holder",
            )
            .bind(jiff::Timestamp::now().as_microsecond())
            .fetch_all(store.pool())
            .await
            .expect("leases");
            per_holder == vec![2, 2]
        },
    )
    .await;
    for (i, f) in folders.iter().enumerate() {
        append_all(&imap, user, f, &mails[i * 250..(i + 1) * 250]).await;
    }
    until(Duration::from_secs(30), "both at work", || async {
        scalar(store, "SELECT COUNT(*) FROM raw_messages").await >= 100
    })
    .await;
    a.kill9();
    let killed_at = Instant::now();
    until(
        Duration::from_secs(lease * 3),
        "b holds all four",
        || async {
            let holders: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, holder FROM leases WHERE name LIKE 'mailbox:%' AND expires_at > $1",
            )
            .bind(jiff::Timestamp::now().as_microsecond())
            .fetch_all(store.pool())
            .await
            .expect("leases");
            let distinct: BTreeSet<&str> = holders.iter().map(|(_, h)| h.as_str()).collect();
            holders.len() == 4 && distinct.len() == 1
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    assert!(
        takeover <= Duration::from_secs(lease + 3),
        "taken over after {takeover:?} (lease {lease} s)"
    );
    until(Duration::from_secs(120), "all 1,000 filed", || async {
        let mut n = 0;
        for f in folders {
            n += count(&imap, user, f).await;
        }
        n == 0 && count(&imap, user, "Verarbeitet").await >= 1000
    })
    .await;
    assert_eq!(
        scalar(store, "SELECT COUNT(*) FROM raw_messages").await,
        1000
    );
    assert_eq!(scalar(store, "SELECT COUNT(*) FROM tickets").await, 1000);
    let ids = message_ids(&messages(&imap, user, "Verarbeitet").await);
    assert_eq!(ids.len(), 1000, "each mail once in the processed folder");
    let per_instance: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT substr(number, 9, 2), COUNT(*) FROM tickets GROUP BY substr(number, 9, 2)",
    )
    .fetch_all(store.pool())
    .await
    .expect("per instance")
    .into_iter()
    .collect();
    assert!(
        per_instance.contains_key("11") && per_instance.contains_key("12"),
        "both filed: {per_instance:?}"
    );
    drop(b);
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------
// systemd

/// The shipped unit passes `systemd-analyze verify` (with ExecStart pointing at this build).
#[test]
fn systemd_unit_verifies_clean() {
    let dir = tempfile::tempdir().expect("tmp");
    let unit = std::fs::read_to_string(repo().join("systemd/poststelle.service"))
        .expect("systemd/poststelle.service")
        .replace(
            "/usr/local/bin/poststelle",
            env!("CARGO_BIN_EXE_poststelle"),
        );
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=poststelle",
        "ConfigurationDirectory=poststelle",
        "LoadCredential=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    let path = dir.path().join("poststelle.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed for this test");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Under systemd: READY=1 after start-up, WATCHDOG=1 from the main loop, STOPPING=1 on SIGTERM.
#[test]
fn tells_systemd_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let cfg = TempConfig::new(&config_text("", ""), &[]);
    let socket_path = cfg.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let socket_env = socket_path.to_string_lossy().into_owned();
    let mut daemon = Daemon::start_with(
        &cfg,
        "run",
        &[
            ("NOTIFY_SOCKET", socket_env.as_str()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    // WATCHDOG_PID unset: the watchdog is meant for whoever reads it.
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !seen.iter().any(|m: &String| m.contains("WATCHDOG=1")) {
        let n = socket.recv(&mut buf).expect("a notification within 10 s");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(seen[0].contains("READY=1"), "{seen:?}");
    daemon.stop_ok();
    let mut rest = Vec::new();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    while let Ok(n) = socket.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(rest.iter().any(|m| m.contains("STOPPING=1")), "{rest:?}");
}
