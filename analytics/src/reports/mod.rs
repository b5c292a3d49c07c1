//! The reporting HTTP endpoints, over Elasticsearch only (the documents the sink indexes), with their
//! OpenAPI document at `GET /openapi.json`:
//!
//! - `GET /reports/sales`: completed orders, units and revenue per day, week or month of a range;
//! - `GET /reports/products`: for each product, the units sold at each unit price;
//! - `GET /reports/outcomes`: completed against cancelled, cancellations by reason;
//! - `GET /reports/top-customers`: the customers with the most revenue (or orders), per currency;
//! - `GET /reports/orders`: order search by status, customer and date, in pages;
//! - `GET /reports/orders/{order_id}`: one order.
//!
//! Every report dates an order by `closed_at`, when it finished (completed or cancelled). A bad
//! parameter answers 400 naming it; Elasticsearch unreachable answers 503. Every report needs a
//! bearer token with the role admin (the kit's `auth`); health and `/openapi.json` stay open.

pub mod model;
pub mod params;
pub mod queries;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use elasticsearch::Elasticsearch;
use orderflow_service_kit::ApiError;
use orderflow_service_kit::auth::{self, Admin, Authenticator};
use orderflow_service_kit::http::ApiQuery;
use orderflow_service_kit::openapi::ContractDoc;
use serde_json::{Value, json};
use utoipa::OpenApi;

use self::model::{
    Amount, Count, CurrencyRanking, CustomerRank, OrderPage, OutcomesReport, PricePoint,
    ProductSales, ProductsReport, SalesBucket, SalesReport, SalesTotals, TopCustomersReport,
};
use self::params::{
    DateField, FinalStatus, Interval, OrderSearchQuery, OutcomesQuery, ProductsQuery, Range,
    Ranking, SalesQuery, TopCustomersQuery,
};
use crate::elastic::EsError;
use crate::sink::document::{LineDocument, OrderDocument};

/// What the handlers share.
#[derive(Clone)]
pub struct Reports {
    pub es: Elasticsearch,
    /// The index of finished orders.
    pub index: String,
}

/// The reports' routes, `/openapi.json` and health (`/health/live`, `/health/ready`: Elasticsearch
/// answers).
pub fn reports_routes(
    es: Elasticsearch,
    index: impl Into<String>,
    authenticator: Authenticator,
) -> Router {
    let state = Reports {
        es,
        index: index.into(),
    };
    let reports = Router::new()
        .route("/reports/sales", get(sales))
        .route("/reports/products", get(products))
        .route("/reports/outcomes", get(outcomes))
        .route("/reports/top-customers", get(top_customers))
        .route("/reports/orders", get(search_orders))
        .route("/reports/orders/{order_id}", get(get_order))
        .route_layer(axum::middleware::from_extractor::<Admin>())
        .route("/openapi.json", get(openapi));
    auth::layer(reports, authenticator)
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&ContractDoc),
    info(
        title = "orderflow reports",
        description = "Reports over the finished orders the analytics sink indexes in Elasticsearch. Money is in minor units next to its currency; orders are dated by when they finished (closed_at)."
    ),
    paths(sales, products, outcomes, top_customers, search_orders, get_order),
    components(schemas(
        Amount,
        SalesBucket,
        SalesTotals,
        SalesReport,
        PricePoint,
        ProductSales,
        ProductsReport,
        Count,
        OutcomesReport,
        CustomerRank,
        CurrencyRanking,
        TopCustomersReport,
        OrderPage,
        OrderDocument,
        LineDocument,
        Interval,
        Ranking,
        FinalStatus,
        DateField
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

fn unavailable(error: EsError) -> ApiError {
    match error {
        EsError::Unavailable(message) => {
            tracing::warn!(%message, "Elasticsearch unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                None,
                "Elasticsearch is unavailable; try again later",
            )
        }
        refused => ApiError::internal(refused),
    }
}

/// Sales over time.
#[utoipa::path(
    get,
    path = "/reports/sales",
    tag = "reports",
    params(SalesQuery),
    responses(
        (status = 200, description = "Completed orders, units and revenue per period", body = SalesReport),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 503, description = "Elasticsearch is unavailable", body = ApiError),
    )
)]
async fn sales(
    State(r): State<Reports>,
    ApiQuery(q): ApiQuery<SalesQuery>,
) -> Result<Json<SalesReport>, ApiError> {
    let (from, to) = q.range()?;
    let currency = q.currency.map(|c| c.as_str().to_string());
    let body = queries::sales_request(from, to, q.interval, currency.as_deref());
    let answer = queries::search(&r.es, &r.index, body)
        .await
        .map_err(unavailable)?;
    Ok(Json(queries::sales_report(
        &answer,
        from,
        to,
        q.interval,
        currency.as_deref(),
    )))
}

/// For each product, the units sold at each unit price.
#[utoipa::path(
    get,
    path = "/reports/products",
    tag = "reports",
    params(ProductsQuery),
    responses(
        (status = 200, description = "Units sold per product and unit price", body = ProductsReport),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 503, description = "Elasticsearch is unavailable", body = ApiError),
    )
)]
async fn products(
    State(r): State<Reports>,
    ApiQuery(q): ApiQuery<ProductsQuery>,
) -> Result<Json<ProductsReport>, ApiError> {
    let range = Range::new(q.from, q.to)?;
    if q.sku.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return Err(ApiError::invalid_field("sku", "must not be empty"));
    }
    let currency = q.currency.map(|c| c.as_str().to_string());
    let report = queries::products(
        &r.es,
        &r.index,
        &range,
        q.sku.as_deref(),
        currency.as_deref(),
    )
    .await
    .map_err(unavailable)?;
    Ok(Json(report))
}

