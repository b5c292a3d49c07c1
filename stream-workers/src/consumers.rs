//! Every consumer of the saga, as data: its name (consumer group, inbox and dead-letter topic), the
//! service database its reactions write to, the topics it reads and its reactions. `run` starts any
//! of them in one process, each on the consumer runtime (`orderflow_consumer`), with one health and
//! metrics endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use orderflow_payments::GatewayConfig;
use orderflow_platform::StackConfig;
use orderflow_platform::config::setting;
use tokio::sync::watch;

use orderflow_consumer::health::{self, Probe};
use orderflow_consumer::{Reactions, Runtime, Settings, Spec, Transactional};
use orderflow_service_kit::Outbox;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::reactions::{
    inventory::InventorySaga, orders::OrdersSaga, payments::PaymentsSaga, shipping::ShippingSaga,
};

/// One consumer of the saga, as data.
#[derive(Clone)]
pub struct ConsumerSpec {
    /// The consumer group id; also names the inbox rows and the dead-letter topic `<name>.dlq`.
    pub name: &'static str,
    /// The service database its reactions write to.
    pub database: &'static str,
    /// That service's migrations (the inbox table comes with the kit's).
    pub migrations: &'static Migrator,
    /// The topics it reads.
    pub topics: &'static [&'static str],
    pub reactions: Arc<dyn Reactions>,
}

/// A saga consumer connected to its database and Kafka, ready to run.
pub struct Worker {
    pub runtime: Runtime,
    pub pool: PgPool,
}

impl Worker {
    /// Connect to the service database (migrating it), the registry and Kafka, and subscribe.
    pub async fn connect(
        stack: &StackConfig,
        settings: Settings,
        spec: ConsumerSpec,
    ) -> anyhow::Result<Self> {
        let pool = orderflow_service_kit::database::connect_and_migrate_bounded(
            &stack.postgres,
            spec.database,
            spec.migrations,
            Some(statement_timeout()?),
        )
        .await?;
        orderflow_service_kit::database::spawn_janitor(
            pool.clone(),
            orderflow_consumer::inbox::EXPIRING,
            std::time::Duration::from_secs(30 * 24 * 3600),
            std::time::Duration::from_secs(300),
        );
        let handler = Transactional {
            reactions: spec.reactions.clone(),
            pool: pool.clone(),
            outbox: Outbox::new(&stack.registry_url)?,
        };
        let runtime = Runtime::new(
            &stack.kafka_bootstrap,
            &stack.registry_url,
            settings,
            Spec {
                name: spec.name,
                topics: spec.topics.iter().map(|t| t.to_string()).collect(),
                handler: Arc::new(handler),
                key_lanes: None,
            },
        )?;
        Ok(Worker { runtime, pool })
    }

    pub fn name(&self) -> &'static str {
        self.runtime.name()
    }

    /// Consume until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        self.runtime.run(shutdown).await
    }
}

pub const STATEMENT_TIMEOUT_KEY: &str = "ORDERFLOW_WORKER_STATEMENT_TIMEOUT_MS";

/// How long one statement of a reaction may run (a lock wait included) before PostgreSQL cancels
/// it and the runtime retries the batch: `ORDERFLOW_WORKER_STATEMENT_TIMEOUT_MS`, default 30000.
fn statement_timeout() -> anyhow::Result<std::time::Duration> {
    let ms: u64 = orderflow_platform::config::setting_or(STATEMENT_TIMEOUT_KEY, 30_000)?;
    anyhow::ensure!(
        ms > 0,
        "configuration key {STATEMENT_TIMEOUT_KEY} must be at least 1 ms"
    );
    Ok(std::time::Duration::from_millis(ms))
}

/// The saga's consumers. The payments gateway's rules come from the environment.
pub fn saga(gateway: GatewayConfig) -> Vec<ConsumerSpec> {
    vec![
        ConsumerSpec {
            name: "orders-saga",
            database: "orders",
            migrations: &orderflow_orders::MIGRATOR,
            topics: &[
                "customers.events",
                "inventory.events",
                "payments.events",
                "shipping.events",
            ],
            reactions: Arc::new(OrdersSaga),
        },
        ConsumerSpec {
            name: "inventory-saga",
            database: "inventory",
            migrations: &orderflow_inventory::MIGRATOR,
            topics: &["orders.events", "shipping.events"],
            reactions: Arc::new(InventorySaga),
        },
        ConsumerSpec {
            name: "payments-saga",
            database: "payments",
            migrations: &orderflow_payments::MIGRATOR,
            topics: &["inventory.events", "orders.events"],
            reactions: Arc::new(PaymentsSaga { gateway }),
        },
        ConsumerSpec {
            name: "shipping-saga",
            database: "shipping",
            migrations: &orderflow_shipping::MIGRATOR,
            topics: &["orders.events"],
            reactions: Arc::new(ShippingSaga),
        },
    ]
}

/// Run the named consumers (all of them when `names` is empty) until ctrl-c or SIGTERM, with
/// `/health/*` and `/metrics` on `listen` (default: `ORDERFLOW_WORKERS_HTTP`).
pub async fn run(names: &[String], listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let stack = StackConfig::from_env()?;
    let gateway = GatewayConfig::from_env()?;
    let listen = match listen {
        Some(address) => address,
        None => setting("ORDERFLOW_WORKERS_HTTP")?,
    };
    let all = saga(gateway);
    for name in names {
        anyhow::ensure!(
            all.iter().any(|c| c.name == name),
            "unknown consumer {name}; the consumers are {:?}",
            all.iter().map(|c| c.name).collect::<Vec<_>>()
        );
    }
    let chosen: Vec<ConsumerSpec> = all
        .into_iter()
        .filter(|c| names.is_empty() || names.iter().any(|n| n == c.name))
        .collect();

    let metrics = health::install_metrics()?;
    let settings = Settings::from_env()?;
    let sweep = crate::deadlines::Sweep::from_env()?;
    let mut workers = Vec::new();
    for spec in chosen {
        let name = spec.name;
        workers.push(
            Worker::connect(&stack, settings.clone(), spec)
                .await
                .with_context(|| format!("starting consumer {name}"))?,
        );
    }
    let probe = Probe {
        consumers: workers
            .iter()
            .map(|w| (w.name(), w.pool.clone(), w.runtime.consumer()))
            .collect(),
        metrics,
    };
    orderflow_service_kit::auth::metrics_listener_on_loopback("ORDERFLOW_WORKERS_HTTP", listen)?;
    // Served by the kit's server, with the same hardening as every other HTTP server.
    let server = orderflow_service_kit::server::Server::bind(listen, health::routes(probe))
        .await
        .with_context(|| {
            format!("binding the workers' health endpoint to {listen} (ORDERFLOW_WORKERS_HTTP)")
        })?;
    tracing::info!(address = %listen, "workers' health and metrics");
    server.spawn();

    // The deadline sweep runs beside orders-saga, on its database.
    let _sweep = match workers.iter().find(|w| w.name() == "orders-saga") {
        Some(orders) => Some(orderflow_consumer::AbortOnDrop(tokio::spawn(
            crate::deadlines::run(
                sweep,
                orders.pool.clone(),
                Outbox::new(&stack.registry_url)?,
            ),
        ))),
        None => None,
    };

    let (stop, stopped) = watch::channel(false);
    let mut running = Vec::new();
    for worker in workers {
        let mut stopped = stopped.clone();
        running.push(tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    orderflow_service_kit::server::shutdown_signal().await;
    tracing::info!("stopping consumers");
    stop.send(true).ok();
    for handle in running {
        handle.await??;
    }
    Ok(())
}
