//! How cost grows with the store (issue 20, item 4): the same work on an empty store and on one
//! that holds a million tickets (three million articles, two million raw mails and outgoing
//! mails), on SQLite and on PostgreSQL, in one run.
//!
//! - filing 10,000 new mails, then 10,000 follow-ups to them (half found by the `[Ticket#…]`
//!   tag, half by In-Reply-To/References), in batches of 256 as the daemon files them; goal:
//!   the full store at least 80 % of the empty one's rate;
//! - on the full store: `tickets list` (its first page of 50, a page deep inside, filtered by
//!   state and queue), one escalation tick, the availability report of the last month, the
//!   status page's fingerprint and inputs; goal: the list and the tick under 50 ms.
//!
//! The million tickets are written with bulk SQL ([`poststelle::store::synthetic`]): a few
//! minutes, not hours. The SQLite file is cached under `target/scale-cache/` (keyed by the
//! schema and the generator) and copied for each run; the PostgreSQL database is made again and
//! dropped at the end (`$POSTSTELLE_TEST_PG`, default `postgres://root@127.0.0.1:5432/postgres`).
//!
//! Run: `cargo bench --bench scale`. Knobs: `POSTSTELLE_SCALE_TICKETS` (1000000),
//! `POSTSTELLE_SCALE_MAILS` (10000), `POSTSTELLE_SCALE_ROUNDS` (3; both stores take the same
//! rounds, taking turns, all rounds together count, and each round and the best are shown
//! too), `POSTSTELLE_SCALE_BACKENDS` (`sqlite,postgres`).
//! Without `--bench` (as `cargo test --all-targets` runs it) it makes a store of 2,000 tickets
//! and files 50 mails, as a smoke test that prints no figures.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::{Timestamp, ToSpan};
use poststelle::config::Config;
use poststelle::jobs::{escalation, report};
use poststelle::store::synthetic::{self, Spec};
use poststelle::store::tickets::{self, TierLimits};
use poststelle::store::{Backend, Store};
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, PreparedBatch, SourceKey};

#[path = "support/mode.rs"]
mod mode;
#[path = "support/requests.rs"]
#[allow(dead_code)]
mod requests;
use requests::WORDS;

const BATCH: usize = 256;

