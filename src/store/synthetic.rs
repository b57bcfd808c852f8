//! A store of years, made in minutes: tickets with their clocks, articles, raw mail, outgoing
//! mail, participants, audit lines, escalations, incidents and maintenance, written with one
//! `INSERT … SELECT` per table and chunk over a generated series (a recursive CTE on SQLite,
//! `generate_series` on PostgreSQL) instead of one statement per row through filing, which
//! would take hours for a million tickets. For `benches/scale.rs`, which measures how the cost
//! of filing, the escalation tick, `tickets list` and the reports grows with the store; nothing
//! else calls it.
//!
//! The rows look like what filing writes (same columns, numbers, Message-IDs spread over the
//! key space as real ones are, our own Message-IDs ordered by time as UUIDv7 ones are) and the
//! store is in the steady state of a desk that has run for `span_days`: nearly every ticket
//! closed, the newest `active` ones not, each clock reacted to or escalated as the loop would
//! have done, so that an escalation tick on it finds what a tick on a real store finds.
use sqlx::{Acquire, AnyConnection, Executor};

use super::{Backend, Store, StoreError};

/// What to make.
#[derive(Debug, Clone)]
pub struct Spec {
    pub tickets: i64,
    /// The newest this many tickets are not closed (new, open, pending, resolved).
    pub active: i64,
    /// Tickets are spread evenly over this many days before `now`.
    pub span_days: i64,
    /// UTC µs: the newest ticket is a little older.
    pub now: i64,
    /// Queues the tickets go to, in turn.
    pub queues: Vec<String>,
    /// The calendar of every clock.
    pub calendar: String,
    /// The address staff copies go to.
    pub staff: String,
    pub incidents: i64,
}

/// Articles per ticket: the request, our acknowledgement, the requester's follow-up.
pub const ARTICLES_PER_TICKET: i64 = 3;
/// Raw messages per ticket: the request and the follow-up.
pub const RAW_PER_TICKET: i64 = 2;
/// Distinct requesters: people write again.
const PEOPLE: i64 = 200_003;
/// Tickets per statement: large enough that statement overhead vanishes, small enough that a
/// transaction's pages fit the generator's page cache.
const CHUNK: i64 = 100_000;
/// Changed whenever the rows made change, so that a cached store made by an older generator is
/// not taken for a new one.
pub const VERSION: u32 = 2;

/// The Message-ID of the `n`-th raw message (1-based): a hashed prefix spreads them over the
/// index as real Message-IDs are spread, the suffix keeps them unique.
pub fn inbound_message_id(n: i64) -> String {
    format!(
        "{:08x}.{n}@gemeinde{}.example",
        hash(n),
        (n.div_euclid(RAW_PER_TICKET)) % 40
    )
}

/// The number of ticket `i` (1-based), as filing would have given it on its day, with the
/// instance id 99 so that it never meets a number filing gives now.
pub fn ticket_number(spec: &Spec, i: i64) -> Result<String, StoreError> {
    let day = jiff::Timestamp::from_microsecond(created_at(spec, i))?
        .strftime("%Y%m%d")
        .to_string();
    Ok(format!("{day}99{:06}", i % 1_000_000))
}

/// The requester of ticket `i`.
pub fn requester(i: i64) -> String {
    format!("p{}@gemeinde{}.example", i % PEOPLE, i % 40)
}

fn hash(n: i64) -> i64 {
    (n * 2_654_435_761) % 4_294_967_296
}

fn step(spec: &Spec) -> i64 {
    spec.span_days * 86_400_000_000 / spec.tickets.max(1)
}

fn created_at(spec: &Spec, i: i64) -> i64 {
    spec.now - spec.span_days * 86_400_000_000 + i * step(spec)
}

/// The SQL of one dialect for the expressions the two write differently.
struct Dialect(Backend);

impl Dialect {
    /// `WITH` clause and `FROM` item of the series `i` from `$1` to `$2`.
    fn series(&self) -> (&'static str, &'static str) {
        match self.0 {
            Backend::Sqlite => (
                "WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i < $2) ",
                "s",
            ),
            Backend::Postgres => ("", "generate_series(CAST($1 AS BIGINT), $2) AS s(i)"),
        }
    }

