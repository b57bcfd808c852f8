-- Kept in step with migrations/sqlite/0026_message_id_middle_tier.sql, a middle tier of
-- SQLite's Message-ID index; PostgreSQL indexes articles.message_id as it is (0024).
SELECT 1;
