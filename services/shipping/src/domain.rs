//! What shipping knows: a shipment (one per confirmed order), the carrier details of a dispatch, and
//! the shipment status state machine, whose allowed transitions are named in one table
//! ([`TRANSITIONS`]). Pure; the database and the events are elsewhere.

use std::fmt;
use std::str::FromStr;

use orderflow_schemas::{Address, CustomerId, OrderId, Quantity, ShipmentId, Sku, Timestamp};
use serde::Deserialize;

/// Where a shipment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentStatus {
    /// Waiting in the warehouse to be handed to a carrier.
    Created,
    /// With a carrier.
    Dispatched,
    /// Delivered; terminal.
    Delivered,
    /// Cancelled before dispatch, because its order's cancellation was requested; terminal.
    Cancelled,
}

impl ShipmentStatus {
    pub const ALL: [ShipmentStatus; 4] = [
        Self::Created,
        Self::Dispatched,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Dispatched => "DISPATCHED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// The status after `action`, if the state machine allows it from this one.
    pub fn apply(self, action: ShipmentAction) -> Result<ShipmentStatus, TransitionRefused> {
        TRANSITIONS
            .iter()
            .find(|(from, a, _)| *from == self && *a == action)
            .map(|(_, _, to)| *to)
            .ok_or(TransitionRefused {
                current: self,
                action,
            })
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShipmentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown shipment status {s:?}"))
    }
}

/// What can happen to a shipment after it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentAction {
    Dispatch,
    Deliver,
    /// The order's cancellation was requested (reaction to `OrderCancellationRequested`).
    Cancel,
}

impl fmt::Display for ShipmentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dispatch => "dispatch",
            Self::Deliver => "deliver",
            Self::Cancel => "cancel",
        })
    }
}

/// Every allowed transition: (from, action, to). Anything else is refused.
pub const TRANSITIONS: &[(ShipmentStatus, ShipmentAction, ShipmentStatus)] = &[
    (
        ShipmentStatus::Created,
        ShipmentAction::Dispatch,
        ShipmentStatus::Dispatched,
    ),
    (
        ShipmentStatus::Dispatched,
        ShipmentAction::Deliver,
        ShipmentStatus::Delivered,
    ),
    (
        ShipmentStatus::Created,
        ShipmentAction::Cancel,
        ShipmentStatus::Cancelled,
    ),
];

/// The state machine refused an action in the current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a shipment that is {current}: only a {} shipment can be {}", allowed_from(*.action), past(*.action))]
pub struct TransitionRefused {
    pub current: ShipmentStatus,
    pub action: ShipmentAction,
}

fn allowed_from(action: ShipmentAction) -> String {
    TRANSITIONS
        .iter()
        .filter(|(_, a, _)| *a == action)
        .map(|(from, _, _)| from.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn past(action: ShipmentAction) -> &'static str {
    match action {
        ShipmentAction::Dispatch => "dispatched",
        ShipmentAction::Deliver => "delivered",
        ShipmentAction::Cancel => "cancelled",
    }
}

/// Longest carrier name and tracking number accepted.
pub const MAX_CARRIER_CHARS: usize = 64;
pub const MAX_TRACKING_NUMBER_CHARS: usize = 64;

/// The name of a carrier (`DHL`, `La Poste`): 1 to 64 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Carrier(String);

impl Carrier {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Carrier {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            Err("a carrier name must not be empty".into())
        } else if chars > MAX_CARRIER_CHARS {
            Err(format!(
                "a carrier name has at most {MAX_CARRIER_CHARS} characters, not {chars}"
            ))
        } else if trimmed.chars().any(char::is_control) {
            Err("a carrier name must not contain control characters".into())
        } else {
            Ok(Carrier(trimmed.to_string()))
        }
    }
}

impl FromStr for Carrier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Carrier::try_from(s.to_string())
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A carrier's tracking number: 1 to 64 ASCII letters, digits and `-` (surrounding spaces trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrackingNumber(String);

