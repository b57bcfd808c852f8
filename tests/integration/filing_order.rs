//! The order of filing is part of correctness: a mailbox is a conversation log. The daemon
//! overlaps batches (parses the next while the last commits), and must still file exactly what
//! `poststelle ingest` files from the same mails one after the other — the same tickets, the
//! same articles on them, the same outgoing mail — also when it is killed and restarted
//! midway. And a restart after SIGKILL takes over at once what was its own: the mailbox
//! lease and the outgoing mail its dead sender had claimed.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use poststelle::store::Store;

use crate::support::bin::{poststelle, stdout_of};
use crate::support::config::{TempConfig, config_text, imap_mailbox};
use crate::support::daemon::{Daemon, env, sqlite_of, unique, until};
use crate::support::db::scalar;
use crate::support::imap::{append_all, count, messages, reset};
use crate::support::mail::{mail, message_ids};

/// Requests, replies that reference them by In-Reply-To/References at distances that cross
/// the batch boundaries, second replies that reference the first, out-of-office replies and
/// re-deliveries of the same bytes, in the order a mailbox would hold them.
fn conversations(requests: usize, tag: &str) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(4711);
    let now = jiff::Timestamp::now();
    // (position, tie-break, mail); a re-delivery (tie-break 4) repeats the request's bytes.
    let mut log: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let id = |kind: &str, i: usize| format!("{kind}.{i}.{tag}@example.test");
    for i in 0..requests {
        let from = format!("From: Bürger {i} <b{i}@example.test>");
        let subject = format!("Drucker {i} im Bürgerbüro streikt");
        let request = mail(
            &[
                &from,
                &format!("Subject: {subject}"),
                &format!("Message-ID: <{}>", id("req", i)),
            ],
            "Guten Tag,\n\nder Drucker druckt nicht mehr.\n\nGrüße",
        );
        log.push((i, 0, request.clone()));
        // The reply lands 1 to 45 positions later: often in a later batch of 20.
        let d = 1 + rng.usize(..45);
        log.push((
            i + d,
            1,
            mail(
                &[
                    &from,
                    &format!("Subject: Re: {subject}"),
                    &format!("Message-ID: <{}>", id("re", i)),
                    &format!("In-Reply-To: <{}>", id("req", i)),
                    &format!("References: <{}>", id("req", i)),
                ],
                "Er druckt immer noch nicht.",
            ),
        ));
        if i % 3 == 0 {
            // A second reply, to the first one only.
            log.push((
                i + d + 1 + rng.usize(..30),
                2,
                mail(
                    &[
                        &from,
                        &format!("Subject: Re: Re: {subject}"),
                        &format!("Message-ID: <{}>", id("re2", i)),
                        &format!("In-Reply-To: <{}>", id("re", i)),
                        &format!("References: <{}> <{}>", id("req", i), id("re", i)),
                    ],
                    "Jetzt geht gar nichts mehr.",
                ),
            ));
        }
        if i % 7 == 0 {
            log.push((
                i + rng.usize(..40),
                3,
                mail(
                    &[
                        &format!("From: Abwesend {i} <a{i}@example.test>"),
                        &format!("Subject: Automatische Antwort: {subject}"),
                        &format!("Message-ID: <{}>", id("ooo", i)),
                        "Auto-Submitted: auto-replied",
                        &format!("In-Reply-To: <{}>", id("req", i)),
                    ],
                    "Ich bin bis Montag nicht im Haus.",
                ),
            ));
        }
        if i % 10 == 0 {
            // Delivered twice: the same bytes again.
            log.push((i + 1 + rng.usize(..40), 4, request));
        }
    }
    log.sort_by_key(|(at, tie, _)| (*at, *tie));
    let total = log.len();
    let mut dated: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    log.into_iter()
        .enumerate()
        .map(|(n, (_, tie, raw))| {
            if tie == 4 {
                return dated[&raw].clone();
            }
            // Dated in the order they arrive, within the last hour (acknowledged).
            let date = (now - jiff::SignedDuration::from_secs((total - n) as i64))
                .in_tz("Europe/Berlin")
                .expect("zone");
            let mut out = format!(
                "Date: {}\r\n",
                jiff::fmt::rfc2822::to_string(&date).expect("date")
            )
            .into_bytes();
            out.extend_from_slice(&raw);
            dated.insert(raw, out.clone());
            out
        })
        .collect()
}

