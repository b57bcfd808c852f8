//! Ingest throughput: 10,000 generated 4 KB mails filed into a fresh SQLite file and into a
//! fresh PostgreSQL database (batches of 256 messages per transaction; the next batch is
//! parsed and classified while the current one is filed), and the process's peak memory
//! afterwards. Goals (issue): ≥ 5,000 msgs/s into SQLite and ≥ 2,000 msgs/s into
//! PostgreSQL on the 2-core machine.
//!
//! Run: `cargo bench --bench ingest` (PostgreSQL from `$POSTSTELLE_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/postgres`). Without `--bench` (as `cargo test --all-targets`
//! runs it) each benchmark files 50 mails once, as a smoke test that prints no figures.
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::ticket::ingest::{Incoming, Ingestor, PreparedBatch, SourceKey};

#[path = "support/mode.rs"]
mod mode;
#[path = "support/requests.rs"]
mod requests;

const BATCH: usize = 256;

static MAILS: LazyLock<Vec<Vec<u8>>> =
    LazyLock::new(|| requests::requests(if mode::measuring() { 10_000 } else { 50 }));

static CONFIG: LazyLock<Config> =
    LazyLock::new(|| Config::load(None).expect("the shipped configuration is valid"));

fn main() {
    divan::main();
    // The kernel's high-water mark of this process's resident memory, over every run above.
    if mode::measuring()
        && let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
    {
        println!("peak RSS ({line})");
    }
    drop_databases();
}

/// Databases the PostgreSQL benchmark made, dropped once at the end (outside the timing).
static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn admin_url() -> String {
    std::env::var("POSTSTELLE_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

fn drop_databases() {
    let names = std::mem::take(&mut *CREATED.lock().unwrap_or_else(|e| e.into_inner()));
    if names.is_empty() {
        return;
    }
    runtime().block_on(async {
        let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url()).await
        else {
            return;
        };
        for name in names {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    });
}

/// Files every mail, batch by batch, the way a daemon would: the next batch is parsed and
/// classified on a blocking thread while the current one is being filed.
async fn file_all(store: &Store) {
    let ingestor = Ingestor::new(store, &CONFIG);
    let mut batches = MAILS.chunks(BATCH).enumerate().map(|(b, chunk)| {
        let items: Vec<Incoming<'static>> = chunk
            .iter()
            .enumerate()
            .map(|(i, raw)| Incoming {
                raw,
                source: SourceKey::file(&format!("bench/{b}/{i}")),
            })
            .collect();
        move || PreparedBatch::new(&CONFIG, &items)
    });
    let mut current = batches.next().map(|prepare| prepare());
    while let Some(batch) = current {
        let next = batches.next().map(tokio::task::spawn_blocking);
        ingestor.ingest_prepared(batch).await.expect("ingest");
        current = match next {
            Some(task) => Some(task.await.expect("prepare")),
            None => None,
        };
    }
}

fn counters<'a, 'b>(bencher: Bencher<'a, 'b>) -> Bencher<'a, 'b> {
    let bytes: usize = MAILS.iter().map(Vec::len).sum();
    bencher
        .counter(ItemsCount::new(MAILS.len()))
        .counter(BytesCount::new(bytes))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn sqlite(bencher: Bencher) {
    let rt = runtime();
    counters(bencher)
        .with_inputs(|| {
            let dir = tempfile::tempdir().expect("tmp");
            let store = rt
                .block_on(Store::open(&Store::default_url(dir.path())))
                .expect("sqlite");
            (dir, store)
        })
        .bench_local_values(|(dir, store)| {
            rt.block_on(file_all(&store));
            rt.block_on(store.close());
            drop(dir);
        });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn postgres(bencher: Bencher) {
    let rt = runtime();
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("URL");
    let mut n = 0;
    counters(bencher)
        .with_inputs(|| {
            n += 1;
            let name = format!("poststelle_bench_{}_{n}", std::process::id());
            rt.block_on(async {
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                CREATED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(name.clone());
                Store::open(&format!("{base}/{name}")).await.expect("store")
            })
        })
        .bench_local_values(|store| {
            rt.block_on(async {
                file_all(&store).await;
                store.close().await;
            });
        });
}
