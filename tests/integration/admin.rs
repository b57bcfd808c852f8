//! What an administrator meets first: where the store is kept, what poststelle says when it
//! cannot be used, and credentials outside the systemd service.
use std::path::Path;
use std::process::{Command, Output};

use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::mail::request;

/// `poststelle {args}` run in `cwd`, without credentials from the environment of the test run.
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    poststelle()
        .current_dir(cwd)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("STATE_DIRECTORY")
        .args(args)
        .output()
        .expect("runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory with one request in it, for `ingest`.
fn one_request() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("1.eml"),
        request("anna@example.org", "Drucker defekt", "r1@example.org"),
    )
    .expect("mail");
    dir
}

/// A config file's data directory — its `data_dir`, or `poststelle-data` when it sets none — is
/// beside the config file, wherever the command is run from; `--data-dir` is relative to the
/// working directory, as any path given on the command line.
#[test]
fn a_relative_data_dir_is_relative_to_the_config_file() {
    let t = TempConfig::new(&TempConfig::shipped_text(), &[]);
    let config = t.path();
    let config = config.to_str().expect("utf8");
    let elsewhere = tempfile::tempdir().expect("tmp");
    let mail = one_request();
    let mail = mail.path().to_str().expect("utf8");

    ok(&run_in(
        elsewhere.path(),
        &["--config", config, "ingest", mail],
    ));
    assert!(t.dir.path().join("poststelle-data/poststelle.sqlite").is_file());
    let list = ok(&run_in(
        elsewhere.path(),
        &["--config", config, "tickets", "list"],
    ));
    assert!(list.contains("Drucker defekt"), "{list}");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).expect("cwd").count(),
        0,
        "nothing is made in the working directory"
    );

    // A relative data_dir and a relative SQLite database_url alike.
    let t = TempConfig::new(
        &format!("data_dir = \"state\"\n{}", TempConfig::shipped_text()),
        &[],
    );
    let config = t.path();
    let config = config.to_str().expect("utf8");
    ok(&run_in(
        elsewhere.path(),
        &["--config", config, "ingest", mail],
    ));
    assert!(t.dir.path().join("state/poststelle.sqlite").is_file());
    let t = TempConfig::new(
        &format!(
            "database_url = \"sqlite://db/tickets.sqlite\"\n{}",
            TempConfig::shipped_text()
        ),
        &[],
    );
    let config = t.path();
    let config = config.to_str().expect("utf8");
    ok(&run_in(
        elsewhere.path(),
        &["--config", config, "ingest", mail],
    ));
    assert!(t.dir.path().join("db/tickets.sqlite").is_file());

    // --data-dir: the working directory's.
    let t = TempConfig::new(&TempConfig::shipped_text(), &[]);
    let config = t.path();
    let config = config.to_str().expect("utf8");
    ok(&run_in(
        elsewhere.path(),
        &["--config", config, "--data-dir", "here", "ingest", mail],
    ));
    assert!(elsewhere.path().join("here/poststelle.sqlite").is_file());
    assert!(!t.dir.path().join("here").exists());
}

/// An IMAP mailbox's password from systemd's credentials directory.
fn credentials_config(password_file: &str) -> TempConfig {
    let text = TempConfig::shipped_text().replace(
        "kind = \"maildir\"\npath = \"inbox\"",
        &format!(
            "kind = \"imap\"\nhost = \"imap.example.org\"\nusername = \"support\"\n\
             password_file = \"{password_file}\""
        ),
    );
    assert!(text.contains("kind = \"imap\"\nhost"), "shipped mailbox replaced");
    TempConfig::new(&text, &[])
}

/// `$CREDENTIALS_DIRECTORY` in `password_file` is systemd's directory of `LoadCredential=` files:
/// expanded when set; when it is not (a command run by hand) `check` says so, where it comes
/// from and how to test by hand, once, without a second "has no password".
#[test]
fn credentials_directory_is_expanded_and_its_absence_explained() {
    for form in ["$CREDENTIALS_DIRECTORY", "${CREDENTIALS_DIRECTORY}"] {
        let t = credentials_config(&format!("{form}/imap-support"));
        let config = t.path();
        let config = config.to_str().expect("utf8");

        let out = run_in(t.dir.path(), &["--config", config, "check"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("names $CREDENTIALS_DIRECTORY, which is not set")
                && text.contains("LoadCredential=")
                && text.contains("CREDENTIALS_DIRECTORY=/path/to/dir poststelle --config"),
            "{text}"
        );
        assert!(!text.contains("has no password"), "{text}");
        assert!(text.ends_with("1 problem(s) found\n"), "{text}");
        let line = TempConfig::shipped_text()
            .lines()
            .position(|l| l.starts_with("kind = \"maildir\""))
            .expect("line")
            + 4;
        assert!(
            text.contains(&format!("poststelle.toml:{line}: mailbox \"eingang\"")),
            "{text}"
        );

        let creds = tempfile::tempdir().expect("tmp");
        let with_creds = |dir: &Path| {
            Command::new(env!("CARGO_BIN_EXE_poststelle"))
                .env("CREDENTIALS_DIRECTORY", dir)
                .args(["--config", config, "check"])
                .output()
                .expect("runs")
        };
        let out = with_creds(creds.path());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!(
                "password_file {}: ",
                creds.path().join("imap-support").display()
            )) && text.contains("LoadCredential=imap-support:"),
            "{text}"
        );
        std::fs::write(creds.path().join("imap-support"), "geheim\n").expect("credential");
        let out = with_creds(creds.path());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}
