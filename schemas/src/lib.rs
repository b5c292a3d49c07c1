//! The wire format of orderflow: the Avro schema of every event of the saga (the `.avsc` files
//! under `avro/`, the single source of truth) and the typed Rust events that match them.
//!
//! - Value types with their domain rules: [`Money`] and [`Currency`], [`Quantity`] and
//!   [`StockLevel`], [`Timestamp`], the UUID ids ([`OrderId`], ...), [`Sku`], [`Address`].
//! - One struct per event in [`orders`], [`inventory`], [`payments`], [`shipping`] and
//!   [`customers`], each implementing [`Event`]; one enum per topic ([`OrdersEvent`], ...) and
//!   [`AnyEvent`] to decode whatever arrives, by full record name.
//! - [`event_schemas`]: every schema, for registering them.
//! - [`registry`]: Confluent-framed encoding and decoding through the schema registry.
//!
//! A service turns an event into outbox payload bytes with [`registry::EventCodec::encode`]; a
//! worker turns the bytes of a Kafka message back into an event with
//! [`registry::EventCodec::decode`].

pub mod catalog;
pub mod contact;
pub mod customers;
pub mod error;
pub mod event;
pub mod ids;
pub mod inventory;
pub mod money;
pub mod orders;
pub mod payments;
pub mod quantity;
pub mod registry;
pub mod samples;
pub mod shipping;
pub mod time;

pub use catalog::{AnyEvent, TOPICS, event_schema, event_schemas};
pub use contact::{Address, CountryCode, Email, Phone};
pub use customers::CustomersEvent;
pub use error::{InvalidValue, SchemaError};
pub use event::{Event, EventSchema, subject};
pub use ids::{CustomerId, EventId, OrderId, PaymentId, RefundId, ShipmentId, Sku};
pub use inventory::InventoryEvent;
pub use money::{Currency, Money};
pub use orders::OrdersEvent;
pub use payments::PaymentsEvent;
pub use quantity::{Quantity, StockLevel};
pub use shipping::ShippingEvent;
pub use time::Timestamp;
