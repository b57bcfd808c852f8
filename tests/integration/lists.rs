//! Distribution lists (issue 16, item 2) through the real binary on SQLite and PostgreSQL:
//! spreadsheet CSV in (windows-1252 with `;`, UTF-8 with BOM and `,`), bad rows reported by
//! line with nothing changed, `--replace` dry and for real, nested lists resolved without
//! duplicates and cycles refused, export read back unchanged, and read-only commands that
//! never create a store.
use std::path::{Path, PathBuf};

use poststelle::lists::{Language, Role};
use poststelle::store::lists::{self as stored, MemberFields};
use serde_json::Value;

use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both};

/// A configuration on the test's database, with `extra` appended (platforms).
struct Desk {
    config: TempConfig,
}

/// What a run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Desk {
    fn new(db: &TestDb, extra: &str) -> Desk {
        let text = format!(
            "database_url = {:?}\n{}\n{extra}",
            db.url(),
            TempConfig::shipped_text()
        );
        Desk {
            config: TempConfig::new(&text, &[]),
        }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.config.write(name, bytes);
        self.config.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = poststelle()
            .arg("--config")
            .arg(self.config.path())
            .args(args)
            .env("USER", "test-actor")
            .output()
            .expect("runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    fn import(&self, list: &str, file: &Path, flags: &[&str]) -> Run {
        let mut args = vec!["lists", "import", list, file.to_str().expect("utf8")];
        args.extend_from_slice(flags);
        self.run(&args)
    }

    /// `lists show NAME --json`.
    fn show(&self, list: &str) -> Value {
        serde_json::from_str(&self.ok(&["lists", "show", list, "--json"])).expect("json")
    }
}

/// (address, name, role, organisation, language) of every member `lists show --json` gives.
fn members(view: &Value) -> Vec<[String; 5]> {
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            ["address", "name", "role", "organisation", "language"]
                .map(|k| m[k].as_str().expect(k).to_string())
        })
        .collect()
}

fn row(address: &str, name: &str, role: &str, org: &str, lang: &str) -> [String; 5] {
    [address, name, role, org, lang].map(str::to_string)
}

