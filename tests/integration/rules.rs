//! The rule engine: priorities, first-set-wins, stop, combinators, every condition field, and
//! the shipped rules (severity keywords, monitoring, spam, no-reply senders).
use poststelle::classify::{Action, explain};
use poststelle::config::Config;

use crate::support::config::TempConfig;
use crate::support::mail::{classify_default, classify_with, mail};

fn config_with_rules(rules: &[(&str, &str)]) -> (TempConfig, Config) {
    let t = TempConfig::new(&TempConfig::shipped_text(), rules);
    let c = t.load();
    (t, c)
}

const ROUTING: &str = r#"
[[rule]]
name = "vpn"
priority = 50
when.subject = '\bvpn\b'
then.queue = "betrieb"
then.tags = ["vpn"]

[[rule]]
name = "vpn-late"
priority = 60
when.subject = 'vpn'
then.queue = "clearing"
then.severity = 2
then.tags = ["late"]

[[rule]]
name = "early-stop"
priority = 10
when.all = [ { from_domain = '^stadt-a\.example$' }, { not = { subject = 'newsletter' } } ]
then.queue = "ressort-inneres"
then.stop = true

[[rule]]
name = "after-stop"
priority = 20
when.from_domain = 'stadt-a'
then.severity = 1

[[rule]]
name = "headers-and-attachments"
priority = 70
when.any = [
  { header."X-Priority" = '^1' },
  { attachment_name = '\.(exe|scr)$' },
]
then.severity = 1
then.category = "dringend"

[[rule]]
name = "to-alias"
priority = 80
when.to = '^betrieb@kommunal-it\.example$'
then.queue = "betrieb"

[[rule]]
name = "body-text"
priority = 90
when.body = 'kennwort\s+abgelaufen'
then.category = "passwort"
then.forward_to = ["idm@kommunal-it.example"]

[[rule]]
name = "bounce-note"
priority = 95
when.auto_generated = ["bounce"]
then.tags = ["bounce-seen"]

[[rule]]
name = "follow-up"
priority = 96
when.has_ticket_ref = true
then.tags = ["follow-up"]

[[rule]]
name = "muk-only"
priority = 97
when.nutzerkonto_origin = "MUK"
then.tags = ["muk"]
"#;

#[test]
fn first_matching_rule_decides_each_scalar_and_lists_add_up() {
    let (_t, cfg) = config_with_rules(&[("20-routing.toml", ROUTING)]);
    let d = classify_with(&cfg, &mail(&["Subject: VPN bricht ab"], "x")).1;
    assert_eq!(d.queue, "betrieb", "priority 50 beats 60");
    assert_eq!(
        d.severity, 2,
        "the later rule still sets what the first left open"
    );
    assert_eq!(d.tags, vec!["vpn", "late"]);
    assert_eq!(d.rules, vec!["vpn", "vpn-late"]);
}

#[test]
fn stop_ends_evaluation_and_not_negates() {
    let (_t, cfg) = config_with_rules(&[("20-routing.toml", ROUTING)]);
    let raw = mail(
        &["From: Amt <amt@stadt-a.example>", "Subject: VPN kaputt"],
        "x",
    );
    let d = classify_with(&cfg, &raw).1;
    assert_eq!(d.queue, "ressort-inneres");
    assert_eq!(d.rules, vec!["early-stop"]);
    assert_eq!(d.severity, 4, "after-stop never ran");

    let raw = mail(
        &[
            "From: Amt <amt@stadt-a.example>",
            "Subject: Newsletter März",
        ],
        "x",
    );
    let d = classify_with(&cfg, &raw).1;
    assert_eq!(d.rules, vec!["after-stop"]);
    assert_eq!(d.severity, 1);
}

/// The classifier passes by keyword rules none of whose patterns matched; rules with `not`,
/// or with a condition that holds without any pattern, must still be evaluated, whichever
/// fields earlier rules have scanned.
const PASSED_BY: &str = r#"
[[rule]]
name = "t-body-first"
priority = 10
when.body = 'toner'

[[rule]]
name = "t-scanner-not-papier"
priority = 20
when.all = [ { subject = 'scanner' }, { not = { body = 'papier' } } ]

