-- Kept in step with migrations/postgres/0004_ingest.sql, which switches PostgreSQL's
-- compression of mail bodies to lz4. SQLite stores values uncompressed and has no such
-- setting, so there is nothing to change here; the number is taken so that both folders
-- number the same change alike.
SELECT 1;
