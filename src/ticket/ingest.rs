//! Filing inbound mail: one transaction per batch of messages stores the raw bytes, opens or
//! updates the tickets and writes every outgoing mail the decisions cause. The caller removes a
//! message from its mailbox only after [`Ingestor::ingest_batch`] returned, i.e. after the
//! commit; a message filed again — same source, or same Message-ID and bytes — changes nothing.
//!
//! Per-statement latency, not the database's work, dominates filing mail, so a batch goes
//! through phases that cost a handful of statements per batch rather than several per message:
//!
//! 1. parse and classify every message (CPU only, before the transaction opens);
//! 2. read what the decisions depend on, one query per kind for the whole batch
//!    ([`lookup`](super::lookup)): messages filed before, tickets named by tag or referenced by
//!    Message-ID and their participants, recent automatic replies per recipient;
//! 3. decide every message in order, in memory ([`Planner`]): a message sees what the messages
//!    before it in the same batch did — its earlier copy, the ticket it replies to, a reopened
//!    state, a participant, an automatic reply the loop brake counts;
//! 4. reserve row ids and ticket numbers, one statement each;
//! 5. render the outgoing mail and write every row with multi-row INSERTs
//!    ([`WriteBuffer`]), update the stored tickets that changed, and commit.
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::alerts::{self, Effect, Key, TicketRef};
use super::staff_reply::{self, Refusal};
use super::{State, reserve_numbers};
use crate::classify::{self, Action, AlertState, Decision, FiledAs, FoundBy, LinkedBecause};
use crate::config::Config;
use crate::message::InboundMessage;
use crate::notify;
use crate::outbox::{self, Kind, NewMail};
use crate::store::alerts::AlertRow;
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::raw::{NewRaw, QuarantineEntry, RawOutcome};
use crate::store::sla::AnnouncedWindow;
use crate::store::tickets::{self, Filed, NewArticle, NewTicket, TicketRow, Touch};
use crate::store::{Backend, Store, StoreError, WriteTx, reserve_ids};

/// Where a raw message came from; unique per message in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey(String);

impl SourceKey {
    pub fn imap(mailbox: &str, uidvalidity: u32, uid: u32) -> Self {
        SourceKey(format!("imap:{mailbox}/{uidvalidity}/{uid}"))
    }
    pub fn maildir(dir: &str, unique_name: &str) -> Self {
        SourceKey(format!("maildir:{dir}/{unique_name}"))
    }
    pub fn file(path: &str) -> Self {
        SourceKey(format!("file:{path}"))
    }
    /// A key as stored in the database.
    pub fn from_stored(key: &str) -> Self {
        SourceKey(key.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What filing one message did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    NewTicket {
        number: String,
        /// The ticket a foreign reference or an expired follow-up pointed at.
        linked_to: Option<String>,
    },
    FollowUp {
        number: String,
        reopened: bool,
    },
    /// Machine mail about a ticket, kept as an internal note.
    Note {
        number: String,
    },
    Ignored {
        reason: String,
    },
    /// Filed before; nothing changed.
    Duplicate {
        previous: RawOutcome,
        number: Option<String>,
    },
    Quarantined {
        reason: String,
    },
    /// A staff answer relayed to the requester.
    StaffAnswer {
        number: String,
    },
    /// A mail to a reply address, or a staff answer without one, that changed nothing.
    Refused {
        reason: String,
        /// The ticket it named, when its token proved it.
        number: Option<String>,
    },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::NewTicket { .. } => "new_ticket",
            Outcome::FollowUp { .. } => "follow_up",
            Outcome::Note { .. } => "note",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Quarantined { .. } => "quarantined",
            Outcome::StaffAnswer { .. } => "staff_answer",
            Outcome::Refused { .. } => "refused",
        }
    }

    /// What the raw message's row records (a duplicate writes none; it counts as ignored).
    pub fn raw(&self) -> RawOutcome {
        match self {
            Outcome::NewTicket { .. } => RawOutcome::NewTicket,
            Outcome::FollowUp { .. } => RawOutcome::FollowUp,
            Outcome::Note { .. } => RawOutcome::Note,
            Outcome::Ignored { .. } | Outcome::Duplicate { .. } => RawOutcome::Ignored,
            Outcome::Quarantined { .. } => RawOutcome::Quarantined,
            Outcome::StaffAnswer { .. } => RawOutcome::StaffAnswer,
            Outcome::Refused { .. } => RawOutcome::Refused,
        }
    }

    pub fn ticket(&self) -> Option<&str> {
        match self {
            Outcome::NewTicket { number, .. }
            | Outcome::FollowUp { number, .. }
            | Outcome::Note { number }
            | Outcome::StaffAnswer { number } => Some(number),
            Outcome::Duplicate { number, .. } => number.as_deref(),
            _ => None,
        }
    }
}

/// One message to file.
pub struct Incoming<'a> {
    pub raw: &'a [u8],
    pub source: SourceKey,
}

/// Files messages into the store under one configuration.
pub struct Ingestor<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    /// The instant "now" for this ingestor; tests set it, the daemon leaves it `None`.
    pub clock: Option<Timestamp>,
}

/// A message parsed and classified (phase 1).
struct Prepared<'a> {
    raw: &'a [u8],
    source: SourceKey,
    hash: String,
    message_id: Option<String>,
    /// The same mail from another source: see [`dedup_key`].
    dedup_key: String,
    /// The Date header, Unix seconds.
    date: Option<i64>,
    parsed: Parsed,
    /// It concerns a notice: a bounce or an unsubscribe mail ([`super::notices`]).
    notice: Option<super::notices::NoticeMail>,
}

/// Messages parsed and classified (phase 1), ready for [`Ingestor::ingest_prepared`].
/// Preparing needs no database: a caller can prepare the next batch — on a blocking thread,
/// it is CPU work — while the current one is being filed, and still acknowledge each message
/// only after its own batch committed.
pub struct PreparedBatch<'a> {
    items: Vec<Prepared<'a>>,
}

