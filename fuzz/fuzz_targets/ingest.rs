//! Filing on an in-memory store (`sqlite::memory:`): parse, classify, plan and write one batch
//! of up to four mails (the input split at lines `--next-mail--`), as the daemon files what
//! it fetched, at a fixed instant.
//!
//! Each input is filed in a write transaction of its own, with `Ingestor::file_in` (what
//! `ingest_batch` does between its begin and its commit), and rolled back at the end: the
//! store stays empty for the next input without migrating a new one (that took 98 % of the
//! time, at 1 input per second).
//!
//! Checks (DESIGN.md invariants 1 and 9): filing never panics and never fails on what a mail
//! holds; filing the same batch again, from the same mailbox or from another (same bytes),
//! files every mail as a duplicate and changes nothing in the store (rows per table, mail bytes,
//! quarantine, the tickets' queue, state and subject); filing the mails one by one gives the
//! same outcomes and the same store as the batch.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use poststelle::store::{Store, WriteTx, backup, tickets};
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, PreparedBatch, SourceKey};

mod common;

const SEPARATOR: &[u8] = b"\n--next-mail--\n";

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
});

static STORE: LazyLock<Store> = LazyLock::new(|| {
    RUNTIME
        .block_on(Store::open("sqlite::memory:"))
        .expect("an in-memory store")
});

/// A Monday morning in service hours.
static NOW: LazyLock<jiff::Timestamp> =
    LazyLock::new(|| "2026-11-23T09:00:00+01:00".parse().expect("an instant"));

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut mails = Vec::new();
    let mut rest = data;
    while mails.len() < 3
        && let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR)
    {
        mails.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    mails.push(rest);
    mails
}

/// Everything filing may change, as text: rows per table, mail bytes, quarantine, and the
/// tickets the outcomes name.
async fn snapshot(tx: &mut WriteTx, outcomes: &[Outcome]) -> String {
    let counts = backup::counts(tx).await.expect("counting");
    let mut numbers: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| {
            let linked = match o {
                Outcome::NewTicket { linked_to, .. } => linked_to.as_deref(),
                _ => None,
            };
            [o.ticket(), linked]
        })
        .flatten()
        .collect();
    numbers.sort();
    numbers.dedup();
    let mut rows = tickets::tickets_by_number(tx, STORE.backend(), &numbers)
        .await
        .expect("reading tickets");
    rows.sort_by_key(|t| t.id);
    format!("{counts:?}\n{rows:#?}")
}

async fn file(ingestor: &Ingestor<'_>, tx: &mut WriteTx, items: &[Incoming<'_>]) -> Vec<Outcome> {
    let outcomes = ingestor
        .file_in(tx, PreparedBatch::new(ingestor.config, items))
        .await
        .expect("filing");
    assert_eq!(outcomes.len(), items.len());
    outcomes
}

fuzz_target!(
    init: common::allow_known_parser_assertion(),
    |data: &[u8]| {
        let mails = split(data);
        let items = |mailbox: &str, uidvalidity: u32| -> Vec<Incoming<'_>> {
            mails
                .iter()
                .zip(1..)
                .map(|(raw, uid)| Incoming {
                    raw,
                    source: SourceKey::imap(mailbox, uidvalidity, uid),
                })
                .collect()
        };
        let batch = items("INBOX", 1);
        let ingestor = Ingestor {
            store: &STORE,
            config: &common::CONFIG,
            clock: Some(*NOW),
        };
        RUNTIME.block_on(async {
            let mut tx = STORE.begin_write().await.expect("a write transaction");
            let first = file(&ingestor, &mut tx, &batch).await;
            let filed = snapshot(&mut tx, &first).await;
            for (again, mailbox) in [(items("INBOX", 1), "the same"), (items("Support", 7), "another")] {
                let outcomes = file(&ingestor, &mut tx, &again).await;
                for (o, before) in outcomes.iter().zip(&first) {
                    assert!(
                        matches!(o, Outcome::Duplicate { .. }),
                        "filed again from {mailbox} mailbox: {o:?} (first {before:?})"
                    );
                }
                assert_eq!(
                    snapshot(&mut tx, &first).await,
                    filed,
                    "filing again from {mailbox} mailbox changed the store"
                );
            }
            tx.rollback().await.expect("rollback");

            let mut tx = STORE.begin_write().await.expect("a write transaction");
            let mut one_by_one = Vec::new();
            for it in &batch {
                one_by_one.extend(file(&ingestor, &mut tx, std::slice::from_ref(it)).await);
            }
            assert_eq!(one_by_one, first, "one by one and in one batch differ");
            assert_eq!(
                snapshot(&mut tx, &first).await,
                filed,
                "one by one and in one batch leave different stores"
            );
            tx.rollback().await.expect("rollback");
        });
    }
);
