//! The public status page (issue 18) through the real daemon on SQLite and PostgreSQL, over
//! HTTP on loopback: the page per state (no incident, a running class-1 incident, an upcoming
//! maintenance, a cancelled one) in German and English, ETag/Last-Modified and 304, the
//! security headers, 405 for other methods, `/maintenance.ics` read by Python's icalendar
//! with the mailed invitations' UID and SEQUENCE, `/feed.atom` read by Python's feedparser
//! with entries updated in place, nothing private in any public answer, and one-click
//! unsubscribing by a signed link (tampered: refused; GET: a form, nothing changed; POST:
//! unsubscribed and audited).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use mail_parser::MessageParser;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::maintenance::{calendar_of, sent};
use crate::support::bin::poststelle;
use crate::support::config::TempConfig;
use crate::support::daemon::{Daemon, free_port, until};
use crate::support::db::{TestDb, both, scalar};
use crate::support::tickets::{add_note, open_ticket};

/// Strings that must never reach a public answer: a ticket's subject and requester, an
/// internal note, a list's name and description, a member's address, the actor of commands.
const PRIVATE: [&str; 6] = [
    "GEHEIMTICKET",
    "privat-anfrager@buerger.example",
    "INTERNE-NOTIZ",
    "geheimliste",
    "VERTEILER-BESCHREIBUNG",
    "mitglied-geheim@kommune.example",
];

pub(crate) struct Site {
    pub config: TempConfig,
    pub addr: String,
    pub daemon: Daemon,
}

pub(crate) struct Answer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// One HTTP/1.1 request (connection closed after it): status, headers (names lower-cased),
/// body.
pub(crate) async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("HTTP connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // minijinja escapes `/` in HTML; the tests compare text.
    let html = headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("text/html"));
    let body = if html {
        body.replace("&#x2f;", "/")
    } else {
        body.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

pub(crate) async fn get(addr: &str, path: &str) -> Answer {
    request(addr, "GET", path, &[], "").await
}

impl Site {
    /// The shipped configuration on the test's database with platforms "portal" (hessen)
    /// and "zidkor" (rlp), both informing the list "geheimliste", `[status]` on a free
    /// loopback port, and one-click links under `https://status.example.test/unsubscribe`.
    pub async fn start(db: &TestDb) -> Site {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let text = format!(
            "database_url = {:?}\ndata_dir = \"data\"\n{}\n\
             [[platform]]\nname = \"portal\"\ndescription = \"Bürgerportal\"\ncalendar = \"hessen\"\nlists = [\"geheimliste\"]\n\n\
             [[platform]]\nname = \"zidkor\"\ndescription = \"Zentrales Dokumentenregister\"\ncalendar = \"rlp\"\nlists = [\"geheimliste\"]\n\n\
             [status]\nlisten = \"{addr}\"\nimprint_url = \"https://www.example.test/impressum\"\n\
             privacy_url = \"https://www.example.test/datenschutz\"\nrefresh_seconds = 1\n",
            db.url(),
            TempConfig::shipped_text().replace(
                "transport = \"file\"",
                "transport = \"file\"\nunsubscribe_url = \"https://status.example.test/unsubscribe\""
            ),
        );
        let config = TempConfig::new(&text, &[]);
        let daemon = Daemon::start(&config, "daemon");
        let site = Site {
            config,
            addr,
            daemon,
        };
        let addr = site.addr.clone();
        until(Duration::from_secs(30), "the status page answers", || {
            let addr = addr.clone();
            async move {
                match TcpStream::connect(&addr).await {
                    Ok(_) => get(&addr, "/").await.status == 200,
                    Err(_) => false,
                }
            }
        })
        .await;
        site
    }

    pub fn data(&self) -> PathBuf {
        self.config.dir.path().join("data")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = poststelle()
            .arg("--config")
            .arg(self.config.path())
            .args(args)
            .env("USER", "GEHEIMTICKET-actor")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }

    /// Waits until `path` says `text`.
    pub async fn shows(&self, path: &str, text: &str) -> Answer {
        let addr = self.addr.clone();
        until(
            Duration::from_secs(30),
            &format!("{path} shows {text:?}"),
            || {
                let addr = addr.clone();
                async move { get(&addr, path).await.body.contains(text) }
            },
        )
        .await;
        get(&self.addr, path).await
    }

    /// A list with `members` (address;name lines) and, with `unsubscribe`, the offer.
    pub fn list(&self, name: &str, unsubscribe: bool, members: &str) {
        let mut args = vec![
            "lists",
            "create",
            name,
            "--description",
            "VERTEILER-BESCHREIBUNG",
        ];
        if unsubscribe {
            args.push("--unsubscribe");
        }
        self.ok(&args);
        let file = format!("{name}.csv");
        self.config
            .write(&file, format!("E-Mail;Name\n{members}").as_bytes());
        let path = self.config.dir.path().join(&file);
        self.ok(&["lists", "import", name, path.to_str().expect("utf8")]);
    }
}

/// `YYYY-MM-DD HH:MM` Berlin time, `days` from today.
pub(crate) fn berlin(days: i32, time: &str) -> String {
    let today = Timestamp::now()
        .to_zoned(poststelle::time::berlin().expect("tz"))
        .date();
    format!("{} {time}", today.checked_add(days.days()).expect("date"))
}

/// Every VEVENT of an iCalendar file as Python's icalendar reads it: (uid, sequence, status).
fn ics_events(path: &Path) -> Vec<(String, i64, String)> {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import icalendar, json, sys\n\
             cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())\n\
             print(json.dumps([[str(e['uid']), int(e['sequence']), str(e['status'])] for e in cal.walk('VEVENT')]))",
        )
        .arg(path)
        .output()
        .expect("python3 runs (apt-get install python3-icalendar; tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "icalendar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<(String, i64, String)>>(&out.stdout).expect("json")
}

