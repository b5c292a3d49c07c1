//! The operations the saga reactions will call, driven directly at the database level: each commits the
//! order's new state with exactly one outbox event, and a transition the state machine refuses returns
//! the refusal and writes nothing.

use orderflow_orders::saga_actions;
use orderflow_orders::{Dispatch, Order, OrderError, SagaCancellation, store};
use orderflow_schemas::orders::{
    CancellationReason, OrderCancellationRequested, OrderCancelled, OrderCompleted, OrderConfirmed,
    OrderShipped, OrderStatus,
};
use orderflow_schemas::{Currency, OrderId, PaymentId, ShipmentId, Timestamp};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::testing::TestService;

use crate::support::*;

async fn placed_order(svc: &TestService) -> OrderId {
    let (_, order_id) = draft_with_lines(svc).await;
    place(svc, order_id).await;
    order_id
}

async fn stored(svc: &TestService, order_id: OrderId) -> Order {
    let mut conn = svc.pool().acquire().await.unwrap();
    store::find_order(&mut conn, order_id)
        .await
        .unwrap()
        .unwrap()
}

async fn confirm(
    svc: &TestService,
    order_id: OrderId,
    payment_id: PaymentId,
) -> Result<Order, OrderError> {
    let mut tx = svc.pool().begin().await.unwrap();
    let result = saga_actions::confirm(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
        payment_id,
    )
    .await;
    if result.is_ok() {
        tx.commit().await.unwrap();
    }
    result
}

fn dispatch() -> Dispatch {
    Dispatch {
        shipment_id: ShipmentId::new_v7(),
        carrier: "DHL".into(),
        tracking_number: "JJD0099887766554433".into(),
        dispatched_at: Timestamp::now(),
    }
}

async fn ship(
    svc: &TestService,
    order_id: OrderId,
    dispatch: &Dispatch,
) -> Result<Order, OrderError> {
    let mut tx = svc.pool().begin().await.unwrap();
    let result = saga_actions::mark_shipped(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
        dispatch,
    )
    .await;
    if result.is_ok() {
        tx.commit().await.unwrap();
    }
    result
}

async fn complete(svc: &TestService, order_id: OrderId) -> Result<Order, OrderError> {
    let mut tx = svc.pool().begin().await.unwrap();
    let result = saga_actions::complete(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
    )
    .await;
    if result.is_ok() {
        tx.commit().await.unwrap();
    }
    result
}

async fn cancel(
    svc: &TestService,
    order_id: OrderId,
    cause: &SagaCancellation,
) -> Result<Order, OrderError> {
    let mut tx = svc.pool().begin().await.unwrap();
    let result = saga_actions::cancel_by_saga(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
        cause,
    )
    .await;
    if result.is_ok() {
        tx.commit().await.unwrap();
    }
    result
}

#[tokio::test]
async fn confirm_ship_complete_each_write_one_event() {
    let svc = start().await;
    let order_id = placed_order(&svc).await;
    let payment_id = PaymentId::new_v7();

    let before = svc.outbox_rows().await.len();
    let order = confirm(&svc, order_id, payment_id).await.unwrap();
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(stored(&svc, order_id).await, order);
    let event: OrderConfirmed = svc.single_new_event(before).await;
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.payment_id, payment_id);
    assert_eq!(event.lines.len(), 2);
    assert_eq!(event.total, money(2 * 1_999 + 1_250, Currency::EUR));
    assert_eq!(event.shipping_address, address("Berlin"));
    assert_eq!(Some(event.confirmed_at), order.timeline.confirmed_at);

    let dispatch = dispatch();
    let before = svc.outbox_rows().await.len();
    let order = ship(&svc, order_id, &dispatch).await.unwrap();
    assert_eq!(stored_status(&svc, order_id).await, "SHIPPED");
    let event: OrderShipped = svc.single_new_event(before).await;
    assert_eq!(event.shipment_id, dispatch.shipment_id);
    assert_eq!(event.carrier, "DHL");
    assert_eq!(event.tracking_number, dispatch.tracking_number);
    assert_eq!(event.shipped_at, dispatch.dispatched_at);
    assert_eq!(order.timeline.shipped_at, Some(dispatch.dispatched_at));

    let before = svc.outbox_rows().await.len();
    let order = complete(&svc, order_id).await.unwrap();
    assert_eq!(stored(&svc, order_id).await, order);
    let event: OrderCompleted = svc.single_new_event(before).await;
    let snapshot = event.order;
    assert_eq!(snapshot.order_id, order_id);
    assert_eq!(snapshot.status, OrderStatus::Completed);
    assert_eq!(snapshot.lines.len(), 2);
    assert_eq!(snapshot.payment_id, Some(payment_id));
    assert_eq!(snapshot.shipment_id, Some(dispatch.shipment_id));
    assert_eq!(snapshot.carrier.as_deref(), Some("DHL"));
    assert_eq!(snapshot.shipping_address, Some(address("Berlin")));
    let t = &snapshot.timeline;
    assert!(t.placed_at.is_some() && t.confirmed_at.is_some() && t.shipped_at.is_some());
    assert_eq!(t.completed_at, Some(event.occurred_at));
    assert_eq!(t.cancelled_at, None);

    // The customer can no longer cancel: the goods have left, and the answer says with whom.
    let before = svc.counts(TABLES).await;
    let answer = post_empty(&svc, &format!("/orders/{order_id}/cancel")).await;
    let message = assert_error(&answer, axum::http::StatusCode::CONFLICT, "status");
    assert_eq!(answer.1["error"], "already_dispatched", "{}", answer.1);
    assert!(
        message.contains("DHL") && message.contains("JJD0099887766554433"),
        "{message}"
    );
    assert_eq!(svc.counts(TABLES).await, before);
    svc.finish().await;
}

