//! Incidents (issue 16, item 4) through the real binary on SQLite and PostgreSQL: the
//! "Störung" notice as one outbox row per unique member, updates and the resolution threaded
//! under each member's opening notice (read back from the mails the file transport wrote),
//! the outage in `sla report --platform`, tickets linked by command and by a rule naming the
//! platform, their requesters told on their own tickets, the class raised to 2 at the
//! configured count of light reports and not before, and the command line's errors.
use std::collections::HashMap;
use std::path::Path;

use mail_parser::{HeaderValue, MessageParser};
use serde_json::Value;

use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both, scalar};
use crate::support::mail::request;

/// A configuration with the platform "portal" (lists "alle", calendar hessen) on the test's
/// database, a rule that files mail about the portal as a light report of it, and
/// `incidents.raise_to_class_2_after = 3`.
struct Desk {
    config: TempConfig,
    data: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

const RULES: &str = r#"
[[rule]]
name = "portal-meldung"
when.subject = '(?i)portal'
then.severity = 3
then.platform = "portal"
"#;

impl Desk {
    fn new(db: &TestDb) -> Desk {
        let text = format!(
            "database_url = {:?}\n{}\n[[platform]]\nname = \"portal\"\ndescription = \"Bürgerportal\"\ncalendar = \"hessen\"\nlists = [\"alle\"]\n\n[incidents]\nraise_to_class_2_after = 3\n",
            db.url(),
            TempConfig::shipped_text()
        );
        Desk {
            config: TempConfig::new(&text, &[("portal.toml", RULES)]),
            data: tempfile::tempdir().expect("data dir"),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = poststelle()
            .arg("--config")
            .arg(self.config.path())
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .env("USER", "test-actor")
            .output()
            .expect("runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }

    fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 1,
            "{args:?} should fail:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stderr
    }

    fn import(&self, list: &str, csv: &str) {
        let name = format!("{list}.csv");
        self.config.write(&name, csv.as_bytes());
        let file = self.config.dir.path().join(name);
        self.ok(&["lists", "import", list, file.to_str().expect("utf8")]);
    }

    /// Files a mail through `poststelle ingest`; the number of the ticket it opened or
    /// followed up.
    fn ingest(&self, name: &str, raw: &[u8]) -> String {
        self.config.write(name, raw);
        let path = self.config.dir.path().join(name);
        let out = self.ok(&["ingest", "--json", path.to_str().expect("utf8")]);
        let v: Value = serde_json::from_str(out.lines().next().expect("a line")).expect("json");
        v["number"].as_str().expect("a ticket").to_string()
    }
}

/// A mail the file transport wrote: its headers that matter here.
#[derive(Debug)]
struct Sent {
    to: String,
    subject: String,
    message_id: String,
    in_reply_to: Vec<String>,
    references: Vec<String>,
    text: String,
    html: Option<String>,
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Every mail in `data/sent`, by Message-ID.
fn sent(data: &Path) -> HashMap<String, Sent> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(data.join("sent")).expect("sent dir") {
        let path = e.expect("entry").path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).expect("eml");
        let msg = MessageParser::default().parse(&raw).expect("mail");
        let s = Sent {
            to: msg
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .expect("to")
                .to_string(),
            subject: msg.subject().unwrap_or("").to_string(),
            message_id: msg.message_id().expect("Message-ID").to_string(),
            in_reply_to: ids(msg.in_reply_to()),
            references: ids(msg.references()),
            text: msg.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
            html: msg.body_html(0).map(|t| t.to_string()),
        };
        out.insert(s.message_id.clone(), s);
    }
    out
}

/// (announcement kind, recipient, Message-ID) of every list mail of incident notices.
async fn list_mails(db: &TestDb) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT a.kind, o.recipient, o.message_id FROM outbox o \
         JOIN announcements a ON a.id = o.announcement_id WHERE a.incident_id IS NOT NULL \
         ORDER BY o.id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("rows")
}

async fn an_incident_is_announced_threaded_and_counted(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import(
        "kommunen",
        "E-Mail;Name;Sprache\nanna@kommune.example;Anna;de\nBen@Kommune.example;Ben;en\n",
    );
    desk.import(
        "alle",
        "E-Mail;Name\nANNA@kommune.example;Anna doppelt\ncarla@land.example;Carla\n",
    );
    desk.ok(&["lists", "include", "alle", "kommunen"]);

    let opened = desk.json(&[
        "incident",
        "open",
        "--platform",
        "portal",
        "--title",
        "Anmeldung gestört",
        "--impact",
        "Keine Anmeldung <Bürgerportal> & Apps",
        "--since",
        "2026-11-25 09:00",
        "--json",
    ]);
    let id = opened["id"].to_string();
    assert_eq!(opened["state"], "open");
    assert_eq!(opened["class"], 1);
    assert_eq!(opened["since"], "2026-11-25T08:00:00Z");
    assert_eq!(opened["fan_out"]["reached"], 3);
    assert_eq!(opened["fan_out"]["enqueued"], 3);
    // One row per unique member, whatever the case of the address.
    let rows = list_mails(db).await;
    let mut to: Vec<String> = rows.iter().map(|(_, r, _)| r.to_lowercase()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "anna@kommune.example",
            "ben@kommune.example",
            "carla@land.example"
        ]
    );

