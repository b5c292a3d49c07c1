//! The limits the pipeline is measured against, on the same machine: PostgreSQL running a
//! transaction shaped like one saga step (pgbench, custom script, scratch database), raw Kafka
//! produce and consume of records of our size (rdkafka, scratch topic), raw Elasticsearch bulk
//! indexing of our order documents (scratch index). Every scratch thing is removed afterwards.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orderflow_platform::config::{ExposeSecret, PostgresConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use sqlx::Connection;

use super::stats::round;

const SCRATCH_DB: &str = "orderflow_bench_scratch";

/// The saga step: the business row (an order's status moves), the inbox row of the event that caused
/// it, the outbox row of the event it emits; one transaction, synchronous commit, like a reaction.
const SAGA_STEP_SQL: &str = r#"\set row random(1, 10000)
\set n random(1, 1000000000)
BEGIN;
UPDATE business SET status = 'CONFIRMED', total_minor = :n, updated_at = now() WHERE id = :row;
INSERT INTO inbox (consumer, event_id, event_type, topic, kafka_partition, kafka_offset) VALUES ('bench-saga', gen_random_uuid(), 'orderflow.payments.PaymentSucceeded', 'payments.events', 0, :n);
INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, trace_context) VALUES (gen_random_uuid(), 'orders', :n, 'orderflow.orders.OrderConfirmed', convert_to(repeat('x', 190), 'UTF8'), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
END;
"#;

fn pgbench_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("ORDERFLOW_PGBENCH") {
        return Ok(path.into());
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = Path::new(dir).join("pgbench");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin/pgbench")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|p| p.is_file())
        .context("pgbench not found (Debian: postgresql-contrib or the server package; or set ORDERFLOW_PGBENCH)")
}

pub async fn postgres(
    pg: &PostgresConfig,
    seconds: u64,
    clients: u32,
    dir: &Path,
) -> anyhow::Result<Value> {
    let pgbench = pgbench_binary()?;
    let mut admin = sqlx::PgConnection::connect_with(
        &orderflow_service_kit::database::admin_options(pg, "postgres"),
    )
    .await
    .context("connect to PostgreSQL (database postgres)")?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"
    ))
    .execute(&mut admin)
    .await?;
    sqlx::query(&format!("CREATE DATABASE {SCRATCH_DB}"))
        .execute(&mut admin)
        .await?;
    let result = async {
        let mut db = sqlx::PgConnection::connect_with(&orderflow_service_kit::database::admin_options(pg, SCRATCH_DB)).await?;
        for statement in [
            "CREATE TABLE business (id int PRIMARY KEY, status text NOT NULL, total_minor bigint NOT NULL, updated_at timestamptz NOT NULL)",
            "INSERT INTO business SELECT g, 'PLACED', 0, now() FROM generate_series(1, 10000) g",
            include_str!("../../services/kit/migrations/1_outbox.sql"),
            include_str!("../../services/kit/migrations/2_inbox.sql"),
            "VACUUM ANALYZE",
        ] {
            sqlx::raw_sql(statement).execute(&mut db).await?;
        }
        db.close().await?;
        let script = dir.join("saga-step.sql");
        std::fs::write(&script, SAGA_STEP_SQL)?;
        let output = tokio::process::Command::new(&pgbench)
            .args(["-n", "-f"])
            .arg(&script)
            .args(["-c", &clients.to_string(), "-j", &clients.min(2).to_string()])
            .args(["-T", &seconds.to_string()])
            .args(["-h", &pg.host, "-p", &pg.port.to_string(), "-U", &pg.admin.user, SCRATCH_DB])
            .env("PGPASSWORD", pg.admin.password.expose_secret())
            .output()
            .await
            .with_context(|| format!("run {}", pgbench.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!("pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
        }
        let field = |prefix: &str| {
            stdout
                .lines()
                .find(|l| l.trim_start().starts_with(prefix))
                .and_then(|l| l.split('=').nth(1))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let tps = field("tps").context("no tps in pgbench's output")?;
        Ok(json!({
            "tool": pgbench.display().to_string(),
            "script": SAGA_STEP_SQL,
            "clients": clients, "seconds": seconds,
            "transactions_per_second": round(tps),
            "latency_average_ms": field("latency average").map(round),
        }))
    }
    .await;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"
    ))
    .execute(&mut admin)
    .await?;
    result
}

