//! The store: SQLite (the embedded default, one file, WAL) or PostgreSQL (several instances),
//! behind sqlx's `Any` driver with runtime queries. This module is the only place that knows
//! which backend is in use; the rest of the crate writes SQL that both accept (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`) and asks [`Store::backend`] where they differ.
/// The ids of the outbox rows still to be sent, read from the claims' two partial indexes
/// (migration 0012): the outbox keeps no index on its state of its own, so that recording a
/// sent mail changes as few pages as it can (0027). Each half repeats its index's predicate,
/// which SQLite needs to use a partial index.
macro_rules! pending_outbox_ids {
    () => {
        "SELECT id FROM outbox WHERE list_id IS NULL \
         AND state IN ('scheduled', 'temporary_failure') UNION ALL \
         SELECT id FROM outbox WHERE list_id IS NOT NULL \
         AND state IN ('scheduled', 'temporary_failure')"
    };
}

pub mod alerts;
pub mod announcements;
pub mod audit;
pub mod backup;
pub mod buffer;
mod daemon;
pub mod handover;
pub mod hot;
pub mod incidents;
pub mod lists;
pub mod marks;
pub mod notices;
pub mod outbox;
pub mod privacy;
pub mod problems;
pub mod raw;
pub mod relay;
pub mod retention;
pub mod sla;
pub mod status;
pub mod status_page;
pub mod synthetic;
pub mod tickets;

pub use daemon::{LockError, MailboxState, TakenOver};

