//! Idempotency keys on the shipping POSTs, against the real PostgreSQL and registry: a retried
//! dispatch or delivery is answered from its key (200 again, not a 409 for the new status) and has one
//! effect (outbox events counted); another carrier under the key is a 422 naming the header;
//! concurrent copies dispatch once; a key replays after a restart.

use axum::http::StatusCode;
use orderflow_schemas::orders::OrderConfirmed;
use orderflow_schemas::{CustomerId, EventId, OrderId, samples};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::testing::{Answer, TestService};
use orderflow_shipping::{CreateOutcome, Shipment, create_shipment, spec};
use serde_json::{Value, json};

/// A new CREATED shipment, as the `OrderConfirmed` reaction writes it.
async fn created(svc: &TestService) -> Shipment {
    let confirmed = OrderConfirmed {
        event_id: EventId::new_v7(),
        order_id: OrderId::new_v7(),
        customer_id: CustomerId::new_v7(),
        ..samples::order_confirmed()
    };
    let mut tx = svc.pool().begin().await.unwrap();
    let outcome = create_shipment(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        &confirmed,
    )
    .await
    .expect("create shipment");
    tx.commit().await.unwrap();
    match outcome {
        CreateOutcome::Created(shipment) => shipment,
        other => panic!("expected a new shipment, got {other:?}"),
    }
}

fn dhl() -> Value {
    json!({"carrier": "DHL", "tracking_number": "JJD0099887766554433"})
}

async fn events_of_type(svc: &TestService, name: &str) -> usize {
    svc.outbox_rows()
        .await
        .iter()
        .filter(|row| row.event_type == name)
        .count()
}

fn assert_names_the_header(answer: &Answer, status: StatusCode, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["field"], "Idempotency-Key", "{}", answer.body);
    assert_eq!(answer.body["error"], error, "{}", answer.body);
    assert!(!answer.replayed);
}

const DISPATCHED: &str = "orderflow.shipping.ShipmentDispatched";
const DELIVERED: &str = "orderflow.shipping.ShipmentDelivered";

#[tokio::test]
async fn a_retried_dispatch_and_delivery_are_answered_from_their_keys() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let dispatch = format!("/shipments/{}/dispatch", shipment.shipment_id);
    let first = svc.post_keyed(&dispatch, "dispatch-1", Some(&dhl())).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = svc.post_keyed(&dispatch, "dispatch-1", Some(&dhl())).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed, "not a 409 for dispatching twice");
    assert_eq!(events_of_type(&svc, DISPATCHED).await, 1);

    let ups = json!({"carrier": "UPS", "tracking_number": "1Z999"});
    let other = svc.post_keyed(&dispatch, "dispatch-1", Some(&ups)).await;
    assert_names_the_header(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let carrier: String = sqlx::query_scalar("SELECT carrier FROM shipments")
        .fetch_one(svc.pool())
        .await
        .unwrap();
    assert_eq!(carrier, "DHL");

    let deliver = format!("/shipments/{}/deliver", shipment.shipment_id);
    let first = svc.post_keyed(&deliver, "deliver-1", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = svc.post_keyed(&deliver, "deliver-1", None).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed);
    assert_eq!(events_of_type(&svc, DELIVERED).await, 1);
    svc.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_keyed_dispatch_dispatch_once() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let dispatch = format!("/shipments/{}/dispatch", shipment.shipment_id);
    let answers = svc
        .post_keyed_concurrently(&dispatch, "burst", Some(&dhl()), 8)
        .await;
    let done: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert!(!done.is_empty(), "{answers:?}");
    assert!(done.iter().all(|a| a.body == done[0].body), "{answers:?}");
    for answer in answers.iter().filter(|a| a.status != StatusCode::OK) {
        assert_names_the_header(answer, StatusCode::CONFLICT, "idempotency_key_in_use");
    }
    assert_eq!(events_of_type(&svc, DISPATCHED).await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn a_key_still_replays_after_the_service_restarted() {
    let mut svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let dispatch = format!("/shipments/{}/dispatch", shipment.shipment_id);
    let first = svc
        .post_keyed(&dispatch, "before-restart", Some(&dhl()))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    svc.restart().await;
    let again = svc
        .post_keyed(&dispatch, "before-restart", Some(&dhl()))
        .await;
    assert!(again.replayed, "{}", again.body);
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(events_of_type(&svc, DISPATCHED).await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn the_openapi_document_names_the_header_on_every_post() {
    let svc = TestService::start(spec()).await;
    svc.assert_every_post_documents_the_idempotency_key().await;
    svc.finish().await;
}
