//! Tickets: their numbers, the reads a batch of inbound mail depends on (one query per kind
//! for the whole batch instead of one per message: messages filed before, tickets named by tag
//! or referenced by Message-ID, their participants; lists longer than a statement takes are
//! split), and the updates filing makes.
use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::store::buffer::{Val, WriteBuffer};
use crate::store::{Backend, MAX_PARAMS, Store, StoreError, placeholders};

/// A message filed before: its outcome and the number of its ticket.
#[derive(Debug, Clone, FromRow)]
pub struct Filed {
    #[sqlx(try_from = "String")]
    pub outcome: crate::store::raw::RawOutcome,
    pub number: Option<String>,
}

/// A stored ticket as threading sees it.
#[derive(Debug, Clone, FromRow)]
pub struct TicketRow {
    pub id: i64,
    pub number: String,
    pub queue: String,
    pub state: String,
    pub closed_at: Option<i64>,
    pub subject: String,
    /// The Betreff of a Nutzerkonto question (a staff answer's `#contact` needs it).
    pub nk_betreff: Option<String>,
}

const TICKET_COLUMNS: &str =
    "t.id, t.number, t.queue, t.state, t.closed_at, t.subject, t.nk_betreff";

/// Runs the statement `sql(placeholders)` for each slice of `keys` that fits in one
/// statement, binding the keys in order, and returns every row.
pub(super) async fn fetch_in<'k, K>(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &'k [K],
    sql: impl Fn(&str) -> String,
) -> Result<Vec<AnyRow>, StoreError>
where
    K: sqlx::Encode<'k, sqlx::Any> + sqlx::Type<sqlx::Any> + Copy + Send + 'k,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(MAX_PARAMS) {
        // Only placeholders are formatted in. The text changes with the list's length, so the
        // statement is not kept prepared; PostgreSQL then plans it for these very values.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql(&placeholders(
            backend,
            1,
            chunk.len(),
        ))))
        .persistent(false);
        for k in chunk {
            q = q.bind(*k);
        }
        rows.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// Messages filed before whose `column` (`source_key` or `dedup_key`) is one of `ph`.
pub(super) fn filed_before_sql(column: &str, ph: &str) -> String {
    format!(
        "SELECT r.{column} AS filed_key, r.outcome, t.number FROM raw_messages r \
         LEFT JOIN tickets t ON t.id = r.ticket_id WHERE r.{column} IN ({ph})"
    )
}

pub(super) const LEGACY_DEDUP_DATED_BEFORE: &str =
    "SELECT dated_before FROM legacy_dedup_keys WHERE id = 1";

/// Mail dated before this instant (Unix seconds) may have been filed under a dedup key of the
/// old form, which began with the Message-ID (migrations/sqlite/0025_legacy_dedup_keys.sql);
/// `None`: the store has no such keys.
pub async fn legacy_dedup_dated_before(
    conn: &mut AnyConnection,
) -> Result<Option<i64>, StoreError> {
    let v: Option<Option<i64>> = sqlx::query_scalar(LEGACY_DEDUP_DATED_BEFORE)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(v.flatten())
}

/// Messages filed before, by source key and by dedup key (see `dedup_key` in ticket::ingest).
pub async fn filed_before(
    conn: &mut AnyConnection,
    backend: Backend,
    source_keys: &[&str],
    dedup_keys: &[&str],
) -> Result<(HashMap<String, Filed>, HashMap<String, Filed>), StoreError> {
    let mut by_source = HashMap::new();
    let mut by_dedup = HashMap::new();
    // Two statements, not one with OR: each list is looked up in its own unique index.
    for (keys, column, map) in [
        (source_keys, "source_key", &mut by_source),
        (dedup_keys, "dedup_key", &mut by_dedup),
    ] {
        let rows = fetch_in(conn, backend, keys, |ph| filed_before_sql(column, ph)).await?;
        for row in rows {
            map.insert(
                row.try_get::<String, _>("filed_key")?,
                Filed::from_row(&row)?,
            );
        }
    }
    Ok((by_source, by_dedup))
}