/// The feed as Python's feedparser reads it: bozo (not well-formed), and each entry's
/// (id, updated, title).
fn atom_entries(path: &Path) -> (bool, Vec<(String, String, String)>) {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import feedparser, json, sys\n\
             d = feedparser.parse(sys.argv[1])\n\
             assert d.version == 'atom10', d.version\n\
             print(json.dumps([bool(d.bozo), [[e.id, e.updated, e.title] for e in d.entries]]))",
        )
        .arg(path)
        .output()
        .expect("python3 runs (apt-get install python3-feedparser; tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "feedparser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p
}

/// The paths every public answer is collected from.
const PUBLIC: [&str; 13] = [
    "/",
    "/?lang=en",
    "/platform/portal",
    "/platform/portal?lang=en",
    "/platform/zidkor",
    "/status.json",
    "/maintenance.ics",
    "/maintenance.ics?lang=en",
    "/feed.atom",
    "/feed.atom?lang=en",
    "/status.css",
    "/nichts-hier",
    "/unsubscribe/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.00000000000000000000",
];

async fn assert_nothing_private(addr: &str, when: &str) {
    for path in PUBLIC {
        let a = get(addr, path).await;
        let all = format!("{:?}\n{}", a.headers, a.body);
        for marker in PRIVATE {
            assert!(
                !all.contains(marker),
                "{when}: {path} shows {marker:?}:\n{all}"
            );
        }
    }
}

