//! The `poststelle` binary of this build, run as a command.
use std::path::Path;
use std::process::Command;

/// The binary, without a POSTSTELLE_CONFIG from the environment of the test run.
pub fn poststelle() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poststelle"));
    cmd.env_remove("POSTSTELLE_CONFIG");
    cmd
}

/// Runs the command, which must exit 0 (else the test fails with its stderr); its stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `poststelle --data-dir {data} {args}` on the embedded default configuration: its stdout.
pub fn run(data: &Path, args: &[&str]) -> String {
    stdout_of(poststelle().arg("--data-dir").arg(data).args(args))
}