    fn pad6(&self, e: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("printf('%06d', {e})"),
            Backend::Postgres => format!("lpad(CAST({e} AS TEXT), 6, '0')"),
        }
    }

    fn hex8(&self, e: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("printf('%08x', {e})"),
            Backend::Postgres => format!("lpad(to_hex({e}), 8, '0')"),
        }
    }

    fn hex16(&self, e: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("printf('%016x', {e})"),
            Backend::Postgres => format!("lpad(to_hex({e}), 16, '0')"),
        }
    }

    /// `YYYYMMDD` of an instant in UTC µs.
    fn day(&self, e: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("strftime('%Y%m%d', ({e}) / 1000000, 'unixepoch')"),
            Backend::Postgres => {
                format!("to_char(to_timestamp(({e}) / 1000000) AT TIME ZONE 'UTC', 'YYYYMMDD')")
            }
        }
    }

    fn blob(&self, e: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("CAST({e} AS BLOB)"),
            Backend::Postgres => format!("convert_to({e}, 'UTF8')"),
        }
    }

    /// The Message-ID of raw message `n`, as [`inbound_message_id`].
    fn inbound_mid(&self, n: &str) -> String {
        format!(
            "{} || '.' || ({n}) || '@gemeinde' || ((({n}) / {RAW_PER_TICKET}) % 40) || '.example'",
            self.hex8(&format!("(({n}) * 2654435761) % 4294967296"))
        )
    }

    /// A SHA-256-long hex text made from `n`.
    fn hash64(&self, n: &str) -> String {
        (1..=8)
            .map(|k| self.hex8(&format!("((({n}) + {k}) * 2654435761) % 4294967296")))
            .collect::<Vec<_>>()
            .join(" || ")
    }
}

