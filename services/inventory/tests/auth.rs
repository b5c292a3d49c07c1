//! Who may change the catalogue, with real tokens from the identity provider: only an admin creates
//! and restocks products (a carrier or a customer is 403, and the stock does not move); customers and
//! admins read the catalogue, a carrier does not; no token is 401.

use axum::http::StatusCode;
use orderflow_schemas::CustomerId;
use orderflow_service_kit::testing::TestService;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_carrier_cannot_restock_and_only_an_admin_changes_the_catalogue() {
    let svc = TestService::start(orderflow_inventory::spec()).await;
    let (status, body) = svc
        .post(
            "/products",
            json!({"sku": "KETTLE", "name": "Kettle", "unit_price": {"amount_minor": 3450, "currency": "EUR"}, "on_hand": 5}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the admin creates a product: {body}"
    );
    let carrier = svc.identity.carrier().await;
    let customer = svc.identity.customer(CustomerId::new_v7()).await;
    let before = svc.counts(&["products", "outbox"]).await;
    for (who, token) in [("carrier", &carrier), ("customer", &customer)] {
        let (status, _, body) = svc
            .request_as(
                Method::POST,
                "/products/KETTLE/restock",
                Some(token),
                Some(json!({"quantity": 10})),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{who} restocks: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("admin"),
            "{body}"
        );
        let (status, _, body) = svc
            .request_as(
                Method::POST,
                "/products",
                Some(token),
                Some(json!({"sku": "MUG", "name": "Mug", "unit_price": {"amount_minor": 990, "currency": "EUR"}, "on_hand": 5})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{who} creates a product: {body}"
        );
    }
    assert_eq!(
        svc.counts(&["products", "outbox"]).await,
        before,
        "nothing was written"
    );
    let (_, product) = svc.get("/products/KETTLE").await;
    assert_eq!(product["on_hand"], 5, "{product}");

    // A customer browses the catalogue; a carrier may not.
    let (status, _, body) = svc
        .request_as(Method::GET, "/products/KETTLE", Some(&customer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = svc
        .request_as(Method::GET, "/products", Some(&carrier), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // No token at all.
    let (status, headers, body) = svc
        .request_as(
            Method::POST,
            "/products/KETTLE/restock",
            None,
            Some(json!({"quantity": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.contains_key("www-authenticate"));

    // The admin restocks.
    let (status, body) = svc
        .post("/products/KETTLE/restock", json!({"quantity": 10}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["on_hand"], 15, "{body}");
    svc.finish().await;
}
