//! The store: SQLite (the embedded default, one file, WAL) or PostgreSQL (several instances),
//! behind sqlx's `Any` driver with runtime queries. This module is the only place that knows
//! which backend is in use; the rest of the crate writes SQL that both accept (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`) and asks [`Store::backend`] where they differ.
pub mod buffer;
mod daemon;

pub use daemon::MailboxState;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the database schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    Url(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("service level: {0}")]
    Sla(#[from] crate::sla::SlaError),
    #[error("stored instant out of range: {0}")]
    Time(#[from] jiff::Error),
}

/// A connection pool on the configured database, schema migrated.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    sqlite_file: Option<std::path::PathBuf>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens (creating if need be) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_path(url)
                    && let Some(dir) = Path::new(path).parent()
                {
                    std::fs::create_dir_all(dir)?;
                }
                // SQLite has one writer at a time: more connections only add lock waits.
                options
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&with_create_mode(url))
                    .await?
            }
            Backend::Postgres => options.max_connections(8).connect(url).await?,
        };
        let store = Store {
            pool,
            backend,
            sqlite_file: sqlite_path(url).map(Into::into),
        };
        match backend {
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
        Ok(store)
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
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
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

/// Now, in UTC microseconds since the epoch: the one unit instants are stored in.
pub fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}
