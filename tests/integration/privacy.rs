//! Data subject requests (issue 20, item 2): `privacy export` of an address with tickets in
//! two queues, a Cc on another's ticket, a list membership and sent mail holds all of it;
//! after `privacy erase` a search of the whole database — every text column, the bytes of
//! raw mail and, on SQLite, the bytes of the file — finds the address no more, while what the
//! reports count stays.
use std::collections::BTreeSet;
use std::path::Path;

use poststelle::config::Config;
use poststelle::jobs::privacy::{self, EraseOptions};
use poststelle::redact::ANONYMOUS;
use poststelle::store::lists::{self, MemberFields};
use poststelle::store::{self, Backend, Store};
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops;

use crate::retention::{config, contains, file_bytes};
use crate::support::bin::{poststelle, stdout_of};
use crate::support::db::{TestDb, both, scalar};
use crate::support::tickets::new_number;

const ANNA: &str = "anna.schmidt@example.org";

/// What the store holds about Anna: the numbers of her two tickets (support, betrieb), Bob's
/// ticket she is copied on, Carl's that names her (after a NUL byte), Dora's that names her
/// only quoted-printable-encoded, and Joanna's, whose longer address contains hers.
struct Setup {
    own: [String; 2],
    cc: String,
    named: String,
    encoded: String,
    joanna: String,
}

async fn file(ing: &Ingestor<'_>, raw: &[u8], key: &str) -> Outcome {
    ing.ingest(raw, SourceKey::file(key)).await.expect("ingest")
}

async fn setup(store: &Store, cfg: &Config) -> Setup {
    let mut own = Vec::new();
    for (queue, text) in [
        ("support", "ANNAPRIVAT eins"),
        ("betrieb", "ANNAPRIVAT zwei"),
    ] {
        own.push(
            ops::create_ticket(
                store,
                cfg,
                ops::NewByHand {
                    queue,
                    severity: 3,
                    requester: "Anna.Schmidt@Example.org",
                    name: Some("Anna Schmidt"),
                    subject: "Passwort vergessen",
                    body: text,
                    actor: "test",
                },
            )
            .await
            .expect("ticket by hand"),
        );
    }
    let ing = Ingestor::new(store, cfg);
    // A Message-ID that is her address: it is in the articles and in the store's index of
    // Message-IDs too.
    let cc = new_number(
        &file(
            &ing,
            b"From: Bob <bob@example.net>\r\nTo: support@kommunal-it.example\r\n\
              Cc: Anna Schmidt <ANNA.SCHMIDT@example.org>\r\nSubject: Drucker\r\n\
              Message-ID: <anna.schmidt@example.org>\r\n\r\nBOBS-TEXT der Drucker streikt.\r\n",
            "p/bob",
        )
        .await,
    );
    let named = new_number(
        &file(
            &ing,
            b"From: Carl <carl@example.net>\r\nTo: support@kommunal-it.example\r\n\
              Subject: Zugang\r\nMessage-ID: <carl-1@example.net>\r\n\r\nCARLS-TEXT \x00 \
              fragen Sie Anna.Schmidt@example.org, sie weiss es.\r\n",
            "p/carl",
        )
        .await,
    );
    let encoded = new_number(
        &file(
            &ing,
            b"From: Dora <dora@example.net>\r\nTo: support@kommunal-it.example\r\n\
              Subject: Weiterleitung\r\nMessage-ID: <dora-1@example.net>\r\nMIME-Version: 1.0\r\n\
              Content-Type: text/plain; charset=utf-8\r\n\
              Content-Transfer-Encoding: quoted-printable\r\n\r\nDORAS-TEXT bitte an anna.schmidt@exa=\r\n\
              mple.org weiterleiten.\r\n",
            "p/dora",
        )
        .await,
    );
    let joanna = new_number(
        &file(
            &ing,
            b"From: Joanna <joanna.schmidt@example.org>\r\nTo: support@kommunal-it.example\r\n\
              Subject: Andere Person\r\nMessage-ID: <jo-1@example.net>\r\n\r\nJOANNAS-TEXT\r\n",
            "p/joanna",
        )
        .await,
    );
    let ignored = file(
        &ing,
        b"From: anna.schmidt@example.org\r\nTo: support@kommunal-it.example\r\n\
          Subject: Abwesend\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <aw-anna@x>\r\n\r\n\
          Ich bin im Urlaub.\r\n",
        "p/away",
    )
    .await;
    assert!(matches!(ignored, Outcome::Ignored { .. }), "{ignored:?}");
    lists::create(store, "nutzer", "Nutzer des Portals", false, "test")
        .await
        .expect("list");
    for (address, name) in [
        ("Anna.Schmidt@example.org", "Anna Schmidt"),
        ("bob@example.net", "Bob"),
    ] {
        let fields = MemberFields {
            name: Some(name.into()),
            role: None,
            organisation: Some("Stadt Musterhausen".into()),
            language: None,
        };
        lists::add_member(store, "nutzer", address, &fields, "test")
            .await
            .expect("member");
    }
    sqlx::query("UPDATE outbox SET state = 'sent', sent_at = created_at")
        .execute(store.pool())
        .await
        .expect("sent");
    Setup {
        own: [own[0].clone(), own[1].clone()],
        cc,
        named,
        encoded,
        joanna,
    }
}

