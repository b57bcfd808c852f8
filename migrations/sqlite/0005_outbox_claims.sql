-- Who claimed an outbox row (a holder name, src/holder.rs): a restarted instance releases at
-- once the claims of its own process that died, instead of waiting for them to run out.
-- migrations/postgres/0005_outbox_claims.sql is the same.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
