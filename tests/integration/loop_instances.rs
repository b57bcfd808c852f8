//! Two poststelle instances whose support addresses write to each other (#15): two daemons,
//! each with its own store and mailbox, sending through the real OpenSMTPD into the other's
//! Dovecot mailbox. Whatever one side answers, the other must not answer back, and the loop
//! brake (`ingest.auto_reply_limit_per_hour`) caps what a side sends to the other's address.
//! The exchange must stop by itself: nobody ends it but the instances.
//!
//! What ends it: an instance's mail says it is automatic (`Auto-Submitted: auto-replied`, its
//! loop header), and automatic mail never gets an automatic reply, so the first answer is the
//! last. The loop brake bounds the rest: mail from the other's address that looks written by a
//! person (staff, a script) is acknowledged at most `auto_reply_limit_per_hour` times an hour.
//!
//! Users: d07 is instance A's support address, d08 instance B's, d09 takes both instances' staff
//! copies (no daemon reads it, so they cannot feed the exchange).
use std::time::{Duration, Instant};

use crate::support::config::{TempConfig, config_text, imap_mailbox};
use crate::support::daemon::{Daemon, env, port_of, sqlite_of, unique, until};
use crate::support::imap::{append_all, count, messages, reset};
use crate::support::mail::requests;
use poststelle::store::Store;

/// The loop brake of both instances: automatic replies to one address per hour.
const LIMIT: u32 = 3;
/// Person-written requests from the other side's support address that each instance finds
/// when it starts: more than the brake lets through, so the brake has to hold back the rest.
const SEEDS: usize = 6;
/// The folders a daemon leaves mail in.
const FOLDERS: [&str; 3] = ["INBOX", "Verarbeitet", "Quarantaene"];
/// How long nothing may change in either mailbox or outbox before the exchange counts as over.
const QUIET: Duration = Duration::from_secs(3);
/// Longer than this and the exchange did not stop by itself.
const DEADLINE: Duration = Duration::from_secs(45);

/// One instance: its support user (mailbox and sender address), its loop header and
/// configuration.
struct Instance {
    user: &'static str,
    loop_header: String,
    cfg: TempConfig,
}

impl Instance {
    /// An instance reading `user`'s INBOX and sending as `user` over the test OpenSMTPD, its
    /// staff copies to `staff`. `own` replaces settings of the shipped configuration, so that
    /// the two instances are as different as two organisations' would be.
    fn new(user: &'static str, staff: &str, own: &[(&str, &str)]) -> Instance {
        let imap = env("POSTSTELLE_TEST_IMAP");
        let smtp = env("POSTSTELLE_TEST_SMTP");
        let mut text = config_text(
            &imap_mailbox(user, &imap, user, "INBOX", ""),
            &format!(
                "[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
                port_of(&smtp)
            ),
        )
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace(
            "from = \"servicedesk@kommunal-it.example\"",
            &format!("from = \"{user}@example.test\""),
        )
        .replace(
            "staff = \"servicedesk@kommunal-it.example\"",
            &format!("staff = \"{staff}@example.test\""),
        )
        // config_text lifts the brake for daemon tests that send hundreds of mails to one
        // requester; here it is what is tested.
        .replace(
            "auto_reply_limit_per_hour = 100000",
            &format!("auto_reply_limit_per_hour = {LIMIT}"),
        );
        for (from, to) in own {
            assert!(text.contains(from), "the shipped configuration has {from}");
            text = text.replace(from, to);
        }
        let cfg = TempConfig::new(&text, &[]);
        let loaded = cfg.load();
        assert_eq!(loaded.settings.ingest.auto_reply_limit_per_hour, LIMIT);
        Instance {
            user,
            loop_header: loaded.settings.loop_header.clone(),
            cfg,
        }
    }

    fn address(&self) -> String {
        format!("{}@example.test", self.user)
    }
}

/// Everything in a user's folders, parsed.
async fn mailbox(imap: &str, user: &str) -> Vec<poststelle::InboundMessage> {
    let mut out = Vec::new();
    for folder in FOLDERS {
        for raw in messages(imap, user, folder).await {
            out.push(poststelle::InboundMessage::parse(&raw).expect("delivered mail parses"));
        }
    }
    out
}

/// A count from a store, for one address.
async fn rows(store: &Store, sql: &'static str, address: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .bind(address.to_string())
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

/// What changes while the exchange goes on, per instance (A, B).
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    /// Mail not yet filed.
    inbox: [u32; 2],
    /// Mail filed: the processed and quarantine folders.
    filed: [u32; 2],
    /// Rows in the outbox, and those still to be sent.
    outbox: [i64; 2],
    pending: [i64; 2],
    /// Mail the instance sent to the other's support address.
    sent_to_other: [i64; 2],
}