fn env_num(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Knobs {
    tickets: i64,
    mails: usize,
    rounds: usize,
    backends: Vec<Backend>,
    measuring: bool,
}

impl Knobs {
    fn read() -> Knobs {
        let measuring = mode::measuring();
        let backends = std::env::var("POSTSTELLE_SCALE_BACKENDS")
            .unwrap_or_else(|_| "sqlite,postgres".into())
            .split(',')
            .filter_map(|b| match b.trim() {
                "sqlite" => Some(Backend::Sqlite),
                "postgres" => Some(Backend::Postgres),
                _ => None,
            })
            .collect();
        if measuring {
            Knobs {
                tickets: env_num("POSTSTELLE_SCALE_TICKETS", 1_000_000),
                mails: env_num("POSTSTELLE_SCALE_MAILS", 10_000) as usize,
                rounds: env_num("POSTSTELLE_SCALE_ROUNDS", 3).max(1) as usize,
                backends,
                measuring,
            }
        } else {
            Knobs {
                tickets: 2_000,
                mails: 50,
                rounds: 1,
                backends,
                measuring,
            }
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped configuration with absolute paths and the synthetic store's platforms, so that
/// the status page computes their availability.
fn config(dir: &std::path::Path) -> Config {
    let shipped = std::fs::read_to_string(repo().join("poststelle.toml")).expect("shipped");
    let mut text = shipped
        .replace(
            "rules_dir = \"rules\"",
            &format!("rules_dir = {:?}", repo().join("rules")),
        )
        .replace(
            "templates_dir = \"templates\"",
            &format!("templates_dir = {:?}", repo().join("templates")),
        )
        .replace(
            "contacts = \"contacts/hessen.toml\"",
            &format!("contacts = {:?}", repo().join("contacts/hessen.toml")),
        );
    for p in 0..5 {
        text.push_str(&format!(
            "\n[[platform]]\nname = \"plattform-{p}\"\ncalendar = \"hessen\"\n"
        ));
    }
    let path = dir.join("poststelle.toml");
    std::fs::write(&path, text).expect("config");
    match Config::load(Some(&path)) {
        Ok(c) => c,
        Err(d) => panic!("bench configuration:\n{d}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn admin_url() -> String {
    std::env::var("POSTSTELLE_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

/// PostgreSQL databases of this run, dropped at the end.
struct Databases {
    names: Vec<String>,
    serial: usize,
}

impl Databases {
    async fn create(&mut self) -> String {
        self.serial += 1;
        let name = format!("poststelle_scale_{}_{}", std::process::id(), self.serial);
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url())
            .await
            .expect("PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        self.names.push(name.clone());
        let base = admin_url()
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .expect("URL");
        format!("{base}/{name}")
    }

    async fn drop_all(&mut self) {
        let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url()).await
        else {
            return;
        };
        for name in self.names.drain(..) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

fn spec(cfg: &Config, tickets: i64, now: Timestamp) -> Spec {
    Spec {
        tickets,
        // About three days of a desk that opens a thousand tickets a day.
        active: (tickets / 330).max(10),
        span_days: 3 * 365,
        now: now.as_microsecond() - 3_600_000_000,
        queues: cfg.settings.queues.iter().map(|q| q.name.clone()).collect(),
        calendar: "hessen".into(),
        staff: "servicedesk@kommunal-it.example".into(),
        incidents: (tickets / 2_000).max(5),
    }
}

/// A 4 KB text, different for each seed.
fn body(seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut body = String::from("Guten Tag,\r\n");
    while body.len() < 3600 {
        body.push_str(WORDS[rng.usize(..WORDS.len())]);
        body.push(if rng.usize(..12) == 0 { '\n' } else { ' ' });
    }
    body
}

/// A number of its own for the `i`-th mail of round `tag` (the same in every run).
fn mail_hash(tag: &str, i: usize) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (tag, i).hash(&mut h);
    h.finish()
}

/// The subject of the `i`-th mail of round `tag`. Each round's mails are new requests: with
/// the same subjects every round, the full store (whose rounds share it) saw each subject a
/// third time in round 3 and opened 10,000 problems with their notices there, which a new
/// store (one per round) never does.
fn subject(tag: &str, i: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(mail_hash(tag, i));
    (0..4)
        .map(|_| WORDS[rng.usize(..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `i`-th new mail of round `tag`.
fn new_mail(tag: &str, i: usize) -> Vec<u8> {
    let seed = fastrand::u64(..);
    format!(
        "From: Person {i} <p{i}.{tag}@gemeinde{}.example>\r\nTo: servicedesk@kommunal-it.example\r\n\
         Subject: {}\r\nDate: {}\r\nMessage-ID: <{}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\nMit freundlichen Grüßen\r\n",
        i % 40,
        subject(tag, i),
        date(),
        message_id(tag, i, ""),
        body(seed)
    )
    .into_bytes()
}

/// A Date header of now, as mail programs write it (the store's dedup keys begin with its day).
fn date() -> String {
    let now = Timestamp::now().to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(1)));
    jiff::fmt::rfc2822::to_string(&now).expect("RFC 2822 date")
}

/// The Message-ID of the `i`-th mail of round `tag`: a hashed prefix spreads them over the
/// key space as the Message-IDs of many senders' mail programs are, not one after the other.
fn message_id(tag: &str, i: usize, suffix: &str) -> String {
    let spread = mail_hash(tag, i) >> 32;
    format!("{spread:08x}.{tag}.{i}{suffix}@gemeinde.example")
}

/// A follow-up of the `i`-th new mail of round `tag`, whose ticket is `number`: by the tag in
/// the subject for even `i`, else by In-Reply-To/References only.
fn follow_up(tag: &str, i: usize, number: &str) -> Vec<u8> {
    let seed = fastrand::u64(..);
    let (subject, thread) = if i.is_multiple_of(2) {
        (
            format!("AW: [Ticket#{number}] {}", subject(tag, i)),
            String::new(),
        )
    } else {
        (
            format!("AW: {}", subject(tag, i)),
            format!(
                "In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n",
                id = message_id(tag, i, "")
            ),
        )
    };
    format!(
        "From: Person {i} <p{i}.{tag}@gemeinde{}.example>\r\nTo: servicedesk@kommunal-it.example\r\n\
         Subject: {subject}\r\nDate: {}\r\nMessage-ID: <{}>\r\n{thread}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nNachtrag:\r\n{}\r\n",
        i % 40,
        date(),
        message_id(tag, i, ".re"),
        body(seed)
    )
    .into_bytes()
}

/// Files the mails of each of two stores batch by batch as the daemon does (the next batch
/// parsed and classified on another thread while the current one is filed), the stores taking
/// turns batch by batch so that what else the machine does slows both alike; each store's
/// rate (its mails over the time its batches took, waits for parsing included) and outcomes.
fn file_both(
    rt: &tokio::runtime::Runtime,
    stores: [&Store; 2],
    cfg: &Config,
    tags: &[String; 2],
    mails: &[Vec<Vec<u8>>; 2],
) -> [(f64, Vec<Outcome>); 2] {
    let ingestors = stores.map(|store| Ingestor::new(store, cfg));
    let batches = |side: usize| -> Vec<Vec<Incoming<'_>>> {
        mails[side]
            .chunks(BATCH)
            .enumerate()
            .map(|(b, chunk)| {
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, raw)| Incoming {
                        raw,
                        source: SourceKey::file(&format!("scale/{}/{b}/{i}", tags[side])),
                    })
                    .collect()
            })
            .collect()
    };
    let items = [batches(0), batches(1)];
    let mut outcomes = [Vec::new(), Vec::new()];
    let mut spent = [Duration::ZERO; 2];
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let items = &items;
        scope.spawn(move || {
            let turns = items[0].len().max(items[1].len());
            for k in 0..turns {
                for (side, batches) in items.iter().enumerate() {
                    let Some(batch) = batches.get(k) else {
                        continue;
                    };
                    if tx.send((side, PreparedBatch::new(cfg, batch))).is_err() {
                        return;
                    }
                }
            }
        });
        loop {
            let started = Instant::now();
            let Ok((side, batch)) = rx.recv() else {
                break;
            };
            outcomes[side].extend(
                rt.block_on(ingestors[side].ingest_prepared(batch))
                    .expect("ingest"),
            );
            spent[side] += started.elapsed();
        }
    });
    let [a, b] = outcomes;
    [
        (mails[0].len() as f64 / spent[0].as_secs_f64(), a),
        (mails[1].len() as f64 / spent[1].as_secs_f64(), b),
    ]
}

/// Rates of one round: new mails, then follow-ups to them.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    new: f64,
    follow_ups: f64,
}

/// One round on each of two stores, filed taking turns ([`file_both`]): `n` new mails, then a
/// follow-up to each, checked to land on its ticket.
fn round(
    rt: &tokio::runtime::Runtime,
    stores: [&Store; 2],
    cfg: &Config,
    tags: [&str; 2],
    n: usize,
) -> [Round; 2] {
    let news = tags.map(|tag| (0..n).map(|i| new_mail(tag, i)).collect::<Vec<_>>());
    let new_tags = tags.map(|tag| format!("{tag}n"));
    let [(new_a, out_a), (new_b, out_b)] = file_both(rt, stores, cfg, &new_tags, &news);
    let numbers = [out_a, out_b].map(|outcomes| {
        outcomes
            .iter()
            .map(|o| match o {
                Outcome::NewTicket { number, .. } => number.clone(),
                other => panic!("a new mail was filed as {}", other.label()),
            })
            .collect::<Vec<String>>()
    });
    let replies = [0, 1].map(|side| {
        numbers[side]
            .iter()
            .enumerate()
            .map(|(i, number)| follow_up(tags[side], i, number))
            .collect::<Vec<_>>()
    });
    let follow_tags = tags.map(|tag| format!("{tag}f"));
    let [(follow_a, out_a), (follow_b, out_b)] = file_both(rt, stores, cfg, &follow_tags, &replies);
    for (outcomes, numbers) in [(out_a, &numbers[0]), (out_b, &numbers[1])] {
        for (o, number) in outcomes.iter().zip(numbers) {
            match o {
                Outcome::FollowUp { number: n, .. } if n == number => {}
                other => panic!("a follow-up to {number} was filed as {other:?}"),
            }
        }
    }
    [
        Round {
            new: new_a,
            follow_ups: follow_a,
        },
        Round {
            new: new_b,
            follow_ups: follow_b,
        },
    ]
}

impl Round {
    /// This round's rates in per cent of `of`'s.
    fn percent_of(&self, of: &Round) -> Round {
        Round {
            new: 100.0 * self.new / of.new,
            follow_ups: 100.0 * self.follow_ups / of.follow_ups,
        }
    }
}

/// The best of the rounds (the machine is shared: the slowest rounds measure the neighbours).
fn best(rounds: &[Round]) -> Round {
    Round {
        new: rounds.iter().map(|r| r.new).fold(0.0, f64::max),
        follow_ups: rounds.iter().map(|r| r.follow_ups).fold(0.0, f64::max),
    }
}

/// All rounds together: their mails over their time (each round files as many). This is what
/// the goal is judged on: work left by one round (moving Message-IDs into the big tier,
/// checkpoints) is paid in a later one, which the best round leaves out.
fn overall(rounds: &[Round]) -> Round {
    let k = rounds.len() as f64;
    Round {
        new: k / rounds.iter().map(|r| 1.0 / r.new).sum::<f64>(),
        follow_ups: k / rounds.iter().map(|r| 1.0 / r.follow_ups).sum::<f64>(),
    }
}

/// The median of `n` runs of `f` after one to warm up, in milliseconds.
fn time_ms<T>(rt: &tokio::runtime::Runtime, n: usize, mut f: impl AsyncFnMut() -> T) -> (f64, T) {
    let mut last = rt.block_on(f());
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        last = rt.block_on(f());
        times.push(t.elapsed());
    }
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    (median.as_secs_f64() * 1000.0, last)
}

/// `target/` of this build: the bench runs from `target/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.ancestors()
        .nth(3)
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| repo().join("target"))
}

/// A store holding `spec`'s tickets; the seconds it took to make (0 when copied from the
/// cache). SQLite: a copy of the cached file in `dir`.
fn full_store(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    spec: &Spec,
    dir: &std::path::Path,
    dbs: &mut Databases,
) -> (Store, f64) {
    let started = Instant::now();
    match backend {
        Backend::Sqlite => {
            let cache = target_dir().join("scale-cache");
            std::fs::create_dir_all(&cache).expect("cache dir");
            let file = cache.join(format!(
                "sqlite-{}-{}.sqlite",
                spec.tickets,
                synthetic::cache_key(backend, &spec.tickets.to_string())
            ));
            let mut made = 0.0;
            if !file.exists() {
                let partial = file.with_extension("partial");
                let _ = std::fs::remove_file(&partial);
                rt.block_on(async {
                    let store = Store::open(&format!("sqlite://{}", partial.display()))
                        .await
                        .expect("sqlite");
                    synthetic::fill(&store, spec).await.expect("fill");
                    store.close().await;
                });
                for ext in ["partial-wal", "partial-shm"] {
                    let _ = std::fs::remove_file(file.with_extension(ext));
                }
                std::fs::rename(&partial, &file).expect("cache");
                made = started.elapsed().as_secs_f64();
            }
            let copy = dir.join("poststelle.sqlite");
            std::fs::copy(&file, &copy).expect("copy");
            // A store at rest, as a desk's is: the copy's gigabytes are written back now, not
            // while the rounds run.
            std::fs::File::open(&copy)
                .and_then(|f| f.sync_all())
                .expect("sync the copy");
            let store = rt
                .block_on(Store::open(&Store::default_url(dir)))
                .expect("sqlite");
            (store, made)
        }
        Backend::Postgres => {
            let store = rt.block_on(async {
                let url = dbs.create().await;
                let store = Store::open(&url).await.expect("postgres");
                synthetic::fill(&store, spec).await.expect("fill");
                store
            });
            (store, started.elapsed().as_secs_f64())
        }
    }
}

fn empty_store(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    dir: &std::path::Path,
    dbs: &mut Databases,
) -> Store {
    rt.block_on(async {
        match backend {
            Backend::Sqlite => Store::open(&Store::default_url(dir)).await.expect("sqlite"),
            Backend::Postgres => Store::open(&dbs.create().await).await.expect("postgres"),
        }
    })
}

/// Milliseconds of the reads on the full store.
#[derive(Debug, Default)]
struct Reads {
    list_first: f64,
    list_deep: f64,
    list_open: f64,
    list_queue_closed: f64,
    tick: f64,
    tick_notices: usize,
    first_tick_notices: usize,
    report_month: f64,
    fingerprint: f64,
    status_inputs: f64,
    /// Hot statements (src/store/hot.rs) whose plan on the full store reads a whole table.
    scans: Vec<String>,
    statements: usize,
}

fn reads(rt: &tokio::runtime::Runtime, store: &Store, cfg: &Config, spec: &Spec) -> Reads {
    use poststelle::ticket::State;
    use poststelle::ticket::ops;
    let mut r = Reads::default();
    let now = Timestamp::now();
    r.first_tick_notices = rt
        .block_on(escalation::escalate_due(store, cfg, now))
        .expect("tick")
        .len();
    let n = 5;
    let (ms, notices) = time_ms(rt, n, async || {
        let written = escalation::escalate_due(store, cfg, now)
            .await
            .expect("tick");
        escalation::next_due(store).await.expect("next");
        written.len()
    });
    (r.tick, r.tick_notices) = (ms, notices);
    let page = |state: Option<State>, queue: Option<&'static str>, after: Option<String>| async move {
        ops::list_tickets(store, state, queue, after.as_deref(), 50)
            .await
            .expect("list")
            .tickets
            .len()
    };
    let middle = synthetic::ticket_number(spec, spec.tickets / 2).expect("number");
    (r.list_first, _) = time_ms(rt, n, async || page(None, None, None).await);
    (r.list_deep, _) = time_ms(rt, n, async || page(None, None, Some(middle.clone())).await);
    (r.list_open, _) = time_ms(rt, n, async || page(Some(State::Open), None, None).await);
    (r.list_queue_closed, _) = time_ms(rt, n, async || {
        page(Some(State::Closed), Some("betrieb"), Some(middle.clone())).await
    });
    let cal = cfg
        .settings
        .sla
        .calendars
        .get("hessen")
        .cloned()
        .expect("hessen");
    let tz = poststelle::time::berlin().expect("tz");
    let today = now.to_zoned(tz).date();
    let from = today.first_of_month().checked_sub(1.month()).expect("date");
    let to = today.first_of_month().yesterday().expect("date");
    (r.report_month, _) = time_ms(rt, n, async || {
        report::report(store, &cal, from, to, 97.5, now)
            .await
            .expect("report")
    });
    let hot = poststelle::store::hot::hot_queries(store.backend());
    r.statements = hot.len();
    for q in &hot {
        let plan = rt.block_on(store.explain(q)).expect("explain");
        let scans = poststelle::store::hot::full_scans(store.backend(), &plan);
        if !scans.is_empty() {
            r.scans.push(format!("{}: {}", q.name, scans.join("; ")));
        }
    }
    (r.fingerprint, _) = time_ms(rt, n, async || {
        poststelle::store::status_page::fingerprint(store)
            .await
            .expect("fingerprint")
    });
    (r.status_inputs, _) = time_ms(rt, n, async || {
        poststelle::status::model::load(store, cfg, now)
            .await
            .expect("status")
            .events
            .len()
    });
    r
}

