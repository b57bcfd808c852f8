//! Backup and restore check (issue 20, item 3).
//!
//! SQLite: `VACUUM INTO` writes a consistent copy of the store while the daemon runs — it
//! reads one snapshot (WAL mode: writers go on meanwhile, nothing waits for it) and writes a
//! compact file of its own (no `-wal`, free pages left out). It goes to `DEST.partial`, is
//! synced, and is renamed to `DEST` only when complete, so a `DEST` that exists is whole.
//!
//! PostgreSQL is backed up with its own tools (`pg_dump`), which take the same kind of
//! snapshot; [`check`] verifies a restored database as it verifies a copied file.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::{AnyConnection, Connection, Row};

use super::{Backend, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0} exists; a backup never overwrites: name a new file, or move the old one away")]
    Exists(PathBuf),
    #[error(
        "the store is PostgreSQL ({url}): back it up with its own tool, which takes a consistent \
         snapshot while poststelle runs:\n  pg_dump --format=custom --file={dest} '{url}'\n\
         restore it into a new database with\n  createdb NEWDB && pg_restore --no-owner \
         --dbname=NEWDB {dest}\nand check it with `poststelle restore-check postgres://…/NEWDB` \
         (README \"Backup and restore\")"
    )]
    Postgres { url: String, dest: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no database file at {0}")]
    NoFile(PathBuf),
}

/// What a backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Backup {
    pub dest: PathBuf,
    pub bytes: u64,
    pub tickets: i64,
    pub seconds: f64,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the SQLite store to `dest` (which must not exist) while it is in use.
pub async fn backup(store: &Store, url: &str, dest: &Path) -> Result<Backup, BackupError> {
    if store.backend() == Backend::Postgres {
        return Err(BackupError::Postgres {
            url: Store::display_url(url),
            dest: dest.display().to_string(),
        });
    }
    let started = Instant::now();
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // Left by a backup that was interrupted: never a complete copy.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing the unfinished", &partial)(e)),
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("creating the directory", dir))?;
    }
    sqlx::query("VACUUM INTO $1")
        .bind(partial.to_string_lossy().into_owned())
        .execute(store.pool())
        .await
        .map_err(StoreError::from)?;
    // SQLite does not sync the file VACUUM INTO writes.
    let file = std::fs::File::open(&partial).map_err(io("opening", &partial))?;
    file.sync_all().map_err(io("syncing", &partial))?;
    let bytes = file.metadata().map_err(io("reading", &partial))?.len();
    drop(file);
    let tickets = {
        let mut conn = AnyConnection::connect(&read_only_url(&partial))
            .await
            .map_err(StoreError::from)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tickets")
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::from)?;
        let _ = conn.close().await;
        n
    };
    std::fs::rename(&partial, dest).map_err(io("renaming the copy to", dest))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        // The rename itself must survive a crash too.
        let _ = d.sync_all();
    }
    Ok(Backup {
        dest: dest.to_path_buf(),
        bytes,
        tickets,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A SQLite file opened so that nothing is written to it (nor beside it).
fn read_only_url(path: &Path) -> String {
    format!("sqlite://{}?mode=ro", path.display())
}

/// One migration's state in a checked copy.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Migrations {
    /// Applied and known to this poststelle, with the same text.
    pub applied: usize,
    /// Known to this poststelle.
    pub known: usize,
    /// Not applied in the copy: it is older than this poststelle (which applies them when it
    /// opens it).
    pub missing: Vec<i64>,
    /// Applied in the copy, unknown here: made by a newer poststelle.
    pub unknown: Vec<i64>,
    /// Applied with another text than this poststelle's.
    pub changed: Vec<i64>,
    /// Recorded as failed.
    pub failed: Vec<i64>,
}

/// What [`check`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub target: String,
    pub backend: &'static str,
    /// No problems (warnings allowed).
    pub ok: bool,
    /// SQLite's `integrity_check` ("ok"), or on PostgreSQL "read": every table read whole.
    pub integrity: String,
    pub foreign_key_violations: i64,
    pub migrations: Migrations,
    /// Rows per table, and mail bytes kept.
    pub counts: BTreeMap<String, i64>,
    pub newest_ticket: Option<String>,
    pub newest_ticket_created: Option<jiff::Timestamp>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Tables whose rows [`check`] counts.
const COUNTED: [&str; 9] = [
    "tickets",
    "articles",
    "raw_messages",
    "outbox",
    "audit",
    "participants",
    "lists",
    "list_members",
    "incidents",
];

/// Opens a copy — a SQLite file (read-only, the original never touched) or a PostgreSQL
/// database restored from a dump (`postgres://…`) — and verifies it: integrity, foreign keys,
/// migrations against this poststelle's, and counts.
pub async fn check(target: &str) -> Result<Check, BackupError> {
    sqlx::any::install_default_drivers();
    let postgres = target.starts_with("postgres:") || target.starts_with("postgresql:");
    let (url, shown) = if postgres {
        (target.to_string(), Store::display_url(target))
    } else {
        let path = Path::new(target.strip_prefix("sqlite://").unwrap_or(target));
        if !path.is_file() {
            return Err(BackupError::NoFile(path.to_path_buf()));
        }
        (read_only_url(path), path.display().to_string())
    };
    let mut conn = AnyConnection::connect(&url)
        .await
        .map_err(StoreError::from)?;
    let mut c = Check {
        target: shown,
        backend: if postgres { "postgres" } else { "sqlite" },
        ok: false,
        integrity: String::new(),
        foreign_key_violations: 0,
        migrations: Migrations::default(),
        counts: BTreeMap::new(),
        newest_ticket: None,
        newest_ticket_created: None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let result = inspect(&mut conn, postgres, &mut c).await;
    let _ = conn.close().await;
    result?;
    c.ok = c.problems.is_empty();
    Ok(c)
}

async fn inspect(
    conn: &mut AnyConnection,
    postgres: bool,
    c: &mut Check,
) -> Result<(), StoreError> {
    if postgres {
        c.integrity = "read".into();
    } else {
        let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut *conn)
            .await?;
        c.integrity = lines.join("; ");
        if lines != ["ok"] {
            c.problems.push(format!(
                "integrity_check: {}",
                lines.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ));
        }
        let fk = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut *conn)
            .await?;
        c.foreign_key_violations = fk.len() as i64;
        if !fk.is_empty() {
            c.problems.push(format!(
                "{} row(s) refer to rows that are not there (PRAGMA foreign_key_check)",
                fk.len()
            ));
        }
    }
    let has_migrations: bool = if postgres {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations')",
        )
        .fetch_one(&mut *conn)
        .await?
    } else {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *conn)
        .await?
            > 0
    };
    if !has_migrations {
        c.problems
            .push("no record of migrations (_sqlx_migrations): this is no poststelle store".into());
        return Ok(());
    }
    // `success` is a boolean, which sqlx's Any driver does not read from SQLite.
    let applied: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT), checksum \
         FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    let migrator = if postgres {
        &POSTGRES_MIGRATIONS
    } else {
        &SQLITE_MIGRATIONS
    };
    let known: BTreeMap<i64, &[u8]> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    let m = &mut c.migrations;
    m.known = known.len();
    for (version, success, checksum) in &applied {
        match known.get(version) {
            None => m.unknown.push(*version),
            Some(_) if *success == 0 => m.failed.push(*version),
            Some(k) if *k != checksum.as_slice() => m.changed.push(*version),
            Some(_) => m.applied += 1,
        }
    }
    m.missing = known
        .keys()
        .filter(|v| !applied.iter().any(|(a, _, _)| a == *v))
        .copied()
        .collect();
    if !m.unknown.is_empty() {
        c.problems.push(format!(
            "migration(s) {:?} are not known to this poststelle: the copy was made by a newer \
             version; check and restore it with that version",
            m.unknown
        ));
    }
    if !m.changed.is_empty() {
        c.problems.push(format!(
            "migration(s) {:?} were applied with another text than this poststelle's",
            m.changed
        ));
    }
    if !m.failed.is_empty() {
        c.problems.push(format!(
            "migration(s) {:?} are recorded as failed",
            m.failed
        ));
    }
    if !m.missing.is_empty() {
        c.warnings.push(format!(
            "migration(s) {:?} are not applied: the copy is older than this poststelle, which \
             applies them when it opens the restored store",
            m.missing
        ));
    }
    c.counts = count_rows(&mut *conn, &mut c.problems).await?;
    if postgres {
        // Reading every row of the tables that hold mail makes PostgreSQL check their pages
        // (and checksums, where the cluster has them); COUNT(*) alone may use an index.
        for (table, column) in [("raw_messages", "bytes"), ("articles", "body")] {
            let r: Result<i64, sqlx::Error> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COALESCE(SUM(length({column})), 0) AS BIGINT) FROM {table}"
            )))
            .fetch_one(&mut *conn)
            .await;
            if let Err(e) = r {
                c.problems.push(format!("reading {table}: {e}"));
            }
        }
    }
    if let Some(row) =
        sqlx::query("SELECT number, created_at FROM tickets ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
    {
        c.newest_ticket = Some(row.try_get("number")?);
        c.newest_ticket_created =
            jiff::Timestamp::from_microsecond(row.try_get("created_at")?).ok();
    }
    Ok(())
}

