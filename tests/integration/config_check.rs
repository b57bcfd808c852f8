//! `poststelle check`: every problem with file, line and what to do; exit 0 only when valid.
use std::process::Command;

use crate::support::config::TempConfig;
use crate::support::repo;

fn check(t: &TempConfig) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_poststelle"))
        .arg("--config")
        .arg(t.path())
        .arg("check")
        .output()
        .expect("runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The number of the first line of `text` that starts with `prefix`, counted from 1.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .expect("line")
        + 1
}

#[test]
fn the_shipped_configuration_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_poststelle"))
        .arg("check")
        .env_remove("POSTSTELLE_CONFIG")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ok: embedded:poststelle.toml"), "{text}");

    // The same files on disk load the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_poststelle"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/poststelle.toml"),
            "check",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unknown_keys_name_file_and_line() {
    let text = TempConfig::shipped_text()
        .replace("language = \"de\"", "language = \"de\"\nlanguag = \"en\"");
    let line = line_of(&text, "languag ");
    let t = TempConfig::new(&text, &[]);
    let (code, out) = check(&t);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("poststelle.toml:{line}: unknown field `languag`")),
        "{out}"
    );
    assert!(out.contains("fix:"), "{out}");
}

#[test]
fn every_rule_problem_is_reported_with_its_line() {
    let rules = r#"# line 1
[[rule]]
name = "bad-regex"
when.subject = '(unclosed'
then.queue = "support"

[[rule]]
name = "unknown-queue"
when.subject = 'x'
then.queue = "gibtsnicht"

[[rule]]
name = "bad-severity"
when.body = 'x'
then.severity = 7

[[rule]]
name = "missing-template"
when.subject = 'y'
then.auto_reply = "gibtsnicht"
"#;
    let typo = "[[rule]]\nname = \"typo\"\nwhen.subjekt = 'x'\n";
    let t = TempConfig::new(
        &TempConfig::shipped_text(),
        &[("20-bad.toml", rules), ("30-typo.toml", typo)],
    );
    let (code, out) = check(&t);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("20-bad.toml:4: invalid regex \"(unclosed\" in `subject`"),
        "{out}"
    );
    assert!(
        out.contains("20-bad.toml:10: unknown queue \"gibtsnicht\""),
        "{out}"
    );
    assert!(
        out.contains("20-bad.toml:15: severity 7 is no Störungsklasse"),
        "{out}"
    );
    assert!(
        out.contains("20-bad.toml:20: template \"gibtsnicht\" does not exist"),
        "{out}"
    );
    assert!(
        out.contains("30-typo.toml:3: unknown field `subjekt`"),
        "{out}"
    );
    assert!(out.contains("5 problem(s) found"), "{out}");
}

#[test]
fn config_references_are_checked() {
    let text = TempConfig::shipped_text()
        .replace(
            "default_queue = \"support\"",
            "default_queue = \"nirgends\"",
        )
        .replace("home_state = \"HE\"", "home_state = \"XY\"")
        .replace(
            "staff = \"servicedesk@kommunal-it.example\"",
            "staff = \"Servicedesk <servicedesk@kommunal-it.example>\"",
        );
    let t = TempConfig::new(&text, &[]);
    let (code, out) = check(&t);
    assert_eq!(code, 1);
    assert!(
        out.contains("default_queue names the unknown queue \"nirgends\""),
        "{out}"
    );
    assert!(
        out.contains("home_state \"XY\" is no German state code"),
        "{out}"
    );
    assert!(out.contains("is not an e-mail address"), "{out}");
}

