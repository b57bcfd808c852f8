//! The calendar entries of maintenance notices (RFC 5545), read back by an independent parser:
//! Python's `icalendar` package (Debian: python3-icalendar, which tests/run.sh installs). A
//! change keeps the UID and raises SEQUENCE, a cancellation says STATUS:CANCELLED, umlauts and
//! long texts survive escaping and folding, and DTSTART is the right instant across the
//! daylight-saving switches — read once through the TZID and once through the object's own
//! VTIMEZONE, so the rules poststelle writes are checked, not only the zone's name.
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::Timestamp;
use poststelle::ical::{Event, Organizer, Status, maintenance_uid, publish};
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

/// Prints one JSON object per file: what the parser makes of the calendar.
const READER: &str = r#"
import json, sys
from datetime import timezone
try:
    import icalendar
except ImportError:
    print("NO-ICALENDAR")
    sys.exit(3)

for path in sys.argv[1:]:
    with open(path, "rb") as f:
        cal = icalendar.Calendar.from_ical(f.read())
    errors = [e for c in cal.walk() for e in getattr(c, "errors", [])]
    events = cal.walk("VEVENT")
    zones = cal.walk("VTIMEZONE")
    ev = events[0]
    def utc(name):
        return ev.decoded(name).astimezone(timezone.utc).isoformat()
    def via_vtimezone(name):
        # The object's own VTIMEZONE rules, not the parser's zone database.
        prop = ev[name]
        if not zones or "TZID" not in prop.params:
            return None
        tz = zones[0].to_tz()
        local = ev.decoded(name).replace(tzinfo=None)
        return tz.localize(local).astimezone(timezone.utc).isoformat()
    print(json.dumps({
        "method": str(cal.get("method")),
        "events": len(events),
        "zones": [str(z.get("tzid")) for z in zones],
        "errors": [str(e) for e in errors],
        "uid": str(ev.get("uid")),
        "sequence": int(ev.get("sequence")),
        "status": str(ev.get("status")),
        "dtstamp": utc("dtstamp"),
        "dtstart": utc("dtstart"),
        "dtend": utc("dtend"),
        "dtstart_tzid": ev["dtstart"].params.get("TZID"),
        "dtstart_vtimezone": via_vtimezone("dtstart"),
        "dtend_vtimezone": via_vtimezone("dtend"),
        "summary": str(ev.get("summary")),
        "description": str(ev.get("description")),
        "location": None if ev.get("location") is None else str(ev.get("location")),
        "organizer": str(ev.get("organizer")),
        "organizer_cn": ev["organizer"].params.get("CN"),
        "transp": str(ev.get("transp")),
    }))
"#;

/// Parses the files with Python's icalendar; one JSON object per file.
pub(crate) fn read_back(files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(READER)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON} does not run ({e}): install python3"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("NO-ICALENDAR"),
        "Python's icalendar package is missing: apt-get install python3-icalendar (tests/run.sh installs it)"
    );
    assert!(
        out.status.success(),
        "the parser failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

fn write(dir: &Path, name: &str, event: &Event) -> PathBuf {
    let ics = publish(event).expect("an iCalendar object");
    // RFC 5545 §3.1: CRLF line ends, no line longer than 75 octets.
    assert!(ics.ends_with("\r\n"));
    for line in ics.trim_end_matches("\r\n").split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "{name}: a bare line break");
        assert!(line.len() <= 75, "{name}: {} octets: {line:?}", line.len());
    }
    let path = dir.join(name);
    std::fs::write(&path, ics).expect("write the .ics");
    path
}

const SUMMARY: &str = "Wartung civento: Störungsmeldungen, Übermittlung; Größenänderung \\ Teil 1";

fn description() -> String {
    let mut d = String::from(
        "Grund: Einspielen des Updates 4.2 (Sicherheitskorrekturen, neue Schnittstelle zur E-Akte; \
         Anpassung der Formularserver).\nEinschränkungen: Während der Wartung ist keine Anmeldung \
         möglich; Anträge, die gerade bearbeitet werden, bitte vorher speichern.\r\n\r\n",
    );
    // Long enough to be folded many times, with two- and three-octet characters at every
    // position of a line.
    for i in 0..12 {
        d.push_str(&format!(
            "Punkt {i}: Prüfung der Übergänge – äöüÄÖÜß € „Anführung“, Semikolon; Komma, Schrägstrich \\ fertig.\n"
        ));
    }
    d
}

fn maintenance(sequence: u32, start: &str, end: &str, status: Status) -> Event {
    Event {
        uid: maintenance_uid(7, "support.ekom21.example"),
        sequence,
        stamp: ts("2026-03-10T09:15:00Z"),
        start: ts(start),
        end: ts(end),
        summary: SUMMARY.into(),
        description: description(),
        location: Some("Rechenzentrum Gießen, Raum 1.07".into()),
        organizer: Organizer {
            name: "ekom21 Kundenservice, civento".into(),
            address: "support@ekom21.example".into(),
        },
        status,
    }
}