/// Whether `bytes` hold `address` in any case as an address of its own: not as the end of a
/// longer local part (`joanna.schmidt@…` is another person) nor followed by more domain.
fn has_address(bytes: &[u8], address: &str) -> bool {
    let n = address.len();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    (0..bytes.len().saturating_sub(n - 1)).any(|i| {
        bytes[i..i + n].eq_ignore_ascii_case(address.as_bytes())
            && (i == 0 || !local(bytes[i - 1]))
            && bytes
                .get(i + n)
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))
    })
}

#[test]
fn the_tests_search_finds_an_address_and_not_a_longer_one() {
    assert!(has_address(b"x <Anna.Schmidt@example.org> y", ANNA));
    assert!(has_address(b"\0anna.schmidt@example.org", ANNA));
    assert!(!has_address(b"joanna.schmidt@example.org", ANNA));
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("index.json")).expect("JSON")
}

async fn the_export_holds_everything_about_the_address(db: &TestDb) {
    let cfg = config().load();
    let s = setup(&db.store, &cfg).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("export");
    let e = privacy::export(
        &db.store,
        "ANNA.Schmidt@example.ORG",
        &out,
        jiff::Timestamp::now(),
    )
    .await
    .expect("export");
    let index = read_json(&out.join("index.json"));
    assert_eq!(index["address"], ANNA);
    let tickets = index["tickets"].as_array().expect("tickets");
    let find = |n: &str| {
        tickets
            .iter()
            .find(|t| t["number"] == n)
            .unwrap_or_else(|| panic!("ticket {n} in the export: {index:#}"))
    };
    let queues: BTreeSet<&str> = s
        .own
        .iter()
        .map(|n| find(n)["queue"].as_str().expect("queue"))
        .collect();
    assert_eq!(queues, BTreeSet::from(["betrieb", "support"]), "two queues");
    for n in &s.own {
        let t = find(n);
        assert!(
            t["roles"]
                .as_array()
                .expect("roles")
                .contains(&"requester".into())
        );
        // Its text and its raw mail, as files beside the index.
        let article = t["articles"][0]["file"].as_str().expect("article file");
        let text = std::fs::read_to_string(out.join(article)).expect("article");
        assert!(text.contains("ANNAPRIVAT"), "{text}");
        let raw = t["raw_mail"][0]["file"].as_str().expect("raw file");
        let raw = std::fs::read(out.join(raw)).expect("raw mail");
        assert!(contains(&raw, ANNA));
        // The mail sent to her: the acknowledgement.
        let mail = t["mail"].as_array().expect("mail");
        assert!(
            mail.iter().any(|m| m["recipient"]
                .as_str()
                .is_some_and(|r| r.eq_ignore_ascii_case(ANNA))
                && m["state"] == "sent"),
            "{mail:?}"
        );
    }
    assert!(
        find(&s.cc)["roles"]
            .as_array()
            .expect("roles")
            .contains(&"cc".into())
    );
    let memberships = index["list_memberships"].as_array().expect("memberships");
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0]["list"], "nutzer");
    assert_eq!(memberships[0]["organisation"], "Stadt Musterhausen");
    let mentioned: BTreeSet<&str> = index["mentioned_in"]
        .as_array()
        .expect("mentions")
        .iter()
        .filter_map(|m| m["ticket"].as_str())
        .collect();
    assert!(mentioned.contains(s.named.as_str()), "{mentioned:?}");
    assert!(mentioned.contains(s.encoded.as_str()), "{mentioned:?}");
    assert!(!mentioned.contains(s.joanna.as_str()), "another address");
    assert!(
        tickets.iter().all(|t| t["number"] != s.joanna.as_str()),
        "joanna's ticket is not anna's"
    );
    // Mail on no ticket that is hers, and the list's audit naming her.
    assert_eq!(index["unfiled_mail"].as_array().expect("unfiled").len(), 1);
    let audit = index["audit"].as_array().expect("audit");
    assert!(
        audit.iter().any(|a| a["event"] == "list_member_added"),
        "{audit:?}"
    );
    // Other people's texts are not in the export.
    let everything: Vec<u8> = walk(&out);
    assert!(!contains(&everything, "CARLS-TEXT"));
    assert!(!contains(&everything, "JOANNAS-TEXT"));
    assert!(
        contains(&everything, "BOBS-TEXT"),
        "the ticket she is copied on"
    );
    assert_eq!(e.files, count_files(&out));
    // A second export never overwrites the first.
    let again = privacy::export(&db.store, ANNA, &out, jiff::Timestamp::now()).await;
    assert!(matches!(again, Err(privacy::PrivacyError::Exists(_))));
}
both!(the_export_holds_everything_about_the_address);

