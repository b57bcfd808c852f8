-- Maintenance and its announcements (issue 16, items 3 and 6). migrations/sqlite/
-- 0007_maintenance.sql is the same schema for SQLite. Instants are UTC microseconds.

CREATE TABLE maintenances (
    id          BIGSERIAL PRIMARY KEY,
    platform    TEXT    NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    reason      TEXT    NOT NULL,
    -- the restrictions users face meanwhile
    impact      TEXT    NOT NULL,
    -- the lists its notices go to, comma-separated
    lists       TEXT    NOT NULL,
    -- 1: announced with less notice than the lead-time rule asks (--emergency)
    emergency   BIGINT NOT NULL DEFAULT 0,
    -- scheduled | cancelled | done
    state       TEXT    NOT NULL,
    -- SEQUENCE of its calendar entry: raised on every change and on cancellation
    sequence    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL
);

-- One row per notice; its mails are the outbox rows with its id, written in one transaction
-- with it.
CREATE TABLE announcements (
    id             BIGSERIAL PRIMARY KEY,
    maintenance_id BIGINT NOT NULL REFERENCES maintenances (id),
    -- scheduled | changed | cancelled | reminder | started | done
    kind           TEXT    NOT NULL,
    sequence       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX announcements_maintenance ON announcements (maintenance_id);

-- A notice's mail: the List-Id it carries and its calendar object. One mail per announcement
-- and address: writing an announcement's mails again adds none.
ALTER TABLE outbox ADD COLUMN announcement_id BIGINT REFERENCES announcements (id);
ALTER TABLE outbox ADD COLUMN list_id TEXT;
ALTER TABLE outbox ADD COLUMN ical TEXT;
CREATE UNIQUE INDEX outbox_announcement_recipient ON outbox (announcement_id, recipient);

-- The announced window of a maintenance, so that cancelling it takes it out of the report.
ALTER TABLE sla_maintenance ADD COLUMN maintenance_id BIGINT REFERENCES maintenances (id);
CREATE UNIQUE INDEX sla_maintenance_of ON sla_maintenance (maintenance_id);
