//! The events orders publishes, built from the order as it stands after a change (pure), and the one
//! way they are written: [`append`], to the outbox on the caller's transaction.

use orderflow_schemas::orders::{
    OrderCancellationRequested, OrderCancelled, OrderCompleted, OrderConfirmed, OrderCreated,
    OrderLineAdded, OrderLineRemoved, OrderPlaced, OrderShipped,
};
use orderflow_schemas::{Event, EventId, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::PgConnection;

use crate::error::OrderError;
use crate::order::{Line, Order};
use crate::replicas::decode_error;

/// Encode `event` through the registry and insert it into the outbox on the caller's transaction.
pub async fn append<E: Event>(
    conn: &mut PgConnection,
    outbox: &Outbox,
    event: &E,
    trace: &TraceContext,
) -> Result<(), OrderError> {
    outbox
        .append(conn, event, trace)
        .await
        .map(|_| ())
        .map_err(OrderError::Outbox)
}

/// A stored order lacks what its status promises (the CHECK constraints make this unreachable).
fn inconsistent(order: &Order, what: &str) -> OrderError {
    OrderError::Database(decode_error(format!(
        "order {} is {:?} but has no {what}",
        order.order_id, order.status
    )))
}

pub fn order_created(order: &Order) -> OrderCreated {
    OrderCreated {
        event_id: EventId::new_v7(),
        occurred_at: order.timeline.created_at,
        order_id: order.order_id,
        customer_id: order.customer_id,
        currency: order.currency,
    }
}

pub fn order_line_added(
    order: &Order,
    line: &Line,
    quantity_added: orderflow_schemas::Quantity,
    now: Timestamp,
) -> OrderLineAdded {
    OrderLineAdded {
        event_id: EventId::new_v7(),
        occurred_at: now,
        order_id: order.order_id,
        line: line.to_order_line(),
        quantity_added,
        total: order.total,
    }
}

pub fn order_line_removed(order: &Order, removed: &Line, now: Timestamp) -> OrderLineRemoved {
    OrderLineRemoved {
        event_id: EventId::new_v7(),
        occurred_at: now,
        order_id: order.order_id,
        sku: removed.sku.clone(),
        total: order.total,
    }
}

pub fn order_placed(order: &Order) -> Result<OrderPlaced, OrderError> {
    let placed_at = order
        .timeline
        .placed_at
        .ok_or_else(|| inconsistent(order, "placed_at"))?;
    Ok(OrderPlaced {
        event_id: EventId::new_v7(),
        occurred_at: placed_at,
        order_id: order.order_id,
        customer_id: order.customer_id,
        lines: order.order_lines(),
        total: order.total,
        shipping_address: order
            .shipping_address
            .clone()
            .ok_or_else(|| inconsistent(order, "shipping address"))?,
        created_at: order.timeline.created_at,
        placed_at,
    })
}

pub fn order_confirmed(order: &Order) -> Result<OrderConfirmed, OrderError> {
    let confirmed_at = order
        .timeline
        .confirmed_at
        .ok_or_else(|| inconsistent(order, "confirmed_at"))?;
    Ok(OrderConfirmed {
        event_id: EventId::new_v7(),
        occurred_at: confirmed_at,
        order_id: order.order_id,
        customer_id: order.customer_id,
        payment_id: order
            .payment_id
            .ok_or_else(|| inconsistent(order, "payment"))?,
        lines: order.order_lines(),
        total: order.total,
        shipping_address: order
            .shipping_address
            .clone()
            .ok_or_else(|| inconsistent(order, "shipping address"))?,
        confirmed_at,
    })
}

pub fn order_shipped(order: &Order, now: Timestamp) -> Result<OrderShipped, OrderError> {
    Ok(OrderShipped {
        event_id: EventId::new_v7(),
        occurred_at: now,
        order_id: order.order_id,
        shipment_id: order
            .shipment_id
            .ok_or_else(|| inconsistent(order, "shipment"))?,
        carrier: order
            .carrier
            .clone()
            .ok_or_else(|| inconsistent(order, "carrier"))?,
        tracking_number: order
            .tracking_number
            .clone()
            .ok_or_else(|| inconsistent(order, "tracking number"))?,
        shipped_at: order
            .timeline
            .shipped_at
            .ok_or_else(|| inconsistent(order, "shipped_at"))?,
    })
}

pub fn order_completed(order: &Order) -> Result<OrderCompleted, OrderError> {
    Ok(OrderCompleted {
        event_id: EventId::new_v7(),
        occurred_at: order
            .timeline
            .completed_at
            .ok_or_else(|| inconsistent(order, "completed_at"))?,
        order: order.snapshot(),
    })
}

pub fn order_cancelled(order: &Order) -> Result<OrderCancelled, OrderError> {
    let cancellation = order
        .cancellation
        .as_ref()
        .ok_or_else(|| inconsistent(order, "cancellation"))?;
    Ok(OrderCancelled {
        event_id: EventId::new_v7(),
        occurred_at: order
            .timeline
            .cancelled_at
            .ok_or_else(|| inconsistent(order, "cancelled_at"))?,
        reason: cancellation.reason,
        detail: cancellation.detail.clone(),
        cancelled_from: cancellation.cancelled_from,
        order: order.snapshot(),
    })
}

pub fn order_cancellation_requested(
    order: &Order,
) -> Result<OrderCancellationRequested, OrderError> {
    let request = order
        .cancellation_request
        .as_ref()
        .ok_or_else(|| inconsistent(order, "cancellation_request"))?;
    Ok(OrderCancellationRequested {
        event_id: EventId::new_v7(),
        occurred_at: request.requested_at,
        order_id: order.order_id,
        customer_id: order.customer_id,
        detail: request.detail.clone(),
    })
}
