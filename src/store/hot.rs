//! The statements whose cost must not grow with the store: those that run for every batch of
//! mail filed, every tick of the escalation loop and the sender, every round of status notices,
//! and the reads people and the status page make however many tickets there are (`tickets
//! list`, the availability reports, the status page's figures). Each is listed as the store
//! runs it — the store functions build their text with the same functions — with sample
//! values, so that tests/integration/query_plans.rs reads the plan of every one on both
//! databases and fails when one would read a whole table (issue 20, item 4).
//!
//! A new statement on one of these paths belongs here.
use sqlx::{Executor, Row};

use super::{Backend, Store, StoreError, placeholders};

/// When a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// For every batch of mail filed.
    Filing,
    /// Every tick of the escalation loop.
    EscalationTick,
    /// Every round of status notices (a minute).
    StatusRound,
    /// Every claim of the sender.
    Sender,
    /// A page of `tickets list`.
    TicketsList,
    /// The availability reports (also on the status page, once a minute).
    Report,
    /// The status page's fingerprint (every few seconds) and timeline.
    StatusPage,
    /// The daily retention run, a batch at a time.
    Retention,
}

/// A sample value for a placeholder.
#[derive(Debug, Clone)]
pub enum Sample {
    Int(i64),
    Text(&'static str),
}

/// A statement as the store runs it, with values for its placeholders.
#[derive(Debug, Clone)]
pub struct HotQuery {
    pub name: &'static str,
    pub when: When,
    pub sql: String,
    pub binds: Vec<Sample>,
}

fn q(name: &'static str, when: When, sql: impl Into<String>, binds: Vec<Sample>) -> HotQuery {
    HotQuery {
        name,
        when,
        sql: sql.into(),
        binds,
    }
}

/// Every statement on the paths above, in `backend`'s dialect.
pub fn hot_queries(backend: Backend) -> Vec<HotQuery> {
    use Sample::{Int, Text};
    use When::*;
    let now = Int(1_800_000_000_000_000);
    let three = |first: usize| placeholders(backend, first, 3);
    let texts = || {
        vec![
            Text("a@example.org"),
            Text("b@example.org"),
            Text("c@example.org"),
        ]
    };
    let ids = || vec![Int(1), Int(2), Int(3)];
    let mut v = vec![
        q(
            "filing: messages filed before, by source",
            Filing,
            super::tickets::filed_before_sql("source_key", &three(1)),
            texts(),
        ),
        q(
            "filing: messages filed before, by Message-ID and hash",
            Filing,
            super::tickets::filed_before_sql("dedup_key", &three(1)),
            texts(),
        ),
        q(
            "filing: tickets by number",
            Filing,
            super::tickets::tickets_by_number_sql(&three(1)),
            texts(),
        ),
        q(
            "filing: participants",
            Filing,
            super::tickets::participants_sql(&three(1)),
            ids(),
        ),
        q(
            "filing: relay: requesters",
            Filing,
            super::relay::requesters_sql(&three(1)),
            ids(),
        ),
        q(
            "filing: relay: Cc of the first mail",
            Filing,
            super::relay::cc_sql(&three(1)),
            ids(),
        ),
        q(
            "filing: relay: first and last mail",
            Filing,
            super::relay::thread_sql(&three(1)),
            ids(),
        ),
        q(
            "filing: automatic replies of the last hour",
            Filing,
            super::outbox::recent_auto_replies_sql(backend, 3),
            {
                let mut b = texts();
                b.push(Int(0));
                b
            },
        ),
        q(
            "filing: announced maintenance windows",
            Filing,
            super::sla::ANNOUNCED_WINDOWS,
            vec![now.clone()],
        ),
        q(
            "filing: row ids",
            Filing,
            super::reserve_ids_sql(
                backend,
                &[("raw_messages", 1), ("tickets", 1), ("articles", 1)],
            ),
            match backend {
                Backend::Sqlite => vec![],
                Backend::Postgres => vec![Int(1), Int(1), Int(1)],
            },
        ),
        q(
            "filing: follow-ups touch their tickets",
            Filing,
            super::tickets::touch_sql(backend, super::tickets::Touch::Update, 3),
            vec![Int(0), Int(1), Int(2), Int(3)],
        ),
        q(
            "filing: follow-ups reopen their tickets",
            Filing,
            super::tickets::touch_sql(backend, super::tickets::Touch::Reopen, 3),
            vec![Int(0), Int(1), Int(2), Int(3)],
        ),
        q(
            "filing: running clock",
            Filing,
            super::sla::RUNNING_CLOCK,
            vec![Int(1)],
        ),
        q(
            "filing: staff's first reaction stops the clock",
            Filing,
            super::sla::STOP_CLOCK,
            vec![Int(0), Text("staff"), Int(0), Int(1), Int(1)],
        ),
        q(
            "filing: status notice facts",
            Filing,
            super::status::NOTICE_FACTS,
            vec![Int(1)],
        ),
        q(
            "filing: a relayed answer takes a new ticket",
            Filing,
            super::status::TAKE_IF_NEW,
            vec![Int(0), Int(1)],
        ),
        q(
            "filing: latest public answer",
            Filing,
            super::status::LATEST_PUBLIC_ANSWER,
            vec![Int(1), Text(super::relay::KIND)],
        ),
        q(
            "escalation: due notices",
            EscalationTick,
            super::sla::DUE_NOTICES,
            vec![now.clone()],
        ),
        q(
            "escalation: on-call candidates",
            EscalationTick,
            super::sla::ON_CALL_CANDIDATES,
            vec![],
        ),
        q(
            "escalation: next due instant",
            EscalationTick,
            super::sla::NEXT_NOTICE_AT,
            vec![],
        ),
        q(
            "escalation: the notice's mail",
            EscalationTick,
            super::sla::NOTICE_SENT_AS,
            vec![Text("x@example.org"), Int(1), Int(1), Text("warning")],
        ),
        q(
            "status notices: due updates",
            StatusRound,
            super::status::DUE_UPDATES,
            vec![now.clone()],
        ),
        q(
            "status notices: due reminders",
            StatusRound,
            super::status::DUE_REMINDERS,
            vec![now.clone()],
        ),
        q(
            "status notices: resolved tickets to close",
            StatusRound,
            super::status::RESOLVED_BEFORE,
            vec![now.clone()],
        ),
        q(
            "status notices: claim an update",
            StatusRound,
            super::status::CLAIM_UPDATE,
            vec![Int(0), Int(1), Int(0)],
        ),
        q(
            "status notices: claim a reminder",
            StatusRound,
            super::status::CLAIM_REMINDER,
            vec![Int(1), Int(0)],
        ),
        q(
            "status notices: close a resolved ticket",
            StatusRound,
            super::status::CLOSE_RESOLVED,
            vec![Int(0), Int(1), Int(0)],
        ),
        q(
            "tickets list: cursor",
            TicketsList,
            super::tickets::TICKET_ID_BY_NUMBER,
            vec![Text("2026112310000012")],
        ),
        q(
            "tickets list: all",
            TicketsList,
            super::tickets::list_sql(backend, false, false),
            vec![Int(0), Int(51)],
        ),
        q(
            "tickets list: by state",
            TicketsList,
            super::tickets::list_sql(backend, true, false),
            vec![Int(0), Text("open"), Int(51)],
        ),
        q(
            "tickets list: by queue",
            TicketsList,
            super::tickets::list_sql(backend, false, true),
            vec![Int(0), Text("support"), Int(51)],
        ),
        q(
            "tickets list: by state and queue",
            TicketsList,
            super::tickets::list_sql(backend, true, true),
            vec![Int(0), Text("closed"), Text("support"), Int(51)],
        ),
        q(
            "tickets show",
            TicketsList,
            super::tickets::TICKET_BY_NUMBER,
            vec![Text("2026112310000012")],
        ),
        q(
            "report: clocks of the period",
            Report,
            super::sla::REPORT_ROWS,
            vec![Text("hessen"), Int(0), Int(1)],
        ),
        q(
            "report: maintenance of the period",
            Report,
            super::sla::MAINTENANCE_IN,
            vec![Text("hessen"), Int(0), Int(1)],
        ),
        q(
            "report: a platform's maintenance of the period",
            Report,
            super::sla::PLATFORM_MAINTENANCE_IN,
            vec![Text("plattform-1"), Text("hessen"), Int(0), Int(1)],
        ),
        q(
            "report: a platform's outages of the period",
            Report,
            super::sla::OUTAGES_IN,
            vec![Text("plattform-1"), Int(0), Int(1)],
        ),
        q(
            "status page: fingerprint",
            StatusPage,
            super::status_page::FINGERPRINT,
            vec![],
        ),
        q(
            "status page: public timeline",
            StatusPage,
            super::status_page::PUBLIC_EVENTS,
            vec![now.clone()],
        ),
    ];
    v.push(q(
        "filing: how old mail with old dedup keys is",
        Filing,
        super::tickets::LEGACY_DEDUP_DATED_BEFORE,
        vec![],
    ));
    for source in super::tickets::message_id_sources(backend) {
        v.push(q(
            "filing: tickets by Message-ID",
            Filing,
            super::tickets::tickets_by_message_id_sql(source, &three(1)),
            texts(),
        ));
    }
    if backend == Backend::Sqlite {
        let key = || Text("<a@example.org>");
        v.push(q(
            "filing: new Message-IDs waiting",
            Filing,
            super::tickets::RECENT_MESSAGE_IDS_SPAN,
            vec![],
        ));
        v.push(q(
            "filing: Message-IDs in the middle tier",
            Filing,
            super::tickets::MIDDLE_MESSAGE_IDS_COUNT,
            vec![],
        ));
        v.push(q(
            "filing: counting a move into the middle tier",
            Filing,
            super::tickets::MIDDLE_MESSAGE_IDS_ADD,
            vec![Int(1_024)],
        ));
        v.push(q(
            "filing: the middle tier moved on whole",
            Filing,
            super::tickets::MIDDLE_MESSAGE_IDS_EMPTIED,
            vec![],
        ));
        for step in super::tickets::Move::ALL {
            v.push(q(
                "filing: end of the next range of Message-IDs to move",
                Filing,
                step.range_end_sql(),
                vec![key(), Int(1_024)],
            ));
            for bounded in [true, false] {
                let binds = if bounded {
                    vec![key(), key()]
                } else {
                    vec![key()]
                };
                for sql in step.sql(bounded) {
                    v.push(q(
                        "filing: moving a range of Message-IDs to the next tier",
                        Filing,
                        sql,
                        binds.clone(),
                    ));
                }
            }
        }
    }
    for (name, step) in [
        (
            "retention: tickets of a queue due for purging",
            super::retention::Step::Purge,
        ),
        (
            "retention: tickets of a queue due for anonymising",
            super::retention::Step::Anonymise,
        ),
    ] {
        v.push(q(
            name,
            Retention,
            super::retention::due_tickets_sql(
                backend,
                step,
                super::retention::Queues::Only("support"),
            ),
            vec![now.clone(), Int(100), Text("support")],
        ));
    }
    for kind in [
        super::outbox::ClaimKind::Direct,
        super::outbox::ClaimKind::Notices,
    ] {
        v.push(q(
            match kind {
                super::outbox::ClaimKind::Direct => "sender: claim mail to people",
                super::outbox::ClaimKind::Notices => "sender: claim notices",
            },
            Sender,
            super::outbox::claim_sql(backend, kind),
            vec![Int(0), Int(0), Int(1), Text("explain")],
        ));
    }
    v.push(q(
        "sender: a batch of marks and results",
        Sender,
        super::outbox::batch_sql(backend),
        vec![Text(
            r#"[{"id":1,"at":2},{"id":2,"state":"sent","attempts":1,"error":null,"next_at":3,"at":3}]"#,
        )],
    ));
    v.push(q(
        "sender: the ticket numbers of a claim",
        Sender,
        super::outbox::ticket_numbers_sql(&three(1)),
        ids(),
    ));
    v.push(q(
        "sender: the originals of a claim",
        Sender,
        super::raw::raw_bytes_of_sql(&three(1), 65_536),
        ids(),
    ));
    v
}

impl Store {
    /// How the database would run `q`, a line per step: SQLite's EXPLAIN QUERY PLAN;
    /// PostgreSQL's EXPLAIN with sequential scans switched off, so that a `Seq Scan` in it
    /// means that no index can serve the statement at all.
    pub async fn explain(&self, q: &HotQuery) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let prefix = match self.backend() {
            Backend::Sqlite => "EXPLAIN QUERY PLAN ",
            Backend::Postgres => {
                conn.execute("SET enable_seqscan = off").await?;
                "EXPLAIN "
            }
        };
        // The statements of this module, or a test's own.
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(format!("{prefix}{}", q.sql))).persistent(false);
        for b in &q.binds {
            query = match b {
                Sample::Int(v) => query.bind(*v),
                Sample::Text(t) => query.bind(*t),
            };
        }
        let rows = query.fetch_all(&mut *conn).await;
        if self.backend() == Backend::Postgres {
            conn.execute("RESET enable_seqscan").await?;
        }
        let column = match self.backend() {
            Backend::Sqlite => 3,
            Backend::Postgres => 0,
        };
        rows?
            .iter()
            .map(|r| Ok(r.try_get::<String, _>(column)?))
            .collect()
    }
}

