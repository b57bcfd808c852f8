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
    assert!(
        t.dir
            .path()
            .join("poststelle-data/poststelle.sqlite")
            .is_file()
    );
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
    assert!(
        text.contains("kind = \"imap\"\nhost"),
        "shipped mailbox replaced"
    );
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

/// An error is said once: no cause repeated by the error that wraps it, no "error: error:".
fn said_once(err: &str) {
    assert!(!err.contains("error: error:"), "{err}");
    for repeated in [
        "(os error 17): File exists",
        "(os error 13): Permission denied",
        "unable to open database file: error returned",
    ] {
        assert!(!err.contains(repeated), "{err}");
    }
}

/// `--data-dir` naming a file: said in words, for commands that create a store and for those
/// that read one, instead of "File exists (os error 17): File exists (os error 17)".
#[test]
fn a_file_given_as_data_directory_is_called_a_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("poststelle.toml.bak");
    std::fs::write(&file, "not a directory").expect("file");
    let mail = one_request();
    let mail = mail.path().to_str().expect("utf8");
    let file_arg = file.to_str().expect("utf8");
    for args in [
        &["--data-dir", file_arg, "ingest", mail][..],
        &["--data-dir", file_arg, "tickets", "list"],
        &["--data-dir", &format!("{file_arg}/sub"), "ingest", mail],
    ] {
        let out = run_in(dir.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{} is a file, not a directory", file.display())),
            "{args:?}: {err}"
        );
        assert!(err.contains("\n    fix: move the file"), "{err}");
        said_once(&err);
    }

    // The file transport's directory and the default Maildir alike.
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf8");
    ok(&run_in(
        dir.path(),
        &["--data-dir", data_arg, "ingest", mail],
    ));
    std::fs::write(data.join("sent"), "").expect("file");
    let out = run_in(dir.path(), &["--data-dir", data_arg, "outbox", "send"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot create the directory for sent mail (outbox.transport = \"file\") {0}: {0} is a file, not a directory",
            data.join("sent").display()
        )),
        "{err}"
    );
    std::fs::remove_file(data.join("sent")).expect("rm");
    std::fs::write(data.join("inbox"), "").expect("file");
    let out = run_in(dir.path(), &["--data-dir", data_arg, "run"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot create the Maildir of mailbox \"eingang\" at {0}: {0} is a file, not a directory",
            data.join("inbox").display()
        )),
        "{err}"
    );
}

/// A store file that is not a SQLite database (a copy gone wrong, another program's file):
/// named with the fix at once, instead of SQLite's "file is not a database" after the pool
/// has tried for 30 seconds.
#[test]
fn a_store_that_is_no_database_is_named_with_the_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data");
    let store = data.join("poststelle.sqlite");
    std::fs::write(&store, "Ticketliste 2026\n".repeat(500)).expect("garbage");
    let data_arg = data.to_str().expect("utf8");
    let out = run_in(dir.path(), &["--data-dir", data_arg, "tickets", "list"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot open the database file {}: it is not a SQLite database",
            store.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("\n    fix: restore the file from a backup"),
        "{err}"
    );
    said_once(&err);
}

/// A data directory poststelle may not write: what (the database file, the data directory),
/// where, whose it is, and the fix, once — instead of SQLite's "unable to open database file"
/// three times. File permissions do not bind root, so as root the command runs as nobody.
#[test]
fn an_unwritable_data_directory_says_whose_it_is_and_what_to_do() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;

    let base = tempfile::tempdir().expect("tmp");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let as_root = std::fs::metadata(base.path()).expect("meta").uid() == 0;
    let locked = base.path().join("locked");
    std::fs::create_dir(&locked).expect("dir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let mail = base.path().join("mail");
    std::fs::create_dir(&mail).expect("dir");
    std::fs::write(
        mail.join("1.eml"),
        request("anna@example.org", "Drucker defekt", "r1@example.org"),
    )
    .expect("mail");
    let run = |data: &Path| {
        let mut cmd = poststelle();
        if as_root {
            cmd.uid(65534).gid(65534);
        }
        cmd.current_dir(base.path())
            .arg("--data-dir")
            .arg(data)
            .arg("ingest")
            .arg(&mail)
            .output()
            .expect("runs")
    };

    let out = run(&locked);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let shown = locked.display();
    assert!(
        err.starts_with(&format!(
            "error: cannot create the database file and its journal (-wal, -shm) in {shown}: \
             permission denied: {shown} belongs to uid "
        )) && err.contains("with mode 0555, and poststelle runs as uid "),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "\n    fix: give {shown} to the user poststelle runs as (`chown poststelle: {shown}`)"
        )) && err.contains("StateDirectory="),
        "{err}"
    );
    assert_eq!(err.matches("permission denied").count(), 1, "{err}");
    said_once(&err);

    let deeper = locked.join("poststelle");
    let out = run(&deeper);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: cannot create the data directory {}: permission denied: {shown} belongs to",
            deeper.display()
        )) && err.contains(&format!(
            "`install -d -o poststelle -m 0750 {}`",
            deeper.display()
        )),
        "{err}"
    );
    said_once(&err);
}

/// A configuration error of a command other than `check` is printed as `check` prints it,
/// each line with one "error:".
#[test]
fn a_configuration_error_has_one_error_prefix() {
    let text = TempConfig::shipped_text()
        .replace("language = \"de\"", "language = \"de\"\nlanguag = \"en\"");
    let line = text
        .lines()
        .position(|l| l.starts_with("languag "))
        .expect("line")
        + 1;
    let t = TempConfig::new(&text, &[]);
    let config = t.path();
    let out = run_in(
        t.dir.path(),
        &[
            "--config",
            config.to_str().expect("utf8"),
            "tickets",
            "list",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: {}:{line}: unknown field `languag`",
            config.display()
        )),
        "{err}"
    );
    said_once(&err);
}

/// PostgreSQL that refuses: the server (never the password) and what to check, at once
/// rather than after the pool's 30 s of retries.
#[test]
fn postgres_that_refuses_names_the_server_and_what_to_check() {
    let admin = std::env::var("POSTSTELLE_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let (server, _) = admin.rsplit_once('/').expect("admin URL");
    let host_port = server.rsplit_once('@').map_or(server, |(_, h)| h);
    let cases = [
        (
            "postgres://poststelle:geheim@127.0.0.1:1/poststelle".to_string(),
            "error: cannot connect to PostgreSQL at 127.0.0.1:1: connection refused".to_string(),
            "pg_isready -h 127.0.0.1 -p 1",
        ),
        (
            format!("postgres://poststelle_no_such_role:geheim@{host_port}/postgres"),
            format!("error: PostgreSQL at {host_port} refused user \"poststelle_no_such_role\": "),
            "pg_hba.conf",
        ),
        (
            format!("{server}/poststelle_no_such_db"),
            format!("error: PostgreSQL at {host_port} has no database \"poststelle_no_such_db\""),
            "createdb -h",
        ),
    ];
    for (url, message, fix) in cases {
        let t = TempConfig::new(
            &format!("database_url = {url:?}\n{}", TempConfig::shipped_text()),
            &[],
        );
        let started = std::time::Instant::now();
        let out = run_in(
            t.dir.path(),
            &[
                "--config",
                t.path().to_str().expect("utf8"),
                "tickets",
                "list",
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.starts_with(&message), "{err}");
        assert!(err.contains(fix), "{err}");
        assert!(!err.contains("geheim"), "{err}");
        assert!(started.elapsed().as_secs() < 10, "{err}");
    }
}
