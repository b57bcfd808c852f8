//! Reaction deadlines per second on the built-in calendars, single-threaded.
//!
//! Goal (issue 5): ≥ 1,000,000 deadlines/s on one core for `hessen` and `rlp`.
//!
//! Input: 10,000 receipt times spread over 2026–2030 (deterministic), every class. The year
//! tables are built before measuring (they are built once per calendar and year in a running
//! daemon too); `cold_year_table` measures that one-off cost separately.
//!
//! Run: `cargo bench --bench sla`. Without `--bench` (`cargo test --all-targets`) every
//! benchmark runs once, as a smoke test.
use std::sync::LazyLock;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use jiff::Timestamp;
use poststelle::sla::{Calendar, CalendarSpec, Calendars, Class, deadline};
use poststelle::time::berlin;

const RECEIPTS: usize = 10_000;

fn main() {
    divan::main();
}

/// Receipt times from 2026-01-01 to 2030-12-31, at odd seconds so that they land anywhere.
static RECEIPTS_2026_2030: LazyLock<Vec<(Timestamp, Class)>> = LazyLock::new(|| {
    let start = 1_767_225_600_i64;
    let span = 5 * 365 * 86_400_i64;
    let mut rng = fastrand::Rng::with_seed(5);
    (0..RECEIPTS)
        .map(|i| {
            let t = Timestamp::from_second(start + rng.i64(0..span)).expect("in range");
            (t, Class::ALL[i % 4])
        })
        .collect()
});

fn warm(name: &str) -> std::sync::Arc<Calendar> {
    let cal = Calendars::builtin()
        .expect("calendars")
        .get(name)
        .cloned()
        .expect("built in");
    for &(t, class) in RECEIPTS_2026_2030.iter() {
        black_box(deadline(&cal, class, t).expect("deadline"));
    }
    cal
}

fn deadlines(bencher: Bencher, name: &str) {
    let cal = warm(name);
    let receipts = &*RECEIPTS_2026_2030;
    bencher.counter(ItemsCount::new(receipts.len())).bench(|| {
        for &(t, class) in receipts {
            black_box(deadline(&cal, class, black_box(t)).expect("deadline"));
        }
    });
}

#[divan::bench(threads = 1, sample_count = 30)]
fn deadlines_hessen(bencher: Bencher) {
    deadlines(bencher, "hessen");
}

#[divan::bench(threads = 1, sample_count = 30)]
fn deadlines_rlp(bencher: Bencher) {
    deadlines(bencher, "rlp");
}

/// Building the year table of a fresh calendar: the cost of the first deadline in a year.
#[divan::bench(threads = 1, sample_count = 30)]
fn cold_year_table(bencher: Bencher) {
    let tz = berlin().expect("tz");
    let t = Timestamp::from_second(1_780_000_000).expect("in range");
    bencher
        .with_inputs(|| Calendar::new(CalendarSpec::hessen(), tz.clone()).expect("calendar"))
        .bench_values(|cal| black_box(deadline(&cal, Class::Leicht, t).expect("deadline")));
}
