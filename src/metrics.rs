//! What the daemon counts, in Prometheus' text format for `/metrics`, and what `/healthz`
//! judges: every mailbox this instance holds must have been polled within its limit.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ticket::ingest::Outcome;

type Labels = Vec<(&'static str, String)>;

/// The daemon's counters; cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    fetched: Family<Labels, Counter>,
    outcomes: Family<Labels, Counter>,
    ignored: Family<Labels, Counter>,
    reconnects: Family<Labels, Counter>,
    last_poll: Family<Labels, Gauge>,
    held: Family<Labels, Gauge>,
    outbox: Family<Labels, Counter>,
    outbox_pending: Gauge,
    polls: Mutex<HashMap<String, Poll>>,
}

struct Poll {
    held: bool,
    /// Last successful poll, or when this instance took the mailbox on.
    last: Instant,
    max_silence: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("poststelle");
        let fetched = Family::<Labels, Counter>::default();
        let outcomes = Family::<Labels, Counter>::default();
        let ignored = Family::<Labels, Counter>::default();
        let reconnects = Family::<Labels, Counter>::default();
        let last_poll = Family::<Labels, Gauge>::default();
        let held = Family::<Labels, Gauge>::default();
        let outbox = Family::<Labels, Counter>::default();
        let outbox_pending = Gauge::default();
        registry.register(
            "messages_fetched",
            "Messages fetched from a mailbox",
            fetched.clone(),
        );
        registry.register(
            "messages_filed",
            "Messages filed, by outcome (new_ticket, follow_up, note, ignored, duplicate, quarantined)",
            outcomes.clone(),
        );
        registry.register(
            "messages_ignored",
            "Ignored messages by kind (bounce, auto_reply, notification, list, loop, rule, other)",
            ignored.clone(),
        );
        registry.register(
            "mailbox_reconnects",
            "Reconnects after a network or server error",
            reconnects.clone(),
        );
        registry.register(
            "mailbox_last_poll_timestamp_seconds",
            "Unix time of the last successful poll",
            last_poll.clone(),
        );
        registry.register(
            "mailbox_held",
            "1 while this instance holds the mailbox's lease",
            held.clone(),
        );
        registry.register(
            "outbox_mails",
            "Outgoing mail by result (sent, temporary_failure, permanent_failure)",
            outbox.clone(),
        );
        registry.register(
            "outbox_pending",
            "Outgoing mail waiting to be sent",
            outbox_pending.clone(),
        );
        Metrics {
            registry,
            fetched,
            outcomes,
            ignored,
            reconnects,
            last_poll,
            held,
            outbox,
            outbox_pending,
            polls: Mutex::new(HashMap::new()),
        }
    }

    fn mailbox(name: &str) -> Labels {
        vec![("mailbox", name.to_string())]
    }

    pub fn fetched(&self, mailbox: &str, n: usize) {
        self.fetched
            .get_or_create(&Self::mailbox(mailbox))
            .inc_by(n as u64);
    }

    pub fn filed(&self, mailbox: &str, outcome: &Outcome) {
        let mut labels = Self::mailbox(mailbox);
        labels.push(("outcome", outcome.label().to_string()));
        self.outcomes.get_or_create(&labels).inc();
        if let Outcome::Ignored { reason } = outcome {
            let labels = vec![
                ("mailbox", mailbox.to_string()),
                ("kind", ignored_kind(reason).to_string()),
            ];
            self.ignored.get_or_create(&labels).inc();
        }
    }

    pub fn reconnect(&self, mailbox: &str) {
        self.reconnects.get_or_create(&Self::mailbox(mailbox)).inc();
    }

    /// This instance took on (or gave up) a mailbox.
    pub fn held(&self, mailbox: &str, held: bool, max_silence: Duration) {
        self.held
            .get_or_create(&Self::mailbox(mailbox))
            .set(i64::from(held));
        if let Ok(mut polls) = self.polls.lock() {
            polls.insert(
                mailbox.to_string(),
                Poll {
                    held,
                    last: Instant::now(),
                    max_silence,
                },
            );
        }
    }

    pub fn polled(&self, mailbox: &str) {
        self.last_poll
            .get_or_create(&Self::mailbox(mailbox))
            .set(jiff::Timestamp::now().as_second());
        if let Ok(mut polls) = self.polls.lock()
            && let Some(p) = polls.get_mut(mailbox)
        {
            p.last = Instant::now();
        }
    }

    pub fn outbox(&self, sent: usize, temporary: usize, permanent: usize) {
        for (result, n) in [
            ("sent", sent),
            ("temporary_failure", temporary),
            ("permanent_failure", permanent),
        ] {
            self.outbox
                .get_or_create(&vec![("result", result.to_string())])
                .inc_by(n as u64);
        }
    }

    pub fn set_outbox_pending(&self, n: i64) {
        self.outbox_pending.set(n);
    }

    /// The mailboxes this instance holds that have not been polled within their limit.
    pub fn overdue(&self) -> Vec<(String, Duration)> {
        let Ok(polls) = self.polls.lock() else {
            return vec![("(metrics lock poisoned)".into(), Duration::ZERO)];
        };
        let mut late: Vec<(String, Duration)> = polls
            .iter()
            .filter(|(_, p)| p.held && p.last.elapsed() > p.max_silence)
            .map(|(name, p)| (name.clone(), p.last.elapsed()))
            .collect();
        late.sort();
        late
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The kind of an ignored message, from the classifier's reason (which starts with the kind
/// of auto-generated mail, or says which rule ignored it).
pub fn ignored_kind(reason: &str) -> &'static str {
    for kind in ["bounce", "auto_reply", "notification", "list"] {
        if reason.starts_with(kind) {
            return kind;
        }
    }
    if reason.starts_with("our own mail") || reason.starts_with("loop") {
        "loop"
    } else if reason.starts_with("ignored by rule") {
        "rule"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_kinds_follow_the_classifier_reasons() {
        assert_eq!(ignored_kind("bounce (multipart/report): ignored"), "bounce");
        assert_eq!(
            ignored_kind("auto_reply (Auto-Submitted: auto-replied): ignored"),
            "auto_reply"
        );
        assert_eq!(
            ignored_kind("notification (Auto-Submitted: auto-generated): ignored"),
            "notification"
        );
        assert_eq!(ignored_kind("list (List-Id): ignored"), "list");
        assert_eq!(
            ignored_kind("our own mail came back (X-Poststelle-Loop): ignored"),
            "loop"
        );
        assert_eq!(ignored_kind("ignored by rule spam"), "rule");
        assert_eq!(ignored_kind("something else"), "other");
    }

    #[test]
    fn render_names_mailbox_and_outcome() {
        let m = Metrics::new();
        m.fetched("support", 3);
        m.filed(
            "support",
            &Outcome::Ignored {
                reason: "bounce (x): ignored".into(),
            },
        );
        let text = m.render();
        assert!(
            text.contains("poststelle_messages_fetched_total{mailbox=\"support\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "poststelle_messages_ignored_total{mailbox=\"support\",kind=\"bounce\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn overdue_only_for_held_mailboxes() {
        let m = Metrics::new();
        m.held("a", true, Duration::ZERO);
        m.held("b", false, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let late: Vec<String> = m.overdue().into_iter().map(|(n, _)| n).collect();
        assert_eq!(late, vec!["a".to_string()]);
    }
}
