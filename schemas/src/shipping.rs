//! Events of the shipping aggregate, published on `shipping.events` (`avro/shipping/*.avsc`):
//! a shipment is created for a confirmed order, dispatched with a carrier, and delivered, or
//! cancelled before dispatch.

use serde::{Deserialize, Serialize};

use crate::contact::Address;
use crate::event::{impl_event, topic_events};
use crate::ids::{EventId, OrderId, ShipmentId};
use crate::time::Timestamp;

/// A shipment was created for a confirmed order (`orderflow.shipping.ShipmentCreated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCreated {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Where it goes.
    pub address: Address,
}
impl_event!(ShipmentCreated, "shipping", key = |e| e.order_id);

/// The shipment left with a carrier (`orderflow.shipping.ShipmentDispatched`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDispatched {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Carrier.
    pub carrier: String,
    /// Carrier's tracking number.
    pub tracking_number: String,
}
impl_event!(ShipmentDispatched, "shipping", key = |e| e.order_id);

/// The carrier delivered the shipment (`orderflow.shipping.ShipmentDelivered`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDelivered {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
}
impl_event!(ShipmentDelivered, "shipping", key = |e| e.order_id);

/// A shipment not yet dispatched was cancelled, its order's cancellation having been requested
/// (`orderflow.shipping.ShipmentCancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCancelled {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
}
impl_event!(ShipmentCancelled, "shipping", key = |e| e.order_id);

topic_events!(
    /// Every event published on `shipping.events`.
    ShippingEvent,
    "shipping",
    [
        ShipmentCreated,
        ShipmentDispatched,
        ShipmentDelivered,
        ShipmentCancelled
    ]
);
