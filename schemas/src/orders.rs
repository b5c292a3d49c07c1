//! Events of the orders aggregate, published on `orders.events` (`avro/orders/*.avsc`): a draft
//! is created and its lines edited, then the order is placed, confirmed, shipped, and ends
//! completed or cancelled. The terminal events carry a full [`OrderSnapshot`] so that the
//! analytics sink needs nothing else.

use serde::{Deserialize, Serialize};

use crate::contact::Address;
use crate::event::{impl_event, topic_events};
use crate::ids::{CustomerId, EventId, OrderId, PaymentId, ShipmentId, Sku};
use crate::money::{Currency, Money};
use crate::quantity::Quantity;
use crate::time::Timestamp;

/// One line of an order (`orderflow.orders.OrderLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product.
    pub sku: Sku,
    /// Units ordered.
    pub quantity: Quantity,
    /// Price of one unit when the order was placed.
    pub unit_price: Money,
}

impl OrderLine {
    /// `quantity` times `unit_price`, or `None` on overflow.
    pub fn line_total(&self) -> Option<Money> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// The lifecycle state of an order (`orderflow.orders.OrderStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Being edited; lines may change.
    Draft,
    /// Submitted; waiting for stock and payment.
    Placed,
    /// Stock reserved and payment taken.
    Confirmed,
    /// Handed to the carrier.
    Shipped,
    /// Delivered (terminal).
    Completed,
    /// Stopped, every step taken compensated (terminal).
    Cancelled,
}

/// Why an order was cancelled (`orderflow.orders.CancellationReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancellationReason {
    /// Inventory could not reserve every line.
    OutOfStock,
    /// The payment gateway refused the charge.
    PaymentDeclined,
    /// The customer cancelled before shipping.
    CustomerRequest,
    /// The customer's account was deactivated while the order was open.
    CustomerDeactivated,
    /// The saga did not confirm the order within its deadline.
    Timeout,
    /// Anything else (see the detail text); also what an unknown newer reason reads as.
    Other,
}

/// When the order entered each state (`orderflow.orders.OrderTimeline`); `None` for states it never reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTimeline {
    /// Created as a draft.
    pub created_at: Timestamp,
    /// Placed.
    pub placed_at: Option<Timestamp>,
    /// Confirmed.
    pub confirmed_at: Option<Timestamp>,
    /// Shipped.
    pub shipped_at: Option<Timestamp>,
    /// Completed (delivered).
    pub completed_at: Option<Timestamp>,
    /// Cancelled.
    pub cancelled_at: Option<Timestamp>,
}

/// The complete state of an order when it reached a terminal state (`orderflow.orders.OrderSnapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    /// The order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// Final status: `Completed` or `Cancelled`.
    pub status: OrderStatus,
    /// Lines as last placed.
    pub lines: Vec<OrderLine>,
    /// Sum of the line totals.
    pub total: Money,
    /// Where it was (or would have been) shipped; `None` for a draft.
    pub shipping_address: Option<Address>,
    /// The successful payment, if it was charged.
    pub payment_id: Option<PaymentId>,
    /// The shipment, if one was created.
    pub shipment_id: Option<ShipmentId>,
    /// The carrier, if dispatched.
    pub carrier: Option<String>,
    /// The carrier's tracking number, if dispatched.
    pub tracking_number: Option<String>,
    /// When it entered each state.
    pub timeline: OrderTimeline,
}

/// A customer started a new, empty DRAFT order (`orderflow.orders.OrderCreated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The customer who owns it.
    pub customer_id: CustomerId,
    /// The order's currency: every line is priced in it.
    pub currency: Currency,
}
impl_event!(OrderCreated, "orders", key = |e| e.order_id);

/// Units of a product were added to a draft order (`orderflow.orders.OrderLineAdded`). Adding a
/// SKU the order already has grows that line, so `line` is the line after the addition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineAdded {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The order's line for this SKU after the addition.
    pub line: OrderLine,
    /// Units this addition put on the line (`line.quantity` when the line is new).
    pub quantity_added: Quantity,
    /// The order's new total.
    pub total: Money,
}
impl_event!(OrderLineAdded, "orders", key = |e| e.order_id);

/// A product's line was removed from a draft order (`orderflow.orders.OrderLineRemoved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineRemoved {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The product whose line was removed.
    pub sku: Sku,
    /// The order's new total (zero when no line is left).
    pub total: Money,
}
impl_event!(OrderLineRemoved, "orders", key = |e| e.order_id);

/// A draft order was placed; starts the saga (`orderflow.orders.OrderPlaced`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The customer placing it.
    pub customer_id: CustomerId,
    /// At least one line, one per SKU.
    pub lines: Vec<OrderLine>,
    /// Sum of the line totals.
    pub total: Money,
    /// Where to ship it.
    pub shipping_address: Address,
    /// When the draft was created.
    pub created_at: Timestamp,
    /// When it was placed.
    pub placed_at: Timestamp,
}
impl_event!(OrderPlaced, "orders", key = |e| e.order_id);

/// Stock reserved and payment taken (`orderflow.orders.OrderConfirmed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// The payment that confirmed it.
    pub payment_id: PaymentId,
    /// Lines to ship.
    pub lines: Vec<OrderLine>,
    /// Amount charged.
    pub total: Money,
    /// Where to ship it.
    pub shipping_address: Address,
    /// When it was confirmed.
    pub confirmed_at: Timestamp,
}
impl_event!(OrderConfirmed, "orders", key = |e| e.order_id);

/// The order's shipment was dispatched (`orderflow.orders.OrderShipped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The dispatched shipment.
    pub shipment_id: ShipmentId,
    /// Carrier.
    pub carrier: String,
    /// Carrier's tracking number.
    pub tracking_number: String,
    /// When it was shipped.
    pub shipped_at: Timestamp,
}
impl_event!(OrderShipped, "orders", key = |e| e.order_id);

/// The order was delivered; terminal (`orderflow.orders.OrderCompleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCompleted {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The completed order; its `order_id` is the Kafka key.
    pub order: OrderSnapshot,
}
impl_event!(OrderCompleted, "orders", key = |e| e.order.order_id);

/// The order was cancelled; terminal (`orderflow.orders.OrderCancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Why, as a code.
    pub reason: CancellationReason,
    /// Why, in words (may be empty).
    pub detail: String,
    /// Status it was cancelled from: tells which steps need compensation.
    pub cancelled_from: OrderStatus,
    /// The cancelled order; its `order_id` is the Kafka key.
    pub order: OrderSnapshot,
}
impl_event!(OrderCancelled, "orders", key = |e| e.order.order_id);

/// The customer asked to cancel a CONFIRMED order, which stays CONFIRMED until shipping has
/// answered (`orderflow.orders.OrderCancellationRequested`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancellationRequested {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The customer who owns it.
    pub customer_id: CustomerId,
    /// Why, in the customer's words (may be empty).
    pub detail: String,
}
impl_event!(OrderCancellationRequested, "orders", key = |e| e.order_id);

topic_events!(
    /// Every event published on `orders.events`.
    OrdersEvent,
    "orders",
    [
        OrderCreated,
        OrderLineAdded,
        OrderLineRemoved,
        OrderPlaced,
        OrderConfirmed,
        OrderShipped,
        OrderCompleted,
        OrderCancelled,
        OrderCancellationRequested
    ]
);
