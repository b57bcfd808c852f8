-- The sender claims mail to single people (acknowledgements, staff copies: no list_id) before
-- the notices of a distribution list's fan-out, so that 10,000 notices never hold them back
-- (issue 16, item 6). One partial index for each kind of row, holding only rows still to be
-- sent, in the order the claim takes them (due time, then id): each claim reads the due rows
-- it takes and nothing else, on SQLite and PostgreSQL alike (src/store/outbox.rs, CLAIM_*).
CREATE INDEX outbox_due_direct ON outbox (next_attempt_at, id)
    WHERE list_id IS NULL AND state IN ('scheduled', 'temporary_failure');
CREATE INDEX outbox_due_notices ON outbox (next_attempt_at, id)
    WHERE list_id IS NOT NULL AND state IN ('scheduled', 'temporary_failure');
