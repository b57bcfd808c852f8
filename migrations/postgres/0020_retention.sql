-- Retention and data subject requests (issue 20, items 1 and 2). migrations/sqlite/
-- 0020_retention.sql is the same schema for SQLite. Instants are UTC microseconds.
--
-- What retention did to a ticket, and when: purged_at — its content (raw mail, article bodies,
-- attachment names, the bodies of its mail) is deleted; anonymised_at — addresses, names and
-- subjects are replaced as well. A ticket closed again after either (staff reopened it) is due
-- again: hence the "< closed_at" in the indexes, which hold exactly the tickets still due, so
-- the daily run reads only those however many tickets the store keeps.
ALTER TABLE tickets ADD COLUMN purged_at BIGINT;
ALTER TABLE tickets ADD COLUMN anonymised_at BIGINT;
CREATE INDEX tickets_to_purge ON tickets (closed_at)
    WHERE closed_at IS NOT NULL AND (purged_at IS NULL OR purged_at < closed_at);
CREATE INDEX tickets_to_anonymise ON tickets (closed_at)
    WHERE closed_at IS NOT NULL AND (anonymised_at IS NULL OR anonymised_at < closed_at);

-- Raw mail whose bytes are deleted (the row stays: its keys keep a re-delivered mail a
-- duplicate). Mail on no ticket (ignored, refused, replayed) follows retention.quarantine_days.
ALTER TABLE raw_messages ADD COLUMN purged_at BIGINT;
CREATE INDEX raw_messages_ticket ON raw_messages (ticket_id);
CREATE INDEX raw_messages_unfiled ON raw_messages (received_at)
    WHERE ticket_id IS NULL AND purged_at IS NULL;

-- Outgoing mail whose bodies are deleted (retention.sent_mail_days, or with its ticket).
ALTER TABLE outbox ADD COLUMN purged_at BIGINT;
CREATE INDEX outbox_ticket ON outbox (ticket_id);
CREATE INDEX outbox_unpurged ON outbox (created_at) WHERE purged_at IS NULL;

-- When a daily job last started, so that it runs once a day however often the daemon
-- restarts and however many instances share the database (the conditional update is the
-- claim); summary: what it did, as JSON.
CREATE TABLE job_runs (
    name        TEXT    PRIMARY KEY,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT,
    summary     TEXT
);
