//! Monitoring mail becomes incidents (issue 19), on SQLite and PostgreSQL: the shipped rules
//! read the default mail of Icinga 2, Nagios, Checkmk, Zabbix and Alertmanager (the samples
//! in tests/fixtures/alerts); 60 alert mails of three keys are three incident tickets, their
//! repeats counted, not filed; recoveries restore ticket and platform incident at the alerts'
//! own times, and the availability report counts exactly those spans; a key that changes
//! state 20 times in 10 minutes is one incident, marked flapping, with a bounded number of
//! mails; nothing ever goes back to a monitoring sender; a platform's incident is told to its
//! lists only once confirmed, or at once where the platform says so.
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use poststelle::announce::incident as announce;
use poststelle::classify::{self, AlertState};
use poststelle::config::Config;
use poststelle::jobs::report;
use poststelle::message::InboundMessage;
use poststelle::store::lists::{self, MemberFields};
use poststelle::ticket::alerts;
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, SourceKey};

use crate::support::alerts::{alertmanager, fixture_bytes, icinga, zabbix};
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both, scalar};

/// Three platforms measured round the clock (so an outage counts whole), each an alert key's,
/// and `extra` (more configuration).
fn desk(extra: &str) -> TempConfig {
    let text = format!(
        "{}\n[calendars.rund]\nhours = {{ mon-sun = \"00:00-24:00\" }}\n\n\
         [[platform]]\nname = \"portal\"\ncalendar = \"rund\"\nlists = [\"portal-nutzer\"]\n{extra}\n\n\
         [[platform]]\nname = \"fachverfahren\"\ncalendar = \"rund\"\n\n\
         [[platform]]\nname = \"webdienste\"\ncalendar = \"rund\"\n\n\
         [[alerts.platform]]\nkey = '^icinga:web01\\.portal\\.'\nplatform = \"portal\"\n\n\
         [[alerts.platform]]\nkey = '^zabbix:app03\\.'\nplatform = \"fachverfahren\"\n\n\
         [[alerts.platform]]\nkey = '^alertmanager:'\nplatform = \"webdienste\"\n",
        TempConfig::shipped_text().replace(
            "rules_dir = \"rules\"",
            &format!("rules_dir = {:?}", crate::support::repo().join("rules")),
        )
    );
    TempConfig::new(&text, &[])
}

fn t0() -> Timestamp {
    "2026-11-25T08:00:00Z".parse().expect("instant")
}

fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

fn micros(minutes: i64) -> i64 {
    at(minutes).as_microsecond()
}

