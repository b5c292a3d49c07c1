//! What the connector tests share: the lock that keeps them off Kafka Connect while one test restarts
//! it, the check that the real connectors run, services started in-process on their real databases,
//! a reader of a topic from the offsets it had before a write, and running `scripts/setup-connectors`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use orderflow_platform::StackConfig;
use orderflow_service_kit::outbox::Outbox;
use orderflow_service_kit::server::Server;
use orderflow_service_kit::service::{ServiceContext, ServiceSpec, routes};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use sqlx::{PgPool, Row};
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::support::{Server as StackServer, stack};

/// Tests that use Kafka Connect hold this for reading; the restart test holds it for writing, so no
/// other test sees Connect down.
pub static CONNECT: RwLock<()> = RwLock::const_new(());

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The connector configs of the repository: (file, connector name, database).
pub fn connector_files() -> Vec<(PathBuf, String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("connectors"))
        .expect("connectors/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let name = doc["name"].as_str().unwrap().to_string();
            let database = doc["config"]["database.dbname"]
                .as_str()
                .unwrap()
                .to_string();
            (path, name, database)
        })
        .collect()
}

/// The stack's configuration, with the servers these tests need up (or a failure naming them).
/// Holds the Connect lock for reading until dropped.
pub async fn stack_with_connect() -> (StackConfig, RwLockReadGuard<'static, ()>) {
    let guard = CONNECT.read().await;
    let config = stack();
    for server in [
        StackServer::Postgres,
        StackServer::Kafka,
        StackServer::Connect,
        StackServer::Registry,
    ] {
        server.require(&config);
    }
    (config, guard)
}

/// Connect's status of a connector, `None` when it is not registered.
pub async fn connector_status(config: &StackConfig, name: &str) -> Option<Value> {
    let response = reqwest::get(format!("{}/connectors/{name}/status", config.connect_url))
        .await
        .unwrap_or_else(|e| StackServer::Connect.failed(config, "answer a status request", e));
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    Some(response.json().await.expect("status JSON"))
}

fn all_running(status: &Value) -> bool {
    status["connector"]["state"] == "RUNNING"
        && status["tasks"]
            .as_array()
            .is_some_and(|tasks| !tasks.is_empty() && tasks.iter().all(|t| t["state"] == "RUNNING"))
}