/// What [`filed`] reads, column by name; text that is NULL reads as empty.
#[derive(sqlx::FromRow)]
struct RawRow {
    message_id: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    number: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    number: Option<String>,
    queue: Option<String>,
    severity: i64,
    state: Option<String>,
    requester: Option<String>,
    subject: Option<String>,
    linked: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ArticleRow {
    number: Option<String>,
    kind: Option<String>,
    message_id: Option<String>,
    sender: Option<String>,
    subject: Option<String>,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    number: Option<String>,
    kind: Option<String>,
    template: Option<String>,
    recipient: Option<String>,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    refs: Option<String>,
    subject: Option<String>,
    auto_submitted: Option<String>,
    state: Option<String>,
}

/// Every row a query returns, mapped by column name.
async fn rows<T>(store: &Store, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .fetch_all(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Everything filing decided, in the order it was filed, with ticket numbers and our own
/// Message-IDs replaced by their ordinals (they differ between two stores) and delivery
/// states reduced to whether a mail goes out at all.
async fn filed(store: &Store) -> Vec<String> {
    let t = |v: Option<String>| v.unwrap_or_default();
    let numbers: Vec<Option<String>> = sqlx::query_scalar("SELECT number FROM tickets ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("ticket numbers");
    let ids: Vec<Option<String>> = sqlx::query_scalar("SELECT message_id FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("outbox Message-IDs");
    let mut names: Vec<(String, String)> = Vec::new();
    for (n, number) in numbers.into_iter().enumerate() {
        names.push((t(number), format!("T{n}")));
    }
    for (n, id) in ids.into_iter().enumerate() {
        names.push((t(id), format!("O{n}")));
    }
    // Longest first, so that no name is replaced inside a longer one.
    names.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let canon = |s: String| {
        names
            .iter()
            .filter(|(from, _)| !from.is_empty())
            .fold(s, |s, (from, to)| s.replace(from, to))
    };
    let mut out = Vec::new();
    let raws: Vec<RawRow> = rows(
        store,
        "SELECT r.message_id, r.outcome, r.reason, t.number FROM raw_messages r \
         LEFT JOIN tickets t ON t.id = r.ticket_id ORDER BY r.id",
    )
    .await;
    for r in raws {
        let (id, outcome, number, reason) =
            (t(r.message_id), t(r.outcome), t(r.number), t(r.reason));
        out.push(canon(format!("raw {id} {outcome} {number} [{reason}]")));
    }
    let tickets: Vec<TicketRow> = rows(
        store,
        "SELECT t.number, t.queue, t.severity, t.state, t.requester, t.subject, \
         l.number AS linked \
         FROM tickets t LEFT JOIN tickets l ON l.id = t.linked_ticket_id ORDER BY t.id",
    )
    .await;
    for r in tickets {
        out.push(canon(format!(
            "ticket {} {} {} {} {} {:?} linked={}",
            t(r.number),
            t(r.queue),
            r.severity,
            t(r.state),
            t(r.requester),
            t(r.subject),
            t(r.linked)
        )));
    }
    let articles: Vec<ArticleRow> = rows(
        store,
        "SELECT t.number, a.kind, a.message_id, a.sender, a.subject FROM articles a \
         JOIN tickets t ON t.id = a.ticket_id ORDER BY a.id",
    )
    .await;
    for r in articles {
        out.push(canon(format!(
            "article {} {} {} {} {:?}",
            t(r.number),
            t(r.kind),
            t(r.message_id),
            t(r.sender),
            t(r.subject)
        )));
    }
    let outbox: Vec<OutboxRow> = rows(
        store,
        "SELECT t.number, o.kind, o.template, o.recipient, o.message_id, o.in_reply_to, \
         o.refs, o.subject, o.auto_submitted, o.state FROM outbox o \
         LEFT JOIN tickets t ON t.id = o.ticket_id ORDER BY o.id",
    )
    .await;
    for r in outbox {
        let goes_out = if t(r.state) == "suppressed" {
            "suppressed"
        } else {
            "goes out"
        };
        out.push(canon(format!(
            "outbox {} {} {} {} {} irt={} refs={} {:?} {} {goes_out}",
            t(r.number),
            t(r.kind),
            t(r.template),
            t(r.recipient),
            t(r.message_id),
            t(r.in_reply_to),
            t(r.refs),
            t(r.subject),
            t(r.auto_submitted)
        )));
    }
    out
}

/// The simple path: `poststelle ingest` of the mails, one file each, in mailbox order.
async fn ingested(cfg: &TempConfig, mails: &[Vec<u8>]) -> Vec<String> {
    let dir = cfg.dir.path().join("mails");
    std::fs::create_dir_all(&dir).expect("mail dir");
    let mut paths = Vec::new();
    for (i, m) in mails.iter().enumerate() {
        let p = dir.join(format!("{i:05}.eml"));
        std::fs::write(&p, m).expect("write mail");
        paths.push(p);
    }
    let data = cfg.dir.path().join("reference");
    stdout_of(
        poststelle()
            .arg("--config")
            .arg(cfg.path())
            .arg("--data-dir")
            .arg(&data)
            .args(["ingest", "--batch", "1"])
            .args(&paths),
    );
    let store = Store::open(&Store::default_url(&data))
        .await
        .expect("reference store");
    let snapshot = filed(&store).await;
    store.close().await;
    snapshot
}

/// The first difference between two snapshots, for the failure message.
fn first_difference(a: &[String], b: &[String]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    match at {
        Some(i) => format!(
            "line {i}:\n  ingest: {}\n  daemon: {}\n({} and {} lines)",
            a[i],
            b[i],
            a.len(),
            b.len()
        ),
        None => format!("one is longer: {} vs {} lines", a.len(), b.len()),
    }
}

/// Summary figures of a snapshot, so that the test shows it checks something.
fn tally(s: &[String]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for line in s {
        let mut words = line.split(' ');
        let kind = words.next().unwrap_or("");
        let key = match kind {
            "raw" => format!("raw {}", words.nth(1).unwrap_or("")),
            other => other.to_string(),
        };
        *t.entry(key).or_default() += 1;
    }
    t
}

fn daemon_config(user: &str, data: &str) -> TempConfig {
    let text = config_text(
        &imap_mailbox(
            "order",
            &env("POSTSTELLE_TEST_IMAP"),
            user,
            "INBOX",
            "batch_size = 20\nmove_batch_size = 60",
        ),
        "",
    )
    .replacen("data_dir = \"data\"", &format!("data_dir = \"{data}\""), 1);
    TempConfig::new(&text, &[])
}

/// Waits until every mail has left the inbox, then stops the daemon.
async fn drained(daemon: &mut Daemon, user: &str, total: u32) {
    let imap = env("POSTSTELLE_TEST_IMAP");
    until(
        Duration::from_secs(90),
        "every mail filed and moved",
        || async {
            count(&imap, user, "Verarbeitet").await >= total
                && count(&imap, user, "INBOX").await == 0
        },
    )
    .await;
    daemon.stop_ok();
}

/// The daemon, ten times over the same mailbox (batches of 20, reply chains across batches),
/// files exactly what `poststelle ingest` files from the same mails in UID order; and so does
/// a daemon killed at a random point and started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_files_in_mailbox_order_like_ingest() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d30", unique());
    let mails = conversations(160, &tag);
    let total = mails.len() as u32;
    let reference = ingested(&daemon_config(user, "unused"), &mails).await;
    let t = tally(&reference);
    // The mix the test is about: follow-ups, notes or ignored auto-replies, duplicates.
    assert!(t["raw new_ticket"] == 160, "{t:?}");
    assert!(t["raw follow_up"] >= 200, "{t:?}");
    assert!(t.get("outbox").copied().unwrap_or(0) >= 320, "{t:?}");

    let mut rng = fastrand::Rng::with_seed(42);
    for run in 0..10 {
        reset(&imap, user).await;
        append_all(&imap, user, "INBOX", &mails).await;
        let cfg = daemon_config(user, "data");
        let mut daemon = Daemon::start(&cfg, &format!("run{run}"));
        let store = sqlite_of(&cfg).await;
        // The last three runs are killed at a random point and started again.
        let killed = run >= 7;
        if killed {
            let at = 20 + rng.i64(..(i64::from(total) - 60));
            until(
                Duration::from_secs(60),
                "part of the mailbox filed",
                || async { scalar(&store, "SELECT COUNT(*) FROM raw_messages").await >= at },
            )
            .await;
            daemon.kill9();
            daemon = Daemon::start(&cfg, &format!("run{run}-again"));
        }
        drained(&mut daemon, user, total).await;
        let got = filed(&store).await;
        store.close().await;
        assert!(
            got == reference,
            "run {run}{}: the daemon filed differently from ingest, {}\n{}",
            if killed {
                " (killed and restarted)"
            } else {
                ""
            },
            first_difference(&reference, &got),
            daemon.log()
        );
    }
    let ids = message_ids(&messages(&imap, user, "Verarbeitet").await);
    assert_eq!(
        ids.len() as u32,
        total,
        "each mail once in the processed folder"
    );
}

/// Files in `dir` that hold mail (the file transport's), by name.
fn sent_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// SIGKILL while the daemon sends (file transport), then a restart: every outgoing mail
/// exists exactly once in the sent folder, and the claims of the dead sender are released at
/// once rather than after `claim_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_sending_leaves_each_mail_once() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d31", unique());
    reset(&imap, user).await;
    let mails = conversations(150, &tag);
    append_all(&imap, user, "INBOX", &mails).await;
    let cfg = daemon_config(user, "data");
    let sent = cfg.dir.path().join("data/sent");
    let mut daemon = Daemon::start(&cfg, "first");
    let store = sqlite_of(&cfg).await;
    until(Duration::from_secs(60), "sending under way", || async {
        sent_files(&sent).len() >= 60
    })
    .await;
    daemon.kill9();
    let at_kill = sent_files(&sent).len();
    let outgoing = scalar(
        &store,
        "SELECT COUNT(*) FROM outbox WHERE state <> 'suppressed'",
    )
    .await;
    assert!(
        (at_kill as i64) < outgoing,
        "killed before everything was sent ({at_kill} of {outgoing})"
    );

    let started = Instant::now();
    let mut again = Daemon::start(&cfg, "second");
    let imap2 = imap.clone();
    until(
        Duration::from_secs(90),
        "all filed and all sent",
        || async {
            count(&imap2, user, "INBOX").await == 0
                && scalar(
                    &store,
                    "SELECT COUNT(*) FROM outbox WHERE state IN ('scheduled', 'temporary_failure')",
                )
                .await
                    == 0
        },
    )
    .await;
    // The dead sender's claims were released at start-up, not after their 120 s.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "drained in {:?}",
        started.elapsed()
    );
    again.stop_ok();

    let outgoing = scalar(
        &store,
        "SELECT COUNT(*) FROM outbox WHERE state <> 'suppressed'",
    )
    .await;
    let files = sent_files(&sent);
    assert_eq!(
        files.len() as i64,
        outgoing,
        "one file per outgoing mail after the restart"
    );
    let raws: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(sent.join(f)).expect("read sent mail"))
        .collect();
    let ids = message_ids(&raws);
    assert_eq!(ids.len(), files.len(), "every sent file is a whole mail");
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        files.len(),
        "each Message-ID once"
    );
    let stored: BTreeSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT message_id FROM outbox WHERE state <> 'suppressed'",
    )
    .fetch_all(store.pool())
    .await
    .expect("outbox ids")
    .into_iter()
    .collect();
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), stored);
    store.close().await;
}

