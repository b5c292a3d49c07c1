//! Idempotency keys on the orders' POSTs, against the real PostgreSQL and registry: a retried draft
//! creation, line, place or cancel is answered from its key and has one effect (rows and outbox events
//! counted); another body under the key is a 422 naming the header; concurrent copies create one
//! draft; a key replays after a restart.

#[path = "api/support.rs"]
mod support;

use axum::http::StatusCode;
use orderflow_service_kit::testing::Answer;
use serde_json::json;

use support::*;

fn assert_names_the_header(answer: &Answer, status: StatusCode, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["field"], "Idempotency-Key", "{}", answer.body);
    assert_eq!(answer.body["error"], error, "{}", answer.body);
    assert!(!answer.replayed);
}

async fn events_of_type(svc: &orderflow_service_kit::testing::TestService, name: &str) -> usize {
    svc.outbox_rows()
        .await
        .iter()
        .filter(|row| row.event_type == name)
        .count()
}

#[tokio::test]
async fn a_retried_draft_creation_answers_the_same_draft_and_creates_one() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    let body = json!({"customer_id": customer.to_string()});
    let first = svc.post_keyed("/orders", "draft-1", Some(&body)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!first.replayed);
    let again = svc.post_keyed("/orders", "draft-1", Some(&body)).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed);
    assert_eq!(svc.count("orders").await, 1, "one draft");
    assert_eq!(svc.count("outbox").await, 1, "one OrderCreated");

    // the replay carries the first answer's Location too
    let response = svc
        .http
        .post(format!("{}/orders", svc.url))
        .header("Idempotency-Key", "draft-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/orders/{}", first.body["order_id"].as_str().unwrap())
    );

    let other = svc
        .post_keyed(
            "/orders",
            "draft-1",
            Some(&json!({"customer_id": customer.to_string(), "currency": "USD"})),
        )
        .await;
    assert_names_the_header(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(svc.count("orders").await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn a_retried_line_is_added_once_and_another_quantity_under_its_key_is_a_422() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    seed_product(&svc, "MUG", 1_250, orderflow_schemas::Currency::EUR).await;
    let order = create_draft(&svc, customer).await;
    let path = format!("/orders/{order}/lines");
    let body = json!({"sku": "MUG", "quantity": 2});
    let first = svc.post_keyed(&path, "line-1", Some(&body)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = svc.post_keyed(&path, "line-1", Some(&body)).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed);
    let quantity: i32 = sqlx::query_scalar("SELECT quantity FROM order_lines WHERE sku = 'MUG'")
        .fetch_one(svc.pool())
        .await
        .unwrap();
    assert_eq!(quantity, 2, "added once, not twice");
    assert_eq!(
        events_of_type(&svc, "orderflow.orders.OrderLineAdded").await,
        1
    );

    let other = svc
        .post_keyed(&path, "line-1", Some(&json!({"sku": "MUG", "quantity": 3})))
        .await;
    assert_names_the_header(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(
        events_of_type(&svc, "orderflow.orders.OrderLineAdded").await,
        1
    );
    svc.finish().await;
}

#[tokio::test]
async fn a_retried_place_and_cancel_are_answered_from_their_keys() {
    let svc = start().await;
    let (_, order) = draft_with_lines(&svc).await;
    let place = format!("/orders/{order}/place");
    let first = svc.post_keyed(&place, "place-1", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = svc.post_keyed(&place, "place-1", None).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed, "not a 409 for placing a placed order");
    assert_eq!(
        events_of_type(&svc, "orderflow.orders.OrderPlaced").await,
        1
    );

    let cancel = format!("/orders/{order}/cancel");
    let first = svc.post_keyed(&cancel, "cancel-1", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = svc.post_keyed(&cancel, "cancel-1", None).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed);
    let with_reason = svc
        .post_keyed(
            &cancel,
            "cancel-1",
            Some(&json!({"reason_detail": "changed my mind"})),
        )
        .await;
    assert_names_the_header(
        &with_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(
        events_of_type(&svc, "orderflow.orders.OrderCancelled").await,
        1
    );
    svc.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_keyed_draft_creation_create_one_draft() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    let body = json!({"customer_id": customer.to_string()});
    let answers = svc
        .post_keyed_concurrently("/orders", "burst", Some(&body), 8)
        .await;
    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(
        created.iter().all(|a| a.body == created[0].body),
        "{answers:?}"
    );
    for answer in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_names_the_header(answer, StatusCode::CONFLICT, "idempotency_key_in_use");
    }
    assert_eq!(svc.count("orders").await, 1, "{answers:?}");
    assert_eq!(svc.count("outbox").await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn a_key_still_replays_after_the_service_restarted() {
    let mut svc = start().await;
    let (_, order) = draft_with_lines(&svc).await;
    let place = format!("/orders/{order}/place");
    let first = svc.post_keyed(&place, "place-before-restart", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    svc.restart().await;
    let again = svc.post_keyed(&place, "place-before-restart", None).await;
    assert!(again.replayed, "{}", again.body);
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(
        events_of_type(&svc, "orderflow.orders.OrderPlaced").await,
        1
    );
    svc.finish().await;
}

#[tokio::test]
async fn the_openapi_document_names_the_header_on_every_post() {
    let svc = start().await;
    svc.assert_every_post_documents_the_idempotency_key().await;
    svc.finish().await;
}
