//! The outbox: every outgoing mail is a row, written in the transaction of the change that
//! causes it and sent by the sender, which claims rows, sends them and records the result.
//! States are [`OutboxState`]; a claim names its holder (see `holder.rs`), so that a restart
//! can release the claims of its own dead process at once. Before an SMTP sender hands a
//! mail's data over it commits a mark ([`Store::mark_handed`]): beside a SQLite store in a
//! database of its own (`marks.rs`), else as `handed_at` on the row, in its group commit
//! [`SenderWriter`]. The result makes the mark stale, so a claimed row that still has a live
//! one was handed over by a sender that died before the answer came (see `outbox::sender`).
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow, Row};

use super::buffer::{Val, WriteBuffer};
use super::{Backend, MAX_PARAMS, Store, StoreError, placeholders};

/// Where an outgoing mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its (first or next) attempt.
    Scheduled,
    /// The server (or the file system) took it; never sent again.
    Sent,
    /// The last attempt failed in a way that may pass; tried again later.
    TemporaryFailure,
    /// Given up: refused for good, too many attempts, or not renderable.
    PermanentFailure,
    /// Held back by the loop brake.
    Suppressed,
    /// Its data went to the SMTP server but no answer was recorded (the sender died, or the
    /// connection broke after the final `.`): the server may have taken it (RFC 1047). Held
    /// under `outbox.after_crash = "hold"` until a person has looked and retries it.
    Uncertain,
}

impl OutboxState {
    /// The text stored in `outbox.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Scheduled => "scheduled",
            OutboxState::Sent => "sent",
            OutboxState::TemporaryFailure => "temporary_failure",
            OutboxState::PermanentFailure => "permanent_failure",
            OutboxState::Suppressed => "suppressed",
            OutboxState::Uncertain => "uncertain",
        }
    }

    /// The state stored as `s`.
    pub fn parse(s: &str) -> Option<OutboxState> {
        [
            OutboxState::Scheduled,
            OutboxState::Sent,
            OutboxState::TemporaryFailure,
            OutboxState::PermanentFailure,
            OutboxState::Suppressed,
            OutboxState::Uncertain,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A row to write ([`WriteBuffer::outbox`]).
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub ticket_id: Option<i64>,
    pub kind: &'static str,
    pub template: String,
    pub recipient: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub refs: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub auto_submitted: &'static str,
    pub raw_message_id: Option<i64>,
    pub state: OutboxState,
    pub last_error: Option<String>,
    pub at: i64,
}

/// An outbound article: what a ticket shows of a mail sent on it.
#[derive(Debug, Clone)]
pub struct NewOutboundArticle {
    /// A reserved id, or `None` for the next free one.
    pub id: Option<i64>,
    pub ticket_id: i64,
    pub message_id: String,
    pub sender: String,
    pub subject: String,
    pub body: String,
    pub at: i64,
}

const OUTBOX_COLUMNS: &[&str] = &[
    "ticket_id",
    "kind",
    "template",
    "recipient",
    "message_id",
    "in_reply_to",
    "refs",
    "subject",
    "body_text",
    "body_html",
    "auto_submitted",
    "raw_message_id",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
];

const ARTICLE_COLUMNS_WITH_ID: [&str; 8] = [
    "id",
    "ticket_id",
    "kind",
    "message_id",
    "sender",
    "subject",
    "body",
    "created_at",
];

impl WriteBuffer {
    pub fn outbox(&mut self, r: NewOutbox) {
        self.push(
            "outbox",
            OUTBOX_COLUMNS,
            vec![
                Val::OptInt(r.ticket_id),
                Val::Text(r.kind.into()),
                Val::Text(r.template),
                Val::Text(r.recipient),
                Val::Text(r.message_id),
                Val::OptText(r.in_reply_to),
                Val::OptText(r.refs),
                Val::Text(r.subject),
                Val::Text(r.body_text),
                Val::OptText(r.body_html),
                Val::Text(r.auto_submitted.into()),
                Val::OptInt(r.raw_message_id),
                Val::Text(r.state.as_str().into()),
                Val::Int(0),
                Val::Int(r.at),
                Val::OptText(r.last_error),
                Val::Int(r.at),
            ],
        );
    }

    pub fn outbound_article(&mut self, a: NewOutboundArticle) {
        let mut row = Vec::with_capacity(8);
        if let Some(id) = a.id {
            row.push(Val::Int(id));
        }
        row.extend([
            Val::Int(a.ticket_id),
            Val::Text("outbound".into()),
            Val::Text(a.message_id),
            Val::Text(a.sender),
            Val::Text(a.subject),
            Val::Text(a.body),
            Val::Int(a.at),
        ]);
        let columns: &'static [&'static str] = if a.id.is_some() {
            &ARTICLE_COLUMNS_WITH_ID
        } else {
            &ARTICLE_COLUMNS_WITH_ID[1..]
        };
        self.push("articles", columns, row);
    }
}

