//! Transient faults injected for real, one at a time: the schema registry stopped while the
//! workers need it, and a service database made read-only while a reaction writes to it. Each
//! must be retried with backoff, never dead-lettered, and the order must go on once the fault
//! passes. These tests stop and change shared servers, so they run one after the other (a lock),
//! in their own test binary (cargo runs test binaries one at a time).

#[path = "../support/mod.rs"]
mod support;

#[path = "../saga/shop.rs"]
#[allow(dead_code)]
mod shop;

use std::process::Command;

use shop::*;
use support::platform::{Platform, eventually, platform};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// `orderflow_retries_total` of `consumer` as the workers report it (an error while the workers
/// are starting).
async fn retries(p: &Platform, consumer: &str) -> Result<f64, String> {
    p.worker_counter("orderflow_retries_total", &[("consumer", consumer)])
        .await
}

/// The workers running and ready (every consumer assigned, every database reachable).
async fn workers_ready(p: &Platform) {
    p.start_workers();
    eventually("the workers to be ready", SAGA, || async {
        let response = p
            .http
            .get(format!("{}/health/ready", p.workers_url))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(response.text().await.unwrap_or_default())
        }
    })
    .await;
}

async fn retried(p: &Platform, consumer: &str, before: f64) {
    eventually(&format!("{consumer} to retry"), SAGA, || async {
        let now = retries(p, consumer).await?;
        if now > before {
            Ok(())
        } else {
            Err(format!("retries {now}"))
        }
    })
    .await;
}

/// `scripts/stack <args>`, as an operator runs it.
fn stack(args: &[&str]) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(format!("{root}/scripts/stack"))
        .args(args)
        .current_dir(root)
        .status()
        .expect("run scripts/stack");
    assert!(status.success(), "scripts/stack {args:?} failed");
}

/// Starts the registry again however the test ends.
struct RegistryBack;
impl Drop for RegistryBack {
    fn drop(&mut self) {
        stack(&["up", "registry"]);
    }
}

#[tokio::test]
async fn the_registry_down_while_the_workers_decode_is_waited_out() {
    let _one = ONE_AT_A_TIME.lock().await;
    let p = platform();
    workers_ready(p).await;
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 5).await;
    // A first order through the saga: the orders service knows the customer and the product.
    let first = place_order(p, &customer, &[(&sku, 1)]).await;
    order_reaches(p, &first, "CONFIRMED").await;
    // Fresh workers know no schema yet: with the workers stopped, an order is placed (its events
    // wait in Kafka), then the registry stops and the workers start.
    p.kill_workers();
    let order_id = place_order(p, &customer, &[(&sku, 1)]).await;
    let back = RegistryBack;
    stack(&["down", "registry"]);
    p.start_workers();
    // They cannot decode OrderPlaced: retried, not dead-lettered, and the order waits.
    retried(p, "inventory-saga", 0.0).await;
    assert_eq!(order(p, &order_id).await["status"], "PLACED");
    drop(back);
    order_reaches(p, &order_id, "CONFIRMED").await;
    stock_reaches(p, &sku, 5, 2).await;
    let payment = payment_reaches(p, &order_id, "SUCCEEDED").await;
    assert_eq!(payment["amount"]["amount_minor"], 990);
}

/// Makes the database writable again however the test ends (on a runtime and a connection of
/// its own: a pool belongs to the runtime that made it).
struct Writable {
    database: String,
    admin: sqlx::postgres::PgConnectOptions,
}
impl Drop for Writable {
    fn drop(&mut self) {
        let (database, options) = (self.database.clone(), self.admin.clone());
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let admin = sqlx::PgPool::connect_with(options).await.unwrap();
                read_only(&admin, &database, false).await;
            })
        })
        .join()
        .unwrap();
    }
}

/// Make `database` read-only (or writable again) for new sessions, and end the platform's sessions
/// on it (not the connectors' replication and heartbeat sessions), so that the pools reconnect
/// into the new setting.
async fn read_only(admin: &sqlx::PgPool, database: &str, on: bool) {
    let setting = if on {
        "SET default_transaction_read_only = on"
    } else {
        "RESET default_transaction_read_only"
    };
    sqlx::query(&format!("ALTER DATABASE {database} {setting}"))
        .execute(admin)
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
           AND application_name NOT ILIKE '%debezium%' AND application_name NOT ILIKE '%jdbc%'",
    )
    .bind(database)
    .execute(admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_read_only_database_is_waited_out() {
    let _one = ONE_AT_A_TIME.lock().await;
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 5).await;
    workers_ready(p).await;
    let admin = p.db("postgres").await;
    let writable = Writable {
        database: "payments".into(),
        admin: orderflow_service_kit::database::admin_options(&p.stack.postgres, "postgres"),
    };
    read_only(&admin, "payments", true).await;
    let before = retries(p, "payments-saga").await.unwrap();
    let order_id = place_order(p, &customer, &[(&sku, 1)]).await;
    // The charge cannot be written (SQLSTATE 25006): retried, and the order waits with its stock.
    retried(p, "payments-saga", before).await;
    stock_reaches(p, &sku, 5, 1).await;
    assert_eq!(order(p, &order_id).await["status"], "PLACED");
    drop(writable);
    order_reaches(p, &order_id, "CONFIRMED").await;
    let payment = payment_reaches(p, &order_id, "SUCCEEDED").await;
    assert_eq!(payment["amount"]["amount_minor"], 990);
}
