//! Placing and cancelling over HTTP, and the state machine refusing what it does not list (409, naming
//! the current status and the attempted transition, nothing written).

use axum::http::StatusCode;
use orderflow_schemas::orders::{CancellationReason, OrderCancelled, OrderPlaced, OrderStatus};
use orderflow_schemas::{Currency, OrderId};
use serde_json::json;
use sqlx::Row;

use crate::support::*;

#[tokio::test]
async fn placing_writes_order_placed_with_lines_total_and_address() {
    let svc = start().await;
    let (customer, order_id) = draft_with_lines(&svc).await;
    let before = svc.outbox_rows().await.len();

    let (status, body) = post_empty(&svc, &format!("/orders/{order_id}/place")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "PLACED");
    assert_eq!(body["shipping_address"]["city"], "Berlin");
    assert!(body["timeline"]["placed_at"].is_string());
    assert_eq!(body["total"]["amount_minor"], 2 * 1999 + 1250);

    let row = sqlx::query("SELECT status, placed_at IS NOT NULL AS placed, ship_city FROM orders")
        .fetch_one(svc.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("status"), "PLACED");
    assert!(row.get::<bool, _>("placed"));
    assert_eq!(row.get::<String, _>("ship_city"), "Berlin");

    let event: OrderPlaced = svc.single_new_event(before).await;
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.customer_id, customer);
    let lines: Vec<(String, u32, i64)> = event
        .lines
        .iter()
        .map(|l| {
            (
                l.sku.to_string(),
                l.quantity.get(),
                l.unit_price.amount_minor(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("TSHIRT".into(), 2, 1_999), ("MUG".into(), 1, 1_250)]
    );
    assert_eq!(event.total, money(2 * 1_999 + 1_250, Currency::EUR));
    assert_eq!(event.shipping_address, address("Berlin"));
    assert_eq!(event.placed_at, event.occurred_at);
    assert!(event.created_at <= event.placed_at);
    svc.finish().await;
}

#[tokio::test]
async fn placing_is_refused_without_lines_or_customer_or_twice() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    let empty = create_draft(&svc, customer).await;
    let (_, placed) = draft_with_lines(&svc).await;
    place(&svc, placed).await;
    let (leaving, leaving_order) = draft_with_lines(&svc).await;
    deactivate(&svc, leaving).await;
    let before = svc.counts(TABLES).await;

    let message = assert_error(
        &post_empty(&svc, &format!("/orders/{empty}/place")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "lines",
    );
    assert!(message.contains("without lines"), "{message}");
    assert_error(
        &post_empty(&svc, &format!("/orders/{leaving_order}/place")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customer_id",
    );
    let refused = post_empty(&svc, &format!("/orders/{placed}/place")).await;
    let message = assert_error(&refused, StatusCode::CONFLICT, "status");
    assert_eq!(refused.1["error"], "invalid_transition");
    assert!(
        message.contains("is PLACED") && message.contains("cannot place"),
        "{message}"
    );
    let (status, body) = post_empty(&svc, &format!("/orders/{}/place", OrderId::new_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");

    assert_eq!(svc.counts(TABLES).await, before);
    assert_eq!(stored_status(&svc, placed).await, "PLACED");
    assert_eq!(stored_status(&svc, empty).await, "DRAFT");
    svc.finish().await;
}

#[tokio::test]
async fn lines_are_frozen_once_placed() {
    let svc = start().await;
    let (_, order_id) = draft_with_lines(&svc).await;
    place(&svc, order_id).await;
    let before = svc.counts(TABLES).await;

    let message = assert_error(
        &svc.post(
            &format!("/orders/{order_id}/lines"),
            json!({"sku": "MUG", "quantity": 1}),
        )
        .await,
        StatusCode::CONFLICT,
        "status",
    );
    assert!(
        message.contains("is PLACED") && message.contains("edit lines"),
        "{message}"
    );
    assert_error(
        &svc.delete(&format!("/orders/{order_id}/lines/MUG")).await,
        StatusCode::CONFLICT,
        "status",
    );
    assert_eq!(svc.counts(TABLES).await, before);
    svc.finish().await;
}

#[tokio::test]
async fn cancelling_a_draft_without_a_body() {
    let svc = start().await;
    let (customer, order_id) = draft_with_lines(&svc).await;
    let before = svc.outbox_rows().await.len();

    let (status, body) = post_empty(&svc, &format!("/orders/{order_id}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANCELLED");
    assert_eq!(
        body["cancellation"],
        json!({"reason": "CUSTOMER_REQUEST", "detail": "", "cancelled_from": "DRAFT"})
    );
    assert!(body["timeline"]["cancelled_at"].is_string());
    assert_eq!(stored_status(&svc, order_id).await, "CANCELLED");

    let event: OrderCancelled = svc.single_new_event(before).await;
    assert_eq!(event.reason, CancellationReason::CustomerRequest);
    assert_eq!(event.detail, "");
    assert_eq!(event.cancelled_from, OrderStatus::Draft);
    let snapshot = &event.order;
    assert_eq!(snapshot.order_id, order_id);
    assert_eq!(snapshot.customer_id, customer);
    assert_eq!(snapshot.status, OrderStatus::Cancelled);
    assert_eq!(snapshot.lines.len(), 2);
    assert_eq!(snapshot.total, money(2 * 1_999 + 1_250, Currency::EUR));
    assert_eq!(snapshot.shipping_address, None, "a draft has no address");
    assert_eq!(snapshot.timeline.placed_at, None);
    assert_eq!(snapshot.timeline.cancelled_at, Some(event.occurred_at));
    svc.finish().await;
}

#[tokio::test]
async fn cancelling_a_placed_order_with_a_reason() {
    let svc = start().await;
    let (_, order_id) = draft_with_lines(&svc).await;
    place(&svc, order_id).await;
    let before = svc.outbox_rows().await.len();

    let (status, body) = svc
        .post(
            &format!("/orders/{order_id}/cancel"),
            json!({"reason_detail": "found it cheaper"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancellation"]["detail"], "found it cheaper");
    assert_eq!(body["cancellation"]["cancelled_from"], "PLACED");

    let event: OrderCancelled = svc.single_new_event(before).await;
    assert_eq!(event.reason, CancellationReason::CustomerRequest);
    assert_eq!(event.detail, "found it cheaper");
    assert_eq!(event.cancelled_from, OrderStatus::Placed);
    assert_eq!(event.order.shipping_address, Some(address("Berlin")));
    assert!(event.order.timeline.placed_at.is_some());
    assert_eq!(event.order.payment_id, None);
    svc.finish().await;
}

#[tokio::test]
async fn bad_cancellations_change_nothing() {
    let svc = start().await;
    let (_, order_id) = draft_with_lines(&svc).await;
    let (_, cancelled) = draft_with_lines(&svc).await;
    post_empty(&svc, &format!("/orders/{cancelled}/cancel")).await;
    let before = svc.counts(TABLES).await;
    let cancel = format!("/orders/{order_id}/cancel");

    assert_error(
        &svc.post(&cancel, json!({"reason_detail": "x".repeat(501)}))
            .await,
        StatusCode::BAD_REQUEST,
        "reason_detail",
    );
    assert_error(
        &svc.post(&cancel, json!({"reason": "CUSTOMER_REQUEST"}))
            .await,
        StatusCode::BAD_REQUEST,
        "reason",
    );
    assert_error(
        &svc.post_raw(&cancel, "application/json", b"{".to_vec())
            .await,
        StatusCode::BAD_REQUEST,
        "body",
    );
    let message = assert_error(
        &post_empty(&svc, &format!("/orders/{cancelled}/cancel")).await,
        StatusCode::CONFLICT,
        "status",
    );
    assert!(message.contains("is CANCELLED"), "{message}");

    assert_eq!(svc.counts(TABLES).await, before);
    assert_eq!(stored_status(&svc, order_id).await, "DRAFT");
    svc.finish().await;
}
