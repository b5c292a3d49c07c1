//! Every consumer of the saga, as data: its name (consumer group, inbox and dead-letter topic), the
//! service database its reactions write to, the topics it reads and its reactions. `run` starts any
//! of them in one process with one health and metrics endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use orderflow_payments::GatewayConfig;
use orderflow_platform::StackConfig;
use orderflow_platform::config::setting;
use tokio::sync::watch;

use crate::reactions::{
    inventory::InventorySaga, orders::OrdersSaga, payments::PaymentsSaga, shipping::ShippingSaga,
};
use crate::runtime::health::{self, Probe};
use crate::runtime::{ConsumerSpec, Worker};

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
    let mut workers = Vec::new();
    for spec in chosen {
        let name = spec.name;
        workers.push(
            Worker::connect(&stack, spec)
                .await
                .with_context(|| format!("starting consumer {name}"))?,
        );
    }
    let probe = Probe {
        consumers: workers
            .iter()
            .map(|w| (w.name(), w.pool().clone(), w.consumer()))
            .collect(),
        metrics,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("binding the workers' health endpoint to {listen} (ORDERFLOW_WORKERS_HTTP)")
        })?;
    tracing::info!(address = %listen, "workers' health and metrics");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, health::routes(probe)).await {
            tracing::error!(%error, "health endpoint stopped");
        }
    });

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
