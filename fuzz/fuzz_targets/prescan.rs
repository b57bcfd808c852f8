//! The linear pre-scan `Limits::DEFAULT.check`: must never panic. Whatever it lets through is
//! parsed, so that input the pre-scan accepts but mail-parser takes long on shows up as a
//! libFuzzer timeout (`-timeout=N`) or as slow units (`-report_slow_units=N`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::message::{InboundMessage, Limits};

mod common;

fuzz_target!(init: common::allow_known_parser_assertion(), |data: &[u8]| {
    if Limits::DEFAULT.check(data).is_ok() {
        let _ = InboundMessage::parse(data);
    }
});
