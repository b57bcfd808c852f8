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