both!(the_page_follows_incidents_and_maintenance_and_shows_nothing_private);
/// No incident; a class-1 incident with an update; an upcoming maintenance, changed and
/// cancelled — each on the page, in the JSON, the calendar and the feed, while tickets, notes,
/// lists and members with marker strings never appear.
async fn the_page_follows_incidents_and_maintenance_and_shows_nothing_private(db: &TestDb) {
    let mut site = Site::start(db).await;
    let addr = site.addr.clone();
    site.list(
        "geheimliste",
        false,
        "mitglied-geheim@kommune.example;Geheim\n",
    );
    let ticket = open_ticket(
        &db.store,
        "privat-anfrager@buerger.example",
        "GEHEIMTICKET Portal geht nicht",
        "geheim-1",
    )
    .await;
    add_note(
        &db.store,
        &ticket,
        "GEHEIMTICKET-actor",
        "INTERNE-NOTIZ: Passwort 1234",
    )
    .await;

    // Nothing happened: every platform in operation, German by default.
    let a = get(&addr, "/").await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("<html lang=\"de\">"), "{}", a.body);
    assert!(a.body.contains("Alle Plattformen sind in Betrieb."));
    assert!(a.body.contains("Keine Wartung angekündigt."));
    assert!(a.body.contains("https://www.example.test/impressum"));
    assert!(a.body.contains("https://www.example.test/datenschutz"));
    assert!(!a.body.contains("<script"), "no script at all");
    assert_eq!(a.header("content-language"), Some("de"));
    assert_eq!(a.header("vary"), Some("Accept-Language"));
    let csp = a.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    let en = request(
        &addr,
        "GET",
        "/",
        &[("Accept-Language", "en-GB,en;q=0.9,de;q=0.5")],
        "",
    )
    .await;
    assert!(
        en.body.contains("All platforms are operational."),
        "{}",
        en.body
    );
    assert_eq!(en.header("content-language"), Some("en"));
    let forced = request(&addr, "GET", "/?lang=de", &[("Accept-Language", "en")], "").await;
    assert!(forced.body.contains("Betriebsstatus"));

    // Caching: the ETag and Last-Modified answer 304 without a body; HEAD has the same
    // validators and no body.
    let etag = a.header("etag").expect("etag").to_string();
    let modified = a
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    let again = request(&addr, "GET", "/", &[("If-None-Match", &etag)], "").await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let since = request(&addr, "GET", "/", &[("If-Modified-Since", &modified)], "").await;
    assert_eq!(since.status, 304);
    let other = request(&addr, "GET", "/", &[("If-None-Match", "\"anders\"")], "").await;
    assert_eq!(other.status, 200);
    let head = request(&addr, "HEAD", "/", &[], "").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert!(head.body.is_empty());
    let en_etag = en.header("etag").expect("etag");
    assert_ne!(en_etag, etag, "each language has its own validator");

    // Nothing but GET and HEAD.
    for (method, path) in [
        ("POST", "/"),
        ("PUT", "/status.json"),
        ("DELETE", "/feed.atom"),
        ("PATCH", "/platform/portal"),
        ("OPTIONS", "/"),
        ("POST", "/gibt-es-nicht"),
    ] {
        let a = request(&addr, method, path, &[], "").await;
        assert_eq!(a.status, 405, "{method} {path}");
        assert!(
            a.header("allow").is_some_and(|v| v.contains("GET")),
            "{method} {path}"
        );
        assert!(a.header("content-security-policy").is_some());
    }
    assert_eq!(get(&addr, "/platform/gibt-es-nicht").await.status, 404);
    assert_nothing_private(&addr, "before the incident").await;

    // A class-1 incident with an update: disruption, its class and its last update.
    let opened = site.json(&[
        "incident",
        "open",
        "--platform",
        "portal",
        "--title",
        "Anmeldung gestört",
        "--impact",
        "Keine Anmeldung möglich",
        "--class",
        "1",
        "--ticket",
        &ticket,
        "--json",
    ]);
    let incident = opened["id"].as_i64().expect("id").to_string();
    site.ok(&[
        "incident",
        "update",
        &incident,
        "--text",
        "Ursache gefunden, Neustart läuft",
    ]);
    let page = site
        .shows("/", "Neuester Stand: Ursache gefunden, Neustart läuft")
        .await;
    assert!(
        page.body
            .contains("Bei 1 von 2 Plattformen besteht eine Störung.")
    );
    assert!(page.body.contains("Klasse 1: betriebsverhindernde Störung"));
    assert_ne!(
        page.header("etag"),
        Some(etag.as_str()),
        "a new page, a new ETag"
    );
    let stale = request(&addr, "GET", "/", &[("If-None-Match", &etag)], "").await;
    assert_eq!(stale.status, 200);
    let status: Value = serde_json::from_str(&get(&addr, "/status.json").await.body).expect("json");
    assert_eq!(status["schema"], "poststelle-status/1");
    let portal = &status["platforms"][0];
    assert_eq!(portal["name"], "portal");
    assert_eq!(portal["state"], "disruption");
    assert_eq!(portal["class"], 1);
    assert_eq!(portal["incidents"][0]["title"], "Anmeldung gestört");
    assert_eq!(
        portal["incidents"][0]["updates"][1]["text"],
        "Ursache gefunden, Neustart läuft"
    );
    assert!(portal["incidents"][0]["updates"][0].get("actor").is_none());
    assert_eq!(status["platforms"][1]["state"], "operational");
    assert_eq!(portal["availability"]["target_percent"], 97.5);
    assert_eq!(
        portal["availability"]["months"].as_array().map(Vec::len),
        Some(12)
    );
    let one = site
        .shows("/platform/portal?lang=en", "Class 1: service unusable")
        .await;
    assert!(
        one.body.contains("<h1 id=\"p-portal\">Bürgerportal</h1>"),
        "{}",
        one.body
    );
    assert_nothing_private(&addr, "with an incident").await;

    // The feed: one entry for the incident, updated in place when it is resolved.
    let dir = site.config.dir.path();
    let (bozo, entries) = atom_entries(&write(dir, "1.atom", &get(&addr, "/feed.atom").await.body));
    assert!(!bozo, "feedparser finds the feed well-formed");
    let id = format!("tag:kommunal-it.example,2026:status/incident-{incident}");
    let first = entries
        .iter()
        .find(|e| e.0 == id)
        .expect("the incident's entry")
        .clone();
    assert!(
        first.2.starts_with("Störung portal: Anmeldung gestört"),
        "{first:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    site.ok(&[
        "incident",
        "resolve",
        &incident,
        "--text",
        "Behoben nach Neustart",
    ]);
    site.shows("/", "Alle Plattformen sind in Betrieb.").await;
    let (bozo, entries) = atom_entries(&write(dir, "2.atom", &get(&addr, "/feed.atom").await.body));
    assert!(!bozo);
    let same: Vec<_> = entries.iter().filter(|e| e.0 == id).collect();
    assert_eq!(same.len(), 1, "updated in place, not added: {entries:?}");
    assert!(same[0].2.starts_with("Behoben portal"), "{:?}", same[0]);
    assert_ne!(same[0].1, first.1, "its updated time moved");

    // An upcoming maintenance, then changed, then cancelled: the page says each, the
    // calendar carries the mailed invitations' UID and SEQUENCE.
    let (start, end) = (berlin(20, "19:00"), berlin(20, "21:00"));
    let m = site.json(&[
        "maintenance",
        "schedule",
        "--platform",
        "zidkor",
        "--start",
        &start,
        "--end",
        &end,
        "--reason",
        "Sicherheitsupdates",
        "--impact",
        "Nicht erreichbar",
        "--json",
    ]);
    let mid = m["id"].as_i64().expect("id");
    let page = site
        .shows("/platform/zidkor", "Grund: Sicherheitsupdates")
        .await;
    assert!(page.body.contains("Geplant:"), "{}", page.body);
    assert!(page.body.contains("Einschränkungen: Nicht erreichbar"));
    let ics = write(dir, "1.ics", &get(&addr, "/maintenance.ics").await.body);
    let uid = format!("maintenance-{mid}@kommunal-it.example");
    assert_eq!(
        ics_events(&ics),
        vec![(uid.clone(), 0, "CONFIRMED".to_string())]
    );
    let new_end = berlin(20, "22:00");
    site.ok(&["maintenance", "change", &mid.to_string(), "--end", &new_end]);
    site.ok(&["maintenance", "cancel", &mid.to_string()]);
    let page = site
        .shows("/platform/zidkor", "Diese Wartung findet nicht statt.")
        .await;
    assert!(page.body.contains("Abgesagt:"), "{}", page.body);
    let ics = write(dir, "2.ics", &get(&addr, "/maintenance.ics").await.body);
    assert_eq!(
        ics_events(&ics),
        vec![(uid.clone(), 2, "CANCELLED".to_string())]
    );
    let en = get(&addr, "/maintenance.ics?lang=en").await;
    assert!(
        en.body.contains("SUMMARY:Cancelled: Maintenance zidkor"),
        "{}",
        en.body
    );

    // The mailed invitations (sent by the daemon) have the same UID, and the cancellation
    // the feed's SEQUENCE.
    let data = site.data();
    site.ok(&["outbox", "send"]);
    let mut mailed = Vec::new();
    for (i, (_, raw)) in sent(&data).iter().enumerate() {
        let msg = MessageParser::default().parse(raw).expect("mail");
        let has_calendar = msg.parts.iter().any(|p| {
            mail_parser::MimeHeaders::content_type(p)
                .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some("calendar"))
        });
        if has_calendar {
            mailed.extend(ics_events(&calendar_of(raw, dir, &format!("mail-{i}.ics"))));
        }
    }
    mailed.sort_by_key(|e| e.1);
    assert_eq!(
        mailed,
        vec![
            (uid.clone(), 0, "CONFIRMED".to_string()),
            (uid.clone(), 1, "CONFIRMED".to_string()),
            (uid.clone(), 2, "CANCELLED".to_string()),
        ]
    );
    assert_nothing_private(&addr, "after maintenance").await;
    site.daemon.stop_ok();
}

