-- The inbox: one row per event a consumer has applied to this database, written in the same
-- transaction as the effect. A redelivered event finds its row and is skipped, so each effect happens
-- exactly once even though Kafka delivery is at-least-once. The consumer's janitor deletes rows after
-- a retention far longer than any redelivery window.
CREATE TABLE inbox (
    consumer      text        NOT NULL,              -- the consumer group, e.g. inventory-saga
    event_id      uuid        NOT NULL,              -- the event's own id
    event_type    text        NOT NULL,
    topic         text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
