//! The Nutzerkonto scheme `HE_<Betreff>_NKB` / `_MUK` (MISSION §6) as it arrives in real
//! mail: encoded in any charset, folded, behind reply prefixes — and routed by the contact list.
use poststelle::classify::Action;
use poststelle::classify::nutzerkonto::Efa;

use crate::support::config::TempConfig;
use crate::support::mail::{classify_default, classify_with, mail, mail_with_raw_subject};

fn nk(subject: &[u8]) -> Option<(String, String, String)> {
    classify_default(&mail_with_raw_subject(subject))
        .nutzerkonto
        .map(|n| (n.state, n.origin, n.betreff))
}

fn some(state: &str, origin: &str, betreff: &str) -> Option<(String, String, String)> {
    Some((state.into(), origin.into(), betreff.into()))
}

#[test]
fn utf8_b_encoded() {
    // "HE_Antrag auf Wohngeld für Familie Öztürk_NKB"
    assert_eq!(
        nk(b"=?UTF-8?B?SEVfQW50cmFnIGF1ZiBXb2huZ2VsZCBmw7xyIEZhbWlsaWUgw5Z6dMO8cmtfTktC?="),
        some("HE", "NKB", "Antrag auf Wohngeld für Familie Öztürk")
    );
}

#[test]
fn latin1_q_encoded_with_underscore_as_space() {
    // In Q encoding "_" is a space and "=5F" an underscore.
    assert_eq!(
        nk(b"=?ISO-8859-1?Q?HE=5FWohngeld_f=FCr_Stra=DFe_3=5FNKB?="),
        some("HE", "NKB", "Wohngeld für Straße 3")
    );
    assert_eq!(
        nk(b"=?iso-8859-1?q?he=5FGr=FC=DFe=5Fmuk?="),
        some("HE", "MUK", "Grüße")
    );
}

#[test]
fn latin1_b_encoded() {
    // "HE_Führerschein_NKB" in ISO-8859-1, base64.
    assert_eq!(
        nk(b"=?ISO-8859-1?B?SEVfRvxocmVyc2NoZWluX05LQg==?="),
        some("HE", "NKB", "Führerschein")
    );
}

#[test]
fn windows_1252_q_encoded() {
    // 0x80 is € and 0x84/0x93 are „ “ in windows-1252 only.
    assert_eq!(
        nk(b"=?windows-1252?Q?HE=5FGeb=FChr_80_=80_=84Gewerbeanmeldung=93=5FMUK?="),
        some("HE", "MUK", "Gebühr 80 € „Gewerbeanmeldung“")
    );
}

#[test]
fn encoded_words_split_over_folded_lines() {
    // Whitespace between adjacent encoded words is not part of the text (RFC 2047 §6.2).
    assert_eq!(
        nk(b"=?UTF-8?Q?HE=5FF=C3=BChrerschein?=\r\n =?UTF-8?Q?_Umtausch=5FNKB?="),
        some("HE", "NKB", "Führerschein Umtausch")
    );
    assert_eq!(
        nk(b"=?ISO-8859-1?Q?HE=5FAntrag_auf_Ausbildungsf=F6rderung?=\r\n\t=?ISO-8859-1?Q?=5FMUK?="),
        some("HE", "MUK", "Antrag auf Ausbildungsförderung")
    );
    // Plain folded text keeps its space.
    assert_eq!(
        nk(b"HE_Antrag auf\r\n Wohngeld_NKB"),
        some("HE", "NKB", "Antrag auf Wohngeld")
    );
}

#[test]
fn raw_8bit_headers_in_utf8_and_latin1() {
    assert_eq!(
        nk("HE_Führerschein für Ärzte_NKB".as_bytes()),
        some("HE", "NKB", "Führerschein für Ärzte")
    );
    // Old clients send 8-bit ISO-8859-1 / windows-1252 without encoding it.
    assert_eq!(
        nk(b"HE_F\xfchrerschein f\xfcr \xc4rzte_NKB"),
        some("HE", "NKB", "Führerschein für Ärzte")
    );
}

