-- Sequenced dead letters: the events of a key (an order) held back behind one of its events that a
-- consumer dead-lettered. While a key has any row here it is parked: its later events are stored
-- here (PARKED) instead of applied, in arrival order (`seq`), until the head (the lowest seq, the
-- dead letter) is redriven and applied again, or discarded; then the parked ones are applied in
-- order. Other keys go on. Written by the consumer runtime, in the consumer's own database.
CREATE TABLE parked_events (
    consumer        text        NOT NULL,              -- the consumer group, e.g. inventory-saga
    record_key      text        NOT NULL,              -- the Kafka key (the order id for the saga)
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    header_keys     text[]      NOT NULL,              -- the record's headers, byte for byte, in order
    header_values   bytea[]     NOT NULL,
    payload         bytea,
    state           text        NOT NULL CHECK (state IN ('DEAD_LETTERED', 'REDRIVEN', 'PARKED')),
    reason          text,                              -- why it was dead-lettered (dlq.reason)
    error           text,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id),
    CHECK (cardinality(header_keys) = cardinality(header_values))
);
CREATE INDEX parked_events_key ON parked_events (consumer, record_key, seq);