/// Wait (up to `timeout`) until the connector and its task are RUNNING; panic naming the command that
/// sets them up when they are not.
pub async fn require_running(config: &StackConfig, name: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        let status = connector_status(config, name).await;
        match &status {
            Some(status) if all_running(status) => return,
            _ if started.elapsed() > timeout => panic!(
                "connector {name} is not RUNNING (status: {status:?}): set the connectors up with \
                 `scripts/setup-connectors`"
            ),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// A service running in-process on its real database (migrated like `service::run` does), bound to a
/// free port: what the connectors see is exactly what the service writes.
pub struct RealService {
    pub url: String,
    pub context: ServiceContext,
}

impl RealService {
    pub async fn start(config: &StackConfig, spec: ServiceSpec) -> Self {
        let pool = orderflow_service_kit::database::connect_and_migrate(
            &config.postgres,
            spec.name,
            spec.migrations,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        let outbox = Outbox::new(&config.registry_url).expect("registry client");
        let auth = orderflow_service_kit::auth::Authenticator::from_env()
            .unwrap_or_else(|e| panic!("auth configuration: {e}"));
        let context = ServiceContext { pool, outbox, auth };
        let server = Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            routes(&spec, context.clone()),
        )
        .await
        .expect("bind a free port");
        let address = server.spawn();
        Self {
            url: format!("http://{address}"),
            context,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.context.pool
    }

    /// POST JSON with a `traceparent` header; the status and the JSON answer.
    pub async fn post(&self, path: &str, traceparent: &str, body: Value) -> (u16, Value) {
        let token = orderflow_service_kit::testing::TestIdentity::new()
            .admin()
            .await;
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("traceparent", traceparent)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// A fresh W3C traceparent and its trace id.
pub fn new_traceparent() -> (String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    (format!("00-{trace_id}-{span}-01"), trace_id)
}

/// An outbox row as the connector must have streamed it.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: uuid::Uuid,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub trace_context: Option<String>,
}

/// The outbox rows of one aggregate, oldest first.
pub async fn outbox_events(pool: &PgPool, aggregate_id: &str) -> Vec<OutboxEvent> {
    sqlx::query(
        "SELECT id, aggregate_id, event_type, payload, trace_context FROM outbox
         WHERE aggregate_id = $1 ORDER BY created_at, id",
    )
    .bind(aggregate_id)
    .fetch_all(pool)
    .await
    .expect("read the outbox")
    .into_iter()
    .map(|row| OutboxEvent {
        id: row.get("id"),
        aggregate_id: row.get("aggregate_id"),
        event_type: row.get("event_type"),
        payload: row.get("payload"),
        trace_context: row.get("trace_context"),
    })
    .collect()
}

/// One Kafka record, with its headers as text.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub header_names: Vec<String>,
    pub value: Vec<u8>,
}

/// Reads a topic from where its partitions ended when it was created: everything written after.
pub struct TopicTail {
    pub topic: String,
    consumer: StreamConsumer,
}

impl TopicTail {
    pub fn at_end(config: &StackConfig, topic: &str) -> Self {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka_bootstrap)
            .set("group.id", crate::support::unique("connectors-test"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap_or_else(|e| StackServer::Kafka.failed(config, "create a consumer", e));
        let timeout = Duration::from_secs(20);
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .unwrap_or_else(|e| StackServer::Kafka.failed(config, "describe a topic", e));
        let partitions = metadata.topics()[0].partitions().len() as i32;
        assert!(
            partitions > 0,
            "topic {topic} does not exist: `orderflow topics` (run by scripts/setup-connectors) creates it"
        );
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .unwrap_or_else(|e| StackServer::Kafka.failed(config, "read end offsets", e));
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(high))
                .unwrap();
        }
        consumer.assign(&assignment).expect("assign");
        Self {
            topic: topic.to_string(),
            consumer,
        }
    }

    /// Read until `done` says the records kept so far (those `keep` accepted) are enough, or panic
    /// after `timeout` naming what was seen.
    pub async fn read_until(
        &self,
        timeout: Duration,
        keep: impl Fn(&Record) -> bool,
        done: impl Fn(&[Record]) -> bool,
    ) -> Vec<Record> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut kept = Vec::new();
        let mut seen = 0usize;
        while !done(&kept) {
            let message = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(message) => message.expect("consume"),
                Err(_) => panic!(
                    "{} did not deliver the expected records within {timeout:?}: {seen} records read, \
                     {} kept: {kept:#?}",
                    self.topic,
                    kept.len()
                ),
            };
            seen += 1;
            let mut headers = HashMap::new();
            let mut header_names = Vec::new();
            if let Some(hs) = message.headers() {
                for header in hs.iter() {
                    header_names.push(header.key.to_string());
                    headers.insert(
                        header.key.to_string(),
                        String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            let record = Record {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                headers,
                header_names,
                value: message.payload().unwrap_or_default().to_vec(),
            };
            if keep(&record) {
                kept.push(record);
            }
        }
        kept
    }

    /// The record whose `id` header is `event_id`.
    pub async fn find_event(&self, event_id: uuid::Uuid, timeout: Duration) -> Record {
        let id = event_id.to_string();
        let mut found = self
            .read_until(
                timeout,
                |r| r.headers.get("id") == Some(&id),
                |kept| !kept.is_empty(),
            )
            .await;
        found.remove(0)
    }
}

/// What running `scripts/setup-connectors` printed and how it ended.
pub struct ScriptRun {
    pub success: bool,
    pub output: String,
}

/// Run `scripts/setup-connectors` with `args`, using this build's `orderflow` binary.
pub async fn setup_connectors(args: &[&str]) -> ScriptRun {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(root().join("scripts/setup-connectors"))
            .args(&args)
            .env("ORDERFLOW_BIN", env!("CARGO_BIN_EXE_orderflow"))
            .output()
            .expect("run scripts/setup-connectors");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("scripts/setup-connectors {}:\n{text}", args.join(" "));
        ScriptRun {
            success: output.status.success(),
            output: text,
        }
    })
    .await
    .unwrap()
}

/// A connector config of the repository, changed by `edit`, written to a temporary file.
pub fn config_variant(
    base: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>) -> String,
) -> TempConfig {
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(root().join("connectors").join(base)).unwrap())
            .unwrap();
    let name = edit(doc["config"].as_object_mut().unwrap());
    doc["name"] = Value::String(name.clone());
    let path = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    TempConfig { path, name }
}

pub struct TempConfig {
    pub path: PathBuf,
    pub name: String,
}

impl TempConfig {
    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A connection to a database of the stack as the configured user.
pub async fn admin_pool(config: &StackConfig, database: &str) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(orderflow_service_kit::database::admin_options(
            &config.postgres,
            database,
        ))
        .await
        .unwrap_or_else(|e| StackServer::Postgres.failed(config, "accept a connection", e))
}

/// `active` and `confirmed_flush_lsn` of a replication slot, `None` when it does not exist.
pub async fn slot(pool: &PgPool, name: &str) -> Option<(bool, String)> {
    sqlx::query_as(
        "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .unwrap()
}
