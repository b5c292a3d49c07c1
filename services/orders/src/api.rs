//! The orders HTTP API: create a draft, add and remove lines, place, cancel, get one, list with filters
//! and pagination, and the OpenAPI document at `GET /openapi.json`. Each write handler opens one
//! transaction, calls the matching function of [`crate::customer_actions`] (which writes the rows and
//! exactly one outbox event) and commits; any error drops the transaction, so nothing is written.
//! Every POST takes an `Idempotency-Key` (the kit's `idempotency`), stored on that same transaction.
//! Who may: an admin every order; a customer only their own (the token's customer id decides: another
//! customer's order answers 404, as if it did not exist); a carrier nothing (403).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use orderflow_schemas::{OrderId, Sku};
use orderflow_service_kit::auth::{Caller, Scope};
use orderflow_service_kit::http::page_limit;
use orderflow_service_kit::http::{ApiQuery, OptionalApiJson};
use orderflow_service_kit::idempotency::KeyHeaderDoc;
use orderflow_service_kit::openapi::ContractDoc;
use orderflow_service_kit::{
    ApiError, ApiJson, Idempotency, Idempotent, ServiceContext, TraceContext,
};
use utoipa::OpenApi;

use crate::config::OrdersConfig;
use crate::customer_actions::{self, CancelOutcome};
use crate::dto::{
    AddLineRequest, AddressBody, CancelRequest, CancellationBody, CancellationRequestBody,
    CreateOrderRequest, LineBody, ListQuery, MoneyBody, OrderBody, OrderPage, OrderSummaryBody,
    TimelineBody,
};
use crate::listing::{self, Cursor, ListFilter};
use crate::store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub context: ServiceContext,
    pub config: OrdersConfig,
}

/// The routes, configured from the environment (`run` has already checked it parses).
pub fn routes(context: ServiceContext) -> Router {
    let config = OrdersConfig::from_env().unwrap_or_else(|e| panic!("orders configuration: {e}"));
    routes_with(context, config)
}

/// The routes with an explicit configuration (tests use a small line limit).
pub fn routes_with(context: ServiceContext, config: OrdersConfig) -> Router {
    Router::new()
        .route("/orders", post(create_order).get(list_orders))
        .route("/orders/{order_id}", get(get_order))
        .route("/orders/{order_id}/lines", post(add_line))
        .route("/orders/{order_id}/lines/{sku}", delete(remove_line))
        .route("/orders/{order_id}/place", post(place_order))
        .route("/orders/{order_id}/cancel", post(cancel_order))
        .route("/openapi.json", get(openapi))
        .with_state(AppState { context, config })
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&KeyHeaderDoc, &ContractDoc),
    info(
        title = "orderflow orders",
        description = "Orders: drafts, lines, placing and cancelling; every change is published on orders.events through the outbox."
    ),
    paths(
        create_order,
        list_orders,
        get_order,
        add_line,
        remove_line,
        place_order,
        cancel_order
    ),
    components(schemas(
        CreateOrderRequest,
        AddLineRequest,
        CancelRequest,
        OrderBody,
        OrderPage,
        OrderSummaryBody,
        LineBody,
        MoneyBody,
        AddressBody,
        TimelineBody,
        CancellationBody,
        CancellationRequestBody,
        ApiError
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

fn parse_order_id(text: &str) -> Result<OrderId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::invalid_field("order_id", format!("{e}")))
}

/// 404 unless the caller's scope reaches the order (a customer's own orders only). An admin's
/// request costs no query; the order's owner never changes, so checking before the write is enough.
async fn authorize(state: &AppState, scope: Scope, order_id: OrderId) -> Result<(), ApiError> {
    let Scope::Customer(me) = scope else {
        return Ok(());
    };
    let owner: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT customer_id FROM orders WHERE order_id = $1")
            .bind(order_id.as_uuid())
            .fetch_optional(&state.context.pool)
            .await?;
    if owner == Some(me.as_uuid()) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("order {order_id}")))
    }
}

fn order_body(order: &crate::order::Order) -> Result<Json<OrderBody>, ApiError> {
    OrderBody::try_from(order).map(Json)
}

/// Create a DRAFT order for an active customer (→ `OrderCreated`).
#[utoipa::path(
    post, path = "/orders", request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "The new draft; `Location` names it", body = OrderBody),
        (status = 400, description = "Malformed body or field", body = ApiError),
        (status = 422, description = "Unknown or deactivated customer (field customer_id)", body = ApiError),
    )
)]
#[tracing::instrument(skip(idempotency, state, caller, trace, body))]
async fn create_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    trace: TraceContext,
    Idempotent(idempotency, ApiJson(body)): Idempotent<ApiJson<CreateOrderRequest>>,
) -> Result<Response, ApiError> {
    if !caller.scope()?.reaches(body.customer_id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Some("customer_id".into()),
            "a customer creates orders for themselves only (the token's customer_id)",
        ));
    }
    let currency = body.currency.unwrap_or(state.config.default_currency);
    let outbox = &state.context.outbox;
    Ok(idempotency
        .run(&state.context.pool, async |tx| {
            let order =
                customer_actions::create_order(tx, outbox, &trace, body.customer_id, currency)
                    .await?;
            tracing::info!(order_id = %order.order_id, "draft created");
            let location = format!("/orders/{}", order.order_id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                order_body(&order)?,
            ))
        })
        .await)
}