pub async fn kafka(
    bootstrap: &str,
    records: usize,
    record_bytes: usize,
    run_id: &str,
) -> anyhow::Result<Value> {
    let topic = format!("orderflow-bench-scratch-{}", run_id.to_lowercase());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics(
            [&NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &options,
        )
        .await?
    {
        result.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
    }
    let bootstrap = bootstrap.to_string();
    let scratch = topic.clone();
    let result =
        tokio::task::spawn_blocking(move || raw_kafka(&bootstrap, &scratch, records, record_bytes))
            .await?;
    for deleted in admin.delete_topics(&[&topic], &options).await? {
        deleted.map_err(|(t, e)| anyhow::anyhow!("delete {t}: {e}"))?;
    }
    result
}

fn raw_kafka(
    bootstrap: &str,
    topic: &str,
    records: usize,
    record_bytes: usize,
) -> anyhow::Result<Value> {
    // Like Kafka Connect's producer: acks=all, idempotence on.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let payload = vec![0x5au8; record_bytes];
    let keys: Vec<String> = (0..64).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let started = Instant::now();
    for i in 0..records {
        let mut record = BaseRecord::to(topic)
            .key(&keys[i % keys.len()])
            .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("produce: {error}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let produce_seconds = started.elapsed().as_secs_f64();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("orderflow-bench-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..3 {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut seen = 0usize;
    while seen < records {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("consumed only {seen} of {records} records in 120 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
            seen += 1;
        }
    }
    let consume_seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "records": records, "record_bytes": record_bytes, "partitions": 3, "producer": "rdkafka, acks=all, idempotent",
        "produce_records_per_second": round(records as f64 / produce_seconds),
        "consume_records_per_second": round(records as f64 / consume_seconds),
    }))
}

pub async fn elasticsearch(
    http: &reqwest::Client,
    es: &str,
    index: &str,
    sample: &Value,
    docs: usize,
    run_id: &str,
) -> anyhow::Result<Value> {
    let scratch = format!("orderflow-bench-scratch-{}", run_id.to_lowercase());
    let mapping: Value = http
        .get(format!("{es}/{index}/_mapping"))
        .send()
        .await?
        .json()
        .await?;
    let mappings = mapping
        .as_object()
        .and_then(|m| m.values().next())
        .map(|v| v["mappings"].clone())
        .unwrap_or(json!({}));
    let created = http
        .put(format!("{es}/{scratch}"))
        .json(&json!({"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": mappings}))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("create the scratch index: {}", created.text().await?);
    }
    let result = async {
        let batch = 500;
        let started = Instant::now();
        let mut sent = 0;
        while sent < docs {
            let mut body = String::new();
            for _ in sent..(sent + batch).min(docs) {
                let id = uuid::Uuid::new_v4().to_string();
                let mut doc = sample.clone();
                doc["order_id"] = json!(id);
                body.push_str(&json!({"index": {"_index": scratch, "_id": id}}).to_string());
                body.push('\n');
                body.push_str(&doc.to_string());
                body.push('\n');
            }
            let answer: Value = http
                .post(format!("{es}/_bulk"))
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await?
                .json()
                .await?;
            if answer["errors"] == true {
                bail!(
                    "bulk indexing reported errors: {}",
                    answer.to_string().chars().take(500).collect::<String>()
                );
            }
            sent = (sent + batch).min(docs);
        }
        http.post(format!("{es}/{scratch}/_refresh")).send().await?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(json!({
            "documents": docs, "bulk_batch": batch,
            "document_bytes": sample.to_string().len(),
            "index_documents_per_second": round(docs as f64 / seconds),
        }))
    }
    .await;
    http.delete(format!("{es}/{scratch}")).send().await?;
    result
}
