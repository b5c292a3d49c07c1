-- The orders service's tables: orders and their lines, and the local replicas of the customers and
-- products it needs (fed by reactions to customers.events and inventory.events; orders never calls
-- another service). The CHECK constraints repeat the domain rules of src/order.rs and src/status.rs so
-- that no code path, present or future, can store an order the domain could not hold.

-- What orders knows about a customer: whether it may order, and where its parcels go.
CREATE TABLE customer_replica (
    customer_id          uuid        PRIMARY KEY,
    active               boolean     NOT NULL,
    -- the customer's default shipping address (orderflow.common.Address), copied into an order when it
    -- is placed
    ship_recipient       text        NOT NULL,
    ship_line1           text        NOT NULL,
    ship_line2           text,
    ship_city            text        NOT NULL,
    ship_region          text,
    ship_postal_code     text        NOT NULL,
    ship_country         text        NOT NULL CHECK (ship_country ~ '^[A-Z]{2}$'),
    -- occurred_at of the event this row was last written from; an older event never overwrites a newer one
    as_of                timestamptz NOT NULL
);

-- What orders knows about a product: its name and list price, captured into a line when it is added.
CREATE TABLE product_replica (
    sku                  text        PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    name                 text        NOT NULL,
    unit_price_minor     bigint      NOT NULL CHECK (unit_price_minor >= 0),
    currency             text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    as_of                timestamptz NOT NULL
);

CREATE TABLE orders (
    order_id             uuid        PRIMARY KEY,
    customer_id          uuid        NOT NULL,
    status               text        NOT NULL
        CHECK (status IN ('DRAFT', 'PLACED', 'CONFIRMED', 'SHIPPED', 'COMPLETED', 'CANCELLED')),
    -- every line is priced in this currency (enforced by order_lines' foreign key on it)
    currency             text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- sum of the line totals, kept with the order for listing
    total_minor          bigint      NOT NULL DEFAULT 0 CHECK (total_minor >= 0),
    -- copied from customer_replica when the order is placed
    ship_recipient       text,
    ship_line1           text,
    ship_line2           text,
    ship_city            text,
    ship_region          text,
    ship_postal_code     text,
    ship_country         text        CHECK (ship_country ~ '^[A-Z]{2}$'),
    payment_id           uuid,
    shipment_id          uuid,
    carrier              text,
    tracking_number      text,
    cancel_reason        text
        CHECK (cancel_reason IN ('OUT_OF_STOCK', 'PAYMENT_DECLINED', 'CUSTOMER_REQUEST', 'CUSTOMER_DEACTIVATED', 'OTHER')),
    cancel_detail        text,
    cancelled_from       text        CHECK (cancelled_from IN ('DRAFT', 'PLACED', 'CONFIRMED')),
    created_at           timestamptz NOT NULL,
    placed_at            timestamptz,
    confirmed_at         timestamptz,
    shipped_at           timestamptz,
    completed_at         timestamptz,
    cancelled_at         timestamptz,
    UNIQUE (order_id, currency),
    -- The timeline: a state's timestamp is set exactly when the order reached that state.
    CONSTRAINT placed_when_past_draft CHECK ((placed_at IS NOT NULL) = (
        status IN ('PLACED', 'CONFIRMED', 'SHIPPED', 'COMPLETED')
        OR (status = 'CANCELLED' AND cancelled_from IN ('PLACED', 'CONFIRMED')))),
    CONSTRAINT confirmed_when_past_placed CHECK ((confirmed_at IS NOT NULL) = (
        status IN ('CONFIRMED', 'SHIPPED', 'COMPLETED')
        OR (status = 'CANCELLED' AND cancelled_from = 'CONFIRMED'))),
    CONSTRAINT shipped_when_past_confirmed CHECK ((shipped_at IS NOT NULL) = (status IN ('SHIPPED', 'COMPLETED'))),
    CONSTRAINT completed_when_completed CHECK ((completed_at IS NOT NULL) = (status = 'COMPLETED')),
    -- A cancelled order, and only one, says when, why and from where.
    CONSTRAINT cancellation_when_cancelled CHECK (
        (status = 'CANCELLED') = (cancelled_at IS NOT NULL)
        AND (status = 'CANCELLED') = (cancel_reason IS NOT NULL)
        AND (status = 'CANCELLED') = (cancel_detail IS NOT NULL)
        AND (status = 'CANCELLED') = (cancelled_from IS NOT NULL)),
    -- The shipping address is there from placing on, whole.
    CONSTRAINT address_when_placed CHECK (
        (placed_at IS NOT NULL) = (ship_recipient IS NOT NULL)
        AND (ship_recipient IS NULL) = (ship_line1 IS NULL)
        AND (ship_recipient IS NULL) = (ship_city IS NULL)
        AND (ship_recipient IS NULL) = (ship_postal_code IS NULL)
        AND (ship_recipient IS NULL) = (ship_country IS NULL)
        AND (ship_recipient IS NOT NULL OR (ship_line2 IS NULL AND ship_region IS NULL))),
    -- The payment exactly when confirmed; the shipment, carrier and tracking number exactly when shipped.
    CONSTRAINT payment_when_confirmed CHECK ((payment_id IS NOT NULL) = (confirmed_at IS NOT NULL)),
    CONSTRAINT shipment_when_shipped CHECK (
        (shipment_id IS NOT NULL) = (shipped_at IS NOT NULL)
        AND (carrier IS NOT NULL) = (shipped_at IS NOT NULL)
        AND (tracking_number IS NOT NULL) = (shipped_at IS NOT NULL))
);

-- The list endpoint filters on status, customer and creation time, newest first; the keyset pagination
-- orders by (created_at, order_id).
CREATE INDEX orders_by_created ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_by_status ON orders (status, created_at DESC, order_id DESC);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC, order_id DESC);

-- One line per SKU of an order, priced in the order's currency when it was first added.
CREATE TABLE order_lines (
    order_id             uuid        NOT NULL,
    sku                  text        NOT NULL CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    product_name         text        NOT NULL,
    quantity             integer     NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_minor     bigint      NOT NULL CHECK (unit_price_minor >= 0),
    currency             text        NOT NULL,
    added_at             timestamptz NOT NULL,
    -- the order in which lines were first added, for listing them in that order
    line_seq             bigint      GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (order_id, sku),
    -- a line's currency is its order's currency
    FOREIGN KEY (order_id, currency) REFERENCES orders (order_id, currency) ON DELETE CASCADE
);