pub(super) fn tickets_by_number_sql(ph: &str) -> String {
    format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number IN ({ph})")
}

/// Stored tickets with these numbers.
pub async fn tickets_by_number(
    conn: &mut AnyConnection,
    backend: Backend,
    numbers: &[&str],
) -> Result<Vec<TicketRow>, StoreError> {
    let rows = fetch_in(conn, backend, numbers, tickets_by_number_sql).await?;
    Ok(rows
        .iter()
        .map(TicketRow::from_row)
        .collect::<Result<_, _>>()?)
}

/// Where the follow-up lookup finds Message-IDs: PostgreSQL indexes `articles.message_id`;
/// SQLite keeps them in three tiers, a small one of new keys, a middle one they move to in
/// sorted key ranges, and a big one the middle one moves to in its turn
/// (migrations/sqlite/0024_message_id_tiers.sql, 0026_message_id_middle_tier.sql,
/// [`move_recent_message_ids`]).
pub(super) fn message_id_sources(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &["message_ids", "message_ids_middle", "message_ids_recent"],
        Backend::Postgres => &["articles"],
    }
}

pub(super) fn tickets_by_message_id_sql(source: &str, ph: &str) -> String {
    if source == "articles" {
        format!(
            "SELECT a.message_id AS referenced, a.id AS article, {TICKET_COLUMNS} FROM articles a \
             JOIN tickets t ON t.id = a.ticket_id WHERE a.message_id IN ({ph})"
        )
    } else {
        format!(
            "SELECT k.message_id AS referenced, k.article_id AS article, {TICKET_COLUMNS} \
             FROM {source} k JOIN articles a ON a.id = k.article_id \
             JOIN tickets t ON t.id = a.ticket_id WHERE k.message_id IN ({ph})"
        )
    }
}

/// For each Message-ID that an article carries (inbound, note, or our own outbound mail), the
/// ticket of the most recent such article.
pub async fn tickets_by_message_id(
    conn: &mut AnyConnection,
    backend: Backend,
    message_ids: &[&str],
) -> Result<HashMap<String, TicketRow>, StoreError> {
    let mut newest: HashMap<String, (i64, TicketRow)> = HashMap::new();
    for source in message_id_sources(backend) {
        let rows = fetch_in(conn, backend, message_ids, |ph| {
            tickets_by_message_id_sql(source, ph)
        })
        .await?;
        for row in rows {
            let message_id: String = row.try_get("referenced")?;
            let article: i64 = row.try_get("article")?;
            if newest.get(&message_id).is_none_or(|(a, _)| *a < article) {
                newest.insert(message_id, (article, TicketRow::from_row(&row)?));
            }
        }
    }
    Ok(newest.into_iter().map(|(m, (_, t))| (m, t)).collect())
}

/// New Message-IDs wait in SQLite's small tier until there are about this many: few enough
/// that its pages stay in the page cache, enough that moving them touches each page of the
/// middle tier's key range once for many keys.
pub const RECENT_MESSAGE_IDS: i64 = 16_384;
/// The middle tier moves into the big one once it holds this many: few enough that moving the
/// small tier into it rewrites a few hundred pages, enough that its move rewrites each page of
/// a big tier of millions of keys about once for many keys.
pub const MIDDLE_MESSAGE_IDS: i64 = 262_144;
/// Keys moved per transaction: a short write lock between batches of mail.
pub const MOVE_CHUNK: i64 = 1_024;

/// How many keys the small tier holds, counted from its row ids (deletions make it larger,
/// never smaller) without reading it.
/// (One MIN or MAX per SELECT: SQLite reads one end of the rowid order only for a lone one.)
pub(super) const RECENT_MESSAGE_IDS_SPAN: &str = "SELECT COALESCE((SELECT MAX(id) FROM message_ids_recent) \
     - (SELECT MIN(id) FROM message_ids_recent) + 1, 0)";
