//! Scale (issue 20, item 4): the reads that changed so that they cost the same on a store of a
//! million tickets as on a new one give what the simple reads gave (a fast path equals the
//! simple path): `tickets list` pages through every ticket once and in order; the escalation
//! tick, which now starts from the tickets not yet resolved or closed, finds what a look at
//! every clock finds; the availability reports, which now read only their period, give the
//! figures of a computation over every row. The statements' plans are checked in
//! query_plans.rs, the speed in benches/scale.rs.
use std::collections::BTreeSet;

use jiff::civil::{Date, date};
use jiff::{Timestamp, ToSpan};
use poststelle::jobs::report;
use poststelle::sla::report::{Incident, ReactionRecord, Records, compute};
use poststelle::store::Store;
use poststelle::store::synthetic::{self, Spec};
use poststelle::ticket::State;
use poststelle::ticket::ops::{self, OpsError};

use crate::support::bin;
use crate::support::config::{DEFAULT, TempConfig};
use crate::support::db::{TestDb, both};
use crate::support::mail::fresh_samples;
use crate::support::tickets::{close, open_ticket};

/// Every page of `tickets list` with these filters, `limit` at a time: the numbers in order,
/// and how many pages it took.
async fn all_pages(
    store: &Store,
    state: Option<State>,
    queue: Option<&str>,
    limit: u32,
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = ops::list_tickets(store, state, queue, after.as_deref(), limit)
            .await
            .expect("page");
        pages += 1;
        assert!(page.tickets.len() <= limit as usize);
        seen.extend(page.tickets.iter().map(|t| t.number.clone()));
        match page.next {
            Some(next) => {
                assert_eq!(
                    Some(&next),
                    seen.last(),
                    "the cursor is the page's last ticket"
                );
                after = Some(next);
            }
            None => return (seen, pages),
        }
        assert!(pages < 100, "paging does not end");
    }
}

both!(tickets_are_listed_a_page_at_a_time);
async fn tickets_are_listed_a_page_at_a_time(db: &TestDb) {
    let s = &db.store;
    let mut numbers = Vec::new();
    for i in 0..7 {
        numbers.push(
            open_ticket(
                s,
                &format!("p{i}@example.org"),
                &format!("Anfrage {i}"),
                &format!("page{i}"),
            )
            .await,
        );
    }
    for i in [1, 4, 5] {
        close(s, &numbers[i]).await;
    }
    assert_eq!(all_pages(s, None, None, 3).await, (numbers.clone(), 3));
    assert_eq!(all_pages(s, None, None, 7).await, (numbers.clone(), 1));
    assert_eq!(all_pages(s, None, None, 50).await, (numbers.clone(), 1));
    let closed = vec![numbers[1].clone(), numbers[4].clone(), numbers[5].clone()];
    assert_eq!(
        all_pages(s, Some(State::Closed), None, 1).await,
        (closed.clone(), 3)
    );
    assert_eq!(
        all_pages(s, Some(State::Closed), Some("support"), 2).await,
        (closed, 2)
    );
    assert_eq!(
        all_pages(s, None, Some("betrieb"), 2).await,
        (Vec::new(), 1)
    );
    let open: Vec<String> = [0, 2, 3, 6].iter().map(|&i| numbers[i].clone()).collect();
    assert_eq!(all_pages(s, Some(State::New), None, 3).await, (open, 2));

    // A page after a cursor starts behind it, whatever state the cursor's ticket is in now;
    // one that ends at the last ticket says there is no next page.
    let rest = ops::list_tickets(s, None, None, Some(&numbers[3]), 3)
        .await
        .expect("page");
    assert_eq!(
        rest.tickets.iter().map(|t| &t.number).collect::<Vec<_>>(),
        numbers[4..].iter().collect::<Vec<_>>()
    );
    assert_eq!(rest.next, None);
    let after_closed = ops::list_tickets(s, Some(State::New), None, Some(&numbers[4]), 5)
        .await
        .expect("page");
    assert_eq!(
        after_closed
            .tickets
            .iter()
            .map(|t| &t.number)
            .collect::<Vec<_>>(),
        vec![&numbers[6]]
    );
    // A ticket opened between two pages comes on a later page; none repeats.
    let first = ops::list_tickets(s, None, None, None, 4)
        .await
        .expect("page");
    let late = open_ticket(s, "late@example.org", "Später", "page-late").await;
    let second = ops::list_tickets(s, None, None, first.next.as_deref(), 50)
        .await
        .expect("page");
    let mut both_pages: Vec<String> = first.tickets.iter().map(|t| t.number.clone()).collect();
    both_pages.extend(second.tickets.iter().map(|t| t.number.clone()));
    let mut expected = numbers.clone();
    expected.push(late);
    assert_eq!(both_pages, expected);

    let unknown = ops::list_tickets(s, None, None, Some("1999010199000001"), 3)
        .await
        .expect_err("unknown cursor");
    assert!(matches!(unknown, OpsError::NoTicket(_)), "{unknown}");
}

