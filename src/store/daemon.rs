//! The daemon's bookkeeping: where each mailbox stands, and which instance works on it.
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::PathBuf;

use sqlx::Row;

use super::{Backend, Store, StoreError, now_micros};

/// Why `poststelle run` cannot start on a SQLite store.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another poststelle{pid} is already running on {db}: SQLite allows one instance; stop it, or use PostgreSQL (database_url) for several"
    )]
    AlreadyRunning { db: String, pid: String },
    #[error("lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl Store {
    /// On SQLite one instance at a time: a lock file beside the database (flock), held while
    /// running and released by the kernel however the process ends. It is named after the
    /// database's real path, so two spellings of one file (a symlink, `..`) take one lock.
    /// Holding it, this instance needs no lease rows: every mailbox is its own.
    pub fn single_instance_lock(&self) -> Result<Option<File>, LockError> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        let Some(db) = self.sqlite_file() else {
            return Ok(None);
        };
        let db = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
        let path = PathBuf::from(format!("{}.lock", db.display()));
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                write!(file, "{}", std::process::id()).map_err(io)?;
                Ok(Some(file))
            }
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Err(LockError::AlreadyRunning {
                    db: db.display().to_string(),
                    pid: match pid.trim() {
                        "" => String::new(),
                        p => format!(" (pid {p})"),
                    },
                })
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// Where a mailbox stands: its UIDVALIDITY and the highest UID filed and moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxState {
    pub uidvalidity: Option<u32>,
    pub last_uid: u32,
}

impl Store {
    pub async fn mailbox_state(&self, mailbox: &str) -> Result<Option<MailboxState>, StoreError> {
        let row = sqlx::query("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(MailboxState {
                uidvalidity: r
                    .try_get::<Option<i64>, _>("uidvalidity")?
                    .and_then(|v| u32::try_from(v).ok()),
                last_uid: u32::try_from(r.try_get::<i64, _>("last_uid")?).unwrap_or(0),
            }),
            None => None,
        })
    }

    /// Records progress (`polled_at`: when). A poll that found nothing calls it not, so that
    /// an idle daemon writes nothing.
    pub async fn save_mailbox_state(
        &self,
        mailbox: &str,
        state: MailboxState,
    ) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, polled_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (mailbox) DO UPDATE SET \
             uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, \
             polled_at = excluded.polled_at",
        )
        .bind(mailbox)
        .bind(state.uidvalidity.map(i64::from))
        .bind(i64::from(state.last_uid))
        .bind(now_micros())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes the lease `name` for `holder`, or renews it when `holder` has it already. Returns
    /// false when another holder's lease has not expired. The upsert is one statement, so two
    /// instances racing for an expired lease cannot both win.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now = now_micros();
        let until = now + i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2);
        let _gate = self.write_gate().await;
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Extends the lease `name` that `holder` has: an UPDATE of one small row, which
    /// PostgreSQL does in place (no index covers `expires_at`). False when `holder` has it no
    /// longer — another instance took it over, or it was given up.
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let until = now_micros() + i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2);
        let _gate = self.write_gate().await;
        let renewed =
            sqlx::query("UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3")
                .bind(until)
                .bind(name)
                .bind(holder)
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives a lease up at shutdown so that another instance need not wait for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The holder of a lease that has not expired.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2")
                .bind(name)
                .bind(now_micros())
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// How many mailbox leases `holder` has, and how many live instances there are (each
    /// keeps an `instance:` lease while it runs), for sharing mailboxes fairly.
    pub async fn lease_load(&self, holder: &str) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM leases WHERE name LIKE 'mailbox:%' AND holder = $1 \
             AND expires_at >= $2) AS held, \
             (SELECT COUNT(*) FROM leases WHERE name LIKE 'instance:%' AND expires_at >= $2) \
             AS instances",
        )
        .bind(holder)
        .bind(now_micros())
        .fetch_one(self.pool())
        .await?)
    }
}

/// What a restart took over from processes of its own that died.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TakenOver {
    /// Holders whose leases were given up.
    pub leases: Vec<String>,
    /// Holders whose outbox claims were released, with the number of rows.
    pub claims: Vec<(String, u64)>,
}

impl Store {
    /// Gives up the leases and outbox claims of holders that `gone` says are dead, so that a
    /// restart need not wait for them to expire. On SQLite every lease counts as dead (the
    /// caller holds the lock file: no other instance runs); outbox claims there may also come
    /// from `poststelle outbox send`, so they are asked about like PostgreSQL's, and so are
    /// claims without a holder, made by a version before holders were recorded.
    pub async fn take_over_dead(
        &self,
        gone: impl Fn(&str) -> bool,
    ) -> Result<TakenOver, StoreError> {
        let sqlite = self.backend == super::Backend::Sqlite;
        let mut taken = TakenOver::default();
        let holders: Vec<String> = sqlx::query_scalar("SELECT DISTINCT holder FROM leases")
            .fetch_all(self.pool())
            .await?;
        for holder in holders {
            if sqlite || gone(&holder) {
                let _gate = self.write_gate().await;
                sqlx::query("DELETE FROM leases WHERE holder = $1")
                    .bind(&holder)
                    .execute(self.pool())
                    .await?;
                taken.leases.push(holder);
            }
        }
        let claimers: Vec<Option<String>> = sqlx::query_scalar(concat!(
            "SELECT DISTINCT claimed_by FROM outbox WHERE id IN (",
            pending_outbox_ids!(),
            ") AND claimed_until IS NOT NULL",
        ))
        .fetch_all(self.pool())
        .await?;
        for claimer in claimers {
            let dead = match &claimer {
                Some(h) => gone(h),
                None => sqlite,
            };
            if !dead {
                continue;
            }
            let _gate = self.write_gate().await;
            let released =
                match &claimer {
                    Some(h) => sqlx::query(concat!(
                        "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL WHERE id IN (",
                        pending_outbox_ids!(),
                        ") AND claimed_until IS NOT NULL AND claimed_by = $1",
                    ))
                    .bind(h)
                    .execute(self.pool())
                    .await?,
                    None => {
                        sqlx::query(concat!(
                            "UPDATE outbox SET claimed_until = NULL WHERE id IN (",
                            pending_outbox_ids!(),
                            ") AND claimed_until IS NOT NULL AND claimed_by IS NULL",
                        ))
                        .execute(self.pool())
                        .await?
                    }
                }
                .rows_affected();
            taken
                .claims
                .push((claimer.unwrap_or_else(|| "-".into()), released));
        }
        Ok(taken)
    }
}