/// How many keys the middle tier holds, as the moves counted them.
pub(super) const MIDDLE_MESSAGE_IDS_COUNT: &str =
    "SELECT middle FROM message_id_tiers WHERE id = 1";
/// The middle tier's count after `$1` keys moved into it.
pub(super) const MIDDLE_MESSAGE_IDS_ADD: &str =
    "UPDATE message_id_tiers SET middle = middle + $1 WHERE id = 1";
/// The middle tier's count once it has been moved on whole: keys the triggers deleted from it
/// no longer count.
pub(super) const MIDDLE_MESSAGE_IDS_EMPTIED: &str =
    "UPDATE message_id_tiers SET middle = 0 WHERE id = 1";

/// A move between two of SQLite's Message-ID tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Move {
    /// The small tier of new keys into the middle one.
    RecentToMiddle,
    /// The middle tier into the big one.
    MiddleToBig,
}

impl Move {
    pub(super) const ALL: [Move; 2] = [Move::RecentToMiddle, Move::MiddleToBig];

    fn tables(self) -> (&'static str, &'static str) {
        match self {
            Move::RecentToMiddle => ("message_ids_recent", "message_ids_middle"),
            Move::MiddleToBig => ("message_ids_middle", "message_ids"),
        }
    }

    /// The key `$2` keys after `$1` in the tier moved from, the end of the range moved next.
    pub(super) fn range_end_sql(self) -> String {
        let (from, _) = self.tables();
        format!(
            "SELECT message_id FROM {from} WHERE message_id >= $1 \
             ORDER BY message_id LIMIT 1 OFFSET $2"
        )
    }

    /// The copy of a key range into the next tier and its deletion from this one.
    pub(super) fn sql(self, bounded: bool) -> [String; 2] {
        let (from, to) = self.tables();
        let range = if bounded {
            "message_id >= $1 AND message_id < $2"
        } else {
            "message_id >= $1"
        };
        [
            format!(
                "INSERT INTO {to} (message_id, article_id) SELECT message_id, article_id \
                 FROM {from} WHERE {range} ORDER BY message_id, article_id \
                 ON CONFLICT DO NOTHING"
            ),
            format!("DELETE FROM {from} WHERE {range}"),
        ]
    }
}

/// When SQLite's Message-ID tiers move on: the small tier once it holds `recent` keys, the
/// middle one once it holds `middle`, `chunk` keys per transaction.
#[derive(Debug, Clone, Copy)]
pub struct TierLimits {
    pub recent: i64,
    pub middle: i64,
    pub chunk: i64,
}

impl TierLimits {
    /// What the daemon uses.
    pub const STORE: TierLimits = TierLimits {
        recent: RECENT_MESSAGE_IDS,
        middle: MIDDLE_MESSAGE_IDS,
        chunk: MOVE_CHUNK,
    };
}

/// How many keys one call of [`move_recent_message_ids`] moved on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// From the small tier into the middle one.
    pub to_middle: u64,
    /// From the middle tier into the big one.
    pub to_big: u64,
}