impl Snapshot {
    async fn take(imap: &str, sides: [&Instance; 2], stores: &[Store; 2]) -> Snapshot {
        let mut s = Snapshot {
            inbox: [0; 2],
            filed: [0; 2],
            outbox: [0; 2],
            pending: [0; 2],
            sent_to_other: [0; 2],
        };
        for i in 0..2 {
            s.inbox[i] = count(imap, sides[i].user, "INBOX").await;
            s.filed[i] = count(imap, sides[i].user, "Verarbeitet").await
                + count(imap, sides[i].user, "Quarantaene").await;
            (s.outbox[i], s.pending[i]) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state IN ('scheduled', \
                 'temporary_failure') THEN 1 ELSE 0 END), 0) FROM outbox",
            )
            .fetch_one(stores[i].pool())
            .await
            .expect("outbox");
            s.sent_to_other[i] = rows(
                &stores[i],
                "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND state = 'sent'",
                &sides[1 - i].address(),
            )
            .await;
        }
        s
    }

    /// Everything sent has arrived and been filed, and nothing waits to be sent: the
    /// exchange is over unless something changes still.
    fn settled(&self) -> bool {
        (0..2).all(|i| {
            self.inbox[i] == 0
                && self.pending[i] == 0
                && i64::from(self.filed[i]) == SEEDS as i64 + self.sent_to_other[1 - i]
        })
    }
}

