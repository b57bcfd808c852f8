//! Monitoring repeats (issue 19): 10,000 mails of one alert key in one batch — Icinga 2's
//! default service notification, the same problem every minute — filed as one incident, next
//! to 10,000 ordinary requests (the ingest bench's 4 KB mails) in one batch, in the same run,
//! into fresh SQLite files and PostgreSQL databases. Goal (issue): the alerts' rate at least
//! 80 % of the requests'. Each rate is parse, classify and filing (one transaction), the
//! median of three runs; the runs alternate, so that both kinds see the same machine.
//!
//! Run: `cargo bench --bench alerts` (PostgreSQL from `$POSTSTELLE_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/postgres`; without it only SQLite is measured). Without
//! `--bench` (as `cargo test --all-targets` runs it) each kind files 100 mails once into
//! SQLite, as a smoke test that prints no rates.
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, PreparedBatch, SourceKey};

#[path = "support/mode.rs"]
mod mode;
#[path = "support/requests.rs"]
mod requests;
use requests::requests;

fn sample() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alerts/icinga2-service-problem.eml"
    );
    String::from_utf8(std::fs::read(path).expect("sample")).expect("UTF-8")
}

/// `n` problems of the Icinga sample's service, a minute apart, each its own mail.
fn alerts(n: usize) -> Vec<Vec<u8>> {
    let sample = sample();
    let t0: Timestamp = "2026-11-25T08:14:03Z".parse().expect("instant");
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").expect("zone");
    (0..n)
        .map(|i| {
            let at = (t0 + SignedDuration::from_mins(i as i64)).to_zoned(tz.clone());
            sample
                .replace(
                    "When:    2026-11-25 09:14:03 +0100",
                    &format!("When:    {}", at.strftime("%Y-%m-%d %H:%M:%S %z")),
                )
                .replace(
                    "Message-Id: <20261125081403.2F1A3120B5@",
                    &format!("Message-Id: <bench-{i}.2F1A3120B5@"),
                )
                .replace(
                    "Date: Wed, 25 Nov 2026 09:14:03 +0100 (CET)",
                    &format!("Date: {}", at.strftime("%a, %d %b %Y %H:%M:%S %z")),
                )
                .into_bytes()
        })
        .collect()
}

/// Files `mails` in one batch: parse, classify, one transaction. The time it took, and the
/// outcomes.
async fn file(
    store: &Store,
    config: &Config,
    mails: &[Vec<u8>],
    tag: &str,
) -> (Duration, Vec<Outcome>) {
    let start = Instant::now();
    let items: Vec<Incoming<'_>> = mails
        .iter()
        .enumerate()
        .map(|(i, raw)| Incoming {
            raw,
            source: SourceKey::file(&format!("{tag}/{i}")),
        })
        .collect();
    let batch = PreparedBatch::new(config, &items);
    let mut ing = Ingestor::new(store, config);
    // After the last alert's time, so that none lies ahead.
    ing.clock = Some("2026-12-05T00:00:00Z".parse().expect("instant"));
    let outcomes = ing.ingest_prepared(batch).await.expect("ingest");
    (start.elapsed(), outcomes)
}

fn admin_url() -> String {
    std::env::var("POSTSTELLE_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

/// A fresh store of the backend, and what to drop afterwards.
async fn fresh(
    backend: &str,
    n: usize,
) -> Option<(Store, Option<tempfile::TempDir>, Option<String>)> {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tmp");
            let store = Store::open(&Store::default_url(dir.path()))
                .await
                .expect("sqlite");
            Some((store, Some(dir), None))
        }
        _ => {
            sqlx::any::install_default_drivers();
            let admin = admin_url();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .ok()?;
            let name = format!("poststelle_alerts_bench_{}_{n}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string())?;
            let store = Store::open(&format!("{base}/{name}")).await.expect("store");
            Some((store, None, Some(name)))
        }
    }
}

async fn drop_database(name: &str) {
    if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let measuring = mode::measuring();
    let n = if measuring { 10_000 } else { 100 };
    let runs = if measuring { 3 } else { 1 };
    let config = Config::load(None).expect("the shipped configuration is valid");
    let alert_mails = alerts(n);
    let request_mails = requests(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backends: &[&str] = if measuring {
        &["sqlite", "postgres"]
    } else {
        &["sqlite"]
    };
    let mut serial = 0;
    for backend in backends {
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        let mut skipped = false;
        for _ in 0..runs {
            for (k, mails) in [&request_mails, &alert_mails].into_iter().enumerate() {
                serial += 1;
                let Some((store, dir, db)) = rt.block_on(fresh(backend, serial)) else {
                    skipped = true;
                    break;
                };
                let (took, outcomes) = rt.block_on(file(&store, &config, mails, "bench"));
                if k == 1 {
                    // One incident, every other mail a counted repeat on it.
                    let tickets: i64 = rt
                        .block_on(
                            sqlx::query_scalar("SELECT COUNT(*) FROM tickets")
                                .fetch_one(store.pool()),
                        )
                        .expect("count");
                    assert_eq!(tickets, 1, "{n} repeats of one key are one incident");
                    let articles: i64 = rt
                        .block_on(
                            sqlx::query_scalar(
                                "SELECT COUNT(*) FROM articles WHERE kind = 'inbound'",
                            )
                            .fetch_one(store.pool()),
                        )
                        .expect("count");
                    assert_eq!(articles, 1, "repeats are counted, not filed");
                    assert!(matches!(outcomes[0], Outcome::NewTicket { .. }));
                    assert!(
                        outcomes[1..]
                            .iter()
                            .all(|o| matches!(o, Outcome::Note { .. }))
                    );
                } else {
                    assert!(
                        outcomes
                            .iter()
                            .all(|o| matches!(o, Outcome::NewTicket { .. }))
                    );
                }
                times[k].push(took);
                rt.block_on(store.close());
                drop(dir);
                if let Some(name) = db {
                    rt.block_on(drop_database(&name));
                }
            }
            if skipped {
                break;
            }
        }
        if skipped {
            println!("{backend}: not reachable ($POSTSTELLE_TEST_PG), not measured");
            continue;
        }
        if !measuring {
            continue;
        }
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        let requests = rate(median(times[0].clone()));
        let alerts = rate(median(times[1].clone()));
        let bytes = |m: &[Vec<u8>]| m.iter().map(Vec::len).sum::<usize>() / m.len();
        println!(
            "{backend}: {n} requests ({} B each) in one batch: {requests:.0} msgs/s; \
             {n} repeats of one alert ({} B each) in one batch: {alerts:.0} msgs/s = {:.0} % \
             of the requests' rate (goal ≥ 80 %); runs: requests {:?}, alerts {:?}",
            bytes(&request_mails),
            bytes(&alert_mails),
            100.0 * alerts / requests,
            times[0],
            times[1]
        );
    }
}
