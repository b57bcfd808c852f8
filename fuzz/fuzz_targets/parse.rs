//! `InboundMessage::parse` on arbitrary bytes: must return `Ok` or `Err`, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::message::InboundMessage;

mod common;

fuzz_target!(init: common::allow_known_parser_assertion(), |data: &[u8]| {
    let _ = InboundMessage::parse(data);
});
