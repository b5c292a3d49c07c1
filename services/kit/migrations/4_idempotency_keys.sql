-- Idempotency keys: one row per (client, scope, key) a POST was answered under, written in the same
-- transaction as the request's effect (its business rows and outbox event). A retry with the same key
-- finds the row and is answered from it, so the effect happens at most once even if the process dies
-- right after committing; a retry whose request differs (request_hash) is refused. The service's
-- idempotency janitor deletes rows past the retention (ORDERFLOW_IDEMPOTENCY_RETENTION_HOURS).
CREATE TABLE idempotency_keys (
    client       text        NOT NULL DEFAULT '',   -- the authenticated client; '' until there is auth
    scope        text        NOT NULL,              -- method and route, e.g. 'POST /orders/{order_id}/place'
    key          text        NOT NULL,              -- the Idempotency-Key header, 1 to 255 characters
    request_hash bytea       NOT NULL,              -- SHA-256 of the method, path, query and body
    status       smallint    NOT NULL,              -- the answer's HTTP status (never 5xx)
    headers      jsonb       NOT NULL,              -- the answer's headers, [[name, value], ...]
    body         bytea       NOT NULL,              -- the answer's body, byte for byte
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