/// List orders, newest first, filtered and paginated.
#[utoipa::path(
    get, path = "/orders", params(ListQuery),
    responses(
        (status = 200, description = "One page", body = OrderPage),
        (status = 400, description = "A bad parameter (named in `field`)", body = ApiError),
    )
)]
#[tracing::instrument(skip(state, caller, query))]
async fn list_orders(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(mut query): ApiQuery<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    if let Some(me) = caller.scope()?.customer() {
        // A customer lists their own orders; asking for another customer's is refused.
        if query.customer_id.is_some_and(|asked| asked != me) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                Some("customer_id".into()),
                "a customer lists their own orders only",
            ));
        }
        query.customer_id = Some(me);
    }
    let limit = page_limit(query.limit)?;
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::invalid_field(
            "from",
            format!(
                "from ({}) is after to ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            ),
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("cursor", e))?;
    let filter = ListFilter {
        status: query.status,
        customer_id: query.customer_id,
        from: query.from,
        to: query.to,
    };
    let mut conn = state.context.pool.acquire().await?;
    let (orders, next_cursor) = listing::list_orders(&mut conn, &filter, limit, after).await?;
    let next = next_cursor.map(|cursor| next_page_path(&filter, limit, cursor));
    Ok(Json(OrderPage {
        orders: orders.iter().map(OrderSummaryBody::from).collect(),
        next_cursor: next_cursor.map(|c| c.to_string()),
        next,
    }))
}

/// `/orders?...` for the page after `cursor`, with the same filters and limit.
fn next_page_path(filter: &ListFilter, limit: u32, cursor: Cursor) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(status) = filter.status {
        query.append_pair("status", crate::status::status_name(status));
    }
    if let Some(customer_id) = filter.customer_id {
        query.append_pair("customer_id", &customer_id.to_string());
    }
    if let Some(from) = filter.from {
        query.append_pair("from", &from.to_rfc3339());
    }
    if let Some(to) = filter.to {
        query.append_pair("to", &to.to_rfc3339());
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair("cursor", &cursor.to_string());
    format!("/orders?{}", query.finish())
}

/// One order: lines, total, status, timeline, cancellation.
#[utoipa::path(
    get, path = "/orders/{order_id}",
    params(("order_id" = String, Path, format = Uuid, description = "The order")),
    responses(
        (status = 200, description = "The order", body = OrderBody),
        (status = 400, description = "order_id is not a UUID", body = ApiError),
        (status = 404, description = "No such order", body = ApiError),
    )
)]
#[tracing::instrument(skip(state, caller))]
async fn get_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_id): Path<String>,
) -> Result<Json<OrderBody>, ApiError> {
    let scope = caller.scope()?;
    let order_id = parse_order_id(&order_id)?;
    let mut conn = state.context.pool.acquire().await?;
    let order = store::find_order(&mut conn, order_id)
        .await?
        .filter(|order| scope.reaches(order.customer_id))
        .ok_or_else(|| ApiError::not_found(format!("order {order_id}")))?;
    order_body(&order)
}

/// Add units of a product to a DRAFT (→ `OrderLineAdded`). A SKU the order already has increases that
/// line's quantity (at the price captured when the line was first added), up to 1000 units per line.
#[utoipa::path(
    post, path = "/orders/{order_id}/lines", request_body = AddLineRequest,
    params(("order_id" = String, Path, format = Uuid, description = "The order")),
    responses(
        (status = 200, description = "The order with the line", body = OrderBody),
        (status = 400, description = "Malformed body, bad sku or quantity outside 1..=1000", body = ApiError),
        (status = 404, description = "No such order", body = ApiError),
        (status = 409, description = "The order is no longer a draft", body = ApiError),
        (status = 422, description = "Unknown sku, a product in another currency (field sku), too many lines (lines), or a line over 1000 units (quantity)", body = ApiError),
    )
)]
#[tracing::instrument(skip(idempotency, state, caller, trace, body), fields(sku = %body.sku, quantity = %body.quantity))]
async fn add_line(
    State(state): State<AppState>,
    Caller(caller): Caller,
    trace: TraceContext,
    Path(order_id): Path<String>,
    Idempotent(idempotency, ApiJson(body)): Idempotent<ApiJson<AddLineRequest>>,
) -> Result<Response, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    authorize(&state, caller.scope()?, order_id).await?;
    let (outbox, max_lines) = (&state.context.outbox, state.config.max_lines);
    Ok(idempotency
        .run(&state.context.pool, async |tx| {
            let order = customer_actions::add_line(
                tx,
                outbox,
                &trace,
                order_id,
                &body.sku,
                body.quantity,
                max_lines,
            )
            .await?;
            order_body(&order)
        })
        .await)
}