#[test]
fn contact_list_problems_are_reported() {
    let t = TempConfig::with_contacts(
        "kontakte.csv",
        "Leistung;Stichwörter;Ressort;Farbe;EfA\nWohngeld;Wohngeld;gibtsnicht;blau;vielleicht\n"
            .as_bytes(),
    );
    let (code, out) = check(&t);
    assert_eq!(code, 1);
    assert!(
        out.contains("kontakte.csv:1: unknown column \"Farbe\""),
        "{out}"
    );
    assert!(
        out.contains("kontakte.csv:2: \"vielleicht\" is not an EfA kind"),
        "{out}"
    );
    assert!(
        out.contains("kontakte.csv:2: unknown queue \"gibtsnicht\""),
        "{out}"
    );
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_poststelle"))
        .args(["--config", "/nonexistent/poststelle.toml", "check"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/nonexistent/poststelle.toml: cannot read the file"),
        "{text}"
    );
}

#[test]
fn template_syntax_errors_are_reported() {
    let tpl = repo().join("templates");
    let text = TempConfig::shipped_text().replace(
        &format!("templates_dir = {tpl:?}"),
        "templates_dir = \"tpl\"",
    );
    let t = TempConfig::new(&text, &[]);
    for name in ["eingangsbestaetigung", "nutzerkonto-efa-outbound"] {
        let body = std::fs::read(tpl.join(format!("de/{name}.txt"))).expect("tpl");
        t.write(&format!("tpl/de/{name}.txt"), &body);
    }
    t.write(
        "tpl/de/kaputt.txt",
        b"{% block subject %}x{% endblock %}\n{% block body %}{{ x }\n",
    );
    let (code, out) = check(&t);
    assert_eq!(code, 1);
    assert!(out.contains("kaputt.txt:2: template syntax error"), "{out}");
}

#[test]
fn a_claim_shorter_than_a_send_names_file_line_and_minimum() {
    let text = TempConfig::shipped_text().replace(
        "max_attempts = 10",
        "max_attempts = 10\nclaim_seconds = 5\n[outbox.smtp]\nhost = \"mail.example\"\ntimeout_seconds = 40",
    )
    .replace("transport = \"file\"", "transport = \"smtp\"");
    let line = line_of(&text, "claim_seconds");
    let t = TempConfig::new(&text, &[]);
    let (code, out) = check(&t);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("poststelle.toml:{line}: outbox.claim_seconds = 5")),
        "{out}"
    );
    assert!(out.contains("use at least 80"), "{out}");

    // Left out, it grows with the SMTP timeout instead of failing.
    let t = TempConfig::new(&text.replace("claim_seconds = 5\n", ""), &[]);
    let cfg = t.load();
    assert_eq!(cfg.settings.outbox.claim.as_secs(), 120);
    let t = TempConfig::new(
        &text
            .replace("claim_seconds = 5\n", "")
            .replace("timeout_seconds = 40", "timeout_seconds = 90"),
        &[],
    );
    assert_eq!(t.load().settings.outbox.claim.as_secs(), 180);
}

/// Three different problems in one rule: the unknown key does not hide the broken regex and
/// the unknown queue; every hint names the README section of the key; no Rust type names.
#[test]
fn every_problem_of_a_rule_file_is_reported_not_only_the_first() {
    let rules = r#"[[rule]]
name = "drei-fehler"
prio = 10
when.subject = '(unclosed'
then.queue = "ressort-inners"
"#;
    let text = TempConfig::shipped_text().replace("instance_id = 10", "instance_id = 300");
    let t = TempConfig::new(&text, &[("20-bad.toml", rules)]);
    let (code, out) = check(&t);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("20-bad.toml:3: unknown field `prio`"), "{out}");
    assert!(
        out.contains("see README.md, section 'Rules'"),
        "the hint points at the section: {out}"
    );
    assert!(
        out.contains("20-bad.toml:4: invalid regex \"(unclosed\""),
        "{out}"
    );
    assert!(
        out.contains("20-bad.toml:5: unknown queue \"ressort-inners\""),
        "{out}"
    );
    let line = line_of(&text, "instance_id = ");
    assert!(
        out.contains(&format!(
            "poststelle.toml:{line}: invalid value: integer `300`, expected a whole number from 0 to 255"
        )),
        "{out}"
    );
    assert!(
        out.contains("see README.md, section 'Configuration'"),
        "{out}"
    );
    assert!(!out.contains("u8"), "no Rust type names: {out}");
    assert!(out.contains("4 problem(s) found"), "{out}");
}
