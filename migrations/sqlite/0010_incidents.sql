-- no-transaction
-- Incidents (issue 16, item 4). migrations/postgres/0010_incidents.sql is the same schema for
-- PostgreSQL. Instants are UTC microseconds.
--
-- An announcement belongs to a maintenance or to an incident: announcements.maintenance_id
-- becomes nullable and incident_id is added. SQLite cannot drop a NOT NULL constraint, so the
-- table is rebuilt as https://sqlite.org/lang_altertable.html#otheralter describes: foreign
-- keys off (outbox rows refer to announcements, and with them on DROP TABLE would delete
-- through them), one transaction, the new table filled and renamed, every index made again.
-- The pragma has no effect inside a transaction, hence `no-transaction` above and the
-- explicit BEGIN/COMMIT. Written so that running it again after a crash between its COMMIT
-- and sqlx's record of it finds everything in place.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE IF NOT EXISTS incidents (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    -- what users cannot do meanwhile
    impact      TEXT    NOT NULL,
    -- Störungsklasse 1-4; raised to 2 when enough light reports are linked
    class       INTEGER NOT NULL,
    -- the lists its notices go to, comma-separated
    lists       TEXT    NOT NULL,
    -- open | resolved
    state       TEXT    NOT NULL,
    -- the outage's start and restoration, as written to sla_outages
    started_at  INTEGER NOT NULL,
    resolved_at INTEGER,
    outage_id   INTEGER REFERENCES sla_outages (id),
    -- when the class was raised by linked light reports
    raised_at   INTEGER,
    created_at  INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_platform_state ON incidents (platform, state);

-- The incident's timeline: opened, each update's text, the class raise, the resolution.
CREATE TABLE IF NOT EXISTS incident_events (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    -- opened | update | raised | resolved
    kind        TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (incident_id);

-- Users' tickets about the incident: their requesters get its updates and its resolution.
CREATE TABLE IF NOT EXISTS incident_tickets (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    ticket_id   INTEGER NOT NULL REFERENCES tickets (id),
    -- command | open | rule <name>
    linked_by   TEXT    NOT NULL,
    linked_at   INTEGER NOT NULL,
    PRIMARY KEY (incident_id, ticket_id)
);
CREATE INDEX IF NOT EXISTS incident_tickets_ticket ON incident_tickets (ticket_id);

DROP TABLE IF EXISTS announcements_new;
CREATE TABLE announcements_new (
    id             INTEGER PRIMARY KEY,
    maintenance_id INTEGER REFERENCES maintenances (id),
    incident_id    INTEGER REFERENCES incidents (id),
    -- maintenance: scheduled | changed | cancelled | reminder | started | done;
    -- incident: opened | update | resolved
    kind           TEXT    NOT NULL,
    sequence       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    CHECK ((maintenance_id IS NULL) <> (incident_id IS NULL))
);
INSERT INTO announcements_new (id, maintenance_id, kind, sequence, created_at)
    SELECT id, maintenance_id, kind, sequence, created_at FROM announcements;
DROP TABLE announcements;
ALTER TABLE announcements_new RENAME TO announcements;
-- 0007 and 0009's indexes, which DROP TABLE took with it.
CREATE INDEX announcements_maintenance ON announcements (maintenance_id);
CREATE UNIQUE INDEX announcements_once ON announcements (maintenance_id, kind, sequence)
    WHERE kind IN ('reminder', 'started');
CREATE INDEX announcements_incident ON announcements (incident_id);

COMMIT;
PRAGMA foreign_keys = ON;
