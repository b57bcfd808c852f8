//! A fresh database for each test, on SQLite and on PostgreSQL (its own database on
//! 127.0.0.1:5432, or $POSTSTELLE_TEST_PG). When PostgreSQL is unreachable the tests that need
//! it fail; they never skip.
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use poststelle::store::Store;

/// A store for one test, dropped (PostgreSQL database included) at the end.
pub struct TestDb {
    pub store: Store,
    /// Where the store is, for more stores on the same database (other "processes").
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("POSTSTELLE_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tmp");
        let url = Store::default_url(dir.path());
        let store = Store::open(&url).await.expect("sqlite store");
        TestDb {
            store,
            url,
            _dir: Some(dir),
            pg_name: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let name = format!(
            "poststelle_t{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            Timestamp::now().as_millisecond()
        );
        let admin = admin_url();
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for these tests: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("bad admin URL {admin}"),
        };
        let store = Store::open(&url).await.expect("postgres store");
        TestDb {
            store,
            url,
            _dir: None,
            pg_name: Some(name),
        }
    }

    /// The database URL, for a daemon started as a process of its own.
    pub fn url(&self) -> String {
        match &self.pg_name {
            Some(name) => match admin_url().rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => admin_url(),
            },
            None => Store::default_url(
                self._dir
                    .as_ref()
                    .map(|d| d.path())
                    .unwrap_or(std::path::Path::new(".")),
            ),
        }
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some(name) = self.pg_name {
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url())
                .await
                .expect("admin");
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// Runs the test function of that name (`async fn name(db: &TestDb)`) on both backends, as
/// the tests `name::sqlite` and `name::postgres`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::db::TestDb::sqlite().await;
                super::$name(&db).await;
                db.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::support::db::TestDb::postgres().await;
                super::$name(&db).await;
                db.finish().await;
            }
        }
    };
}
pub(crate) use both;

/// The one integer a query returns (a count, mostly).
pub async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

/// The one text a query returns.
pub async fn scalar_text(store: &Store, sql: &'static str) -> String {
    sqlx::query_scalar::<_, String>(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}