/// The steps of a plan ([`Store::explain`]) that read a whole table or a whole index:
/// SQLite's `SCAN` (but the constant row of a `SELECT` without `FROM` and the bound JSON
/// array of `json_each`), PostgreSQL's `Seq Scan` and an index scan without an `Index Cond`.
pub fn full_scans(backend: Backend, plan: &[String]) -> Vec<String> {
    match backend {
        Backend::Sqlite => plan
            .iter()
            .map(|l| l.trim())
            // json_each reads the values bound to the statement, not the store.
            .filter(|l| {
                l.starts_with("SCAN ")
                    && *l != "SCAN CONSTANT ROW"
                    && !l.starts_with("SCAN json_each VIRTUAL TABLE")
            })
            .map(str::to_string)
            .collect(),
        Backend::Postgres => {
            let mut out = Vec::new();
            for (i, line) in plan.iter().enumerate() {
                let node = line.trim_start().trim_start_matches("->").trim_start();
                let indent = line.len() - node.len();
                if node.starts_with("Seq Scan") {
                    out.push(node.to_string());
                } else if node.starts_with("Index Scan") || node.starts_with("Index Only Scan") {
                    // Its details follow, indented deeper, before the next step.
                    let bounded = plan[i + 1..]
                        .iter()
                        .take_while(|l| {
                            let t = l.trim_start();
                            !t.starts_with("->") && l.len() - t.len() > indent
                        })
                        .any(|l| l.trim_start().starts_with("Index Cond:"));
                    if !bounded {
                        out.push(node.to_string());
                    }
                }
            }
            out
        }
    }
}
