-- Kept in step with migrations/sqlite/0027_outbox_result_pages.sql: no index on the outbox's
-- state beyond the claims' partial indexes (0012) and the held rows, and the loop brake's index
-- without the state, so that recording a sent mail changes as few index entries as it can
-- (every index holding `state` took a new entry for each result).
DROP INDEX outbox_due;
CREATE INDEX outbox_uncertain ON outbox (id) WHERE state = 'uncertain';

DROP INDEX outbox_auto_replies;
CREATE INDEX outbox_auto_replies ON outbox (created_at, recipient)
    WHERE kind IN ('acknowledgement', 'auto_reply');
