//! The shipping steps, as functions on a caller's transaction: `create_shipment` (the saga reaction
//! to `OrderConfirmed`), `cancel_for_order` (the saga reaction to `OrderCancellationRequested`), and
//! `dispatch` and `deliver` (shared by the HTTP handlers and a simulated carrier).
//!
//! Shipping decides whether a confirmed order can still be cancelled: `cancel_for_order` and
//! `dispatch` both lock the shipment row, and the state machine lets a CREATED shipment become either
//! DISPATCHED or CANCELLED, never both. So every shipment ends with exactly one of
//! `ShipmentDispatched` (the goods left: the order ships, nothing is refunded) and
//! `ShipmentCancelled` (the order is cancelled, its stock released and its payment refunded). Each writes its rows and exactly one outbox event, or nothing: a second
//! `create_shipment` for an order finds the first shipment, and a transition the state machine
//! refuses is an error. The caller commits.

use orderflow_schemas::orders::{OrderCancellationRequested, OrderConfirmed};
use orderflow_schemas::shipping::{
    ShipmentCancelled, ShipmentCreated, ShipmentDelivered, ShipmentDispatched,
};
use orderflow_schemas::{EventId, ShipmentId, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::PgConnection;

use crate::domain::{
    Dispatch, DispatchDetails, Shipment, ShipmentAction, ShipmentLine, ShipmentStatus,
};
use crate::error::ShippingError;
use crate::store;

/// What `create_shipment` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The shipment and `ShipmentCreated` were written.
    Created(Shipment),
    /// The order already had a shipment: nothing was written.
    AlreadyExists(Shipment),
}

impl CreateOutcome {
    pub fn shipment(&self) -> &Shipment {
        match self {
            Self::Created(shipment) | Self::AlreadyExists(shipment) => shipment,
        }
    }
}

/// Create the shipment of a confirmed order, to its shipping address with its lines, once: if the
/// order already has one, return it and write nothing.
#[tracing::instrument(skip(conn, outbox, confirmed), fields(order_id = %confirmed.order_id))]
pub async fn create_shipment(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    confirmed: &OrderConfirmed,
) -> Result<CreateOutcome, ShippingError> {
    if let Some(existing) = store::shipment_for_order(conn, confirmed.order_id).await? {
        return Ok(CreateOutcome::AlreadyExists(existing));
    }
    let now = Timestamp::now();
    let shipment = Shipment {
        shipment_id: ShipmentId::new_v7(),
        order_id: confirmed.order_id,
        customer_id: confirmed.customer_id,
        address: confirmed.shipping_address.clone(),
        lines: confirmed
            .lines
            .iter()
            .map(|line| ShipmentLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
            })
            .collect(),
        status: ShipmentStatus::Created,
        dispatch: None,
        delivered_at: None,
        cancelled_at: None,
        created_at: now,
        updated_at: now,
    };
    if !store::insert_shipment_if_absent(conn, &shipment).await? {
        // a concurrent create for the same order committed first
        let existing = store::shipment_for_order(conn, confirmed.order_id)
            .await?
            .ok_or_else(|| {
                ShippingError::Corrupt(format!(
                    "the shipment of order {} that won the race is gone",
                    confirmed.order_id
                ))
            })?;
        return Ok(CreateOutcome::AlreadyExists(existing));
    }
    let event = ShipmentCreated {
        event_id: EventId::new_v7(),
        occurred_at: now,
        shipment_id: shipment.shipment_id,
        order_id: shipment.order_id,
        address: shipment.address.clone(),
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(ShippingError::outbox)?;
    tracing::info!(shipment_id = %shipment.shipment_id, "shipment created");
    Ok(CreateOutcome::Created(shipment))
}

/// What `cancel_for_order` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The shipment was CREATED: now CANCELLED, with `ShipmentCancelled`.
    Cancelled(Shipment),
    /// It was cancelled before (a repeated request): nothing was written.
    AlreadyCancelled(Shipment),
    /// It was dispatched first: nothing was written. Its `ShipmentDispatched`, committed before,
    /// tells orders that the order ships after all.
    TooLate(Shipment),
}