    let updated = desk.json(&[
        "incident",
        "update",
        &id,
        "--text",
        "Die Ursache ist gefunden: ein Zertifikat war abgelaufen.",
        "--json",
    ]);
    assert_eq!(updated["fan_out"]["enqueued"], 3);
    assert_eq!(updated["threaded"], 3);
    let resolved = desk.json(&[
        "incident",
        "resolve",
        &id,
        "--at",
        "2026-11-25 10:30",
        "--text",
        "Das Zertifikat wurde erneuert.",
        "--json",
    ]);
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolved_at"], "2026-11-25T09:30:00Z");

    // Every member's update and resolution answer the opening notice that member got.
    desk.ok(&["outbox", "send"]);
    let mails = sent(desk.data.path());
    let rows = list_mails(db).await;
    assert_eq!(rows.len(), 9);
    let opening: HashMap<String, String> = rows
        .iter()
        .filter(|(k, _, _)| k == "opened")
        .map(|(_, r, m)| (r.to_lowercase(), m.clone()))
        .collect();
    for (kind, recipient, message_id) in &rows {
        let mail = mails.get(message_id).expect("the mail was written");
        assert_eq!(mail.to.to_lowercase(), recipient.to_lowercase());
        if kind == "opened" {
            assert!(mail.in_reply_to.is_empty(), "{mail:?}");
            continue;
        }
        let first = &opening[&recipient.to_lowercase()];
        assert_eq!(
            mail.in_reply_to,
            std::slice::from_ref(first),
            "{kind} to {recipient}"
        );
        assert_eq!(
            mail.references,
            std::slice::from_ref(first),
            "{kind} to {recipient}"
        );
    }
    // German by default, English for the member who reads English.
    let subjects: HashMap<(String, String), String> = rows
        .iter()
        .map(|(k, r, m)| ((k.clone(), r.to_lowercase()), mails[m].subject.clone()))
        .collect();
    let subject = |k: &str, r: &str| subjects[&(k.to_string(), r.to_string())].clone();
    assert_eq!(
        subject("opened", "anna@kommune.example"),
        "Störung: portal – Anmeldung gestört"
    );
    assert_eq!(
        subject("opened", "ben@kommune.example"),
        "Incident: portal – Anmeldung gestört"
    );
    assert!(subject("resolved", "carla@land.example").starts_with("Störung behoben: portal"));
    // Text and HTML parts, the HTML in the member's language with what was typed escaped.
    for (kind, recipient, message_id) in &rows {
        let mail = &mails[message_id];
        let html = mail.html.as_deref().expect("an HTML part");
        let lang = if recipient.eq_ignore_ascii_case("ben@kommune.example") {
            "en"
        } else {
            "de"
        };
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
        assert!(html.contains("<th scope=\"row\""), "{html}");
        if kind == "opened" {
            assert!(html.contains("&lt;Bürgerportal&gt; &amp; Apps"), "{html}");
            assert!(mail.text.contains("<Bürgerportal> & Apps"), "{}", mail.text);
        }
        if kind == "update" {
            assert!(html.contains("ein Zertifikat war abgelaufen"), "{html}");
        }
    }

