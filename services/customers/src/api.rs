//! The customers' HTTP API: register, deactivate, get one, list with filters, plus the OpenAPI
//! document at `GET /openapi.json`. Requests parse into domain types (e-mail, phone, country code from
//! the schemas crate), so a bad value answers 400 naming its field path (`shipping_address.country`).
//! Both POSTs take an `Idempotency-Key` (the kit's `idempotency`), stored on the write's transaction.
//! Who may: registering, deactivating and listing are the back office's (admin); a customer reads
//! their own record only (the token's customer id decides; another's answers 404).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_schemas::{Address, CountryCode, CustomerId, Email, Phone};
use orderflow_service_kit::auth::{Admin, Caller};
use orderflow_service_kit::http::path_param;
use orderflow_service_kit::http::{ApiQuery, OptionalApiJson};
use orderflow_service_kit::http::{page_limit, search_text};
use orderflow_service_kit::idempotency::KeyHeaderDoc;
use orderflow_service_kit::openapi::ContractDoc;
use orderflow_service_kit::{ApiError, ApiJson, Idempotent, ServiceContext, TraceContext};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::customers::{self, Customer, CustomerFilter, NewCustomer};
use crate::domain::{
    AddressText, CustomerStatus, DeactivationReason, PersonName, PostalCode, blank_is_none,
};

/// The service's routes (health is added by the kit).
pub fn routes(context: ServiceContext) -> Router {
    Router::new()
        .route("/customers", post(register_customer).get(list_customers))
        .route("/customers/{id}", get(get_customer))
        .route("/customers/{id}/deactivate", post(deactivate_customer))
        .route("/openapi.json", get(openapi))
        .with_state(context)
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&KeyHeaderDoc, &ContractDoc),
    info(
        title = "orderflow customers",
        description = "Customer registration and deactivation; orders keeps a replica from the events."
    ),
    paths(register_customer, deactivate_customer, get_customer, list_customers),
    components(schemas(
        RegisterCustomerRequest,
        ShippingAddressBody,
        DeactivateRequest,
        AddressView,
        CustomerView,
        CustomerPage,
        CustomerStatus,
        ApiError
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A customer to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCustomerRequest {
    /// Full name, 1 to 200 characters.
    #[schema(value_type = String, example = "Ada Lovelace")]
    pub name: PersonName,
    /// Unique regardless of letter case.
    #[schema(value_type = String, example = "ada@example.org")]
    pub email: Email,
    /// E.164: `+`, then 8 to 15 digits, the first not 0.
    #[schema(value_type = Option<String>, example = "+4930123456")]
    #[serde(default)]
    pub phone: Option<Phone>,
    pub shipping_address: ShippingAddressBody,
}

/// The default shipping address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddressBody {
    /// Who the parcel is addressed to; the customer's name when absent.
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "blank_is_none")]
    pub recipient: Option<AddressText>,
    #[schema(value_type = String, example = "Friedrichstraße 123")]
    pub line1: AddressText,
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "blank_is_none")]
    pub line2: Option<AddressText>,
    #[schema(value_type = String, example = "Berlin")]
    pub city: AddressText,
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "blank_is_none")]
    pub region: Option<AddressText>,
    #[schema(value_type = String, example = "10117")]
    pub postal_code: PostalCode,
    /// ISO 3166-1 alpha-2, uppercase.
    #[schema(value_type = String, example = "DE")]
    pub country: CountryCode,
}

impl ShippingAddressBody {
    fn into_address(self, name: &PersonName) -> Address {
        Address {
            recipient: self
                .recipient
                .map(AddressText::into_string)
                .unwrap_or_else(|| name.to_string()),
            line1: self.line1.into_string(),
            line2: self.line2.map(AddressText::into_string),
            city: self.city.into_string(),
            region: self.region.map(AddressText::into_string),
            postal_code: self.postal_code.into_string(),
            country: self.country,
        }
    }
}

/// Why the customer is deactivated; the whole body may be omitted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateRequest {
    /// Up to 500 characters.
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "blank_is_none")]
    pub reason: Option<DeactivationReason>,
}

/// A postal address.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressView {
    pub recipient: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
}

impl From<Address> for AddressView {
    fn from(a: Address) -> Self {
        Self {
            recipient: a.recipient,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country.to_string(),
        }
    }
}

/// A customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: uuid::Uuid,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub shipping_address: AddressView,
    pub status: CustomerStatus,
    pub deactivation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id.as_uuid(),
            name: c.name,
            email: c.email.to_string(),
            phone: c.phone.map(|p| p.to_string()),
            shipping_address: c.shipping_address.into(),
            status: c.status,
            deactivation_reason: c.deactivation_reason,
            created_at: c.created_at,
            updated_at: c.updated_at,
            deactivated_at: c.deactivated_at,
        }
    }
}

/// One page of customers, oldest registration first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<CustomerView>,
    /// How many customers match in all.
    pub total: i64,
    pub limit: u32,
    pub offset: u32,
}

/// Filters and page of `GET /customers`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// `ACTIVE` or `DEACTIVATED`.
    #[param(value_type = Option<CustomerStatus>)]
    pub status: Option<CustomerStatus>,
    /// A case-insensitive substring of the name or the e-mail (at most 100 characters).
    pub q: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Customers to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u32>,
}

