//! `poststelle tickets create` (issue 17, item 7): a ticket from the telephone or the counter
//! opens as the requester's mail would — filed through the ingest path with the queue and
//! class staff chose: acknowledgement, staff copy, deadline, audit line.
use poststelle::ticket::ops::{self, NewByHand};

use crate::support::bin;
use crate::support::config::TempConfig;
use crate::support::db::{TestDb, both};

const CITIZEN: &str = "erika@example.org";

fn by_phone<'a>(queue: &'a str, severity: u8, subject: &'a str) -> NewByHand<'a> {
    NewByHand {
        queue,
        severity,
        requester: CITIZEN,
        name: Some("Mustermann, Erika"),
        subject,
        body: "Anruf 10:05: das Fachverfahren startet nicht, Fehlermeldung 0x80004005.\n",
        actor: "anna",
    }
}

both!(a_ticket_from_the_phone_opens_as_mail_would);
async fn a_ticket_from_the_phone_opens_as_mail_would(db: &TestDb) {
    let t = TempConfig::staff_desk(&[], "");
    let cfg = t.load();
    let s = &db.store;
    // A subject the rules would file as class 3 in support: staff's choice wins.
    let number = ops::create_ticket(
        s,
        &cfg,
        by_phone("betrieb", 1, "Fachverfahren startet nicht"),
    )
    .await
    .expect("create");
    let v = ops::show_ticket(s, &number).await.expect("show");
    assert_eq!(v.summary.queue, "betrieb");
    assert_eq!(v.summary.severity, 1);
    assert_eq!(v.summary.state, "new");
    assert_eq!(v.summary.requester, CITIZEN);
    assert_eq!(v.summary.subject, "Fachverfahren startet nicht");
    let inbound: Vec<_> = v.articles.iter().filter(|a| a.kind == "inbound").collect();
    assert_eq!(inbound.len(), 1, "{:?}", v.articles);
    assert_eq!(inbound[0].sender.as_deref(), Some(CITIZEN));
    assert!(inbound[0].body.contains("0x80004005"), "{:?}", inbound[0]);
    let kinds: Vec<(&str, &str)> = v
        .outbox
        .iter()
        .map(|r| (r.kind.as_str(), r.recipient.as_str()))
        .collect();
    assert!(kinds.contains(&("acknowledgement", CITIZEN)), "{kinds:?}");
    assert!(
        kinds.contains(&("staff_copy", "betrieb@kommunal-it.example")),
        "{kinds:?}"
    );
    let ack = v
        .outbox
        .iter()
        .find(|r| r.kind == "acknowledgement")
        .expect("ack");
    assert!(ack.subject.contains(&number), "{}", ack.subject);
    let sla = v.sla.expect("the deadline runs");
    assert!(sla.reacted.is_none());
    assert!(
        v.audit
            .iter()
            .any(|a| a.actor == "anna" && a.event == "ticket_created" && a.detail["class"] == 1),
        "{:?}",
        v.audit
    );
    // Wrong input changes nothing and says what is wanted.
    for (new, wanted) in [
        (by_phone("nirgendwo", 3, "x"), "not configured"),
        (by_phone("support", 5, "x"), "1, 2, 3 or 4"),
        (by_phone("support", 3, " "), "subject is empty"),
        (
            NewByHand {
                requester: "erika",
                ..by_phone("support", 3, "x")
            },
            "no mail address",
        ),
    ] {
        let e = ops::create_ticket(s, &cfg, new).await.expect_err(wanted);
        assert!(e.to_string().contains(wanted), "{e}");
    }
    assert_eq!(
        ops::list_tickets(s, None, None, None, 100)
            .await
            .expect("list")
            .tickets
            .len(),
        1
    );
}

#[test]
fn tickets_create_on_the_command_line() {
    let t = TempConfig::staff_desk(&[], "");
    let data = tempfile::tempdir().expect("tmp");
    let body = data.path().join("body.txt");
    std::fs::write(&body, "Drucker im Bürgerbüro druckt nicht.\n").expect("write");
    let run = |args: &[&str]| {
        bin::stdout_of(
            bin::poststelle()
                .arg("--config")
                .arg(t.path())
                .arg("--data-dir")
                .arg(data.path())
                .args(args),
        )
    };
    // The store must exist: `ingest` of an empty directory makes it.
    let empty = data.path().join("empty");
    std::fs::create_dir(&empty).expect("dir");
    run(&["ingest", empty.to_str().expect("utf8")]);
    let out = run(&[
        "tickets",
        "create",
        "--queue",
        "support",
        "--class",
        "2",
        "--requester",
        CITIZEN,
        "--name",
        "Erika Mustermann",
        "--subject",
        "Drucker Bürgerbüro",
        "--file",
        body.to_str().expect("utf8"),
        "--json",
    ]);
    let number = serde_json::from_str::<serde_json::Value>(&out).expect("json")["number"]
        .as_str()
        .expect("number")
        .to_string();
    let show: serde_json::Value =
        serde_json::from_str(&run(&["tickets", "show", &number, "--json"])).expect("json");
    assert_eq!(show["queue"], "support");
    assert_eq!(show["severity"], 2);
    assert_eq!(show["subject"], "Drucker Bürgerbüro");
    assert_eq!(
        show["articles"][0]["body"].as_str().map(str::trim),
        Some("Drucker im Bürgerbüro druckt nicht.")
    );
}
