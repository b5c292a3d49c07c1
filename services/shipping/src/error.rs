//! What can go wrong in a shipping operation, shared by the HTTP handlers (which answer it as a 4xx or
//! 5xx JSON error) and the saga reactions and simulated carrier (which tell permanent refusals from
//! transient failures: the database and registry causes stay in the error's source chain).

use orderflow_schemas::{OrderId, ShipmentId};
use orderflow_service_kit::ApiError;

use crate::domain::TransitionRefused;

#[derive(Debug, thiserror::Error)]
pub enum ShippingError {
    #[error("shipment {0} not found")]
    NotFound(ShipmentId),
    /// An order's cancellation was requested but it has no shipment (permanent: the shipment is
    /// created from `OrderConfirmed`, which comes before the request on the same partition).
    #[error("order {0} has no shipment to cancel")]
    NoShipmentForOrder(OrderId),
    /// The status state machine refuses the action (permanent).
    #[error("shipment {shipment_id}: {refused}")]
    Refused {
        shipment_id: ShipmentId,
        refused: TransitionRefused,
    },
    /// A stored row breaks a domain rule: a bug or a manual edit (permanent).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database failed (usually transient).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event could not be encoded or written (the registry may be down: usually transient).
    #[error("outbox: {0}")]
    Outbox(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ShippingError {
    /// An outbox failure, keeping its causes (a registry error, an sqlx error) in the source chain.
    pub fn outbox(error: anyhow::Error) -> Self {
        ShippingError::Outbox(error.into())
    }
}

impl From<ShippingError> for ApiError {
    fn from(error: ShippingError) -> Self {
        match error {
            ShippingError::NotFound(id) => ApiError::not_found(format!("shipment {id}")),
            ShippingError::Refused {
                shipment_id,
                refused,
            } => ApiError::conflict(format!("shipment {shipment_id}: {refused}")),
            other => ApiError::internal(other),
        }
    }
}
