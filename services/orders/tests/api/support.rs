//! Shared setup: start the service, seed the customer and product replicas the way the reactions will,
//! and small helpers for the assertions every test makes.

#![allow(dead_code)]

use axum::http::StatusCode;
use orderflow_orders::OrdersConfig;
use orderflow_orders::replicas::{self, Customer, Product};
use orderflow_schemas::{Address, Currency, CustomerId, Money, OrderId, Timestamp};
use orderflow_service_kit::testing::TestService;
use orderflow_service_kit::{ServiceContext, ServiceSpec};
use serde_json::{Value, json};

/// Every table the service writes, for "nothing changed" assertions.
pub const TABLES: &[&str] = &[
    "orders",
    "order_lines",
    "customer_replica",
    "product_replica",
    "outbox",
];

pub async fn start() -> TestService {
    TestService::start(orderflow_orders::spec()).await
}

/// The lines-per-order limit of [`start_with_three_lines`].
pub const SMALL_MAX_LINES: usize = 3;

fn routes_with_three_lines(context: ServiceContext) -> axum::Router {
    orderflow_orders::api::routes_with(
        context,
        OrdersConfig {
            max_lines: SMALL_MAX_LINES,
            ..OrdersConfig::default()
        },
    )
}

/// The service configured to allow only three lines per order.
pub async fn start_with_three_lines() -> TestService {
    TestService::start(ServiceSpec {
        routes: routes_with_three_lines,
        ..orderflow_orders::spec()
    })
    .await
}

pub fn address(city: &str) -> Address {
    Address {
        recipient: "Ada Lovelace".into(),
        line1: "Friedrichstraße 123".into(),
        line2: None,
        city: city.into(),
        region: None,
        postal_code: "10117".into(),
        country: "DE".parse().unwrap(),
    }
}

/// A customer in the replica, as the `CustomerRegistered` reaction will write it.
pub async fn seed_customer(svc: &TestService, active: bool) -> CustomerId {
    let customer = Customer {
        customer_id: CustomerId::new_v7(),
        active,
        shipping_address: address("Berlin"),
    };
    let mut conn = svc.pool().acquire().await.unwrap();
    assert!(
        replicas::upsert_customer(&mut conn, &customer, Timestamp::now())
            .await
            .unwrap()
    );
    customer.customer_id
}

pub async fn deactivate(svc: &TestService, customer_id: CustomerId) {
    let mut conn = svc.pool().acquire().await.unwrap();
    assert!(
        replicas::deactivate_customer(&mut conn, customer_id, Timestamp::now())
            .await
            .unwrap()
    );
}

pub fn money(minor: i64, currency: Currency) -> Money {
    Money::new(minor, currency).unwrap()
}

/// A product in the replica, as the `ProductCreated` reaction will write it.
pub async fn seed_product(svc: &TestService, sku: &str, minor: i64, currency: Currency) {
    let product = Product {
        sku: sku.parse().unwrap(),
        name: format!("Product {sku}"),
        unit_price: money(minor, currency),
    };
    let mut conn = svc.pool().acquire().await.unwrap();
    assert!(
        replicas::upsert_product(&mut conn, &product, Timestamp::now())
            .await
            .unwrap()
    );
}

/// A new draft over HTTP; its id.
pub async fn create_draft(svc: &TestService, customer_id: CustomerId) -> OrderId {
    let (status, body) = svc
        .post("/orders", json!({"customer_id": customer_id.to_string()}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["order_id"].as_str().unwrap().parse().unwrap()
}

pub async fn add_line(svc: &TestService, order_id: OrderId, sku: &str, quantity: i64) -> Value {
    let (status, body) = svc
        .post(
            &format!("/orders/{order_id}/lines"),
            json!({"sku": sku, "quantity": quantity}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub async fn place(svc: &TestService, order_id: OrderId) -> Value {
    let (status, body) = post_empty(svc, &format!("/orders/{order_id}/place")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A customer, two products (TSHIRT 19.99 EUR, MUG 12.50 EUR) and a draft with 2 T-shirts and a mug.
pub async fn draft_with_lines(svc: &TestService) -> (CustomerId, OrderId) {
    let customer = seed_customer(svc, true).await;
    seed_product(svc, "TSHIRT", 1_999, Currency::EUR).await;
    seed_product(svc, "MUG", 1_250, Currency::EUR).await;
    let order = create_draft(svc, customer).await;
    add_line(svc, order, "TSHIRT", 2).await;
    add_line(svc, order, "MUG", 1).await;
    (customer, order)
}

/// Asserts a 4xx JSON error naming `field`, and returns its message.
pub fn assert_error(
    (status, body): &(StatusCode, Value),
    expected: StatusCode,
    field: &str,
) -> String {
    assert_eq!(*status, expected, "{body}");
    assert_eq!(body["field"], json!(field), "{body}");
    assert!(body["error"].is_string(), "{body}");
    body["message"].as_str().unwrap().to_owned()
}

/// POST without a body (no content type, no content).
pub async fn post_empty(svc: &TestService, path: &str) -> (StatusCode, Value) {
    let response = svc
        .http
        .post(format!("{}{path}", svc.url))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

/// The order row's status.
pub async fn stored_status(svc: &TestService, order_id: OrderId) -> String {
    sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .fetch_one(svc.pool())
        .await
        .unwrap()
}