#[test]
fn an_independent_parser_reads_announcement_change_and_cancellation() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Announced for Wednesday 25 March 2026, 19:00–23:00 CET; moved a week on, past the
    // switch to summer time (19:00–23:00 CEST); then cancelled.
    let first = maintenance(
        0,
        "2026-03-25T18:00:00Z",
        "2026-03-25T22:00:00Z",
        Status::Confirmed,
    );
    let mut moved = maintenance(
        1,
        "2026-04-01T17:00:00Z",
        "2026-04-01T21:00:00Z",
        Status::Confirmed,
    );
    moved.stamp = ts("2026-03-12T14:00:00Z");
    let mut cancelled = moved.clone();
    cancelled.sequence = 2;
    cancelled.stamp = ts("2026-03-20T08:30:00Z");
    cancelled.status = Status::Cancelled;
    cancelled.location = None;
    let files = [
        write(dir.path(), "first.ics", &first),
        write(dir.path(), "moved.ics", &moved),
        write(dir.path(), "cancelled.ics", &cancelled),
    ];
    let parsed = read_back(&files);
    assert_eq!(parsed.len(), 3, "{parsed:#?}");

    for p in &parsed {
        assert_eq!(p["errors"], serde_json::json!([]), "{p:#}");
        assert_eq!(p["method"], "PUBLISH");
        assert_eq!(p["events"], 1);
        assert_eq!(p["zones"], serde_json::json!(["Europe/Berlin"]));
        assert_eq!(p["uid"], "maintenance-7@support.ekom21.example");
        assert_eq!(p["summary"], SUMMARY, "umlauts and escapes survive");
        assert_eq!(p["description"], description().replace("\r\n", "\n"));
        assert_eq!(p["dtstart_tzid"], "Europe/Berlin");
        assert_eq!(p["organizer"], "mailto:support@ekom21.example");
        assert_eq!(p["organizer_cn"], "ekom21 Kundenservice, civento");
        assert_eq!(p["transp"], "TRANSPARENT");
    }
    let field = |name: &str| -> Vec<Value> { parsed.iter().map(|p| p[name].clone()).collect() };
    assert_eq!(field("sequence"), [0, 1, 2]);
    assert_eq!(field("status"), ["CONFIRMED", "CONFIRMED", "CANCELLED"]);
    assert_eq!(
        field("dtstamp"),
        [
            "2026-03-10T09:15:00+00:00",
            "2026-03-12T14:00:00+00:00",
            "2026-03-20T08:30:00+00:00"
        ]
    );
    assert_eq!(
        field("location"),
        [
            Value::from("Rechenzentrum Gießen, Raum 1.07"),
            Value::from("Rechenzentrum Gießen, Raum 1.07"),
            Value::Null
        ]
    );
    // 19:00 Berlin is 18:00 UTC in winter and 17:00 UTC in summer, by the zone database and
    // by the VTIMEZONE alike.
    let starts = [
        "2026-03-25T18:00:00+00:00",
        "2026-04-01T17:00:00+00:00",
        "2026-04-01T17:00:00+00:00",
    ];
    let ends = [
        "2026-03-25T22:00:00+00:00",
        "2026-04-01T21:00:00+00:00",
        "2026-04-01T21:00:00+00:00",
    ];
    assert_eq!(field("dtstart"), starts);
    assert_eq!(field("dtstart_vtimezone"), starts);
    assert_eq!(field("dtend"), ends);
    assert_eq!(field("dtend_vtimezone"), ends);
}

#[test]
fn the_autumn_switch_night_reads_back_as_the_right_instants() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Work in the night of 25 October 2026 from 01:30 CEST (23:30 UTC) to the second 02:30
    // (CET, 01:30 UTC): the end, in the repeated hour, is written in UTC (parsers disagree on
    // which reading a local 02:30 means: Python's icalendar takes the second, RFC 5545 the
    // first). And Wednesday 28 October, 19:00 CET, the first evening of winter time.
    let night = maintenance(
        0,
        "2026-10-24T23:30:00Z",
        "2026-10-25T01:30:00Z",
        Status::Confirmed,
    );
    let evening = maintenance(
        0,
        "2026-10-28T18:00:00Z",
        "2026-10-28T22:00:00Z",
        Status::Confirmed,
    );
    // Late March 2027: the last Saturday (the 27th) before the switch, 14:00–19:00 CET, and
    // the Wednesday after it, 19:00 CEST.
    let saturday = maintenance(
        0,
        "2027-03-27T13:00:00Z",
        "2027-03-27T18:00:00Z",
        Status::Confirmed,
    );
    let wednesday = maintenance(
        0,
        "2027-03-31T17:00:00Z",
        "2027-03-31T21:00:00Z",
        Status::Confirmed,
    );
    let files = [
        write(dir.path(), "night.ics", &night),
        write(dir.path(), "evening.ics", &evening),
        write(dir.path(), "saturday.ics", &saturday),
        write(dir.path(), "wednesday.ics", &wednesday),
    ];
    let text = std::fs::read_to_string(&files[0]).expect("read");
    assert!(text.contains("\r\nDTSTART;TZID=Europe/Berlin:20261025T013000\r\n"));
    assert!(text.contains("\r\nDTEND:20261025T013000Z\r\n"), "{text}");
    let parsed = read_back(&files);
    let field = |name: &str| -> Vec<Value> { parsed.iter().map(|p| p[name].clone()).collect() };
    assert_eq!(
        field("dtstart"),
        [
            "2026-10-24T23:30:00+00:00",
            "2026-10-28T18:00:00+00:00",
            "2027-03-27T13:00:00+00:00",
            "2027-03-31T17:00:00+00:00"
        ]
    );
    assert_eq!(
        field("dtstart_vtimezone"),
        [
            "2026-10-24T23:30:00+00:00",
            "2026-10-28T18:00:00+00:00",
            "2027-03-27T13:00:00+00:00",
            "2027-03-31T17:00:00+00:00"
        ]
    );
    assert_eq!(
        field("dtend"),
        [
            "2026-10-25T01:30:00+00:00",
            "2026-10-28T22:00:00+00:00",
            "2027-03-27T18:00:00+00:00",
            "2027-03-31T21:00:00+00:00"
        ]
    );
    // The UTC end has no TZID to read a VTIMEZONE by.
    assert_eq!(parsed[0]["dtend_vtimezone"], Value::Null);
}
