-- From this version on, dedup keys begin with the UTC day of the mail's Date (issue 20; see
-- `dedup_key` in src/ticket/ingest.rs). Mail filed before has a key that begins with its
-- Message-ID, and filing looks for that key too, for mail dated before `dated_before` (Unix
-- seconds: the upgrade, plus a week for senders whose clocks run ahead; mail dated later
-- cannot have been filed before). A store that held no mail when it got this version has no
-- old keys (NULL). migrations/postgres/0025_legacy_dedup_keys.sql is the same.
CREATE TABLE legacy_dedup_keys (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    dated_before INTEGER
);
INSERT INTO legacy_dedup_keys (id, dated_before)
    SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM raw_messages)
                   THEN CAST(strftime('%s', 'now') AS INTEGER) + 7 * 86400 END;
