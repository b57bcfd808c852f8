-- Reaction deadlines and escalations (issue 5). migrations/postgres/0003_sla.sql is the same
-- schema for PostgreSQL. Instants are UTC microseconds; durations are microseconds of service
-- time on the ticket's calendar.

-- One reaction clock per ticket, recomputed (from received_at) when its class or queue changes.
CREATE TABLE ticket_sla (
    ticket_id    INTEGER PRIMARY KEY REFERENCES tickets (id),
    calendar     TEXT    NOT NULL,
    -- the class the deadline was computed for (1-4)
    severity     INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    clock_start  INTEGER NOT NULL,
    warn_at      INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    budget       INTEGER NOT NULL,
    -- the first reaction of staff: a state change or note, or a mail from the staff address
    reacted_at   INTEGER,
    reacted_by   TEXT,
    service_used INTEGER,
    -- 1 met, 0 breached; NULL while no one has reacted
    met          INTEGER
);
CREATE INDEX ticket_sla_waiting ON ticket_sla (reacted_at, warn_at);

-- Each notice once per ticket, class and kind: the primary key makes the escalation loop
-- restart-safe (the row and the outbox mail are written in one transaction).
CREATE TABLE sla_escalations (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    severity  INTEGER NOT NULL,
    -- warning | breach
    kind      TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    -- Message-ID of the outbox mail; NULL when the queue has no escalation address
    message_id TEXT,
    PRIMARY KEY (ticket_id, severity, kind)
);

-- Announced maintenance: not counted as outage in the availability report.
CREATE TABLE sla_maintenance (
    id           INTEGER PRIMARY KEY,
    calendar     TEXT,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    announced_at INTEGER NOT NULL,
    description  TEXT    NOT NULL
);
