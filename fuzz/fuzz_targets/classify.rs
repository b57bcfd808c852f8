//! `classify_raw` under the shipped default configuration (embedded `poststelle.toml`, rules,
//! contacts, templates), loaded once: parse and classification must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::classify::classify_raw;

mod common;

fuzz_target!(init: common::allow_known_parser_assertion(), |data: &[u8]| {
    let _ = classify_raw(&common::CONFIG, data);
});
