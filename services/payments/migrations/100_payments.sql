-- The payments service's tables. An order is charged at most once: one `payments` row per order,
-- whatever the gateway decided (a declined attempt is kept, so a redelivered StockReserved finds it
-- and does not ask the gateway again). A successful payment may be refunded once, in full.
CREATE TABLE payments (
    payment_id        uuid        PRIMARY KEY,
    order_id          uuid        NOT NULL UNIQUE,      -- charged once per order
    customer_id       uuid        NOT NULL,
    amount_minor      bigint      NOT NULL CHECK (amount_minor >= 0),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status            text        NOT NULL CHECK (status IN ('SUCCEEDED', 'DECLINED', 'REFUNDED')),
    decline_reason    text        CHECK (decline_reason IN
                          ('INSUFFICIENT_FUNDS', 'CARD_DECLINED', 'FRAUD_SUSPECTED',
                           'AMOUNT_LIMIT_EXCEEDED', 'OTHER')),
    decline_detail    text,
    gateway_reference text,                             -- the gateway's charge reference, if charged
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- a declined attempt has a reason and no charge reference; a charge has a reference and no reason
    CHECK ((status = 'DECLINED') = (decline_reason IS NOT NULL)),
    CHECK ((status = 'DECLINED') = (gateway_reference IS NULL))
);
CREATE INDEX payments_customer ON payments (customer_id);

CREATE TABLE refunds (
    refund_id         uuid        PRIMARY KEY,
    payment_id        uuid        NOT NULL UNIQUE REFERENCES payments (payment_id), -- full refunds, once
    order_id          uuid        NOT NULL,
    amount_minor      bigint      NOT NULL CHECK (amount_minor >= 0),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    gateway_reference text        NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX refunds_order ON refunds (order_id);
