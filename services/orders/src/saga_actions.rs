//! What the saga does to an order, called by the stream-worker reactions (issue 5) on their own
//! transaction (the one that also records the event in their inbox): confirm on `PaymentSucceeded`,
//! cancel on `StockRejected` / `PaymentDeclined` / `ShipmentCancelled`, ship on `ShipmentDispatched`,
//! complete on `ShipmentDelivered`. Each writes the order and exactly one outbox event, guarded by the state
//! machine: a refused transition returns `OrderError::Refused` (permanent; see
//! `OrderError::is_refused_transition`) and writes nothing.

use orderflow_schemas::{OrderId, PaymentId, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::PgConnection;

use crate::customer_actions::lock_existing;
use crate::error::OrderError;
use crate::events::{self, append};
use crate::order::{Dispatch, Order, SagaCancellation};
use crate::store;

/// PLACED → CONFIRMED, paid by `payment_id` → `OrderConfirmed` (shipping reacts by creating a shipment).
pub async fn confirm(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
    payment_id: PaymentId,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.confirm(payment_id, Timestamp::now())?;
    store::update_order(conn, &order).await?;
    append(conn, outbox, &events::order_confirmed(&order)?, trace).await?;
    Ok(order)
}

/// PLACED → CANCELLED because stock was rejected or the payment declined → `OrderCancelled` with the
/// matching reason, the full snapshot, and `cancelled_from` = PLACED.
pub async fn cancel_by_saga(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
    cause: &SagaCancellation,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.cancel_by_saga(cause, Timestamp::now())?;
    store::update_order(conn, &order).await?;
    append(conn, outbox, &events::order_cancelled(&order)?, trace).await?;
    Ok(order)
}

/// CONFIRMED → CANCELLED (reason CUSTOMER_REQUEST, `cancelled_from` CONFIRMED) because shipping
/// cancelled the shipment of an order whose cancellation was requested → `OrderCancelled`, on which
/// inventory releases the stock and payments refunds.
pub async fn cancel_after_shipment_cancelled(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.cancel_after_shipment_cancelled(Timestamp::now())?;
    store::update_order(conn, &order).await?;
    append(conn, outbox, &events::order_cancelled(&order)?, trace).await?;
    Ok(order)
}

/// CONFIRMED → SHIPPED (`shipped_at` is when the shipment was dispatched) → `OrderShipped`.
pub async fn mark_shipped(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
    dispatch: &Dispatch,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.ship(dispatch)?;
    store::update_order(conn, &order).await?;
    append(
        conn,
        outbox,
        &events::order_shipped(&order, Timestamp::now())?,
        trace,
    )
    .await?;
    Ok(order)
}

/// SHIPPED → COMPLETED → `OrderCompleted` with the full snapshot.
pub async fn complete(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.complete(Timestamp::now())?;
    store::update_order(conn, &order).await?;
    append(conn, outbox, &events::order_completed(&order)?, trace).await?;
    Ok(order)
}