/// After SIGKILL on SQLite, the restarted daemon takes over its dead predecessor's mailbox at
/// once: a new mail is filed within 2 s, not after `lease_seconds` (30). (PostgreSQL's lease
/// rows of a dead process: store::a_restart_takes_over_what_dead_processes_of_its_own_held.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigkill_files_new_mail_without_waiting_out_the_lease() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d32", unique());
    reset(&imap, user).await;
    let cfg = daemon_config(user, "data");
    append_all(&imap, user, "INBOX", &conversations(1, &tag)[..1]).await;
    let mut daemon = Daemon::start(&cfg, "first");
    let store = sqlite_of(&cfg).await;
    until(Duration::from_secs(30), "the first mail filed", || async {
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await == 1
    })
    .await;
    // On SQLite the lock file, which the kernel releases with the killed process, is what
    // keeps a second daemon out: no lease row is left for the restart to wait for.
    let leases = scalar(&store, "SELECT COUNT(*) FROM leases").await;
    assert_eq!(leases, 0, "no lease rows on SQLite");
    daemon.kill9();

    let second = mail(
        &[
            "From: Max Mustermann <max@example.test>",
            "Subject: Noch eine Frage",
            &format!("Message-ID: <after-kill.{tag}@example.test>"),
        ],
        "Hallo",
    );
    append_all(&imap, user, "INBOX", &[second]).await;
    let started = Instant::now();
    let mut again = Daemon::start(&cfg, "second");
    until(Duration::from_secs(30), "the new mail filed", || async {
        scalar(&store, "SELECT COUNT(*) FROM raw_messages").await == 2
    })
    .await;
    let took = started.elapsed();
    assert!(
        // Far below the 30 s lease it must not wait out, and far above a busy machine's
        // start-up of a debug build (2.8 s seen under load).
        took < Duration::from_secs(10),
        "filed {took:?} after the restart (lease_seconds is 30)\n{}",
        again.log()
    );
    again.stop_ok();
    store.close().await;
}