impl<'a> PreparedBatch<'a> {
    pub fn new(config: &Config, items: &[Incoming<'a>]) -> PreparedBatch<'a> {
        PreparedBatch {
            items: items.iter().map(|it| Self::prepare(config, it)).collect(),
        }
    }

    /// [`PreparedBatch::new`] on `threads` threads at once (parsing and classifying is the
    /// CPU part of filing, and messages are independent of each other), each message within
    /// `ingest.parse_budget_seconds`: one over it is quarantined and the batch goes on (see
    /// [`budget`](super::budget)). The decisions are those of [`PreparedBatch::new`].
    pub fn new_parallel(
        config: &Arc<Config>,
        items: &[Incoming<'a>],
        threads: usize,
    ) -> PreparedBatch<'a> {
        let budget = config.settings.ingest.parse_budget;
        let work = {
            let config = Arc::clone(config);
            Arc::new(move |raw: &[u8]| parse_and_classify(&config, raw))
        };
        // The workers own their copy: a worker that runs over its budget outlives this call.
        let copies = items.iter().map(|it| it.raw.to_vec()).collect();
        let results = super::budget::run_all(copies, threads, budget, work);
        let items = items
            .iter()
            .zip(results)
            .map(|(it, result)| {
                let parsed = result.unwrap_or_else(|over| {
                    Err(format!(
                        "reading the message took longer than its time budget of {} s \
                         (ingest.parse_budget_seconds); it is kept for a later version",
                        over.budget.as_secs_f32()
                    ))
                });
                Self::prepared(config, it, parsed)
            })
            .collect();
        PreparedBatch { items }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Phase 1: hash, size limit, parse, classify.
    /// Files every message of the batch as a ticket in `queue` with class `severity`, whatever
    /// the rules decided (`tickets create`: staff chose them on the telephone or at the
    /// counter). The rest — acknowledgement, staff copy, deadline — follows from the decision
    /// as for any mail.
    pub fn force(&mut self, queue: &str, severity: u8) {
        for p in &mut self.items {
            if let Ok((_, d)) = &mut p.parsed {
                d.action = Action::Ticket;
                d.queue = queue.to_string();
                d.severity = severity;
                d.reason = format!("queue {queue} and class {severity} given by staff");
            }
        }
    }

    fn prepare(config: &Config, it: &Incoming<'a>) -> Prepared<'a> {
        Self::prepared(config, it, parse_and_classify(config, it.raw))
    }

    fn prepared(config: &Config, it: &Incoming<'a>, mut parsed: Parsed) -> Prepared<'a> {
        let notice = match &mut parsed {
            Ok((m, d)) => super::notices::examine(config, m, d, it.raw),
            Err(_) => None,
        };
        let hash = hex(&Sha256::digest(it.raw));
        let message_id = parsed.as_ref().ok().and_then(|(m, _)| m.message_id.clone());
        let date = parsed.as_ref().ok().and_then(|(m, _)| m.date);
        let dedup_key = dedup_key(date, message_id.as_deref(), &hash);
        Prepared {
            raw: it.raw,
            source: it.source.clone(),
            hash,
            message_id,
            dedup_key,
            date,
            parsed,
            notice,
        }
    }
}

/// The key that finds the same mail come again from another source: the UTC day of its Date
/// header (`-` without one), its Message-ID (or nothing) and the SHA-256 of its bytes, all
/// three given by the bytes. The day comes first so that the keys of the mail arriving now
/// land together at the end of the store's unique index, where a key that began with the
/// Message-ID went to a random place in it: on a store of millions of messages that was a leaf
/// page read and written back per message (issue 20).
pub fn dedup_key(date: Option<i64>, message_id: Option<&str>, hash: &str) -> String {
    let day = date
        .and_then(|s| Timestamp::from_second(s).ok())
        .map(|t| t.strftime("%Y%m%d").to_string())
        .unwrap_or_else(|| "-".into());
    format!("{day} {} {hash}", message_id.unwrap_or(""))
}

/// The key the same mail was filed under before dedup keys began with the day: the rest of
/// [`dedup_key`] after it.
fn legacy_dedup_key(key: &str) -> &str {
    key.split_once(' ').map_or(key, |(_, rest)| rest)
}

/// A message decoded and classified, or why it could not be.
type Parsed = Result<(InboundMessage, Decision), String>;

/// The size limit, the parse and the classification of one message.
fn parse_and_classify(config: &Config, raw: &[u8]) -> Parsed {
    let limit = config.settings.ingest.max_message_size;
    if raw.len() as u64 > limit {
        return Err(format!(
            "message of {} bytes exceeds the limit of {limit} bytes",
            raw.len()
        ));
    }
    InboundMessage::parse(raw)
        .map(|m| {
            let d = classify::classify(config, &m);
            (m, d)
        })
        .map_err(|e| e.to_string())
}

impl<'a> Ingestor<'a> {
    pub fn new(store: &'a Store, config: &'a Config) -> Self {
        Ingestor {
            store,
            config,
            clock: None,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.unwrap_or_else(Timestamp::now)
    }

    /// Records a message that goes to quarantine without being filed: one over the size limit
    /// (`bytes` is its header, `size` the whole message's) or one that failed on its own.
    pub async fn quarantine(
        &self,
        bytes: &[u8],
        size: u64,
        source: &SourceKey,
        reason: &str,
    ) -> Result<(), StoreError> {
        let hash = hex(&Sha256::digest(bytes));
        let dedup = format!("quarantined:{source}");
        let recorded = self
            .store
            .record_quarantined(&QuarantineEntry {
                source_key: source.as_str(),
                dedup_key: &dedup,
                content_hash: &hash,
                bytes,
                size: i64::try_from(size).unwrap_or(i64::MAX),
                reason: &reason.replace('\0', ""),
                at: self.now().as_microsecond(),
            })
            .await?;
        tracing::warn!(%source, size, reason, recorded, "quarantined");
        Ok(())
    }

    /// Files one message in its own transaction.
    pub async fn ingest(&self, raw: &[u8], source: SourceKey) -> Result<Outcome, StoreError> {
        let mut out = self.ingest_batch(&[Incoming { raw, source }]).await?;
        Ok(out.pop().unwrap_or(Outcome::Ignored {
            reason: "nothing filed".into(),
        }))
    }

    /// Files several messages in one transaction: all or none are committed, and every
    /// message sees the effects of the ones before it. Parsing and classification happen
    /// before the transaction opens, so it is held only for the reads and writes. The batch
    /// shares one instant: every row it writes carries the same time.
    pub async fn ingest_batch(&self, items: &[Incoming<'_>]) -> Result<Vec<Outcome>, StoreError> {
        self.ingest_prepared(PreparedBatch::new(self.config, items))
            .await
    }

    /// [`Ingestor::ingest_batch`] for a batch prepared beforehand, e.g. on a blocking thread
    /// while the previous batch was being filed.
    pub async fn ingest_prepared(
        &self,
        batch: PreparedBatch<'_>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let outcomes = self.file_in(&mut tx, batch).await?;
        tx.commit().await?;
        // After the commit, in transactions of its own: the batch is filed whatever this does,
        // and what is not moved now is moved after a later batch.
        match tickets::move_recent_message_ids(self.store, tickets::TierLimits::STORE).await {
            Ok(moved) if moved.to_big > 0 => {
                tracing::info!(
                    keys = moved.to_big,
                    "Message-IDs moved into the store's big index"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "moving new Message-IDs into the store's big index failed; retried after the next batch");
            }
        }
        self.store.checkpoint_in_background();
        self.store.analyze_as_grown(outcomes.len() as u64);
        Ok(outcomes)
    }

    /// Files a prepared batch in the caller's write transaction, which commits it (or rolls it
    /// back with whatever else it did).
    pub async fn file_in(
        &self,
        tx: &mut WriteTx,
        batch: PreparedBatch<'_>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let prepared = batch.items;
        let now = self.now();
        let backend = self.store.backend();
        let tx: &mut AnyConnection = tx;
        let windows = super::clock::needs_announced_windows(&self.config.settings);
        let known = Known::read(tx, backend, self.config, &prepared, now, windows).await?;
        let mut planner = Planner::new(self.config, now.as_microsecond(), &known);
        let steps: Vec<Step<'_>> = prepared
            .iter()
            .enumerate()
            .map(|(i, p)| planner.plan(i, p))
            .collect();
        let (outcomes, ids) = self
            .write(tx, backend, &prepared, &steps, &planner.slots, &known, now)
            .await?;
        // Monitoring alerts: what the batch did to each key, then the occurrences of
        // incidents for problem management (new tickets of class 1-3 and the alerts' own).
        let refs: Vec<TicketRef> = planner
            .slots
            .iter()
            .zip(&ids)
            .map(|(slot, (id, number))| TicketRef {
                id: *id,
                number: number.clone(),
                subject: slot.subject.clone(),
                queue: slot.queue.clone(),
            })
            .collect();
        let mut occurrences = if planner.keys.is_empty() {
            Vec::new()
        } else {
            alerts::apply(tx, self.config, &mut planner.keys, &refs, now).await?
        };
        for step in &steps {
            if let Step::File(Filing::Ticket {
                d,
                action: TicketAction::New { slot, .. },
                ..
            }) = step
                && d.severity <= 3
                && let Some(fingerprint) =
                    super::problems::subject_fingerprint(&d.queue, &d.normalized_subject)
            {
                occurrences.push(alerts::Occurrence {
                    ticket_id: refs[*slot].id,
                    fingerprint,
                    queue: d.queue.clone(),
                    platform: d.platform.clone(),
                    title: None,
                });
            }
        }
        super::problems::record(tx, self.config, &occurrences, now).await?;
        // Reports about a platform join its open incident in this transaction.
        let reports: Vec<(&str, &str)> = (prepared.iter().zip(&outcomes))
            .filter_map(|(p, o)| match (o, &p.parsed) {
                (Outcome::NewTicket { number, .. } | Outcome::FollowUp { number, .. }, Ok(m)) => {
                    Some((number.as_str(), m.1.platform.as_deref()?))
                }
                _ => None,
            })
            .collect();
        super::incident_link::on_filed(tx, self.config, &reports, now).await?;
        let notices: Vec<super::notices::Filed<'_>> = prepared
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, Outcome::Ignored { .. } | Outcome::Note { .. }))
            .filter_map(|(p, _)| {
                p.notice.as_ref().map(|mail| super::notices::Filed {
                    source: p.source.as_str(),
                    mail,
                })
            })
            .collect();
        super::notices::record(tx, self.config, &notices, now).await?;
        for (p, o) in prepared.iter().zip(&outcomes) {
            tracing::info!(
                source = %p.source,
                message_id = p.message_id.as_deref().unwrap_or(""),
                outcome = o.label(),
                ticket = o.ticket().unwrap_or(""),
                "filed"
            );
        }
        Ok(outcomes)
    }

    /// Phases 4 and 5: reserves ids and ticket numbers, turns every step into rows, writes
    /// them and updates the stored tickets that follow-ups changed.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        prepared: &[Prepared<'_>],
        steps: &[Step<'_>],
        slots: &[Slot],
        known: &Known,
        now: Timestamp,
    ) -> Result<(Vec<Outcome>, Vec<(i64, String)>), StoreError> {
        let raw_rows = steps.iter().filter(|s| s.writes_rows()).count();
        let new_tickets = slots.iter().filter(|s| s.stored.is_none()).count();
        let articles: usize = steps.iter().map(Step::max_articles).sum();
        let mut ids = reserve_ids(
            conn,
            backend,
            &[
                ("raw_messages", raw_rows),
                ("tickets", new_tickets),
                ("articles", articles),
            ],
        )
        .await?
        .into_iter();
        let (raw_ids, ticket_ids, article_ids) = (
            ids.next().unwrap_or_default(),
            ids.next().unwrap_or_default(),
            ids.next().unwrap_or_default(),
        );
        // Last: on PostgreSQL the counter row stays locked until the commit.
        let numbers =
            reserve_numbers(conn, self.config.settings.instance_id, now, new_tickets).await?;

        let mut new = ticket_ids.into_iter().zip(numbers);
        let mut tickets = Vec::with_capacity(slots.len());
        for slot in slots {
            tickets.push(match &slot.stored {
                Some(stored) => stored.clone(),
                None => new.next().ok_or(StoreError::IdsExhausted("tickets"))?,
            });
        }
        let mut w = Writer {
            config: self.config,
            tz: crate::time::berlin()?,
            now,
            at: now.as_microsecond(),
            buf: WriteBuffer::default(),
            raw_ids: raw_ids.into_iter(),
            article_ids: article_ids.into_iter(),
            tickets,
            auto_replies: &known.auto_replies,
            windows: &known.windows,
            follow_ups: Vec::new(),
            staff_answers: Vec::new(),
            reopenings: Vec::new(),
            staff_commands: Vec::new(),
            relay: &known.relay,
        };
        // Rows of the first messages are written while the next ones are rendered: the
        // statements run on SQLite's worker thread or in the PostgreSQL server meanwhile.
        // Both halves run in this task; the renderer yields after each chunk, so the writer
        // can send the next statement.
        let (rows_tx, mut rows_rx) = tokio::sync::mpsc::unbounded_channel();
        let render = async {
            let mut outcomes: Vec<Outcome> = Vec::with_capacity(steps.len());
            for (p, step) in prepared.iter().zip(steps) {
                let outcome = w.file(p, step, slots, &outcomes)?;
                outcomes.push(outcome);
                if outcomes.len().is_multiple_of(WRITE_CHUNK) {
                    // The writer holds the receiver until it fails, and then this fails too.
                    let _ = rows_tx.send(w.buf.take_rows());
                    tokio::task::yield_now().await;
                }
            }
            let _ = rows_tx.send(w.buf.take_rows());
            drop(rows_tx);
            Ok::<_, StoreError>(outcomes)
        };
        let write = async {
            while let Some(rows) = rows_rx.recv().await {
                rows.write(&mut *conn, backend).await?;
            }
            Ok::<_, StoreError>(())
        };
        let (outcomes, ()) = tokio::try_join!(render, write)?;

        // Follow-ups on stored tickets: reopened ones (state, closed_at) and the others.
        let at = now.as_microsecond();
        let reopened: Vec<i64> = slots
            .iter()
            .zip(&w.tickets)
            .filter(|(s, _)| s.stored.is_some() && s.reopened)
            .map(|(_, (id, _))| *id)
            .collect();
        let touched: Vec<i64> = slots
            .iter()
            .zip(&w.tickets)
            .filter(|(s, _)| s.stored.is_some() && s.followed_up && !s.reopened)
            .map(|(_, (id, _))| *id)
            .collect();
        tickets::touch_tickets(conn, backend, Touch::Reopen, at, &reopened).await?;
        tickets::touch_tickets(conn, backend, Touch::Update, at, &touched).await?;
        // After the rows: a ticket opened earlier in this batch has its clock by now.
        let settings = &self.config.settings;
        for (id, queue, sender) in &w.follow_ups {
            super::clock::on_inbound_mail(conn, settings, *id, queue, sender, now).await?;
        }
        // The relay is the reaction: its time is when the answer was filed and queued. It
        // takes a new ticket; a requester's mail that reopened one tells its observers.
        let mut notices = WriteBuffer::default();
        for (id, by) in &w.staff_answers {
            super::status_notice::on_relayed(conn, &mut notices, self.config, *id, by, now).await?;
        }
        for (id, from) in &w.reopenings {
            super::status_notice::on_reopened(conn, &mut notices, self.config, *id, from, now)
                .await?;
        }
        notices.flush(conn, backend).await?;
        apply_staff_commands(conn, backend, self.config, &w.staff_commands, now).await?;
        Ok((outcomes, w.tickets))
    }
}

/// The commands of one staff answer, applied after the batch's rows are written.
struct StaffCommands {
    ticket_id: i64,
    number: String,
    raw_id: i64,
    message_id: Option<String>,
    by: String,
    commands: Vec<staff_reply::Command>,
    text: String,
}

/// Applies staff answers' commands with [`super::ops::apply_change`], the operation of
/// `tickets set`: each change audited with the staff member as actor and the answer's raw
/// message, and logged. The commands were checked when the answer was planned; one that no
/// longer fits (an earlier answer of the same batch moved the ticket on) is logged and
/// audited as not applied, and the batch goes on.
async fn apply_staff_commands(
    conn: &mut AnyConnection,
    backend: Backend,
    config: &Config,
    all: &[StaffCommands],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut buf = WriteBuffer::default();
    for c in all {
        let change = staff_reply::to_change(&c.commands, &c.text, &c.by);
        let message_id = c.message_id.as_deref().unwrap_or("");
        match super::ops::apply_change(
            conn,
            &mut buf,
            config,
            c.ticket_id,
            &change,
            now,
            Some(c.raw_id),
        )
        .await
        {
            Ok(applied) => {
                for a in &applied {
                    tracing::info!(
                        ticket = c.number,
                        message_id,
                        by = c.by,
                        event = a.event(),
                        "staff command applied: {a}"
                    );
                }
                if applied.is_empty() {
                    tracing::info!(
                        ticket = c.number,
                        message_id,
                        by = c.by,
                        "staff commands changed nothing: the ticket already was so"
                    );
                }
            }
            Err(super::ops::OpsError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(
                    ticket = c.number,
                    message_id,
                    by = c.by,
                    "staff commands not applied: {e}"
                );
                audit(
                    &mut buf,
                    now.as_microsecond(),
                    Some(c.ticket_id),
                    Some(c.raw_id),
                    &c.by,
                    "staff_commands_not_applied",
                    &json!({ "reason": e.to_string(), "message_id": c.message_id }),
                );
            }
        }
    }
    buf.flush(conn, backend).await?;
    Ok(())
}

/// The command lines at the top of an answer, for a refusal that names them.
fn commands_line(answer: &str, commands: &[staff_reply::Command]) -> String {
    answer
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .take(commands.len().max(1))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Messages rendered into rows before they are handed to the writer.
const WRITE_CHUNK: usize = 64;

/// What the store knows that the batch's decisions depend on (phase 2).
struct Known {
    /// Messages filed before, by source key and by dedup key.
    by_source: HashMap<String, Filed>,
    by_dedup: HashMap<String, Filed>,
    /// Stored tickets the batch names by tag or refers to, by id; their participants.
    tickets: HashMap<i64, TicketRow>,
    participants: HashMap<i64, HashSet<String>>,
    /// Ticket ids by number, and by the Message-ID of their most recent article.
    by_number: HashMap<String, i64>,
    by_message_id: HashMap<String, i64>,
    /// Automatic replies of the last hour per recipient, for the loop brake.
    auto_replies: HashMap<String, i64>,
    /// Announced maintenance not yet over, for calendars on which it stops the clock.
    windows: Vec<AnnouncedWindow>,
    /// What relaying a staff answer needs of the tickets named by reply tokens.
    relay: HashMap<i64, crate::store::relay::RelayFacts>,
    /// The stored alert keys the batch's monitoring mail names.
    alerts: HashMap<String, AlertRow>,
}

impl Known {
    async fn read(
        conn: &mut AnyConnection,
        backend: Backend,
        config: &Config,
        prepared: &[Prepared<'_>],
        now: Timestamp,
        read_windows: bool,
    ) -> Result<Known, StoreError> {
        let sources: Vec<&str> = prepared.iter().map(|p| p.source.as_str()).collect();
        let legacy = tickets::legacy_dedup_dated_before(conn).await?;
        let may_be_legacy =
            |p: &Prepared<'_>| legacy.is_some_and(|before| p.date.is_none_or(|d| d < before));
        let dedups: Vec<&str> = prepared
            .iter()
            .map(|p| p.dedup_key.as_str())
            .chain(
                prepared
                    .iter()
                    .filter(|p| may_be_legacy(p))
                    .map(|p| legacy_dedup_key(&p.dedup_key)),
            )
            .collect();
        let (by_source, mut by_dedup) =
            tickets::filed_before(conn, backend, &sources, &dedups).await?;
        // Mail filed before the keys began with the day is found by its old key.
        for p in prepared {
            if may_be_legacy(p)
                && !by_dedup.contains_key(&p.dedup_key)
                && let Some(filed) = by_dedup.get(legacy_dedup_key(&p.dedup_key)).cloned()
            {
                by_dedup.insert(p.dedup_key.clone(), filed);
            }
        }

        // Only what messages filed for the first time need.
        let fresh: Vec<&(InboundMessage, Decision)> = prepared
            .iter()
            .filter(|p| {
                !by_source.contains_key(p.source.as_str()) && !by_dedup.contains_key(&p.dedup_key)
            })
            .filter_map(|p| p.parsed.as_ref().ok())
            .collect();
        let staff = staff_reply::Lookups::of(
            config,
            fresh
                .iter()
                .filter(|(_, d)| matches!(d.action, Action::Ticket))
                .map(|(m, _)| m),
        );
        let numbers = unique(
            fresh
                .iter()
                .filter_map(|(_, d)| d.ticket_ref.as_deref())
                .chain(staff.numbers()),
        );
        let references = unique(fresh.iter().flat_map(|(m, _)| thread_ids(m)));
        let recipients = unique(
            fresh
                .iter()
                .filter(|(_, d)| d.auto_reply.is_some())
                .filter_map(|(m, _)| requester_mailbox(m))
                .map(|m| m.address.as_str())
                .chain(staff.senders())
                .filter(|a| !a.is_empty()),
        );

        let mut tickets = HashMap::new();
        let mut by_number = HashMap::new();
        let mut by_message_id = HashMap::new();
        if !numbers.is_empty() {
            for t in tickets::tickets_by_number(conn, backend, &numbers).await? {
                by_number.insert(t.number.clone(), t.id);
                tickets.insert(t.id, t);
            }
        }
        if !references.is_empty() {
            for (message_id, t) in
                tickets::tickets_by_message_id(conn, backend, &references).await?
            {
                by_message_id.insert(message_id, t.id);
                tickets.insert(t.id, t);
            }
        }
        let ids: Vec<i64> = tickets.keys().copied().collect();
        let token_ids: Vec<i64> = staff
            .numbers()
            .filter_map(|n| by_number.get(n).copied())
            .collect();
        let relay = crate::store::relay::relay_facts(conn, backend, &token_ids).await?;
        let participants = if ids.is_empty() {
            HashMap::new()
        } else {
            tickets::participants(conn, backend, &ids).await?
        };
        let auto_replies = if recipients.is_empty() {
            HashMap::new()
        } else {
            outbox::recent_auto_replies(conn, backend, &recipients, now).await?
        };
        let keys = unique(
            fresh
                .iter()
                .filter(|(_, d)| d.action == Action::Ticket)
                .filter_map(|(_, d)| d.alert.as_ref())
                .map(|a| a.key.as_str()),
        );
        let alerts = crate::store::alerts::by_keys(conn, backend, &keys).await?;
        let windows = if read_windows && !fresh.is_empty() {
            crate::store::sla::announced_windows(conn, now.as_microsecond()).await?
        } else {
            Vec::new()
        };
        Ok(Known {
            by_source,
            by_dedup,
            tickets,
            participants,
            by_number,
            by_message_id,
            auto_replies,
            windows,
            relay,
            alerts,
        })
    }
}

/// A ticket as the batch sees it: stored, or opened by an earlier message of the batch.
struct Slot {
    /// Id and number of a stored ticket; a new one gets both in phase 4.
    stored: Option<(i64, String)>,
    queue: String,
    subject: String,
    state: String,
    closed_at: Option<i64>,
    participants: HashSet<String>,
    /// A follow-up was filed on it.
    followed_up: bool,
    /// A follow-up set it open again (from closed or pending).
    reopened: bool,
    /// The Betreff of a Nutzerkonto question.
    nk_betreff: Option<String>,
}

/// What phase 3 decided for one message; phase 5 turns it into rows.
enum Step<'b> {
    /// Filed before; nothing changes.
    Duplicate(&'b Filed),
    /// The same message as an earlier one of this batch.
    DuplicateOf(usize),
    /// Filed now: the raw message is stored with this outcome.
    File(Filing<'b>),
}

enum Filing<'b> {
    Quarantined(String),
    Ignored(String),
    /// A mail to a reply address, or a staff answer without one, that changes nothing.
    Refused {
        msg: &'b InboundMessage,
        why: Refusal,
        /// The command that refused a valid staff answer.
        command: Option<staff_reply::BadCommand>,
        /// The slot of the ticket it named, if that exists.
        slot: Option<usize>,
    },
    Ticket {
        msg: &'b InboundMessage,
        d: &'b Decision,
        action: TicketAction,
    },
}

enum TicketAction {
    /// Machine mail about a ticket, kept as an internal note.
    Note { slot: usize, by: FoundBy },
    FollowUp {
        slot: usize,
        by: FoundBy,
        reopened: bool,
        /// The state the follow-up set open.
        state_change: Option<String>,
    },
    New {
        slot: usize,
        /// The ticket the message referred to, and why it did not go there.
        linked: Option<(usize, LinkedBecause)>,
    },
    /// A monitoring alert: what it did to its key ([`alerts::step`]); `slot` is the key's
    /// ticket after it.
    Alert {
        slot: usize,
        step: alerts::Step,
        /// When it happened (the alert's own time).
        at: i64,
        /// The key's earlier ticket, when this one opened a new one after the reopen period.
        linked: Option<usize>,
    },
    /// A staff answer: its commands to apply, and the text after them (relayed, or the
    /// note after `#note`).
    StaffAnswer {
        slot: usize,
        commands: Vec<staff_reply::Command>,
        text: String,
    },
}

impl Step<'_> {
    fn writes_rows(&self) -> bool {
        matches!(self, Step::File(_))
    }

    /// At most this many articles: the inbound one and the outgoing mail.
    fn max_articles(&self) -> usize {
        match self {
            Step::File(Filing::Ticket { d, action, .. }) => match action {
                TicketAction::Note { .. } | TicketAction::StaffAnswer { .. } => 1,
                TicketAction::FollowUp { .. } => 2,
                TicketAction::New { .. } => 3 + d.forward_to.len(),
                TicketAction::Alert { step, .. } => match step.effect {
                    Effect::Open => 3 + d.forward_to.len(),
                    Effect::Reopen | Effect::Reproblem | Effect::Restore => 2,
                    Effect::Acknowledge | Effect::Info => 1,
                    Effect::Repeat => 0,
                },
            },
            _ => 0,
        }
    }
}

/// Phase 3: decides every message of the batch in order, in memory.
struct Planner<'b> {
    config: &'b Config,
    now: i64,
    known: &'b Known,
    slots: Vec<Slot>,
    slot_of_stored: HashMap<i64, usize>,
    /// Message-IDs of the articles this batch files, and their tickets.
    by_message_id: HashMap<&'b str, usize>,
    /// Source and dedup keys of the messages this batch files, by position in the batch.
    sources: HashMap<&'b str, usize>,
    dedups: HashMap<&'b str, usize>,
    /// The alert keys the batch's monitoring mail touched, and their positions there.
    keys: Vec<Key>,
    key_of: HashMap<String, usize>,
}

impl<'b> Planner<'b> {
    fn new(config: &'b Config, now: i64, known: &'b Known) -> Self {
        Planner {
            config,
            now,
            known,
            slots: Vec::new(),
            slot_of_stored: HashMap::new(),
            by_message_id: HashMap::new(),
            sources: HashMap::new(),
            dedups: HashMap::new(),
            keys: Vec::new(),
            key_of: HashMap::new(),
        }
    }

    fn plan(&mut self, index: usize, p: &'b Prepared<'_>) -> Step<'b> {
        let source = p.source.as_str();
        let known = self.known;
        if let Some(filed) = known
            .by_source
            .get(source)
            .or_else(|| known.by_dedup.get(&p.dedup_key))
        {
            return Step::Duplicate(filed);
        }
        if let Some(&earlier) = self
            .sources
            .get(source)
            .or_else(|| self.dedups.get(p.dedup_key.as_str()))
        {
            return Step::DuplicateOf(earlier);
        }
        self.sources.insert(source, index);
        self.dedups.insert(&p.dedup_key, index);
        Step::File(match &p.parsed {
            Err(reason) => Filing::Quarantined(reason.clone()),
            Ok((msg, d)) => self.decide(msg, d, p.raw),
        })
    }

    /// Threading and the ticket decision for a parsed message: the classifier's action, with
    /// the ticket the store has for it.
    fn decide(&mut self, msg: &'b InboundMessage, d: &'b Decision, raw: &[u8]) -> Filing<'b> {
        let action = match d.action {
            Action::Quarantine => return Filing::Quarantined(d.reason.clone()),
            Action::Ignore => return Filing::Ignored(d.reason.clone()),
            // Machine mail about a ticket (a bounce of our acknowledgement, an out-of-office
            // reply) is kept on the ticket, changes nothing and causes nothing; about a ticket
            // we do not have, there is nothing to attach it to.
            Action::Note => match self.find_ticket(msg, d) {
                Some((slot, by)) => {
                    self.add_article(slot, msg);
                    TicketAction::Note { slot, by }
                }
                None => return Filing::Ignored(d.describe(Some(FiledAs::NoTicket))),
            },
            Action::Ticket if d.alert.is_some() => match self.alert(msg, d) {
                Ok(action) => action,
                Err(reason) => return Filing::Ignored(reason),
            },
            Action::Ticket => {
                let found = self.find_ticket(msg, d);
                if let Some(filing) = self.staff_mail(msg, d, found.map(|(t, _)| t), raw) {
                    return filing;
                }
                match found {
                    Some((t, by)) => self.follow_up(msg, d, t, by),
                    None => self.open_ticket(msg, d, None),
                }
            }
        };
        Filing::Ticket { msg, d, action }
    }

    /// A monitoring alert: one incident per key ([`alerts`]). `Err` with the reason when it
    /// concerns no incident (a recovery of a key that has none).
    fn alert(&mut self, msg: &'b InboundMessage, d: &'b Decision) -> Result<TicketAction, String> {
        let Some(alert) = d.alert.as_ref() else {
            return Err("no alert".into());
        };
        let now = self.now;
        let at = alerts::alert_time(alert, now);
        let k = match self.key_of.get(&alert.key) {
            Some(&k) => k,
            None => match self.known.alerts.get(&alert.key) {
                Some(row) => {
                    let slot = self.alert_ticket_slot(row);
                    self.keys.push(Key::stored(row, slot));
                    self.key_of.insert(alert.key.clone(), self.keys.len() - 1);
                    self.keys.len() - 1
                }
                None if alert.state == AlertState::Problem => {
                    let TicketAction::New { slot, .. } = self.open_ticket(msg, d, None) else {
                        return Err("no ticket".into());
                    };
                    self.keys
                        .push(Key::first(alert, &d.queue, d.severity, slot, at, now));
                    self.key_of.insert(alert.key.clone(), self.keys.len() - 1);
                    return Ok(TicketAction::Alert {
                        slot,
                        step: alerts::Step {
                            effect: Effect::Open,
                            notify: true,
                        },
                        at,
                        linked: None,
                    });
                }
                None => {
                    return Err(format!(
                        "monitoring alert {} ({}): the key has no incident, nothing to {}",
                        alert.key,
                        alert.state.as_str(),
                        if alert.state == AlertState::Recovery {
                            "restore"
                        } else {
                            "note"
                        }
                    ));
                }
            },
        };
        let step = alerts::step(&mut self.keys[k], alert, at, now, &self.config.settings);
        let old = self.keys[k].ticket;
        let mut linked = None;
        let slot = match step.effect {
            Effect::Open => {
                let days = self.config.settings.ingest.reopen_days;
                let TicketAction::New { slot, .. } =
                    self.open_ticket(msg, d, Some((old, LinkedBecause::ClosedLongAgo { days })))
                else {
                    return Err("no ticket".into());
                };
                self.keys[k].reopened_as(slot, d.severity, at);
                linked = Some(old);
                slot
            }
            Effect::Repeat => old,
            _ => {
                self.add_article(old, msg);
                old
            }
        };
        Ok(TicketAction::Alert {
            slot,
            step,
            at,
            linked,
        })
    }

    /// The slot of a stored alert key's ticket.
    fn alert_ticket_slot(&mut self, row: &AlertRow) -> usize {
        if let Some(&slot) = self.slot_of_stored.get(&row.ticket_id) {
            return slot;
        }
        self.slots.push(Slot {
            stored: Some((row.ticket_id, row.number.clone())),
            queue: row.ticket_queue.clone(),
            subject: row.subject.clone(),
            state: row.ticket_state.clone(),
            closed_at: row.closed_at,
            participants: HashSet::new(),
            followed_up: false,
            reopened: false,
            nk_betreff: row.nk_betreff.clone(),
        });
        let slot = self.slots.len() - 1;
        self.slot_of_stored.insert(row.ticket_id, slot);
        slot
    }

    /// A staff answer (to a reply address, or from staff without one): relayed or refused,
    /// never a new ticket or a follow-up. `None` for other mail.
    fn staff_mail(
        &mut self,
        msg: &'b InboundMessage,
        d: &'b Decision,
        found: Option<usize>,
        raw: &[u8],
    ) -> Option<Filing<'b>> {
        let Some(token) = staff_reply::token(self.config, msg) else {
            let participant =
                found.is_some_and(|t| self.slots[t].participants.contains(requester_address(msg)));
            let refers = found.is_some() || d.ticket_ref.is_some();
            return staff_reply::refuse_without_token(self.config, msg, refers, participant)
                .then_some(Filing::Refused {
                    msg,
                    why: Refusal::NoToken,
                    command: None,
                    slot: found,
                });
        };
        let slot = self
            .known
            .by_number
            .get(&token.number)
            .copied()
            .and_then(|id| self.stored_slot(id));
        let queue = slot.map(|t| self.slots[t].queue.as_str());
        let now = Timestamp::from_microsecond(self.now).unwrap_or_else(|_| Timestamp::now());
        // The token names one ticket, the subject's tag or the thread another.
        let other = matches!((found, slot), (Some(f), Some(t)) if f != t);
        Some(
            match (
                staff_reply::judge(self.config, msg, &token, queue, other, now),
                slot,
            ) {
                (Ok(()), Some(slot)) => {
                    let answer = staff_reply::strip_quoted(&staff_reply::answer_text(raw, msg));
                    // Commands are checked against the configuration and the ticket's queue
                    // before anything is filed: one that cannot be carried out refuses the
                    // whole answer, so a half-applied mail never happens.
                    let checked = staff_reply::commands(&answer).and_then(|(commands, text)| {
                        let by = msg.from_address().unwrap_or("");
                        let change = staff_reply::to_change(&commands, &text, by);
                        let t = &self.slots[slot];
                        super::ops::validate(self.config, &change, &t.queue)
                            .and_then(|()| {
                                super::handover::check_contact(
                                    self.config,
                                    &change,
                                    &t.queue,
                                    t.nk_betreff.as_deref(),
                                )
                            })
                            .map_err(|why| {
                                let line = commands_line(&answer, &commands);
                                staff_reply::BadCommand { line, why }
                            })?;
                        Ok((commands, text))
                    });
                    match checked {
                        Ok((commands, text)) => {
                            self.add_article(slot, msg);
                            self.slots[slot].followed_up = true;
                            Filing::Ticket {
                                msg,
                                d,
                                action: TicketAction::StaffAnswer {
                                    slot,
                                    commands,
                                    text,
                                },
                            }
                        }
                        Err(bad) => Filing::Refused {
                            msg,
                            why: Refusal::BadCommand,
                            command: Some(bad),
                            slot: Some(slot),
                        },
                    }
                }
                (judged, _) => {
                    let why = judged.err().unwrap_or(Refusal::UnknownTicket);
                    Filing::Refused {
                        msg,
                        why,
                        command: None,
                        // A ticket is named only when the token proved it.
                        slot: slot.filter(|_| !matches!(why, Refusal::BadToken | Refusal::NoKey)),
                    }
                }
            },
        )
    }

    fn follow_up(
        &mut self,
        msg: &'b InboundMessage,
        d: &Decision,
        t: usize,
        by: FoundBy,
    ) -> TicketAction {
        if !self.is_participant(t, requester_address(msg)) {
            // Someone else's ticket number or a forwarded thread: never append to a
            // stranger's ticket; open a new one that points at it.
            return self.open_ticket(msg, d, Some((t, LinkedBecause::Stranger)));
        }
        let mut reopened = false;
        let slot = &self.slots[t];
        if slot.state == State::Closed.as_str() || slot.state == State::Resolved.as_str() {
            let days = self.config.settings.ingest.reopen_days;
            let window = i64::from(days) * 86_400_000_000;
            if slot.closed_at.is_some_and(|c| self.now - c <= window) {
                reopened = true;
            } else {
                return self.open_ticket(msg, d, Some((t, LinkedBecause::ClosedLongAgo { days })));
            }
        }
        self.add_article(t, msg);
        let slot = &mut self.slots[t];
        slot.followed_up = true;
        let state_change = (reopened || slot.state == State::Pending.as_str()).then(|| {
            slot.closed_at = None;
            slot.reopened = true;
            std::mem::replace(&mut slot.state, State::Open.as_str().into())
        });
        TicketAction::FollowUp {
            slot: t,
            by,
            reopened,
            state_change,
        }
    }

    fn open_ticket(
        &mut self,
        msg: &'b InboundMessage,
        d: &Decision,
        linked: Option<(usize, LinkedBecause)>,
    ) -> TicketAction {
        self.slots.push(Slot {
            stored: None,
            queue: d.queue.clone(),
            subject: ticket_subject(d),
            state: State::New.as_str().into(),
            closed_at: None,
            participants: new_participants(self.config, msg)
                .into_iter()
                .map(|(a, _)| a)
                .collect(),
            followed_up: false,
            reopened: false,
            nk_betreff: d.nutzerkonto.as_ref().map(|n| n.betreff.clone()),
        });
        let slot = self.slots.len() - 1;
        self.add_article(slot, msg);
        TicketAction::New { slot, linked }
    }

    /// The ticket a message refers to: by the tag in the subject, else by In-Reply-To and
    /// References naming the Message-ID of any article — this batch's first, as they are
    /// the most recent.
    fn find_ticket(&mut self, msg: &InboundMessage, d: &Decision) -> Option<(usize, FoundBy)> {
        if let Some(id) = d
            .ticket_ref
            .as_deref()
            .and_then(|n| self.known.by_number.get(n))
            && let Some(slot) = self.stored_slot(*id)
        {
            return Some((slot, FoundBy::Tag));
        }
        for message_id in thread_ids(msg) {
            if let Some(&slot) = self.by_message_id.get(message_id) {
                return Some((slot, FoundBy::Reference));
            }
            if let Some(slot) = self
                .known
                .by_message_id
                .get(message_id)
                .and_then(|&id| self.stored_slot(id))
            {
                return Some((slot, FoundBy::Reference));
            }
        }
        None
    }

    /// The slot of a stored ticket the lookups found.
    fn stored_slot(&mut self, id: i64) -> Option<usize> {
        if let Some(&slot) = self.slot_of_stored.get(&id) {
            return Some(slot);
        }
        let t = self.known.tickets.get(&id)?;
        self.slots.push(Slot {
            stored: Some((t.id, t.number.clone())),
            queue: t.queue.clone(),
            subject: t.subject.clone(),
            state: t.state.clone(),
            closed_at: t.closed_at,
            participants: self
                .known
                .participants
                .get(&id)
                .cloned()
                .unwrap_or_default(),
            followed_up: false,
            reopened: false,
            nk_betreff: t.nk_betreff.clone(),
        });
        let slot = self.slots.len() - 1;
        self.slot_of_stored.insert(id, slot);
        Some(slot)
    }

    fn is_participant(&self, slot: usize, address: &str) -> bool {
        let t = &self.slots[slot];
        self.config
            .settings
            .queue(&t.queue)
            .and_then(|q| q.staff.as_deref())
            .is_some_and(|s| s.eq_ignore_ascii_case(address))
            || t.participants.contains(address)
    }

    /// A later message of the batch that refers to this one threads onto its ticket.
    fn add_article(&mut self, slot: usize, msg: &'b InboundMessage) {
        if let Some(id) = &msg.message_id {
            self.by_message_id.insert(id, slot);
        }
    }
}

/// A ticket being opened (phase 5): its slot, id and number, the ticket it is linked to, and
/// the reason its record gives.
struct NewSlot<'s> {
    slot: &'s Slot,
    id: i64,
    number: &'s str,
    linked: Option<&'s (i64, String)>,
    reason: &'s str,
}

/// What becomes of the automatic reply to a new ticket's requester.
enum Reply<'d> {
    Send {
        template: &'d str,
        kind: Kind,
        to: String,
        /// Automatic replies to `to` in the store within the hour, for the loop brake.
        stored: i64,
        /// Why the loop brake holds it back: it is written as suppressed.
        held: Option<String>,
    },
    Skipped {
        /// The reply that was due, if any.
        template: Option<&'d str>,
        why: String,
        /// The detail of its `auto_reply_skipped` line.
        detail: serde_json::Value,
    },
}

