-- Orders cancelled before they were charged. Stock reservation and cancellation travel on different
-- topics, so payments can see an order's OrderCancelled before its StockReserved; the marker makes
-- the late StockReserved charge nothing instead of taking money for a cancelled order.
CREATE TABLE cancelled_before_charge (
    order_id     uuid        PRIMARY KEY,
    cancelled_at timestamptz NOT NULL DEFAULT now()
);