/// Rows per table of [`COUNTED`], the mail bytes kept and the quarantined mail. A table that
/// cannot be counted is one of `problems`, not an error: a damaged copy still shows the rest.
async fn count_rows(
    conn: &mut AnyConnection,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut counts = BTreeMap::new();
    for table in COUNTED {
        // Table names are the constants above.
        let n: Result<i64, sqlx::Error> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await;
        match n {
            Ok(n) => {
                counts.insert(table.to_string(), n);
            }
            Err(e) => problems.push(format!("counting {table}: {e}")),
        }
    }
    let bytes: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(length(bytes)), 0) AS BIGINT) FROM raw_messages",
    )
    .fetch_one(&mut *conn)
    .await?;
    counts.insert("raw_mail_bytes".into(), bytes);
    let quarantined: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages WHERE outcome = 'quarantined'")
            .fetch_one(&mut *conn)
            .await?;
    counts.insert("quarantined".into(), quarantined);
    Ok(counts)
}

/// What `restore-check` counts in a copy ([`Check::counts`]), on `conn` (inside a
/// transaction: what it wrote so far counts): filing a message again must change none of it.
pub async fn counts(conn: &mut AnyConnection) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut problems = Vec::new();
    let counts = count_rows(conn, &mut problems).await?;
    match problems.into_iter().next() {
        None => Ok(counts),
        Some(p) => Err(StoreError::Internal(p)),
    }
}

impl Store {
    /// [`counts`] of this store.
    pub async fn counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        counts(&mut *self.pool().acquire().await?).await
    }
}

/// The ticket numbers of a copy (for tests and `restore-check --numbers`).
pub async fn ticket_numbers(target: &str) -> Result<Vec<String>, BackupError> {
    sqlx::any::install_default_drivers();
    let url = if target.starts_with("postgres") {
        target.to_string()
    } else {
        read_only_url(Path::new(target))
    };
    let mut conn = AnyConnection::connect(&url)
        .await
        .map_err(StoreError::from)?;
    let n = sqlx::query_scalar("SELECT number FROM tickets ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .map_err(StoreError::from)?;
    let _ = conn.close().await;
    Ok(n)
}
