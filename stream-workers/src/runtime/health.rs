//! A worker process's HTTP side: `/health/live`, `/health/ready` (every consumer's database answers
//! and Kafka answers a metadata request) and `/metrics` in the Prometheus text format (events by
//! outcome, retries, dead letters, and the lag of every assigned partition).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Install the process-wide Prometheus recorder (once) and return its handle.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new().install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[derive(Clone)]
pub struct Probe {
    /// (consumer name, its database, its Kafka consumer)
    pub consumers: Vec<(&'static str, PgPool, Arc<StreamConsumer>)>,
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
    let mut checks = serde_json::Map::new();
    let mut all_up = true;
    for (name, pool, consumer) in &probe.consumers {
        let database = sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let consumer = consumer.clone();
        let kafka = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        all_up &= database.is_ok() && kafka.is_ok();
        let show = |r: &Result<(), String>| match r {
            Ok(()) => json!({"status": "up"}),
            Err(e) => json!({"status": "down", "error": e}),
        };
        checks.insert(
            name.to_string(),
            json!({"database": show(&database), "kafka": show(&kafka)}),
        );
    }
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if all_up { "ready" } else { "not_ready" }, "checks": checks});
    (status, axum::Json(body))
}

/// Every 10 s, set `orderflow_consumer_lag{consumer,topic,partition}` to the high watermark minus
/// the consumer's position, for each assigned partition.
pub fn spawn_lag_reporter(
    name: &'static str,
    consumer: Arc<StreamConsumer>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        loop {
            ticker.tick().await;
            let consumer = consumer.clone();
            let lags = tokio::task::spawn_blocking(move || partition_lags(&consumer)).await;
            if let Ok(Ok(lags)) = lags {
                for (topic, partition, lag) in lags {
                    metrics::gauge!("orderflow_consumer_lag", "consumer" => name, "topic" => topic, "partition" => partition.to_string())
                        .set(lag as f64);
                }
            }
        }
    })
}

fn partition_lags(consumer: &StreamConsumer) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let assignment: TopicPartitionList = consumer.assignment()?;
    let positions = consumer.position()?;
    let mut lags = Vec::new();
    for element in assignment.elements() {
        let (_, high) = consumer.fetch_watermarks(
            element.topic(),
            element.partition(),
            Duration::from_secs(2),
        )?;
        let position = positions
            .find_partition(element.topic(), element.partition())
            .map(|e| e.offset());
        let lag = match position {
            Some(Offset::Offset(p)) => (high - p).max(0),
            _ => {
                let committed = consumer.committed_offsets(
                    {
                        let mut one = TopicPartitionList::new();
                        one.add_partition(element.topic(), element.partition());
                        one
                    },
                    Duration::from_secs(2),
                )?;
                match committed
                    .find_partition(element.topic(), element.partition())
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(c)) => (high - c).max(0),
                    _ => high,
                }
            }
        };
        lags.push((element.topic().to_string(), element.partition(), lag));
    }
    Ok(lags)
}