#[tokio::test]
async fn stock_rejected_and_payment_declined_cancel_a_placed_order() {
    let svc = start().await;
    for (cause, reason) in [
        (
            SagaCancellation::from(&orderflow_schemas::samples::stock_rejected()),
            CancellationReason::OutOfStock,
        ),
        (
            SagaCancellation::from(&orderflow_schemas::samples::payment_declined()),
            CancellationReason::PaymentDeclined,
        ),
    ] {
        let order_id = placed_order(&svc).await;
        let before = svc.outbox_rows().await.len();
        let order = cancel(&svc, order_id, &cause).await.unwrap();
        assert_eq!(stored(&svc, order_id).await, order);
        assert_eq!(stored_status(&svc, order_id).await, "CANCELLED");
        let event: OrderCancelled = svc.single_new_event(before).await;
        assert_eq!(event.reason, reason);
        assert_eq!(event.detail, cause.detail());
        assert_eq!(event.cancelled_from, OrderStatus::Placed);
        assert_eq!(event.order.status, OrderStatus::Cancelled);
        assert_eq!(event.order.lines.len(), 2);
        assert_eq!(event.order.payment_id, None);
        assert_eq!(event.order.timeline.cancelled_at, Some(event.occurred_at));
    }
    svc.finish().await;
}

#[tokio::test]
async fn a_confirmed_order_is_cancelled_once_shipping_cancelled_its_shipment() {
    let svc = start().await;
    let order_id = placed_order(&svc).await;
    let payment_id = PaymentId::new_v7();
    confirm(&svc, order_id, payment_id).await.unwrap();

    // The customer's cancel is a request: the order stays CONFIRMED until shipping answers.
    let before = svc.outbox_rows().await.len();
    let (status, body) = svc
        .post(
            &format!("/orders/{order_id}/cancel"),
            serde_json::json!({"reason_detail": "wrong size"}),
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "CONFIRMED", "{body}");
    assert_eq!(body["cancellation_request"]["outcome"], "PENDING", "{body}");
    assert_eq!(
        body["cancellation_request"]["detail"], "wrong size",
        "{body}"
    );
    let request: OrderCancellationRequested = svc.single_new_event(before).await;
    assert_eq!(request.order_id, order_id);
    assert_eq!(request.detail, "wrong size");
    assert_eq!(stored_status(&svc, order_id).await, "CONFIRMED");

    // Asking again while pending writes nothing.
    let before_counts = svc.counts(TABLES).await;
    let (status, body) = post_empty(&svc, &format!("/orders/{order_id}/cancel")).await;
    assert_eq!(status, axum::http::StatusCode::ACCEPTED, "{body}");
    assert_eq!(svc.counts(TABLES).await, before_counts);

    // Shipping cancelled the shipment: the order is cancelled, from CONFIRMED, with its payment.
    let before = svc.outbox_rows().await.len();
    let mut tx = svc.pool().begin().await.unwrap();
    saga_actions::cancel_after_shipment_cancelled(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let event: OrderCancelled = svc.single_new_event(before).await;
    assert_eq!(event.reason, CancellationReason::CustomerRequest);
    assert_eq!(event.detail, "wrong size");
    assert_eq!(event.cancelled_from, OrderStatus::Confirmed);
    assert_eq!(
        event.order.payment_id,
        Some(payment_id),
        "payments refunds it"
    );
    assert!(event.order.timeline.confirmed_at.is_some());
    let (_, body) = svc.get(&format!("/orders/{order_id}")).await;
    assert_eq!(body["status"], "CANCELLED", "{body}");
    assert_eq!(
        body["cancellation_request"]["outcome"], "CANCELLED",
        "{body}"
    );
    svc.finish().await;
}

#[tokio::test]
async fn refused_saga_transitions_change_nothing() {
    let svc = start().await;
    let (_, draft) = draft_with_lines(&svc).await;
    let placed = placed_order(&svc).await;
    let confirmed = placed_order(&svc).await;
    confirm(&svc, confirmed, PaymentId::new_v7()).await.unwrap();
    let orders = [draft, placed, confirmed];
    let mut snapshots = Vec::new();
    for id in orders {
        snapshots.push(stored(&svc, id).await);
    }
    let before = svc.counts(TABLES).await;
    let out_of_stock = SagaCancellation::OutOfStock {
        detail: "MUG: requested 1, available 0".into(),
    };

    let refusals = [
        confirm(&svc, draft, PaymentId::new_v7()).await,
        confirm(&svc, confirmed, PaymentId::new_v7()).await,
        ship(&svc, draft, &dispatch()).await,
        ship(&svc, placed, &dispatch()).await,
        complete(&svc, placed).await,
        complete(&svc, confirmed).await,
        cancel(&svc, draft, &out_of_stock).await,
        cancel(&svc, confirmed, &out_of_stock).await,
    ];
    for result in refusals {
        let error = result.unwrap_err();
        assert!(error.is_refused_transition(), "{error}");
        assert!(!error.is_transient());
    }
    let message = confirm(&svc, draft, PaymentId::new_v7())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("is DRAFT") && message.contains("cannot confirm"),
        "{message}"
    );

    let missing = OrderId::new_v7();
    assert!(matches!(
        complete(&svc, missing).await,
        Err(OrderError::OrderNotFound(id)) if id == missing
    ));

    assert_eq!(svc.counts(TABLES).await, before);
    for (id, snapshot) in orders.into_iter().zip(snapshots) {
        assert_eq!(stored(&svc, id).await, snapshot);
    }
    svc.finish().await;
}
