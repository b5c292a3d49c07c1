-- The shipping service's tables: one shipment per confirmed order, with a snapshot of where it goes
-- and what is in it (both copied from OrderConfirmed), and its progress CREATED -> DISPATCHED ->
-- DELIVERED. The CHECKs keep the dispatch and delivery columns in step with the status.
CREATE TABLE shipments (
    shipment_id     uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL UNIQUE,          -- one shipment per order
    customer_id     uuid        NOT NULL,
    recipient       text        NOT NULL,
    line1           text        NOT NULL,
    line2           text,
    city            text        NOT NULL,
    region          text,
    postal_code     text        NOT NULL,
    country         text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    status          text        NOT NULL CHECK (status IN ('CREATED', 'DISPATCHED', 'DELIVERED')),
    carrier         text,
    tracking_number text,
    created_at      timestamptz NOT NULL,
    dispatched_at   timestamptz,
    delivered_at    timestamptz,
    updated_at      timestamptz NOT NULL,
    CHECK ((status = 'CREATED') = (carrier IS NULL)),
    CHECK ((status = 'CREATED') = (tracking_number IS NULL)),
    CHECK ((status = 'CREATED') = (dispatched_at IS NULL)),
    CHECK ((status = 'DELIVERED') = (delivered_at IS NOT NULL))
);
CREATE INDEX shipments_customer ON shipments (customer_id);

CREATE TABLE shipment_lines (
    shipment_id uuid    NOT NULL REFERENCES shipments (shipment_id),
    line_no     integer NOT NULL CHECK (line_no >= 0),
    sku         text    NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, line_no)
);