struct Figures {
    backend: Backend,
    empty: Vec<Round>,
    full: Vec<Round>,
    made_s: f64,
    reads: Reads,
    /// The middle tier's move into the big one, empty store and full: keys and seconds.
    drains: [(u64, f64); 2],
}

/// Moves every key of SQLite's small and middle Message-ID tiers into the big one; the keys
/// that went into the big tier and the seconds the middle tier's part took.
fn drain_middle_tier(rt: &tokio::runtime::Runtime, store: &Store) -> (u64, f64) {
    let limits = |recent, middle| TierLimits {
        recent,
        middle,
        chunk: tickets::MOVE_CHUNK,
    };
    // The small tier into the middle one first (untimed), then the middle one on its own.
    rt.block_on(tickets::move_recent_message_ids(store, limits(0, i64::MAX)))
        .expect("move");
    let started = Instant::now();
    let moved = rt
        .block_on(tickets::move_recent_message_ids(store, limits(i64::MAX, 0)))
        .expect("move");
    (moved.to_big, started.elapsed().as_secs_f64())
}

fn name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

fn run(
    rt: &tokio::runtime::Runtime,
    k: &Knobs,
    cfg: &Config,
    backend: Backend,
    dbs: &mut Databases,
) -> Figures {
    let run_tag = format!("{:x}", fastrand::u64(..));
    // Both stores live through the same rounds, filed taking turns batch by batch: each
    // round's mails are filed on top of the earlier rounds', and round k of the full store is
    // compared with round k of the empty one, filed at the same time. (A new empty store for each round
    // measured the full store's later rounds against a first round: filing 100,000 mails in a
    // row slows down on any store.) The full store comes first: its SQLite file is a copy of
    // gigabytes, and on this VM a page the kernel takes from memory unused for a while costs
    // ~75 µs to write first against ~10 µs (32 KiB, measured with a plain file right after
    // such a copy and without it); when the empty store filed all its rounds before the copy,
    // only the full store grew into that memory.
    let full_dir = tempfile::tempdir().expect("tmp");
    let spec = spec(cfg, k.tickets, Timestamp::now());
    let (full_store, made_s) = full_store(rt, backend, &spec, full_dir.path(), dbs);
    let reads = reads(rt, &full_store, cfg, &spec);
    let empty_dir = tempfile::tempdir().expect("tmp");
    let empty_store = empty_store(rt, backend, empty_dir.path(), dbs);
    let (mut empty, mut full) = (Vec::new(), Vec::new());
    for r in 0..k.rounds {
        let tags = [format!("e{run_tag}{r}"), format!("f{run_tag}{r}")];
        let [e, f] = round(
            rt,
            [&empty_store, &full_store],
            cfg,
            [&tags[0], &tags[1]],
            k.mails,
        );
        empty.push(e);
        full.push(f);
    }
    // The middle tier of SQLite's Message-IDs moves into the big one every 262,144 keys, more
    // than the rounds file: what one such move costs, timed on what the rounds left.
    let drains = [&empty_store, &full_store].map(|store| drain_middle_tier(rt, store));
    rt.block_on(empty_store.close());
    rt.block_on(full_store.close());
    Figures {
        backend,
        empty,
        full,
        made_s,
        reads,
        drains,
    }
}

