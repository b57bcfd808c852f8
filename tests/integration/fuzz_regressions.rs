//! What the fuzz targets of issue #20 (fuzz/, `fuzz/run-all.sh`) found, each input a file
//! under tests/fixtures/fuzz/, and what the targets themselves need of the library.
use poststelle::classify::classify_raw;
use poststelle::classify::fieldset::compile_one;
use poststelle::classify::nutzerkonto::ContactList;
use poststelle::classify::rules::RuleSet;
use poststelle::classify::subject::{has_reply_prefix, normalize, ticket_ref};
use poststelle::diag::{Diagnostics, SourceText};
use poststelle::lists::{Member, Role, read_csv, write_csv};
use poststelle::store::Store;
use poststelle::ticket::ingest::{Ingestor, SourceKey};

use crate::support::config::DEFAULT;
use crate::support::repo;

/// The `ingest` target files into `sqlite::memory:`. Through sqlx's Any driver every new
/// connection to that URL was a database of its own, without tables: a read beside an open
/// transaction (a second connection) found no table `tickets`.
#[tokio::test]
async fn an_in_memory_store_is_one_database() {
    let store = Store::open("sqlite::memory:")
        .await
        .expect("in-memory store");
    let raw = std::fs::read(repo().join("samples/01-stoerung.eml")).expect("sample");
    Ingestor::new(&store, &DEFAULT)
        .ingest(&raw, SourceKey::file("01"))
        .await
        .expect("filing");
    let tx = store.begin_write().await.expect("a write transaction");
    let beside = {
        let store = store.clone();
        tokio::spawn(async move { store.counts().await })
    };
    tokio::task::yield_now().await;
    tx.commit().await.expect("commit");
    let counts = beside
        .await
        .expect("joined")
        .expect("counts beside a transaction");
    assert_eq!(counts["tickets"], 1);
    store.close().await;
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/fuzz").join(name)).expect("fixture")
}

fn mail_with_subject(subject: &str) -> Vec<u8> {
    format!(
        "From: Erika Mustermann <erika@example.org>\r\nTo: support@example.net\r\n\
         Subject: {subject}\r\nMessage-ID: <fuzz@example.org>\r\n\r\nHallo\r\n"
    )
    .into_bytes()
}

/// Found by `subject`: taking the inner tag out of `[[Ticket#1]Ticket#2]` joined the text
/// around it into a second tag, which stayed in the normalised subject (a second pass took it).
#[test]
fn nested_ticket_tags_leave_no_tag_in_the_normalised_subject() {
    let subject = fixture("subject-nested-tags.txt");
    let tag = &DEFAULT.settings.ticket_ref;
    let out = normalize(&subject, tag);
    assert_eq!(out, "verschachtelt");
    assert_eq!(normalize(&out, tag), out, "a second pass changes nothing");
    let (_, d) = classify_raw(&DEFAULT, &mail_with_subject(&subject));
    assert_eq!(d.normalized_subject, "verschachtelt");
    assert_eq!(
        d.ticket_ref.as_deref(),
        Some("1"),
        "the first tag names the ticket"
    );
}

/// Found with `subject`'s seeds: `\d` took Arabic-Indic digits as a ticket number, which no
/// ticket of ours has. Such a tag is no tag: it names nothing and stays in the subject.
#[test]
fn a_ticket_number_is_ascii_digits() {
    let subject = fixture("subject-arabic-indic-digits.txt");
    let tag = &DEFAULT.settings.ticket_ref;
    assert_eq!(ticket_ref(&subject, tag), None);
    assert_eq!(normalize(&subject, tag), subject);
    let (_, d) = classify_raw(&DEFAULT, &mail_with_subject(&subject));
    assert_eq!(d.ticket_ref, None);
}