#[test]
fn reply_and_forward_prefix_chains_and_ticket_tags() {
    assert_eq!(
        nk(b"AW: WG: Re[2]: HE_Wohngeld_NKB"),
        some("HE", "NKB", "Wohngeld")
    );
    assert_eq!(
        nk(b"=?UTF-8?Q?AW=3A_WG=3A_HE=5FF=C3=BChrerschein=5FNKB?="),
        some("HE", "NKB", "Führerschein")
    );
    assert_eq!(
        nk(b"Re: [Ticket#2026112310000012] AW (2): HE_Wohngeld_NKB"),
        some("HE", "NKB", "Wohngeld")
    );
}

#[test]
fn underscores_and_spaces_inside_the_betreff() {
    assert_eq!(
        nk(b"HE_Steuer_ID_Frage_NKB"),
        some("HE", "NKB", "Steuer_ID_Frage")
    );
    assert_eq!(
        nk(b"HE_  Frage zu _Termin_  _MUK  "),
        some("HE", "MUK", "Frage zu _Termin_")
    );
    assert_eq!(nk(b"he_wohngeld_nkb"), some("HE", "NKB", "wohngeld"));
}

#[test]
fn other_states_are_recognised() {
    for code in [
        "BW", "BY", "BE", "BB", "HB", "HH", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH",
    ] {
        let subject = format!("{code}_Wohngeld_NKB");
        assert_eq!(
            nk(subject.as_bytes()),
            some(code, "NKB", "Wohngeld"),
            "{code}"
        );
    }
}

#[test]
fn subjects_that_must_not_match() {
    for s in [
        &b"HE_Wohngeld_NKB bitte"[..],
        b"HE_Wohngeld_NKB.",
        b"Wohngeld_NKB",
        b"HE__NKB",
        b"HE_   _NKB",
        b"XX_Wohngeld_NKB",
        b"HES_Wohngeld_NKB",
        b"HE_Wohngeld_ELSTER",
        b"HE_Wohngeld_NKBMUK",
        b"HE Wohngeld NKB",
        b"Frage: HE_Wohngeld_NKB",
        b"HE-Wohngeld-NKB",
        b"=?ISO-8859-1?Q?HE_Wohngeld_NKB?=",
    ] {
        assert_eq!(nk(s), None, "{:?}", String::from_utf8_lossy(s));
    }
}

#[test]
fn routing_by_the_shipped_contact_list() {
    // A service without EfA: its Ressort, the ordinary acknowledgement.
    let d = classify_default(&mail(
        &["Subject: HE_Frage zum Wohngeldantrag_NKB"],
        "Hallo",
    ));
    assert_eq!(d.queue, "ressort-wirtschaft");
    assert_eq!(d.auto_reply.as_deref(), Some("eingangsbestaetigung"));
    assert_eq!(d.severity, 4);
    assert_eq!(d.rules, vec!["nutzerkonto"]);

    // EfA-Outbound: the reply that names the contact person.
    let d = classify_default(&mail(&["Subject: HE_Gewerbe-Anmeldung online_MUK"], "x"));
    assert_eq!(d.queue, "ressort-wirtschaft");
    assert_eq!(d.auto_reply.as_deref(), Some("nutzerkonto-efa-outbound"));
    let svc = d.service.expect("service");
    assert_eq!(svc.efa, Efa::Outbound);
    assert_eq!(
        svc.contact.email.as_deref(),
        Some("gewerbe-service@wirtschaft.hessen.example")
    );

    // EfA-Inbound and unknown services: clearing.
    let d = classify_default(&mail(&["Subject: HE_Elterngeld_NKB"], "x"));
    assert_eq!(d.queue, "clearing");
    let d = classify_default(&mail(&["Subject: HE_Hundesteuer_NKB"], "x"));
    assert_eq!(d.queue, "clearing");
    assert!(d.reason.contains("matches no service"), "{}", d.reason);

    // Another state: the configured queue (the clearing queue by default).
    let d = classify_default(&mail(&["Subject: RP_Wohngeld_NKB"], "x"));
    assert_eq!(d.queue, "clearing");
    assert!(d.forward_to.is_empty());

    // Incident keywords in the body do not make a citizen's question an incident.
    let d = classify_default(&mail(
        &["Subject: HE_Wohngeld_NKB"],
        "Das Portal war gestern nicht erreichbar, Totalausfall!",
    ));
    assert_eq!(d.severity, 4);
}