/// Remove a product's line from a DRAFT (→ `OrderLineRemoved`).
#[utoipa::path(
    delete, path = "/orders/{order_id}/lines/{sku}",
    params(
        ("order_id" = String, Path, format = Uuid, description = "The order"),
        ("sku" = String, Path, description = "The product whose line to remove", pattern = r"^[A-Za-z0-9._-]{1,64}$"),
    ),
    responses(
        (status = 200, description = "The order without the line", body = OrderBody),
        (status = 400, description = "Bad order_id or sku", body = ApiError),
        (status = 404, description = "No such order, or no line for that sku", body = ApiError),
        (status = 409, description = "The order is no longer a draft", body = ApiError),
    )
)]
#[tracing::instrument(skip(state, caller, trace))]
async fn remove_line(
    State(state): State<AppState>,
    Caller(caller): Caller,
    trace: TraceContext,
    Path((order_id, sku)): Path<(String, String)>,
) -> Result<Json<OrderBody>, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    authorize(&state, caller.scope()?, order_id).await?;
    let sku: Sku = sku
        .parse()
        .map_err(|e| ApiError::invalid_field("sku", format!("{e}")))?;
    let mut tx = state.context.pool.begin().await?;
    let order =
        customer_actions::remove_line(&mut tx, &state.context.outbox, &trace, order_id, &sku)
            .await?;
    tx.commit().await?;
    order_body(&order)
}

/// Place a DRAFT (→ `OrderPlaced`, which starts the saga): it ships to the customer's address.
#[utoipa::path(
    post, path = "/orders/{order_id}/place",
    params(("order_id" = String, Path, format = Uuid, description = "The order")),
    responses(
        (status = 200, description = "The placed order", body = OrderBody),
        (status = 404, description = "No such order", body = ApiError),
        (status = 409, description = "The order is not a draft", body = ApiError),
        (status = 422, description = "No lines (field lines), or the customer is deactivated (customer_id)", body = ApiError),
    )
)]
#[tracing::instrument(skip(idempotency, state, caller, trace))]
async fn place_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    trace: TraceContext,
    Path(order_id): Path<String>,
    idempotency: Idempotency,
) -> Result<Response, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    authorize(&state, caller.scope()?, order_id).await?;
    let outbox = &state.context.outbox;
    Ok(idempotency
        .run(&state.context.pool, async |tx| {
            let order = customer_actions::place(tx, outbox, &trace, order_id).await?;
            tracing::info!(%order_id, "order placed");
            order_body(&order)
        })
        .await)
}

/// Cancel an order at the customer's request. A DRAFT or PLACED order is cancelled at once
/// (→ `OrderCancelled`, 200). A CONFIRMED order has a shipment that only shipping can stop: the
/// request is recorded (→ `OrderCancellationRequested`, 202, `cancellation_request.outcome`
/// PENDING) and the order becomes CANCELLED, with its stock released and its payment refunded,
/// once shipping has cancelled the shipment; if the shipment was dispatched first, the order ships
/// (outcome TOO_LATE). Asking again while pending answers 202 and writes nothing.
#[utoipa::path(
    post, path = "/orders/{order_id}/cancel", request_body(content = Option<CancelRequest>, description = "Optional: no body at all, or an object (`null` is refused)"),
    params(("order_id" = String, Path, format = Uuid, description = "The order")),
    responses(
        (status = 200, description = "The cancelled order (it was DRAFT or PLACED)", body = OrderBody),
        (status = 202, description = "The order was CONFIRMED: the cancellation is requested from shipping", body = OrderBody),
        (status = 400, description = "Malformed body or reason_detail too long", body = ApiError),
        (status = 404, description = "No such order", body = ApiError),
        (status = 409, description = "Already dispatched (shipped or completed: `already_dispatched`, naming the carrier) or already cancelled", body = ApiError),
    )
)]
#[tracing::instrument(skip(idempotency, state, caller, trace, body))]
async fn cancel_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    trace: TraceContext,
    Path(order_id): Path<String>,
    Idempotent(idempotency, OptionalApiJson(body)): Idempotent<OptionalApiJson<CancelRequest>>,
) -> Result<Response, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    authorize(&state, caller.scope()?, order_id).await?;
    let detail = body.unwrap_or_default().reason_detail.unwrap_or_default();
    let outbox = &state.context.outbox;
    Ok(idempotency
        .run(&state.context.pool, async |tx| {
            match customer_actions::cancel_by_customer(tx, outbox, &trace, order_id, &detail)
                .await?
            {
                CancelOutcome::Cancelled(order) => {
                    tracing::info!(%order_id, "order cancelled by the customer");
                    Ok((StatusCode::OK, order_body(&order)?))
                }
                CancelOutcome::Requested(order) => {
                    tracing::info!(%order_id, "cancellation requested by the customer; shipping decides");
                    Ok((StatusCode::ACCEPTED, order_body(&order)?))
                }
            }
        })
        .await)
}
