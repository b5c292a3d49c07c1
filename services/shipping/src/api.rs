//! The shipping HTTP API: the shipment of an order (`GET /orders/{order_id}/shipment`), one shipment
//! (`GET /shipments/{shipment_id}`), and its progress (`POST /shipments/{shipment_id}/dispatch` with
//! the carrier and tracking number, `POST /shipments/{shipment_id}/deliver`); `GET /openapi.json`
//! describes them. Shipments are created by the saga (on `OrderConfirmed`), not over HTTP. Both POSTs
//! take an `Idempotency-Key` (the kit's `idempotency`), stored on the write's own transaction.
//! Who may: a carrier (and an admin) reads, dispatches and delivers every shipment; a customer reads
//! the shipments of their own orders (another's answers 404).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_schemas::{Address, OrderId, ShipmentId};
use orderflow_service_kit::auth::{Caller, Carrier as CarrierCaller, Principal, Role, Scope};
use orderflow_service_kit::http::path_param;
use orderflow_service_kit::idempotency::KeyHeaderDoc;
use orderflow_service_kit::openapi::ContractDoc;
use orderflow_service_kit::{
    ApiError, ApiJson, Idempotency, Idempotent, ServiceContext, TraceContext,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::domain::{
    Carrier, DispatchDetails, MAX_CARRIER_CHARS, MAX_TRACKING_NUMBER_CHARS, Shipment,
    ShipmentStatus, TrackingNumber,
};
use crate::{shipments, store};

pub fn routes(context: ServiceContext) -> Router {
    Router::new()
        .route("/orders/{order_id}/shipment", get(get_order_shipment))
        .route("/shipments/{shipment_id}", get(get_shipment))
        .route("/shipments/{shipment_id}/dispatch", post(dispatch_shipment))
        .route("/shipments/{shipment_id}/deliver", post(deliver_shipment))
        .route("/openapi.json", get(openapi))
        .with_state(context)
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&KeyHeaderDoc, &ContractDoc),
    info(
        title = "orderflow shipping",
        description = "The shipment of each confirmed order and its progress: CREATED (by the saga, \
                       on OrderConfirmed) -> DISPATCHED -> DELIVERED."
    ),
    paths(get_order_shipment, get_shipment, dispatch_shipment, deliver_shipment),
    components(schemas(
        ShipmentView,
        ShipmentStatusView,
        AddressView,
        LineView,
        DispatchRequest,
        ApiError
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Who carries the shipment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    /// The carrier's name: 1 to 64 characters (trimmed), no control characters.
    #[schema(value_type = String, example = "DHL", max_length = 64)]
    pub carrier: Carrier,
    /// The carrier's tracking number: 1 to 64 ASCII letters, digits and '-'.
    #[schema(value_type = String, example = "JJD0099887766554433", max_length = 64)]
    pub tracking_number: TrackingNumber,
}

// the `max_length`s above restate these limits
const _: () = assert!(MAX_CARRIER_CHARS == 64 && MAX_TRACKING_NUMBER_CHARS == 64);

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatusView {
    Created,
    Dispatched,
    Delivered,
    Cancelled,
}

impl From<ShipmentStatus> for ShipmentStatusView {
    fn from(status: ShipmentStatus) -> Self {
        match status {
            ShipmentStatus::Created => Self::Created,
            ShipmentStatus::Dispatched => Self::Dispatched,
            ShipmentStatus::Delivered => Self::Delivered,
            ShipmentStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// Where the shipment goes.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressView {
    pub recipient: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "DE")]
    pub country: String,
}

impl From<Address> for AddressView {
    fn from(address: Address) -> Self {
        Self {
            recipient: address.recipient,
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            region: address.region,
            postal_code: address.postal_code,
            country: address.country.to_string(),
        }
    }
}

/// One product in the shipment.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub sku: String,
    pub quantity: u32,
}

/// A shipment and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub status: ShipmentStatusView,
    pub address: AddressView,
    pub lines: Vec<LineView>,
    /// Set once dispatched.
    pub carrier: Option<String>,
    /// Set once dispatched.
    pub tracking_number: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Set once cancelled (before dispatch, because the order's cancellation was requested).
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<Shipment> for ShipmentView {
    fn from(shipment: Shipment) -> Self {
        let dispatch = shipment.dispatch;
        Self {
            shipment_id: shipment.shipment_id.as_uuid(),
            order_id: shipment.order_id.as_uuid(),
            customer_id: shipment.customer_id.as_uuid(),
            status: shipment.status.into(),
            address: shipment.address.into(),
            lines: shipment
                .lines
                .into_iter()
                .map(|line| LineView {
                    sku: line.sku.to_string(),
                    quantity: line.quantity.get(),
                })
                .collect(),
            carrier: dispatch.as_ref().map(|d| d.carrier.to_string()),
            tracking_number: dispatch.as_ref().map(|d| d.tracking_number.to_string()),
            created_at: shipment.created_at.as_datetime(),
            dispatched_at: dispatch.map(|d| d.dispatched_at.as_datetime()),
            delivered_at: shipment.delivered_at.map(|t| t.as_datetime()),
            cancelled_at: shipment.cancelled_at.map(|t| t.as_datetime()),
            updated_at: shipment.updated_at.as_datetime(),
        }
    }
}

/// What shipments a caller may read: a carrier's every one, else the caller's customer scope.
fn read_scope(caller: &Principal) -> Result<Scope, ApiError> {
    if caller.has(Role::Carrier) {
        return Ok(Scope::All);
    }
    Ok(caller.scope()?)
}

/// The shipment of an order.
#[utoipa::path(
    get,
    path = "/orders/{order_id}/shipment",
    params(("order_id" = Uuid, Path, description = "The order")),
    responses(
        (status = 200, description = "The order's shipment", body = ShipmentView),
        (status = 400, description = "order_id is not a UUID", body = ApiError),
        (status = 404, description = "The order has no shipment (yet)", body = ApiError),
    )
)]
#[tracing::instrument(skip(context, caller))]
async fn get_order_shipment(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    Path(order_id): Path<String>,
) -> Result<Json<ShipmentView>, ApiError> {
    let scope = read_scope(&caller)?;
    let order_id: OrderId = path_param("order_id", &order_id)?;
    let mut conn = context.pool.acquire().await?;
    let shipment = store::shipment_for_order(&mut conn, order_id)
        .await?
        .filter(|shipment| scope.reaches(shipment.customer_id))
        .ok_or_else(|| ApiError::not_found(format!("shipment of order {order_id}")))?;
    Ok(Json(shipment.into()))
}

