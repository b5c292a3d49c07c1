-- Orders cancelled before inventory decided them. OrderPlaced and OrderCancelled of one order share
-- a partition, but an OrderPlaced can still come after its cancellation: a dead letter redriven (or
-- a stray copy) after the order moved on. The cancellation records the decision CANCELLED, so the
-- late OrderPlaced finds the order decided and reserves nothing (payments has the same guard,
-- cancelled_before_charge). The customer is not known to a cancellation of an undecided order.
ALTER TABLE stock_decisions DROP CONSTRAINT stock_decisions_outcome_check;
ALTER TABLE stock_decisions ADD CONSTRAINT stock_decisions_outcome_check
    CHECK (outcome IN ('RESERVED', 'REJECTED', 'CANCELLED'));
ALTER TABLE stock_decisions ALTER COLUMN customer_id DROP NOT NULL;
ALTER TABLE stock_decisions ADD CONSTRAINT stock_decisions_customer_known
    CHECK (customer_id IS NOT NULL OR outcome = 'CANCELLED');
