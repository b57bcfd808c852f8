-- Reaction deadlines and escalations (issue 5). migrations/sqlite/0003_sla.sql is the same
-- schema for SQLite. Instants are UTC microseconds; durations are microseconds of service
-- time on the ticket's calendar.

-- One reaction clock per ticket, recomputed (from received_at) when its class or queue changes.
CREATE TABLE ticket_sla (
    ticket_id    BIGINT  PRIMARY KEY REFERENCES tickets (id),
    calendar     TEXT    NOT NULL,
    -- the class the deadline was computed for (1-4)
    severity     BIGINT  NOT NULL,
    received_at  BIGINT  NOT NULL,
    clock_start  BIGINT  NOT NULL,
    warn_at      BIGINT  NOT NULL,
    due_at       BIGINT  NOT NULL,
    budget       BIGINT  NOT NULL,
    -- the first reaction of staff: a state change or note, or a mail from the staff address
    reacted_at   BIGINT,
    reacted_by   TEXT,
    service_used BIGINT,
    -- 1 met, 0 breached; NULL while no one has reacted
    met          BIGINT
);
CREATE INDEX ticket_sla_waiting ON ticket_sla (reacted_at, warn_at);

-- Each notice once per ticket, class and kind: the primary key makes the escalation loop
-- restart-safe (the row and the outbox mail are written in one transaction).
CREATE TABLE sla_escalations (
    ticket_id BIGINT  NOT NULL REFERENCES tickets (id),
    severity  BIGINT  NOT NULL,
    -- warning | breach
    kind      TEXT    NOT NULL,
    at        BIGINT  NOT NULL,
    -- Message-ID of the outbox mail; NULL when the queue has no escalation address
    message_id TEXT,
    PRIMARY KEY (ticket_id, severity, kind)
);

-- Announced maintenance: not counted as outage in the availability report.
CREATE TABLE sla_maintenance (
    id           BIGSERIAL PRIMARY KEY,
    calendar     TEXT,
    starts_at    BIGINT  NOT NULL,
    ends_at      BIGINT  NOT NULL,
    announced_at BIGINT  NOT NULL,
    description  TEXT    NOT NULL
);