impl ListCustomersQuery {
    fn into_filter(self) -> Result<CustomerFilter, ApiError> {
        let limit = page_limit(self.limit)?;
        let text = search_text(self.q)?;
        Ok(CustomerFilter {
            status: self.status,
            text,
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// Register a customer; writes `CustomerRegistered`.
#[utoipa::path(
    post,
    path = "/customers",
    tag = "customers",
    request_body = RegisterCustomerRequest,
    responses(
        (status = 201, description = "Registered", body = CustomerView),
        (status = 400, description = "A field is malformed", body = ApiError),
        (status = 409, description = "The e-mail is registered", body = ApiError),
    )
)]
#[tracing::instrument(skip_all)]
async fn register_customer(
    State(context): State<ServiceContext>,
    _: Admin,
    trace: TraceContext,
    Idempotent(idempotency, ApiJson(body)): Idempotent<ApiJson<RegisterCustomerRequest>>,
) -> Response {
    let shipping_address = body.shipping_address.into_address(&body.name);
    let new = NewCustomer {
        name: body.name,
        email: body.email,
        phone: body.phone,
        shipping_address,
    };
    let outbox = &context.outbox;
    idempotency
        .run(&context.pool, async |tx| {
            let customer = customers::register(tx, outbox, &trace, new).await?;
            tracing::info!(customer_id = %customer.id, "customer registered");
            Ok((StatusCode::CREATED, Json(CustomerView::from(customer))))
        })
        .await
}

/// Deactivate a customer; writes `CustomerDeactivated`.
#[utoipa::path(
    post,
    path = "/customers/{id}/deactivate",
    tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "The customer")),
    request_body(content = Option<DeactivateRequest>, description = "Optional: no body at all, or an object"),
    responses(
        (status = 200, description = "Deactivated", body = CustomerView),
        (status = 400, description = "A field is malformed", body = ApiError),
        (status = 404, description = "No such customer", body = ApiError),
        (status = 409, description = "Already deactivated", body = ApiError),
    )
)]
#[tracing::instrument(skip_all, fields(customer_id = %id))]
async fn deactivate_customer(
    State(context): State<ServiceContext>,
    _: Admin,
    trace: TraceContext,
    Path(id): Path<String>,
    Idempotent(idempotency, OptionalApiJson(body)): Idempotent<OptionalApiJson<DeactivateRequest>>,
) -> Result<Response, ApiError> {
    let id = path_param::<CustomerId>("id", &id)?;
    let outbox = &context.outbox;
    Ok(idempotency
        .run(&context.pool, async |tx| {
            let reason = body.as_ref().and_then(|b| b.reason.clone());
            let customer = customers::deactivate(tx, outbox, &trace, id, reason).await?;
            Ok(Json(CustomerView::from(customer)))
        })
        .await)
}

/// One customer.
#[utoipa::path(
    get,
    path = "/customers/{id}",
    tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "The customer")),
    responses(
        (status = 200, description = "The customer", body = CustomerView),
        (status = 400, description = "Not a UUID", body = ApiError),
        (status = 404, description = "No such customer", body = ApiError),
    )
)]
#[tracing::instrument(skip_all, fields(customer_id = %id))]
async fn get_customer(
    State(context): State<ServiceContext>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    let scope = caller.scope()?;
    let id = path_param::<CustomerId>("id", &id)?;
    // Another customer's record answers 404, as if it did not exist.
    let customer = if scope.reaches(id) {
        customers::get_customer(&context.pool, id).await?
    } else {
        None
    };
    let customer = customer.ok_or_else(|| ApiError::not_found(format!("customer {id}")))?;
    Ok(Json(customer.into()))
}

/// List customers, oldest registration first, by status and search text.
#[utoipa::path(
    get,
    path = "/customers",
    tag = "customers",
    params(ListCustomersQuery),
    responses(
        (status = 200, description = "A page of customers", body = CustomerPage),
        (status = 400, description = "A parameter is malformed", body = ApiError),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_customers(
    State(context): State<ServiceContext>,
    _: Admin,
    ApiQuery(query): ApiQuery<ListCustomersQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    let filter = query.into_filter()?;
    let (items, total) = customers::list_customers(&context.pool, &filter).await?;
    Ok(Json(CustomerPage {
        items: items.into_iter().map(CustomerView::from).collect(),
        total,
        limit: filter.limit,
        offset: filter.offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_service_kit::http::{parse_json, parse_query};

    #[test]
    fn list_parameters_are_validated() {
        let filter = parse_query::<ListCustomersQuery>("status=DEACTIVATED&q=ada&limit=3")
            .unwrap()
            .into_filter()
            .unwrap();
        assert_eq!(filter.status, Some(CustomerStatus::Deactivated));
        assert_eq!((filter.text.as_deref(), filter.limit), (Some("ada"), 3));
        for (query, field) in [
            ("status=active", "status"),
            ("status=", "status"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("offset=x", "offset"),
            ("sort=name", "sort"),
        ] {
            let error = parse_query::<ListCustomersQuery>(query)
                .and_then(ListCustomersQuery::into_filter)
                .unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{query}");
        }
    }

    #[test]
    fn the_recipient_defaults_to_the_name() {
        let body: RegisterCustomerRequest = parse_json(
            br#"{"name":"Ada","email":"ada@example.org","shipping_address":
                {"line1":"Street 1","line2":"","city":"Berlin","postal_code":"10117","country":"DE"}}"#,
        )
        .unwrap();
        let address = body.shipping_address.into_address(&body.name);
        assert_eq!(address.recipient, "Ada");
        assert_eq!(address.line2, None);
        assert_eq!(body.phone, None);
    }

    #[test]
    fn the_openapi_document_names_every_path() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/customers",
            "/customers/{id}",
            "/customers/{id}/deactivate",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path}");
        }
    }
}
