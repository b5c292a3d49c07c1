//! Why an order operation did not happen, for the HTTP handlers (as a 4xx/5xx JSON error naming the
//! field at fault) and for the saga reactions (which tell a refusal, permanent, from a failure of the
//! database or the registry, worth retrying).

use axum::http::StatusCode;
use orderflow_schemas::{Currency, CustomerId, OrderId, Sku};
use orderflow_service_kit::ApiError;

use crate::order::MAX_LINE_QUANTITY;
use crate::status::RefusedTransition;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order {order_id} has no line for sku {sku}")]
    LineNotFound { order_id: OrderId, sku: Sku },
    #[error("order {order_id}: {refusal}")]
    Refused {
        order_id: OrderId,
        refusal: RefusedTransition,
    },
    #[error("customer {0} is not known to the orders service")]
    UnknownCustomer(CustomerId),
    #[error("customer {0} is deactivated and may not order")]
    CustomerDeactivated(CustomerId),
    #[error("sku {0} is not a known product")]
    UnknownSku(Sku),
    #[error(
        "product {sku} is priced in {product}, but the order is in {order}; every line of an order is in one currency"
    )]
    CurrencyMismatch {
        sku: Sku,
        product: Currency,
        order: Currency,
    },
    #[error("an order has at most {max} lines")]
    TooManyLines { max: usize },
    #[error(
        "the line for {sku} has {existing} units; adding {added} would exceed {MAX_LINE_QUANTITY} per line"
    )]
    LineQuantityTooLarge { sku: Sku, existing: u32, added: u32 },
    #[error("the order total would overflow")]
    TotalOverflow,
    #[error("an order without lines cannot be placed")]
    NoLines,
    /// Cancel asked of an order whose shipment has left.
    #[error("order {order_id} was dispatched{}; it can no longer be cancelled", dispatched_with(.carrier, .tracking_number))]
    AlreadyDispatched {
        order_id: OrderId,
        carrier: Option<String>,
        tracking_number: Option<String>,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("outbox: {0:#}")]
    Outbox(anyhow::Error),
}

fn dispatched_with(carrier: &Option<String>, tracking_number: &Option<String>) -> String {
    match (carrier, tracking_number) {
        (Some(c), Some(t)) => format!(" with {c} (tracking number {t})"),
        _ => String::new(),
    }
}

impl OrderError {
    /// The state machine refused the operation (permanent: retrying cannot help).
    pub fn is_refused_transition(&self) -> bool {
        matches!(self, OrderError::Refused { .. })
    }

    /// A failure of the database or the registry, not of the request: worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, OrderError::Database(_) | OrderError::Outbox(_))
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        let message = error.to_string();
        let unprocessable = |field: &str| ApiError::unprocessable(field, message.clone());
        match error {
            OrderError::OrderNotFound(id) => ApiError::not_found(format!("order {id}")),
            OrderError::LineNotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                Some("sku".into()),
                message,
            ),
            OrderError::Refused { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                Some("status".into()),
                message,
            ),
            OrderError::AlreadyDispatched { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "already_dispatched",
                Some("status".into()),
                message,
            ),
            OrderError::UnknownCustomer(_) | OrderError::CustomerDeactivated(_) => {
                unprocessable("customer_id")
            }
            OrderError::UnknownSku(_) | OrderError::CurrencyMismatch { .. } => unprocessable("sku"),
            OrderError::TooManyLines { .. } | OrderError::NoLines => unprocessable("lines"),
            OrderError::LineQuantityTooLarge { .. } | OrderError::TotalOverflow => {
                unprocessable("quantity")
            }
            OrderError::Database(e) => ApiError::internal(e),
            OrderError::Outbox(e) => ApiError::internal(format!("{e:#}")),
        }
    }
}
