-- Bounces of notices to distribution lists (issue 16, item 6): the notice a failure report
-- returned, counted once for its member however many reports come (src/ticket/notices.rs),
-- so that `announcements status` can count the bounced mails of an announcement.
-- migrations/sqlite/0011_notice_bounces.sql is the same for the other database.
ALTER TABLE outbox ADD COLUMN bounced_at BIGINT;
-- what the report said: "5.1.1 550 5.1.1 <anna@…>: user unknown", or why it counts without one
ALTER TABLE outbox ADD COLUMN bounce_reason TEXT;