/// Moves the keys of SQLite's small Message-ID tier into the middle one once it holds
/// `limits.recent`, and the middle one's into the big one once it holds `limits.middle`. Each
/// move goes in sorted key ranges of `limits.chunk` keys, each in a write transaction of its own: a range lands on a run of
/// neighbouring pages of the tier it goes to, where inserting the same keys one batch of mail
/// at a time wrote a page per key, and a tier of millions of keys takes them in one pass over
/// its pages for a quarter of a million keys rather than one for every sixteen thousand. A
/// lookup between two ranges finds every key in one tier or another. Nothing to do on
/// PostgreSQL.
pub async fn move_recent_message_ids(
    store: &Store,
    limits: TierLimits,
) -> Result<Moved, StoreError> {
    let mut moved = Moved::default();
    if store.backend() != Backend::Sqlite {
        return Ok(moved);
    }
    let span: i64 = sqlx::query_scalar(RECENT_MESSAGE_IDS_SPAN)
        .fetch_one(store.pool())
        .await?;
    if span >= limits.recent.max(1) {
        moved.to_middle = move_tier(store, Move::RecentToMiddle, limits.chunk).await?;
    }
    // Looked at after every batch, so that a move of the middle tier cut short is taken up.
    let middle: i64 = sqlx::query_scalar(MIDDLE_MESSAGE_IDS_COUNT)
        .fetch_one(store.pool())
        .await?;
    if middle >= limits.middle.max(1) {
        moved.to_big = move_tier(store, Move::MiddleToBig, limits.chunk).await?;
    }
    Ok(moved)
}

/// All keys of one tier into the next, `chunk` keys per transaction; the number moved.
async fn move_tier(store: &Store, step: Move, chunk: i64) -> Result<u64, StoreError> {
    let range_end = step.range_end_sql();
    let mut moved = 0;
    let mut from = String::new();
    loop {
        let mut tx = store.begin_write().await?;
        let end: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(range_end.as_str()))
            .bind(&from)
            .bind(chunk.max(1))
            .fetch_optional(&mut *tx)
            .await?;
        let [insert, delete] = step.sql(end.is_some());
        let mut ins = sqlx::query(sqlx::AssertSqlSafe(insert)).bind(&from);
        let mut del = sqlx::query(sqlx::AssertSqlSafe(delete)).bind(&from);
        if let Some(end) = &end {
            ins = ins.bind(end);
            del = del.bind(end);
        }
        let inserted = ins.execute(&mut *tx).await?.rows_affected() as i64;
        let deleted = del.execute(&mut *tx).await?.rows_affected();
        let count = match (step, &end) {
            (Move::RecentToMiddle, _) => Some(sqlx::query(MIDDLE_MESSAGE_IDS_ADD).bind(inserted)),
            // The middle tier's count stays until it is empty, so that a move of it cut short
            // (a crash, a failed write) is taken up after the next batch.
            (Move::MiddleToBig, Some(_)) => None,
            (Move::MiddleToBig, None) => Some(sqlx::query(MIDDLE_MESSAGE_IDS_EMPTIED)),
        };
        if let Some(count) = count {
            count.execute(&mut *tx).await?;
        }
        moved += deleted;
        tx.commit().await?;
        match end {
            Some(end) => from = end,
            None => return Ok(moved),
        }
    }
}

pub(super) fn participants_sql(ph: &str) -> String {
    format!("SELECT ticket_id, address FROM participants WHERE ticket_id IN ({ph})")
}

/// The participants' addresses of each of these tickets.
pub async fn participants(
    conn: &mut AnyConnection,
    backend: Backend,
    ticket_ids: &[i64],
) -> Result<HashMap<i64, HashSet<String>>, StoreError> {
    let rows = fetch_in(conn, backend, ticket_ids, participants_sql).await?;
    let mut out: HashMap<i64, HashSet<String>> = HashMap::new();
    for row in rows {
        out.entry(row.try_get("ticket_id")?)
            .or_default()
            .insert(row.try_get("address")?);
    }
    Ok(out)
}

/// `n` consecutive values of the ticket counter of `day`, with one statement. The counter row
/// stays locked (PostgreSQL) or the database write-locked (SQLite) until the caller's
/// transaction ends, so no two transactions get the same values; reserve as late as possible.
pub async fn reserve_counter(
    conn: &mut AnyConnection,
    day: &str,
    n: usize,
) -> Result<std::ops::RangeInclusive<i64>, StoreError> {
    let n = n as i64;
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO ticket_counters (day, value) VALUES ($1, $2) \
         ON CONFLICT (day) DO UPDATE SET value = ticket_counters.value + excluded.value RETURNING value",
    )
    .bind(day)
    .bind(n)
    .fetch_one(&mut *conn)
    .await?;
    Ok(last - n + 1..=last)
}