both!(one_click_unsubscribing_by_a_signed_link);
/// The notice's List-Unsubscribe link, checked by the listener: a tampered link is refused
/// and changes nothing; GET shows a form and changes nothing; POST with RFC 8058's body
/// unsubscribes the member, audited; a list that must inform is refused.
async fn one_click_unsubscribing_by_a_signed_link(db: &TestDb) {
    let mut site = Site::start(db).await;
    let addr = site.addr.clone();
    site.list(
        "geheimliste",
        true,
        "mitglied-geheim@kommune.example;Geheim\n",
    );
    let (start, end) = (berlin(20, "19:00"), berlin(20, "21:00"));
    site.ok(&[
        "maintenance",
        "schedule",
        "--platform",
        "zidkor",
        "--start",
        &start,
        "--end",
        &end,
        "--reason",
        "Sicherheitsupdates",
        "--impact",
        "Nicht erreichbar",
    ]);
    let data = site.data();
    site.ok(&["outbox", "send"]);
    let (_, raw) = sent(&data).remove(0);
    let msg = MessageParser::default().parse(&raw).expect("mail");
    let header = msg
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim()
        .to_string();
    let link = header
        .split(['<', '>'])
        .find(|p| p.starts_with("https://"))
        .expect("an https link")
        .to_string();
    let path = link
        .strip_prefix("https://status.example.test")
        .expect("the configured base")
        .to_string();
    assert!(path.starts_with("/unsubscribe/"), "{path}");

    // One changed hex digit of the MAC: refused, nothing changed.
    let mut tampered = path.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let a = request(&addr, "POST", &tampered, &[], "List-Unsubscribe=One-Click").await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("ungültig"), "{}", a.body);
    // The token alone (what a Message-ID shows) is no link either.
    let token_only = path.rsplit_once('.').expect("token.mac").0.to_string();
    assert_eq!(
        request(
            &addr,
            "POST",
            &token_only,
            &[],
            "List-Unsubscribe=One-Click"
        )
        .await
        .status,
        404
    );
    let subscribed = "SELECT COUNT(*) FROM list_members WHERE unsubscribed_at IS NULL";
    assert_eq!(scalar(&db.store, subscribed).await, 1);

    // GET: the confirmation form, the address masked; nothing changed.
    let form = get(&addr, &path).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<form method=\"post\""), "{}", form.body);
    assert!(form.body.contains("m***@kommune.example"), "{}", form.body);
    assert!(
        !form.body.contains("mitglied-geheim@"),
        "the address is masked"
    );
    assert_eq!(form.header("cache-control"), Some("no-store"));
    assert_eq!(scalar(&db.store, subscribed).await, 1);

    // POST without the one-click body: no such request.
    assert_eq!(request(&addr, "POST", &path, &[], "x=1").await.status, 400);
    assert_eq!(scalar(&db.store, subscribed).await, 1);

    // POST (RFC 8058): unsubscribed, one audit line naming the link.
    let done = request(&addr, "POST", &path, &[], "List-Unsubscribe=One-Click").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("abgemeldet"), "{}", done.body);
    assert_eq!(scalar(&db.store, subscribed).await, 0);
    let audited = "SELECT COUNT(*) FROM audit WHERE event = 'notice_unsubscribe' \
                   AND detail LIKE '%\"outcome\":\"unsubscribed\"%' AND detail LIKE '%\"link\":\"https\"%'";
    assert_eq!(scalar(&db.store, audited).await, 1);
    // Twice changes nothing more.
    let again = request(&addr, "POST", &path, &[], "List-Unsubscribe=One-Click").await;
    assert_eq!(again.status, 200);
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM audit WHERE event = 'notice_unsubscribe'"
        )
        .await,
        2
    );

    // Switched off for the list: the same link is refused, and says so.
    site.ok(&["lists", "set", "geheimliste", "--unsubscribe", "off"]);
    let refused = request(&addr, "POST", &path, &[], "List-Unsubscribe=One-Click").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    site.daemon.stop_ok();
}
