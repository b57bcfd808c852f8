//! Every statement that runs per batch of mail filed, per tick of the escalation loop or per
//! round of status notices — and the reads that must stay fast however large the store grows:
//! `tickets list`, the availability reports, the status page's figures — reads an index, never
//! a whole table (issue 20, item 4). The statements are the store's own
//! ([`poststelle::store::hot::hot_queries`]), not copies; their plans are read on a store of
//! 20,000 tickets made by the bench's generator: SQLite's EXPLAIN QUERY PLAN (which does not
//! depend on the data: poststelle never runs ANALYZE), PostgreSQL's EXPLAIN after ANALYZE with
//! sequential scans switched off, so that a Seq Scan in the plan means that no index could
//! serve the statement at all.
use std::collections::BTreeSet;

use jiff::Timestamp;
use poststelle::store::Backend;
use poststelle::store::hot::{HotQuery, Sample, When, full_scans, hot_queries};
use poststelle::store::synthetic::{self, Spec};

use crate::support::config::DEFAULT;
use crate::support::db::{TestDb, both};

fn spec() -> Spec {
    Spec {
        tickets: 20_000,
        active: 300,
        span_days: 400,
        now: Timestamp::now().as_microsecond(),
        queues: DEFAULT
            .settings
            .queues
            .iter()
            .map(|q| q.name.clone())
            .collect(),
        calendar: "hessen".into(),
        staff: "servicedesk@kommunal-it.example".into(),
        incidents: 200,
    }
}

async fn every_hot_query_reads_an_index(db: &TestDb) {
    synthetic::fill(&db.store, &spec()).await.expect("fill");
    let backend = db.store.backend();
    let queries = hot_queries(backend);
    let mut failures = Vec::new();
    for q in &queries {
        let plan = db
            .store
            .explain(q)
            .await
            .unwrap_or_else(|e| panic!("{}: EXPLAIN failed: {e}\n{}", q.name, q.sql));
        // Shown with --nocapture.
        eprintln!("{backend:?} {}:\n  {}", q.name, plan.join("\n  "));
        let scans = full_scans(backend, &plan);
        if !scans.is_empty() {
            failures.push(format!(
                "{} ({:?}) reads a whole table or index: {scans:?}\n{}\nplan:\n{}",
                q.name,
                q.when,
                q.sql,
                plan.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // The list covers every path the issue names, so that a statement cannot leave it unseen.
    let whens: BTreeSet<String> = queries.iter().map(|q| format!("{:?}", q.when)).collect();
    for w in [
        When::Filing,
        When::EscalationTick,
        When::StatusRound,
        When::TicketsList,
        When::Report,
        When::StatusPage,
        When::Sender,
        When::Retention,
    ] {
        assert!(whens.contains(&format!("{w:?}")), "no statement of {w:?}");
    }
    let names: BTreeSet<&str> = queries.iter().map(|q| q.name).collect();
    for name in [
        "filing: messages filed before, by source",
        "filing: messages filed before, by Message-ID and hash",
        "filing: tickets by number",
        "filing: tickets by Message-ID",
        "filing: participants",
        "filing: automatic replies of the last hour",
        "escalation: due notices",
        "escalation: next due instant",
        "escalation: on-call candidates",
        "tickets list: all",
        "tickets list: by state and queue",
        "report: clocks of the period",
        "status page: fingerprint",
    ] {
        assert!(names.contains(name), "{name} is not among the hot queries");
    }
}
both!(every_hot_query_reads_an_index);

/// The checker itself: a statement that can only read the whole table is caught, on both
/// databases; one that looks a row up by its key is not.
async fn the_checker_catches_a_full_scan(db: &TestDb) {
    synthetic::fill(
        &db.store,
        &Spec {
            tickets: 2_000,
            active: 20,
            incidents: 10,
            ..spec()
        },
    )
    .await
    .expect("fill");
    let backend = db.store.backend();
    let scan = HotQuery {
        name: "a scan",
        when: When::TicketsList,
        sql: "SELECT id FROM tickets WHERE subject = $1".into(),
        binds: vec![Sample::Text("Anfrage 7 zum Fachverfahren")],
    };
    let plan = db.store.explain(&scan).await.expect("explain");
    assert!(!full_scans(backend, &plan).is_empty(), "{plan:?}");
    let lookup = HotQuery {
        name: "a lookup",
        when: When::TicketsList,
        sql: "SELECT id FROM tickets WHERE number = $1".into(),
        binds: vec![Sample::Text("x")],
    };
    let plan = db.store.explain(&lookup).await.expect("explain");
    assert_eq!(full_scans(backend, &plan), Vec::<String>::new(), "{plan:?}");
}
both!(the_checker_catches_a_full_scan);

/// Recording a sent mail writes every page it changes whole to SQLite's WAL, 32 KiB each, and
/// the sender's hand-over marks wait for those commits (issue 22; migration 0027): besides the
/// claims' two partial indexes, which a sent mail must leave, only the index of the mails held
/// as uncertain (which a result never enters) may hold the outbox's state. Another index on it
/// would take a new entry for every mail sent.
async fn only_the_claims_and_the_held_mails_index_the_outbox_state(db: &TestDb) {
    let sql = match db.store.backend() {
        Backend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' \
             AND sql IS NOT NULL"
        }
        Backend::Postgres => {
            "SELECT CAST(indexname AS TEXT), indexdef FROM pg_indexes WHERE tablename = 'outbox'"
        }
    };
    let indexes: Vec<(String, String)> = sqlx::query_as(sql)
        .fetch_all(db.store.pool())
        .await
        .expect(sql);
    assert!(
        indexes.iter().any(|(name, _)| name == "outbox_ticket"),
        "the outbox's indexes were not read: {indexes:?}"
    );
    let on_state: BTreeSet<&str> = indexes
        .iter()
        .filter(|(_, definition)| definition.contains("state"))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        on_state,
        BTreeSet::from([
            "outbox_due_direct",
            "outbox_due_notices",
            "outbox_uncertain"
        ]),
        "{indexes:#?}"
    );
}
both!(only_the_claims_and_the_held_mails_index_the_outbox_state);