/// Key, state, severity word and the alert's own time (RFC 3339).
type Expected = (&'static str, AlertState, Option<&'static str>, &'static str);
/// Key, state, mails, problem_at, recovered_at, and its ticket's state and closed_at.
type KeyRow = (String, String, i64, i64, Option<i64>, String, Option<i64>);
/// Platform, state, started_at, resolved_at, confirmed_at.
type IncidentRow = (String, String, i64, Option<i64>, Option<i64>);

/// Every sample is read as its system means it: key, state, severity, the alert's own time.
#[test]
fn the_shipped_rules_read_the_samples_of_the_five_systems() {
    let config = desk("").load();
    let cases: &[(&str, Option<Expected>)] = &[
        (
            "icinga2-service-problem.eml",
            Some((
                "icinga:web01.portal.kommunal-it.example/https-portal",
                AlertState::Problem,
                Some("critical"),
                "2026-11-25T08:14:03Z",
            )),
        ),
        (
            "icinga2-service-recovery.eml",
            Some((
                "icinga:web01.portal.kommunal-it.example/https-portal",
                AlertState::Recovery,
                Some("ok"),
                "2026-11-25T08:52:41Z",
            )),
        ),
        (
            "icinga2-service-ack.eml",
            Some((
                "icinga:web01.portal.kommunal-it.example/https-portal",
                AlertState::Acknowledgement,
                Some("critical"),
                "2026-11-25T08:31:17Z",
            )),
        ),
        (
            "icinga2-host-problem.eml",
            Some((
                "icinga:db02.kommunal-it.example",
                AlertState::Problem,
                Some("down"),
                "2026-11-25T09:02:55Z",
            )),
        ),
        (
            "nagios-service-problem.eml",
            Some((
                "nagios:mail01/SMTP",
                AlertState::Problem,
                Some("critical"),
                "2026-11-25T10:20:08Z",
            )),
        ),
        (
            "nagios-service-recovery.eml",
            Some((
                "nagios:mail01/SMTP",
                AlertState::Recovery,
                Some("ok"),
                "2026-11-25T10:47:31Z",
            )),
        ),
        (
            "nagios-host-problem.eml",
            Some((
                "nagios:fw-rathaus",
                AlertState::Problem,
                Some("down"),
                "2026-11-25T10:58:02Z",
            )),
        ),
        (
            "checkmk-service-problem.eml",
            Some((
                "checkmk:web02.portal.kommunal-it.example/Filesystem /var",
                AlertState::Problem,
                Some("crit"),
                "2026-11-25T11:05:44Z",
            )),
        ),
        (
            "checkmk-service-recovery.eml",
            Some((
                "checkmk:web02.portal.kommunal-it.example/Filesystem /var",
                AlertState::Recovery,
                Some("ok"),
                "2026-11-25T11:41:09Z",
            )),
        ),
        (
            "checkmk-host-problem-ascii.eml",
            Some((
                "checkmk:fw-stadtwerke",
                AlertState::Problem,
                Some("down"),
                // No time in the ASCII mail: its Date.
                "2026-11-25T11:17:30Z",
            )),
        ),
        (
            "zabbix-problem.eml",
            Some((
                "zabbix:app03.fachverfahren.kommunal-it.example/High CPU utilization (over 90% for 5m)",
                AlertState::Problem,
                Some("high"),
                "2026-11-25T12:10:22Z",
            )),
        ),
        (
            "zabbix-resolved.eml",
            Some((
                "zabbix:app03.fachverfahren.kommunal-it.example/High CPU utilization (over 90% for 5m)",
                AlertState::Recovery,
                None,
                "2026-11-25T12:34:02Z",
            )),
        ),
        // The default update message names no host: no incident can be told, so it is
        // recorded and ignored.
        ("zabbix-updated.eml", None),
        (
            "alertmanager-firing.eml",
            Some((
                "alertmanager:PortalDown portal",
                AlertState::Problem,
                Some("critical"),
                "2026-11-25T13:02:11Z",
            )),
        ),
        (
            "alertmanager-resolved.eml",
            Some((
                "alertmanager:PortalDown portal",
                AlertState::Recovery,
                Some("critical"),
                "2026-11-25T13:27:41Z",
            )),
        ),
    ];
    for (name, want) in cases {
        let msg = InboundMessage::parse(&fixture_bytes(name)).expect("parses");
        let d = classify::classify(&config, &msg);
        // Invariant 3: no monitoring mail earns an automatic reply.
        assert_eq!(d.auto_reply, None, "{name}");
        match want {
            None => {
                assert_eq!(d.action, classify::Action::Ignore, "{name}: {}", d.reason);
                assert!(d.alert.is_none(), "{name}");
            }
            Some((key, state, severity, time)) => {
                let a = d
                    .alert
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: {}", d.reason));
                assert_eq!(d.action, classify::Action::Ticket, "{name}");
                assert_eq!(d.queue, "betrieb", "{name}");
                assert_eq!(a.key, *key, "{name}");
                assert_eq!(a.state, *state, "{name}");
                assert_eq!(a.severity.as_deref(), *severity, "{name}");
                assert_eq!(
                    a.at.map(|t| t.to_string()).as_deref(),
                    Some(*time),
                    "{name}"
                );
            }
        }
    }
    // Classes from the severity words ([alerts] classes): critical 1, Zabbix's High 2.
    let class = |name: &str| {
        let msg = InboundMessage::parse(&fixture_bytes(name)).expect("parses");
        classify::classify(&config, &msg).severity
    };
    assert_eq!(class("icinga2-service-problem.eml"), 1);
    assert_eq!(class("zabbix-problem.eml"), 2);
    // Mapped platforms: the incident's, not a report to link.
    let msg = InboundMessage::parse(&fixture_bytes("zabbix-problem.eml")).expect("parses");
    let d = classify::classify(&config, &msg);
    assert_eq!(
        d.alert.as_ref().and_then(|a| a.platform.as_deref()),
        Some("fachverfahren")
    );
    assert_eq!(d.platform, None);
}

/// What a key's 20 mails are: minutes after the key's start and whether each is a recovery.
/// Nine problems (one opens, eight repeat), the recovery at 30, eight problems from 60 (the
/// first reopens), and two recoveries at 100 and 101 (the second repeats).
fn script() -> Vec<(i64, bool)> {
    let mut s: Vec<(i64, bool)> = (0..9).map(|m| (m, false)).collect();
    s.push((30, true));
    s.extend((60..68).map(|m| (m, false)));
    s.push((100, true));
    s.push((101, true));
    s
}

type Maker = fn(bool, Timestamp, &str) -> Vec<u8>;

both!(sixty_alert_mails_of_three_keys_are_three_incidents_restored_at_the_alerts_times);
async fn sixty_alert_mails_of_three_keys_are_three_incidents_restored_at_the_alerts_times(
    db: &TestDb,
) {
    let t = desk("");
    let config = t.load();
    let keys: [(&str, i64, Maker); 3] = [
        ("icinga", 0, icinga),
        ("zabbix", 3, zabbix),
        ("alertmanager", 6, alertmanager),
    ];
    // In the order the monitoring sent them, three keys interleaved.
    let mut mails: Vec<(i64, Vec<u8>, String)> = Vec::new();
    for (name, offset, make) in keys {
        for (i, (m, recovery)) in script().into_iter().enumerate() {
            let id = format!("{name}-{i}");
            mails.push((offset + m, make(recovery, at(offset + m), &id), id));
        }
    }
    mails.sort_by_key(|(m, _, id)| (*m, id.clone()));
    assert_eq!(mails.len(), 60);
    for chunk in mails.chunks(7) {
        let latest = chunk.iter().map(|(m, _, _)| *m).max().unwrap_or(0);
        let mut ing = Ingestor::new(&db.store, &config);
        // Filed a minute after the latest of the batch was sent.
        ing.clock = Some(at(latest + 1));
        let items: Vec<Incoming<'_>> = chunk
            .iter()
            .map(|(_, raw, id)| Incoming {
                raw,
                source: SourceKey::file(id),
            })
            .collect();
        let outcomes = ing.ingest_batch(&items).await.expect("ingest");
        assert!(
            outcomes.iter().all(|o| o.ticket().is_some()),
            "every alert mail is kept on its incident: {outcomes:?}"
        );
    }

    // Three incident tickets, nothing else.
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 3);
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM tickets WHERE queue = 'betrieb'"
        )
        .await,
        3
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM raw_messages WHERE ticket_id IS NOT NULL"
        )
        .await,
        60
    );
    // Repeats are counted, not filed: per ticket the opening, two restorations and the
    // reopening are its only inbound articles.
    let inbound: Vec<i64> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM articles WHERE kind = 'inbound' GROUP BY ticket_id ORDER BY ticket_id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("articles");
    assert_eq!(inbound, vec![4, 4, 4]);
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT a.alert_key, a.state, a.mails, a.problem_at, a.recovered_at, t.state, t.closed_at \
         FROM alerts a JOIN tickets t ON t.id = a.ticket_id ORDER BY a.alert_key",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("alerts");
    assert_eq!(rows.len(), 3);
    let offsets = [("alertmanager:", 6), ("icinga:", 0), ("zabbix:", 3)];
    for (row, (prefix, offset)) in rows.iter().zip(offsets) {
        let (key, state, mails, problem_at, recovered_at, ticket_state, closed_at) = row;
        assert!(key.starts_with(prefix), "{key}");
        assert_eq!(state, "recovered", "{key}");
        assert_eq!(*mails, 20, "{key}");
        assert_eq!(*problem_at, micros(offset + 60), "{key}");
        // Restored at the alert's own time (the repeated recovery a minute later changes
        // nothing), not when it was filed.
        assert_eq!(*recovered_at, Some(micros(offset + 100)), "{key}");
        assert_eq!(ticket_state, "resolved", "{key}");
        assert_eq!(*closed_at, Some(micros(offset + 100)), "{key}");
    }

    // One incident per platform, opened and resolved by monitoring, two outages each.
    let incidents: Vec<IncidentRow> = sqlx::query_as(
        "SELECT platform, state, started_at, resolved_at, confirmed_at FROM incidents \
         ORDER BY platform",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("incidents");
    let expected = [("fachverfahren", 3), ("portal", 0), ("webdienste", 6)];
    assert_eq!(incidents.len(), 3);
    for (i, (platform, offset)) in incidents.iter().zip(expected) {
        assert_eq!(i.0, platform);
        assert_eq!(i.1, "resolved", "{platform}");
        assert_eq!(i.2, micros(offset), "{platform}");
        assert_eq!(i.3, Some(micros(offset + 100)), "{platform}");
        // alert_notices is "confirm" by default: the lists have heard nothing.
        assert_eq!(i.4, None, "{platform}");
    }
    assert_eq!(
        scalar(&db.store, "SELECT COUNT(*) FROM announcements").await,
        0
    );
    let spans: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT platform, starts_at, ends_at FROM sla_outages ORDER BY platform, starts_at",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("outages");
    for (platform, offset) in expected {
        let mine: Vec<(i64, Option<i64>)> = spans
            .iter()
            .filter(|s| s.0 == platform)
            .map(|s| (s.1, s.2))
            .collect();
        assert_eq!(
            mine,
            vec![
                (micros(offset), Some(micros(offset + 30))),
                (micros(offset + 60), Some(micros(offset + 100))),
            ],
            "{platform}"
        );
        // The availability report sees those spans: 30 + 40 minutes of November.
        let p = config.settings.platform(platform).expect("platform");
        let cal = config.settings.sla.calendars.get("rund").expect("rund");
        let r = report::platform_report(
            &db.store,
            p,
            cal,
            date(2026, 11, 1),
            date(2026, 11, 30),
            99.0,
            "2026-12-01T00:00:00Z".parse().expect("instant"),
        )
        .await
        .expect("report");
        assert_eq!(r.total.outage_seconds, 70 * 60, "{platform}");
        assert_eq!(r.total.service_seconds, 30 * 24 * 3600, "{platform}");
    }

    // Never a mail to a monitoring sender; the queue's staff had one mail per change of
    // state that was not a repeat (opening, restoration, reopening, restoration).
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE recipient LIKE '%monitor%' \
             OR recipient LIKE 'zabbix@%' OR recipient LIKE 'alertmanager@%'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE recipient = 'betrieb@kommunal-it.example'"
        )
        .await,
        12
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE kind IN ('acknowledgement', 'auto_reply')"
        )
        .await,
        0
    );

    // Filing them all again adds nothing.
    let mut ing = Ingestor::new(&db.store, &config);
    ing.clock = Some(at(200));
    let items: Vec<Incoming<'_>> = mails
        .iter()
        .map(|(_, raw, id)| Incoming {
            raw,
            source: SourceKey::file(id),
        })
        .collect();
    let again = ing.ingest_batch(&items).await.expect("ingest");
    assert!(again.iter().all(|o| matches!(o, Outcome::Duplicate { .. })));
    assert_eq!(
        scalar(&db.store, "SELECT CAST(SUM(mails) AS BIGINT) FROM alerts").await,
        60
    );
}

