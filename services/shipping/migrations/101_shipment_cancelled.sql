-- A shipment can be cancelled before it is dispatched (CREATED -> CANCELLED), when its order's
-- cancellation is requested: the status gains CANCELLED and the shipment its cancellation time, and
-- the CHECKs that tie the dispatch columns to the status treat CANCELLED like CREATED (never
-- dispatched). The CHECKs of 100_shipping.sql were unnamed, so they are found by what they say.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'shipments'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%CREATED%'
    LOOP
        EXECUTE format('ALTER TABLE shipments DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;

ALTER TABLE shipments
    ADD COLUMN cancelled_at timestamptz,
    ADD CONSTRAINT shipments_status_known
        CHECK (status IN ('CREATED', 'DISPATCHED', 'DELIVERED', 'CANCELLED')),
    ADD CONSTRAINT shipments_carrier_once_dispatched
        CHECK ((status IN ('CREATED', 'CANCELLED')) = (carrier IS NULL)),
    ADD CONSTRAINT shipments_tracking_once_dispatched
        CHECK ((status IN ('CREATED', 'CANCELLED')) = (tracking_number IS NULL)),
    ADD CONSTRAINT shipments_dispatched_at_once_dispatched
        CHECK ((status IN ('CREATED', 'CANCELLED')) = (dispatched_at IS NULL)),
    ADD CONSTRAINT shipments_cancelled_at_once_cancelled
        CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL));