    // The outage counts in the platform's availability report: 09:00 to 10:30.
    let report = desk.json(&[
        "sla",
        "report",
        "--platform",
        "portal",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--json",
    ]);
    assert_eq!(report["total"]["outage_seconds"], 5400, "{report}");

    let shown = desk.json(&["incident", "show", &id, "--json"]);
    let kinds: Vec<&str> = shown["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["opened", "update", "resolved"]);
    assert_eq!(shown["announcements"].as_array().expect("a").len(), 3);
    assert!(
        shown["announcements"]
            .as_array()
            .expect("a")
            .iter()
            .all(|a| a["sent"] == 3)
    );
    let text = desk.ok(&["incident", "show", &id]);
    assert!(
        text.contains("since:      2026-11-25 09:00:00"),
        "Berlin time: {text}"
    );
    assert!(desk.ok(&["incident", "list"]).contains("Anmeldung gestört"));
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM audit WHERE event IN \
             ('incident_opened', 'incident_updated', 'incident_resolved')"
        )
        .await,
        3
    );

    // A resolved incident takes no more news and no second resolution; nothing is written.
    let err = desk.fails(&["incident", "resolve", &id]);
    assert!(
        err.contains(&format!("incident {id} is resolved already")),
        "{err}"
    );
    let err = desk.fails(&["incident", "update", &id, "--text", "noch etwas"]);
    assert!(err.contains("is resolved already"), "{err}");
    assert_eq!(list_mails(db).await.len(), 9);
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM sla_outages WHERE ends_at IS NOT NULL"
        )
        .await,
        1
    );
}
both!(an_incident_is_announced_threaded_and_counted);

/// (Message-ID, In-Reply-To, References) of the outbox rows of a ticket to `to`, oldest first.
async fn ticket_mails(db: &TestDb, number: &str, template: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT o.message_id, COALESCE(o.in_reply_to, ''), COALESCE(o.refs, '') FROM outbox o \
         JOIN tickets t ON t.id = o.ticket_id WHERE t.number = $1 AND o.template = $2 \
         ORDER BY o.id",
    )
    .bind(number)
    .bind(template)
    .fetch_all(db.store.pool())
    .await
    .expect("rows")
}

async fn class_of(desk: &Desk, id: &str) -> i64 {
    desk.json(&["incident", "show", id, "--json"])["class"]
        .as_i64()
        .expect("class")
}