/// A monitoring rule that asks for an acknowledgement gets none: the alert decides.
#[test]
fn an_alert_never_gets_an_automatic_reply_whatever_a_rule_says() {
    let t = TempConfig::new(
        &TempConfig::shipped_text(),
        &[(
            "05-reply.toml",
            r#"
[[rule]]
name = "answer-everything"
priority = 1
when.subject = '.'
then.auto_reply = "eingangsbestaetigung"
"#,
        )],
    );
    // The rules directory of the test holds only this file: add the shipped alert rules.
    t.write(
        "rules/20-alerts.toml",
        &std::fs::read(crate::support::repo().join("rules/20-alerts.toml")).expect("rules"),
    );
    let text = TempConfig::shipped_text().replace(
        "rules_dir = \"rules\"",
        &format!("rules_dir = {:?}", t.dir.path().join("rules")),
    );
    t.write("poststelle.toml", text.as_bytes());
    let config: Config = t.load();
    let msg = InboundMessage::parse(&fixture_bytes("icinga2-service-problem.eml")).expect("mail");
    let d = classify::classify(&config, &msg);
    assert!(d.rules.iter().any(|r| r == "answer-everything"));
    assert!(d.alert.is_some());
    assert_eq!(d.auto_reply, None);
    assert!(
        d.no_reply
            .as_deref()
            .is_some_and(|w| w.contains("monitoring")),
        "{:?}",
        d.no_reply
    );
    // A person's mail still gets it.
    let person = crate::support::mail::request("anna@example.org", "Drucker", "p@example.org");
    let d = classify::classify(&config, &InboundMessage::parse(&person).expect("mail"));
    assert_eq!(d.auto_reply.as_deref(), Some("eingangsbestaetigung"));
}

