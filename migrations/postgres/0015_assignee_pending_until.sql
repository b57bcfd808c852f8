-- Staff commands (issue 17, item 3): whom a ticket is assigned to (`#assign`, `tickets set
-- --assign`), and until when a pending ticket waits (`#pending until`, `--pending-until`;
-- microseconds since 1970, UTC, as every instant). migrations/sqlite and migrations/postgres
-- hold the same.
ALTER TABLE tickets ADD COLUMN assignee TEXT;
ALTER TABLE tickets ADD COLUMN pending_until BIGINT;