async fn reports_are_linked_and_their_requesters_told(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import("alle", "E-Mail;Name\nkommune@kommune.example;Kommune\n");
    // Before the incident: filed, linked to nothing.
    let early = desk.ingest(
        "early.eml",
        &request(
            "erika@example.org",
            "Portal: Anmeldung klappt nicht",
            "r0@example.org",
        ),
    );
    let opened = desk.json(&[
        "incident",
        "open",
        "--platform",
        "portal",
        "--title",
        "Anmeldung langsam",
        "--impact",
        "Anmeldung dauert Minuten",
        "--class",
        "3",
        "--json",
    ]);
    let id = opened["id"].to_string();
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM incident_tickets").await,
        0
    );

    // Reports about the portal while the incident is open: linked by the rule, in filing.
    let second = desk.ingest(
        "second.eml",
        &request("max@example.org", "Portal hängt", "r1@example.org"),
    );
    let other = desk.ingest(
        "other.eml",
        &request("otto@example.org", "Drucker defekt", "r2@example.org"),
    );
    let third = desk.ingest(
        "third.eml",
        &request("lena@example.org", "Portal sehr langsam", "r3@example.org"),
    );
    let shown = desk.json(&["incident", "show", &id, "--json"]);
    let linked: Vec<&str> = shown["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t["number"].as_str())
        .collect();
    assert_eq!(linked, [second.as_str(), third.as_str()]);
    assert!(
        shown["tickets"]
            .as_array()
            .expect("t")
            .iter()
            .all(|t| t["linked_by"] == "rule")
    );
    assert!(!linked.contains(&other.as_str()));
    // Two light reports: below the count of three, still class 3.
    assert_eq!(class_of(&desk, &id).await, 3);
    // A follow-up on a linked ticket links nothing twice.
    let again = desk.ingest(
        "again.eml",
        &crate::support::mail::mail(
            &[
                "From: max@example.org",
                &format!("Subject: Re: [Ticket#{second}] Portal hängt immer noch"),
                "Message-ID: <r1b@example.org>",
                "In-Reply-To: <r1@example.org>",
            ],
            "Immer noch.\r\n",
        ),
    );
    assert_eq!(again, second);
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM incident_tickets").await,
        2
    );

    // The third light report, linked by command: class 2, recorded, audited.
    let link = desk.json(&["incident", "link", &id, &early, &second, "--json"]);
    assert_eq!(link["linked"], serde_json::json!([early]));
    assert_eq!(link["already"], serde_json::json!([second]));
    assert_eq!(link["raised"], true);
    assert_eq!(class_of(&desk, &id).await, 2);
    let shown = desk.json(&["incident", "show", &id, "--json"]);
    assert!(shown["raised_at"].is_string());
    assert!(
        shown["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "raised"
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("3 light reports")))
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM audit WHERE event = 'incident_class_raised'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM audit WHERE event = 'incident_linked' AND ticket_id IS NOT NULL"
        )
        .await,
        3
    );

    // The requesters hear the news on their own tickets, in their own conversations.
    let updated = desk.json(&[
        "incident",
        "update",
        &id,
        "--text",
        "Ein Lastverteiler ist ausgefallen.",
        "--json",
    ]);
    assert_eq!(updated["requesters"], 3);
    assert_eq!(updated["fan_out"]["enqueued"], 1);
    let resolved = desk.json(&["incident", "resolve", &id, "--json"]);
    assert_eq!(resolved["requesters"], 3);
    desk.ok(&["outbox", "send"]);
    let mails = sent(desk.data.path());
    for (number, requester, original) in [
        (&early, "erika@example.org", "r0@example.org"),
        (&second, "max@example.org", "r1@example.org"),
        (&third, "lena@example.org", "r3@example.org"),
    ] {
        let ack = ticket_mails(db, number, "eingangsbestaetigung").await;
        let update = ticket_mails(db, number, "stoerung-vorgang-aktualisiert").await;
        let resolution = ticket_mails(db, number, "stoerung-vorgang-behoben").await;
        assert_eq!(
            (ack.len(), update.len(), resolution.len()),
            (1, 1, 1),
            "{number}"
        );
        let mail = &mails[&update[0].0];
        assert_eq!(mail.to, requester);
        assert!(
            mail.subject
                .starts_with(&format!("[Ticket#{number}] Störung portal")),
            "{}",
            mail.subject
        );
        // The update answers the latest mail the requester has of this ticket, and names
        // the conversation from its start; the resolution answers the update.
        let last_seen = if number == &second {
            // Max wrote a follow-up (no acknowledgement to that): his last mail is the latest.
            "r1b@example.org".to_string()
        } else {
            ack[0].0.clone()
        };
        assert_eq!(
            mail.in_reply_to,
            std::slice::from_ref(&last_seen),
            "{number}"
        );
        assert_eq!(mail.references.first().map(String::as_str), Some(original));
        assert!(mail.references.contains(&last_seen));
        let done = &mails[&resolution[0].0];
        assert_eq!(done.in_reply_to, [update[0].0.clone()], "{number}");
        assert!(done.subject.contains("behoben"), "{}", done.subject);
        // Each is an outbound article of the ticket.
        let articles: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM articles a JOIN tickets t ON t.id = a.ticket_id \
             WHERE t.number = $1 AND a.kind = 'outbound' AND a.message_id IN ($2, $3)",
        )
        .bind(number)
        .bind(&update[0].0)
        .bind(&resolution[0].0)
        .fetch_one(db.store.pool())
        .await
        .expect("articles");
        assert_eq!(articles, 2, "{number}");
    }
    // The unrelated ticket's requester hears nothing of it.
    assert!(
        ticket_mails(db, &other, "stoerung-vorgang-aktualisiert")
            .await
            .is_empty()
    );
    // A resolved incident links no more reports by rule.
    desk.ingest(
        "late.eml",
        &request("spaet@example.org", "Portal wieder da?", "r4@example.org"),
    );
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM incident_tickets").await,
        3
    );
}
both!(reports_are_linked_and_their_requesters_told);

