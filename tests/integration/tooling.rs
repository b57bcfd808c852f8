//! The project's own test and bench tooling: tests/servers.sh keeps the test OpenSMTPD off the
//! host's mail spool, and the benches print their figures only when they measure.
//!
//! The spool tests run the script's spool preparation alone (no server is started: only one
//! server set may run per machine) against a fake "system" spool that holds mail, given in
//! POSTSTELLE_TEST_SYSTEM_SPOOL, and start in its place a stand-in for smtpd that does what
//! the script used to do to the spool (clear the queue) and what smtpd does (write to it).
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::repo;

#[allow(dead_code)] // `measuring` reads this process's arguments: a bench binary's business
#[path = "../../benches/support/mode.rs"]
mod mode;

/// A fake system spool holding a queued mail and one being received: the spool, the queued
/// mail.
fn system_spool_with_mail(dir: &Path) -> (PathBuf, PathBuf) {
    let spool = dir.join("system-spool");
    let queued = spool.join("queue/4f/4f3a9c01/message");
    fs::create_dir_all(queued.parent().expect("parent")).expect("queue dir");
    fs::write(&queued, "the host's queued mail").expect("queued mail");
    fs::create_dir_all(spool.join("incoming/7b2e")).expect("incoming dir");
    fs::write(spool.join("incoming/7b2e/message"), "arriving").expect("incoming mail");
    (spool, queued)
}

/// `bash -c script` in the repository, with the fake system spool and a PATH prefix.
fn bash(script: &str, spool: &Path, path_first: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.current_dir(repo())
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\nsource tests/servers.sh\n{script}"
        ))
        .env("POSTSTELLE_TEST_SYSTEM_SPOOL", spool);
    if let Some(first) = path_first {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", first.display()));
    }
    cmd.output().expect("bash runs")
}

/// What smtpd does to its spool, and what the script did before it started smtpd.
const STAND_IN: &str = r#""${SERVERS_SPOOL_WRAP[@]}" sh -c 'rm -rf "$0"/queue/* "$0"/incoming/*; mkdir -p "$0"/queue/aa; echo test > "$0"/queue/aa/test-mail' "$POSTSTELLE_TEST_SYSTEM_SPOOL""#;

fn assert_untouched(spool: &Path, queued: &Path) {
    assert_eq!(
        fs::read_to_string(queued).ok().as_deref(),
        Some("the host's queued mail"),
        "the host's queued mail is gone"
    );
    assert!(spool.join("incoming/7b2e/message").exists());
    assert!(
        !spool.join("queue/aa/test-mail").exists(),
        "the test server wrote into the host's spool"
    );
}

#[test]
fn test_smtpd_never_touches_the_system_spool() {
    let dir = tempfile::tempdir().expect("tmp");
    let (spool, queued) = system_spool_with_mail(dir.path());
    let base = dir.path().join("base");
    fs::create_dir(&base).expect("base");
    let out = bash(
        &format!(
            "servers_spool_prepare {}\necho \"wrapped: ${{#SERVERS_SPOOL_WRAP[@]}}\"\n{STAND_IN}",
            base.display()
        ),
        &spool,
        None,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_untouched(&spool, &queued);
    if out.status.success() {
        // A private mount namespace (root): the stand-in wrote into a spool of its own.
        assert!(!stdout.contains("wrapped: 0"), "{stdout}");
        assert_eq!(
            fs::read_to_string(base.join("spool/queue/aa/test-mail")).ok(),
            Some("test\n".into()),
            "the stand-in's mail is not in the test's own spool"
        );
    } else {
        // No mount namespace here: the script refuses, since the spool holds mail.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("refusing"), "{stderr}");
    }
}

#[test]
fn without_a_mount_namespace_the_script_refuses_a_spool_with_mail() {
    let dir = tempfile::tempdir().expect("tmp");
    let (spool, queued) = system_spool_with_mail(dir.path());
    let base = dir.path().join("base");
    fs::create_dir(&base).expect("base");
    // An unshare that fails, as in a container without CAP_SYS_ADMIN.
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).expect("bin");
    let unshare = bin.join("unshare");
    fs::write(&unshare, "#!/bin/sh\nexit 1\n").expect("fake unshare");
    fs::set_permissions(&unshare, fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = bash(
        &format!("servers_spool_prepare {}\n{STAND_IN}", base.display()),
        &spool,
        Some(&bin),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing"), "{stderr}");
    assert!(stderr.contains(&spool.display().to_string()), "{stderr}");
    assert_untouched(&spool, &queued);
}

/// servers_stop kills the PID it holds: behind the namespace prefix it is the program's own.
#[test]
fn the_spool_wrapper_keeps_the_programs_pid() {
    let dir = tempfile::tempdir().expect("tmp");
    let spool = dir.path().join("system-spool");
    fs::create_dir(&spool).expect("spool");
    let base = dir.path().join("base");
    fs::create_dir(&base).expect("base");
    let out = bash(
        &format!(
            "servers_spool_prepare {} || exit 3\n\
             \"${{SERVERS_SPOOL_WRAP[@]}}\" sleep 30 &\n\
             pid=$!\n\
             for _ in $(seq 1 50); do [ \"$(cat /proc/$pid/comm)\" = sleep ] && break; sleep 0.1; done\n\
             cat /proc/$pid/comm\n\
             kill $pid\n\
             wait $pid || true",
            base.display()
        ),
        &spool,
        None,
    );
    if out.status.code() == Some(3) {
        // No namespace and an OpenSMTPD running (the test servers of this very run): refused.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("refusing"), "{stderr}");
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sleep");
}

#[test]
fn benches_report_figures_only_under_cargo_bench() {
    // `cargo test --all-targets` runs a bench binary with no arguments.
    assert!(!mode::measuring_with(Vec::<&str>::new()));
    // `cargo bench` passes --bench (and a filter, at times).
    assert!(mode::measuring_with(["--bench"]));
    assert!(mode::measuring_with(["--bench", "ingest"]));
    // divan's --test: one pass, like cargo test.
    assert!(!mode::measuring_with(["--bench", "--test"]));
}
