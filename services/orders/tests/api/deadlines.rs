//! Saga deadlines at the database level: orders past a deadline are listed with what they wait
//! for, and the sweep cancels the PLACED ones (reason TIMEOUT, one `OrderCancelled` each), leaving
//! every order still within its deadline, and every other state, alone.

use std::time::Duration;

use orderflow_orders::deadlines::{self, Deadlines};
use orderflow_orders::saga_actions;
use orderflow_schemas::orders::{CancellationReason, OrderCancelled, OrderStatus};
use orderflow_schemas::{OrderId, PaymentId};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::testing::TestService;

use crate::support::*;

async fn placed_order(svc: &TestService) -> OrderId {
    let (_, order_id) = draft_with_lines(svc).await;
    place(svc, order_id).await;
    order_id
}

/// Move an order's `column` (placed_at, confirmed_at, ...) `ago` into the past.
async fn backdate(svc: &TestService, order_id: OrderId, column: &str, ago: Duration) {
    sqlx::query(&format!(
        "UPDATE orders SET {column} = {column} - make_interval(secs => $2) WHERE order_id = $1"
    ))
    .bind(order_id.as_uuid())
    .bind(ago.as_secs_f64())
    .execute(svc.pool())
    .await
    .unwrap();
}

fn deadlines() -> Deadlines {
    Deadlines {
        placed: Duration::from_secs(60),
        cancel_requested: Duration::from_secs(120),
        confirmed: Duration::from_secs(3600),
        shipped: Duration::from_secs(7200),
    }
}

#[tokio::test]
async fn orders_past_a_deadline_are_listed_and_placed_ones_cancelled_for_timeout() {
    let svc = start().await;
    let d = deadlines();
    let late_placed = placed_order(&svc).await;
    backdate(&svc, late_placed, "placed_at", Duration::from_secs(61)).await;
    let fresh_placed = placed_order(&svc).await;
    backdate(&svc, fresh_placed, "placed_at", Duration::from_secs(50)).await;
    let late_confirmed = placed_order(&svc).await;
    let mut tx = svc.pool().begin().await.unwrap();
    saga_actions::confirm(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        late_confirmed,
        PaymentId::new_v7(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    backdate(
        &svc,
        late_confirmed,
        "confirmed_at",
        Duration::from_secs(3601),
    )
    .await;
    backdate(&svc, late_confirmed, "placed_at", Duration::from_secs(3601)).await;

    let now = chrono::Utc::now();
    let overdue = deadlines::overdue(svc.pool(), &d, now, 100).await.unwrap();
    let ids: Vec<OrderId> = overdue.iter().map(|o| o.order_id).collect();
    assert_eq!(ids, vec![late_confirmed, late_placed], "{overdue:?}");
    assert_eq!(overdue[0].status, "CONFIRMED");
    assert!(
        overdue[0].waiting_for.contains("ShipmentDispatched"),
        "{overdue:?}"
    );
    assert_eq!(overdue[1].status, "PLACED");
    assert!(
        overdue[1].waiting_for.contains("PaymentSucceeded"),
        "{overdue:?}"
    );
    assert!(overdue[1].deadline < now && overdue[1].since < overdue[1].deadline);

    let before = svc.outbox_rows().await.len();
    let cancelled = deadlines::cancel_overdue_placed(svc.pool(), &svc.context.outbox, &d, now, 100)
        .await
        .unwrap();
    assert_eq!(cancelled, vec![late_placed]);
    let event: OrderCancelled = svc.single_new_event(before).await;
    assert_eq!(event.order.order_id, late_placed);
    assert_eq!(event.reason, CancellationReason::Timeout);
    assert_eq!(event.cancelled_from, OrderStatus::Placed);
    assert!(event.detail.contains("60 s"), "{}", event.detail);
    assert_eq!(stored_status(&svc, late_placed).await, "CANCELLED");
    assert_eq!(stored_status(&svc, fresh_placed).await, "PLACED");
    assert_eq!(stored_status(&svc, late_confirmed).await, "CONFIRMED");
    let (_, body) = svc.get(&format!("/orders/{late_placed}")).await;
    assert_eq!(body["cancellation"]["reason"], "TIMEOUT", "{body}");

    // A second sweep finds nothing more to cancel and writes nothing.
    let counts = svc.counts(&["orders", "outbox"]).await;
    let again = deadlines::cancel_overdue_placed(svc.pool(), &svc.context.outbox, &d, now, 100)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(svc.counts(&["orders", "outbox"]).await, counts);
    let remaining = deadlines::overdue(svc.pool(), &d, now, 100).await.unwrap();
    assert_eq!(
        deadlines::count_by_status(&remaining),
        vec![("PLACED", 0), ("CONFIRMED", 1), ("SHIPPED", 0)]
    );
    svc.finish().await;
}

#[tokio::test]
async fn a_pending_cancellation_request_has_its_own_deadline() {
    let svc = start().await;
    let d = deadlines();
    let order_id = placed_order(&svc).await;
    let mut tx = svc.pool().begin().await.unwrap();
    saga_actions::confirm(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
        PaymentId::new_v7(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (status, body) = post_empty(&svc, &format!("/orders/{order_id}/cancel")).await;
    assert_eq!(status, axum::http::StatusCode::ACCEPTED, "{body}");
    let now = chrono::Utc::now();
    assert!(
        deadlines::overdue(svc.pool(), &d, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    backdate(
        &svc,
        order_id,
        "cancel_requested_at",
        Duration::from_secs(121),
    )
    .await;
    let overdue = deadlines::overdue(svc.pool(), &d, now, 10).await.unwrap();
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert!(
        overdue[0].waiting_for.contains("ShipmentCancelled"),
        "{overdue:?}"
    );
    // Not cancelled by the sweep: only shipping can say whether the goods have left.
    let cancelled = deadlines::cancel_overdue_placed(svc.pool(), &svc.context.outbox, &d, now, 10)
        .await
        .unwrap();
    assert!(cancelled.is_empty());
    assert_eq!(stored_status(&svc, order_id).await, "CONFIRMED");
    svc.finish().await;
}
