//! Deadlines and a transient fault, end to end: a test holds the row lock of a product in the
//! inventory database for longer than the workers' statement timeout, so inventory-saga's
//! reservation of an order times out (SQLSTATE 57014) again and again. That must be retried, never
//! dead-lettered. Meanwhile the order waits PLACED past its deadline (placed_at moved back), and the
//! workers' deadline sweep cancels it with reason TIMEOUT. Once the lock is released, inventory
//! applies the OrderPlaced it kept retrying, then the OrderCancelled: the stock ends where it began
//! and no payment is kept. A confirmed order left waiting past its deadline is listed by
//! `orderflow orders stuck`.

use sqlx::Row;

use crate::shop::*;
use crate::support::platform::{eventually, platform};

#[tokio::test]
async fn an_order_waiting_past_its_deadline_on_a_locked_row_is_cancelled_and_compensated() {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 5).await;
    let orders_db = p.db("orders").await;
    let inventory_db = p.db("inventory").await;

    // Hold the product's row lock: inventory-saga's reservation waits and times out.
    let mut lock = inventory_db.begin().await.unwrap();
    sqlx::query("SELECT sku FROM products WHERE sku = $1 FOR UPDATE")
        .bind(&sku)
        .execute(&mut *lock)
        .await
        .unwrap();
    let order_id = place_order(p, &customer, &[(&sku, 2)]).await;

    // The worker's statement timeout is 1 s: wait until the reservation has timed out at least
    // once (the worker counts retries of inventory-saga), then let the order miss its deadline.
    let retries = || p.worker_counter("orderflow_retries_total", &[("consumer", "inventory-saga")]);
    let before = retries().await.unwrap();
    eventually(
        "inventory-saga to retry the timed-out reservation",
        SAGA,
        || async {
            let now = retries().await?;
            if now > before {
                Ok(())
            } else {
                Err(format!("retries {now}"))
            }
        },
    )
    .await;
    assert_eq!(order(p, &order_id).await["status"], "PLACED");
    sqlx::query(
        "UPDATE orders SET placed_at = placed_at - interval '1 hour' WHERE order_id = $1::uuid",
    )
    .bind(&order_id)
    .execute(&orders_db)
    .await
    .unwrap();
    let cancelled = order_reaches(p, &order_id, "CANCELLED").await;
    assert_eq!(
        cancelled["cancellation"]["reason"], "TIMEOUT",
        "{cancelled}"
    );
    assert_eq!(cancelled["cancellation"]["cancelled_from"], "PLACED");

    // The fault passes: the retried reservation is applied (not dead-lettered), then released.
    lock.rollback().await.unwrap();
    let placed_event: uuid::Uuid = sqlx::query(
        "SELECT id FROM outbox WHERE aggregate_id = $1 AND event_type = 'orderflow.orders.OrderPlaced'",
    )
    .bind(&order_id)
    .fetch_one(&orders_db)
    .await
    .unwrap()
    .get("id");
    eventually(
        "inventory-saga to apply the OrderPlaced it retried",
        SAGA,
        || async {
            let applied: i64 = sqlx::query(
            "SELECT count(*) AS n FROM inbox WHERE consumer = 'inventory-saga' AND event_id = $1",
        )
        .bind(placed_event)
        .fetch_one(&inventory_db)
        .await
        .map_err(|e| e.to_string())?
        .get("n");
            if applied == 1 {
                Ok(())
            } else {
                Err("not applied yet".to_string())
            }
        },
    )
    .await;
    stock_reaches(p, &sku, 5, 0).await;
    let (status, payment) = p
        .get(format!("{}/orders/{order_id}/payment", p.payments))
        .await;
    assert!(
        status == 404 || payment["status"] == "REFUNDED" || payment["status"] == "DECLINED",
        "no payment is kept for an order cancelled for timeout: {status} {payment}"
    );
}

#[tokio::test]
async fn a_confirmed_order_past_its_deadline_is_listed_as_stuck() {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 5).await;
    let order_id = place_order(p, &customer, &[(&sku, 1)]).await;
    order_reaches(p, &order_id, "CONFIRMED").await;
    let orders_db = p.db("orders").await;
    sqlx::query(
        "UPDATE orders SET placed_at = placed_at - interval '30 days',
                           confirmed_at = confirmed_at - interval '30 days'
         WHERE order_id = $1::uuid",
    )
    .bind(&order_id)
    .execute(&orders_db)
    .await
    .unwrap();

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["orders", "stuck", "--json"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run orderflow orders stuck");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|o| o["order_id"] == order_id.as_str())
        .unwrap_or_else(|| panic!("{order_id} not listed:\n{stdout}"));
    assert_eq!(line["status"], "CONFIRMED", "{line}");
    assert!(
        line["waiting_for"]
            .as_str()
            .unwrap()
            .contains("ShipmentDispatched"),
        "{line}"
    );

    // Dispatched, it no longer waits on the warehouse (it waits for delivery, within its deadline).
    let shipment = shipment(p, &order_id).await;
    dispatch(p, shipment["shipment_id"].as_str().unwrap()).await;
    order_reaches(p, &order_id, "SHIPPED").await;
}
