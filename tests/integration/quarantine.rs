//! Every quarantined message is in the quarantine table, listable and (where its bytes were
//! kept) replayable: one the database refuses on its own, one over the size limit on IMAP
//! (its header and size, and where it lies); and a replay that fails leaves it there.
use std::time::Duration;

use poststelle::store::{Backend, Store};
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops::{self, OpsError};

use crate::support::config::{TempConfig, config_text, imap_mailbox};
use crate::support::daemon::{Daemon, env, sqlite_of, unique, until};
use crate::support::db::{TestDb, both, scalar};
use crate::support::imap::{append_all, count, messages, reset};
use crate::support::mail::request;

/// Makes the database refuse every new ticket whose subject contains `word` (all when
/// empty), as a database refuses bytes it cannot store.
async fn refuse_tickets(store: &Store, word: &str) {
    let statements: Vec<String> = match store.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON tickets WHEN NEW.subject LIKE '%{word}%' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN \
                 IF NEW.subject LIKE '%{word}%' THEN RAISE EXCEPTION 'refused by the test'; \
                 END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION refuse()"
                .into(),
        ],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .expect("trigger");
    }
}

async fn allow_tickets(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER refuse",
        Backend::Postgres => "DROP TRIGGER refuse ON tickets",
    };
    sqlx::query(sql).execute(store.pool()).await.expect("drop");
}

both!(a_replay_that_fails_leaves_the_message_quarantined);
async fn a_replay_that_fails_leaves_the_message_quarantined(db: &TestDb) {
    // Quarantined whole, as the daemon does with a message the database refused on its own.
    let cfg = &*crate::support::config::DEFAULT;
    let raw = request("Erika <erika@example.org>", "Drucker", "q1@example.org");
    Ingestor::new(&db.store, cfg)
        .quarantine(
            &raw,
            raw.len() as u64,
            &SourceKey::file("q1"),
            "filing failed: refused",
        )
        .await
        .expect("quarantine");
    let listed = ops::list_quarantine(&db.store).await.expect("list");
    assert_eq!(listed.len(), 1);
    let id = listed[0].id;

    refuse_tickets(&db.store, "").await;
    let failed = ops::replay_quarantined(&db.store, cfg, id).await;
    assert!(failed.is_err(), "{failed:?}");
    let still = ops::list_quarantine(&db.store).await.expect("list");
    assert_eq!(still.len(), 1, "the message stays quarantined: {still:?}");
    assert_eq!(still[0].id, id);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 0);

    allow_tickets(&db.store).await;
    let o = ops::replay_quarantined(&db.store, cfg, id)
        .await
        .expect("replay");
    assert!(matches!(o, Outcome::NewTicket { .. }), "{o:?}");
    assert!(
        ops::list_quarantine(&db.store)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Over IMAP: a mail over the size limit and a mail the database refuses go to the quarantine
/// folder and into the quarantine list (the big one with its header and size only, and a
/// replay that says where it lies); the others are filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_quarantine_is_listed_with_oversized_and_refused_mail() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d33", unique());
    reset(&imap, user).await;
    let text = config_text(&imap_mailbox("q", &imap, user, "INBOX", ""), "")
        .replace("max_message_size = 26214400", "max_message_size = 20000");
    let cfg = TempConfig::new(&text, &[]);
    let big_body = "Sehr lange Zeile mit Umlauten: äöü ß.\r\n".repeat(1000);
    let big = crate::support::mail::mail(
        &[
            "From: Erika <erika@example.org>",
            "Subject: Riesige Anlage",
            &format!("Message-ID: <big.{tag}@example.org>"),
        ],
        &big_body,
    );
    let refused = request(
        "Max <max@example.org>",
        "Vergiftet",
        &format!("poison.{tag}@example.org"),
    );
    let mails = vec![
        request("A <a@example.org>", "Eins", &format!("1.{tag}@example.org")),
        big.clone(),
        refused.clone(),
        request("B <b@example.org>", "Zwei", &format!("2.{tag}@example.org")),
    ];
    append_all(&imap, user, "INBOX", &mails).await;
    let store = sqlite_of(&cfg).await;
    refuse_tickets(&store, "Vergiftet").await;

    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(30), "all moved", || async {
        count(&imap, user, "INBOX").await == 0
            && count(&imap, user, "Quarantaene").await == 2
            && count(&imap, user, "Verarbeitet").await == 2
    })
    .await;
    daemon.stop_ok();
    let in_folder = messages(&imap, user, "Quarantaene").await;
    assert!(
        in_folder.iter().any(|m| m.len() >= big.len()),
        "the big mail lies there whole"
    );

    let listed = ops::list_quarantine(&store).await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}\n{}", daemon.log());
    let big_row = listed
        .iter()
        .find(|q| q.reason.contains("max_message_size"))
        .unwrap_or_else(|| panic!("oversized mail listed: {listed:?}"));
    assert!(big_row.size >= 20000, "{big_row:?}");
    let kept = ops::quarantined_bytes(&store, big_row.id)
        .await
        .expect("header");
    assert!(
        kept.len() < 2000,
        "only the header is kept ({} bytes)",
        kept.len()
    );
    assert!(String::from_utf8_lossy(&kept).contains("Subject: Riesige Anlage"));
    let cfg_loaded = cfg.load();
    match ops::replay_quarantined(&store, &cfg_loaded, big_row.id).await {
        Err(OpsError::Invalid(why)) => assert!(why.contains("too large"), "{why}"),
        other => panic!("a header alone is not replayed: {other:?}"),
    }

    let refused_row = listed
        .iter()
        .find(|q| q.reason.contains("filing failed"))
        .unwrap_or_else(|| panic!("refused mail listed: {listed:?}"));
    assert_eq!(
        ops::quarantined_bytes(&store, refused_row.id)
            .await
            .expect("bytes"),
        refused
    );
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 2);
    store.close().await;
}
