//! Events of the payments aggregate, published on `payments.events` (`avro/payments/*.avsc`):
//! an order is charged once, or the charge is declined; a charge is refunded when its order is
//! cancelled afterwards.

use serde::{Deserialize, Serialize};

use crate::event::{impl_event, topic_events};
use crate::ids::{CustomerId, EventId, OrderId, PaymentId, RefundId};
use crate::money::Money;
use crate::time::Timestamp;

/// Why the gateway refused a charge (`orderflow.payments.DeclineReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeclineReason {
    /// Not enough money or credit.
    InsufficientFunds,
    /// The issuer refused without a more specific reason.
    CardDeclined,
    /// The gateway's risk checks blocked it.
    FraudSuspected,
    /// Above the limit for one charge.
    AmountLimitExceeded,
    /// Anything else (see the detail text); also what an unknown newer reason reads as.
    Other,
}

/// The order was charged (`orderflow.payments.PaymentSucceeded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The payment.
    pub payment_id: PaymentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Who was charged.
    pub customer_id: CustomerId,
    /// Amount charged.
    pub amount: Money,
    /// The gateway's reference for the charge.
    pub gateway_reference: String,
}
impl_event!(PaymentSucceeded, "payments", key = |e| e.order_id);

/// The gateway refused the charge (`orderflow.payments.PaymentDeclined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The declined attempt.
    pub payment_id: PaymentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Whose charge was refused.
    pub customer_id: CustomerId,
    /// Amount that could not be charged.
    pub amount: Money,
    /// Why, as a code.
    pub reason: DeclineReason,
    /// Why, in words (may be empty).
    pub detail: String,
}
impl_event!(PaymentDeclined, "payments", key = |e| e.order_id);

/// A charge was refunded in full (`orderflow.payments.PaymentRefunded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    /// Id of this event.
    pub event_id: EventId,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The refund.
    pub refund_id: RefundId,
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// The order (Kafka key).
    pub order_id: OrderId,
    /// Amount given back.
    pub amount: Money,
    /// The gateway's reference for the refund.
    pub gateway_reference: String,
}
impl_event!(PaymentRefunded, "payments", key = |e| e.order_id);

topic_events!(
    /// Every event published on `payments.events`.
    PaymentsEvent,
    "payments",
    [PaymentSucceeded, PaymentDeclined, PaymentRefunded]
);
