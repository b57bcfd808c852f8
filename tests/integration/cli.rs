//! `poststelle classify`: JSON Lines with exactly the documented fields, in path order;
//! directories in name order; Maildirs; the readable table and `--explain`.
use crate::support::bin::{self, poststelle};
use crate::support::corpus;
use crate::support::db::scalar;
use crate::support::mail::{fresh_samples, mail};

fn classify(args: &[&str]) -> (i32, String) {
    let out = poststelle()
        .arg("classify")
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const FIELDS: [&str; 15] = [
    "path",
    "message_id",
    "from",
    "subject",
    "normalized_subject",
    "ticket_ref",
    "auto_generated",
    "nutzerkonto",
    "queue",
    "severity",
    "action",
    "auto_reply",
    "forward_to",
    "rules",
    "reason",
];

#[test]
fn json_lines_have_exactly_the_documented_fields_in_path_order() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("b.eml"),
        mail(
            &[
                "Subject: AW: HE_Gewerbeanmeldung_NKB",
                "From: Max <MAX@Example.ORG>",
            ],
            "x",
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("a.eml"),
        mail(&["Subject: [Ticket#2026112310000012] Drucker defekt"], "x"),
    )
    .expect("write");
    let bounce = corpus().join("bounces/sisimai/lhost-postfix-02.eml");
    let (code, out) = classify(&[
        "--json",
        bounce.to_str().expect("utf8"),
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let keys: Vec<&str> = r
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut want = FIELDS.to_vec();
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
    }
    assert!(
        rows[0]["path"]
            .as_str()
            .expect("path")
            .ends_with("lhost-postfix-02.eml")
    );
    assert_eq!(rows[0]["auto_generated"], "bounce");
    assert_eq!(rows[0]["action"], "ignore");
    assert!(rows[1]["path"].as_str().expect("path").ends_with("a.eml"));
    assert_eq!(rows[1]["ticket_ref"], "2026112310000012");
    assert_eq!(rows[1]["normalized_subject"], "Drucker defekt");
    assert_eq!(rows[1]["severity"], 3);
    assert_eq!(rows[1]["message_id"], "test@example.org");
    assert!(rows[2]["path"].as_str().expect("path").ends_with("b.eml"));
    assert_eq!(rows[2]["from"], "max@example.org");
    assert_eq!(
        rows[2]["nutzerkonto"],
        serde_json::json!({"state": "HE", "origin": "NKB", "betreff": "Gewerbeanmeldung"})
    );
    assert_eq!(rows[2]["auto_reply"], "nutzerkonto-efa-outbound");
    assert_eq!(rows[2]["rules"], serde_json::json!(["nutzerkonto"]));
    assert_eq!(rows[2]["forward_to"], serde_json::json!([]));
}

/// A Maildir is read in delivery order (the time stamps of the names), whether a message is in
/// `new/` or `cur/`; `tmp/` holds mail still being delivered.
#[test]
fn maildir_in_delivery_order_and_quarantine() {
    let dir = tempfile::tempdir().expect("tmp");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    std::fs::write(dir.path().join("new/3.x"), b"\x00\x01 kein header").expect("w");
    std::fs::write(dir.path().join("new/2.x"), mail(&["Subject: neu"], "x")).expect("w");
    std::fs::write(dir.path().join("cur/1.x:2,S"), mail(&["Subject: alt"], "x")).expect("w");
    std::fs::write(dir.path().join("tmp/4.x"), mail(&["Subject: halb"], "x")).expect("w");
    let (code, out) = classify(&["--json", dir.path().to_str().expect("utf8")]);
    assert_eq!(code, 0);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let subjects: Vec<&str> = rows
        .iter()
        .map(|r| r["subject"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(subjects, vec!["alt", "neu", ""]);
    assert_eq!(rows[2]["action"], "quarantine");
    assert_eq!(rows[2]["queue"], serde_json::Value::Null);
}

#[test]
fn table_and_explain_for_a_person() {
    let f = corpus().join("autoreplies/sisimai-rfc3834/rfc3834-04.eml");
    let (code, out) = classify(&[f.to_str().expect("utf8")]);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    let head = lines.next().expect("header");
    assert!(head.starts_with("PATH") && head.contains("ACTION") && head.contains("REASON"));
    let row = lines.next().expect("row");
    assert!(
        row.contains("ignore") && row.contains("auto_reply"),
        "{row}"
    );

    let drucker = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(drucker.path(), mail(&["Subject: Drucker defekt"], "x")).expect("w");
    let (_, out) = classify(&["--explain", drucker.path().to_str().expect("utf8")]);
    assert!(out.contains("[  MATCH] klasse-3-leicht"), "{out}");
    assert!(
        out.contains("[     no] klasse-1-betriebsverhindernd"),
        "{out}"
    );
    assert!(out.contains("=> ticket · queue support · class 3"), "{out}");
}

#[test]
fn a_missing_path_is_an_error_but_the_others_are_classified() {
    let ok = corpus().join("helpdesk-real/talon-replies/gmail.eml");
    let (code, out) = classify(&["--json", "/nonexistent.eml", ok.to_str().expect("utf8")]);
    assert_eq!(code, 2);
    assert_eq!(out.lines().count(), 1);
}

/// The embedded default end to end: ingest the samples, list, show, change, send to files.
#[test]
fn ingest_tickets_and_outbox_on_the_embedded_default() {
    let data = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| bin::run(data.path(), args);
    let samples = fresh_samples();
    let samples = samples.path().to_str().expect("utf8");
    let first = run(&["ingest", samples]);
    assert_eq!(
        first.trim(),
        "3 new ticket(s), 1 follow-up(s), 0 note(s), 2 ignored, 0 duplicate(s), 0 quarantined"
    );
    let second = run(&["ingest", samples]);
    assert!(
        second.contains("0 new ticket(s)") && second.contains("6 duplicate(s)"),
        "{second}"
    );

    let list = run(&["tickets", "list", "--json"]);
    let tickets: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(tickets.len(), 3);
    for key in [
        "number",
        "state",
        "queue",
        "severity",
        "subject",
        "requester",
        "articles",
        "created",
    ] {
        assert!(tickets[0].get(key).is_some(), "{key} in {}", tickets[0]);
    }
    let outage = &tickets[0];
    assert_eq!(outage["severity"], 1);
    assert_eq!(outage["state"], "new");
    let number = outage["number"].as_str().expect("number").to_string();
    let only_betrieb = run(&["tickets", "list", "--queue", "betrieb", "--json"]);
    assert_eq!(only_betrieb.lines().count(), 1);

    run(&[
        "tickets",
        "set",
        &number,
        "--status",
        "open",
        "--note",
        "Techniker informiert",
        "--actor",
        "anna",
    ]);
    let show = run(&["tickets", "show", &number, "--json"]);
    let t: serde_json::Value = serde_json::from_str(&show).expect("json");
    assert_eq!(t["state"], "open");
    let events: Vec<&str> = t["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["event"].as_str())
        .collect();
    assert!(
        events.contains(&"state_changed") && events.contains(&"note_added"),
        "{events:?}"
    );
    assert!(run(&["tickets", "list", "--state", "open"]).contains(&number));
    // Taking the ticket told its requester: the "wird bearbeitet" notice.
    assert!(
        t["outbox"]
            .as_array()
            .expect("outbox")
            .iter()
            .any(|r| r["subject"]
                .as_str()
                .is_some_and(|s| s.contains("wird bearbeitet"))),
        "{show}"
    );

    let sent = run(&["outbox", "send"]);
    assert!(
        sent.starts_with("7 sent, 0 temporary failure(s), 0 permanent failure(s)"),
        "{sent}"
    );
    let files = std::fs::read_dir(data.path().join("sent"))
        .expect("sent")
        .count();
    assert_eq!(files, 7);
    assert!(
        run(&["outbox", "list", "--state", "scheduled", "--json"])
            .trim()
            .is_empty()
    );
    assert_eq!(
        run(&["outbox", "list", "--state", "sent", "--json"])
            .lines()
            .count(),
        7
    );
}

/// `kill -9` of `poststelle ingest` half-way through a large directory, then a second run:
/// every message is filed exactly once, with exactly its mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_killed_half_way_then_rerun_files_everything_once() {
    const N: usize = 1500;
    let mails = tempfile::tempdir().expect("tmp");
    for i in 0..N {
        // Distinct senders, so that the loop brake holds nothing back.
        let raw = mail(
            &[
                &format!("From: Person {i} <p{i}@gemeinde.example>"),
                &format!("Subject: Anfrage Nummer {i}"),
                &format!("Message-ID: <k{i}@gemeinde.example>"),
            ],
            &"Bitte um Rückruf wegen des Fachverfahrens.\r\n".repeat(20),
        );
        std::fs::write(mails.path().join(format!("{i:05}.eml")), raw).expect("write");
    }
    let data = tempfile::tempdir().expect("tmp");
    let ingest = || {
        let mut cmd = poststelle();
        cmd.arg("--data-dir")
            .arg(data.path())
            .args(["ingest", "--batch", "8"])
            .arg(mails.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    let mut child = ingest().spawn().expect("spawn");

    // Watch through a read-only connection that never migrates, so the test does not race
    // the child for the schema.
    let url = format!(
        "sqlite://{}?mode=ro",
        data.path().join("poststelle.sqlite").display()
    );
    sqlx::any::install_default_drivers();
    let mut filed_before_kill = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await else {
            continue;
        };
        filed_before_kill = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM raw_messages")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
        let _ = sqlx::Connection::close(conn).await;
        if filed_before_kill >= 40 {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let store = poststelle::store::Store::open(&poststelle::store::Store::default_url(data.path()))
        .await
        .expect("the first run created the database");
    let after_kill = scalar(&store, "SELECT COUNT(*) FROM raw_messages").await;
    assert!(
        after_kill > 0 && (after_kill as usize) < N,
        "the kill came half-way ({filed_before_kill} seen, {after_kill} after the kill)"
    );
    // Whole batches only: a batch is committed with all its rows or not at all.
    let orphans = scalar(
        &store,
        "SELECT COUNT(*) FROM raw_messages WHERE outcome = 'pending' OR (outcome = 'new_ticket' AND ticket_id IS NULL)",
    )
    .await;
    assert_eq!(orphans, 0);

    let status = ingest().status().expect("second run");
    assert!(status.success());
    let count = |sql: &'static str| scalar(&store, sql);
    assert_eq!(count("SELECT COUNT(*) FROM raw_messages").await, N as i64);
    assert_eq!(count("SELECT COUNT(*) FROM tickets").await, N as i64);
    assert_eq!(
        count("SELECT COUNT(DISTINCT message_id) FROM raw_messages").await,
        N as i64
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'").await,
        N as i64
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE kind = 'staff_copy'").await,
        N as i64
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM articles WHERE kind = 'inbound'").await,
        N as i64
    );
    store.close().await;
}

/// A command that reads or changes the store does not make one: a typo in `--data-dir` is an
/// error naming the path and where the store is configured, and leaves no directory behind.
#[test]
fn read_commands_do_not_create_an_empty_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let typo = dir.path().join("typo/deeper");
    for args in [
        &["tickets", "list"][..],
        &["outbox", "list"],
        &["quarantine", "list"],
        &["tickets", "show", "2026120310000001"],
    ] {
        let out = crate::support::bin::poststelle()
            .arg("--data-dir")
            .arg(&typo)
            .args(args)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("there is no poststelle store at"), "{err}");
        assert!(err.contains(&typo.display().to_string()), "{err}");
        assert!(err.contains("embedded:poststelle.toml"), "{err}");
        assert!(
            !dir.path().join("typo").exists(),
            "{args:?} created {}",
            typo.display()
        );
    }
}

/// A data directory holding the shipped samples, filed now: three tickets, one follow-up.
fn samples_filed() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tmp");
    let samples = fresh_samples();
    bin::run(
        data.path(),
        &["ingest", samples.path().to_str().expect("utf8")],
    );
    data
}

/// Runs `poststelle --data-dir {data} {args}` whatever its outcome: exit code, stdout, stderr.
fn outcome(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = poststelle()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn first_ticket(data: &std::path::Path) -> String {
    let list = bin::run(data, &["tickets", "list", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(list.lines().next().expect("a ticket")).expect("json");
    first["number"].as_str().expect("number").to_string()
}

/// A value outside a fixed set is an error of the argument parser (exit 2) that names the
/// valid values, before any store is opened; `--help` lists them too.
#[test]
fn typos_in_fixed_values_are_errors_naming_the_valid_values() {
    let data = samples_filed();
    let number = first_ticket(data.path());
    for (args, valid) in [
        (
            &["tickets", "list", "--state", "bogus"][..],
            "new, open, pending, resolved, closed",
        ),
        (
            &["tickets", "set", &number, "--status", "bogus"],
            "new, open, pending, resolved, closed",
        ),
        (
            &["outbox", "list", "--state", "bogus"],
            "scheduled, sent, temporary_failure, permanent_failure, suppressed",
        ),
        (
            &["tickets", "set", &number, "--severity", "7"],
            "use 1 (betriebsverhindernd), 2 (betriebsbehindernd), 3 (leicht) or 4 (sonstige)",
        ),
        (
            &["ingest", "--batch", "0", "x"],
            "use a whole number from 1",
        ),
        (&["--log-format", "xml", "tickets", "list"], "human, json"),
    ] {
        let (code, out, err) = outcome(data.path(), args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(valid), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    let help = bin::run(data.path(), &["tickets", "list", "--help"]);
    assert!(help.contains("closed"), "{help}");
    let help = bin::run(data.path(), &["outbox", "list", "--help"]);
    assert!(help.contains("temporary_failure"), "{help}");
}

#[test]
fn an_unknown_queue_is_an_error_naming_the_known_ones() {
    let data = samples_filed();
    let (code, out, err) = outcome(data.path(), &["tickets", "list", "--queue", "nosuch"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("unknown queue \"nosuch\""), "{err}");
    assert!(err.contains("support, betrieb, clearing"), "{err}");
    let number = first_ticket(data.path());
    let (code, _, err) = outcome(
        data.path(),
        &["tickets", "set", &number, "--queue", "nosuch"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("support, betrieb, clearing"), "{err}");
    // A configured queue without tickets is no error.
    let (code, out, _) = outcome(
        data.path(),
        &["tickets", "list", "--queue", "ressort-soziales"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "no tickets in queue ressort-soziales")
    );
}

/// Berlin wall-clock time to the second, as people read it.
fn berlin_time() -> regex::Regex {
    regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T").expect("regex")
}

/// `tickets show` prints what the requester wrote and the notes, with times in Berlin time
/// to the second; `--json` has RFC 3339 in UTC.
#[test]
fn tickets_show_prints_article_and_note_text_in_berlin_time() {
    let data = samples_filed();
    let number = first_ticket(data.path());
    bin::run(
        data.path(),
        &[
            "tickets",
            "set",
            &number,
            "--note",
            "Techniker informiert\nRückruf um 10 Uhr",
        ],
    );
    let show = bin::run(data.path(), &["tickets", "show", &number]);
    assert!(
        show.contains("seit 7:45 Uhr ist das Einwohnermeldeverfahren"),
        "{show}"
    );
    assert!(show.contains("Techniker informiert"), "{show}");
    assert!(show.contains("Rückruf um 10 Uhr"), "{show}");
    let created = show
        .lines()
        .find(|l| l.starts_with("Created:"))
        .expect("created");
    assert!(berlin_time().is_match(created), "{created}");
    let deadline = show
        .lines()
        .find(|l| l.starts_with("Deadline:"))
        .expect("deadline");
    assert!(berlin_time().is_match(deadline), "{deadline}");
    // No RFC 3339 (`T`, `Z`, offsets) and no microseconds anywhere a person reads.
    let machine = regex::Regex::new(r"\d\dT\d\d:|:\d\d\.\d+|\d\d:\d\dZ").expect("regex");
    assert!(!machine.is_match(&show), "{show}");
    for list in [
        bin::run(data.path(), &["tickets", "list"]),
        bin::run(data.path(), &["outbox", "list"]),
    ] {
        assert!(!machine.is_match(&list), "{list}");
        assert!(berlin_time().is_match(&list), "{list}");
    }

    let json: serde_json::Value = serde_json::from_str(&bin::run(
        data.path(),
        &["tickets", "show", &number, "--json"],
    ))
    .expect("json");
    for t in [
        &json["created"],
        &json["articles"][0]["created"],
        &json["audit"][0]["at"],
        &json["sla"]["due"],
    ] {
        let t = t.as_str().expect("an instant");
        assert!(t.ends_with('Z'), "{t}");
        t.parse::<jiff::Timestamp>().expect("RFC 3339");
    }
}

#[test]
fn empty_lists_say_so_and_lists_have_a_header() {
    let data = tempfile::tempdir().expect("tmp");
    let empty = tempfile::tempdir().expect("tmp");
    bin::run(
        data.path(),
        &["ingest", empty.path().to_str().expect("utf8")],
    );
    assert_eq!(bin::run(data.path(), &["tickets", "list"]), "no tickets\n");
    assert_eq!(
        bin::run(data.path(), &["outbox", "list"]),
        "no outgoing mail\n"
    );
    assert_eq!(
        bin::run(data.path(), &["quarantine", "list"]),
        "no quarantined messages\n"
    );
    // Machines get no lines at all.
    assert_eq!(bin::run(data.path(), &["tickets", "list", "--json"]), "");

    let data = samples_filed();
    let outbox = bin::run(data.path(), &["outbox", "list"]);
    let head = outbox.lines().next().expect("header");
    assert!(
        head.starts_with("ID") && head.contains("STATE") && head.contains("SUBJECT"),
        "{outbox}"
    );
    assert_eq!(
        bin::run(data.path(), &["outbox", "list", "--state", "sent"]),
        "no outgoing mail in state sent\n"
    );
}

/// `tickets set` without a change is a usage error (exit 2); values that are already so
/// change nothing, and it says so.
#[test]
fn tickets_set_with_nothing_to_change_says_so() {
    let data = samples_filed();
    let number = first_ticket(data.path());
    let (code, out, err) = outcome(data.path(), &["tickets", "set", &number]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--status") && err.contains("--note"), "{err}");

    let (code, out, _) = outcome(data.path(), &["tickets", "set", &number, "--status", "new"]);
    assert_eq!(code, 0);
    assert!(out.contains("unchanged"), "{out}");
    let show = bin::run(data.path(), &["tickets", "show", &number, "--json"]);
    assert!(!show.contains("state_changed"), "{show}");

    let out = bin::run(
        data.path(),
        &["tickets", "set", &number, "--status", "open"],
    );
    assert_eq!(out, format!("ticket {number}: state new → open\n"));
}

/// The table of `sla report` holds what its JSON holds: met, breached and open per class.
#[test]
fn sla_report_table_shows_the_open_deadlines() {
    let data = samples_filed();
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Berlin").expect("tz"))
        .date()
        .to_string();
    let args = [
        "sla",
        "report",
        "--calendar",
        "hessen",
        "--from",
        &today,
        "--to",
        &today,
    ];
    let json: serde_json::Value =
        serde_json::from_str(&bin::run(data.path(), &[&args[..], &["--json"]].concat()))
            .expect("json");
    let classes: Vec<String> = json["total"]["reactions"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| format!("{}/{}/{}", c["met"], c["breached"], c["open"]))
        .collect();
    let open: u64 = json["total"]["reactions"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c["open"].as_u64().expect("open"))
        .sum();
    assert_eq!(open, 3, "{json}");
    let table = bin::run(data.path(), &args);
    let total = table
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("total row");
    let cells: Vec<&str> = total.split_whitespace().rev().take(4).collect();
    let shown: Vec<String> = cells.into_iter().rev().map(str::to_string).collect();
    assert_eq!(shown, classes, "{table}");
    assert!(table.contains("met/breached/open"), "{table}");
}

/// A message that still cannot be filed stays in the quarantine under its number, and the
/// replay says why in words (exit 1).
#[test]
fn replaying_a_still_broken_message_says_why_and_keeps_its_id() {
    let data = tempfile::tempdir().expect("tmp");
    let mails = tempfile::tempdir().expect("tmp");
    std::fs::write(mails.path().join("kaputt.eml"), b"\x00\x01 kein header\n").expect("w");
    bin::run(
        data.path(),
        &["ingest", mails.path().to_str().expect("utf8")],
    );
    let listed = |data: &std::path::Path| -> Vec<i64> {
        bin::run(data, &["quarantine", "list", "--json"])
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["id"]
                    .as_i64()
                    .expect("id")
            })
            .collect()
    };
    let ids = listed(data.path());
    assert_eq!(ids.len(), 1);
    let id = ids[0].to_string();
    for _ in 0..2 {
        let (code, out, err) = outcome(data.path(), &["quarantine", "replay", &id]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains(&format!("message #{id} still cannot be filed"))
                && out.contains("this is not an e-mail message"),
            "{out}"
        );
        assert!(!out.contains('{'), "words, not JSON: {out}");
        assert_eq!(listed(data.path()), ids, "it keeps its number");
    }
    let (code, out, _) = outcome(data.path(), &["quarantine", "replay", &id, "--json"]);
    assert_eq!(code, 1);
    let o: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(o["outcome"], "quarantined", "{o}");
}

/// `poststelle tickets list | head -1`: the reader closes the pipe after one line, and the
/// list ends there without an error (Rust ignores SIGPIPE, so the write fails instead).
#[test]
fn piping_into_head_ends_quietly() {
    use std::io::BufRead;
    // More than a pipe holds (64 KiB), so that the list is still being written when the
    // reader goes away.
    let mails = tempfile::tempdir().expect("tmp");
    let long = "Drucker im Bürgerbüro druckt nur leere Seiten ".repeat(12);
    for i in 0..200 {
        let raw = mail(
            &[
                &format!("From: p{i}@gemeinde.example"),
                &format!("Subject: {i} {long}"),
                &format!("Message-ID: <head{i}@gemeinde.example>"),
            ],
            "x",
        );
        std::fs::write(mails.path().join(format!("{i:03}.eml")), raw).expect("write");
    }
    let data = tempfile::tempdir().expect("tmp");
    bin::run(
        data.path(),
        &["ingest", mails.path().to_str().expect("utf8")],
    );
    for args in [
        &["tickets", "list", "--limit", "1000"][..],
        &["tickets", "list", "--limit", "1000", "--json"],
    ] {
        let mut child = poststelle()
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        reader.read_line(&mut first).expect("one line");
        assert!(!first.is_empty());
        drop(reader);
        let out = child.wait_with_output().expect("exits");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every argument and option of every command has a line of help (read with `-h`, one line
/// per entry).
#[test]
fn help_describes_every_argument_and_option() {
    let commands: [&[&str]; 22] = [
        &[],
        &["run"],
        &["check"],
        &["classify"],
        &["ingest"],
        &["tickets"],
        &["tickets", "list"],
        &["tickets", "show"],
        &["tickets", "set"],
        &["outbox"],
        &["outbox", "list"],
        &["outbox", "retry"],
        &["outbox", "send"],
        &["quarantine"],
        &["quarantine", "list"],
        &["quarantine", "show"],
        &["quarantine", "replay"],
        &["sla"],
        &["sla", "deadline"],
        &["sla", "calendar"],
        &["sla", "escalate"],
        &["sla", "report"],
    ];
    // An entry: indented by at most six blanks (deeper lines continue the help of the one
    // before), the argument, at least two blanks, its help.
    let entry = regex::Regex::new(r"^ {1,6}\S").expect("regex");
    let described = regex::Regex::new(r"^ {1,6}\S.*\S {2,}\S").expect("regex");
    for cmd in commands {
        let help = crate::support::bin::stdout_of(poststelle().args(cmd).arg("-h"));
        let mut section = "";
        for l in help.lines() {
            if !l.starts_with(' ') {
                section = l;
                continue;
            }
            if section.ends_with(':') && entry.is_match(l) {
                assert!(described.is_match(l), "{cmd:?}: no help for {l:?}\n{help}");
            }
        }
    }
}