impl Reply<'_> {
    fn state(&self) -> &'static str {
        match self {
            Reply::Send { held: None, .. } => "queued",
            Reply::Send { held: Some(_), .. } => "suppressed",
            Reply::Skipped { .. } => "skipped",
        }
    }

    fn why(&self) -> Option<&str> {
        match self {
            Reply::Send { held, .. } => held.as_deref(),
            Reply::Skipped { why, .. } => Some(why),
        }
    }

    /// The `reply` of the `ticket_created` line.
    fn record(&self) -> serde_json::Value {
        match self {
            Reply::Send {
                template, to, held, ..
            } => json!({ "state": self.state(), "template": template, "to": to, "why": held }),
            Reply::Skipped { template, why, .. } => {
                json!({ "state": self.state(), "template": template, "why": why })
            }
        }
    }
}

/// Phase 5: the rows of every step, into the write buffer.
struct Writer<'b> {
    config: &'b Config,
    /// Europe/Berlin, for the dates templates show.
    tz: jiff::tz::TimeZone,
    now: Timestamp,
    /// `now` as stored.
    at: i64,
    buf: WriteBuffer,
    raw_ids: std::vec::IntoIter<i64>,
    article_ids: std::vec::IntoIter<i64>,
    /// Id and number of each slot's ticket.
    tickets: Vec<(i64, String)>,
    auto_replies: &'b HashMap<String, i64>,
    windows: &'b [AnnouncedWindow],
    /// Follow-ups (ticket id, queue, sender): staff mail among them is the first reaction.
    follow_ups: Vec<(i64, String, String)>,
    /// Relayed staff answers (ticket id, staff member): each is a reaction.
    staff_answers: Vec<(i64, String)>,
    /// Stored tickets a follow-up set open again (ticket id, the state they were in).
    reopenings: Vec<(i64, String)>,
    /// Commands of staff answers, applied once the batch's rows are written.
    staff_commands: Vec<StaffCommands>,
    relay: &'b HashMap<i64, crate::store::relay::RelayFacts>,
}

