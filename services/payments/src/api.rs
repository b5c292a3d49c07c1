//! The payments HTTP API: read-only, because charges and refunds happen in the saga (see `charges`).
//! `GET /orders/{order_id}/payment` and `GET /payments/{payment_id}` answer a payment with its
//! refunds; `GET /openapi.json` describes them. Who may: an admin any payment, a customer the
//! payments of their own orders (another's answers 404); a carrier none (403).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_schemas::{Money, OrderId, PaymentId};
use orderflow_service_kit::auth::Caller;
use orderflow_service_kit::http::path_param;
use orderflow_service_kit::openapi::ContractDoc;
use orderflow_service_kit::{ApiError, ServiceContext};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::domain::{Payment, PaymentStatus, Refund, decline_reason_str};
use crate::store;

pub fn routes(context: ServiceContext) -> Router {
    Router::new()
        .route("/orders/{order_id}/payment", get(get_order_payment))
        .route("/payments/{payment_id}", get(get_payment))
        .route("/openapi.json", get(openapi))
        .with_state(context)
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&ContractDoc),
    info(
        title = "orderflow payments",
        description = "The payment and refunds of each order. Charges and refunds happen in the \
                       saga (on StockReserved and OrderCancelled), so this API only reads."
    ),
    paths(get_order_payment, get_payment),
    components(schemas(PaymentView, RefundView, MoneyView, PaymentStatusView, ApiError))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// An amount of money in minor units (1999 EUR is 19.99 EUR).
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView {
    pub amount_minor: i64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        Self {
            amount_minor: money.amount_minor(),
            currency: money.currency().to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatusView {
    Succeeded,
    Declined,
    Refunded,
}

impl From<PaymentStatus> for PaymentStatusView {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Succeeded => Self::Succeeded,
            PaymentStatus::Declined => Self::Declined,
            PaymentStatus::Refunded => Self::Refunded,
        }
    }
}

/// A full refund of a payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    pub refund_id: Uuid,
    pub amount: MoneyView,
    pub gateway_reference: String,
    pub created_at: DateTime<Utc>,
}

impl From<Refund> for RefundView {
    fn from(refund: Refund) -> Self {
        Self {
            refund_id: refund.refund_id.as_uuid(),
            amount: refund.amount.into(),
            gateway_reference: refund.gateway_reference,
            created_at: refund.created_at.as_datetime(),
        }
    }
}

/// The payment of an order: a charge (SUCCEEDED, later perhaps REFUNDED) or a declined attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: MoneyView,
    pub status: PaymentStatusView,
    /// Why the gateway declined (DECLINED only): INSUFFICIENT_FUNDS, CARD_DECLINED,
    /// FRAUD_SUSPECTED, AMOUNT_LIMIT_EXCEEDED or OTHER.
    pub decline_reason: Option<String>,
    pub decline_detail: Option<String>,
    /// The gateway's reference for the charge (absent when declined).
    pub gateway_reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub refunds: Vec<RefundView>,
}

impl PaymentView {
    fn new(payment: Payment, refunds: Vec<Refund>) -> Self {
        Self {
            payment_id: payment.payment_id.as_uuid(),
            order_id: payment.order_id.as_uuid(),
            customer_id: payment.customer_id.as_uuid(),
            amount: payment.amount.into(),
            status: payment.status.into(),
            decline_reason: payment
                .decline
                .as_ref()
                .map(|d| decline_reason_str(d.reason).to_string()),
            decline_detail: payment.decline.map(|d| d.detail),
            gateway_reference: payment.gateway_reference,
            created_at: payment.created_at.as_datetime(),
            updated_at: payment.updated_at.as_datetime(),
            refunds: refunds.into_iter().map(RefundView::from).collect(),
        }
    }
}

async fn view(context: &ServiceContext, payment: Payment) -> Result<PaymentView, ApiError> {
    let mut conn = context.pool.acquire().await?;
    let refunds = store::refunds_of(&mut conn, payment.payment_id).await?;
    Ok(PaymentView::new(payment, refunds))
}

/// The payment of an order, with its refunds.
#[utoipa::path(
    get,
    path = "/orders/{order_id}/payment",
    params(("order_id" = Uuid, Path, description = "The order")),
    responses(
        (status = 200, description = "The order's payment", body = PaymentView),
        (status = 400, description = "order_id is not a UUID", body = ApiError),
        (status = 404, description = "The order has no payment (yet)", body = ApiError),
    )
)]
#[tracing::instrument(skip(context, caller))]
async fn get_order_payment(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let scope = caller.scope()?;
    let order_id: OrderId = path_param("order_id", &order_id)?;
    let mut conn = context.pool.acquire().await?;
    let payment = store::payment_for_order(&mut conn, order_id, false)
        .await?
        .filter(|payment| scope.reaches(payment.customer_id))
        .ok_or_else(|| ApiError::not_found(format!("payment of order {order_id}")))?;
    drop(conn);
    Ok(Json(view(&context, payment).await?))
}

/// One payment, with its refunds.
#[utoipa::path(
    get,
    path = "/payments/{payment_id}",
    params(("payment_id" = Uuid, Path, description = "The payment")),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 400, description = "payment_id is not a UUID", body = ApiError),
        (status = 404, description = "No such payment", body = ApiError),
    )
)]
#[tracing::instrument(skip(context, caller))]
async fn get_payment(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let scope = caller.scope()?;
    let payment_id: PaymentId = path_param("payment_id", &payment_id)?;
    let mut conn = context.pool.acquire().await?;
    let payment = store::payment_by_id(&mut conn, payment_id)
        .await?
        .filter(|payment| scope.reaches(payment.customer_id))
        .ok_or_else(|| ApiError::not_found(format!("payment {payment_id}")))?;
    drop(conn);
    Ok(Json(view(&context, payment).await?))
}