[[rule]]
name = "t-not-newsletter"
priority = 30
when.not = { subject = 'newsletter' }

[[rule]]
name = "t-kasse-or-ref"
priority = 40
when.any = [ { subject = 'kasse' }, { has_ticket_ref = true } ]

[[rule]]
name = "t-drucker"
priority = 50
when.any = [ { subject = 'drucker' }, { body = 'drucker' } ]

[[rule]]
name = "t-drucker-and-no-ref"
priority = 60
when.all = [ { body = 'drucker' }, { has_ticket_ref = false } ]
"#;

#[test]
fn rules_passed_by_decide_as_evaluated_ones() {
    let (_t, cfg) = config_with_rules(&[("20-passed-by.toml", PASSED_BY)]);
    let ours = |subject: &str, body: &str| {
        let raw = mail(
            &[
                "From: Amt <amt@stadt-a.example>",
                &format!("Subject: {subject}"),
            ],
            body,
        );
        classify_with(&cfg, &raw)
            .1
            .rules
            .into_iter()
            .filter(|r| r.starts_with("t-"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ours("Scanner defekt", "Kein Papier mehr"),
        ["t-not-newsletter"]
    );
    assert_eq!(
        ours("Scanner defekt", "geht nicht"),
        ["t-scanner-not-papier", "t-not-newsletter"]
    );
    assert_eq!(
        ours("Re: [Ticket#2026120210000001] Rückfrage", "Toner leer"),
        ["t-body-first", "t-not-newsletter", "t-kasse-or-ref"]
    );
    assert_eq!(
        ours("Newsletter Dezember", "Drucker im Angebot"),
        ["t-drucker", "t-drucker-and-no-ref"]
    );
    assert_eq!(
        ours("[Ticket#2026120210000002] Drucker", "Drucker steht"),
        ["t-not-newsletter", "t-kasse-or-ref", "t-drucker"]
    );
}

#[test]
fn header_attachment_recipient_and_body_conditions() {
    let (_t, cfg) = config_with_rules(&[("20-routing.toml", ROUTING)]);
    let d = classify_with(
        &cfg,
        &mail(&["Subject: Frage", "X-Priority: 1 (Highest)"], "x"),
    )
    .1;
    assert_eq!((d.severity, d.category.as_deref()), (1, Some("dringend")));

    let with_attachment = "From: a@b.example\r\nSubject: Rechnung\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nHallo\r\n\
        --xx\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"rechnung.pdf.exe\"\r\n\r\nMZ\r\n--xx--\r\n";
    let d = classify_with(&cfg, with_attachment.as_bytes()).1;
    assert_eq!(d.severity, 1, "{:?}", d.rules);

    let raw = b"From: a@b.example\r\nTo: Betrieb <BETRIEB@kommunal-it.example>\r\nSubject: x\r\n\r\nDas Kennwort  abgelaufen.\r\n";
    let d = classify_with(&cfg, raw).1;
    assert_eq!(d.queue, "betrieb");
    assert_eq!(d.category.as_deref(), Some("passwort"));
    assert_eq!(d.forward_to, vec!["idm@kommunal-it.example"]);
    // Nothing matched here: defaults.
    let d = classify_with(&cfg, &mail(&["Subject: Frage"], "Guten Tag")).1;
    assert_eq!((d.queue.as_str(), d.severity), ("support", 4));
    assert!(d.rules.is_empty());
}

#[test]
fn conditions_on_auto_generated_ticket_ref_and_origin() {
    let (_t, cfg) = config_with_rules(&[("20-routing.toml", ROUTING)]);
    let bounce = mail(
        &[
            "From: MAILER-DAEMON@mx.example",
            "Subject: Undelivered Mail Returned to Sender",
        ],
        "x",
    );
    let d = classify_with(&cfg, &bounce).1;
    assert!(d.tags.contains(&"bounce-seen".to_string()));
    assert_eq!(d.action, Action::Ignore);

    let d = classify_with(
        &cfg,
        &mail(&["Subject: AW: [Ticket#2026112310000012] x"], "x"),
    )
    .1;
    assert_eq!(d.tags, vec!["follow-up"]);
    assert_eq!(d.ticket_ref.as_deref(), Some("2026112310000012"));
    assert_eq!(d.auto_reply, None, "a follow-up is not acknowledged again");

    let d = classify_with(&cfg, &mail(&["Subject: HE_Wohngeld_MUK"], "x")).1;
    assert!(d.tags.contains(&"muk".to_string()));
    let d = classify_with(&cfg, &mail(&["Subject: HE_Wohngeld_NKB"], "x")).1;
    assert!(!d.tags.contains(&"muk".to_string()));
}

#[test]
fn a_rule_before_the_nutzerkonto_router_takes_precedence() {
    let early = r#"
[[rule]]
name = "wohngeld-sonderfall"
priority = 50
when.all = [ { nutzerkonto = true }, { nutzerkonto_state = "home" }, { normalized_subject = 'wohngeld' } ]
then.queue = "betrieb"
then.auto_reply = false
"#;
    let (_t, cfg) = config_with_rules(&[("10-early.toml", early)]);
    let d = classify_with(&cfg, &mail(&["Subject: HE_Wohngeld_NKB"], "x")).1;
    assert_eq!(d.queue, "betrieb");
    assert_eq!(d.auto_reply, None);
    assert_eq!(d.rules, vec!["wohngeld-sonderfall", "nutzerkonto"]);
}

#[test]
fn explain_shows_every_rule_and_why() {
    let (_t, cfg) = config_with_rules(&[("20-routing.toml", ROUTING)]);
    let raw = mail(&["Subject: VPN bricht ab"], "x");
    let msg = poststelle::InboundMessage::parse(&raw).expect("parses");
    let (d, trace) = explain(&cfg, &msg);
    assert_eq!(trace.len(), cfg.rules.rules.len());
    let vpn = trace.iter().find(|t| t.rule == "vpn").expect("vpn traced");
    assert!(vpn.matched);
    assert!(
        vpn.location.ends_with("20-routing.toml:2"),
        "{}",
        vpn.location
    );
    assert!(
        vpn.detail[0].contains(r"subject ~ /\bvpn\b/") && vpn.detail[0].ends_with("yes"),
        "{:?}",
        vpn.detail
    );
    let stop = trace
        .iter()
        .find(|t| t.rule == "early-stop")
        .expect("traced");
    assert!(!stop.matched);
    assert_eq!(d.rules, vec!["vpn", "vpn-late"]);
}

// --- the shipped rules -------------------------------------------------------------------

#[test]
fn shipped_severity_keywords_in_german_and_english() {
    let cases = [
        ("Totalausfall KFZ-Zulassung", "", 1),
        ("Fachverfahren nicht erreichbar", "", 1),
        ("Hilfe", "Seit heute morgen geht gar nichts mehr.", 1),
        ("Mail system down", "", 1),
        ("Anmeldung", "Kein Zugriff mehr möglich auf das Portal", 1),
        ("Portal stark eingeschränkt", "", 2),
        (
            "Antwortzeiten",
            "Das System ist erheblich beeinträchtigt.",
            2,
        ),
        ("Very slow response times", "", 2),
        ("Drucker defekt", "", 3),
        ("Fehlermeldung beim Speichern", "", 3),
        ("Typo on the start page", "", 3),
        ("Frage zur Rechnung", "Bitte senden Sie uns eine Kopie.", 4),
        ("Bitte um Zugang für neue Kollegin", "", 4),
    ];
    for (subject, body, class) in cases {
        let d = classify_default(&mail(&[&format!("Subject: {subject}")], body));
        assert_eq!(d.severity, class, "{subject:?} / {body:?}: {:?}", d.rules);
    }
}

#[test]
fn monitoring_alerts_open_incidents_without_reply() {
    let alert = mail(
        &[
            "From: icinga@monitoring.kommunal-it.example",
            "Subject: ** PROBLEM Service Alert: web01/HTTP is CRITICAL **",
            "Auto-Submitted: auto-generated",
        ],
        "Service: HTTP\nState: CRITICAL",
    );
    let d = classify_default(&alert);
    assert_eq!(d.action, Action::Ticket, "{}", d.reason);
    assert_eq!(d.queue, "betrieb");
    assert_eq!(d.severity, 1);
    assert_eq!(d.auto_reply, None);
    assert!(d.auto_generated.is_some(), "still known as machine mail");

    let warn = mail(
        &[
            "From: zabbix@monitoring.kommunal-it.example",
            "Subject: Problem: Disk space WARNING on fs01",
        ],
        "x",
    );
    let d = classify_default(&warn);
    assert_eq!((d.queue.as_str(), d.severity), ("betrieb", 2));
}

#[test]
fn spam_is_ignored_and_no_reply_senders_get_no_reply() {
    let d = classify_default(&mail(&["Subject: Gewinn!", "X-Spam-Flag: YES"], "x"));
    assert_eq!(d.action, Action::Ignore);
    assert_eq!(d.auto_reply, None);

    let d = classify_default(&mail(
        &[
            "From: Portal <noreply@portal.stadt.example>",
            "Subject: Kontaktformular",
        ],
        "x",
    ));
    assert_eq!(d.action, Action::Ticket);
    assert_eq!(d.auto_reply, None);

    // A form that sends from no-reply with the requester in Reply-To is answered there.
    let d = classify_default(&mail(
        &[
            "From: Portal <noreply@portal.stadt.example>",
            "Reply-To: Erika <erika@example.org>",
            "Subject: Kontaktformular",
        ],
        "x",
    ));
    assert_eq!(d.auto_reply.as_deref(), Some("eingangsbestaetigung"));
    let d = classify_default(&mail(
        &[
            "From: Portal <info@portal.stadt.example>",
            "Reply-To: do-not-reply@portal.stadt.example",
            "Subject: Kontaktformular",
        ],
        "x",
    ));
    assert_eq!(d.auto_reply, None);
}

#[test]
fn loop_header_and_auto_replies_never_get_replies() {
    let own = mail(
        &[
            "Subject: [Ticket#1] Eingangsbestätigung",
            "X-Poststelle-Loop: 1",
        ],
        "x",
    );
    let d = classify_default(&own);
    assert_eq!(d.auto_generated.map(|k| k.as_str()), Some("loop"));
    assert_eq!(d.action, Action::Ignore);

    // An out-of-office reply to our acknowledgement: a note on the ticket, never a reply.
    let oof = mail(
        &[
            "Subject: Automatische Antwort: [Ticket#2026112310000012] Eingangsbestätigung",
            "Auto-Submitted: auto-replied",
        ],
        "Ich bin bis Montag nicht im Büro.",
    );
    let d = classify_default(&oof);
    assert_eq!(d.action, Action::Note);
    assert_eq!(d.ticket_ref.as_deref(), Some("2026112310000012"));
    assert_eq!(d.auto_reply, None);

    for headers in [
        &["Subject: Urlaub", "X-Autoreply: yes"][..],
        &[
            "Subject: Re: Anfrage",
            "Auto-Submitted: auto-generated; owner-email=x@y",
        ],
        &["Subject: Re: Anfrage", "Precedence: auto_reply"],
        &["Subject: Abwesenheitsnotiz: Anfrage"],
        &["Subject: Out of Office", "Return-Path: <>"],
        &["Subject: Info", "List-Id: <info.lists.example>"],
        &["Subject: Info", "Precedence: bulk"],
    ] {
        let d = classify_default(&mail(headers, "x"));
        assert!(d.auto_generated.is_some(), "{headers:?}");
        assert_eq!(d.action, Action::Ignore, "{headers:?}");
    }
    // X-Auto-Response-Suppress asks others not to answer; Outlook puts it on people's mail
    // (tests/integration/auto_generated.rs has the rest).
    let d = classify_default(&mail(
        &["Subject: Re: Anfrage", "X-Auto-Response-Suppress: OOF, DR"],
        "x",
    ));
    assert_eq!(d.auto_generated, None, "{}", d.reason);
    // "Auto-Submitted: no" is a human's mail.
    let d = classify_default(&mail(&["Subject: Frage", "Auto-Submitted: no"], "x"));
    assert_eq!(d.auto_generated, None);
    // An out-of-office word alone, from a person, is not enough.
    let d = classify_default(&mail(&["Subject: Urlaubsantrag im Portal"], "x"));
    assert_eq!(d.auto_generated, None);
}