/// Automatic replies to `n` recipients since the last placeholder, per recipient.
pub(super) fn recent_auto_replies_sql(backend: Backend, n: usize) -> String {
    format!(
        "SELECT recipient, COUNT(*) AS n FROM outbox WHERE recipient IN ({}) \
         AND kind IN ('acknowledgement', 'auto_reply') AND state <> 'suppressed' \
         AND created_at > {} GROUP BY recipient",
        placeholders(backend, 1, n),
        placeholders(backend, n + 1, 1),
    )
}

/// Automatic replies written to each of `recipients` since `since` (held-back ones not
/// counted), for the loop brake: one query for a whole batch. Recipients with none are missing
/// from the map.
pub async fn recent_auto_replies(
    conn: &mut AnyConnection,
    backend: Backend,
    recipients: &[&str],
    since: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut counts = HashMap::new();
    for chunk in recipients.chunks(MAX_PARAMS - 1) {
        let sql = recent_auto_replies_sql(backend, chunk.len());
        // Only placeholders are formatted in; the statement differs with the list's length.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for r in chunk {
            q = q.bind(*r);
        }
        for row in q.bind(since).fetch_all(&mut *conn).await? {
            counts.insert(row.try_get("recipient")?, row.try_get("n")?);
        }
    }
    Ok(counts)
}

/// A row claimed for sending.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: i64,
    pub recipient: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub refs: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub auto_submitted: String,
    pub raw_message_id: Option<i64>,
    pub attempts: i64,
    /// The `List-Id` of an announcement's mail (which also makes it `Precedence: bulk`).
    pub list_id: Option<String>,
    /// An iCalendar object to send along as a `text/calendar` part.
    pub ical: Option<String>,
    /// A notice's text, stored once for all its mails (`announcement_bodies`); the claim
    /// fills `body_text`, `body_html` and `ical` from it.
    pub body_id: Option<i64>,
    pub kind: String,
    pub ticket_id: Option<i64>,
    /// Cc recipients of a relayed staff answer, space-separated.
    pub cc: Option<String>,
    /// Set when an earlier attempt began handing the data to the server and its result was
    /// never recorded: that sender died, and the server may have the mail. Read from the row
    /// or, beside a SQLite store, from the marks' database (`marks.rs`).
    pub handed_at: Option<i64>,
    /// The number of the row's ticket, which the claim reads for all its rows in one
    /// statement: the reply address of a mail to staff carries it.
    #[sqlx(default)]
    pub ticket_number: Option<String>,
    /// Beside a SQLite store: how the attempt that handed the data over ended, journaled by a
    /// sender that died before it recorded it on the row (`marks.rs`). The claim's sender
    /// records it instead of sending.
    #[sqlx(skip)]
    pub journaled: Option<Recorded>,
}

/// An attempt's end as journaled beside a SQLite store ([`Claimed::journaled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub state: OutboxState,
    pub attempts: i64,
    pub error: Option<String>,
    pub next_attempt_at: i64,
    pub at: i64,
}

impl Recorded {
    pub fn attempt(&self) -> Attempt<'_> {
        Attempt {
            state: self.state,
            attempts: self.attempts,
            error: self.error.as_deref(),
            next_attempt_at: self.next_attempt_at,
            at: self.at,
        }
    }
}

/// The numbers of the tickets `ph` (a claim's rows).
pub(super) fn ticket_numbers_sql(ph: &str) -> String {
    format!("SELECT id, number FROM tickets WHERE id IN ({ph})")
}

