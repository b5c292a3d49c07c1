//! Events of the customers aggregate, published on `customers.events` (`avro/customers/*.avsc`):
//! registration and deactivation, from which orders keeps its local replica of customers.

use serde::{Deserialize, Serialize};

use crate::contact::{Address, Email, Phone};
use crate::event::{impl_event, topic_events};
use crate::ids::{CustomerId, EventId};
use crate::time::Timestamp;

/// A customer registered (`orderflow.customers.CustomerRegistered`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRegistered {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The customer (Kafka key).
    pub customer_id: CustomerId,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: Email,
    /// Phone number, if given.
    pub phone: Option<Phone>,
    /// Default shipping address.
    pub shipping_address: Address,
}
impl_event!(CustomerRegistered, "customers", key = |e| e.customer_id);

/// A customer's account was deactivated (`orderflow.customers.CustomerDeactivated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDeactivated {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The customer (Kafka key).
    pub customer_id: CustomerId,
    /// Why, in words, if given.
    pub reason: Option<String>,
}
impl_event!(CustomerDeactivated, "customers", key = |e| e.customer_id);

topic_events!(
    /// Every event published on `customers.events`.
    CustomersEvent,
    "customers",
    [CustomerRegistered, CustomerDeactivated]
);