/// Cancel the shipment of an order whose cancellation was requested, if it has not left yet.
#[tracing::instrument(skip(conn, outbox, request), fields(order_id = %request.order_id))]
pub async fn cancel_for_order(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    request: &OrderCancellationRequested,
) -> Result<CancelOutcome, ShippingError> {
    let mut shipment = store::lock_shipment_for_order(conn, request.order_id)
        .await?
        .ok_or(ShippingError::NoShipmentForOrder(request.order_id))?;
    match shipment.status {
        ShipmentStatus::Cancelled => return Ok(CancelOutcome::AlreadyCancelled(shipment)),
        ShipmentStatus::Dispatched | ShipmentStatus::Delivered => {
            tracing::info!(shipment_id = %shipment.shipment_id, status = %shipment.status, "cancellation requested too late: the shipment has left");
            return Ok(CancelOutcome::TooLate(shipment));
        }
        ShipmentStatus::Created => {}
    }
    let shipment_id = shipment.shipment_id;
    shipment.status = shipment
        .status
        .apply(ShipmentAction::Cancel)
        .map_err(|refused| ShippingError::Refused {
            shipment_id,
            refused,
        })?;
    let now = Timestamp::now();
    shipment.updated_at = now;
    shipment.cancelled_at = Some(now);
    store::update_progress(conn, &shipment).await?;
    let event = ShipmentCancelled {
        event_id: EventId::new_v7(),
        occurred_at: now,
        shipment_id: shipment.shipment_id,
        order_id: shipment.order_id,
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(ShippingError::outbox)?;
    tracing::info!(shipment_id = %shipment.shipment_id, "shipment cancelled");
    Ok(CancelOutcome::Cancelled(shipment))
}

/// Lock a shipment and move it through the state machine; the caller sets the rest and writes.
async fn transition(
    conn: &mut PgConnection,
    shipment_id: ShipmentId,
    action: ShipmentAction,
) -> Result<(Shipment, Timestamp), ShippingError> {
    let mut shipment = store::shipment(conn, shipment_id, true)
        .await?
        .ok_or(ShippingError::NotFound(shipment_id))?;
    shipment.status = shipment
        .status
        .apply(action)
        .map_err(|refused| ShippingError::Refused {
            shipment_id,
            refused,
        })?;
    let now = Timestamp::now();
    shipment.updated_at = now;
    Ok((shipment, now))
}

/// Hand a CREATED shipment to a carrier: DISPATCHED, with `ShipmentDispatched`.
#[tracing::instrument(skip(conn, outbox))]
pub async fn dispatch(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    shipment_id: ShipmentId,
    details: DispatchDetails,
) -> Result<Shipment, ShippingError> {
    let (mut shipment, now) = transition(conn, shipment_id, ShipmentAction::Dispatch).await?;
    shipment.dispatch = Some(Dispatch {
        carrier: details.carrier,
        tracking_number: details.tracking_number,
        dispatched_at: now,
    });
    store::update_progress(conn, &shipment).await?;
    let dispatch = shipment.dispatch.as_ref().expect("just set");
    let event = ShipmentDispatched {
        event_id: EventId::new_v7(),
        occurred_at: now,
        shipment_id,
        order_id: shipment.order_id,
        carrier: dispatch.carrier.to_string(),
        tracking_number: dispatch.tracking_number.to_string(),
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(ShippingError::outbox)?;
    tracing::info!(order_id = %shipment.order_id, "shipment dispatched");
    Ok(shipment)
}

/// Record that the carrier delivered a DISPATCHED shipment: DELIVERED, with `ShipmentDelivered`.
#[tracing::instrument(skip(conn, outbox))]
pub async fn deliver(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    shipment_id: ShipmentId,
) -> Result<Shipment, ShippingError> {
    let (mut shipment, now) = transition(conn, shipment_id, ShipmentAction::Deliver).await?;
    shipment.delivered_at = Some(now);
    store::update_progress(conn, &shipment).await?;
    let event = ShipmentDelivered {
        event_id: EventId::new_v7(),
        occurred_at: now,
        shipment_id,
        order_id: shipment.order_id,
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(ShippingError::outbox)?;
    tracing::info!(order_id = %shipment.order_id, "shipment delivered");
    Ok(shipment)
}
