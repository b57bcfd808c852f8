//! Whether a bench binary measures (`cargo bench`) or is the one-pass smoke test that
//! `cargo test --all-targets` makes of it. Rates, goals and set-up figures are printed only
//! when it measures: from one pass of a debug build they mean nothing, and a line like
//! "2 % of raw" next to "goal ≥ 50 %" reads as a failure in the test log.
use std::ffi::OsStr;

/// Whether this process measures.
pub fn measuring() -> bool {
    measuring_with(std::env::args_os().skip(1))
}

/// Whether a bench binary given these arguments measures: `cargo bench` passes `--bench`;
/// `cargo test` passes nothing, and divan then runs every benchmark once, as does divan's own
/// `--test`.
pub fn measuring_with<I>(args: I) -> bool
where
    I: IntoIterator,
    I::Item: AsRef<OsStr>,
{
    let mut bench = false;
    for arg in args {
        match arg.as_ref().to_str() {
            Some("--bench") => bench = true,
            Some("--test") => return false,
            _ => {}
        }
    }
    bench
}
