//! What a running service is made of, and how one is started. A service crate provides its migrations
//! and a function from `ServiceContext` to its routes; `run` does the rest: configuration from the
//! environment, bearer-token checks on every route but health (`auth`), database and migrations, the outbox and its janitor, the idempotency keys' retention
//! and janitor, health, and serving.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use orderflow_platform::StackConfig;
use orderflow_platform::config::{setting, setting_or};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::auth::{self, Authenticator};
use crate::health;
use crate::idempotency::{self, IdempotencyConfig};
use crate::outbox::{self, Outbox};
use crate::server::Server;

/// Everything a service's handlers need from the platform.
#[derive(Clone)]
pub struct ServiceContext {
    pub pool: PgPool,
    pub outbox: Outbox,
    /// Checks the bearer token of every request to the service's routes (not health).
    pub auth: Authenticator,
}

/// A service as `run` needs it described.
pub struct ServiceSpec {
    /// Its database, also its name in logs: `orders`, `inventory`, ...
    pub name: &'static str,
    /// The configuration key of its listen address, e.g. `ORDERFLOW_ORDERS_HTTP`.
    pub listen_key: &'static str,
    pub migrations: &'static Migrator,
    pub routes: fn(ServiceContext) -> Router,
}

/// The service's routes plus `/health/live` and `/health/ready`, keeping idempotency keys for the
/// default retention.
pub fn routes(spec: &ServiceSpec, context: ServiceContext) -> Router {
    routes_with(spec, context, IdempotencyConfig::default())
}

/// The service's routes plus health, with `idempotency` in every request's extensions.
pub fn routes_with(
    spec: &ServiceSpec,
    context: ServiceContext,
    idempotency: IdempotencyConfig,
) -> Router {
    let readiness = health::Readiness {
        pool: context.pool.clone(),
        registry_url: context.outbox.codec().url().to_string(),
        http: reqwest::Client::new(),
    };
    let auth = context.auth.clone();
    auth::layer((spec.routes)(context), auth)
        .merge(health::routes(readiness))
        .layer(axum::Extension(idempotency))
}

/// Connect, migrate, and serve until ctrl-c or SIGTERM.
pub async fn run(spec: ServiceSpec) -> anyhow::Result<()> {
    let stack = StackConfig::from_env()?;
    let listen: SocketAddr = setting(spec.listen_key)?;
    let retention = Duration::from_secs(setting_or("ORDERFLOW_OUTBOX_RETENTION_SECONDS", 3600u64)?);
    let idempotency = IdempotencyConfig::from_env()?;
    let pool =
        crate::database::connect_and_migrate(&stack.postgres, spec.name, spec.migrations).await?;
    let outbox = Outbox::new(&stack.registry_url)?;
    let janitor = crate::database::spawn_janitor;
    janitor(
        pool.clone(),
        outbox::EXPIRING,
        retention,
        Duration::from_secs(60),
    );
    janitor(
        pool.clone(),
        idempotency::EXPIRING,
        idempotency.retention,
        Duration::from_secs(300),
    );
    let auth = Authenticator::from_env()?;
    let context = ServiceContext { pool, outbox, auth };
    let server = Server::bind(listen, routes_with(&spec, context, idempotency))
        .await
        .with_context(|| format!("binding {} to {listen} ({})", spec.name, spec.listen_key))?;
    tracing::info!(service = spec.name, address = %server.local_addr(), "service started");
    server.run().await
}
