//! What can go wrong in a customers operation, and the HTTP answer each failure gets.

use axum::http::StatusCode;
use orderflow_schemas::{CustomerId, Email};
use orderflow_service_kit::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CustomersError {
    #[error("a customer with e-mail {0} is already registered")]
    EmailTaken(Email),
    #[error("customer {0} not found")]
    NotFound(CustomerId),
    #[error("customer {0} is already deactivated")]
    AlreadyDeactivated(CustomerId),
    /// A stored row breaks a domain rule: a bug or a manual edit.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event could not be encoded or written (the registry may be down).
    #[error("outbox: {0:#}")]
    Outbox(anyhow::Error),
}

impl From<CustomersError> for ApiError {
    fn from(error: CustomersError) -> Self {
        match error {
            CustomersError::EmailTaken(email) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                Some("email".into()),
                format!("a customer with e-mail {email} is already registered"),
            ),
            CustomersError::NotFound(id) => ApiError::not_found(format!("customer {id}")),
            CustomersError::AlreadyDeactivated(id) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                Some("status".into()),
                format!("customer {id} is already deactivated"),
            ),
            other => ApiError::internal(other),
        }
    }
}
