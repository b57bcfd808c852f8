//! `classify_raw` under the shipped default configuration (embedded `poststelle.toml`, rules,
//! contacts, templates), loaded once: parse and classification must never panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use poststelle::classify::classify_raw;
use poststelle::config::Config;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::load(None)
        .unwrap_or_else(|d| panic!("the shipped default configuration does not load: {d:?}"))
});

fuzz_target!(|data: &[u8]| {
    let _ = classify_raw(&CONFIG, data);
});