impl Writer<'_> {
    fn file(
        &mut self,
        p: &Prepared<'_>,
        step: &Step<'_>,
        slots: &[Slot],
        earlier: &[Outcome],
    ) -> Result<Outcome, StoreError> {
        let filing = match step {
            Step::Duplicate(filed) => {
                return Ok(Outcome::Duplicate {
                    previous: filed.outcome,
                    number: filed.number.clone(),
                });
            }
            Step::DuplicateOf(i) => {
                let first = earlier.get(*i);
                return Ok(Outcome::Duplicate {
                    previous: first.map_or(RawOutcome::Ignored, Outcome::raw),
                    number: first.and_then(Outcome::ticket).map(str::to_string),
                });
            }
            Step::File(filing) => filing,
        };
        let raw_id = self
            .raw_ids
            .next()
            .ok_or(StoreError::IdsExhausted("raw_messages"))?;
        // The reason recorded is what happened, naming the ticket the message was filed on.
        let (outcome, ticket_id, reason) = match filing {
            Filing::Quarantined(reason) => {
                tracing::warn!(source = %p.source, reason, "quarantined");
                (
                    Outcome::Quarantined {
                        reason: reason.clone(),
                    },
                    None,
                    reason.clone(),
                )
            }
            Filing::Ignored(reason) => (
                Outcome::Ignored {
                    reason: reason.clone(),
                },
                None,
                reason.clone(),
            ),
            Filing::Refused {
                msg,
                why,
                command,
                slot,
            } => {
                let ticket = slot.map(|t| self.tickets[t].clone());
                let stored = msg
                    .from_address()
                    .and_then(|a| self.auto_replies.get(a))
                    .copied()
                    .unwrap_or(0);
                staff_reply::refuse(
                    &mut self.buf,
                    self.config,
                    self.now,
                    raw_id,
                    msg,
                    *why,
                    command.as_ref(),
                    ticket.as_ref().map(|(id, n)| (*id, n.as_str())),
                    stored,
                );
                let reason = match command {
                    Some(c) => format!("{}: \"{}\" ({})", why.describe(), c.line, c.why),
                    None => why.describe().to_string(),
                };
                let number = ticket.map(|(_, n)| n);
                (
                    Outcome::Refused {
                        reason: reason.clone(),
                        number,
                    },
                    None,
                    reason,
                )
            }
            Filing::Ticket { msg, d, action } => match action {
                TicketAction::StaffAnswer {
                    slot,
                    commands,
                    text,
                } => {
                    let (id, number) = self.tickets[*slot].clone();
                    let by = msg.from_address().unwrap_or("").to_string();
                    let relays = staff_reply::relays(commands, text, msg.attachments.len());
                    if relays {
                        let article_id = self
                            .article_ids
                            .next()
                            .ok_or(StoreError::IdsExhausted("articles"))?;
                        let facts = self.relay.get(&id).cloned().unwrap_or_default();
                        staff_reply::relay(
                            &mut self.buf,
                            self.config,
                            self.now,
                            article_id,
                            staff_reply::OnTicket {
                                id,
                                number: &number,
                                subject: &slots[*slot].subject,
                            },
                            raw_id,
                            msg,
                            text.clone(),
                            &facts,
                        );
                        self.staff_answers.push((id, by.clone()));
                    }
                    if !commands.is_empty() {
                        self.staff_commands.push(StaffCommands {
                            ticket_id: id,
                            number: number.clone(),
                            raw_id,
                            message_id: msg.message_id.clone(),
                            by,
                            commands: commands.clone(),
                            text: text.clone(),
                        });
                    }
                    let reason = match (relays, commands.len()) {
                        (true, 0) => format!("staff answer relayed on ticket {number}"),
                        (true, n) => {
                            format!("staff answer relayed on ticket {number}, {n} command(s)")
                        }
                        (false, 0) => {
                            format!("empty staff answer on ticket {number}, nothing relayed")
                        }
                        (false, n) => {
                            format!("staff commands on ticket {number} ({n}), nothing relayed")
                        }
                    };
                    (Outcome::StaffAnswer { number }, Some(id), reason)
                }
                TicketAction::Note { slot, by } => {
                    let (id, number) = self.tickets[*slot].clone();
                    self.add_article(id, raw_id, msg, "note")?;
                    let reason = d.describe(Some(FiledAs::Note {
                        number: &number,
                        by: *by,
                    }));
                    (Outcome::Note { number }, Some(id), reason)
                }
                TicketAction::FollowUp {
                    slot,
                    by,
                    reopened,
                    state_change,
                } => {
                    let (id, number) = self.tickets[*slot].clone();
                    let reason = d.describe(Some(FiledAs::FollowUp {
                        number: &number,
                        by: *by,
                        reopened: *reopened,
                    }));
                    self.add_article(id, raw_id, msg, "inbound")?;
                    self.follow_ups
                        .push((id, slots[*slot].queue.clone(), requester(msg)));
                    if let Some(from) = state_change {
                        self.reopenings.push((id, from.clone()));
                        audit(
                            &mut self.buf,
                            self.at,
                            Some(id),
                            Some(raw_id),
                            "poststelle",
                            "state_changed",
                            &json!({ "from": from, "to": State::Open.as_str(), "why": if *reopened { "follow-up reopened the ticket" } else { "follow-up from the requester" } }),
                        );
                    }
                    self.notify_staff(&slots[*slot], id, &number, raw_id, msg, d, true);
                    (
                        Outcome::FollowUp {
                            number,
                            reopened: *reopened,
                        },
                        Some(id),
                        reason,
                    )
                }
                TicketAction::Alert {
                    slot,
                    step,
                    at,
                    linked,
                } => {
                    let (id, number) = self.tickets[*slot].clone();
                    let linked_number = linked.map(|l| self.tickets[l].1.clone());
                    let alert = d.alert.as_ref().ok_or_else(|| {
                        StoreError::Internal("an alert step without an alert".into())
                    })?;
                    let reason =
                        alerts::reason(alert, *step, *at, &number, linked_number.as_deref());
                    let outcome = match step.effect {
                        Effect::Open => {
                            let linked = linked.map(|l| self.tickets[l].clone());
                            let new = NewSlot {
                                slot: &slots[*slot],
                                id,
                                number: &number,
                                linked: linked.as_ref(),
                                reason: &reason,
                            };
                            self.open_ticket(new, raw_id, msg, d)?;
                            Outcome::NewTicket {
                                number,
                                linked_to: linked_number,
                            }
                        }
                        Effect::Reopen | Effect::Reproblem | Effect::Restore => {
                            self.add_article(id, raw_id, msg, "inbound")?;
                            if step.notify {
                                self.notify_staff(&slots[*slot], id, &number, raw_id, msg, d, true);
                            }
                            Outcome::FollowUp {
                                number,
                                reopened: step.effect == Effect::Reopen,
                            }
                        }
                        Effect::Acknowledge | Effect::Info => {
                            self.add_article(id, raw_id, msg, "note")?;
                            Outcome::Note { number }
                        }
                        // Counted on the key; the raw message keeps the mail.
                        Effect::Repeat => Outcome::Note { number },
                    };
                    (outcome, Some(id), reason)
                }
                TicketAction::New { slot, linked } => {
                    let linked = linked.map(|(l, because)| (self.tickets[l].clone(), because));
                    let (id, number) = self.tickets[*slot].clone();
                    let reason = d.describe(Some(FiledAs::New {
                        linked: linked
                            .as_ref()
                            .map(|((_, n), because)| (n.as_str(), *because)),
                    }));
                    let linked = linked.map(|(ticket, _)| ticket);
                    let new = NewSlot {
                        slot: &slots[*slot],
                        id,
                        number: &number,
                        linked: linked.as_ref(),
                        reason: &reason,
                    };
                    self.open_ticket(new, raw_id, msg, d)?;
                    (
                        Outcome::NewTicket {
                            number,
                            linked_to: linked.map(|(_, n)| n),
                        },
                        Some(id),
                        reason,
                    )
                }
            },
        };
        let buf = &mut self.buf;
        // Of a message over the size limit only the header is kept: the store must not grow
        // by what the limit keeps out. Its size says how large it was.
        let over_limit = p.raw.len() as u64 > self.config.settings.ingest.max_message_size;
        buf.raw_message(NewRaw {
            id: raw_id,
            source_key: p.source.as_str(),
            dedup_key: &p.dedup_key,
            message_id: p.message_id.as_deref(),
            content_hash: &p.hash,
            bytes: if over_limit {
                crate::message::header_of(p.raw)
            } else {
                p.raw
            },
            size: p.raw.len() as i64,
            received_at: self.at,
            outcome: outcome.raw(),
            reason: &reason,
            ticket_id,
        });
        audit(
            buf,
            self.at,
            ticket_id,
            Some(raw_id),
            "poststelle",
            outcome.label(),
            &json!({ "source": p.source.as_str(), "message_id": p.message_id, "reason": reason }),
        );
        Ok(outcome)
    }

    fn open_ticket(
        &mut self,
        new: NewSlot<'_>,
        raw_id: i64,
        msg: &InboundMessage,
        d: &Decision,
    ) -> Result<(), StoreError> {
        let NewSlot {
            slot,
            id: ticket_id,
            number,
            linked,
            reason,
        } = new;
        let s = &self.config.settings;
        let requester = requester(msg);
        let requester_name = requester_mailbox(msg).and_then(|m| m.name.clone());
        let nk = d.nutzerkonto.as_ref();
        // Status notices never go back to a machine or another ticket system: the loop rule.
        let no_notice = match (&d.auto_generated, &d.ticket_system, &d.alert) {
            (Some(kind), _, _) => Some(format!("machine-made mail ({})", kind.as_str())),
            (None, Some(e), _) => Some(format!("sent through another ticket system ({e})")),
            (None, None, Some(a)) => Some(format!("a monitoring alert ({})", a.key)),
            (None, None, None) => None,
        };
        self.buf.ticket(&NewTicket {
            id: ticket_id,
            number,
            queue: &d.queue,
            severity: i64::from(d.severity),
            category: d.category.as_deref(),
            requester: &requester,
            requester_name: requester_name.as_deref(),
            subject: &slot.subject,
            nutzerkonto: nk.map(|n| (n.state.as_str(), n.origin.as_str(), n.betreff.as_str())),
            linked_ticket_id: linked.map(|(id, _)| *id),
            requester_no_notice: no_notice.as_deref(),
            at: self.at,
        });
        super::clock::on_ticket_created(
            &mut self.buf,
            s,
            ticket_id,
            &d.queue,
            d.severity.into(),
            self.now,
            self.windows,
        );
        for (address, role) in new_participants(self.config, msg) {
            self.buf.participant(ticket_id, &address, role);
        }
        self.add_article(ticket_id, raw_id, msg, "inbound")?;
        let reply = self.reply_to(msg, d, &requester);
        tracing::info!(
            ticket = number,
            reply = reply.state(),
            why = reply.why().unwrap_or(""),
            "ticket created"
        );
        audit(
            &mut self.buf,
            self.at,
            Some(ticket_id),
            Some(raw_id),
            "poststelle",
            "ticket_created",
            &json!({
                "number": number, "queue": d.queue, "severity": d.severity,
                "rules": d.rules, "reason": reason,
                "linked_to": linked.map(|(_, n)| n),
                "reply": reply.record(),
            }),
        );

        let facts = notify::Ticket {
            number,
            subject: &slot.subject,
            queue: &d.queue,
            severity: d.severity,
            requester: &requester,
            requester_name: requester_name.as_deref(),
            received: received(msg, self.now),
        };
        let context = notify::for_message(
            self.config,
            &self.tz,
            &facts,
            msg,
            d.service.as_ref(),
            false,
        );
        match reply {
            Reply::Send {
                template,
                kind,
                stored,
                ..
            } => {
                outbox::enqueue_buffered(
                    &mut self.buf,
                    self.config,
                    self.now,
                    NewMail {
                        ticket_id: Some(ticket_id),
                        kind,
                        template,
                        recipient: &requester,
                        in_reply_to: msg.message_id.as_deref(),
                        references: thread_refs(msg),
                        context: &context,
                        attach_raw: None,
                    },
                    stored,
                    &mut self.article_ids,
                );
            }
            // A reply that was due but does not go out keeps its line of its own.
            Reply::Skipped {
                template: Some(_),
                detail,
                ..
            } => audit(
                &mut self.buf,
                self.at,
                Some(ticket_id),
                Some(raw_id),
                "poststelle",
                "auto_reply_skipped",
                &detail,
            ),
            Reply::Skipped { template: None, .. } => {}
        }
        self.notify_staff(slot, ticket_id, number, raw_id, msg, d, false);
        for to in &d.forward_to {
            outbox::enqueue_buffered(
                &mut self.buf,
                self.config,
                self.now,
                NewMail {
                    ticket_id: Some(ticket_id),
                    kind: Kind::Forward,
                    template: crate::templates::FORWARD,
                    recipient: to,
                    in_reply_to: None,
                    references: Vec::new(),
                    context: &context,
                    attach_raw: Some(raw_id),
                },
                0,
                &mut self.article_ids,
            );
        }
        Ok(())
    }

    /// Whether the requester of a new ticket gets its automatic reply, and if not, why: the
    /// classifier gave none, the mail is old (a first import), the address is missing,
    /// invalid or one of ours, or the loop brake holds it back.
    fn reply_to<'d>(&self, msg: &InboundMessage, d: &'d Decision, requester: &str) -> Reply<'d> {
        let s = &self.config.settings;
        let skipped =
            |template: Option<&'d str>, why: String, detail: serde_json::Value| Reply::Skipped {
                template,
                why,
                detail,
            };
        let Some(template) = d.auto_reply.as_deref() else {
            let why = d
                .no_reply
                .clone()
                .unwrap_or_else(|| "no automatic reply".into());
            return skipped(None, why, serde_json::Value::Null);
        };
        let limit = s.ingest.ack_max_age_hours;
        if let Some(date) = msg.date
            && self.now.as_second() - date > i64::from(limit) * 3600
        {
            let why = format!("the message is older than ingest.ack_max_age_hours ({limit} h)");
            // The mail's Date as RFC 3339, as every instant a person or script reads.
            let date = Timestamp::from_second(date).ok().map(|t| t.to_string());
            let detail = json!({ "why": why, "date": date });
            return skipped(Some(template), why, detail);
        }
        if requester.is_empty() {
            let why = "the message names no sender (no From or Reply-To address)".to_string();
            let detail = json!({ "why": why });
            return skipped(Some(template), why, detail);
        }
        if !crate::diag::is_plausible_address(requester) {
            // NUL, control characters or blanks in an address: nobody to answer, and no
            // text of the sender's choosing goes out.
            let why = "the requester's address is not a valid address".to_string();
            let detail = json!({ "why": why, "address": requester.escape_debug().to_string() });
            return skipped(Some(template), why, detail);
        }
        if is_ours(self.config, requester) {
            let why = format!("{requester} is one of our own addresses");
            let detail = json!({ "why": why });
            return skipped(Some(template), why, detail);
        }
        let kind = if Some(template) == s.acknowledgement_template.as_deref() {
            Kind::Acknowledgement
        } else {
            Kind::AutoReply
        };
        let stored = self.auto_replies.get(requester).copied().unwrap_or(0);
        Reply::Send {
            template,
            kind,
            stored,
            to: requester.to_string(),
            held: outbox::loop_brake(&self.buf, self.config, requester, stored),
        }
    }

    /// The routed copy for the queue's staff, with the original attached.
    #[allow(clippy::too_many_arguments)]
    fn notify_staff(
        &mut self,
        t: &Slot,
        ticket_id: i64,
        number: &str,
        raw_id: i64,
        msg: &InboundMessage,
        d: &Decision,
        follow_up: bool,
    ) {
        let Some(staff) = self
            .config
            .settings
            .queue(&t.queue)
            .and_then(|q| q.staff.as_deref())
        else {
            return;
        };
        let requester = requester(msg);
        if requester.eq_ignore_ascii_case(staff) {
            return;
        }
        let facts = notify::Ticket {
            number,
            subject: &t.subject,
            queue: &t.queue,
            severity: d.severity,
            requester: &requester,
            requester_name: None,
            received: received(msg, self.now),
        };
        let context = notify::for_message(
            self.config,
            &self.tz,
            &facts,
            msg,
            d.service.as_ref(),
            follow_up,
        );
        outbox::enqueue_buffered(
            &mut self.buf,
            self.config,
            self.now,
            NewMail {
                ticket_id: Some(ticket_id),
                kind: Kind::StaffCopy,
                template: crate::templates::STAFF_COPY,
                recipient: staff,
                in_reply_to: None,
                references: Vec::new(),
                context: &context,
                attach_raw: Some(raw_id),
            },
            0,
            &mut self.article_ids,
        );
    }

    /// The message as an article of its ticket (`inbound` or `note`), with its attachments.
    fn add_article(
        &mut self,
        ticket_id: i64,
        raw_id: i64,
        msg: &InboundMessage,
        kind: &'static str,
    ) -> Result<(), StoreError> {
        let article_id = self
            .article_ids
            .next()
            .ok_or(StoreError::IdsExhausted("articles"))?;
        self.buf.article(&NewArticle {
            id: article_id,
            ticket_id,
            kind,
            message_id: msg.message_id.as_deref(),
            raw_message_id: raw_id,
            sender: msg.from_address(),
            subject: &msg.subject,
            body: &msg.body,
            at: self.at,
        });
        for a in &msg.attachments {
            self.buf.attachment(
                article_id,
                a.name.as_deref(),
                &a.content_type,
                a.size as i64,
            );
        }
        Ok(())
    }
}

