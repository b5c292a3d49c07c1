//! The shipping service: creates one shipment per confirmed order (the saga step on
//! `OrderConfirmed`), then records its dispatch with a carrier and its delivery (`shipments`, shared by
//! the HTTP API and a simulated carrier), following the status state machine in `domain`. Its HTTP API
//! (`api`) shows a shipment and moves it along. Every change writes its rows and one outbox event in
//! one transaction.

pub mod api;
pub mod domain;
pub mod error;
pub mod shipments;
pub mod store;

use orderflow_service_kit::ServiceSpec;
use sqlx::migrate::Migrator;

pub use domain::{Carrier, DispatchDetails, Shipment, ShipmentStatus, TrackingNumber};
pub use error::ShippingError;
pub use shipments::{
    CancelOutcome, CreateOutcome, cancel_for_order, create_shipment, deliver, dispatch,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "shipping",
        listen_key: "ORDERFLOW_SHIPPING_HTTP",
        migrations: &MIGRATOR,
        routes: api::routes,
    }
}

pub async fn run() -> anyhow::Result<()> {
    orderflow_service_kit::service::run(spec()).await
}