fn walk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.extend(std::fs::read(&p).expect("file"));
        }
    }
    out
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Rows of raw mail whose bytes hold `needle` in any case.
async fn raw_saying(store: &Store, needle: &str) -> i64 {
    let sql = match store.backend() {
        Backend::Sqlite => "SELECT COUNT(*) FROM raw_messages WHERE instr(lower(bytes), $1) > 0",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM raw_messages WHERE strpos(lower(encode(bytes, 'escape')), $1) > 0"
        }
    };
    sqlx::query_scalar(sql)
        .bind(needle)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

async fn after_the_erase_the_address_is_nowhere(db: &TestDb) {
    let cfg = config().load();
    let store = &db.store;
    let s = setup(store, &cfg).await;
    // The Message-IDs (one holds the address) into SQLite's big tier, which the erase reaches
    // only through the articles.
    let all = store::tickets::TierLimits {
        recent: 0,
        middle: 0,
        chunk: 1_024,
    };
    store::tickets::move_recent_message_ids(store, all)
        .await
        .expect("move");
    let tickets_before = scalar(store, "SELECT COUNT(*) FROM tickets").await;
    let articles_before = scalar(store, "SELECT COUNT(*) FROM articles").await;
    assert!(privacy::occurrences(store, ANNA).await.expect("search") > 0);

    let opts = |dry| EraseOptions {
        dry_run: dry,
        reference: Some("DSGVO-2026-17".into()),
        actor: "datenschutz".into(),
        also: vec!["Anna Schmidt".into()],
    };
    let dry = privacy::erase(
        store,
        "Anna.Schmidt@EXAMPLE.org",
        &opts(true),
        jiff::Timestamp::now(),
    )
    .await
    .expect("dry erase");
    assert_eq!(dry.tickets_anonymised.len(), 2);
    assert_eq!(dry.list_memberships, vec!["nutzer".to_string()]);
    assert!(dry.remaining > 0, "a dry run changes nothing");
    assert_eq!(
        dry.remaining,
        privacy::occurrences(store, ANNA).await.expect("search")
            + privacy::occurrences(store, "anna schmidt")
                .await
                .expect("search")
    );

    let done = privacy::erase(
        store,
        "Anna.Schmidt@EXAMPLE.org",
        &opts(false),
        jiff::Timestamp::now(),
    )
    .await
    .expect("erase");
    assert_eq!(done.remaining, 0, "{done:?}");
    let mut own = done.tickets_anonymised.clone();
    own.sort();
    let mut expected = s.own.to_vec();
    expected.sort();
    assert_eq!(own, expected);
    assert_eq!(done.participant_of, vec![s.cc.clone()]);
    assert!(
        done.raw_purged >= 2,
        "her auto-reply and Dora's encoded mail: {done:?}"
    );

    // Nowhere in the rows: every text column, the raw mail's bytes.
    assert_eq!(privacy::occurrences(store, ANNA).await.expect("search"), 0);
    // "anna.schmidt@…" is inside "joanna.schmidt@…": only Joanna's mail may still say it.
    assert_eq!(raw_saying(store, "joanna.schmidt@example.org").await, 1);
    assert_eq!(
        raw_saying(store, ANNA).await,
        raw_saying(store, "joanna.schmidt@example.org").await
    );
    assert_eq!(raw_saying(store, "anna schmidt").await, 0);
    assert_eq!(
        raw_saying(store, "annaprivat").await,
        0,
        "her mail's text is gone"
    );
    assert_eq!(
        raw_saying(store, "doras-text").await,
        0,
        "encoded: the bytes went"
    );
    assert_eq!(
        raw_saying(store, "carls-text").await,
        1,
        "Carl's mail stays, without her"
    );
    // What the reports count stays.
    assert_eq!(
        scalar(store, "SELECT COUNT(*) FROM tickets").await,
        tickets_before
    );
    assert_eq!(
        scalar(store, "SELECT COUNT(*) FROM articles").await,
        articles_before
    );
    for n in &s.own {
        let (requester, queue): (String, String) =
            sqlx::query_as("SELECT requester, queue FROM tickets WHERE number = $1")
                .bind(n)
                .fetch_one(store.pool())
                .await
                .expect("ticket");
        assert_eq!(requester, ANONYMOUS);
        assert!(queue == "support" || queue == "betrieb");
    }
    let bob: String = sqlx::query_scalar("SELECT requester FROM tickets WHERE number = $1")
        .bind(&s.cc)
        .fetch_one(store.pool())
        .await
        .expect("bob's ticket");
    assert_eq!(bob, "bob@example.net");
    assert_eq!(
        scalar(store, "SELECT COUNT(*) FROM list_members").await,
        1,
        "Bob stays on the list"
    );
    // The audit says what was done and for which request, not for whom.
    let line: String = sqlx::query_scalar(
        "SELECT detail FROM audit WHERE event = 'privacy_erased' AND ticket_id IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .expect("audit");
    assert!(line.contains("DSGVO-2026-17"), "{line}");
    assert!(!line.to_lowercase().contains("anna"), "{line}");

    // The file: searched whole, before and after VACUUM.
    if let Some(path) = store.sqlite_file() {
        store::retention::truncate_wal(store)
            .await
            .expect("checkpoint");
        let bytes = file_bytes(path);
        assert!(!has_address(&bytes, ANNA), "the address is in the file");
        assert!(!contains(&bytes, "Anna Schmidt"), "the name is in the file");
        assert!(!contains(&bytes, "ANNAPRIVAT"));
        assert!(
            contains(&bytes, "joanna.schmidt@example.org"),
            "the search works"
        );
        store::retention::vacuum(store).await.expect("vacuum");
        let bytes = file_bytes(path);
        assert!(!has_address(&bytes, ANNA));
        assert!(contains(&bytes, "CARLS-TEXT"));
    }
    let _ = (&s.named, &s.encoded, &s.joanna);
}
both!(after_the_erase_the_address_is_nowhere);

/// Every text column the generic search cannot reach (tables without `id`, bytes other than
/// raw mail) is handled by name or holds nothing from people: a column added by a later
/// migration must be put in one of the two lists (src/store/privacy.rs).
async fn every_column_is_searched_or_known_to_hold_nothing_personal(db: &TestDb) {
    let unreachable = store::privacy::unreachable_columns(&db.store)
        .await
        .expect("catalogue");
    let known: BTreeSet<(&str, &str)> = store::privacy::KEYLESS_HANDLED
        .iter()
        .chain(store::privacy::KEYLESS_NOTHING_PERSONAL)
        .copied()
        .collect();
    let unknown: Vec<String> = unreachable
        .iter()
        .filter(|c| !known.contains(&(c.table.as_str(), c.column.as_str())))
        .map(|c| format!("{}.{}", c.table, c.column))
        .collect();
    assert!(
        unknown.is_empty(),
        "not searched by privacy erase: {unknown:?}"
    );
    let searched = store::privacy::text_columns(&db.store)
        .await
        .expect("catalogue");
    for (t, c) in [
        ("tickets", "requester"),
        ("articles", "body"),
        ("outbox", "cc"),
        ("audit", "detail"),
        ("list_members", "address"),
        ("incident_events", "text"),
    ] {
        assert!(
            searched.iter().any(|s| s.table == t && s.column == c),
            "{t}.{c} is searched"
        );
    }
}
both!(every_column_is_searched_or_known_to_hold_nothing_personal);

/// `poststelle privacy export|erase` on the command line: JSON, a refusal of a non-address,
/// and an erase that leaves nothing to find.
#[test]
fn the_command_line_exports_and_erases() {
    let t = config();
    let data = tempfile::tempdir().expect("dir");
    let base = |args: &[&str]| {
        let mut c = poststelle();
        c.arg("--config")
            .arg(t.path())
            .arg("--data-dir")
            .arg(data.path())
            .args(args);
        c
    };
    let mails = tempfile::tempdir().expect("mails");
    std::fs::write(
        mails.path().join("1.eml"),
        "From: Anna Schmidt <anna.schmidt@example.org>\r\nTo: support@kommunal-it.example\r\n\
         Subject: Hilfe\r\nMessage-ID: <cli-1@example.org>\r\n\r\nCLI-TEXT\r\n",
    )
    .expect("mail");
    stdout_of(&mut base(&["ingest", &mails.path().display().to_string()]));
    let out = data.path().join("export");
    let json = stdout_of(&mut base(&[
        "privacy",
        "export",
        ANNA,
        "--out",
        &out.display().to_string(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["tickets"], 1);
    assert!(out.join("index.json").is_file());
    let bad = base(&["privacy", "erase", "nobody"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no mail address"));
    let dry = stdout_of(&mut base(&["privacy", "erase", ANNA, "--dry-run"]));
    assert!(dry.contains("would be anonymised"), "{dry}");
    let done = stdout_of(&mut base(&[
        "privacy",
        "erase",
        ANNA,
        "--reference",
        "A-1",
        "--vacuum",
    ]));
    assert!(done.contains("finds the address no more"), "{done}");
    let bytes = file_bytes(&data.path().join("poststelle.sqlite"));
    assert!(
        !contains(&bytes, ANNA),
        "no other address contains hers here"
    );
    assert!(!contains(&bytes, "CLI-TEXT"));
}