/// Members for the portal's list.
async fn members(db: &TestDb, n: usize) {
    lists::create(&db.store, "portal-nutzer", "", false, "test")
        .await
        .expect("list");
    for i in 0..n {
        let address = format!("nutzer{i}@kommune.example");
        lists::add_member(
            &db.store,
            "portal-nutzer",
            &address,
            &MemberFields::default(),
            "test",
        )
        .await
        .expect("member");
    }
}

both!(a_flapping_key_is_one_incident_with_a_bounded_number_of_mails);
async fn a_flapping_key_is_one_incident_with_a_bounded_number_of_mails(db: &TestDb) {
    // Notices at once, so that every change would be told; five changes an hour are normal.
    let t = desk(
        "alert_notices = \"auto\"\n[alerts]\nflapping_changes = 5\nflapping_window_minutes = 60",
    );
    let config = t.load();
    members(db, 3).await;
    // 20 changes in 10 minutes: problem, recovery, problem, … every 30 seconds.
    for i in 0..20i64 {
        let sent = t0() + SignedDuration::from_secs(30 * i);
        let raw = icinga(i % 2 == 1, sent, &format!("flap-{i}"));
        let mut ing = Ingestor::new(&db.store, &config);
        ing.clock = Some(sent + SignedDuration::from_secs(5));
        ing.ingest(&raw, SourceKey::file(&format!("flap-{i}")))
            .await
            .expect("ingest");
        // As the daemon does after filing: the notices due.
        announce::announce_due(&db.store, &config, sent + SignedDuration::from_secs(6))
            .await
            .expect("notices");
    }
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM incidents").await, 1);
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM alerts WHERE flapping_since IS NOT NULL"
        )
        .await,
        1
    );
    let staff = "SELECT COUNT(*) FROM outbox WHERE recipient = 'betrieb@kommunal-it.example'";
    let flapping = "SELECT COUNT(*) FROM outbox WHERE template = 'alarm-flattert'";
    let notices = "SELECT COUNT(*) FROM announcements";
    // The opening and four changes were told one by one; the sixth change made it flap: one
    // mail says so, and the fourteen changes after it send nothing.
    assert_eq!(scalar(&db.store, staff).await, 5 + 1);
    assert_eq!(scalar(&db.store, flapping).await, 1);
    assert!(scalar(&db.store, notices).await <= 5);
    // Still flapping half an hour later: nothing more.
    assert_eq!(
        alerts::settle(&db.store, &config, at(40))
            .await
            .expect("settle"),
        0
    );
    // Quiet for an hour: stable again, told once, and the lists hear the state it settled in.
    assert_eq!(
        alerts::settle(&db.store, &config, at(75))
            .await
            .expect("settle"),
        1
    );
    assert_eq!(
        alerts::settle(&db.store, &config, at(80))
            .await
            .expect("settle"),
        0
    );
    announce::announce_due(&db.store, &config, at(76))
        .await
        .expect("notices");
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE template = 'alarm-stabil'"
        )
        .await,
        1
    );
    let staff_mails = scalar(&db.store, staff).await;
    let announcements = scalar(&db.store, notices).await;
    // The bound: at most flapping_changes + 2 mails to staff (per change, flapping, stable)
    // and flapping_changes + 1 notices to the lists, where 20 changes would have made 20.
    assert_eq!(staff_mails, 5 + 2);
    assert!(announcements <= 5 + 1, "{announcements}");
    assert!(announcements >= 1);
    // What the lists heard last is what the incident is: recovered after 20 changes.
    let (state, announced): (String, Option<String>) =
        sqlx::query_as("SELECT state, announced_state FROM incidents")
            .fetch_one(db.store.pool())
            .await
            .expect("incident");
    assert_eq!(state, "resolved");
    assert_eq!(announced.as_deref(), Some("resolved"));
    // Each announcement went to the three members, none to the monitoring.
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE announcement_id IS NOT NULL"
        )
        .await,
        announcements * 3
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE recipient LIKE '%monitor%'"
        )
        .await,
        0
    );
}