async fn incident_commands_say_what_is_wrong(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import("alle", "E-Mail;Name\nkommune@kommune.example;Kommune\n");
    let open = |platform: &str, extra: &[&str]| {
        let mut args = vec![
            "incident",
            "open",
            "--platform",
            platform,
            "--title",
            "Ausfall",
            "--impact",
            "nichts geht",
        ];
        args.extend_from_slice(extra);
        desk.run(&args)
    };
    let r = open("portl", &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("there is no platform \"portl\"") && r.stderr.contains("known: portal"),
        "{}",
        r.stderr
    );
    let err = {
        let r = open("portal", &["--ticket", "2026010110000099"]);
        assert_eq!(r.code, 1);
        r.stderr
    };
    assert!(
        err.contains("there is no ticket 2026010110000099") && err.contains("tickets list"),
        "{err}"
    );
    let err = {
        let r = open("portal", &["--since", "2099-01-01 08:00"]);
        assert_eq!(r.code, 1);
        r.stderr
    };
    assert!(err.contains("lies in the future"), "{err}");
    let err = {
        let r = open("portal", &["--lists", "gibtsnicht"]);
        assert_eq!(r.code, 1);
        r.stderr
    };
    assert!(err.contains("there is no list gibtsnicht"), "{err}");
    // Nothing of the refused ones was written.
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM incidents").await, 0);
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM sla_outages").await,
        0
    );

    for args in [
        vec!["incident", "show", "999"],
        vec!["incident", "update", "999", "--text", "x"],
        vec!["incident", "resolve", "999"],
        vec!["incident", "link", "999", "2026010110000001"],
    ] {
        let err = desk.fails(&args);
        assert!(
            err.contains("there is no incident 999") && err.contains("incident list"),
            "{args:?}: {err}"
        );
    }

    let r = open("portal", &["--since", "2026-11-25 09:00", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = serde_json::from_str::<Value>(&r.stdout).expect("json")["id"].to_string();
    let err = desk.fails(&["incident", "resolve", &id, "--at", "2026-11-25 08:00"]);
    assert!(err.contains("lies before the incident began"), "{err}");
    let err = desk.fails(&["incident", "link", &id, "2026010110000042"]);
    assert!(err.contains("there is no ticket 2026010110000042"), "{err}");
    desk.ok(&["incident", "resolve", &id, "--at", "2026-11-25 10:00"]);
    let err = desk.fails(&["incident", "resolve", &id]);
    assert!(err.contains("is resolved already"), "{err}");
    // A wrong class is the parser's error, with the classes in words.
    let r = open("portal", &["--class", "5"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("betriebsbehindernd"), "{}", r.stderr);
}
both!(incident_commands_say_what_is_wrong);

#[test]
fn check_names_a_rule_with_an_unknown_platform_and_a_raise_after_one() {
    let text = format!(
        "{}\n[[platform]]\nname = \"portal\"\nlists = [\"alle\"]\n\n[incidents]\nraise_to_class_2_after = 1\n",
        TempConfig::shipped_text()
    );
    let rules = "[[rule]]\nname = \"tippfehler\"\nwhen.subject = 'x'\nthen.platform = \"portl\"\n";
    let cfg = TempConfig::new(&text, &[("tippfehler.toml", rules)]);
    let out = poststelle()
        .arg("--config")
        .arg(cfg.path())
        .arg("check")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("tippfehler.toml:4")
            && stdout.contains("platform = \"portl\" names no [[platform]]")
            && stdout.contains("name one of: portal"),
        "{stdout}"
    );
    assert!(
        stdout.contains("raise_to_class_2_after = 1") && stdout.contains("at least 2, or 0"),
        "{stdout}"
    );

    // The shipped configuration with a platform and the incident templates passes.
    let ok = TempConfig::new(
        &format!(
            "{}\n[[platform]]\nname = \"portal\"\n",
            TempConfig::shipped_text()
        ),
        &[(
            "portal.toml",
            "[[rule]]\nname = \"p\"\nwhen.subject = 'portal'\nthen.platform = \"portal\"\n",
        )],
    );
    let out = poststelle()
        .arg("--config")
        .arg(ok.path())
        .arg("check")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// After migration 0010 an announcement belongs to exactly one maintenance or incident, and
/// 0009's partial unique index still refuses a second reminder of the same SEQUENCE.
async fn announcements_belong_to_one_thing_and_keep_their_indexes(db: &TestDb) {
    let pool = db.store.pool();
    let maintenance: i64 = sqlx::query_scalar(
        "INSERT INTO maintenances (platform, starts_at, ends_at, reason, impact, lists, state, \
         created_at, changed_at) VALUES ('portal', 1, 2, 'r', 'i', 'alle', 'scheduled', 0, 0) \
         RETURNING id",
    )
    .fetch_one(pool)
    .await
    .expect("maintenance");
    let insert = |m: Option<i64>, i: Option<i64>, kind: &'static str| {
        sqlx::query(
            "INSERT INTO announcements (maintenance_id, incident_id, kind, sequence, created_at) \
             VALUES ($1, $2, $3, 0, 0)",
        )
        .bind(m)
        .bind(i)
        .bind(kind)
        .execute(pool)
    };
    insert(Some(maintenance), None, "reminder")
        .await
        .expect("a reminder");
    assert!(
        insert(Some(maintenance), None, "reminder").await.is_err(),
        "announcements_once refuses a second reminder"
    );
    assert!(
        insert(None, None, "opened").await.is_err(),
        "an announcement of nothing"
    );
    // A foreign key still holds (SQLite: foreign_keys is on again after the rebuild).
    assert!(insert(None, Some(999_999), "opened").await.is_err());
}
both!(announcements_belong_to_one_thing_and_keep_their_indexes);

/// SQLite rebuilds `announcements` in 0010: a store with maintenance notices written before
/// keeps them, their mails still refer to them, and every index is there again.
#[tokio::test]
async fn the_sqlite_rebuild_keeps_rows_references_and_indexes() {
    use sqlx::any::{AnyPoolOptions, install_default_drivers};
    install_default_drivers();
    let dir = tempfile::tempdir().expect("tmp");
    let before = dir.path().join("migrations");
    std::fs::create_dir_all(&before).expect("dir");
    for e in std::fs::read_dir(crate::support::repo().join("migrations/sqlite")).expect("dir") {
        let path = e.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name.as_str() < "0010" {
            std::fs::copy(&path, before.join(&name)).expect("copy");
        }
    }
    let url = poststelle::store::Store::default_url(dir.path());
    {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect(&format!("{url}?mode=rwc"))
            .await
            .expect("pool");
        sqlx::migrate::Migrator::new(before.as_path())
            .await
            .expect("migrator")
            .run(&pool)
            .await
            .expect("0001-0009");
        for sql in [
            "INSERT INTO maintenances (id, platform, starts_at, ends_at, reason, impact, lists, \
             state, created_at, changed_at) VALUES (7, 'portal', 1, 2, 'r', 'i', 'alle', \
             'scheduled', 0, 0)",
            "INSERT INTO announcements (id, maintenance_id, kind, sequence, created_at) \
             VALUES (41, 7, 'scheduled', 0, 0)",
            "INSERT INTO outbox (kind, recipient, message_id, subject, body_text, \
             auto_submitted, state, next_attempt_at, created_at, announcement_id) \
             VALUES ('announcement', 'a@x.example', 'm1@x', 's', 'b', 'auto-generated', \
             'scheduled', 0, 0, 41)",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool.close().await;
    }
    let store = poststelle::store::Store::open(&url).await.expect("0010");
    let kept: (i64, Option<i64>, Option<i64>, String) =
        sqlx::query_as("SELECT id, maintenance_id, incident_id, kind FROM announcements")
            .fetch_one(store.pool())
            .await
            .expect("row");
    assert_eq!(kept, (41, Some(7), None, "scheduled".to_string()));
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM outbox o JOIN announcements a ON a.id = o.announcement_id"
        )
        .await,
        1
    );
    let broken: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(store.pool())
        .await
        .expect("check");
    assert!(broken.is_empty(), "{broken:?}");
    let mut indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'announcements' \
         AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .expect("indexes");
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "announcements_incident",
            "announcements_maintenance",
            "announcements_once"
        ]
    );
    let partial: String =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'announcements_once'")
            .fetch_one(store.pool())
            .await
            .expect("sql");
    assert!(
        partial.contains("WHERE kind IN ('reminder', 'started')"),
        "{partial}"
    );
    // The outbox's reference to announcements survived the rename: a mail of a notice that
    // does not exist is refused.
    assert!(
        sqlx::query(
            "INSERT INTO outbox (kind, recipient, message_id, subject, body_text, \
             auto_submitted, state, next_attempt_at, created_at, announcement_id) \
             VALUES ('announcement', 'b@x.example', 'm2@x', 's', 'b', 'auto-generated', \
             'scheduled', 0, 0, 999)"
        )
        .execute(store.pool())
        .await
        .is_err()
    );
    store.close().await;
}

/// Two resolutions at once (two instances on PostgreSQL, two tasks on SQLite): one resolves
/// and announces, the other is told the incident is resolved already.
async fn two_resolutions_at_once_announce_once(db: &TestDb) {
    let desk = Desk::new(db);
    desk.import("alle", "E-Mail;Name\nkommune@kommune.example;Kommune\n");
    let opened = desk.json(&[
        "incident",
        "open",
        "--platform",
        "portal",
        "--title",
        "Ausfall",
        "--impact",
        "keine",
        "--json",
    ]);
    let id = opened["id"].as_i64().expect("id");
    let config = desk.config.load();
    let now = jiff::Timestamp::now();
    let resolve =
        || poststelle::announce::incident::resolve(&db.store, &config, id, None, None, "t", now);
    let (a, b) = tokio::join!(resolve(), resolve());
    let refused = [&a, &b]
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(poststelle::announce::AnnounceError::IncidentResolved(i)) if *i == id
            )
        })
        .count();
    assert_eq!(
        (a.is_ok() as usize + b.is_ok() as usize, refused),
        (1, 1),
        "{a:?} {b:?}"
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM announcements WHERE kind = 'resolved'"
        )
        .await,
        1
    );
}
both!(two_resolutions_at_once_announce_once);