/// A SQL text literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Fills an empty store as `spec` says. Takes minutes for a million tickets; progress goes to
/// the log.
pub async fn fill(store: &Store, spec: &Spec) -> Result<(), StoreError> {
    if spec.queues.is_empty() || spec.tickets < 1 {
        return Err(StoreError::Internal(
            "a synthetic store needs a queue and a ticket".into(),
        ));
    }
    let d = Dialect(store.backend());
    let mut conn = store.pool().acquire().await?;
    if d.0 == Backend::Sqlite {
        // A page cache of 1 GiB for the generator's connection: the Message-ID and key indexes
        // take rows in random order, and each chunk then touches most of their pages.
        conn.execute("PRAGMA cache_size = -1048576; PRAGMA synchronous = OFF")
            .await?;
    }
    let statements = statements(&d, spec);
    let mut lo = 1;
    while lo <= spec.tickets {
        let hi = (lo + CHUNK - 1).min(spec.tickets);
        let mut tx = conn.begin().await?;
        for sql in &statements {
            // Only numbers and escaped literals are formatted in.
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(lo)
                .bind(hi)
                .execute(&mut *tx)
                .await?;
        }
        if d.0 == Backend::Sqlite {
            // The chunk's Message-IDs into the big tier at once, through the middle one, as
            // the store moves them.
            let steps = super::tickets::Move::ALL;
            for sql in steps.iter().flat_map(|step| step.sql(false)) {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind("")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        tracing::info!(tickets = hi, of = spec.tickets, "synthetic store");
        lo = hi + 1;
    }
    fill_incidents(&mut conn, &d, spec).await?;
    match d.0 {
        Backend::Sqlite => {
            conn.execute(
                "PRAGMA cache_size = -8192; PRAGMA synchronous = NORMAL; \
                 PRAGMA wal_checkpoint(TRUNCATE)",
            )
            .await?;
        }
        Backend::Postgres => {
            // Filing takes ids from the sequences.
            for table in [
                "tickets",
                "articles",
                "raw_messages",
                "outbox",
                "audit",
                "incidents",
                "incident_events",
                "sla_outages",
                "maintenances",
                "sla_maintenance",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval('{table}_id_seq', (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                )))
                .execute(&mut *conn)
                .await?;
            }
            // What autovacuum would have done by the time a store holds this much.
            conn.execute("VACUUM ANALYZE").await?;
        }
    }
    Ok(())
}

/// One `INSERT … SELECT` per table over the tickets `$1..=$2`.
fn statements(d: &Dialect, spec: &Spec) -> Vec<String> {
    let (with, from) = d.series();
    let created = format!(
        "({} + s.i * {})",
        spec.now - spec.span_days * 86_400_000_000,
        step(spec)
    );
    let created = created.as_str();
    let now = spec.now;
    let queue = {
        let arms: String = spec
            .queues
            .iter()
            .enumerate()
            .map(|(k, q)| format!(" WHEN {k} THEN {}", lit(q)))
            .collect();
        format!("CASE s.i % {}{arms} END", spec.queues.len())
    };
    let severity = "CASE WHEN s.i % 100 = 0 THEN 1 WHEN s.i % 100 < 10 THEN 2 \
                    WHEN s.i % 100 < 50 THEN 3 ELSE 4 END";
    let active = format!("s.i > {}", spec.tickets - spec.active);
    let active = active.as_str();
    let state = format!(
        "CASE WHEN {active} THEN (CASE s.i % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'open' \
         WHEN 2 THEN 'pending' ELSE 'resolved' END) ELSE 'closed' END"
    );
    let closed_at = format!(
        "CASE WHEN NOT ({active}) THEN {created} + 86400000000 + (s.i % 7) * 3600000000 \
         WHEN s.i % 4 = 3 THEN {created} + 3600000000 END"
    );
    let requester = format!("'p' || (s.i % {PEOPLE}) || '@gemeinde' || (s.i % 40) || '.example'");
    let subject = "'Anfrage ' || s.i || ' zum Fachverfahren'";
    let number = format!("{} || '99' || {}", d.day(created), d.pad6("s.i % 1000000"));
    // Reactions: 2 % of clocks never get one (closed unanswered, or still waiting); a third of
    // the active tickets wait.
    let reacted = format!(
        "CASE WHEN s.i % 50 = 7 OR ({active} AND s.i % 3 = 0) THEN NULL \
         ELSE {created} + 3600000000 END"
    );
    let budget = format!("(({severity}) * 7200000000)");
    let inbound = |n: &str| d.inbound_mid(n);
    let ours = |k: &str| {
        format!(
            "{} || '-{k}' || s.i || '@kommunal-it.example'",
            d.hex16(created)
        )
    };
    let body = "'Guten Tag, das Fachverfahren meldet seit heute früh einen Fehler beim \
                Speichern. Bitte um Rückruf. Mit freundlichen Grüßen'";
    let calendar = lit(&spec.calendar);
    let staff = lit(&spec.staff);
    let v = vec![
        format!(
            "{with}INSERT INTO tickets (id, number, queue, severity, state, requester, subject, \
             created_at, updated_at, closed_at, pending_until) \
             SELECT s.i, {number}, {queue}, {severity}, {state}, {requester}, {subject}, \
             {created}, COALESCE({closed_at}, {created}), {closed_at}, \
             CASE WHEN {active} AND s.i % 4 = 2 THEN {created} + 259200000000 END FROM {from}"
        ),
        format!(
            "{with}INSERT INTO ticket_sla (ticket_id, calendar, severity, received_at, \
             clock_start, warn_at, due_at, budget, reacted_at, reacted_by, service_used, met) \
             SELECT s.i, {calendar}, {severity}, {created}, {created}, \
             {created} + {budget} * 3 / 4, {created} + {budget}, {budget}, {reacted}, \
             CASE WHEN ({reacted}) IS NOT NULL THEN {staff} END, \
             CASE WHEN ({reacted}) IS NOT NULL THEN 3600000000 END, \
             CASE WHEN ({reacted}) IS NULL THEN NULL WHEN s.i % 20 = 3 THEN 0 ELSE 1 END \
             FROM {from}"
        ),
        // What the escalation loop sent: a warning and a breach for every clock whose deadline
        // passed unanswered or was answered late, a warning alone for one still inside it.
        format!(
            "INSERT INTO sla_escalations (ticket_id, severity, kind, at) \
             SELECT ticket_id, severity, 'warning', warn_at FROM ticket_sla \
             WHERE ticket_id BETWEEN $1 AND $2 AND warn_at <= {now} AND (met = 0 OR reacted_at IS NULL)"
        ),
        format!(
            "INSERT INTO sla_escalations (ticket_id, severity, kind, at) \
             SELECT ticket_id, severity, 'breach', due_at FROM ticket_sla \
             WHERE ticket_id BETWEEN $1 AND $2 AND due_at <= {now} AND (met = 0 OR reacted_at IS NULL)"
        ),
        format!(
            "{with}INSERT INTO raw_messages (id, source_key, dedup_key, message_id, content_hash, \
             size, bytes, received_at, outcome, reason, ticket_id) \
             SELECT {n}, 'imap:INBOX/1/' || {n}, {day} || ' ' || {mid} || ' ' || {h}, {mid}, {h}, \
             320, {blob}, {created} + (kk.k - 1) * 7200000000, \
             CASE kk.k WHEN 1 THEN 'new_ticket' ELSE 'follow_up' END, 'synthetic', s.i \
             FROM {from} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2) kk ORDER BY 1",
            n = "(s.i * 2 - 2 + kk.k)",
            day = d.day(&format!("{created} + (kk.k - 1) * 7200000000")),
            mid = inbound("(s.i * 2 - 2 + kk.k)"),
            h = d.hash64("(s.i * 2 - 2 + kk.k)"),
            blob = d.blob(&format!(
                "'From: ' || {requester} || ' Subject: ' || {subject}"
            )),
        ),
        format!(
            "{with}INSERT INTO articles (id, ticket_id, kind, message_id, raw_message_id, sender, \
             subject, body, created_at) \
             SELECT (s.i - 1) * 3 + kk.k, s.i, \
             CASE kk.k WHEN 2 THEN 'outbound' ELSE 'inbound' END, \
             CASE kk.k WHEN 1 THEN {first} WHEN 2 THEN {ack} ELSE {second} END, \
             CASE kk.k WHEN 1 THEN s.i * 2 - 1 WHEN 3 THEN s.i * 2 END, \
             CASE kk.k WHEN 2 THEN 'servicedesk@kommunal-it.example' ELSE {requester} END, \
             {subject}, {body}, {created} + (kk.k - 1) * 3600000000 \
             FROM {from} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) kk \
             ORDER BY 1",
            first = inbound("s.i * 2 - 1"),
            second = inbound("s.i * 2"),
            ack = ours("a"),
        ),
        format!(
            "{with}INSERT INTO outbox (id, ticket_id, kind, template, recipient, message_id, subject, \
             body_text, auto_submitted, state, attempts, next_attempt_at, created_at, sent_at) \
             SELECT s.i * 2 - 2 + kk.k, s.i, CASE kk.k WHEN 1 THEN 'acknowledgement' ELSE 'staff_copy' END, \
             CASE kk.k WHEN 1 THEN 'eingangsbestaetigung' ELSE 'kopie-an-team' END, \
             CASE kk.k WHEN 1 THEN {requester} ELSE {staff} END, \
             CASE kk.k WHEN 1 THEN {ack} ELSE {copy} END, \
             '[Ticket#' || {number} || '] ' || {subject}, {body}, \
             CASE kk.k WHEN 1 THEN 'auto-replied' ELSE 'auto-generated' END, 'sent', 1, \
             {created}, {created}, {created} + 1000000 \
             FROM {from} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2) kk ORDER BY 1",
            ack = ours("a"),
            copy = ours("s"),
        ),
        format!(
            "{with}INSERT INTO participants (ticket_id, address, role) \
             SELECT s.i, {requester}, 'requester' FROM {from} \
             UNION ALL SELECT s.i, 'cc' || s.i || '@gemeinde.example', 'cc' FROM {from} \
             WHERE s.i % 10 = 0"
        ),
        format!(
            "{with}INSERT INTO audit (at, ticket_id, raw_message_id, actor, event, detail) \
             SELECT {created}, s.i, CASE kk.k WHEN 1 THEN s.i * 2 - 1 END, \
             CASE kk.k WHEN 1 THEN 'poststelle' ELSE {staff} END, \
             CASE kk.k WHEN 1 THEN 'ticket_created' ELSE 'state_changed' END, \
             '{{\"synthetic\":true}}' \
             FROM {from} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2) kk ORDER BY s.i, kk.k"
        ),
    ];
    v
}

/// Incidents with their timelines and outages, maintenance windows: tables the status page
/// reads, in the numbers years of a platform bring.
async fn fill_incidents(
    conn: &mut AnyConnection,
    d: &Dialect,
    spec: &Spec,
) -> Result<(), StoreError> {
    let (with, from) = d.series();
    let n = spec.incidents;
    if n < 1 {
        return Ok(());
    }
    let every = spec.span_days * 86_400_000_000 / n;
    let start = format!(
        "({} + s.i * {every})",
        spec.now - spec.span_days * 86_400_000_000
    );
    let platform = "'plattform-' || (s.i % 5)";
    // The newest two are still open.
    let open = format!("s.i > {}", n - 2);
    let state = format!("CASE WHEN {open} THEN 'open' ELSE 'resolved' END");
    let resolved = format!("CASE WHEN {open} THEN NULL ELSE {start} + 7200000000 END");
    let statements = [
        format!(
            "{with}INSERT INTO sla_outages (id, platform, starts_at, ends_at, source, description) \
             SELECT s.i, {platform}, {start}, {resolved}, 'incident ' || s.i, '' FROM {from}"
        ),
        format!(
            "{with}INSERT INTO incidents (id, platform, title, impact, class, lists, state, \
             started_at, resolved_at, outage_id, created_at, changed_at) \
             SELECT s.i, {platform}, 'Störung ' || s.i, 'Anmeldung nicht möglich', 2, 'nutzer', \
             {state}, {start}, {resolved}, s.i, {start}, COALESCE({resolved}, {start}) FROM {from}"
        ),
        format!(
            "{with}INSERT INTO incident_events (incident_id, kind, text, actor, at) \
             SELECT s.i, CASE kk.k WHEN 1 THEN 'opened' WHEN 4 THEN 'resolved' ELSE 'update' END, \
             'Stand ' || kk.k, 'betrieb@kommunal-it.example', {start} + kk.k * CAST(1800000000 AS BIGINT) \
             FROM {from} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 \
             UNION ALL SELECT 4) kk WHERE kk.k < 4 OR NOT ({open}) ORDER BY s.i, kk.k"
        ),
        format!(
            "{with}INSERT INTO maintenances (id, platform, starts_at, ends_at, reason, impact, \
             lists, state, created_at, changed_at) \
             SELECT s.i, {platform}, {start} + 43200000000, {start} + 57600000000, 'Update', \
             'keine Anmeldung', 'nutzer', 'done', {start}, {start} FROM {from}"
        ),
        format!(
            "{with}INSERT INTO sla_maintenance (id, calendar, starts_at, ends_at, announced_at, \
             description, maintenance_id, platform) \
             SELECT s.i, NULL, {start} + 43200000000, {start} + 57600000000, {start}, 'Update', \
             s.i, {platform} FROM {from}"
        ),
    ];
    let mut tx = conn.begin().await?;
    for sql in statements {
        // Only numbers are formatted in.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(1i64)
            .bind(n)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A key for a cached copy of a synthetic store: changes with the generator, the schema
/// (every migration's checksum) and what is made.
pub fn cache_key(backend: Backend, spec_tag: &str) -> String {
    use sha2::{Digest, Sha256};
    let migrator = match backend {
        Backend::Sqlite => &super::SQLITE_MIGRATIONS,
        Backend::Postgres => &super::POSTGRES_MIGRATIONS,
    };
    let mut h = Sha256::new();
    h.update(VERSION.to_le_bytes());
    h.update(spec_tag.as_bytes());
    for m in migrator.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&*m.checksum);
    }
    let digest = h.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