/// The subject a new ticket gets.
fn ticket_subject(d: &Decision) -> String {
    if d.normalized_subject.is_empty() {
        "(kein Betreff)".to_string()
    } else {
        d.normalized_subject.clone()
    }
}

/// Whether an address is one of ours: the sender of our mail or a queue's staff.
fn is_ours(config: &Config, address: &str) -> bool {
    let s = &config.settings;
    address.eq_ignore_ascii_case(&s.outbox.from)
        || s.queues.iter().any(|q| {
            q.staff
                .as_deref()
                .is_some_and(|st| st.eq_ignore_ascii_case(address))
        })
}

/// Cc addresses kept as participants of one ticket. A person copies a handful; a mail with
/// thousands is a list or an attack, and each kept address costs a row and a place in every
/// later lookup of the ticket's participants.
const MAX_CC_PARTICIPANTS: usize = 100;

/// The participants of a ticket a message opens: its requester, and the Cc of the first mail
/// but our own addresses.
fn new_participants(config: &Config, msg: &InboundMessage) -> Vec<(String, &'static str)> {
    let requester = requester_address(msg);
    let mut out: Vec<(String, &'static str)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    if !requester.is_empty() {
        out.push((requester.to_string(), "requester"));
        seen.insert(requester);
    }
    for cc in &msg.cc {
        if out.len() > MAX_CC_PARTICIPANTS {
            tracing::warn!(
                message_id = msg.message_id.as_deref().unwrap_or(""),
                cc = msg.cc.len(),
                kept = MAX_CC_PARTICIPANTS,
                "too many Cc addresses; the rest are not participants"
            );
            break;
        }
        let a = cc.address.as_str();
        if !a.is_empty() && !is_ours(config, a) && seen.insert(a) {
            out.push((a.to_string(), "cc"));
        }
    }
    out
}

