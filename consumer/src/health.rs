//! A worker process's HTTP side: `/health/live`, `/health/ready` (every consumer's database answers
//! and Kafka answers a metadata request) and `/metrics` in the Prometheus text format (events by
//! outcome, retries, dead letters, and the lag of every assigned partition).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::runtime::KafkaConsumer;

/// Install the process-wide Prometheus recorder (once) and return its handle.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Suffix("_records".into()),
            &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0],
        )?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[derive(Clone)]
pub struct Probe {
    /// (consumer name, its database, its Kafka consumer)
    pub consumers: Vec<(&'static str, PgPool, Arc<KafkaConsumer>)>,
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
/// the consumer's committed position (everything below it is finished), for each assigned partition.
pub fn spawn_lag_reporter(
    name: &'static str,
    consumer: Arc<KafkaConsumer>,
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

fn partition_lags(consumer: &KafkaConsumer) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let assignment: TopicPartitionList = consumer.assignment()?;
    let committed = consumer.committed_offsets(assignment.clone(), Duration::from_secs(2))?;
    let mut lags = Vec::new();
    for element in assignment.elements() {
        let (_, high) = consumer.fetch_watermarks(
            element.topic(),
            element.partition(),
            Duration::from_secs(2),
        )?;
        let lag = match committed
            .find_partition(element.topic(), element.partition())
            .map(|e| e.offset())
        {
            Some(Offset::Offset(c)) => (high - c).max(0),
            _ => high,
        };
        lags.push((element.topic().to_string(), element.partition(), lag));
    }
    Ok(lags)
}
