-- Scale (issue 20, item 4): indexes for the reads that must cost the same on a store of a
-- million tickets as on a new one. migrations/sqlite/0022_scale.sql is the same.
-- tests/integration/query_plans.rs reads the plan of every statement that runs per batch of
-- mail, per tick or per page (src/store/hot.rs) and fails on a full scan.

-- `tickets list` pages through tickets in creation order from a cursor (keyset pagination):
-- by state, by queue, by both, each in id order, so that a page of 50 reads 50 entries
-- whether the filter matches most tickets or a few. SQLite appends the rowid to every index;
-- PostgreSQL needs the id named. tickets_state also serves the escalation tick, which starts
-- from the tickets not yet resolved or closed. (state, queue, id) replaces (state, queue).
DROP INDEX tickets_state_queue;
CREATE INDEX tickets_state_queue ON tickets (state, queue, id);
CREATE INDEX tickets_state ON tickets (state, id);
CREATE INDEX tickets_queue ON tickets (queue, id);

-- The availability report reads the clocks of its period, and of class-1 tickets received
-- before it that may still be open (outages reaching into the period).
CREATE INDEX ticket_sla_period ON ticket_sla (calendar, received_at);
CREATE INDEX ticket_sla_class1 ON ticket_sla (calendar, received_at) WHERE severity = 1;

-- A platform's outages that reach into a period: those not restored, or restored after its
-- start.
CREATE INDEX sla_outages_platform_ends ON sla_outages (platform, ends_at);

-- The status page's fingerprint (the latest change) and its timeline (incidents open, or
-- started or resolved lately).
CREATE INDEX incidents_changed ON incidents (changed_at);
CREATE INDEX incidents_state ON incidents (state);
CREATE INDEX incidents_started ON incidents (started_at);
CREATE INDEX incidents_resolved ON incidents (resolved_at);
CREATE INDEX maintenances_changed ON maintenances (changed_at);