/// The Message-IDs a message refers to, most recent first (a long thread's oldest ids matter
/// least): In-Reply-To, then References from the end, at most 20.
fn thread_ids(msg: &InboundMessage) -> impl Iterator<Item = &str> {
    msg.in_reply_to
        .iter()
        .chain(msg.references.iter().rev())
        .map(String::as_str)
        .take(20)
}

/// The distinct values, in first-seen order.
fn unique<'s>(values: impl Iterator<Item = &'s str>) -> Vec<&'s str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

fn requester_mailbox(msg: &InboundMessage) -> Option<&crate::message::Mailbox> {
    msg.reply_to.first().or(msg.from.as_ref())
}

fn requester_address(msg: &InboundMessage) -> &str {
    requester_mailbox(msg).map_or("", |m| m.address.as_str())
}

/// Where replies go: Reply-To when given (contact forms and the Nutzerkonto platform send from
/// a no-reply address), else From.
pub fn requester(msg: &InboundMessage) -> String {
    requester_address(msg).to_string()
}

fn thread_refs(msg: &InboundMessage) -> Vec<String> {
    let mut refs = msg.references.clone();
    if let Some(id) = &msg.message_id
        && !refs.contains(id)
    {
        refs.push(id.clone());
    }
    refs
}

/// When a message arrived as templates show it: its Date, else the time it was filed.
fn received(msg: &InboundMessage, now: Timestamp) -> Timestamp {
    msg.date
        .and_then(|t| Timestamp::from_second(t).ok())
        .unwrap_or(now)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
