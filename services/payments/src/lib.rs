//! The payments service: charges each order once, through a mock gateway whose rules are
//! configuration (`gateway`), and refunds the charge when the order is cancelled afterwards
//! (`charges`, the saga steps the stream workers call); its HTTP API (`api`) shows the payment and
//! refunds of an order. Every change writes its rows and one outbox event in one transaction.

pub mod api;
pub mod charges;
pub mod domain;
pub mod gateway;
pub mod store;

use orderflow_service_kit::ServiceSpec;
use sqlx::migrate::Migrator;

pub use charges::{ChargeOutcome, RefundOutcome, charge, refund};
pub use domain::{ChargeRequest, Payment, PaymentStatus, Refund};
pub use gateway::GatewayConfig;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "payments",
        listen_key: "ORDERFLOW_PAYMENTS_HTTP",
        migrations: &MIGRATOR,
        routes: api::routes,
    }
}

/// Check the gateway's configuration (so a bad value stops the start, naming its key), then serve.
pub async fn run() -> anyhow::Result<()> {
    let gateway = GatewayConfig::from_env()?;
    tracing::info!(?gateway, "mock payment gateway rules");
    orderflow_service_kit::service::run(spec()).await
}