/// What filing a follow-up does to a stored ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// The ticket was closed: it is open again.
    Reopen,
    /// Only its last change moves.
    Update,
}

/// `touch` at `$1` of `n` tickets by id.
pub(super) fn touch_sql(backend: Backend, touch: Touch, n: usize) -> String {
    let set = match touch {
        Touch::Reopen => "state = 'open', closed_at = NULL, updated_at =",
        Touch::Update => "updated_at =",
    };
    format!(
        "UPDATE tickets SET {set} {} WHERE id IN ({})",
        placeholders(backend, 1, 1),
        placeholders(backend, 2, n)
    )
}

/// Applies `touch` at `at` to the tickets `ids`, split where the list is too long.
pub async fn touch_tickets(
    conn: &mut AnyConnection,
    backend: Backend,
    touch: Touch,
    at: i64,
    ids: &[i64],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(MAX_PARAMS - 1) {
        // Only placeholders are formatted in.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(touch_sql(backend, touch, chunk.len())))
            .persistent(false)
            .bind(at);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A ticket's state (`tickets.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    New,
    Open,
    Pending,
    /// Staff consider it solved and asked the requester to answer if the problem persists:
    /// an answer within `ingest.reopen_days` opens it again, as for a closed one.
    Resolved,
    Closed,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::New => "new",
            TicketState::Open => "open",
            TicketState::Pending => "pending",
            TicketState::Resolved => "resolved",
            TicketState::Closed => "closed",
        }
    }
}

/// A ticket as lists show it.
#[derive(Debug, Clone, FromRow)]
pub struct TicketListRow {
    pub id: i64,
    pub number: String,
    pub state: String,
    pub queue: String,
    pub severity: i64,
    pub category: Option<String>,
    pub subject: String,
    pub requester: String,
    pub articles: i64,
    pub created_at: i64,
    pub linked_to: Option<String>,
    pub assignee: Option<String>,
    pub pending_until: Option<i64>,
}

