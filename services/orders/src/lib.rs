//! The orders service: a customer's orders from draft to completion. It owns the `orders` database
//! (orders, their lines, and local replicas of customers and products, since it never calls another
//! service), the order state machine (`status`), the HTTP API (`api`), and the operations the saga's
//! stream-worker reactions call (`saga_actions`, `replicas`). Every change writes its rows and exactly
//! one event to the outbox in one transaction; Debezium publishes it on `orders.events`.

pub mod api;
pub mod config;
pub mod customer_actions;
pub mod deadlines;
pub mod dto;
pub mod error;
pub mod events;
pub mod listing;
pub mod order;
pub mod replicas;
pub mod saga_actions;
pub mod status;
pub mod store;

use orderflow_service_kit::ServiceSpec;
use sqlx::migrate::Migrator;

pub use config::OrdersConfig;
pub use error::OrderError;
pub use order::{CancelDetail, Dispatch, LineQuantity, Order, SagaCancellation};

/// The orders service's own migrations (numbered from 100; the kit's come first).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The orders service as `service::run` and `TestService` start it.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "orders",
        listen_key: "ORDERFLOW_ORDERS_HTTP",
        migrations: &MIGRATOR,
        routes: api::routes,
    }
}

/// Run the orders service until ctrl-c or SIGTERM. The configuration is checked first, so a bad value
/// is reported naming its key instead of surfacing when the routes are built.
pub async fn run() -> anyhow::Result<()> {
    OrdersConfig::from_env()?;
    orderflow_service_kit::service::run(spec()).await
}
