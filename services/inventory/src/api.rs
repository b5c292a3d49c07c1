//! The inventory's HTTP API: create, restock, get, and list or search products, plus the OpenAPI
//! document at `GET /openapi.json`. Handlers parse requests into domain types (a bad value answers
//! 400 naming its field), run one transaction through `products`, and answer JSON. Both POSTs take an
//! `Idempotency-Key` (the kit's `idempotency`): the key is stored on the write's own transaction.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_schemas::{Currency, Money, Quantity, Sku, StockLevel};
use orderflow_service_kit::auth::{Admin, Caller, Role};
use orderflow_service_kit::http::ApiQuery;
use orderflow_service_kit::http::{page_limit, path_param, search_text};
use orderflow_service_kit::idempotency::KeyHeaderDoc;
use orderflow_service_kit::openapi::ContractDoc;
use orderflow_service_kit::{ApiError, ApiJson, Idempotent, ServiceContext, TraceContext};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::domain::{Description, ProductName};
use crate::products::{self, NewProduct, Product, ProductSearch};

/// The service's routes (health is added by the kit).
/// Who may read the catalogue: shoppers and the back office (a carrier may not).
const CATALOGUE_READERS: &[Role] = &[Role::Customer, Role::Admin];

pub fn routes(context: ServiceContext) -> Router {
    Router::new()
        .route("/products", post(create_product).get(list_products))
        .route("/products/{sku}", get(get_product))
        .route("/products/{sku}/restock", post(restock_product))
        .route("/openapi.json", get(openapi))
        .with_state(context)
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&KeyHeaderDoc, &ContractDoc),
    info(
        title = "orderflow inventory",
        description = "Products, their stock, and the stock reserved for orders."
    ),
    paths(create_product, restock_product, get_product, list_products),
    components(schemas(
        CreateProductRequest,
        RestockRequest,
        MoneyBody,
        ProductView,
        ProductPage,
        ApiError
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// An amount of money: integer minor units and an ISO 4217 code (`{"amount_minor": 1999, "currency": "EUR"}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    #[schema(minimum = 0, example = 1999)]
    pub amount_minor: i64,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
}

impl From<Money> for MoneyBody {
    fn from(money: Money) -> Self {
        Self {
            amount_minor: money.amount_minor(),
            currency: money.currency(),
        }
    }
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
    #[schema(value_type = String, example = "MUG-BLUE")]
    pub sku: Sku,
    /// 1 to 200 characters.
    #[schema(value_type = String, example = "Blue mug")]
    pub name: ProductName,
    /// Up to 2000 characters.
    pub description: Option<String>,
    /// Price of one unit.
    pub unit_price: MoneyBody,
    /// Units in stock to begin with.
    #[schema(value_type = i32, minimum = 0)]
    pub on_hand: StockLevel,
}

/// Units that arrived.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(value_type = i32, minimum = 1)]
    pub quantity: Quantity,
}

/// A product and its stock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub unit_price: MoneyBody,
    pub on_hand: u32,
    pub reserved: u32,
    /// `on_hand - reserved`: what new orders can still reserve.
    pub available: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        Self {
            sku: p.sku.to_string(),
            name: p.name,
            description: p.description,
            unit_price: p.unit_price.into(),
            on_hand: p.stock.on_hand().get(),
            reserved: p.stock.reserved().get(),
            available: p.stock.available().get(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// One page of products, ordered by sku.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductView>,
    /// How many products match in all.
    pub total: i64,
    pub limit: u32,
    pub offset: u32,
}

/// Search and page parameters of `GET /products`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListProductsQuery {
    /// A case-insensitive sku prefix or name substring (at most 100 characters).
    pub q: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Products to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u32>,
}