both!(an_incident_monitoring_opens_is_told_once_an_operator_confirms_it);
async fn an_incident_monitoring_opens_is_told_once_an_operator_confirms_it(db: &TestDb) {
    let t = desk("");
    let config = t.load();
    members(db, 2).await;
    let mut ing = Ingestor::new(&db.store, &config);
    ing.clock = Some(at(1));
    ing.ingest(&icinga(false, at(0), "c-0"), SourceKey::file("c-0"))
        .await
        .expect("ingest");
    // Nothing is due while nobody confirmed it.
    let due = announce::announce_due(&db.store, &config, at(2))
        .await
        .expect("due");
    assert!(due.is_empty());
    let id: i64 = sqlx::query_scalar("SELECT id FROM incidents")
        .fetch_one(db.store.pool())
        .await
        .expect("incident");
    // An update would tell lists that never heard of it: refused.
    let refused = announce::update(&db.store, &config, id, "Ursache gefunden", "op", at(3)).await;
    assert!(refused.is_err());
    let done = announce::confirm(&db.store, &config, id, "op", at(3))
        .await
        .expect("confirm")
        .expect("a notice");
    assert_eq!(done.fan_out.enqueued, 2);
    assert_eq!(done.notice.as_str(), "opened");
    // Confirming twice sends nothing twice.
    assert!(
        announce::confirm(&db.store, &config, id, "op", at(4))
            .await
            .expect("confirm")
            .is_none()
    );
    // The recovery: now due at once, threaded as "behoben".
    let mut ing = Ingestor::new(&db.store, &config);
    ing.clock = Some(at(21));
    ing.ingest(&icinga(true, at(20), "c-1"), SourceKey::file("c-1"))
        .await
        .expect("ingest");
    let due = announce::announce_due(&db.store, &config, at(22))
        .await
        .expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].notice.as_str(), "resolved");
    assert!(
        announce::announce_due(&db.store, &config, at(23))
            .await
            .expect("due")
            .is_empty()
    );
    let (resolved_at,): (Option<i64>,) = sqlx::query_as("SELECT resolved_at FROM incidents")
        .fetch_one(db.store.pool())
        .await
        .expect("incident");
    assert_eq!(resolved_at, Some(micros(20)));
}

