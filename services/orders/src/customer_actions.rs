//! What a customer does to an order over HTTP: create a draft, add and remove lines, place it, cancel
//! it. Each function runs on the caller's transaction, writes the business rows and exactly one outbox
//! event, and leaves committing to the caller; on error the caller drops the transaction and nothing
//! is written. The order row is locked first, so concurrent requests on one order queue up.

use orderflow_schemas::orders::OrderStatus;
use orderflow_schemas::{Currency, CustomerId, OrderId, Sku, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::PgConnection;

use crate::error::OrderError;
use crate::events::{self, append};
use crate::order::{CancelDetail, LineQuantity, Order};
use crate::replicas::{self, Customer};
use crate::status::Action;
use crate::store;

/// The order, locked for the caller's transaction, or `OrderNotFound`.
pub(crate) async fn lock_existing(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Order, OrderError> {
    store::lock_order(conn, order_id)
        .await?
        .ok_or(OrderError::OrderNotFound(order_id))
}

/// The customer, if known and active.
async fn active_customer(
    conn: &mut PgConnection,
    customer_id: CustomerId,
) -> Result<Customer, OrderError> {
    match replicas::find_customer(conn, customer_id).await? {
        None => Err(OrderError::UnknownCustomer(customer_id)),
        Some(c) if !c.active => Err(OrderError::CustomerDeactivated(customer_id)),
        Some(c) => Ok(c),
    }
}

/// A new, empty DRAFT for an active customer, in `currency` → `OrderCreated`.
pub async fn create_order(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    customer_id: CustomerId,
    currency: Currency,
) -> Result<Order, OrderError> {
    active_customer(conn, customer_id).await?;
    let order = Order::new_draft(OrderId::new_v7(), customer_id, currency, Timestamp::now());
    store::insert_order(conn, &order).await?;
    append(conn, outbox, &events::order_created(&order), trace).await?;
    Ok(order)
}

/// Add `quantity` units of `sku` to a DRAFT → `OrderLineAdded` (carrying the line after the addition).
/// A new SKU becomes a line priced from the product replica now; a SKU the order already has grows its
/// line (at the price captured when it was first added), up to 1000 units.
pub async fn add_line(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
    sku: &Sku,
    quantity: LineQuantity,
    max_lines: usize,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.check(Action::EditLines)?;
    let product = replicas::find_product(conn, sku)
        .await?
        .ok_or_else(|| OrderError::UnknownSku(sku.clone()))?;
    let added = order.add_units(&product, quantity, max_lines)?;
    let now = Timestamp::now();
    store::upsert_line(conn, order_id, &added.line, now).await?;
    store::update_order(conn, &order).await?;
    let event = events::order_line_added(&order, &added.line, quantity.as_quantity(), now);
    append(conn, outbox, &event, trace).await?;
    Ok(order)
}

/// Remove the line for `sku` from a DRAFT → `OrderLineRemoved`.
pub async fn remove_line(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
    sku: &Sku,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    let removed = order.remove_line(sku)?;
    let now = Timestamp::now();
    store::delete_line(conn, order_id, &removed).await?;
    store::update_order(conn, &order).await?;
    append(
        conn,
        outbox,
        &events::order_line_removed(&order, &removed, now),
        trace,
    )
    .await?;
    Ok(order)
}

/// DRAFT → PLACED, shipping to the customer's address (the customer must still be active) →
/// `OrderPlaced`, which starts the saga.
pub async fn place(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
) -> Result<Order, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    order.check(Action::Place)?;
    if order.lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    let customer = active_customer(conn, order.customer_id).await?;
    order.place(customer.shipping_address, Timestamp::now())?;
    store::update_order(conn, &order).await?;
    append(conn, outbox, &events::order_placed(&order)?, trace).await?;
    Ok(order)
}

/// What a customer's cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// DRAFT or PLACED: CANCELLED now.
    Cancelled(Order),
    /// CONFIRMED: the request is recorded (now, or by an earlier call); the order is cancelled once
    /// shipping has cancelled its shipment, or ships if the shipment left first.
    Requested(Order),
}

/// The customer cancels.
/// - DRAFT or PLACED → CANCELLED with reason CUSTOMER_REQUEST → `OrderCancelled` (with the full
///   snapshot and the status it was cancelled from, which tells inventory and payments what to
///   compensate).
/// - CONFIRMED → the request is recorded → `OrderCancellationRequested`, once (a repeated request
///   writes nothing). Shipping answers with `ShipmentCancelled` (see `saga_actions`) unless the
///   shipment was dispatched first.
/// - SHIPPED or COMPLETED → refused: the goods have left (`AlreadyDispatched`).
pub async fn cancel_by_customer(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
    detail: &CancelDetail,
) -> Result<CancelOutcome, OrderError> {
    let mut order = lock_existing(conn, order_id).await?;
    match order.status {
        OrderStatus::Confirmed => {
            if order.request_cancel(detail, Timestamp::now())? {
                store::update_order(conn, &order).await?;
                append(
                    conn,
                    outbox,
                    &events::order_cancellation_requested(&order)?,
                    trace,
                )
                .await?;
            }
            Ok(CancelOutcome::Requested(order))
        }
        OrderStatus::Shipped | OrderStatus::Completed => Err(OrderError::AlreadyDispatched {
            order_id,
            carrier: order.carrier,
            tracking_number: order.tracking_number,
        }),
        _ => {
            order.cancel_by_customer(detail, Timestamp::now())?;
            store::update_order(conn, &order).await?;
            append(conn, outbox, &events::order_cancelled(&order)?, trace).await?;
            Ok(CancelOutcome::Cancelled(order))
        }
    }
}
