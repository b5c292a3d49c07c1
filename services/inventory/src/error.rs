//! What can go wrong in an inventory operation, shared by the HTTP handlers (which turn it into a 4xx
//! or 5xx JSON answer) and the saga reactions (which tell permanent refusals from transient failures).

use axum::http::StatusCode;
use orderflow_schemas::{OrderId, Sku};
use orderflow_service_kit::ApiError;

use crate::domain::StockError;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("a product with sku {0} already exists")]
    ProductExists(Sku),
    #[error("product {0} not found")]
    ProductNotFound(Sku),
    /// A stock movement the rules refuse (e.g. a restock beyond the largest stock level).
    #[error("stock of {sku}: {error}")]
    Stock { sku: Sku, error: StockError },
    /// An `OrderPlaced` without lines: there is nothing to reserve (permanent).
    #[error("order {0} has no lines to reserve")]
    EmptyOrder(OrderId),
    /// A stored row breaks a domain rule: a bug or a manual edit (permanent).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database failed (usually transient).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event could not be encoded or written (the registry may be down: usually transient).
    #[error("outbox: {0:#}")]
    Outbox(anyhow::Error),
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::ProductExists(sku) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                Some("sku".into()),
                format!("a product with sku {sku} already exists"),
            ),
            InventoryError::ProductNotFound(sku) => ApiError::not_found(format!("product {sku}")),
            InventoryError::Stock { error, .. } => {
                ApiError::unprocessable("quantity", error.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}