/// Due and unclaimed at `$2`, in the partial indexes' order. The state test is written as in
/// the indexes' predicate: SQLite uses a partial index only when the query repeats it.
macro_rules! claim_where {
    () => {
        "state IN ('scheduled', 'temporary_failure') AND next_attempt_at <= $2 \
         AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY next_attempt_at, id"
    };
}

macro_rules! claim_returning {
    () => {
        "RETURNING id, recipient, message_id, in_reply_to, refs, subject, body_text, \
         body_html, auto_submitted, raw_message_id, attempts, list_id, ical, body_id, kind, \
         ticket_id, cc, handed_at"
    };
}

/// The rows to claim: mail to single people, or the notices of distribution lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// Rows without `list_id`: acknowledgements, staff copies, forwards, escalations.
    Direct,
    /// Rows with `list_id`: an announcement's fan-out.
    Notices,
}

/// Claims up to `$3` due rows of one kind for `$4` until `$1`, in the order and with the
/// predicate of the partial indexes `outbox_due_direct` and `outbox_due_notices` (migration
/// 0012), so that a claim reads only the rows it takes.
pub(super) fn claim_sql(backend: Backend, kind: ClaimKind) -> &'static str {
    match (backend, kind) {
        // SQLite's planner, without statistics, prefers `outbox_due` and sorts; INDEXED BY
        // holds it to the partial index (and fails loudly should the index not fit).
        (Backend::Sqlite, ClaimKind::Direct) => concat!(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4 WHERE id IN (",
            "SELECT id FROM outbox INDEXED BY outbox_due_direct WHERE list_id IS NULL AND ",
            claim_where!(),
            " LIMIT $3) ",
            claim_returning!()
        ),
        (Backend::Sqlite, ClaimKind::Notices) => concat!(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4 WHERE id IN (",
            "SELECT id FROM outbox INDEXED BY outbox_due_notices WHERE list_id IS NOT NULL AND ",
            claim_where!(),
            " LIMIT $3) ",
            claim_returning!()
        ),
        (Backend::Postgres, ClaimKind::Direct) => concat!(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4 WHERE id IN (",
            "SELECT id FROM outbox WHERE list_id IS NULL AND ",
            claim_where!(),
            " LIMIT $3 FOR UPDATE SKIP LOCKED) ",
            claim_returning!()
        ),
        (Backend::Postgres, ClaimKind::Notices) => concat!(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4 WHERE id IN (",
            "SELECT id FROM outbox WHERE list_id IS NOT NULL AND ",
            claim_where!(),
            " LIMIT $3 FOR UPDATE SKIP LOCKED) ",
            claim_returning!()
        ),
    }
}

const RECORD_ATTEMPT: &str = "UPDATE outbox SET state = $1, attempts = $2, last_error = $3, \
     next_attempt_at = $4, claimed_until = NULL, claimed_by = NULL, handed_at = NULL, \
     sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END WHERE id = $6";

/// When the next row falls due or its claim runs out ([`Store::next_outbox_due`]): the daemon
/// asks after every pass of its sender. It reads every row still to be sent, as it did when an
/// index on the state gave them as a range.
const NEXT_DUE: &str = concat!(
    "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_until > next_attempt_at \
     THEN claimed_until ELSE next_attempt_at END) FROM outbox WHERE id IN (",
    pending_outbox_ids!(),
    ")",
);

/// Rows still to be sent ([`Store::outbox_pending`]).
const PENDING: &str = concat!("SELECT COUNT(*) FROM (", pending_outbox_ids!(), ") AS p");

const MARK_HANDED: &str = "UPDATE outbox SET handed_at = $1 WHERE id = $2";

/// One of the sender's writes ([`Store::sender_writes`]).
#[derive(Debug, Clone)]
pub enum SenderWrite<'a> {
    /// Row `id`'s data is about to go to the server ([`Store::mark_handed`]).
    Handed { id: i64, at: i64 },
    /// Row `id`'s attempt ended ([`Store::record_attempt`]).
    Attempt { id: i64, attempt: Attempt<'a> },
}

/// How one attempt ended, as recorded.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub state: OutboxState,
    pub attempts: i64,
    pub error: Option<&'a str>,
    pub next_attempt_at: i64,
    pub at: i64,
}

impl Store {
    /// Claims up to `limit` rows due at `now` for `holder` until `until`: mail to single
    /// people first, the notices of distribution lists with what is left of `limit` (at most
    /// `notice_limit`), so that a large fan-out never holds an acknowledgement back for
    /// longer than one claim. Two senders never claim the same row: PostgreSQL skips rows
    /// another transaction has locked, SQLite has one writer at a time.
    pub async fn claim_outbox(
        &self,
        now: i64,
        until: i64,
        limit: i64,
        notice_limit: i64,
        holder: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let backend = self.backend();
        let gate = self.write_gate().await;
        let mut rows: Vec<Claimed> = sqlx::query_as(claim_sql(backend, ClaimKind::Direct))
            .bind(until)
            .bind(now)
            .bind(limit)
            .bind(holder)
            .fetch_all(self.pool())
            .await?;
        let rest = (limit - rows.len() as i64).min(notice_limit);
        if rest > 0 {
            let notices: Result<Vec<Claimed>, _> =
                sqlx::query_as(claim_sql(backend, ClaimKind::Notices))
                    .bind(until)
                    .bind(now)
                    .bind(rest)
                    .bind(holder)
                    .fetch_all(self.pool())
                    .await;
            match notices {
                Ok(notices) => rows.extend(notices),
                Err(e) => {
                    drop(gate);
                    return Err(self.give_back(&rows, holder, e.into()).await);
                }
            }
        }
        // What follows only reads: filing may go on meanwhile.
        drop(gate);
        // RETURNING gives no order; the sender begins with the rows due longest.
        rows.sort_by_key(|c| (c.list_id.is_some(), c.id));
        let filled = async {
            self.fill_bodies(&mut rows).await?;
            self.fill_ticket_numbers(&mut rows).await?;
            self.fill_marks(&mut rows).await
        }
        .await;
        match filled {
            Ok(()) => Ok(rows),
            Err(e) => Err(self.give_back(&rows, holder, e).await),
        }
    }

    /// The rows of a claim that failed after they were claimed go back at once rather than
    /// when the claim runs out (minutes in which no sender would take them); the caller
    /// learns the claim's error.
    async fn give_back(&self, rows: &[Claimed], holder: &str, e: StoreError) -> StoreError {
        let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
        if let Err(back) = self.unclaim_outbox(&ids, holder).await {
            tracing::warn!(error = %back, rows = ids.len(),
                "giving back the rows of a failed claim failed; they are free when the claim runs out");
        }
        e
    }

    /// The hand-over marks of claimed rows kept beside a SQLite store (see `marks.rs`): a
    /// claimed row with a live mark was handed over by a sender that died before its result.
    async fn fill_marks(&self, rows: &mut [Claimed]) -> Result<(), StoreError> {
        if !self.marks_apart() {
            return Ok(());
        }
        let keys: Vec<(i64, i64, &str)> = rows
            .iter()
            .map(|c| (c.id, c.attempts, c.message_id.as_str()))
            .collect();
        let mut live = self.marks_of(&keys).await?;
        for c in rows.iter_mut() {
            if let Some((at, journaled)) = live.remove(&c.id) {
                c.handed_at = c.handed_at.or(Some(at));
                c.journaled = journaled;
            }
        }
        Ok(())
    }

    /// The ticket numbers of claimed rows, in one statement for the claim rather than one per
    /// mail to staff when its mail is built.
    async fn fill_ticket_numbers(&self, rows: &mut [Claimed]) -> Result<(), StoreError> {
        let mut ids: Vec<i64> = rows.iter().filter_map(|c| c.ticket_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool().acquire().await?;
        let found =
            super::tickets::fetch_in(&mut conn, self.backend(), &ids, ticket_numbers_sql).await?;
        let mut numbers = std::collections::HashMap::with_capacity(found.len());
        for r in &found {
            numbers.insert(
                r.try_get::<i64, _>("id")?,
                r.try_get::<String, _>("number")?,
            );
        }
        for c in rows.iter_mut() {
            c.ticket_number = c.ticket_id.and_then(|t| numbers.get(&t).cloned());
        }
        Ok(())
    }

    /// The texts of claimed notices from `announcement_bodies`: a claim of thousands of
    /// notices reads the one or two texts they share.
    async fn fill_bodies(&self, rows: &mut [Claimed]) -> Result<(), StoreError> {
        let mut ids: Vec<i64> = rows.iter().filter_map(|c| c.body_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut bodies = std::collections::HashMap::new();
        for id in ids {
            let body: (String, Option<String>, Option<String>) = sqlx::query_as(
                "SELECT body_text, body_html, ical FROM announcement_bodies WHERE id = $1",
            )
            .bind(id)
            .fetch_one(self.pool())
            .await?;
            bodies.insert(id, body);
        }
        for c in rows.iter_mut() {
            if let Some((text, html, ical)) = c.body_id.and_then(|id| bodies.get(&id)) {
                c.body_text.clone_from(text);
                c.body_html.clone_from(html);
                c.ical.clone_from(ical);
            }
        }
        Ok(())
    }

    /// The names of the lists whose members may unsubscribe (`lists.unsubscribe`), read
    /// when notices are sent: a list switched off after its announcement was written sends
    /// no `List-Unsubscribe` from then on.
    pub async fn lists_offering_unsubscribe(
        &self,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM lists WHERE unsubscribe = 1")
            .fetch_all(self.pool())
            .await?;
        Ok(names.into_iter().collect())
    }

    /// How the claim of `kind` is executed (EXPLAIN QUERY PLAN / EXPLAIN), for the test that
    /// it reads a partial index and sorts nothing.
    pub async fn explain_claim(&self, kind: ClaimKind) -> Result<String, StoreError> {
        let sql = claim_sql(self.backend(), kind);
        let (prefix, column) = match self.backend() {
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
            Backend::Postgres => ("EXPLAIN ", 0),
        };
        // Only a constant statement of this module is formatted in.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{prefix}{sql}")))
            .persistent(false)
            .bind(0i64)
            .bind(0i64)
            .bind(1i64)
            .bind("explain")
            .fetch_all(self.pool())
            .await?;
        let mut plan = String::new();
        for r in rows {
            let line: String = r.try_get(column)?;
            plan.push_str(&line);
            plan.push('\n');
        }
        Ok(plan)
    }

    /// Releases the claims on unsent rows of holders that `gone` says are dead (a killed
    /// `outbox send` or daemon of this host), so that `outbox send` need not wait for them to
    /// run out; leases and claims of unknown holders stay (the daemon's start handles those).
    /// How many rows came free.
    pub async fn release_dead_claims(
        &self,
        gone: impl Fn(&str) -> bool,
    ) -> Result<u64, StoreError> {
        let claimers: Vec<String> = sqlx::query_scalar(concat!(
            "SELECT DISTINCT claimed_by FROM outbox WHERE id IN (",
            pending_outbox_ids!(),
            ") AND claimed_until IS NOT NULL AND claimed_by IS NOT NULL",
        ))
        .fetch_all(self.pool())
        .await?;
        let mut released = 0;
        for holder in claimers.iter().filter(|h| gone(h)) {
            let _gate = self.write_gate().await;
            released += sqlx::query(concat!(
                "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL WHERE id IN (",
                pending_outbox_ids!(),
                ") AND claimed_by = $1",
            ))
            .bind(holder)
            .execute(self.pool())
            .await?
            .rows_affected();
        }
        Ok(released)
    }

    /// Hands claimed rows back unsent, for the next round.
    pub async fn unclaim_outbox(&self, ids: &[i64], holder: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        for id in ids {
            sqlx::query(
                "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
                 WHERE id = $1 AND claimed_by = $2",
            )
            .bind(id)
            .bind(holder)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Records an attempt, releases the claim and clears the hand-over mark. On SQLite it
    /// waits at the write gate ahead of queued transactions (see [`Store::write_gate`]): until
    /// it is recorded, a crash leaves the mail to be sent again or held as uncertain.
    pub async fn record_attempt(&self, id: i64, a: &Attempt<'_>) -> Result<(), StoreError> {
        self.sender_writes(&[SenderWrite::Attempt {
            id,
            attempt: a.clone(),
        }])
        .await
    }

    /// Writes hand-over marks and attempts of many rows in one transaction, in their order
    /// ([`SenderWriter::write`] on a connection of the pool's).
    pub async fn sender_writes(&self, writes: &[SenderWrite<'_>]) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        let mut conn = self.pool().acquire().await?;
        write_in_one(self.backend(), &mut conn, writes).await
    }

    /// A writer for the sender's marks and results on a connection of its own.
    pub fn sender_writer(&self) -> SenderWriter {
        SenderWriter {
            store: self.clone(),
            conn: None,
        }
    }

    /// Mails held as [`OutboxState::Uncertain`], waiting for a person.
    pub async fn outbox_uncertain(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'uncertain'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// The instant the next row falls due (or its claim by another sender runs out).
    pub async fn next_outbox_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(NEXT_DUE).fetch_one(self.pool()).await?)
    }

    /// Rows still to be sent.
    pub async fn outbox_pending(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(PENDING).fetch_one(self.pool()).await?)
    }

    /// Outbox rows by state and ticket (each filter optional), oldest first.
    pub async fn outbox_rows(
        &self,
        state: Option<OutboxState>,
        ticket_id: Option<i64>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.id, t.number AS ticket, o.kind, o.recipient, o.subject, o.state, o.attempts, \
             o.next_attempt_at, o.last_error, o.message_id FROM outbox o \
             LEFT JOIN tickets t ON t.id = o.ticket_id \
             WHERE ($1 IS NULL OR o.state = $1) AND ($2 IS NULL OR o.ticket_id = $2) ORDER BY o.id",
        )
        .bind(state.map(OutboxState::as_str))
        .bind(ticket_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Puts a failed, held-back or uncertain row back in line at `now`; the state it had when
    /// it could not (`None`: no such row).
    pub async fn retry_outbox(
        &self,
        id: i64,
        now: i64,
    ) -> Result<Result<(), Option<String>>, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'scheduled', next_attempt_at = $1, claimed_until = NULL, \
             claimed_by = NULL, handed_at = NULL WHERE id = $2 \
             AND state IN ('temporary_failure', 'permanent_failure', 'suppressed', 'uncertain')",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Ok(()));
        }
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(Err(state))
    }
}

/// The sender's group commit: its hand-over marks and results, as many as have come in, in one
/// transaction on a connection it keeps for the pass (taken at its first write). Each mail's
/// mark is a commit on the sending path, so what a commit costs matters: on a connection of
/// its own SQLite's page cache stays valid from one commit to the next (a write by another
/// connection empties it, and with 32 KiB pages every page read again costs), and the
/// statements stay prepared.
pub struct SenderWriter {
    store: Store,
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl SenderWriter {
    /// Writes `writes` in their order in one transaction. On SQLite it waits at the write gate
    /// ahead of queued transactions (see [`Store::write_gate`]). After a failure the connection
    /// is given up; the next write takes another.
    pub async fn write(&mut self, writes: &[SenderWrite<'_>]) -> Result<(), StoreError> {
        let _gate = self.store.write_gate().await;
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.store.pool().acquire().await?),
        };
        let written = write_in_one(self.store.backend(), conn, writes).await;
        if written.is_err() {
            self.conn = None;
        }
        written
    }
}

/// `writes` in one transaction; a single one as a statement of its own (autocommit). A batch
/// whose rows are all different — every batch of the sender, which marks a row only after its
/// last write is committed — is one statement with the whole batch bound as a JSON array
/// ([`batch_sql`]): one round trip to SQLite's worker thread, and a statement prepared once
/// for every batch size instead of a script of statements parsed anew for each batch.
async fn write_in_one(
    backend: Backend,
    conn: &mut AnyConnection,
    writes: &[SenderWrite<'_>],
) -> Result<(), StoreError> {
    if let [only] = writes {
        return write_one(conn, only).await;
    }
    if let Some(batch) = batch_json(writes) {
        sqlx::query(batch_sql(backend))
            .bind(batch)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(conn).await?;
    for w in writes {
        write_one(&mut tx, w).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The batch as the JSON array [`batch_sql`] reads: an object per write, `state` null for a
/// mark. `None` when a row comes twice: one statement would apply only one of its writes.
fn batch_json(writes: &[SenderWrite<'_>]) -> Option<String> {
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    let mut rows = Vec::with_capacity(writes.len());
    for w in writes {
        let row = match w {
            SenderWrite::Handed { id, at } => serde_json::json!({ "id": id, "at": at }),
            SenderWrite::Attempt { id, attempt: a } => serde_json::json!({
                "id": id,
                "state": a.state.as_str(),
                "attempts": a.attempts,
                "error": a.error,
                "next_at": a.next_attempt_at,
                "at": a.at,
            }),
        };
        let (SenderWrite::Handed { id, .. } | SenderWrite::Attempt { id, .. }) = w;
        if !seen.insert(*id) {
            return None;
        }
        rows.push(row);
    }
    Some(serde_json::Value::Array(rows).to_string())
}

/// What [`batch_sql`] sets, the same on both databases: a mark (no `state`) sets `handed_at`
/// and nothing else, a result is [`RECORD_ATTEMPT`].
macro_rules! batch_set {
    () => {
        concat!(
            "UPDATE outbox SET ",
            "handed_at = CASE WHEN w.state IS NULL THEN w.at END, ",
            "state = coalesce(w.state, outbox.state), ",
            "attempts = coalesce(w.attempts, outbox.attempts), ",
            "last_error = CASE WHEN w.state IS NULL THEN outbox.last_error ELSE w.error END, ",
            "next_attempt_at = coalesce(w.next_at, outbox.next_attempt_at), ",
            "claimed_until = CASE WHEN w.state IS NULL THEN outbox.claimed_until END, ",
            "claimed_by = CASE WHEN w.state IS NULL THEN outbox.claimed_by END, ",
            "sent_at = CASE WHEN w.state = 'sent' THEN w.at ELSE outbox.sent_at END ",
        )
    };
}

/// The marks and results of a batch in one `UPDATE … FROM` over the bound JSON array.
pub(super) fn batch_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => concat!(
            batch_set!(),
            "FROM (SELECT value ->> 'id' AS id, value ->> 'state' AS state, ",
            "value ->> 'attempts' AS attempts, value ->> 'error' AS error, ",
            "value ->> 'next_at' AS next_at, value ->> 'at' AS at FROM json_each($1)) AS w ",
            "WHERE outbox.id = w.id",
        ),
        Backend::Postgres => concat!(
            batch_set!(),
            "FROM jsonb_to_recordset($1::jsonb) AS w(id bigint, state text, attempts bigint, ",
            "error text, next_at bigint, at bigint) ",
            "WHERE outbox.id = w.id",
        ),
    }
}

async fn write_one(conn: &mut AnyConnection, w: &SenderWrite<'_>) -> Result<(), StoreError> {
    match w {
        SenderWrite::Handed { id, at } => {
            sqlx::query(MARK_HANDED)
                .bind(at)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        SenderWrite::Attempt { id, attempt: a } => {
            sqlx::query(RECORD_ATTEMPT)
                .bind(a.state.as_str())
                .bind(a.attempts)
                .bind(a.error)
                .bind(a.next_attempt_at)
                .bind(a.at)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// An outbox row as `outbox list` and `tickets show` present it.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket: Option<String>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub message_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_bound_as_json_and_a_row_twice_is_no_batch() {
        let sent = Attempt {
            state: OutboxState::Sent,
            attempts: 1,
            error: None,
            next_attempt_at: 5,
            at: 6,
        };
        let failed = Attempt {
            error: Some("'); DROP TABLE outbox; --"),
            state: OutboxState::TemporaryFailure,
            ..sent.clone()
        };
        let batch = [
            SenderWrite::Handed { id: 7, at: 3 },
            SenderWrite::Attempt {
                id: 8,
                attempt: sent.clone(),
            },
            SenderWrite::Attempt {
                id: 9,
                attempt: failed,
            },
        ];
        let json: serde_json::Value =
            serde_json::from_str(&batch_json(&batch).expect("three rows")).expect("JSON");
        assert_eq!(json[0], serde_json::json!({"id": 7, "at": 3}));
        assert_eq!(json[1]["state"], "sent");
        assert_eq!(json[1]["next_at"], 5);
        assert_eq!(json[2]["error"], "'); DROP TABLE outbox; --");
        let twice = [
            SenderWrite::Handed { id: 7, at: 3 },
            SenderWrite::Attempt {
                id: 7,
                attempt: sent,
            },
        ];
        assert!(batch_json(&twice).is_none());
    }
}
