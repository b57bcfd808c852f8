//! What several targets share. Each target includes it with `mod common;`, so not every target
//! uses every item.
#![allow(dead_code)]

use std::sync::LazyLock;

use poststelle::config::Config;
use poststelle::message::InboundMessage;

/// Lets the one known reachable `debug_assert!` of mail-parser 0.11.9 ("Invalid part ID, could
/// not find multipart.", fuzz/README.md, Regressions) unwind into the `catch_unwind` of
/// `InboundMessage::parse`, which makes it a quarantine as in the daemon; every other panic
/// still aborts, as libFuzzer's hook (installed before `init:` runs) has it. Without this the
/// mail targets, built with debug assertions, stop on that known finding within a minute.
pub fn allow_known_parser_assertion() {
    let libfuzzer_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_mail_parser = info
            .location()
            .is_some_and(|l| l.file().contains("mail-parser"));
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        if in_mail_parser && message.contains("Invalid part ID, could not find multipart") {
            return;
        }
        libfuzzer_hook(info)
    }));
}

/// The shipped default configuration (embedded `poststelle.toml`, rules, contacts, templates).
pub static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::load(None)
        .unwrap_or_else(|d| panic!("the shipped default configuration does not load: {d}"))
});

/// The shipped sample mails (samples/*.eml), parsed: what rule and configuration targets
/// classify with what they loaded.
pub static SAMPLES: LazyLock<Vec<InboundMessage>> = LazyLock::new(|| {
    [
        include_bytes!("../../../samples/01-stoerung.eml").as_slice(),
        include_bytes!("../../../samples/02-nutzerkonto-efa.eml"),
        include_bytes!("../../../samples/03-rueckfrage.eml"),
        include_bytes!("../../../samples/04-abwesenheit.eml"),
        include_bytes!("../../../samples/05-unzustellbar.eml"),
        include_bytes!("../../../samples/06-monitoring.eml"),
    ]
    .into_iter()
    .map(|raw| InboundMessage::parse(raw).expect("a sample parses"))
    .collect()
});