/// An article as `tickets show` presents it.
#[derive(Debug, Clone, FromRow)]
pub struct ArticleRow {
    pub kind: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

/// The fields staff change, as they are before the change.
#[derive(Debug, Clone, FromRow)]
pub struct Changeable {
    pub state: String,
    pub severity: i64,
    pub queue: String,
    pub assignee: Option<String>,
    pub pending_until: Option<i64>,
}

/// One change of a ticket's fields.
#[derive(Debug, Clone, Copy)]
pub enum FieldChange<'a> {
    State(TicketState),
    Severity(i64),
    Queue(&'a str),
    Assignee(&'a str),
    PendingUntil(Option<i64>),
}

/// The columns of [`TicketListRow`], from `tickets t` and its linked ticket `l`.
macro_rules! list_columns {
    () => {
        "t.id, t.number, t.state, t.queue, t.severity, t.category, t.subject, t.requester, \
         (SELECT COUNT(*) FROM articles a WHERE a.ticket_id = t.id) AS articles, t.created_at, \
         l.number AS linked_to, t.assignee, t.pending_until \
         FROM tickets t LEFT JOIN tickets l ON l.id = t.linked_ticket_id"
    };
}

/// A page of tickets in creation order (ids ascend as tickets are made): those after the id
/// `$1`, with the state and queue given, at most as many as the last placeholder says. One
/// text per combination of filters rather than `($n IS NULL OR …)`, which no index serves:
/// each reads its own index (`tickets_state`, `tickets_queue`, `tickets_state_queue`, the
/// primary key) from the cursor on and stops after the page, however many tickets there are.
pub(super) fn list_sql(backend: Backend, state: bool, queue: bool) -> String {
    let mut n = 1;
    let mut next = || {
        n += 1;
        placeholders(backend, n, 1)
    };
    let mut sql = format!(
        "SELECT {} WHERE t.id > {}",
        list_columns!(),
        placeholders(backend, 1, 1)
    );
    if state {
        sql.push_str(&format!(" AND t.state = {}", next()));
    }
    if queue {
        sql.push_str(&format!(" AND t.queue = {}", next()));
    }
    sql.push_str(&format!(" ORDER BY t.id LIMIT {}", next()));
    sql
}

pub(super) const TICKET_BY_NUMBER: &str =
    concat!("SELECT ", list_columns!(), " WHERE t.number = $1");

pub(super) const TICKET_ID_BY_NUMBER: &str = "SELECT id FROM tickets WHERE number = $1";

impl crate::store::Store {
    /// Up to `limit` tickets after the ticket with id `after` (0: from the first), in the order
    /// they were made, each filter optional.
    pub async fn ticket_page(
        &self,
        state: Option<&str>,
        queue: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<TicketListRow>, StoreError> {
        let sql = list_sql(self.backend(), state.is_some(), queue.is_some());
        // Only placeholders are formatted in.
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(after);
        if let Some(s) = state {
            q = q.bind(s);
        }
        if let Some(qu) = queue {
            q = q.bind(qu);
        }
        Ok(q.bind(limit).fetch_all(self.pool()).await?)
    }

    /// The ticket with this number, as lists show it.
    pub async fn ticket_by_number(
        &self,
        number: &str,
    ) -> Result<Option<TicketListRow>, StoreError> {
        Ok(sqlx::query_as(TICKET_BY_NUMBER)
            .bind(number)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn ticket_id(&self, number: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(TICKET_ID_BY_NUMBER)
            .bind(number)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn articles_of(&self, ticket_id: i64) -> Result<Vec<ArticleRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kind, message_id, sender, subject, body, created_at FROM articles \
             WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(self.pool())
        .await?)
    }
}

pub async fn changeable(conn: &mut AnyConnection, id: i64) -> Result<Changeable, StoreError> {
    Ok(sqlx::query_as(
        "SELECT state, severity, queue, assignee, pending_until FROM tickets WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Writes one changed field; a resolved or closed ticket records when it became so (the
/// reopen window counts from then).
pub async fn change_field(
    conn: &mut AnyConnection,
    id: i64,
    change: FieldChange<'_>,
    at: i64,
) -> Result<(), StoreError> {
    let q = match change {
        FieldChange::State(s) => sqlx::query(
            "UPDATE tickets SET state = $1, updated_at = $2, \
             closed_at = CASE WHEN $1 IN ('resolved', 'closed') THEN $2 ELSE NULL END \
             WHERE id = $3",
        )
        .bind(s.as_str()),
        FieldChange::Severity(v) => {
            sqlx::query("UPDATE tickets SET severity = $1, updated_at = $2 WHERE id = $3").bind(v)
        }
        FieldChange::Queue(v) => {
            sqlx::query("UPDATE tickets SET queue = $1, updated_at = $2 WHERE id = $3").bind(v)
        }
        FieldChange::Assignee(v) => {
            sqlx::query("UPDATE tickets SET assignee = $1, updated_at = $2 WHERE id = $3").bind(v)
        }
        FieldChange::PendingUntil(v) => {
            sqlx::query("UPDATE tickets SET pending_until = $1, updated_at = $2 WHERE id = $3")
                .bind(v)
        }
    };
    q.bind(at).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// An internal note by `actor` on a ticket.
pub async fn add_note(
    conn: &mut AnyConnection,
    id: i64,
    actor: &str,
    note: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO articles (ticket_id, kind, sender, subject, body, created_at) \
         VALUES ($1, 'note', $2, '', $3, $4)",
    )
    .bind(id)
    .bind(actor)
    .bind(note)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A ticket opened by filing ([`WriteBuffer::ticket`]).
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub id: i64,
    pub number: &'a str,
    pub queue: &'a str,
    pub severity: i64,
    pub category: Option<&'a str>,
    pub requester: &'a str,
    pub requester_name: Option<&'a str>,
    pub subject: &'a str,
    /// Nutzerkonto state, origin and Betreff of a `HE_<Betreff>_NKB` question.
    pub nutzerkonto: Option<(&'a str, &'a str, &'a str)>,
    pub linked_ticket_id: Option<i64>,
    /// Why the requester never gets status notices (machine-made mail, another ticket system).
    pub requester_no_notice: Option<&'a str>,
    pub at: i64,
}

/// An inbound mail or machine note on a ticket, with its raw message.
#[derive(Debug, Clone)]
pub struct NewArticle<'a> {
    pub id: i64,
    pub ticket_id: i64,
    /// `inbound` or `note`.
    pub kind: &'static str,
    pub message_id: Option<&'a str>,
    pub raw_message_id: i64,
    pub sender: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    pub at: i64,
}

impl WriteBuffer {
    pub fn ticket(&mut self, t: &NewTicket<'_>) {
        let text = |v: Option<&str>| Val::OptText(v.map(str::to_string));
        self.push(
            "tickets",
            &[
                "id",
                "number",
                "queue",
                "severity",
                "category",
                "state",
                "requester",
                "requester_name",
                "subject",
                "nk_state",
                "nk_origin",
                "nk_betreff",
                "linked_ticket_id",
                "requester_no_notice",
                "created_at",
                "updated_at",
            ],
            vec![
                Val::Int(t.id),
                Val::Text(t.number.into()),
                Val::Text(t.queue.into()),
                Val::Int(t.severity),
                text(t.category),
                Val::Text(TicketState::New.as_str().into()),
                Val::Text(t.requester.into()),
                text(t.requester_name),
                Val::Text(t.subject.into()),
                text(t.nutzerkonto.map(|n| n.0)),
                text(t.nutzerkonto.map(|n| n.1)),
                text(t.nutzerkonto.map(|n| n.2)),
                Val::OptInt(t.linked_ticket_id),
                text(t.requester_no_notice),
                Val::Int(t.at),
                Val::Int(t.at),
            ],
        );
    }

    pub fn article(&mut self, a: &NewArticle<'_>) {
        self.push(
            "articles",
            &[
                "id",
                "ticket_id",
                "kind",
                "message_id",
                "raw_message_id",
                "sender",
                "subject",
                "body",
                "created_at",
            ],
            vec![
                Val::Int(a.id),
                Val::Int(a.ticket_id),
                Val::Text(a.kind.into()),
                Val::OptText(a.message_id.map(str::to_string)),
                Val::Int(a.raw_message_id),
                Val::OptText(a.sender.map(str::to_string)),
                Val::Text(a.subject.into()),
                Val::Text(a.body.into()),
                Val::Int(a.at),
            ],
        );
    }

    /// What an article's attachment was (the bytes stay in the raw message).
    pub fn attachment(
        &mut self,
        article_id: i64,
        name: Option<&str>,
        content_type: &str,
        size: i64,
    ) {
        self.push(
            "attachments",
            &["article_id", "name", "content_type", "size"],
            vec![
                Val::Int(article_id),
                Val::OptText(name.map(str::to_string)),
                Val::Text(content_type.into()),
                Val::Int(size),
            ],
        );
    }

    /// A participant of a ticket, once per ticket and address.
    pub fn participant(&mut self, ticket_id: i64, address: &str, role: &'static str) {
        if address.is_empty() || !self.participants.insert((ticket_id, address.to_string())) {
            return;
        }
        self.push(
            "participants",
            &["ticket_id", "address", "role"],
            vec![
                Val::Int(ticket_id),
                Val::Text(address.to_string()),
                Val::Text(role.to_string()),
            ],
        );
    }
}
