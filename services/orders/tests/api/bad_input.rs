//! Every bad input answers a 4xx JSON error naming the field and writes nothing: the row counts of
//! every table, the outbox included, are the same before and after.

use axum::http::StatusCode;
use orderflow_schemas::{Currency, CustomerId, OrderId};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn bad_create_requests_change_nothing() {
    let svc = start().await;
    let active = seed_customer(&svc, true).await;
    let inactive = seed_customer(&svc, false).await;
    let before = svc.counts(TABLES).await;

    let unknown = CustomerId::new_v7();
    let message = assert_error(
        &svc.post("/orders", json!({"customer_id": unknown.to_string()}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customer_id",
    );
    assert!(message.contains("not known"), "{message}");
    let message = assert_error(
        &svc.post("/orders", json!({"customer_id": inactive.to_string()}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customer_id",
    );
    assert!(message.contains("deactivated"), "{message}");
    assert_error(
        &svc.post("/orders", json!({"customer_id": "not-a-uuid"}))
            .await,
        StatusCode::BAD_REQUEST,
        "customer_id",
    );
    let missing = svc.post("/orders", json!({})).await;
    assert_eq!(missing.0, StatusCode::BAD_REQUEST, "{}", missing.1);
    assert!(
        ["customer_id", "body"].contains(&missing.1["field"].as_str().unwrap()),
        "{}",
        missing.1
    );
    assert!(
        missing.1["message"]
            .as_str()
            .unwrap()
            .contains("missing field `customer_id`")
    );
    let message = assert_error(
        &svc.post(
            "/orders",
            json!({"customer_id": active.to_string(), "discount": 5}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "discount",
    );
    assert!(message.contains("unknown field `discount`"), "{message}");
    assert_error(
        &svc.post(
            "/orders",
            json!({"customer_id": active.to_string(), "currency": "eur"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "currency",
    );
    let malformed = svc
        .post_raw(
            "/orders",
            "application/json",
            b"{\"customer_id\": ".to_vec(),
        )
        .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "body");
    assert_eq!(malformed.1["error"], "malformed_json");
    assert_error(
        &svc.post_raw("/orders", "text/plain", b"hello".to_vec())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content-type",
    );
    let mut huge = format!("{{\"customer_id\": \"{active}\", \"pad\": \"");
    huge.push_str(&"x".repeat(70 * 1024));
    huge.push_str("\"}");
    assert_error(
        &svc.post_raw("/orders", "application/json", huge.into_bytes())
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body",
    );

    assert_eq!(svc.counts(TABLES).await, before);
    svc.finish().await;
}

#[tokio::test]
async fn bad_lines_change_nothing() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    seed_product(&svc, "TSHIRT", 1_999, Currency::EUR).await;
    seed_product(&svc, "DOLLAR-CAP", 1_500, Currency::USD).await;
    let order_id = create_draft(&svc, customer).await;
    add_line(&svc, order_id, "TSHIRT", 999).await;
    let before = svc.counts(TABLES).await;
    let lines = format!("/orders/{order_id}/lines");

    for quantity in [
        json!(0),
        json!(-1),
        json!(1001),
        json!(1.5),
        json!("two"),
        json!(null),
    ] {
        let message = assert_error(
            &svc.post(&lines, json!({"sku": "TSHIRT", "quantity": quantity}))
                .await,
            StatusCode::BAD_REQUEST,
            "quantity",
        );
        assert!(!message.is_empty());
    }
    let message = assert_error(
        &svc.post(&lines, json!({"sku": "TSHIRT", "quantity": 0}))
            .await,
        StatusCode::BAD_REQUEST,
        "quantity",
    );
    assert!(message.contains("between 1 and 1000"), "{message}");
    let missing = svc.post(&lines, json!({"sku": "TSHIRT"})).await;
    assert_eq!(missing.0, StatusCode::BAD_REQUEST, "{}", missing.1);
    assert!(
        ["quantity", "body"].contains(&missing.1["field"].as_str().unwrap()),
        "{}",
        missing.1
    );
    let message = assert_error(
        &svc.post(&lines, json!({"sku": "NOPE", "quantity": 1}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sku",
    );
    assert!(message.contains("NOPE"), "{message}");
    assert_error(
        &svc.post(&lines, json!({"sku": "no spaces!", "quantity": 1}))
            .await,
        StatusCode::BAD_REQUEST,
        "sku",
    );
    let message = assert_error(
        &svc.post(&lines, json!({"sku": "DOLLAR-CAP", "quantity": 1}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sku",
    );
    assert!(
        message.contains("USD") && message.contains("EUR"),
        "{message}"
    );
    // 999 + 2 units would exceed 1000 on the line.
    let message = assert_error(
        &svc.post(&lines, json!({"sku": "TSHIRT", "quantity": 2}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "quantity",
    );
    assert!(message.contains("999"), "{message}");
    assert_error(
        &svc.post(
            &lines,
            json!({"sku": "TSHIRT", "quantity": 1, "unit_price": 1}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unit_price",
    );
    assert_error(
        &svc.post_raw(&lines, "application/json", b"{\"sku\": ".to_vec())
            .await,
        StatusCode::BAD_REQUEST,
        "body",
    );
    assert_eq!(
        svc.post(
            &format!("/orders/{}/lines", OrderId::new_v7()),
            json!({"sku": "TSHIRT", "quantity": 1})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_error(
        &svc.post("/orders/42/lines", json!({"sku": "TSHIRT", "quantity": 1}))
            .await,
        StatusCode::BAD_REQUEST,
        "order_id",
    );

    assert_eq!(svc.counts(TABLES).await, before);
    svc.finish().await;
}

#[tokio::test]
async fn too_many_lines_is_refused_at_the_configured_limit() {
    let svc = start_with_three_lines().await;
    let customer = seed_customer(&svc, true).await;
    let order_id = create_draft(&svc, customer).await;
    for sku in ["A", "B", "C", "D"] {
        seed_product(&svc, sku, 100, Currency::EUR).await;
    }
    for sku in ["A", "B", "C"] {
        add_line(&svc, order_id, sku, 1).await;
    }
    let before = svc.counts(TABLES).await;
    let message = assert_error(
        &svc.post(
            &format!("/orders/{order_id}/lines"),
            json!({"sku": "D", "quantity": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "lines",
    );
    assert!(message.contains(&SMALL_MAX_LINES.to_string()), "{message}");
    assert_eq!(svc.counts(TABLES).await, before);
    // An existing line may still grow.
    add_line(&svc, order_id, "A", 1).await;
    svc.finish().await;
}

#[tokio::test]
async fn removing_what_is_not_there_changes_nothing() {
    let svc = start().await;
    let (_, order_id) = draft_with_lines(&svc).await;
    let before = svc.counts(TABLES).await;

    let (status, body) = svc.delete(&format!("/orders/{order_id}/lines/SOCKS")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["field"], "sku");
    let (status, _) = svc
        .delete(&format!("/orders/{}/lines/MUG", OrderId::new_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(
        &svc.delete(&format!("/orders/{order_id}/lines/bad%20sku"))
            .await,
        StatusCode::BAD_REQUEST,
        "sku",
    );
    assert_error(
        &svc.delete("/orders/nope/lines/MUG").await,
        StatusCode::BAD_REQUEST,
        "order_id",
    );

    assert_eq!(svc.counts(TABLES).await, before);
    svc.finish().await;
}

/// serde reads a JSON array as a struct's fields by position; every body must be an object. The
/// cases a new user found: a positional draft, and `[]` or `null` as a cancel body.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused_and_changes_nothing() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    let order_id = create_draft(&svc, customer).await;
    let before = svc.counts(TABLES).await;
    for (path, body) in [
        ("/orders".to_string(), json!([customer.to_string(), "EUR"])),
        (format!("/orders/{order_id}/cancel"), json!([])),
        (format!("/orders/{order_id}/cancel"), json!(null)),
        (
            format!("/orders/{order_id}/cancel"),
            json!("changed my mind"),
        ),
        (format!("/orders/{order_id}/lines"), json!(["MUG", 1])),
    ] {
        let (status, error) = svc.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {error}");
        assert_eq!(
            (error["error"].as_str(), error["field"].as_str()),
            (Some("not_an_object"), Some("body")),
            "{path} {body}: {error}"
        );
    }
    assert_eq!(svc.counts(TABLES).await, before, "nothing written");
    assert_eq!(stored_status(&svc, order_id).await, "DRAFT");
}

/// The document says what the server does: an optional cancel body is an object (not `null`) and
/// not required; bodies document 400, 413 and 415; the list's limits and patterns are in the schema.
#[tokio::test]
async fn the_openapi_document_matches_the_server() {
    let svc = start().await;
    let (status, doc) = svc.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let cancel = &doc["paths"]["/orders/{order_id}/cancel"]["post"];
    let body = &cancel["requestBody"];
    assert_ne!(body["required"], json!(true), "{body}");
    let schema = &body["content"]["application/json"]["schema"];
    assert_eq!(
        schema["$ref"], "#/components/schemas/CancelRequest",
        "{schema}"
    );
    for (path, method) in [
        ("/orders", "post"),
        ("/orders/{order_id}/lines", "post"),
        ("/orders/{order_id}/cancel", "post"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        for status in ["400", "413", "415", "408", "429"] {
            assert!(
                responses[status].is_object(),
                "{method} {path} documents {status}"
            );
        }
    }
    let params = doc["paths"]["/orders"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["schema"]
            .clone()
    };
    assert_eq!(
        (
            param("limit")["minimum"].clone(),
            param("limit")["maximum"].clone()
        ),
        (json!(1), json!(100))
    );
    assert_eq!(param("from")["minLength"], json!(1));
    assert_eq!(param("cursor")["minLength"], json!(1));
    assert!(param("status")["pattern"].is_string());
    let sku = doc["paths"]["/orders/{order_id}/lines/{sku}"]["delete"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sku")
        .unwrap()["schema"]
        .clone();
    assert!(sku["pattern"].as_str().unwrap().contains("{1,64}"), "{sku}");
    // What the schema allows, the server accepts: a limit of 1 and 100; 0 is outside both.
    for (query, expected) in [
        ("limit=1", 200),
        ("limit=100", 200),
        ("limit=0", 400),
        ("from=", 400),
    ] {
        let (status, _) = svc.get(&format!("/orders?{query}")).await;
        assert_eq!(status.as_u16(), expected, "{query}");
    }
}
