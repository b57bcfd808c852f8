//! Backup and restore check (issue 20, item 3): a copy taken while 10,000 mails are filed
//! restores to a store that passes `restore-check` and holds every ticket committed before
//! the backup began; the check finds a damaged copy, an older and a foreign one.
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use poststelle::store::Store;
use poststelle::store::backup::{self, BackupError};

use crate::support::bin::{poststelle, stdout_of};
use crate::support::db::{TestDb, both};
use crate::support::mail::requests;

/// Ticket numbers committed so far, read as another process reads them.
async fn committed(store: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT number FROM tickets ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("numbers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_10000_mails_are_filed_holds_every_committed_ticket() {
    let data = tempfile::tempdir().expect("data");
    let mails = tempfile::tempdir().expect("mails");
    for (i, raw) in requests(10_000, "buerger", "bak").iter().enumerate() {
        std::fs::write(mails.path().join(format!("{i:05}.eml")), raw).expect("mail");
    }
    // Its log (a warning per suppressed acknowledgement) goes to a file: a pipe nobody reads
    // while it runs would fill and stop it.
    let log = data.path().join("ingest.log");
    let mut ingest = poststelle()
        .arg("--data-dir")
        .arg(data.path())
        .args(["ingest", "--batch", "64"])
        .arg(mails.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("poststelle ingest");
    let db = data.path().join("poststelle.sqlite");
    let url = Store::default_url(data.path());
    let started = Instant::now();
    // Wait until filing is well under way.
    let reader = loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "filing did not start"
        );
        if db.exists()
            && let Ok(s) = Store::open_existing(&url).await
        {
            if committed(&s).await.len() >= 500 {
                break s;
            }
            s.close().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let before: Vec<String> = committed(&reader).await;
    assert!(
        ingest.try_wait().expect("ingest").is_none(),
        "the backup must begin while the mails are being filed"
    );
    let dest = data.path().join("copies").join("poststelle-backup.sqlite");
    let out = stdout_of(
        poststelle()
            .arg("--data-dir")
            .arg(data.path())
            .arg("backup")
            .arg(&dest)
            .arg("--json"),
    );
    let still_filing = ingest.try_wait().expect("ingest").is_none();
    let made: serde_json::Value = serde_json::from_str(&out).expect("backup JSON");
    let result = ingest.wait_with_output().expect("ingest ends");
    assert!(
        result.status.success(),
        "every batch filed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let summary = String::from_utf8_lossy(&result.stdout);
    assert!(summary.contains("10000 new ticket(s)"), "{summary}");

    let check = stdout_of(poststelle().arg("restore-check").arg(&dest).arg("--json"));
    let c: serde_json::Value = serde_json::from_str(&check).expect("check JSON");
    assert_eq!(c["ok"], true, "{c:#}");
    assert_eq!(c["integrity"], "ok");
    assert_eq!(c["migrations"]["missing"], serde_json::json!([]));
    let in_copy: BTreeSet<String> = backup::ticket_numbers(&dest.display().to_string())
        .await
        .expect("numbers")
        .into_iter()
        .collect();
    let missing: Vec<&String> = before.iter().filter(|n| !in_copy.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "committed before the backup, not in it: {missing:?}"
    );
    assert_eq!(c["counts"]["tickets"], in_copy.len());
    assert_eq!(made["tickets"], in_copy.len());
    eprintln!(
        "backup: {} of 10000 tickets ({} committed when it began; filing still running after \
         it: {still_filing}), {} bytes in {:.3} s",
        in_copy.len(),
        before.len(),
        made["bytes"],
        made["seconds"].as_f64().unwrap_or(0.0)
    );
    // A restored copy is a store: poststelle opens it and lists its tickets.
    let restored = tempfile::tempdir().expect("restore");
    std::fs::copy(&dest, restored.path().join("poststelle.sqlite")).expect("restore");
    let listed = stdout_of(
        poststelle()
            .arg("--data-dir")
            .arg(restored.path())
            .args(["tickets", "list", "--limit", "100000", "--json"]),
    );
    assert_eq!(listed.lines().count(), in_copy.len());
    reader.close().await;
}

async fn backups_never_overwrite_and_postgres_is_pointed_to_pg_dump(db: &TestDb) {
    let dir = tempfile::tempdir().expect("dir");
    let dest = dir.path().join("b.sqlite");
    match backup::backup(&db.store, &db.url, &dest).await {
        Err(BackupError::Postgres { .. }) => {
            let e = backup::backup(&db.store, &db.url, &dest)
                .await
                .expect_err("refused")
                .to_string();
            assert!(e.contains("pg_dump --format=custom"), "{e}");
            assert!(e.contains("pg_restore"), "{e}");
            assert!(!dest.exists());
            // A database restored from a dump is checked as a file is.
            let c = backup::check(&db.url).await.expect("check");
            assert!(c.ok, "{c:?}");
            assert_eq!(c.backend, "postgres");
            assert!(c.migrations.missing.is_empty());
        }
        Ok(b) => {
            assert_eq!(b.dest, dest);
            let again = backup::backup(&db.store, &db.url, &dest).await;
            assert!(matches!(again, Err(BackupError::Exists(_))), "{again:?}");
            let mut partial = dest.as_os_str().to_owned();
            partial.push(".partial");
            assert!(!std::path::Path::new(&partial).exists());
            let c = backup::check(&dest.display().to_string())
                .await
                .expect("check");
            assert!(c.ok, "{c:?}");
            // The check opens the copy read-only: nothing beside it, nothing changed.
            let before = std::fs::read(&dest).expect("copy");
            backup::check(&dest.display().to_string())
                .await
                .expect("check");
            assert_eq!(std::fs::read(&dest).expect("copy"), before);
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .expect("dir")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, vec!["b.sqlite".to_string()]);
        }
        Err(e) => panic!("{e}"),
    }
}
both!(backups_never_overwrite_and_postgres_is_pointed_to_pg_dump);

/// A copy with a damaged page, one made by an older or newer poststelle, and a file that is
/// no store: the check says what it found, and the command's exit status is 1 for a problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_finds_damaged_older_and_foreign_copies() {
    let db = TestDb::sqlite().await;
    let ing =
        poststelle::ticket::ingest::Ingestor::new(&db.store, &crate::support::config::DEFAULT);
    for (i, raw) in requests(300, "pruef", "chk").iter().enumerate() {
        ing.ingest(
            raw,
            poststelle::ticket::ingest::SourceKey::file(&format!("c/{i}")),
        )
        .await
        .expect("ingest");
    }
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.sqlite");
    backup::backup(&db.store, &db.url, &good)
        .await
        .expect("backup");
    let copy = |name: &str| {
        let p = dir.path().join(name);
        std::fs::copy(&good, &p).expect("copy");
        p
    };
    let edit = |path: &std::path::Path, sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(path)
            .arg(sql)
            .output()
            .expect("sqlite3 (apt install sqlite3)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // Older: the last migration not applied. A warning, still sound.
    let older = copy("older.sqlite");
    edit(
        &older,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    );
    let c = backup::check(&older.display().to_string())
        .await
        .expect("check");
    assert!(c.ok, "{c:?}");
    assert_eq!(c.migrations.missing.len(), 1);
    assert!(!c.warnings.is_empty());

    // Newer: a migration this poststelle does not know.
    let newer = copy("newer.sqlite");
    edit(
        &newer,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (9999, 'future', CURRENT_TIMESTAMP, 1, x'00', 0)",
    );
    let c = backup::check(&newer.display().to_string())
        .await
        .expect("check");
    assert!(!c.ok);
    assert_eq!(c.migrations.unknown, vec![9999]);

    // Damaged: a page of the raw mail overwritten.
    let damaged = copy("damaged.sqlite");
    let mut bytes = std::fs::read(&damaged).expect("read");
    let page = 32_768;
    let pages = bytes.len() / page;
    assert!(pages > 4, "{pages} pages");
    for b in &mut bytes[(pages / 2) * page..(pages / 2) * page + 200] {
        *b = 0xA5;
    }
    std::fs::write(&damaged, &bytes).expect("write");
    let out = poststelle()
        .arg("restore-check")
        .arg(&damaged)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("NOT sound") || said.contains("malformed"),
        "{said}"
    );

    // No store at all, and no file.
    let foreign = dir.path().join("foreign.sqlite");
    edit(&foreign, "CREATE TABLE t (x)");
    let c = backup::check(&foreign.display().to_string())
        .await
        .expect("check");
    assert!(!c.ok);
    assert!(c.problems[0].contains("no poststelle store"), "{c:?}");
    let none = backup::check(&dir.path().join("none").display().to_string()).await;
    assert!(matches!(none, Err(BackupError::NoFile(_))));
    let ok = stdout_of(poststelle().arg("restore-check").arg(&good));
    assert!(ok.contains("the copy is sound"), "{ok}");
    assert!(ok.contains("tickets 300"), "{ok}");
    db.finish().await;
}
