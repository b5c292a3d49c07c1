//! The customers service: registration (name, e-mail unique regardless of case, E.164 phone, default
//! shipping address) and deactivation, read one and list. Its events (`CustomerRegistered`,
//! `CustomerDeactivated`) are how orders learns which customers may order: orders keeps a replica and
//! refuses unknown or deactivated customers. Every write is one transaction with exactly one outbox row.

use orderflow_service_kit::ServiceSpec;
use sqlx::migrate::Migrator;

pub mod api;
pub mod customers;
pub mod domain;
pub mod error;

pub use error::CustomersError;

/// The customers database's own migrations (numbered from 100; the kit's come first).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The customers service as `service::run` and `TestService` start it.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "customers",
        listen_key: "ORDERFLOW_CUSTOMERS_HTTP",
        migrations: &MIGRATOR,
        routes: api::routes,
    }
}

/// Serve the customers API until ctrl-c or SIGTERM.
pub async fn run() -> anyhow::Result<()> {
    orderflow_service_kit::service::run(spec()).await
}
