-- The inventory: the product catalogue with its stock, and the stock reserved for orders.
--
-- Stock invariants live in the table as well as in the code: nothing is ever negative and no more is
-- reserved than is on hand, so a bug cannot oversell quietly.
CREATE TABLE products (
    sku              text        PRIMARY KEY,
    name             text        NOT NULL CHECK (length(btrim(name)) > 0),
    description      text,
    unit_price_minor bigint      NOT NULL CHECK (unit_price_minor >= 0),
    currency         char(3)     NOT NULL,
    on_hand          integer     NOT NULL CHECK (on_hand >= 0),
    reserved         integer     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_reserved_within_on_hand CHECK (reserved <= on_hand)
);
CREATE INDEX products_lower_sku ON products (lower(sku) text_pattern_ops);

-- One row per order inventory has answered: whether every line was reserved or the order was rejected.
-- It is the idempotence guard: an order is decided once, and a repeated OrderPlaced finds the answer here.
CREATE TABLE stock_decisions (
    order_id    uuid        PRIMARY KEY,
    customer_id uuid        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('RESERVED', 'REJECTED')),
    decided_at  timestamptz NOT NULL DEFAULT now()
);

-- What is held for an order, one row per product: RESERVED until the order is cancelled (RELEASED) or
-- its shipment is dispatched (COMMITTED: the units left the warehouse).
CREATE TABLE reservations (
    order_id   uuid        NOT NULL REFERENCES stock_decisions (order_id),
    sku        text        NOT NULL REFERENCES products (sku),
    quantity   integer     NOT NULL CHECK (quantity > 0),
    status     text        NOT NULL CHECK (status IN ('RESERVED', 'RELEASED', 'COMMITTED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX reservations_sku ON reservations (sku);
