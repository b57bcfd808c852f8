//! Monitoring mail (issue 19) made from the samples in tests/fixtures/alerts: the same alert
//! at another time, in another state, with a Message-ID of its own — as the monitoring
//! system would write it (Icinga's "When:", Zabbix's base64 body with "Problem started at …
//! on …", Alertmanager's Date).
use jiff::Timestamp;

use super::repo;

/// A sample's text.
pub fn fixture(name: &str) -> String {
    let path = repo().join("tests/fixtures/alerts").join(name);
    String::from_utf8(std::fs::read(&path).expect("sample")).expect("UTF-8 sample")
}

/// The sample's raw bytes.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/alerts").join(name)).expect("sample")
}

fn berlin(t: Timestamp, format: &str) -> String {
    t.to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone"))
        .strftime(format)
        .to_string()
}

fn rfc2822(t: Timestamp) -> String {
    berlin(t, "%a, %d %b %Y %H:%M:%S %z")
}

/// Replaces the whole header line that starts with `name:` (the samples end lines in CRLF).
fn header(mail: &str, name: &str, value: &str) -> String {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut in_header = true;
    mail.split("\r\n")
        .map(|l| {
            if l.is_empty() {
                in_header = false;
            }
            if in_header && l.to_ascii_lowercase().starts_with(&prefix) {
                format!("{name}: {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A problem (`recovery` false) or recovery of the Icinga 2 sample's service at `at`.
pub fn icinga(recovery: bool, at: Timestamp, id: &str) -> Vec<u8> {
    let mut m = fixture(if recovery {
        "icinga2-service-recovery.eml"
    } else {
        "icinga2-service-problem.eml"
    });
    let when = berlin(at, "%Y-%m-%d %H:%M:%S %z");
    let sample_when = if recovery {
        "2026-11-25 09:52:41 +0100"
    } else {
        "2026-11-25 09:14:03 +0100"
    };
    m = m.replace(
        &format!("When:    {sample_when}"),
        &format!("When:    {when}"),
    );
    m = header(
        &m,
        "Message-Id",
        &format!("<{id}@monitor01.kommunal-it.example>"),
    );
    header(&m, "Date", &rfc2822(at)).into_bytes()
}

/// A problem or recovery of the Zabbix sample's trigger at `at`, with Zabbix's base64 body.
pub fn zabbix(recovery: bool, at: Timestamp, id: &str) -> Vec<u8> {
    let time = berlin(at, "%H:%M:%S");
    let day = berlin(at, "%Y.%m.%d");
    let name = "High CPU utilization (over 90% for 5m)";
    let host = "app03.fachverfahren.kommunal-it.example";
    let (subject, body) = if recovery {
        (
            format!("Resolved in 23m 40s: {name}"),
            format!(
                "Problem has been resolved at {time} on {day}\r\nProblem name: {name}\r\n\
                 Problem duration: 23m 40s\r\nHost: {host}\r\nSeverity: High\r\n\
                 Original problem ID: 4713208\r\n"
            ),
        )
    } else {
        (
            format!("Problem: {name}"),
            format!(
                "Problem started at {time} on {day}\r\nProblem name: {name}\r\nHost: {host}\r\n\
                 Severity: High\r\nOperational data: Current utilization: 97.3 %\r\n\
                 Original problem ID: 4713208\r\n"
            ),
        )
    };
    let mut m = fixture("zabbix-problem.eml");
    let split = m.find("\r\n\r\n").expect("header end");
    m.truncate(split);
    m = header(&m, "Subject", &subject);
    m = header(&m, "Date", &rfc2822(at));
    m = header(
        &m,
        "Message-Id",
        &format!("<{id}@zabbix.kommunal-it.example>"),
    );
    format!("{m}\r\n\r\n{}", base64(body.as_bytes())).into_bytes()
}

/// The Alertmanager sample's group firing or resolved, sent at `at`.
pub fn alertmanager(resolved: bool, at: Timestamp, id: &str) -> Vec<u8> {
    let m = fixture(if resolved {
        "alertmanager-resolved.eml"
    } else {
        "alertmanager-firing.eml"
    });
    let m = header(&m, "Date", &rfc2822(at));
    header(&m, "Message-Id", &format!("<{id}@alertmanager-0>")).into_bytes()
}

/// Base64 in lines of 76, as mail writes it.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}