/// One shipment.
#[utoipa::path(
    get,
    path = "/shipments/{shipment_id}",
    params(("shipment_id" = Uuid, Path, description = "The shipment")),
    responses(
        (status = 200, description = "The shipment", body = ShipmentView),
        (status = 400, description = "shipment_id is not a UUID", body = ApiError),
        (status = 404, description = "No such shipment", body = ApiError),
    )
)]
#[tracing::instrument(skip(context, caller))]
async fn get_shipment(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    Path(shipment_id): Path<String>,
) -> Result<Json<ShipmentView>, ApiError> {
    let scope = read_scope(&caller)?;
    let shipment_id: ShipmentId = path_param("shipment_id", &shipment_id)?;
    let mut conn = context.pool.acquire().await?;
    let shipment = store::shipment(&mut conn, shipment_id, false)
        .await?
        .filter(|shipment| scope.reaches(shipment.customer_id))
        .ok_or_else(|| ApiError::not_found(format!("shipment {shipment_id}")))?;
    Ok(Json(shipment.into()))
}

/// Hand a CREATED shipment to a carrier; writes `ShipmentDispatched`.
#[utoipa::path(
    post,
    path = "/shipments/{shipment_id}/dispatch",
    params(("shipment_id" = Uuid, Path, description = "The shipment")),
    request_body = DispatchRequest,
    responses(
        (status = 200, description = "Dispatched", body = ShipmentView),
        (status = 400, description = "A field is missing, unknown or invalid (named in `field`)", body = ApiError),
        (status = 404, description = "No such shipment", body = ApiError),
        (status = 409, description = "The shipment is not CREATED: already dispatched, or cancelled because its order's cancellation was requested (the message names its status)", body = ApiError),
        (status = 413, description = "The body is over 64 KiB", body = ApiError),
        (status = 415, description = "The body is not application/json", body = ApiError),
    )
)]
#[tracing::instrument(skip(idempotency, context, request))]
async fn dispatch_shipment(
    State(context): State<ServiceContext>,
    _: CarrierCaller,
    trace: TraceContext,
    Path(shipment_id): Path<String>,
    Idempotent(idempotency, ApiJson(request)): Idempotent<ApiJson<DispatchRequest>>,
) -> Result<Response, ApiError> {
    let shipment_id: ShipmentId = path_param("shipment_id", &shipment_id)?;
    let details = DispatchDetails {
        carrier: request.carrier,
        tracking_number: request.tracking_number,
    };
    let outbox = &context.outbox;
    Ok(idempotency
        .run(&context.pool, async |tx| {
            let shipment = shipments::dispatch(tx, outbox, &trace, shipment_id, details).await?;
            Ok(Json(ShipmentView::from(shipment)))
        })
        .await)
}

/// Record that the carrier delivered a DISPATCHED shipment; writes `ShipmentDelivered`. No body.
#[utoipa::path(
    post,
    path = "/shipments/{shipment_id}/deliver",
    params(("shipment_id" = Uuid, Path, description = "The shipment")),
    responses(
        (status = 200, description = "Delivered", body = ShipmentView),
        (status = 400, description = "shipment_id is not a UUID", body = ApiError),
        (status = 404, description = "No such shipment", body = ApiError),
        (status = 409, description = "The shipment is not DISPATCHED (the message names its status)", body = ApiError),
    )
)]
#[tracing::instrument(skip(idempotency, context))]
async fn deliver_shipment(
    State(context): State<ServiceContext>,
    _: CarrierCaller,
    trace: TraceContext,
    Path(shipment_id): Path<String>,
    idempotency: Idempotency,
) -> Result<Response, ApiError> {
    let shipment_id: ShipmentId = path_param("shipment_id", &shipment_id)?;
    let outbox = &context.outbox;
    Ok(idempotency
        .run(&context.pool, async |tx| {
            let shipment = shipments::deliver(tx, outbox, &trace, shipment_id).await?;
            Ok(Json(ShipmentView::from(shipment)))
        })
        .await)
}