#[test]
fn other_states_are_forwarded_where_configured() {
    let cfg = TempConfig::shipped_text().replace(
        "# [nutzerkonto.forward_by_state]\n# RP = \"nutzerkonto@rlp.example\"",
        "other_state_forward = \"weiterleitung@bund.example\"\n[nutzerkonto.forward_by_state]\nRP = \"nutzerkonto@rlp.example\"",
    );
    let t = TempConfig::new(&cfg, &[]);
    let cfg = t.load();
    let d = classify_with(&cfg, &mail(&["Subject: RP_Wohngeld_NKB"], "x")).1;
    assert_eq!(d.forward_to, vec!["nutzerkonto@rlp.example"]);
    assert_eq!(d.action, Action::Ticket);
    let d = classify_with(&cfg, &mail(&["Subject: BY_Wohngeld_NKB"], "x")).1;
    assert_eq!(d.forward_to, vec!["weiterleitung@bund.example"]);
    let d = classify_with(&cfg, &mail(&["Subject: HE_Wohngeld_NKB"], "x")).1;
    assert!(d.forward_to.is_empty());
}

#[test]
fn contact_list_from_a_german_spreadsheet_csv() {
    // Excel with a German locale: semicolons, windows-1252, German column names.
    let csv = "Leistung;Stichwörter;Ressort;Ansprechpartner;E-Mail;Telefon;EfA\r\n\
               Hundesteuer;Hundesteuer, Hundemarke;ressort-inneres;Frau Müller;hund@innen.hessen.example;0611 1;EfA-Outbound\r\n\
               Führerschein;Führerschein|Fahrerlaubnis;ressort-wirtschaft;Herr Groß;;;\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(csv);
    let t = TempConfig::with_contacts("kontakte.csv", &bytes);
    let cfg = t.load();
    assert_eq!(cfg.contacts.services.len(), 2);

    let d = classify_with(&cfg, &mail(&["Subject: HE_Hundemarke verloren_NKB"], "x")).1;
    assert_eq!(d.queue, "ressort-inneres");
    assert_eq!(d.auto_reply.as_deref(), Some("nutzerkonto-efa-outbound"));
    assert_eq!(d.service.expect("svc").contact.name, "Frau Müller");

    // Umlauts spelt out in the subject still find the service.
    let d = classify_with(
        &cfg,
        &mail(&["Subject: HE_Fuehrerschein Umtausch_NKB"], "x"),
    )
    .1;
    assert_eq!(d.queue, "ressort-wirtschaft");
    assert_eq!(d.service.expect("svc").contact.name, "Herr Groß");
}

#[test]
fn the_longest_keyword_wins() {
    let contacts = r#"
[[service]]
name = "Zulassung allgemein"
keywords = ["Zulassung"]
ressort = "ressort-inneres"

[[service]]
name = "Kfz-Zulassung"
keywords = ["Kfz-Zulassung"]
ressort = "ressort-wirtschaft"
"#;
    let t = TempConfig::with_contacts("kontakte.toml", contacts.as_bytes());
    let cfg = t.load();
    let d = classify_with(&cfg, &mail(&["Subject: HE_KFZ Zulassung_NKB"], "x")).1;
    assert_eq!(d.queue, "ressort-wirtschaft");
    let d = classify_with(&cfg, &mail(&["Subject: HE_Zulassung Anhänger_NKB"], "x")).1;
    assert_eq!(d.queue, "ressort-inneres");
}

