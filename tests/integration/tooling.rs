//! The project's own test and bench tooling: the benches print their figures only when they
//! measure.

#[path = "../../benches/support/mode.rs"]
#[allow(dead_code)] // `measuring` reads this process's arguments: a bench binary's business
mod mode;

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