impl ListProductsQuery {
    fn into_search(self) -> Result<ProductSearch, ApiError> {
        let limit = page_limit(self.limit)?;
        let text = search_text(self.q)?;
        Ok(ProductSearch {
            text,
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// Add a product to the catalogue; writes `ProductCreated`.
#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Created", body = ProductView),
        (status = 400, description = "A field is malformed", body = ApiError),
        (status = 409, description = "The sku exists", body = ApiError),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %body.sku))]
async fn create_product(
    State(context): State<ServiceContext>,
    _: Admin,
    trace: TraceContext,
    Idempotent(idempotency, ApiJson(body)): Idempotent<ApiJson<CreateProductRequest>>,
) -> Result<Response, ApiError> {
    let unit_price = Money::new(body.unit_price.amount_minor, body.unit_price.currency)
        .map_err(|e| ApiError::invalid_field("unit_price.amount_minor", e.to_string()))?;
    let description = match body.description.as_deref() {
        Some(text) => {
            Description::parse(text).map_err(|e| ApiError::invalid_field("description", e))?
        }
        None => None,
    };
    let new = NewProduct {
        sku: body.sku,
        name: body.name,
        description,
        unit_price,
        on_hand: body.on_hand,
    };
    let outbox = &context.outbox;
    Ok(idempotency
        .run(&context.pool, async |tx| {
            let product = products::create_product(tx, outbox, &trace, new).await?;
            Ok((StatusCode::CREATED, Json(ProductView::from(product))))
        })
        .await)
}

/// Add units to a product's stock on hand; writes `ProductRestocked`.
#[utoipa::path(
    post,
    path = "/products/{sku}/restock",
    tag = "products",
    params(("sku" = String, Path, description = "The product", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body = RestockRequest,
    responses(
        (status = 200, description = "Restocked", body = ProductView),
        (status = 400, description = "A field is malformed", body = ApiError),
        (status = 404, description = "No such product", body = ApiError),
        (status = 422, description = "On hand would overflow", body = ApiError),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %sku))]
async fn restock_product(
    State(context): State<ServiceContext>,
    _: Admin,
    trace: TraceContext,
    Path(sku): Path<String>,
    Idempotent(idempotency, ApiJson(body)): Idempotent<ApiJson<RestockRequest>>,
) -> Result<Response, ApiError> {
    let sku = path_param::<Sku>("sku", &sku)?;
    let outbox = &context.outbox;
    Ok(idempotency
        .run(&context.pool, async |tx| {
            let product = products::restock(tx, outbox, &trace, &sku, body.quantity).await?;
            Ok(Json(ProductView::from(product)))
        })
        .await)
}

/// One product and its stock.
#[utoipa::path(
    get,
    path = "/products/{sku}",
    tag = "products",
    params(("sku" = String, Path, description = "The product", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 400, description = "Not a valid sku", body = ApiError),
        (status = 404, description = "No such product", body = ApiError),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %sku))]
async fn get_product(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    Path(sku): Path<String>,
) -> Result<Json<ProductView>, ApiError> {
    caller.require(CATALOGUE_READERS)?;
    let sku = path_param::<Sku>("sku", &sku)?;
    let product = products::get_product(&context.pool, &sku)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {sku}")))?;
    Ok(Json(product.into()))
}

/// List products by sku, optionally searching by sku prefix or name substring.
#[utoipa::path(
    get,
    path = "/products",
    tag = "products",
    params(ListProductsQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 400, description = "A parameter is malformed", body = ApiError),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_products(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListProductsQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    caller.require(CATALOGUE_READERS)?;
    let search = query.into_search()?;
    let (items, total) = products::list_products(&context.pool, &search).await?;
    Ok(Json(ProductPage {
        items: items.into_iter().map(ProductView::from).collect(),
        total,
        limit: search.limit,
        offset: search.offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_service_kit::http::parse_query;

    #[test]
    fn list_parameters_are_validated() {
        let search = parse_query::<ListProductsQuery>("q=%20mug%20&limit=5&offset=10")
            .unwrap()
            .into_search()
            .unwrap();
        assert_eq!(
            (search.text.as_deref(), search.limit, search.offset),
            (Some("mug"), 5, 10)
        );
        let defaults = parse_query::<ListProductsQuery>("")
            .unwrap()
            .into_search()
            .unwrap();
        assert_eq!(
            (defaults.text, defaults.limit),
            (None, orderflow_service_kit::http::DEFAULT_PAGE_LIMIT)
        );
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("offset=-1", "offset"),
            ("page=2", "page"),
        ] {
            let error = parse_query::<ListProductsQuery>(query)
                .and_then(ListProductsQuery::into_search)
                .unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{query}");
        }
        let long = format!("q={}", "x".repeat(101));
        let error = parse_query::<ListProductsQuery>(&long)
            .unwrap()
            .into_search()
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("q"));
    }

    #[test]
    fn the_openapi_document_names_every_path() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in ["/products", "/products/{sku}", "/products/{sku}/restock"] {
            assert!(doc["paths"].get(path).is_some(), "{path}");
        }
    }
}
