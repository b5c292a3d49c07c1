//! What payments knows: a payment (one per order: a charge, or a declined attempt), its status and the
//! only transition a status allows (a charge may be refunded, once, in full), and refunds. Pure; the
//! database and the events are elsewhere.

use std::fmt;
use std::str::FromStr;

use orderflow_schemas::inventory::StockReserved;
use orderflow_schemas::payments::DeclineReason;
use orderflow_schemas::{CustomerId, Money, OrderId, PaymentId, RefundId, Timestamp};

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// The order was charged.
    Succeeded,
    /// The gateway refused; terminal.
    Declined,
    /// The charge was given back; terminal.
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 3] = [Self::Succeeded, Self::Declined, Self::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Declined => "DECLINED",
            Self::Refunded => "REFUNDED",
        }
    }

    /// The one transition a payment has: only a successful charge can be refunded.
    pub fn refund(self) -> Result<PaymentStatus, RefundRefused> {
        match self {
            Self::Succeeded => Ok(Self::Refunded),
            Self::Declined => Err(RefundRefused::NeverCharged),
            Self::Refunded => Err(RefundRefused::AlreadyRefunded),
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown payment status {s:?}"))
    }
}

/// Why a payment cannot be refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefused {
    #[error("the charge was declined, so there is nothing to refund")]
    NeverCharged,
    #[error("the payment was already refunded")]
    AlreadyRefunded,
}

/// The wire symbol of a decline reason (as in `orderflow.payments.DeclineReason`).
pub fn decline_reason_str(reason: DeclineReason) -> &'static str {
    match reason {
        DeclineReason::InsufficientFunds => "INSUFFICIENT_FUNDS",
        DeclineReason::CardDeclined => "CARD_DECLINED",
        DeclineReason::FraudSuspected => "FRAUD_SUSPECTED",
        DeclineReason::AmountLimitExceeded => "AMOUNT_LIMIT_EXCEEDED",
        DeclineReason::Other => "OTHER",
    }
}

/// A decline reason from its wire symbol.
pub fn parse_decline_reason(s: &str) -> Result<DeclineReason, String> {
    [
        DeclineReason::InsufficientFunds,
        DeclineReason::CardDeclined,
        DeclineReason::FraudSuspected,
        DeclineReason::AmountLimitExceeded,
        DeclineReason::Other,
    ]
    .into_iter()
    .find(|reason| decline_reason_str(*reason) == s)
    .ok_or_else(|| format!("unknown decline reason {s:?}"))
}

/// What the gateway said when it refused a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    pub reason: DeclineReason,
    /// In words; may be empty.
    pub detail: String,
}

/// What is to be charged for an order: in the saga, what `StockReserved` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub amount: Money,
}

impl From<&StockReserved> for ChargeRequest {
    fn from(event: &StockReserved) -> Self {
        Self {
            order_id: event.order_id,
            customer_id: event.customer_id,
            amount: event.amount_to_charge,
        }
    }
}

/// The one payment of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub status: PaymentStatus,
    /// Set exactly when the status is `Declined`.
    pub decline: Option<Decline>,
    /// The gateway's charge reference; `None` exactly when the charge was declined.
    pub gateway_reference: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A full refund of a successful payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: RefundId,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Money,
    pub gateway_reference: String,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_successful_charge_can_be_refunded() {
        assert_eq!(
            PaymentStatus::Succeeded.refund(),
            Ok(PaymentStatus::Refunded)
        );
        assert_eq!(
            PaymentStatus::Declined.refund(),
            Err(RefundRefused::NeverCharged)
        );
        assert_eq!(
            PaymentStatus::Refunded.refund(),
            Err(RefundRefused::AlreadyRefunded)
        );
    }

    #[test]
    fn statuses_and_reasons_round_trip_through_their_symbols() {
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
        }
        assert!("succeeded".parse::<PaymentStatus>().is_err());
        for symbol in [
            "INSUFFICIENT_FUNDS",
            "CARD_DECLINED",
            "FRAUD_SUSPECTED",
            "AMOUNT_LIMIT_EXCEEDED",
            "OTHER",
        ] {
            let reason = parse_decline_reason(symbol).unwrap();
            assert_eq!(decline_reason_str(reason), symbol);
            // the same symbols serde (and so Avro) uses
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::json!(symbol)
            );
        }
        assert!(parse_decline_reason("LIMIT").is_err());
    }

    #[test]
    fn a_charge_request_copies_stock_reserved() {
        let event = orderflow_schemas::samples::stock_reserved();
        let request = ChargeRequest::from(&event);
        assert_eq!(request.order_id, event.order_id);
        assert_eq!(request.customer_id, event.customer_id);
        assert_eq!(request.amount, event.amount_to_charge);
    }
}