fn report_figures(k: &Knobs, all: &[Figures]) {
    println!(
        "\nscale: {} mails per round, {} rounds on each store, full store {} tickets, {} articles",
        k.mails,
        k.rounds,
        k.tickets,
        k.tickets * synthetic::ARTICLES_PER_TICKET
    );
    for f in all {
        let (e, full) = (overall(&f.empty), overall(&f.full));
        println!(
            "\n{} (full store made in {:.0} s{}), all rounds together",
            name(f.backend),
            f.made_s,
            if f.made_s == 0.0 {
                ", from the cache"
            } else {
                ""
            }
        );
        println!(
            "  new mails   empty {:>7.0}/s  full {:>7.0}/s  = {:>5.1} %  (goal ≥ 80 %)",
            e.new,
            full.new,
            full.percent_of(&e).new
        );
        println!(
            "  follow-ups  empty {:>7.0}/s  full {:>7.0}/s  = {:>5.1} %  (goal ≥ 80 %)",
            e.follow_ups,
            full.follow_ups,
            full.percent_of(&e).follow_ups
        );
        let rounds = |v: &[Round]| {
            v.iter()
                .map(|r| format!("{:.0}/{:.0}", r.new, r.follow_ups))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "  rounds (new/follow-ups per s): empty {}; full {}",
            rounds(&f.empty),
            rounds(&f.full)
        );
        let ratios = f
            .empty
            .iter()
            .zip(&f.full)
            .map(|(e, full)| {
                let p = full.percent_of(e);
                format!("{:.0}/{:.0}", p.new, p.follow_ups)
            })
            .collect::<Vec<_>>()
            .join(" ");
        println!("  full/empty round by round (new/follow-ups, %): {ratios}");
        let p = best(&f.full).percent_of(&best(&f.empty));
        println!(
            "  best rounds: new mails {:.1} %, follow-ups {:.1} %",
            p.new, p.follow_ups
        );
        if f.backend == Backend::Sqlite {
            let [(empty_keys, empty_s), (full_keys, full_s)] = f.drains;
            // Each mail of the rounds brings one Message-ID; a move every MIDDLE_MESSAGE_IDS.
            let share = |rounds: &[Round], drain_s: f64| {
                let mails = (2 * k.mails * rounds.len()) as f64;
                let filing: f64 = rounds
                    .iter()
                    .map(|r| k.mails as f64 / r.new + k.mails as f64 / r.follow_ups)
                    .sum();
                mails / (filing + drain_s * mails / tickets::MIDDLE_MESSAGE_IDS as f64)
            };
            let (e, full) = (share(&f.empty, empty_s), share(&f.full, full_s));
            println!(
                "  the middle Message-ID tier's move into the big one (every {} keys; not in the \
                 rates above): empty store {empty_keys} keys in {empty_s:.2} s, full store \
                 {full_keys} keys in {full_s:.2} s; all mails of all rounds with their share of \
                 it: empty {e:.0}/s, full {full:.0}/s = {:.1} %",
                tickets::MIDDLE_MESSAGE_IDS,
                100.0 * full / e
            );
        }
        let r = &f.reads;
        println!(
            "  on the full store: tickets list --limit 50: first page {:.1} ms, from the middle \
             {:.1} ms, --state open {:.1} ms, --state closed --queue betrieb from the middle \
             {:.1} ms (goal < 50 ms)",
            r.list_first, r.list_deep, r.list_open, r.list_queue_closed
        );
        println!(
            "  SLA tick {:.1} ms ({} notices; the first tick wrote {}) (goal < 50 ms)",
            r.tick, r.tick_notices, r.first_tick_notices
        );
        println!(
            "  availability report of last month {:.1} ms; status page fingerprint {:.2} ms, \
             inputs {:.1} ms",
            r.report_month, r.fingerprint, r.status_inputs
        );
        println!(
            "  plans of the {} hot statements on the full store: {}",
            r.statements,
            if r.scans.is_empty() {
                "no full scan".to_string()
            } else {
                format!("full scans in {}", r.scans.join(" | "))
            }
        );
    }
}

fn main() {
    let k = Knobs::read();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = runtime();
    let cfg_dir = tempfile::tempdir().expect("tmp");
    let cfg = config(cfg_dir.path());
    let mut dbs = Databases {
        names: Vec::new(),
        serial: 0,
    };
    let mut all = Vec::new();
    for &backend in &k.backends {
        all.push(run(&rt, &k, &cfg, backend, &mut dbs));
    }
    rt.block_on(dbs.drop_all());
    if k.measuring {
        report_figures(&k, &all);
    }
}