both!(a_recovery_without_an_incident_opens_nothing);
async fn a_recovery_without_an_incident_opens_nothing(db: &TestDb) {
    let t = desk("");
    let config = t.load();
    let mut ing = Ingestor::new(&db.store, &config);
    ing.clock = Some(at(1));
    let o = ing
        .ingest(&zabbix(true, at(0), "r-0"), SourceKey::file("r-0"))
        .await
        .expect("ingest");
    assert!(matches!(o, Outcome::Ignored { .. }), "{o:?}");
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 0);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM alerts").await, 0);
}

both!(a_problem_after_the_reopen_period_opens_a_new_linked_incident);
async fn a_problem_after_the_reopen_period_opens_a_new_linked_incident(db: &TestDb) {
    let t = desk("");
    let config = t.load();
    let file = async |raw: Vec<u8>, id: &str, now: Timestamp| {
        let mut ing = Ingestor::new(&db.store, &config);
        ing.clock = Some(now);
        ing.ingest(&raw, SourceKey::file(id)).await.expect("ingest")
    };
    let first = file(icinga(false, at(0), "p-0"), "p-0", at(1)).await;
    let Outcome::NewTicket { number, .. } = first else {
        panic!("{first:?}")
    };
    file(icinga(true, at(10), "p-1"), "p-1", at(11)).await;
    // ingest.reopen_days is 14: three weeks later it is a new incident, linked.
    let later = at(10) + SignedDuration::from_hours(21 * 24);
    let o = file(icinga(false, later, "p-2"), "p-2", later).await;
    match o {
        Outcome::NewTicket { linked_to, .. } => assert_eq!(linked_to, Some(number)),
        other => panic!("{other:?}"),
    }
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM tickets").await, 2);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM incidents").await, 2);
    assert_eq!(scalar(&db.store, "SELECT COUNT(*) FROM alerts").await, 1);
}
