-- A CONFIRMED order is not cancelled at once: the customer's request is recorded (and sent as
-- OrderCancellationRequested), and the order is cancelled only once shipping has cancelled its
-- shipment; if the shipment left first, the order ships and the request stays as a record.
ALTER TABLE orders
    ADD COLUMN cancel_requested_at   timestamptz,
    ADD COLUMN cancel_request_detail text,
    ADD CONSTRAINT orders_cancel_request_whole
        CHECK ((cancel_requested_at IS NULL) = (cancel_request_detail IS NULL)),
    ADD CONSTRAINT orders_cancel_request_once_confirmed
        CHECK (cancel_requested_at IS NULL OR confirmed_at IS NOT NULL);
