-- Status notices (issue 17, item 4). migrations/sqlite and migrations/postgres hold the same.
-- update_due_at: when an open ticket of class 1 or 2 gets its next periodic update (computed
--   in the queue's service calendar; NULL when none is due: not open, or class 3 or 4).
-- reminded_until: the pending_until whose reminder to staff went out; a new pending_until
--   makes a new reminder due. The conditional UPDATE on either column is the claim that makes
--   each mail go out once per due time, across restarts and instances.
-- requester_no_notice: why the requester never gets status notices (machine-made mail, another
--   ticket system); NULL: they do.
ALTER TABLE tickets ADD COLUMN update_due_at INTEGER;
ALTER TABLE tickets ADD COLUMN reminded_until INTEGER;
ALTER TABLE tickets ADD COLUMN requester_no_notice TEXT;
CREATE INDEX tickets_update_due ON tickets (update_due_at) WHERE update_due_at IS NOT NULL;
CREATE INDEX tickets_pending_due ON tickets (pending_until) WHERE pending_until IS NOT NULL;
