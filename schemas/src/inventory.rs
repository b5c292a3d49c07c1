//! Events of the inventory aggregate, published on `inventory.events` (`avro/inventory/*.avsc`):
//! the product catalogue and its stock, and the reservations made for orders.

use serde::{Deserialize, Serialize};

use crate::event::{impl_event, topic_events};
use crate::ids::{CustomerId, EventId, OrderId, Sku};
use crate::money::Money;
use crate::quantity::{Quantity, StockLevel};
use crate::time::Timestamp;

/// A quantity of one product (`orderflow.inventory.StockLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLine {
    /// The product.
    pub sku: Sku,
    /// Units.
    pub quantity: Quantity,
}

/// A product an order asked more of than was available (`orderflow.inventory.StockShortage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockShortage {
    /// The product.
    pub sku: Sku,
    /// Units asked for.
    pub requested: Quantity,
    /// Units that were available (less than requested).
    pub available: StockLevel,
}

/// A product was added to the catalogue (`orderflow.inventory.ProductCreated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCreated {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The product (Kafka key).
    pub sku: Sku,
    /// Display name.
    pub name: String,
    /// Longer description, if any.
    pub description: Option<String>,
    /// List price of one unit.
    pub unit_price: Money,
    /// Units in stock.
    pub on_hand: StockLevel,
}
impl_event!(ProductCreated, "inventory", key = |e| e.sku);

/// Units of a product arrived (`orderflow.inventory.ProductRestocked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRestocked {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The product (Kafka key).
    pub sku: Sku,
    /// Units added.
    pub quantity_added: Quantity,
    /// Units in stock afterwards.
    pub on_hand_after: StockLevel,
}
impl_event!(ProductRestocked, "inventory", key = |e| e.sku);

/// Every line of an order was reserved (`orderflow.inventory.StockReserved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// The order's customer (copied from OrderPlaced).
    pub customer_id: CustomerId,
    /// What was reserved.
    pub lines: Vec<StockLine>,
    /// The order total payments must charge (copied from OrderPlaced).
    pub amount_to_charge: Money,
}
impl_event!(StockReserved, "inventory", key = |e| e.order_id);

/// An order could not be reserved in full, so nothing was (`orderflow.inventory.StockRejected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRejected {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Every line that was short.
    pub shortages: Vec<StockShortage>,
}
impl_event!(StockRejected, "inventory", key = |e| e.order_id);

/// A reservation was released after its order was cancelled (`orderflow.inventory.StockReleased`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleased {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// What was released.
    pub lines: Vec<StockLine>,
}
impl_event!(StockReleased, "inventory", key = |e| e.order_id);

/// A reservation was committed when its shipment was dispatched (`orderflow.inventory.StockCommitted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCommitted {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// What was committed.
    pub lines: Vec<StockLine>,
}
impl_event!(StockCommitted, "inventory", key = |e| e.order_id);

topic_events!(
    /// Every event published on `inventory.events`.
    InventoryEvent,
    "inventory",
    [
        ProductCreated,
        ProductRestocked,
        StockReserved,
        StockRejected,
        StockReleased,
        StockCommitted
    ]
);
