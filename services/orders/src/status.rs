//! The order state machine, in one place: [`TRANSITIONS`] lists every action an order may undergo in
//! each status and the status it leads to. Every write to an order asks [`next_status`] first, so an
//! action the table does not list is refused (409) before anything is written.

use std::fmt;

use orderflow_schemas::orders::{CancellationReason, OrderStatus};

/// Something that can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Add or remove lines (the status does not change).
    EditLines,
    /// The customer places the draft.
    Place,
    /// The payment succeeded (reaction to `PaymentSucceeded`).
    Confirm,
    /// The shipment was dispatched (reaction to `ShipmentDispatched`).
    Ship,
    /// The shipment was delivered (reaction to `ShipmentDelivered`).
    Complete,
    /// The customer cancels an order that has no shipment yet (DRAFT, PLACED).
    CancelByCustomer,
    /// The customer asks to cancel a CONFIRMED order: it stays CONFIRMED until shipping answers,
    /// because only shipping knows whether the goods have left.
    RequestCancel,
    /// Shipping cancelled the shipment of an order whose cancellation was requested (reaction to
    /// `ShipmentCancelled`).
    CancelAfterShipmentCancelled,
    /// The saga gives up: stock rejected or payment declined (reaction to `StockRejected` / `PaymentDeclined`).
    CancelBySaga,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::EditLines => "edit lines",
            Action::Place => "place",
            Action::Confirm => "confirm",
            Action::Ship => "ship",
            Action::Complete => "complete",
            Action::CancelByCustomer => "cancel (customer request)",
            Action::RequestCancel => "request cancellation",
            Action::CancelAfterShipmentCancelled => "cancel (shipment cancelled)",
            Action::CancelBySaga => "cancel (stock rejected or payment declined)",
        })
    }
}

use Action::*;
use OrderStatus::*;

/// Every allowed (from, action, to). Anything else is refused.
pub const TRANSITIONS: &[(OrderStatus, Action, OrderStatus)] = &[
    (Draft, EditLines, Draft),
    (Draft, Place, Placed),
    (Placed, Confirm, Confirmed),
    (Confirmed, Ship, Shipped),
    (Shipped, Complete, Completed),
    (Draft, CancelByCustomer, Cancelled),
    (Placed, CancelByCustomer, Cancelled),
    (Confirmed, RequestCancel, Confirmed),
    (Confirmed, CancelAfterShipmentCancelled, Cancelled),
    (Placed, CancelBySaga, Cancelled),
];

/// The state machine refused an action: what the order is, and what was attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the order is {}; it cannot {action} (allowed only from {})", status_name(*from), allowed_from(*action))]
pub struct RefusedTransition {
    pub from: OrderStatus,
    pub action: Action,
}

fn allowed_from(action: Action) -> String {
    let froms: Vec<&str> = TRANSITIONS
        .iter()
        .filter(|(_, a, _)| *a == action)
        .map(|(from, _, _)| status_name(*from))
        .collect();
    froms.join(", ")
}

/// The status `action` leads to from `from`, or the refusal.
pub fn next_status(from: OrderStatus, action: Action) -> Result<OrderStatus, RefusedTransition> {
    TRANSITIONS
        .iter()
        .find(|(f, a, _)| *f == from && *a == action)
        .map(|(_, _, to)| *to)
        .ok_or(RefusedTransition { from, action })
}

/// The status as stored and sent: `DRAFT`, `PLACED`, ...
pub fn status_name(status: OrderStatus) -> &'static str {
    match status {
        Draft => "DRAFT",
        Placed => "PLACED",
        Confirmed => "CONFIRMED",
        Shipped => "SHIPPED",
        Completed => "COMPLETED",
        Cancelled => "CANCELLED",
    }
}

/// The status named `name`, as stored.
pub fn parse_status(name: &str) -> Option<OrderStatus> {
    [Draft, Placed, Confirmed, Shipped, Completed, Cancelled]
        .into_iter()
        .find(|s| status_name(*s) == name)
}

