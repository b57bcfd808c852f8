-- Incidents (issue 16, item 4). migrations/sqlite/0010_incidents.sql is the same schema for
-- SQLite (which rebuilds announcements where PostgreSQL alters it). Instants are UTC
-- microseconds.

CREATE TABLE incidents (
    id          BIGSERIAL PRIMARY KEY,
    platform    TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    -- what users cannot do meanwhile
    impact      TEXT    NOT NULL,
    -- Störungsklasse 1-4; raised to 2 when enough light reports are linked
    class       BIGINT  NOT NULL,
    -- the lists its notices go to, comma-separated
    lists       TEXT    NOT NULL,
    -- open | resolved
    state       TEXT    NOT NULL,
    -- the outage's start and restoration, as written to sla_outages
    started_at  BIGINT  NOT NULL,
    resolved_at BIGINT,
    outage_id   BIGINT REFERENCES sla_outages (id),
    -- when the class was raised by linked light reports
    raised_at   BIGINT,
    created_at  BIGINT  NOT NULL,
    changed_at  BIGINT  NOT NULL
);
CREATE INDEX incidents_platform_state ON incidents (platform, state);

-- The incident's timeline: opened, each update's text, the class raise, the resolution.
CREATE TABLE incident_events (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    -- opened | update | raised | resolved
    kind        TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at          BIGINT  NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id);

-- Users' tickets about the incident: their requesters get its updates and its resolution.
CREATE TABLE incident_tickets (
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    ticket_id   BIGINT  NOT NULL REFERENCES tickets (id),
    -- command | open | rule <name>
    linked_by   TEXT    NOT NULL,
    linked_at   BIGINT  NOT NULL,
    PRIMARY KEY (incident_id, ticket_id)
);
CREATE INDEX incident_tickets_ticket ON incident_tickets (ticket_id);

-- An announcement belongs to a maintenance or to an incident.
ALTER TABLE announcements ALTER COLUMN maintenance_id DROP NOT NULL;
ALTER TABLE announcements ADD COLUMN incident_id BIGINT REFERENCES incidents (id);
ALTER TABLE announcements ADD CONSTRAINT announcements_of_one
    CHECK ((maintenance_id IS NULL) <> (incident_id IS NULL));
CREATE INDEX announcements_incident ON announcements (incident_id);