/// A requester address that is the other instance's support address: A acknowledges mail
/// from B's address to B, B gets A's acknowledgement as new mail from A's address, and the
/// other way round. Each instance finds more person-written mail from the other's address than
/// its loop brake lets through (as when staff or a misconfigured script at one side writes
/// from the support address). The two daemons run until neither mailbox nor outbox changes
/// any more: the exchange has to stop by itself, each side having sent the other at most the
/// brake's limit of automatic replies — counted in the mailboxes the mail arrived in and in
/// the outbox of its sender.
///
/// The instances differ as two organisations' would: instance ids, and B has a loop header
/// and ticket tag of its own, so that neither recognises the other's mail as its own; what
/// stops the exchange is what stops any other ticket system's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_writing_to_each_other_stop_within_the_loop_brake() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let tag = unique();
    for u in ["d07", "d08", "d09"] {
        reset(&imap, u).await;
    }
    let a = Instance::new("d07", "d09", &[("instance_id = 10", "instance_id = 11")]);
    let b = Instance::new(
        "d08",
        "d09",
        &[
            ("instance_id = 10", "instance_id = 12"),
            (
                "loop_header = \"X-Poststelle-Loop\"",
                "loop_header = \"X-Landesportal-Loop\"",
            ),
            ("ticket_tag = \"Ticket\"", "ticket_tag = \"Vorgang\""),
        ],
    );
    // Mail from B's support address in A's INBOX, and from A's in B's.
    let seeds_to_a = format!("{tag}-to-a");
    let seeds_to_b = format!("{tag}-to-b");
    append_all(
        &imap,
        a.user,
        "INBOX",
        &requests(SEEDS, b.user, &seeds_to_a),
    )
    .await;
    append_all(
        &imap,
        b.user,
        "INBOX",
        &requests(SEEDS, a.user, &seeds_to_b),
    )
    .await;

    let daemons = [Daemon::start(&a.cfg, "a"), Daemon::start(&b.cfg, "b")];
    let logs = || {
        format!(
            "--- instance A ---\n{}\n--- instance B ---\n{}",
            daemons[0].log(),
            daemons[1].log()
        )
    };
    // The daemons create their stores; the test opens them once both are at work.
    until(Duration::from_secs(30), "both daemons at work", || async {
        daemons.iter().all(|d| d.log().contains("mailbox selected"))
    })
    .await;
    let stores = [sqlite_of(&a.cfg).await, sqlite_of(&b.cfg).await];
    let sides = [&a, &b];

    // Until quiet: everything sent arrived and was filed, nothing waits in an outbox, and
    // nothing changed for QUIET.
    let start = Instant::now();
    let mut last = Snapshot::take(&imap, sides, &stores).await;
    let mut since = Instant::now();
    while !(last.settled() && since.elapsed() >= QUIET) {
        assert!(
            start.elapsed() < DEADLINE,
            "the exchange did not stop by itself within {DEADLINE:?}: {last:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = Snapshot::take(&imap, sides, &stores).await;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    let took = start.elapsed();

    // Each direction: the seeds from the sender's address are in the recipient's mailbox.
    for (from, to, seeds_from, store, other_store) in [
        (&a, &b, &seeds_to_b, &stores[0], &stores[1]),
        (&b, &a, &seeds_to_a, &stores[1], &stores[0]),
    ] {
        let (sender, recipient) = (from.address(), to.address());
        let arrived = mailbox(&imap, to.user).await;
        let is_seed = |m: &poststelle::InboundMessage, seeds: &str| {
            m.message_id
                .as_deref()
                .is_some_and(|id| id.starts_with(&format!("{seeds}.")))
        };
        // What the sender's instance wrote to the other's address: in that mailbox, from the
        // sender's address, and not one of the seeds written for the test.
        let answers: Vec<&poststelle::InboundMessage> = arrived
            .iter()
            .filter(|m| m.from.as_ref().is_some_and(|f| f.address == sender))
            .filter(|m| !is_seed(m, seeds_from))
            .collect();
        assert!(
            answers.len() <= LIMIT as usize,
            "{sender} sent {} mails to {recipient}, more than the loop brake's {LIMIT}: {:?}\n{}",
            answers.len(),
            answers.iter().map(|m| &m.subject).collect::<Vec<_>>(),
            logs()
        );
        for m in &answers {
            assert!(
                m.header(&from.loop_header.to_ascii_lowercase()).is_some()
                    && m.header("auto-submitted").map(str::trim) == Some("auto-replied"),
                "{sender}'s mail to {recipient} is an automatic reply of its instance: {:?}",
                m.subject
            );
        }
        assert_eq!(
            arrived.iter().filter(|m| is_seed(m, seeds_from)).count(),
            SEEDS,
            "the seeds to {recipient} are all in its folders"
        );
        assert!(
            arrived
                .iter()
                .filter(|m| !is_seed(m, seeds_from))
                .all(|m| m.from.as_ref().is_some_and(|f| f.address == sender)),
            "nothing but the seeds and {sender}'s answers reached {recipient}"
        );

        // The sender's outbox says the same: what was sent to the other's address is what
        // arrived there, within the limit; every acknowledgement due beyond it was held back.
        let sent = rows(
            store,
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND state = 'sent'",
            &recipient,
        )
        .await;
        let auto_sent = rows(
            store,
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND state = 'sent' \
             AND kind IN ('acknowledgement', 'auto_reply')",
            &recipient,
        )
        .await;
        let suppressed = rows(
            store,
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND state = 'suppressed'",
            &recipient,
        )
        .await;
        let unsent = rows(
            store,
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? \
             AND state NOT IN ('sent', 'suppressed')",
            &recipient,
        )
        .await;
        assert_eq!(
            sent,
            answers.len() as i64,
            "{sender}'s outbox: as many sent to {recipient} as arrived there"
        );
        assert_eq!(
            sent, auto_sent,
            "only automatic replies went to {recipient}"
        );
        assert!(auto_sent <= i64::from(LIMIT));
        assert_eq!(unsent, 0, "nothing to {recipient} waits or failed");
        // Each seed is a person's request: it opens a ticket and is due an acknowledgement,
        // which went out or was held back by the brake — and with more seeds than the limit,
        // some were.
        let tickets = rows(
            store,
            "SELECT COUNT(*) FROM tickets WHERE requester = ?",
            &recipient,
        )
        .await;
        assert!(
            tickets >= SEEDS as i64,
            "{sender}'s instance opened a ticket per seed from {recipient}: {tickets}"
        );
        assert_eq!(
            auto_sent + suppressed,
            SEEDS as i64,
            "every acknowledgement due to {recipient} was sent or held back by the brake"
        );
        assert!(
            suppressed >= 1,
            "{SEEDS} requests from {recipient} and a limit of {LIMIT}: the brake held some back"
        );
        // The answers got no answer: the other instance wrote nothing in reply to them, sent
        // or held back.
        for m in &answers {
            let id = m.message_id.as_deref().expect("our mail has a Message-ID");
            assert_eq!(
                rows(
                    other_store,
                    "SELECT COUNT(*) FROM outbox WHERE in_reply_to = ?",
                    id
                )
                .await,
                0,
                "{recipient}'s instance answered {sender}'s automatic reply {:?}",
                m.subject
            );
        }
    }

    for mut d in daemons {
        d.stop_ok();
    }
    for s in stores {
        s.close().await;
    }
    assert!(took < DEADLINE, "stopped after {took:?}");
}