/// Completed against cancelled, and cancellations by reason.
#[utoipa::path(
    get,
    path = "/reports/outcomes",
    tag = "reports",
    params(OutcomesQuery),
    responses(
        (status = 200, description = "Outcomes of the orders finished in the range", body = OutcomesReport),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 503, description = "Elasticsearch is unavailable", body = ApiError),
    )
)]
async fn outcomes(
    State(r): State<Reports>,
    ApiQuery(q): ApiQuery<OutcomesQuery>,
) -> Result<Json<OutcomesReport>, ApiError> {
    let range = Range::new(q.from, q.to)?;
    let currency = q.currency.map(|c| c.as_str().to_string());
    let body = queries::outcomes_request(&range, currency.as_deref());
    let answer = queries::search(&r.es, &r.index, body)
        .await
        .map_err(unavailable)?;
    Ok(Json(queries::outcomes_report(&answer, &range)))
}

/// The top customers, per currency.
#[utoipa::path(
    get,
    path = "/reports/top-customers",
    tag = "reports",
    params(TopCustomersQuery),
    responses(
        (status = 200, description = "The top customers of each currency", body = TopCustomersReport),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 503, description = "Elasticsearch is unavailable", body = ApiError),
    )
)]
async fn top_customers(
    State(r): State<Reports>,
    ApiQuery(q): ApiQuery<TopCustomersQuery>,
) -> Result<Json<TopCustomersReport>, ApiError> {
    let range = Range::new(q.from, q.to)?;
    let limit = q.limit()?;
    let currency = q.currency.map(|c| c.as_str().to_string());
    let body = queries::top_customers_request(&range, q.by, limit, currency.as_deref());
    let answer = queries::search(&r.es, &r.index, body)
        .await
        .map_err(unavailable)?;
    Ok(Json(queries::top_customers_report(&answer, &range, q.by)))
}

/// Search orders by status, customer and date.
#[utoipa::path(
    get,
    path = "/reports/orders",
    tag = "reports",
    params(OrderSearchQuery),
    responses(
        (status = 200, description = "One page of matching orders, newest first", body = OrderPage),
        (status = 400, description = "A parameter is malformed (named in `field`)", body = ApiError),
        (status = 503, description = "Elasticsearch is unavailable", body = ApiError),
    )
)]
async fn search_orders(
    State(r): State<Reports>,
    ApiQuery(q): ApiQuery<OrderSearchQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let range = Range::new(q.from, q.to)?;
    let (page, page_size) = q.page()?;
    let customer = q.customer_id.map(|c| c.to_string());
    let body = queries::search_request(
        q.status,
        customer.as_deref(),
        q.date.field(),
        &range,
        page,
        page_size,
    );
    let answer = queries::search(&r.es, &r.index, body)
        .await
        .map_err(unavailable)?;
    queries::search_page(&answer, page, page_size)
        .map(Json)
        .map_err(ApiError::internal)
}

/// One finished order.
#[utoipa::path(
    get,
    path = "/reports/orders/{order_id}",
    tag = "reports",
    params(("order_id" = uuid::Uuid, Path, description = "The order")),
    responses(
        (status = 200, description = "The order's document", body = OrderDocument),
        (status = 400, description = "The id is not a UUID", body = ApiError),
        (status = 404, description = "No finished order with this id", body = ApiError),
        (status = 503, description = "Elasticsearch is unavailable", body = ApiError),
    )
)]
async fn get_order(
    State(r): State<Reports>,
    Path(order_id): Path<String>,
) -> Result<Json<OrderDocument>, ApiError> {
    let id: uuid::Uuid = order_id
        .parse()
        .map_err(|e| ApiError::invalid_field("order_id", format!("not a UUID: {e}")))?;
    match queries::order(&r.es, &r.index, &id.to_string())
        .await
        .map_err(unavailable)?
    {
        Some(document) => Ok(Json(document)),
        None => Err(ApiError::not_found(format!("order {id}"))),
    }
}

async fn ready(State(r): State<Reports>) -> (StatusCode, Json<Value>) {
    // Not `ping` (HEAD /): the integration-test distribution answers 405 there.
    let cluster = r.es.cluster();
    let health = cluster
        .health(elasticsearch::cluster::ClusterHealthParts::None)
        .send();
    let check = match tokio::time::timeout(Duration::from_secs(3), health).await {
        Ok(Ok(response)) if response.status_code().is_success() => Ok(()),
        Ok(Ok(response)) => Err(format!("HTTP {}", response.status_code())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    match check {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": {"elasticsearch": {"status": "up"}}})),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not_ready", "checks": {"elasticsearch": {"status": "down", "error": error}}}),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_names_every_report() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/reports/sales",
            "/reports/products",
            "/reports/outcomes",
            "/reports/top-customers",
            "/reports/orders",
            "/reports/orders/{order_id}",
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
        }
        let params = &doc["paths"]["/reports/sales"]["get"]["parameters"];
        let names: Vec<&str> = params
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["from", "to", "interval", "currency"]);
    }
}
