//! Who may see customer records, with real tokens from the identity provider: a customer their own
//! record only (another's answers 404), registering, deactivating and listing are the admin's.

use axum::http::StatusCode;
use orderflow_service_kit::testing::TestService;
use reqwest::Method;
use serde_json::{Value, json};

fn registration(n: u32) -> Value {
    json!({
        "name": format!("Customer {n}"),
        "email": format!("customer-{n}-{}@example.org", uuid::Uuid::new_v4().simple()),
        "phone": format!("+4930{:07}", 1_000_000 + n),
        "shipping_address": {"line1": "1 Test Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    })
}

#[tokio::test]
async fn a_customer_reads_their_own_record_only() {
    let svc = TestService::start(orderflow_customers::spec()).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let (status, body) = svc.post("/customers", registration(n)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let alice = svc.identity.customer(ids[0].parse().unwrap()).await;
    let (status, _, body) = svc
        .request_as(
            Method::GET,
            &format!("/customers/{}", ids[0]),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (StatusCode::OK, Some(ids[0].as_str())),
        "{body}"
    );
    let (status, _, body) = svc
        .request_as(
            Method::GET,
            &format!("/customers/{}", ids[1]),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another customer's record: {body}"
    );
    for (method, path, body) in [
        (Method::GET, "/customers".to_string(), None),
        (
            Method::POST,
            "/customers".to_string(),
            Some(registration(7)),
        ),
        (
            Method::POST,
            format!("/customers/{}/deactivate", ids[0]),
            None,
        ),
    ] {
        let (status, _, answer) = svc
            .request_as(method.clone(), &path, Some(&alice), body)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
    let (_, body) = svc.get(&format!("/customers/{}", ids[0])).await;
    assert_eq!(body["status"], "ACTIVE", "{body}");
    svc.finish().await;
}