use crate::diag::{Problem, Wanted};

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a connection talks to.
    pub fn of(conn: &AnyConnection) -> Backend {
        if conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the database schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    Url(String),
    /// A command that only works on an existing store found none.
    #[error("there is no poststelle store at {0}")]
    NoStore(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The database cannot be used, said for the person who can change that: the SQLite file
    /// or its directory, the PostgreSQL server.
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error("service level: {0}")]
    Sla(#[from] crate::sla::SlaError),
    #[error("stored instant out of range: {0}")]
    Time(#[from] jiff::Error),
    /// A batch wrote more rows than it reserved ids for: a bug, never the input's fault.
    #[error("internal error: no id reserved for a new row in {0}")]
    IdsExhausted(&'static str),
    /// A caller's rows do not fit together: a bug, never the input's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A connection pool on the configured database, schema migrated.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    sqlite_file: Option<std::path::PathBuf>,
    /// A background WAL checkpoint is running (SQLite).
    checkpointing: Arc<AtomicBool>,
    /// SQLite: this process's writers take turns here, in the order they came. SQLite's own
    /// busy handler polls with sleeps of up to 100 ms, and a writer that commits and begins
    /// again at once wins nearly every time: beside a busy mailbox, the sender's updates
    /// waited more than a second for the lock.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// SQLite: transactions ([`Store::begin_write`]) line up here before they join the write
    /// gate, so at most one of them waits at the gate at a time. Single statements (the
    /// sender recording a mail as sent, leases, mailbox state) join the gate directly and wait
    /// for at most one transaction, not for every batch of every mailbox queued before them:
    /// the time between a mail's hand-over and its "sent" record is the window in which a
    /// crash sends it twice.
    transactions: Arc<tokio::sync::Mutex<()>>,
    /// PostgreSQL: how much the filing has grown the store since the planner's statistics were
    /// last renewed ([`Store::analyze_as_grown`]).
    growth: Arc<Growth>,
    /// SQLite file: the hand-over marks' database beside it, opened when first needed.
    marks: Arc<std::sync::OnceLock<marks::Marks>>,
    marks_opening: Arc<tokio::sync::Mutex<()>>,
}

/// Mails filed since the planner's statistics were renewed, and how many more may come first.
#[derive(Debug, Default)]
struct Growth {
    filed: AtomicU64,
    /// 0 until the store's size has been looked at.
    due: AtomicU64,
    running: AtomicBool,
}

/// The planner's statistics are renewed once the filing has added this many mails to a store
/// (or half as many as it had articles, when that is more).
pub const ANALYZE_AFTER_MAILS: u64 = 1_000;

/// A write transaction ([`Store::begin_write`]); on SQLite it holds the write gate.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<(
        tokio::sync::OwnedMutexGuard<()>,
        tokio::sync::OwnedMutexGuard<()>,
    )>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    /// Undoes the transaction (a dry run); dropping it does the same, later.
    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// How long opening the database, or a connection from the pool, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens (creating if need be) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// A pool on `url`, the schema as it is.
    async fn connect(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(Store::display_url(url)));
        };
        let options = AnyPoolOptions::new().acquire_timeout(CONNECT_TIMEOUT);
        let pool = match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_path(url).map(Path::new) {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            Problem::at_path(
                                "create the directory of the database file",
                                dir,
                                Wanted::Directory,
                                &e,
                            )
                        })?;
                    }
                    sqlite_preflight(path)?;
                }
                // SQLite has one writer at a time: more connections only add lock waits.
                // Pages of 32 KiB (default 4 KiB; set before the file's first table, ignored
                // for an existing file): a mail is a few KB to a few hundred, stored in
                // overflow pages, and SQLite writes the WAL a page per system call; with
                // 32 KiB pages filing 10,000 mails (benches/ingest.rs) took 1.5 instead of
                // 2.4 s of system time, about 15 % less CPU in all.
                // A batch of mail dirties megabytes of pages: a page cache of 8 MiB per
                // connection (default 2 MiB; with 16 MiB the daemon's peak RSS went from
                // 62 to 117 MB once the sender worked beside it) holds them until the commit
                // instead of spilling them to the WAL mid-transaction and reading them back;
                // statement journals of multi-row INSERTs stay in memory; and the WAL is
                // copied back into the database every 1,280 pages (~40 MiB) instead of every
                // 4 MiB, i.e. not after every batch, each copy costing two fsyncs.
                // secure_delete: what is deleted or overwritten (retention, `privacy erase`) is
                // overwritten with zeros in the file at once, so that it leaves the disk without
                // a VACUUM (issue 20). Filing deletes next to nothing, so it costs it nothing
                // measurable; see README "Retention and data subject requests" for the figures.
                // `sqlite::memory:` through sqlx's Any driver is a new, empty database on
                // every connection (the URL is parsed again for each): one connection, kept
                // for the store's whole life, is the database (tests, the fuzz targets).
                let options = if sqlite_path(url).is_none() {
                    options
                        .max_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    options.max_connections(4)
                };
                options
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA page_size = 32768; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                                 PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY; \
                                 PRAGMA wal_autocheckpoint = 1280; PRAGMA secure_delete = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&with_create_mode(url))
                    .await?
            }
            Backend::Postgres => {
                // One connection on its own first: the pool retries a refused connection or a
                // failed login until its acquire timeout and then reports only the timeout.
                let first = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(url))
                    .await
                    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
                    .map_err(|e| postgres_connect_error(url, e))?;
                let _ = first.close().await;
                options.max_connections(8).connect(url).await?
            }
        };
        let store = Store {
            pool,
            backend,
            sqlite_file: sqlite_path(url).map(Into::into),
            checkpointing: Arc::new(AtomicBool::new(false)),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            transactions: Arc::new(tokio::sync::Mutex::new(())),
            growth: Arc::default(),
            marks: Arc::default(),
            marks_opening: Arc::default(),
        };
        Ok(store)
    }

    /// Brings the schema up to date.
    async fn migrate(&self) -> Result<(), StoreError> {
        let store = self;
        match self.backend {
            Backend::Sqlite => {
                // sqlx takes no lock around SQLite migrations: two processes opening a new
                // file at once both try to apply them, and the loser fails. Once the winner is
                // done, running them again finds everything applied.
                let mut tries = 0;
                loop {
                    match SQLITE_MIGRATIONS.run(&store.pool).await {
                        Ok(()) => break,
                        Err(_) if tries < 5 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // PostgreSQL migrations run under an advisory lock.
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&store.pool).await?,
        }
        Ok(())
    }

    /// Opens the store at `url` only if it exists: commands that read or change what is there
    /// must not leave an empty store (and the directories to it) behind a typo.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = sqlite_path(url) {
            match Path::new(path).metadata() {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(StoreError::NoStore(path.to_string())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StoreError::NoStore(path.to_string()));
                }
                Err(e) => {
                    return Err(Problem::at_path(
                        "open the database file",
                        Path::new(path),
                        Wanted::File,
                        &e,
                    )
                    .into());
                }
            }
        }
        let store = Store::connect(url).await?;
        if store.backend == Backend::Postgres {
            let found: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'tickets')",
            )
            .fetch_one(&store.pool)
            .await?;
            if !found {
                store.close().await;
                return Err(StoreError::NoStore(Store::display_url(url)));
            }
        }
        store.migrate().await?;
        Ok(store)
    }

    /// `url` for messages and logs: a password in it replaced by `***`.
    pub fn display_url(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rsplit_once('@') {
            Some((user_info, host)) if user_info.contains(':') => {
                let user = user_info.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
            }
            _ => url.to_string(),
        }
    }

    /// The default database: `poststelle.sqlite` in the data directory.
    pub fn default_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("poststelle.sqlite").display())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database file when the store is SQLite.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once, so two writers
    /// never deadlock upgrading read locks; PostgreSQL locks rows as it goes.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let line = Arc::clone(&self.transactions).lock_owned().await;
                let gate = Arc::clone(&self.write_gate).lock_owned().await;
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _gate: Some((gate, line)),
                }
            }
            Backend::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                _gate: None,
            },
        })
    }

    /// On SQLite, a single write outside [`Store::begin_write`] waits its turn with this held,
    /// ahead of transactions that have not reached the gate yet; `None` on PostgreSQL, which
    /// locks rows. Never while holding a [`WriteTx`]: the gate is not reentrant.
    pub async fn write_gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(Arc::clone(&self.write_gate).lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// After a large write on SQLite: copies the WAL back into the database on another
    /// connection, in the background, so that the next write transaction need not wait for it
    /// (a checkpoint costs two fsyncs; SQLite's automatic one runs in the committing
    /// connection). A passive checkpoint never blocks readers or writers; at most one runs at
    /// a time. Nothing to do on PostgreSQL. Needs a Tokio runtime.
    pub fn checkpoint_in_background(&self) {
        // An in-memory database has no WAL to copy back.
        if self.backend != Backend::Sqlite
            || self.sqlite_file.is_none()
            || self.checkpointing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let pool = self.pool.clone();
        let running = Arc::clone(&self.checkpointing);
        tokio::spawn(async move {
            if let Err(e) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::debug!(error = %e, "background WAL checkpoint failed");
            }
            running.store(false, Ordering::Release);
        });
    }

    /// After filing `mails` on PostgreSQL: renews the planner's statistics in the background
    /// once the filing has grown the store by half (at least [`ANALYZE_AFTER_MAILS`]) since
    /// they were last renewed. Autovacuum renews them only after a minute's nap and on its own
    /// thresholds; until then a store that began empty keeps the estimates of an empty one,
    /// and the follow-up lookup read every ticket for each batch (its follow-ups fell from
    /// 2,400 to 1,200 a second over 30,000 mails). Never blocks filing; at most one runs at a
    /// time. Nothing to do on SQLite, which plans without statistics. Needs a Tokio runtime.
    pub fn analyze_as_grown(&self, mails: u64) {
        if self.backend != Backend::Postgres {
            return;
        }
        let growth = &self.growth;
        let filed = growth.filed.fetch_add(mails, Ordering::AcqRel) + mails;
        if filed < growth.due.load(Ordering::Acquire).max(ANALYZE_AFTER_MAILS)
            || growth.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let pool = self.pool.clone();
        let growth = Arc::clone(&self.growth);
        tokio::spawn(async move {
            if let Err(error) = renew_statistics(&pool, &growth).await {
                tracing::warn!(%error, "renewing PostgreSQL's planner statistics failed; tried again after as many mails");
                growth.filed.store(0, Ordering::Release);
            }
            growth.running.store(false, Ordering::Release);
        });
    }

    /// Whether the database answers at all.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(m) = self.marks.get() {
            m.close().await;
        }
        self.pool.close().await;
    }
}

