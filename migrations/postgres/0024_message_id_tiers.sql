-- Kept in step with migrations/sqlite/0024_message_id_tiers.sql, which splits SQLite's
-- index of the articles' Message-IDs into a small tier of new keys and a big one filled in
-- sorted key ranges, because each insert at a random place in the big index cost SQLite a
-- leaf page read and written back. PostgreSQL's scale bench files new mail into the store of
-- a million tickets at 84 % and follow-ups at 112 % of the rate into an empty one with its
-- plain index (issue 20), so it keeps it; the number is taken so that both folders number the
-- same change alike.
SELECT 1;