/// German Excel's "CSV (Trennzeichen-getrennt)": windows-1252, `;`, CRLF, German headers and
/// roles, a quoted field holding the delimiter.
async fn semicolon_windows_1252_with_umlauts(db: &TestDb) {
    let desk = Desk::new(db, "");
    let text = "E-Mail-Adresse;Name;Rolle;Organisation;Sprache\r\n\
                juergen.weiss@Gemeinde-Buedingen.example;Jürgen Weiß;Kommune;Gemeinde Büdingen;Deutsch\r\n\
                Zoë.Ärger@kreis.example;\"Ärger; Zoë\";Auftraggeber;Kreis Groß-Gerau;en\r\n\
                oeffentlich@stadt.example;Öffentlichkeitsarbeit;;;\r\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "really windows-1252");
    let file = desk.file("verteiler.csv", &bytes);
    let r = desk.import("kommunen", &file, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("read as windows-1252, separated by ';'; 3 good row(s), 0 bad"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("list kommunen (new): added 3"),
        "{}",
        r.stdout
    );
    let view = desk.show("kommunen");
    assert_eq!(
        members(&view),
        [
            row(
                "juergen.weiss@gemeinde-buedingen.example",
                "Jürgen Weiß",
                "municipality",
                "Gemeinde Büdingen",
                "de"
            ),
            row(
                "Zoë.Ärger@kreis.example",
                "Ärger; Zoë",
                "auftraggeber",
                "Kreis Groß-Gerau",
                "en"
            ),
            row(
                "oeffentlich@stadt.example",
                "Öffentlichkeitsarbeit",
                "end_user",
                "",
                "de"
            ),
        ]
    );
    // People read it as written, umlauts and all.
    let shown = desk.ok(&["lists", "show", "kommunen"]);
    assert!(shown.contains("Jürgen Weiß"), "{shown}");
    assert!(
        shown.contains("Reaches:      3 address(es), 3 own member(s)"),
        "{shown}"
    );
}
both!(semicolon_windows_1252_with_umlauts);

/// UTF-8 with a BOM, `,`-separated, English headers, quoted fields with commas and a line
/// break (read as a blank), a column that is no column of a list.
async fn bom_utf8_with_commas(db: &TestDb) {
    let desk = Desk::new(db, "");
    let text = "\u{feff}email,name,role,organization,language,phone\n\
                anna@example.org,\"Müller, Anna\",staff,\"Stadt Gießen, Amt 10\",EN,0641 1\n\
                bernd@example.org,\"Bernd\nBrückner\",client,,de,\n";
    let file = desk.file("list.csv", text.as_bytes());
    let r = desk.import("staff", &file, &["--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(report["encoding"], "UTF-8 with BOM");
    assert_eq!(report["delimiter"], ",");
    assert_eq!(report["ignored_columns"], serde_json::json!(["phone"]));
    assert_eq!(report["applied"], true);
    assert_eq!(report["added"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        members(&desk.show("staff")),
        [
            row(
                "anna@example.org",
                "Müller, Anna",
                "staff",
                "Stadt Gießen, Amt 10",
                "en"
            ),
            // A line break typed into a cell: one line, for the headers of notices.
            row(
                "bernd@example.org",
                "Bernd Brückner",
                "auftraggeber",
                "",
                "de"
            ),
        ]
    );
}
both!(bom_utf8_with_commas);

/// Every bad row is named by the line it begins on (a quoted line break before it counted),
/// and a file with bad rows changes nothing; --skip-bad-rows imports the rest.
async fn bad_rows_are_reported_by_line_and_change_nothing(db: &TestDb) {
    let desk = Desk::new(db, "");
    let good = desk.file("good.csv", b"E-Mail;Name\nalt@example.org;Alt\n");
    assert_eq!(desk.import("verteiler", &good, &[]).code, 0);
    let before = desk.show("verteiler");
    let text = "E-Mail;Name;Rolle;Sprache\n\
                neu@example.org;\"Neu\nMitZeilenumbruch\";;\n\
                \n\
                kein-at.example.org;Ohne At;;\n\
                NEU@Example.org;Doppelt;;\n\
                chef@example.org;Chef;Chef;\n\
                fr@example.org;Franz;;fr\n\
                ;Ohne Adresse;;\n\
                zu@viele.example;Zu;;de;extra\n\
                ok@example.org;Ok;Mitarbeiter;en\n";
    let file = desk.file("bad.csv", text.as_bytes());
    let r = desk.import("verteiler", &file, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    for expected in [
        "line 5: \"kein-at.example.org\" is not an e-mail address (no @)",
        "line 6: NEU@example.org is on line 2 already",
        "line 7: the role \"Chef\" is unknown",
        "line 8: the language \"fr\" is unknown",
        "line 9: no e-mail address",
        "line 10: 5 fields, but the header row has 4",
    ] {
        assert!(r.stdout.contains(expected), "{expected}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("2 good row(s), 6 bad"), "{}", r.stdout);
    // What the good rows would do is shown, and that nothing was done.
    assert!(r.stdout.contains("would add 2"), "{}", r.stdout);
    assert!(
        r.stdout.contains("nothing changed (bad rows)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("6 bad row(s) in ") && r.stderr.contains("--skip-bad-rows"),
        "{}",
        r.stderr
    );
    let after = desk.show("verteiler");
    assert_eq!(members(&after), members(&before));
    assert_eq!(after["updated"], before["updated"]);

    let r = desk.import("verteiler", &file, &["--skip-bad-rows"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("line 6: NEU@example.org"), "{}", r.stdout);
    let addresses: Vec<String> = members(&desk.show("verteiler"))
        .into_iter()
        .map(|m| m[0].clone())
        .collect();
    assert_eq!(
        addresses,
        ["alt@example.org", "neu@example.org", "ok@example.org"]
    );
}
both!(bad_rows_are_reported_by_line_and_change_nothing);

/// `--replace --dry-run` names what would go and changes nothing; `--replace` makes the list
/// exactly the file, keeping the bounce count of members that stay. 10,000 members, so that
/// the statements are split.
async fn replace_dry_and_for_real(db: &TestDb) {
    let desk = Desk::new(db, "");
    let mut text = String::from("E-Mail;Name;Rolle\n");
    for i in 0..10_000 {
        text.push_str(&format!("nutzer{i}@example.org;Nutzer {i};Endnutzer\n"));
    }
    let big = desk.file("alle.csv", text.as_bytes());
    let r = desk.import("alle", &big, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("added 10000"), "{}", r.stdout);
    assert!(r.stdout.contains("… and 9980 more to add"), "{}", r.stdout);
    {
        let mut conn = db.store.pool().acquire().await.expect("conn");
        stored::record_bounce(&mut conn, "NUTZER1@example.org", 1, 5)
            .await
            .expect("bounce");
    }

    // The file now: nutzer0 … nutzer2 stay (nutzer1 with another name), the rest go, one new.
    let small = desk.file(
        "neu.csv",
        "E-Mail;Name;Rolle\nnutzer0@example.org;Nutzer 0;Endnutzer\n\
         Nutzer1@example.org;Nutzer Eins;Endnutzer\nnutzer2@example.org;Nutzer 2;Endnutzer\n\
         neu@example.org;Neu;Kommune\n"
            .as_bytes(),
    );
    let r = desk.import("alle", &small, &["--replace", "--dry-run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("list alle: would add 1, would change 1, would remove 9997; 2 unchanged"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "  ~ Nutzer1@example.org: address \"nutzer1@example.org\" → \"Nutzer1@example.org\", \
             name \"Nutzer 1\" → \"Nutzer Eins\""
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("  - nutzer9999@example.org  Nutzer 9999 (end_user, de)"),
        "removals are listed, every one"
    );
    assert!(
        r.stdout.contains("nothing changed (dry run)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        desk.show("alle")["members"].as_array().map(Vec::len),
        Some(10_000)
    );

    let r = desk.import("alle", &small, &["--replace"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("list alle: added 1, changed 1, removed 9997; 2 unchanged"),
        "{}",
        r.stdout
    );
    let view = desk.show("alle");
    assert_eq!(
        members(&view),
        [
            row("nutzer0@example.org", "Nutzer 0", "end_user", "", "de"),
            row("Nutzer1@example.org", "Nutzer Eins", "end_user", "", "de"),
            row("nutzer2@example.org", "Nutzer 2", "end_user", "", "de"),
            row("neu@example.org", "Neu", "municipality", "", "de"),
        ]
    );
    assert_eq!(
        view["members"][1]["bounces"], 1,
        "a changed member keeps its bounces"
    );
    // The import is audited, counts and file.
    let audit = crate::support::db::scalar_text(
        &db.store,
        "SELECT detail FROM audit WHERE event = 'list_imported' ORDER BY id DESC LIMIT 1",
    )
    .await;
    let detail: Value = serde_json::from_str(&audit).expect("json");
    assert_eq!(detail["removed"], 9997);
    assert_eq!(detail["replace"], true);
}
both!(replace_dry_and_for_real);

/// A list that includes others reaches each address once, whatever its case, with the flags
/// of every membership; an inclusion through which a list would reach itself is refused.
async fn nested_lists_resolve_once_and_refuse_cycles(db: &TestDb) {
    let desk = Desk::new(db, "");
    let store = &db.store;
    for name in ["alle", "kommunen", "kreis", "staff"] {
        stored::create(store, name, "", false, "test")
            .await
            .expect(name);
    }
    let add = async |list: &str, address: &str, name: &str, role: Role| {
        let fields = MemberFields {
            name: Some(name.into()),
            role: Some(role),
            ..MemberFields::default()
        };
        stored::add_member(store, list, address, &fields, "test")
            .await
            .expect(address);
    };
    add("alle", "leitung@example.org", "Leitung", Role::Staff).await;
    add("kommunen", "Anna@example.org", "", Role::Municipality).await;
    add(
        "kommunen",
        "buergermeister@stadt.example",
        "BM",
        Role::Municipality,
    )
    .await;
    add(
        "kreis",
        "anna@example.org",
        "Anna Kreis",
        Role::Municipality,
    )
    .await;
    add(
        "kreis",
        "landrat@kreis.example",
        "Landrat",
        Role::Auftraggeber,
    )
    .await;
    add("staff", "LEITUNG@example.org", "Leitung 2", Role::Staff).await;
    add("staff", "bob@example.org", "Bob", Role::Staff).await;
    let fields = MemberFields {
        language: Some(Language::En),
        ..MemberFields::default()
    };
    stored::add_member(store, "staff", "bob@example.org", &fields, "test")
        .await
        .expect("bob in English");

    desk.ok(&["lists", "include", "alle", "kommunen"]);
    desk.ok(&["lists", "include", "alle", "staff"]);
    desk.ok(&["lists", "include", "kommunen", "kreis"]);
    // Reached twice (directly and through kommunen): still once.
    desk.ok(&["lists", "include", "alle", "kreis"]);
    {
        let mut conn = store.pool().acquire().await.expect("conn");
        for _ in 0..3 {
            stored::record_bounce(&mut conn, "landrat@kreis.example", 7, 3)
                .await
                .expect("bounce");
        }
        assert!(
            stored::unsubscribe(&mut conn, "staff", "Bob@example.org", 9)
                .await
                .expect("unsub")
        );
    }

    let mut conn = store.pool().acquire().await.expect("conn");
    let reached = stored::resolve(&mut conn, "alle").await.expect("resolve");
    drop(conn);
    let got: Vec<(&str, &str, Vec<&str>)> = reached
        .iter()
        .map(|r| {
            (
                r.member.address.as_str(),
                r.member.name.as_str(),
                r.via.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("leitung@example.org", "Leitung", vec!["alle", "staff"]),
            ("Anna@example.org", "Anna Kreis", vec!["kommunen", "kreis"]),
            ("buergermeister@stadt.example", "BM", vec!["kommunen"]),
            ("landrat@kreis.example", "Landrat", vec!["kreis"]),
            ("bob@example.org", "Bob", vec!["staff"]),
        ]
    );
    let landrat = &reached[3];
    assert!(landrat.flagged && landrat.bounces == 3);
    assert_eq!(reached[4].unsubscribed_from, ["staff"]);
    assert_eq!(reached[4].member.language, Language::En);

    // kreis ← kommunen ← alle: kreis must not include alle, nor itself.
    let r = desk.run(&["lists", "include", "kreis", "alle"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "the list \"kreis\" cannot include \"alle\": \"alle\" includes \"kreis\" already"
        ),
        "{}",
        r.stderr
    );
    let r = desk.run(&["lists", "include", "kreis", "kommunen"]);
    assert!(
        r.stderr.contains("\"kommunen\" includes \"kreis\" already"),
        "{}",
        r.stderr
    );
    desk.ok(&["lists", "exclude", "alle", "kreis"]);
    let r = desk.run(&["lists", "include", "kreis", "alle"]);
    assert!(
        r.stderr
            .contains("\"alle\" reaches \"kreis\" (alle → kommunen → kreis) already"),
        "{}",
        r.stderr
    );
    assert!(
        desk.run(&["lists", "include", "kreis", "kreis"])
            .stderr
            .contains("cannot include itself")
    );

    // `lists show` says what the fan-out recorded, and the reach.
    let shown = desk.ok(&["lists", "show", "kreis"]);
    let landrat_line = shown
        .lines()
        .find(|l| l.contains("landrat@kreis.example"))
        .expect("landrat");
    assert!(landrat_line.contains("      3  flagged "), "{shown}");
    assert!(landrat_line.contains("(skipped)"), "{shown}");
    assert!(shown.contains("Included by:  kommunen"), "{shown}");
    let staff = desk.show("staff");
    assert!(staff["members"][1]["unsubscribed"].is_string(), "{staff}");
    assert_eq!(desk.show("alle")["reached"], 5);

    // A list that another includes is not deleted under it.
    let r = desk.run(&["lists", "delete", "kreis"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("`poststelle lists exclude kommunen kreis`"),
        "{}",
        r.stderr
    );
    desk.ok(&["lists", "exclude", "kommunen", "kreis"]);
    assert!(
        desk.ok(&["lists", "delete", "kreis"])
            .contains("deleted with its 2 member(s)")
    );
}
both!(nested_lists_resolve_once_and_refuse_cycles);

/// What `lists export` writes, `lists import` reads back unchanged: a `--replace` dry run of
/// the export changes nothing, and a new list from it has the same members.
async fn export_round_trips(db: &TestDb) {
    let desk = Desk::new(db, "");
    let text = "E-Mail;Name;Rolle;Organisation;Sprache\n\
                a@example.org;\"Weiß; \"\"Jo\"\"\";Kommune;Stadt Gießen;en\n\
                B.Mixed@example.org;;Mitarbeiter;;de\n\
                c@example.org;\"Zeile\neins\";Auftraggeber;Land;de\n";
    let file = desk.file("a.csv", text.as_bytes());
    assert_eq!(desk.import("quelle", &file, &[]).code, 0);
    let exported = poststelle()
        .arg("--config")
        .arg(desk.config.path())
        .args(["lists", "export", "quelle"])
        .output()
        .expect("runs");
    assert!(exported.status.success());
    let bytes = exported.stdout;
    assert!(bytes.starts_with("\u{feff}E-Mail;Name;Rolle;Organisation;Sprache\r\n".as_bytes()));
    assert!(
        String::from_utf8_lossy(&bytes)
            .contains("a@example.org;\"Weiß; \"\"Jo\"\"\";Kommune;Stadt Gießen;en\r\n"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let back = desk.file("export.csv", &bytes);
    let r = desk.import("quelle", &back, &["--replace", "--dry-run"]);
    assert!(
        r.stdout
            .contains("would add 0, would change 0, would remove 0; 3 unchanged"),
        "{}",
        r.stdout
    );
    assert_eq!(desk.import("kopie", &back, &[]).code, 0);
    assert_eq!(members(&desk.show("kopie")), members(&desk.show("quelle")));
}
both!(export_round_trips);

/// A platform's default lists meet the store when lists are used: `lists list` warns about
/// one that is missing, and a list a platform sends to is not deleted.
async fn platform_lists_are_checked_against_the_store(db: &TestDb) {
    let desk = Desk::new(
        db,
        "[[platform]]\nname = \"zidkor\"\ncalendar = \"rlp\"\nlists = [\"zidkor-nutzer\", \"Zidkor-Kommunen\"]\n",
    );
    let file = desk.file("n.csv", b"E-Mail\nn@example.org\n");
    assert_eq!(desk.import("zidkor-nutzer", &file, &[]).code, 0);
    let r = desk.run(&["lists", "list"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("zidkor-nutzer"), "{}", r.stdout);
    assert!(
        r.stdout.contains("zidkor"),
        "the PLATFORMS column: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains(
            "warning: platform \"zidkor\" sends its notices to the list \"zidkor-kommunen\", \
             which does not exist"
        ),
        "{}",
        r.stderr
    );
    let r = desk.run(&["lists", "delete", "zidkor-nutzer"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("default list of platform zidkor"),
        "{}",
        r.stderr
    );
    assert_eq!(
        desk.show("zidkor-nutzer")["platforms"],
        serde_json::json!(["zidkor"])
    );
}
both!(platform_lists_are_checked_against_the_store);

/// Commands that read lists, and a dry run, never create a store; an import does.
#[test]
fn read_only_list_commands_never_create_a_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("nowhere/data");
    let file = dir.path().join("l.csv");
    std::fs::write(&file, "E-Mail\na@example.org\n").expect("file");
    let file = file.to_str().expect("utf8");
    for args in [
        &["lists", "show", "kommunen"][..],
        &["lists", "list"],
        &["lists", "export", "kommunen"],
        &["lists", "add", "kommunen", "a@example.org"],
        &["lists", "include", "a", "b"],
        &["lists", "delete", "kommunen"],
    ] {
        let out = poststelle()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("there is no poststelle store at"), "{err}");
        assert!(
            !dir.path().join("nowhere").exists(),
            "{args:?} created a store"
        );
    }
    let out = poststelle()
        .arg("--data-dir")
        .arg(&data)
        .args(["lists", "import", "kommunen", file, "--dry-run"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("list kommunen (new): would add 1"), "{text}");
    assert!(text.contains("there is no store yet"), "{text}");
    assert!(
        !dir.path().join("nowhere").exists(),
        "a dry run created a store"
    );

    let out = poststelle()
        .arg("--data-dir")
        .arg(&data)
        .args(["lists", "import", "kommunen", file])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(data.join("poststelle.sqlite").exists());
}

/// A member's fields through `lists add`: a new one gets the defaults, a known one (any case)
/// changes only what is given, and an address that is none is refused before the store.
#[test]
fn add_changes_only_the_fields_given() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let run = |args: &[&str]| crate::support::bin::run(data, args);
    run(&["lists", "create", "team", "--description", "Das Team"]);
    assert_eq!(
        run(&["lists", "add", "team", "Eva@Example.ORG", "--name", "Eva"]),
        "Eva@example.org added to list team\n"
    );
    assert_eq!(
        run(&[
            "lists",
            "add",
            "team",
            "eva@example.org",
            "--role",
            "kommune",
            "--language",
            "en"
        ]),
        "eva@example.org in list team: address \"Eva@example.org\" → \"eva@example.org\", role \
         \"end_user\" → \"municipality\", language \"de\" → \"en\"\n"
    );
    let shown = run(&["lists", "show", "team", "--json"]);
    let v: Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(v["members"][0]["name"], "Eva", "kept");
    assert_eq!(v["description"], "Das Team");
    assert_eq!(
        run(&["lists", "set", "team", "--unsubscribe", "on"]),
        "list team: unsubscribe off → on\n"
    );
    let out = poststelle()
        .arg("--data-dir")
        .arg(data)
        .args(["lists", "add", "team", "eva at example.org"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an e-mail address"));
    assert_eq!(
        run(&["lists", "remove", "team", "EVA@example.org"]),
        "EVA@example.org removed from list team\n"
    );
    assert!(run(&["lists", "show", "team"]).contains("Members:\n  none\n"));
    // A role or language outside the set is the parser's error, naming the valid values.
    let out = poststelle()
        .arg("--data-dir")
        .arg(data)
        .args(["lists", "add", "team", "x@example.org", "--role", "chef"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("end_user"));
}