/// The articles PostgreSQL's statistics count, 0 before they have been taken.
const ARTICLES_ESTIMATE: &str =
    "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'articles'::regclass";

/// [`Store::analyze_as_grown`]'s work: the first time, only the store's size is looked at (a
/// daemon started on a big store need not renew anything); then `ANALYZE` when the filing has
/// grown the store by half.
async fn renew_statistics(pool: &AnyPool, growth: &Growth) -> Result<(), StoreError> {
    let due = |articles: i64| (articles.max(0) as u64 / 2).max(ANALYZE_AFTER_MAILS);
    if growth.due.load(Ordering::Acquire) == 0 {
        let articles: i64 = sqlx::query_scalar(ARTICLES_ESTIMATE)
            .fetch_one(pool)
            .await?;
        growth.due.store(due(articles), Ordering::Release);
        if growth.filed.load(Ordering::Acquire) < due(articles) {
            return Ok(());
        }
    }
    let started = std::time::Instant::now();
    pool.execute("ANALYZE").await?;
    let articles: i64 = sqlx::query_scalar(ARTICLES_ESTIMATE)
        .fetch_one(pool)
        .await?;
    growth.filed.store(0, Ordering::Release);
    growth.due.store(due(articles), Ordering::Release);
    tracing::info!(
        articles,
        ms = started.elapsed().as_millis() as u64,
        "PostgreSQL's planner statistics renewed after the store grew"
    );
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Checks that SQLite will be able to use the database file at `path`, before it tries: it
/// needs to read and write the file and to create files beside it (the database itself, its
/// journal `-wal` and `-shm`). SQLite would say only "unable to open database file", and a
/// file it can only read fails in every new connection until the pool gives up after 30 s.
fn sqlite_preflight(path: &Path) -> Result<(), Problem> {
    use std::io::Read;
    let cannot_open =
        |e: &std::io::Error| Problem::at_path("open the database file", path, Wanted::File, e);
    match path.metadata() {
        Ok(m) if m.is_dir() => {
            return Err(Problem {
                message: format!(
                    "cannot open the database file {}: it is a directory",
                    path.display()
                ),
                fix: "name a file in database_url, or move the directory away".into(),
            });
        }
        Ok(_) => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| cannot_open(&e))?;
            // SQLite takes an empty file for a new database; anything else must begin with its
            // header, or every new connection fails ("file is not a database") until the
            // pool gives up after 30 s.
            let mut head = Vec::with_capacity(16);
            let _ = file.take(16).read_to_end(&mut head);
            if !head.is_empty() && head != b"SQLite format 3\0" {
                return Err(Problem {
                    message: format!(
                        "cannot open the database file {}: it is not a SQLite database",
                        path.display()
                    ),
                    fix: "restore the file from a backup (see the README's \"Backup and \
                          restore\"), or move it away if it is not poststelle's"
                        .into(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot_open(&e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Unique within the process too: stores on one file may be opened at once.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let probe = dir.join(format!(
        ".poststelle-probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Problem::at_path(
            "create the database file and its journal (-wal, -shm) in",
            dir,
            Wanted::Directory,
            &e,
        )),
    }
}

/// Why PostgreSQL at `url` could not be reached or refused us: the server (never the
/// password) and what to check.
fn postgres_connect_error(url: &str, err: sqlx::Error) -> StoreError {
    let Ok(opts) = PgConnectOptions::from_str(url) else {
        return err.into();
    };
    let server = match opts.get_socket() {
        Some(dir) => format!("PostgreSQL at the socket in {}", dir.display()),
        None => format!("PostgreSQL at {}:{}", opts.get_host(), opts.get_port()),
    };
    let user = opts.get_username();
    let database = opts.get_database().unwrap_or(user);
    let reach = format!(
        "check that it runs and listens there (`pg_isready -h {} -p {}`; listen_addresses and \
         port in postgresql.conf), that no firewall is in between, and host and port in \
         database_url",
        opts.get_host(),
        opts.get_port()
    );
    let (message, fix) = match &err {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            format!("cannot connect to {server}: connection refused"),
            reach,
        ),
        sqlx::Error::Io(e) => (format!("cannot connect to {server}: {e}"), reach),
        sqlx::Error::PoolTimedOut => (
            format!(
                "cannot connect to {server}: no answer within {} seconds",
                CONNECT_TIMEOUT.as_secs()
            ),
            reach,
        ),
        sqlx::Error::Tls(e) => (
            format!("cannot connect to {server}: TLS failed: {e}"),
            "check sslmode (and sslrootcert) in database_url against the server's ssl settings"
                .into(),
        ),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification (pg_hba.conf, no role)
            Some("28P01" | "28000") => (
                format!("{server} refused user {user:?}: {}", db.message()),
                format!(
                    "check user and password in database_url (or $PGPASSWORD, ~/.pgpass), that \
                     the role {user:?} exists, and that pg_hba.conf on the server lets it \
                     connect to the database {database:?} from this host"
                ),
            ),
            // invalid_catalog_name
            Some("3D000") => (
                format!("{server} has no database {database:?}"),
                format!(
                    "create it (`createdb -h {} -p {} -O {user} {database}`) or correct the \
                     database name in database_url",
                    opts.get_host(),
                    opts.get_port()
                ),
            ),
            _ => return err.into(),
        },
        _ => return err.into(),
    };
    StoreError::Problem(Problem { message, fix })
}

fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Bound parameters per statement. SQLite takes at most 32,766, PostgreSQL 65,535; batched
/// statements stay well below both and are split where they would not.
pub const MAX_PARAMS: usize = 16_000;

/// `FOR UPDATE` on PostgreSQL, where two instances may change one row at once (two
/// resolutions or cancellations must not both announce); SQLite's write transaction holds the
/// whole database.
pub(crate) fn for_update(conn: &AnyConnection) -> &'static str {
    match Backend::of(conn) {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// `n` comma-separated placeholders for the parameters at positions `first`, `first + 1`, …
/// (1-based). SQLite gets `?`, bound by position: sqlx looks `$n` up by name there, which is
/// quadratic in the number of parameters. A statement must not mix the two forms.
pub fn placeholders(backend: Backend, first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        match backend {
            Backend::Sqlite => s.push('?'),
            Backend::Postgres => {
                s.push('$');
                s.push_str(&(first + i).to_string());
            }
        }
    }
    s
}

/// The statement of [`reserve_ids`] for `tables` (each asked for at least one id): SQLite the
/// largest id of each, PostgreSQL `$k` values of each table's sequence.
pub(crate) fn reserve_ids_sql(backend: Backend, tables: &[(&'static str, usize)]) -> String {
    match backend {
        Backend::Sqlite => {
            let columns: Vec<String> = tables
                .iter()
                .map(|(t, _)| format!("(SELECT COALESCE(MAX(id), 0) FROM {t})"))
                .collect();
            format!("SELECT {}", columns.join(", "))
        }
        Backend::Postgres => tables
            .iter()
            .enumerate()
            .map(|(c, (t, _))| {
                format!(
                    "SELECT CAST({c} AS BIGINT) AS tbl, nextval('{t}_id_seq') AS id \
                     FROM generate_series(1, ${})",
                    c + 1
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL "),
    }
}

/// Reserves `n` ids in each of the given tables (whose `id` is an `INTEGER PRIMARY KEY` on
/// SQLite and a `BIGSERIAL` on PostgreSQL), in the caller's write transaction, so that rows
/// referring to each other can be written with multi-row INSERTs without reading ids back.
/// Returns the ids per table, ascending.
///
/// SQLite: the transaction holds the database's only write lock, so the ids after the
/// current maximum stay free until it commits. PostgreSQL: `nextval`, safe however many
/// instances file at once (ids left unused are gaps, as after any rollback).
pub async fn reserve_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    wanted: &[(&'static str, usize)],
) -> Result<Vec<Vec<i64>>, StoreError> {
    let mut out: Vec<Vec<i64>> = wanted.iter().map(|(_, n)| Vec::with_capacity(*n)).collect();
    let asked: Vec<usize> = (0..wanted.len()).filter(|&i| wanted[i].1 > 0).collect();
    if asked.is_empty() {
        return Ok(out);
    }
    let asked_tables: Vec<(&'static str, usize)> = asked.iter().map(|&i| wanted[i]).collect();
    // Table names are compile-time constants.
    let sql = sqlx::AssertSqlSafe(reserve_ids_sql(backend, &asked_tables));
    match backend {
        Backend::Sqlite => {
            let row = sqlx::query(sql).fetch_one(&mut *conn).await?;
            for (c, &i) in asked.iter().enumerate() {
                let max: i64 = row.try_get(c)?;
                out[i].extend((1..=wanted[i].1 as i64).map(|k| max + k));
            }
        }
        Backend::Postgres => {
            let mut q = sqlx::query(sql);
            for &i in &asked {
                q = q.bind(wanted[i].1 as i64);
            }
            for row in q.fetch_all(&mut *conn).await? {
                // `tbl` counts the tables asked for, in order.
                let (c, id): (i64, i64) = (row.try_get("tbl")?, row.try_get("id")?);
                if let Some(ids) = usize::try_from(c)
                    .ok()
                    .and_then(|c| asked.get(c))
                    .and_then(|&i| out.get_mut(i))
                {
                    ids.push(id);
                }
            }
            for ids in &mut out {
                ids.sort_unstable();
            }
        }
    }
    Ok(out)
}

/// Now, in UTC microseconds since the epoch: the one unit instants are stored in.
pub fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}
