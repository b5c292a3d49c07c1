//! The inventory service: the product catalogue (create, restock, get, list and search) and the stock
//! held for orders. In the saga it answers `OrderPlaced` by reserving every line or none
//! (`StockReserved` / `StockRejected`), releases a cancelled order's stock (`StockReleased`) and commits
//! a dispatched order's stock (`StockCommitted`); those reactions live in [`reservations`] as plain
//! functions on a transaction, for the stream workers to call. Every write is one transaction with
//! exactly one outbox row.

use orderflow_service_kit::ServiceSpec;
use sqlx::migrate::Migrator;

pub mod api;
pub mod domain;
pub mod error;
pub mod products;
pub mod reservations;

pub use error::InventoryError;

/// The inventory database's own migrations (numbered from 100; the kit's come first).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The inventory service as `service::run` and `TestService` start it.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "inventory",
        listen_key: "ORDERFLOW_INVENTORY_HTTP",
        migrations: &MIGRATOR,
        routes: api::routes,
    }
}

/// Serve the inventory API until ctrl-c or SIGTERM.
pub async fn run() -> anyhow::Result<()> {
    orderflow_service_kit::service::run(spec()).await
}