/// The seeds of the issue-20 targets hold the properties the targets check, on every test run
/// (fuzzing itself runs by hand: fuzz/run-all.sh).
#[test]
fn the_fuzz_seeds_hold_the_targets_properties() {
    let seeds = |target: &str| -> Vec<(String, Vec<u8>)> {
        let dir = repo().join("fuzz/seeds").join(target);
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| {
                let bytes = std::fs::read(e.path()).expect("seed");
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        v.sort();
        assert!(!v.is_empty(), "no seeds for {target}");
        v
    };
    let tag = &DEFAULT.settings.ticket_ref;
    for (name, bytes) in seeds("subject") {
        let subject = String::from_utf8_lossy(&bytes);
        let out = normalize(&subject, tag);
        assert_eq!(ticket_ref(&out, tag), None, "{name}: {out:?}");
        assert!(!has_reply_prefix(&out), "{name}: {out:?}");
        assert_eq!(normalize(&out, tag), out, "{name}");
    }
    for (name, bytes) in seeds("lists") {
        let Ok(parsed) = read_csv(&bytes, Role::EndUser) else {
            continue;
        };
        let members: Vec<Member> = parsed.members.into_iter().map(|(_, m)| m).collect();
        let back = read_csv(&write_csv(&members).expect("writes"), Role::Staff).expect("reads");
        assert_eq!(back.problems, [], "{name}");
        let back: Vec<Member> = back.members.into_iter().map(|(_, m)| m).collect();
        assert_eq!(back, members, "{name}");
    }
    let mut rule_files = 0;
    for (name, bytes) in seeds("rules") {
        let mut diags = Diagnostics::default();
        let text = String::from_utf8(bytes).expect("UTF-8");
        let set = RuleSet::compile(
            vec![SourceText {
                name: name.clone(),
                text: text.clone(),
            }],
            &mut diags,
        );
        rule_files += usize::from(diags.is_empty());
        let mut pending = Vec::new();
        for field in &set.fields {
            let mut found = vec![false; field.patterns.len()];
            field.mark(&text, &mut found, &mut pending);
            for (p, fast) in field.patterns.iter().zip(found) {
                let own = compile_one(p).is_ok_and(|r| r.is_match(&text));
                assert_eq!(fast, own, "{name}: {p:?}");
            }
        }
    }
    assert!(rule_files > 5, "most rule seeds load");
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/fuzz").join(name)).expect("fixture")
}

/// Found by `lists` (the UTF-16 file it made; the other is the same, readable): in a file with
/// lone CR line ends (Excel's "CSV (Macintosh)") every row was on line 1, since the line counter
/// counted LF only and the CSV reader ends a row at a CR too.
#[test]
fn rows_of_a_list_with_cr_line_ends_are_on_their_own_lines() {
    let parsed = read_csv(&fixture_bytes("lists-mac-cr-only.csv"), Role::EndUser).expect("reads");
    let lines: Vec<u64> = parsed.members.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 5]);
    let problems: Vec<u64> = parsed.problems.iter().map(|p| p.line).collect();
    assert_eq!(problems, [3]);
    let fuzzed = read_csv(&fixture_bytes("lists-utf16-cr-only.csv"), Role::EndUser).expect("reads");
    assert_eq!(fuzzed.encoding, "UTF-16LE");
    let lines: Vec<u64> = fuzzed.members.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3]);
}

/// The same in a CSV contact list: every problem was reported on line 1.
#[test]
fn contact_list_rows_with_cr_line_ends_are_named_by_their_line() {
    let text = "Leistung;Stichwörter;Ressort\rWohngeld;Wohngeld;support\rKaputt;;\r";
    let mut diags = Diagnostics::default();
    let src = SourceText {
        name: "contacts.csv".into(),
        text: text.into(),
    };
    let list = ContactList::from_source(src, true, &mut diags);
    assert_eq!(list.services.len(), 2);
    assert!(!diags.is_empty());
    for d in &diags.0 {
        assert_eq!(d.line, Some(3), "{d}");
    }
}