impl TrackingNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TrackingNumber {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            Err("a tracking number must not be empty".into())
        } else if chars > MAX_TRACKING_NUMBER_CHARS {
            Err(format!(
                "a tracking number has at most {MAX_TRACKING_NUMBER_CHARS} characters, not {chars}"
            ))
        } else if !trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            Err("a tracking number is ASCII letters, digits and '-'".into())
        } else {
            Ok(TrackingNumber(trimmed.to_string()))
        }
    }
}

impl FromStr for TrackingNumber {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrackingNumber::try_from(s.to_string())
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who carries a shipment, under which tracking number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DispatchDetails {
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
}

/// A dispatched shipment's carrier details and when it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    pub dispatched_at: Timestamp,
}

/// One product in a shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentLine {
    pub sku: Sku,
    pub quantity: Quantity,
}

/// The one shipment of a confirmed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    /// Where it goes, as the order said when it was confirmed.
    pub address: Address,
    pub lines: Vec<ShipmentLine>,
    pub status: ShipmentStatus,
    /// Set once dispatched.
    pub dispatch: Option<Dispatch>,
    /// Set once delivered.
    pub delivered_at: Option<Timestamp>,
    /// Set once cancelled.
    pub cancelled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShipmentAction::*;
    use ShipmentStatus::*;

    #[test]
    fn a_shipment_is_dispatched_then_delivered_or_cancelled_before_and_nothing_else() {
        assert_eq!(Created.apply(Dispatch), Ok(Dispatched));
        assert_eq!(Dispatched.apply(Deliver), Ok(Delivered));
        assert_eq!(Created.apply(Cancel), Ok(Cancelled));
        for (status, action) in [
            (Created, Deliver),
            (Dispatched, Dispatch),
            (Dispatched, Cancel),
            (Delivered, Dispatch),
            (Delivered, Deliver),
            (Delivered, Cancel),
            (Cancelled, Dispatch),
            (Cancelled, Deliver),
            (Cancelled, Cancel),
        ] {
            assert_eq!(
                status.apply(action),
                Err(TransitionRefused {
                    current: status,
                    action
                })
            );
        }
    }

    #[test]
    fn a_refusal_names_the_current_and_the_required_status() {
        let refused = Created.apply(Deliver).unwrap_err().to_string();
        assert_eq!(
            refused,
            "cannot deliver a shipment that is CREATED: only a DISPATCHED shipment can be delivered"
        );
        let refused = Delivered.apply(Dispatch).unwrap_err().to_string();
        assert!(
            refused.contains("DELIVERED") && refused.contains("only a CREATED"),
            "{refused}"
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in ShipmentStatus::ALL {
            assert_eq!(status.as_str().parse::<ShipmentStatus>(), Ok(status));
        }
        assert!("created".parse::<ShipmentStatus>().is_err());
    }

    #[test]
    fn carriers_are_trimmed_non_empty_and_short() {
        assert_eq!(
            "  DHL Express ".parse::<Carrier>().unwrap().as_str(),
            "DHL Express"
        );
        assert_eq!("La Poste".parse::<Carrier>().unwrap().as_str(), "La Poste");
        assert!("".parse::<Carrier>().is_err());
        assert!("   ".parse::<Carrier>().is_err());
        assert!("a\nb".parse::<Carrier>().is_err());
        assert!("x".repeat(64).parse::<Carrier>().is_ok());
        assert!("x".repeat(65).parse::<Carrier>().is_err());
    }

    #[test]
    fn tracking_numbers_are_short_and_plain() {
        assert_eq!(
            " JJD0099887766554433 "
                .parse::<TrackingNumber>()
                .unwrap()
                .as_str(),
            "JJD0099887766554433"
        );
        assert!("1Z-999-AA1".parse::<TrackingNumber>().is_ok());
        assert!("".parse::<TrackingNumber>().is_err());
        assert!("1Z 999".parse::<TrackingNumber>().is_err());
        assert!("ä123".parse::<TrackingNumber>().is_err());
        assert!("9".repeat(64).parse::<TrackingNumber>().is_ok());
        assert!("9".repeat(65).parse::<TrackingNumber>().is_err());
    }
}
