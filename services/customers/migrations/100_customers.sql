-- The customers: who may order, how to reach them, and where their parcels go by default.
-- E-mail addresses are unique regardless of case; a deactivated customer keeps its row (orders refer
-- to it) with the reason and the moment.
CREATE TABLE customers (
    id                  uuid        PRIMARY KEY,
    name                text        NOT NULL CHECK (length(btrim(name)) > 0),
    email               text        NOT NULL,
    phone               text        CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    ship_recipient      text        NOT NULL,
    ship_line1          text        NOT NULL,
    ship_line2          text,
    ship_city           text        NOT NULL,
    ship_region         text,
    ship_postal_code    text        NOT NULL,
    ship_country        char(2)     NOT NULL CHECK (ship_country ~ '^[A-Z]{2}$'),
    status              text        NOT NULL CHECK (status IN ('ACTIVE', 'DEACTIVATED')),
    deactivation_reason text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deactivated_at      timestamptz,
    CONSTRAINT customers_deactivated_at_iff_deactivated
        CHECK ((status = 'DEACTIVATED') = (deactivated_at IS NOT NULL))
);
CREATE UNIQUE INDEX customers_email_unique ON customers (lower(email));
CREATE INDEX customers_created ON customers (created_at, id);
