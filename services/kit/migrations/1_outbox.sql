-- The transactional outbox: one row per event, written in the same transaction as the business rows
-- that caused it. Debezium's outbox EventRouter streams the inserts from the WAL into
-- <aggregate_type>.events; the service's outbox janitor deletes rows once they are past retention,
-- so the table never grows without bound.
CREATE TABLE outbox (
    id             uuid        PRIMARY KEY,           -- the event id (Kafka header `id`)
    aggregate_type text        NOT NULL,              -- routes to topic <aggregate_type>.events
    aggregate_id   text        NOT NULL,              -- the Kafka key
    event_type     text        NOT NULL,              -- the Avro record full name
    payload        bytea       NOT NULL,              -- Avro value in the Confluent framing
    trace_context  text,                              -- W3C traceparent of the request that wrote it
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created_at ON outbox (created_at);
