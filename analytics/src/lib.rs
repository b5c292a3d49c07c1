//! orderflow analytics: the sink that indexes every finished order into Elasticsearch and archives
//! every event to object storage (`sink`), the reporting HTTP endpoints over Elasticsearch
//! (`reports`), and the Kibana saved objects under `kibana/` (checked by `kibana` and the tests).
//! `README.md` beside this crate describes the document, the archive layout and the batching rule.
//!
//! The `orderflow` binary runs [`run_sink`] and [`run_reports`] as its `sink` and `reports` roles.

pub mod config;
pub mod elastic;
pub mod kibana;
pub mod reports;
pub mod sink;

pub use config::{ReportsConfig, SinkConfig};
pub use reports::reports_routes;

/// The analytics sink, configured from the environment (`stack.env`), until ctrl-c or SIGTERM.
pub async fn run_sink() -> anyhow::Result<()> {
    let config = SinkConfig::from_env()?;
    sink::run(config, orderflow_service_kit::server::shutdown_signal()).await
}

/// The reporting endpoints on `ORDERFLOW_REPORTS_HTTP`, until ctrl-c or SIGTERM.
pub async fn run_reports() -> anyhow::Result<()> {
    let config = ReportsConfig::from_env()?;
    let es = elastic::client(&config.elasticsearch_url)?;
    let authenticator = orderflow_service_kit::auth::Authenticator::from_env()?;
    let routes = reports_routes(es, config.index.clone(), authenticator);
    tracing::info!(index = %config.index, "reports over Elasticsearch");
    orderflow_service_kit::server::Server::bind(config.http, routes)
        .await?
        .run()
        .await
}
