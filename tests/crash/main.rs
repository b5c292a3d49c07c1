//! A worker crash in the middle of a load: the `orderflow worker` process is SIGKILLed while orders
//! are flowing (at points the test watches for: 4, then 10 of 15 units reserved) and started again; every order still settles, and every effect happened exactly once
//! (one stock decision, at most one payment, one confirmation or cancellation per order, and stock
//! that adds up). A test binary of its own, so no other test's orders share the crash.

#[path = "../saga/shop.rs"]
#[allow(dead_code)]
mod shop;
#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use shop::*;
use support::platform::{eventually, platform};

const ORDERS: usize = 24;

async fn count(pool: &sqlx::PgPool, sql: &str, order_id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(order_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_worker_killed_mid_load_finishes_every_order_with_each_effect_once() {
    let p = platform();
    let sku = create_product(p, 350, 15).await;
    let mut customers = Vec::new();
    for _ in 0..ORDERS {
        customers.push(register_customer(p).await);
    }
    // Place the orders while killing the workers twice in the middle.
    let placing = futures::future::join_all(customers.iter().map(|c| {
        let sku = sku.clone();
        async move { place_order(p, c, &[(&sku, 1)]).await }
    }));
    // The kills happen at points the test controls, seen in the inventory database: once 4 of the
    // 15 units are reserved, and once 10 are (with the workers started again in between).
    let inventory_db = p.db("inventory").await;
    let reserved_at_least = |n: i64| {
        let (db, sku) = (inventory_db.clone(), sku.clone());
        async move {
            // Polled every few milliseconds, so that the kill lands while the load is still on.
            let until = std::time::Instant::now() + SAGA;
            loop {
                let got: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM reservations WHERE sku = $1")
                        .bind(&sku)
                        .fetch_one(&db)
                        .await
                        .unwrap();
                if got >= n {
                    return;
                }
                assert!(
                    std::time::Instant::now() < until,
                    "only {got} of {n} reservations of {sku} after {SAGA:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let crashing = async {
        reserved_at_least(4).await;
        p.kill_workers();
        p.start_workers();
        reserved_at_least(10).await;
        p.kill_workers();
        p.start_workers();
    };
    let (orders, ()) = tokio::join!(placing, crashing);

    let mut confirmed = 0;
    for order_id in &orders {
        let settled = eventually(
            &format!("order {order_id} to settle after the crashes"),
            SAGA,
            || async {
                let body = order(p, order_id).await;
                match body["status"].as_str() {
                    Some("CONFIRMED") | Some("CANCELLED") => Ok(body),
                    _ => Err(body.to_string()),
                }
            },
        )
        .await;
        if settled["status"] == "CONFIRMED" {
            confirmed += 1;
        } else {
            assert_eq!(
                settled["cancellation"]["reason"], "OUT_OF_STOCK",
                "{settled}"
            );
        }
    }
    assert_eq!(confirmed, 15, "15 units for {ORDERS} orders of one");
    stock_reaches(p, &sku, 15, 15).await;

    let inventory = p.db("inventory").await;
    let payments = p.db("payments").await;
    let orders_db = p.db("orders").await;
    for order_id in &orders {
        let decisions = count(
            &inventory,
            "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type IN
             ('orderflow.inventory.StockReserved', 'orderflow.inventory.StockRejected')",
            order_id,
        )
        .await;
        assert_eq!(decisions, 1, "stock decisions for {order_id}");
        let charges = count(
            &payments,
            "SELECT count(*) FROM payments WHERE order_id = $1::uuid",
            order_id,
        )
        .await;
        let payment_events = count(
            &payments,
            "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type LIKE 'orderflow.payments.Payment%'",
            order_id,
        )
        .await;
        assert!(
            charges <= 1 && payment_events == charges,
            "{order_id}: {charges} payments, {payment_events} events"
        );
        let outcomes = count(
            &orders_db,
            "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type IN
             ('orderflow.orders.OrderConfirmed', 'orderflow.orders.OrderCancelled')",
            order_id,
        )
        .await;
        assert_eq!(outcomes, 1, "confirmations or cancellations of {order_id}");
    }
}