/// A Betreff that matches several services equally (the same length of match) is unclear:
/// the clearing queue finds out who answers, and the explanation says which services tied.
/// The order of the list no longer decides.
#[test]
fn a_betreff_that_matches_several_services_equally_goes_to_clearing() {
    let contacts = r#"
[[service]]
name = "Elterngeld"
keywords = ["Elterngeld"]
ressort = "ressort-soziales"
contact = "Elterngeldstelle"
efa = "outbound"

[[service]]
name = "Kfz-Steuer"
keywords = ["Kfz-Steuer"]
ressort = "ressort-wirtschaft"
contact = "Team Kfz-Steuer"

[[service]]
name = "Wohngeld"
regex = 'wohngeld\w*'
ressort = "ressort-wirtschaft"
contact = "Referat Wohngeld"
"#;
    let t = TempConfig::with_contacts("kontakte.toml", contacts.as_bytes());
    let cfg = t.load();
    let tie = mail(&["Subject: HE_Elterngeld und KFZ Steuer_NKB"], "x");
    let (msg, d) = classify_with(&cfg, &tie);
    assert_eq!(d.queue, "clearing");
    assert!(d.service.is_none(), "no single service: {:?}", d.service);
    assert_eq!(
        d.auto_reply.as_deref(),
        Some("eingangsbestaetigung"),
        "no contact person is named for an unclear question"
    );
    for part in [
        "matches 2 services of the contact list equally",
        "10 characters each",
        "\"Elterngeld\" (ressort-soziales, keyword \"elterngeld\")",
        "\"Kfz-Steuer\" (ressort-wirtschaft, keyword \"kfz steuer\")",
        "unclear, clearing queue clearing",
    ] {
        assert!(d.reason.contains(part), "{part}: {}", d.reason);
    }
    // `classify --explain` names the tie at the Nutzerkonto step.
    let (_, trace) = poststelle::classify::explain(&cfg, &msg.expect("parsed"));
    let step = trace
        .iter()
        .find(|r| r.rule == "nutzerkonto")
        .expect("the Nutzerkonto step");
    assert!(
        step.detail.iter().any(|l| l.contains("equally")),
        "{:?}",
        step.detail
    );
    // A regex match as long as the best keyword ties as well ("Wohngelder", 10); a longer one
    // ("Wohngeldantrag", 14) wins.
    let d = classify_with(
        &cfg,
        &mail(&["Subject: HE_Elterngeld oder Wohngelder_NKB"], "x"),
    )
    .1;
    assert_eq!(d.queue, "clearing");
    assert!(
        d.reason.contains("regex match \"Wohngelder\""),
        "{}",
        d.reason
    );
    let d = classify_with(
        &cfg,
        &mail(&["Subject: HE_Elterngeld und Wohngeldantrag_NKB"], "x"),
    )
    .1;
    assert_eq!(d.queue, "ressort-wirtschaft", "{}", d.reason);
    // Unambiguous questions still route, EfA-Outbound with its reply.
    let d = classify_with(&cfg, &mail(&["Subject: HE_Antrag auf Elterngeld_NKB"], "x")).1;
    assert_eq!(d.queue, "ressort-soziales");
    assert_eq!(d.auto_reply.as_deref(), Some("nutzerkonto-efa-outbound"));
    assert_eq!(d.service.expect("service").contact.name, "Elterngeldstelle");
    let d = classify_with(
        &cfg,
        &mail(&["Subject: HE_Wohngeld und Elterngeld_NKB"], "x"),
    )
    .1;
    assert_eq!(
        d.queue, "ressort-soziales",
        "the longer match wins: {}",
        d.reason
    );
}
