//! The sink process's HTTP side (`ORDERFLOW_SINK_HTTP`): `/health/live`, `/health/ready` (Kafka,
//! Elasticsearch and the S3 bucket all answer) and `/metrics` in the Prometheus text format
//! (records by outcome, batches, archive writes, retries by stage, dead letters, version conflicts,
//! and `orderflow_consumer_lag` per partition from the runtime's lag reporter).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use elasticsearch::Elasticsearch;
use metrics_exporter_prometheus::PrometheusHandle;
use object_store::ObjectStore;
use object_store::path::Path;
use orderflow_consumer::KafkaConsumer;
use rdkafka::consumer::Consumer;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Probe {
    pub consumer: Arc<KafkaConsumer>,
    pub es: Elasticsearch,
    pub store: Arc<dyn ObjectStore>,
    pub archive_prefix: String,
    pub metrics: PrometheusHandle,
}

pub fn routes(probe: Probe) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .route(
            "/metrics",
            get(|State(p): State<Probe>| async move { p.metrics.render() }),
        )
        .with_state(probe)
}

async fn ready(State(probe): State<Probe>) -> (StatusCode, axum::Json<Value>) {
    let consumer = probe.consumer.clone();
    let kafka = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let elasticsearch =
        // Not `ping` (HEAD /): the integration-test distribution answers 405 there.
        match tokio::time::timeout(
            Duration::from_secs(3),
            probe
                .es
                .cluster()
                .health(elasticsearch::cluster::ClusterHealthParts::None)
                .send(),
        )
        .await
        {
            Ok(Ok(r)) if r.status_code().is_success() => Ok(()),
            Ok(Ok(r)) => Err(format!("HTTP {}", r.status_code())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        };
    let prefix = Path::from(probe.archive_prefix.trim_matches('/'));
    let s3 = match tokio::time::timeout(
        Duration::from_secs(3),
        probe.store.list_with_delimiter(Some(&prefix)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    };
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!({"status": "up"}),
        Err(e) => json!({"status": "down", "error": e}),
    };
    let all_up = kafka.is_ok() && elasticsearch.is_ok() && s3.is_ok();
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if all_up { "ready" } else { "not_ready" },
        "checks": {"kafka": show(&kafka), "elasticsearch": show(&elasticsearch), "s3": show(&s3)},
    });
    (status, axum::Json(body))
}