/// The cancellation reason as stored and sent: `OUT_OF_STOCK`, ...
pub fn reason_name(reason: CancellationReason) -> &'static str {
    match reason {
        CancellationReason::OutOfStock => "OUT_OF_STOCK",
        CancellationReason::PaymentDeclined => "PAYMENT_DECLINED",
        CancellationReason::CustomerRequest => "CUSTOMER_REQUEST",
        CancellationReason::CustomerDeactivated => "CUSTOMER_DEACTIVATED",
        CancellationReason::Timeout => "TIMEOUT",
        CancellationReason::Other => "OTHER",
    }
}

/// The cancellation reason named `name`, as stored.
pub fn parse_reason(name: &str) -> Option<CancellationReason> {
    [
        CancellationReason::OutOfStock,
        CancellationReason::PaymentDeclined,
        CancellationReason::CustomerRequest,
        CancellationReason::CustomerDeactivated,
        CancellationReason::Timeout,
        CancellationReason::Other,
    ]
    .into_iter()
    .find(|r| reason_name(*r) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_STATUSES: [OrderStatus; 6] =
        [Draft, Placed, Confirmed, Shipped, Completed, Cancelled];
    const ALL_ACTIONS: [Action; 9] = [
        EditLines,
        Place,
        Confirm,
        Ship,
        Complete,
        CancelByCustomer,
        RequestCancel,
        CancelAfterShipmentCancelled,
        CancelBySaga,
    ];

    #[test]
    fn the_happy_path_goes_draft_placed_confirmed_shipped_completed() {
        let mut status = Draft;
        for action in [EditLines, Place, Confirm, Ship, Complete] {
            status = next_status(status, action).unwrap();
        }
        assert_eq!(status, Completed);
    }

    #[test]
    fn customers_cancel_until_confirmed_then_request_until_shipped_the_saga_only_while_placed() {
        for from in [Draft, Placed] {
            assert_eq!(next_status(from, CancelByCustomer), Ok(Cancelled));
        }
        for from in [Confirmed, Shipped, Completed, Cancelled] {
            assert!(next_status(from, CancelByCustomer).is_err(), "{from:?}");
        }
        for from in ALL_STATUSES {
            let expected = (from == Confirmed).then_some(Confirmed);
            assert_eq!(next_status(from, RequestCancel).ok(), expected, "{from:?}");
            let expected = (from == Confirmed).then_some(Cancelled);
            assert_eq!(
                next_status(from, CancelAfterShipmentCancelled).ok(),
                expected,
                "{from:?}"
            );
        }
        for from in ALL_STATUSES {
            assert_eq!(next_status(from, CancelBySaga).is_ok(), from == Placed);
        }
    }

    #[test]
    fn lines_change_only_in_a_draft() {
        for from in ALL_STATUSES {
            assert_eq!(next_status(from, EditLines).is_ok(), from == Draft);
        }
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in [Completed, Cancelled] {
            for action in ALL_ACTIONS {
                assert!(next_status(from, action).is_err(), "{from:?} {action}");
            }
        }
    }

    #[test]
    fn the_table_has_no_duplicate_from_action_pairs() {
        for (i, (f, a, _)) in TRANSITIONS.iter().enumerate() {
            assert!(
                TRANSITIONS[i + 1..]
                    .iter()
                    .all(|(f2, a2, _)| (f2, a2) != (f, a)),
                "{f:?} {a}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_status_and_the_action() {
        let refusal = next_status(Shipped, CancelByCustomer).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the order is SHIPPED; it cannot cancel (customer request) (allowed only from DRAFT, PLACED)"
        );
        let refusal = next_status(Placed, Place).unwrap_err();
        assert!(refusal.to_string().contains("PLACED"), "{refusal}");
        assert!(refusal.to_string().contains("place"), "{refusal}");
    }

    #[test]
    fn names_round_trip_and_agree_with_the_wire_format() {
        for status in ALL_STATUSES {
            assert_eq!(parse_status(status_name(status)), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status_name(status))
            );
        }
        assert_eq!(parse_status("draft"), None);
        for reason in [
            CancellationReason::OutOfStock,
            CancellationReason::PaymentDeclined,
            CancellationReason::CustomerRequest,
            CancellationReason::CustomerDeactivated,
            CancellationReason::Other,
        ] {
            assert_eq!(parse_reason(reason_name(reason)), Some(reason));
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::json!(reason_name(reason))
            );
        }
    }
}
