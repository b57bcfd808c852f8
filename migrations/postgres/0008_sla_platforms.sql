-- Availability per platform (issue 16, item 5). migrations/sqlite/0008_sla_platforms.sql is
-- the same schema for SQLite. Instants are UTC microseconds.

-- The platform an announced window belongs to; NULL: every platform. `poststelle sla report
-- --platform P` excludes the windows of P and those of every platform.
ALTER TABLE sla_maintenance ADD COLUMN platform TEXT;
CREATE INDEX sla_maintenance_ends ON sla_maintenance (ends_at);

-- The outages of a platform's availability report: from the start of an outage to its
-- restoration (NULL while it lasts). Incidents (issue 16, item 4) write their start and
-- restoration here; a class-1 ticket alone is no outage of a platform.
CREATE TABLE sla_outages (
    id          BIGSERIAL PRIMARY KEY,
    platform    TEXT    NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT,
    -- where the row comes from, e.g. "incident 12"
    source      TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sla_outages_platform ON sla_outages (platform, starts_at);