/// `tickets list --limit N [--after NUMBER] [--json]`: JSON Lines end with `{"next": …}` when
/// there are more, the table with the `--after` to give.
#[test]
fn tickets_list_pages_on_the_command_line() {
    let data = tempfile::tempdir().expect("tmp");
    let samples = fresh_samples();
    let run = |args: &[&str]| bin::run(data.path(), args);
    run(&["ingest", samples.path().to_str().expect("utf8")]);
    let all: Vec<serde_json::Value> = run(&["tickets", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.iter().all(|t| t.get("number").is_some()),
        "no cursor line: {all:?}"
    );

    let page: Vec<serde_json::Value> = run(&["tickets", "list", "--limit", "2", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(page.len(), 3, "{page:?}");
    assert_eq!(page[0]["number"], all[0]["number"]);
    assert_eq!(page[1]["number"], all[1]["number"]);
    assert_eq!(page[2], serde_json::json!({ "next": all[1]["number"] }));
    let next = page[2]["next"].as_str().expect("next");
    let rest: Vec<serde_json::Value> =
        run(&["tickets", "list", "--limit", "2", "--after", next, "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
    assert_eq!(rest, vec![all[2].clone()]);

    let table = run(&["tickets", "list", "--limit", "1"]);
    let first = all[0]["number"].as_str().expect("number");
    assert!(table.contains(first), "{table}");
    assert!(
        table
            .trim_end()
            .ends_with(&format!("more: --after {first}")),
        "{table}"
    );
    let last = all[2]["number"].as_str().expect("number");
    assert_eq!(
        run(&["tickets", "list", "--after", last]),
        format!("no tickets after {last}\n")
    );

    let out = bin::poststelle()
        .arg("--data-dir")
        .arg(data.path())
        .args(["tickets", "list", "--after", "1999010199000001"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no ticket 1999010199000001"), "{err}");
    let out = bin::poststelle()
        .arg("--data-dir")
        .arg(data.path())
        .args(["tickets", "list", "--limit", "0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

/// A synthetic store of 20,000 tickets over 400 days up to `now`.
fn spec(now: Timestamp) -> Spec {
    Spec {
        tickets: 20_000,
        active: 300,
        span_days: 400,
        now: now.as_microsecond(),
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

async fn exec(store: &Store, sql: &str, binds: &[i64]) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(store.pool()).await.expect(sql);
}

/// The escalation tick as it was before it started from the tickets not yet closed: every
/// clock looked at.
const DUE_EVERY_CLOCK: &str = "SELECT s.ticket_id, s.severity FROM ticket_sla s \
     JOIN tickets t ON t.id = s.ticket_id \
     WHERE s.reacted_at IS NULL AND t.state NOT IN ('closed', 'resolved') AND s.warn_at <= $1 \
     AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity \
       AND e.kind = CASE WHEN s.due_at <= $1 THEN 'breach' ELSE 'warning' END) \
     AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity AND e.kind = 'breach')";

const NEXT_EVERY_CLOCK: &str = "SELECT MIN(CASE WHEN EXISTS (SELECT 1 FROM sla_escalations e \
       WHERE e.ticket_id = s.ticket_id AND e.severity = s.severity AND e.kind = 'warning') \
       THEN s.due_at ELSE s.warn_at END) \
     FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id \
     WHERE s.reacted_at IS NULL AND t.state NOT IN ('closed', 'resolved') \
     AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
       AND e.severity = s.severity AND e.kind = 'breach')";

both!(the_escalation_tick_finds_what_a_look_at_every_clock_finds);
async fn the_escalation_tick_finds_what_a_look_at_every_clock_finds(db: &TestDb) {
    let now = Timestamp::now();
    let s = &db.store;
    synthetic::fill(s, &spec(now)).await.expect("fill");
    // Notices not yet sent: of unanswered closed tickets (which must stay silent) and of
    // tickets still open; a class-1 ticket still open for the on-call duty; clocks of open
    // tickets whose warning is ahead.
    exec(
        s,
        "DELETE FROM sla_escalations WHERE ticket_id % 7 = 0",
        &[],
    )
    .await;
    exec(
        s,
        "UPDATE ticket_sla SET warn_at = $1, due_at = $2 WHERE ticket_id % 11 = 0 \
         AND ticket_id > 19800",
        &[
            (now + 2.hours()).as_microsecond(),
            (now + 3.hours()).as_microsecond(),
        ],
    )
    .await;
    let unanswered_closed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id \
         WHERE s.reacted_at IS NULL AND t.state = 'closed' AND s.ticket_id % 7 = 0",
    )
    .fetch_one(s.pool())
    .await
    .expect("count");
    assert!(unanswered_closed > 10, "{unanswered_closed}");

    for at in [now, now + 150.minutes(), now + 24.hours()] {
        let us = at.as_microsecond();
        let fast: BTreeSet<(i64, i64)> = poststelle::store::sla::due_notices(s, us)
            .await
            .expect("due")
            .into_iter()
            .map(|n| (n.ticket_id, n.severity))
            .collect();
        let simple: BTreeSet<(i64, i64)> = sqlx::query_as(DUE_EVERY_CLOCK)
            .bind(us)
            .fetch_all(s.pool())
            .await
            .expect("simple")
            .into_iter()
            .collect();
        assert!(!simple.is_empty());
        assert_eq!(fast, simple, "at {at}");
    }
    let next = poststelle::store::sla::next_notice_at(s)
        .await
        .expect("next");
    let simple: Option<i64> = sqlx::query_scalar(NEXT_EVERY_CLOCK)
        .fetch_one(s.pool())
        .await
        .expect("simple");
    assert!(next.is_some());
    assert_eq!(next, simple);
    let on_call: BTreeSet<i64> = poststelle::store::sla::on_call_candidates(s)
        .await
        .expect("on call")
        .into_iter()
        .map(|n| n.ticket_id)
        .collect();
    let simple: BTreeSet<i64> = sqlx::query_scalar(
        "SELECT s.ticket_id FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id \
         WHERE s.reacted_at IS NULL AND s.severity = 1 AND t.state NOT IN ('closed', 'resolved') \
         AND NOT EXISTS (SELECT 1 FROM sla_escalations e WHERE e.ticket_id = s.ticket_id \
           AND e.severity = 1 AND e.kind = 'on_call')",
    )
    .fetch_all(s.pool())
    .await
    .expect("simple")
    .into_iter()
    .collect();
    assert!(!simple.is_empty());
    assert_eq!(on_call, simple);
}

fn platforms_config() -> TempConfig {
    let mut text = TempConfig::shipped_text();
    for p in 0..5 {
        text.push_str(&format!(
            "\n[[platform]]\nname = \"plattform-{p}\"\ncalendar = \"hessen\"\n"
        ));
    }
    TempConfig::new(&text, &[])
}

/// severity, received_at, due_at, met, closed_at
type ClockRow = (i64, i64, i64, Option<i64>, Option<i64>);

/// The report computed from every row of the store, as it was before it read only its period.
async fn report_from_every_row(
    store: &Store,
    cal: &poststelle::sla::Calendar,
    from: Date,
    to: Date,
    now: Timestamp,
) -> poststelle::sla::report::Report {
    let t = |us: i64| Timestamp::from_microsecond(us).expect("instant");
    let rows: Vec<ClockRow> = sqlx::query_as(
        "SELECT s.severity, s.received_at, s.due_at, s.met, t.closed_at FROM ticket_sla s \
         JOIN tickets t ON t.id = s.ticket_id WHERE s.calendar = 'hessen'",
    )
    .fetch_all(store.pool())
    .await
    .expect("clocks");
    let mut records = Records::default();
    for (severity, received, due, met, closed) in rows {
        if severity == 1 {
            records.incidents.push(Incident {
                received: t(received),
                restored: closed.map(t),
            });
        }
        records.reactions.push(ReactionRecord {
            severity,
            received: t(received),
            due: t(due),
            met: met.map(|m| m != 0),
        });
    }
    let windows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT starts_at, ends_at FROM sla_maintenance \
         WHERE calendar IS NULL OR calendar = 'hessen'",
    )
    .fetch_all(store.pool())
    .await
    .expect("maintenance");
    records.maintenance = windows.into_iter().map(|(a, b)| (t(a), t(b))).collect();
    compute(cal, from, to, 97.5, now, &records).expect("report")
}

async fn platform_report_from_every_row(
    store: &Store,
    platform: &str,
    cal: &poststelle::sla::Calendar,
    from: Date,
    to: Date,
    now: Timestamp,
) -> poststelle::sla::report::Report {
    let t = |us: i64| Timestamp::from_microsecond(us).expect("instant");
    let outages: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT starts_at, ends_at FROM sla_outages WHERE platform = $1")
            .bind(platform)
            .fetch_all(store.pool())
            .await
            .expect("outages");
    let windows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT starts_at, ends_at FROM sla_maintenance \
         WHERE (platform IS NULL OR platform = $1) AND (calendar IS NULL OR calendar = 'hessen')",
    )
    .bind(platform)
    .fetch_all(store.pool())
    .await
    .expect("maintenance");
    let records = Records {
        incidents: outages
            .into_iter()
            .map(|(a, b)| Incident {
                received: t(a),
                restored: b.map(t),
            })
            .collect(),
        maintenance: windows.into_iter().map(|(a, b)| (t(a), t(b))).collect(),
        reactions: Vec::new(),
    };
    let mut report = compute(cal, from, to, 97.5, now, &records)
        .expect("report")
        .of_platform(platform);
    // The synthetic store holds no problem records; the platform report lists them (none).
    report.problems = Some(Vec::new());
    report
}

both!(a_report_of_a_period_equals_one_from_every_row);
async fn a_report_of_a_period_equals_one_from_every_row(db: &TestDb) {
    let now: Timestamp = "2026-12-01T09:00:00+01:00".parse().expect("now");
    let s = &db.store;
    synthetic::fill(s, &spec(now)).await.expect("fill");
    // Outages that reach across the periods' borders: class-1 tickets (every hundredth)
    // restored weeks later or not at all, platform outages and maintenance windows lasting
    // weeks.
    let day = 86_400_000_000_i64;
    exec(
        s,
        "UPDATE tickets SET closed_at = closed_at + $1 WHERE id % 1000 = 500",
        &[40 * day],
    )
    .await;
    exec(
        s,
        "UPDATE tickets SET state = 'open', closed_at = NULL WHERE id % 3000 = 700",
        &[],
    )
    .await;
    exec(
        s,
        "UPDATE sla_outages SET ends_at = starts_at + $1 WHERE id % 20 = 3",
        &[45 * day],
    )
    .await;
    exec(
        s,
        "UPDATE sla_outages SET ends_at = NULL WHERE id = 17",
        &[],
    )
    .await;
    exec(
        s,
        "UPDATE sla_maintenance SET ends_at = starts_at + $1 WHERE id % 25 = 4",
        &[33 * day],
    )
    .await;
    exec(
        s,
        "UPDATE sla_maintenance SET calendar = 'rlp' WHERE id % 25 = 9",
        &[],
    )
    .await;
    let t = platforms_config();
    let cfg = t.load();
    let cal = cfg
        .settings
        .sla
        .calendars
        .get("hessen")
        .cloned()
        .expect("hessen");
    // The figures compared are not all zero.
    let mut outage_seconds = 0;
    let mut platform_outage_seconds = 0;
    for (from, to) in [
        (date(2026, 11, 1), date(2026, 11, 30)),
        (date(2026, 9, 1), date(2026, 11, 30)),
        (date(2026, 3, 17), date(2026, 3, 17)),
        (date(2025, 10, 28), date(2026, 2, 3)),
        (date(2026, 11, 20), date(2026, 12, 31)),
    ] {
        let fast = report::report(s, &cal, from, to, 97.5, now)
            .await
            .expect("report");
        let simple = report_from_every_row(s, &cal, from, to, now).await;
        assert_eq!(fast, simple, "{from} – {to}");
        outage_seconds += fast.total.outage_seconds;
        for p in ["plattform-1", "plattform-3"] {
            let platform = cfg.settings.platform(p).expect("platform");
            let fast = report::platform_report(s, platform, &cal, from, to, 97.5, now)
                .await
                .expect("report");
            let simple = platform_report_from_every_row(s, p, &cal, from, to, now).await;
            assert_eq!(fast, simple, "{p}, {from} – {to}");
            platform_outage_seconds += fast.total.outage_seconds;
        }
    }
    assert!(outage_seconds > 0);
    assert!(platform_outage_seconds > 0);
}
