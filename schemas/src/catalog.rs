//! The whole catalogue: [`AnyEvent`] (any event of any topic, decoded by full record name), the
//! list of every event schema ([`event_schemas`]) for registering them, and the topic names.

use apache_avro::schema::Schema;
use apache_avro::types::Value;

use crate::customers::CustomersEvent;
use crate::error::SchemaError;
use crate::event::EventSchema;
use crate::ids::EventId;
use crate::inventory::InventoryEvent;
use crate::orders::OrdersEvent;
use crate::payments::PaymentsEvent;
use crate::shipping::ShippingEvent;
use crate::time::Timestamp;

/// Every topic events are published on, in saga order.
pub const TOPICS: [&str; 5] = [
    OrdersEvent::TOPIC,
    InventoryEvent::TOPIC,
    PaymentsEvent::TOPIC,
    ShippingEvent::TOPIC,
    CustomersEvent::TOPIC,
];

const ALL: [&[EventSchema]; 5] = [
    OrdersEvent::SCHEMAS,
    InventoryEvent::SCHEMAS,
    PaymentsEvent::SCHEMAS,
    ShippingEvent::SCHEMAS,
    CustomersEvent::SCHEMAS,
];

/// Every event schema of every topic (topic, full record name, `.avsc` path and text, parsed
/// schema, registry subject), e.g. to register them all in the schema registry.
pub fn event_schemas() -> impl Iterator<Item = &'static EventSchema> {
    ALL.iter().flat_map(|schemas| schemas.iter())
}

/// The catalogue entry of the event with this full record name.
pub fn event_schema(name: &str) -> Option<&'static EventSchema> {
    event_schemas().find(|s| s.name == name)
}

/// Any orderflow event, grouped by topic: what a consumer gets when it decodes a message whose
/// type it only learns from the message (the full record name of the writer schema).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// An event of `orders.events`.
    Orders(OrdersEvent),
    /// An event of `inventory.events`.
    Inventory(InventoryEvent),
    /// An event of `payments.events`.
    Payments(PaymentsEvent),
    /// An event of `shipping.events`.
    Shipping(ShippingEvent),
    /// An event of `customers.events`.
    Customers(CustomersEvent),
}

macro_rules! each_topic {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            AnyEvent::Orders($e) => $body,
            AnyEvent::Inventory($e) => $body,
            AnyEvent::Payments($e) => $body,
            AnyEvent::Shipping($e) => $body,
            AnyEvent::Customers($e) => $body,
        }
    };
}

impl AnyEvent {
    /// Whether `name` is the full record name of an orderflow event.
    pub fn knows(name: &str) -> bool {
        event_schema(name).is_some()
    }

    /// Reads the event whose full record name is `name` from an Avro value (resolved against
    /// this crate's schema of that event, so values of an older compatible writer schema work).
    pub fn from_value(name: &str, value: Value) -> Result<AnyEvent, SchemaError> {
        if OrdersEvent::knows(name) {
            OrdersEvent::from_value(name, value).map(AnyEvent::Orders)
        } else if InventoryEvent::knows(name) {
            InventoryEvent::from_value(name, value).map(AnyEvent::Inventory)
        } else if PaymentsEvent::knows(name) {
            PaymentsEvent::from_value(name, value).map(AnyEvent::Payments)
        } else if ShippingEvent::knows(name) {
            ShippingEvent::from_value(name, value).map(AnyEvent::Shipping)
        } else if CustomersEvent::knows(name) {
            CustomersEvent::from_value(name, value).map(AnyEvent::Customers)
        } else {
            Err(SchemaError::UnknownEvent {
                name: name.to_owned(),
            })
        }
    }

    /// Reads the event whose full record name is `name` from a bare Avro datum written with
    /// this crate's schema of that event.
    pub fn from_datum(name: &str, bytes: &[u8]) -> Result<AnyEvent, SchemaError> {
        let entry = event_schema(name).ok_or_else(|| SchemaError::UnknownEvent {
            name: name.to_owned(),
        })?;
        let value = crate::event::read_datum(entry.schema(), bytes, entry.name)?;
        AnyEvent::from_value(name, value)
    }

    /// The topic the event is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            AnyEvent::Orders(_) => OrdersEvent::TOPIC,
            AnyEvent::Inventory(_) => InventoryEvent::TOPIC,
            AnyEvent::Payments(_) => PaymentsEvent::TOPIC,
            AnyEvent::Shipping(_) => ShippingEvent::TOPIC,
            AnyEvent::Customers(_) => CustomersEvent::TOPIC,
        }
    }

    /// Full record name of the event (also the event-type header).
    pub fn name(&self) -> &'static str {
        each_topic!(self, e => e.name())
    }

    /// The event's schema.
    pub fn schema(&self) -> &'static Schema {
        each_topic!(self, e => e.schema())
    }

    /// The event's catalogue entry.
    pub fn event_schema(&self) -> EventSchema {
        each_topic!(self, e => e.event_schema())
    }

    /// Id of the event.
    pub fn event_id(&self) -> EventId {
        each_topic!(self, e => e.event_id())
    }

    /// When the recorded change happened.
    pub fn occurred_at(&self) -> Timestamp {
        each_topic!(self, e => e.occurred_at())
    }

    /// The Kafka key.
    pub fn key(&self) -> String {
        each_topic!(self, e => e.key())
    }

    /// The event as an Avro value of its schema.
    pub fn to_value(&self) -> Result<Value, SchemaError> {
        each_topic!(self, e => e.to_value())
    }

    /// The event as a bare Avro datum.
    pub fn to_datum(&self) -> Result<Vec<u8>, SchemaError> {
        each_topic!(self, e => e.to_datum())
    }
}

impl From<OrdersEvent> for AnyEvent {
    fn from(e: OrdersEvent) -> Self {
        AnyEvent::Orders(e)
    }
}

impl From<InventoryEvent> for AnyEvent {
    fn from(e: InventoryEvent) -> Self {
        AnyEvent::Inventory(e)
    }
}

impl From<PaymentsEvent> for AnyEvent {
    fn from(e: PaymentsEvent) -> Self {
        AnyEvent::Payments(e)
    }
}

impl From<ShippingEvent> for AnyEvent {
    fn from(e: ShippingEvent) -> Self {
        AnyEvent::Shipping(e)
    }
}

impl From<CustomersEvent> for AnyEvent {
    fn from(e: CustomersEvent) -> Self {
        AnyEvent::Customers(e)
    }
}
