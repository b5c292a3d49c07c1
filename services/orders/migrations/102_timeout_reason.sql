-- A PLACED order that the saga does not confirm within its deadline is cancelled with reason
-- TIMEOUT (src/deadlines.rs). The index serves the deadline sweep and `orderflow orders stuck`.
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_cancel_reason_check;
ALTER TABLE orders ADD CONSTRAINT orders_cancel_reason_check
    CHECK (cancel_reason IN ('OUT_OF_STOCK', 'PAYMENT_DECLINED', 'CUSTOMER_REQUEST', 'CUSTOMER_DEACTIVATED', 'TIMEOUT', 'OTHER'));
CREATE INDEX orders_waiting ON orders (status, placed_at) WHERE status IN ('PLACED', 'CONFIRMED', 'SHIPPED');
