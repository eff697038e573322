-- The durable-log alternative a team would otherwise build (tools/bench/run-all.sh):
-- one row per request in PostgreSQL, synchronous commit, an index to find a call's events.
CREATE TABLE events (
  seq     bigserial PRIMARY KEY,
  call_id bigint      NOT NULL,
  at      timestamptz NOT NULL DEFAULT now(),
  payload text        NOT NULL
);
CREATE INDEX events_by_call ON events (call_id, seq);
