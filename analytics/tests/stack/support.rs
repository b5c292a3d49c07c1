//! What the analytics tests share: a fixture per test with its own topic (3 partitions), consumer
//! group and dead-letter topic, index and archive prefix, so tests never see each other's data; a
//! sink running in-process that can be stopped or crashed; and readers for what the sink wrote
//! (Elasticsearch documents, archive objects through apache-avro's standard `Reader`, committed
//! offsets). A server that is down fails the test naming it and how to start it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Reader;
use elasticsearch::Elasticsearch;
use elasticsearch::indices::{
    IndicesDeleteIndexTemplateParts, IndicesDeleteParts, IndicesRefreshParts,
};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use orderflow_analytics::SinkConfig;
use orderflow_analytics::elastic;
use orderflow_analytics::sink::archive::{self, ArchivedRecord};
use orderflow_platform::StackConfig;
use orderflow_schemas::AnyEvent;
use orderflow_schemas::registry::EventCodec;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const PARTITIONS: i32 = 3;

pub fn stack() -> StackConfig {
    StackConfig::from_env().unwrap_or_else(|e| panic!("the stack configuration is unusable: {e}"))
}

/// Panic naming the server and how to start it unless it accepts connections.
pub fn require(name: &str, component: &str, address: &str) {
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "{name} is not reachable at {address}: start the stack with `scripts/stack up` (or just this server: `scripts/stack up {component}`)"
    );
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Every server the sink needs must be up.
pub fn require_stack(stack: &StackConfig) {
    require(
        "Kafka",
        "kafka",
        stack.kafka_bootstrap.split(',').next().unwrap_or_default(),
    );
    require(
        "the schema registry (Apicurio)",
        "registry",
        &host_port(&stack.registry_url),
    );
    require(
        "Elasticsearch",
        "elasticsearch",
        &host_port(&stack.elasticsearch_url),
    );
    require("the S3 server", "s3", &host_port(&stack.s3.endpoint));
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Poll `check` until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One test's own topic, group, index and archive prefix, and clients to look at them.
pub struct Fixture {
    pub stack: StackConfig,
    pub name: String,
    pub topic: String,
    pub group: String,
    pub index: String,
    pub prefix: String,
    pub codec: Arc<EventCodec>,
    pub producer: FutureProducer,
    pub es: Elasticsearch,
    pub store: Arc<dyn ObjectStore>,
    admin: AdminClient<DefaultClientContext>,
    topics: Vec<String>,
}

impl Fixture {
    pub async fn new(name: &str) -> Fixture {
        orderflow_platform::telemetry::init();
        let stack = stack();
        require_stack(&stack);
        // Short names: s3s-fs keeps each object's metadata in a file named after the whole key, so
        // keys longer than about 150 bytes fail there (the sink's own keys are about 80).
        let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let run = format!("at-{name}-{id}");
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .create()
            .expect("a Kafka admin client");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .set("enable.idempotence", "true")
            .create()
            .expect("a Kafka producer");
        let fixture = Fixture {
            codec: Arc::new(EventCodec::new(&stack.registry_url).expect("a registry codec")),
            es: elastic::client(&stack.elasticsearch_url).expect("an Elasticsearch client"),
            store: archive::store(&stack.s3).expect("an S3 client"),
            topic: format!("{run}.events"),
            group: run.clone(),
            index: run.clone(),
            prefix: format!("test-archive/{id}"),
            name: run,
            stack,
            producer,
            admin,
            topics: Vec::new(),
        };
        let mut fixture = fixture;
        let (topic, dlq) = (fixture.topic.clone(), format!("{}.dlq", fixture.group));
        fixture.create_topic(&topic, PARTITIONS).await;
        fixture.create_topic(&dlq, 1).await;
        fixture
    }

    pub async fn create_topic(&mut self, topic: &str, partitions: i32) {
        let created = self
            .admin
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
            )
            .await
            .unwrap_or_else(|e| {
                panic!("Kafka could not create {topic}: {e} (is it up? `scripts/stack up kafka`)")
            });
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        self.topics.push(topic.to_string());
    }

    /// A consumer group of its own (and its dead-letter topic), for a second, independent sink.
    pub async fn another_group(&mut self, suffix: &str) -> String {
        let group = format!("{}-{suffix}", self.group);
        self.create_topic(&format!("{group}.dlq"), 1).await;
        group
    }

    /// The sink's configuration for this fixture: small batches and windows, so a few hundred
    /// records make many batches and cross many window boundaries.
    pub fn config(&self) -> SinkConfig {
        let mut config = SinkConfig::from_stack(&self.stack);
        config.topic = self.topic.clone();
        config.group = self.group.clone();
        config.index = self.index.clone();
        config.archive_prefix = self.prefix.clone();
        config.archive_window = 7;
        config.batch_max_records = 5;
        config.retry_cap = Duration::from_millis(500);
        config
    }

    /// Produce one event (Confluent-framed through the registry), keyed and with the headers the
    /// outbox connector sets. Returns (partition, offset).
    pub async fn produce(&self, event: &AnyEvent) -> (i32, i64) {
        let bytes = self.codec.encode_any(event).await.unwrap_or_else(|e| {
            panic!("the schema registry failed: {e} (start it with `scripts/stack up registry`)")
        });
        let id = event.event_id().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "id",
                value: Some(id.as_str()),
            })
            .insert(Header {
                key: "event_type",
                value: Some(event.name()),
            });
        self.produce_raw(&event.key(), &bytes, Some(headers)).await
    }

    pub async fn produce_raw(
        &self,
        key: &str,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> (i32, i64) {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        let delivery = self
            .producer
            .send(record, Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| panic!("Kafka: producing to {} failed: {e}", self.topic));
        (delivery.partition, delivery.offset)
    }

    fn reader(&self, group: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.stack.kafka_bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("a Kafka consumer")
    }

    /// The high watermark of every partition.
    pub fn end_offsets(&self) -> BTreeMap<i32, i64> {
        let reader = self.reader(&format!("{}-watermarks", self.group));
        (0..PARTITIONS)
            .map(|p| {
                let (_, high) = reader
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(10))
                    .expect("watermarks");
                (p, high)
            })
            .collect()
    }

    /// The offsets `group` committed (0 where none).
    pub fn committed(&self, group: &str) -> BTreeMap<i32, i64> {
        let reader = self.reader(group);
        let mut wanted = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            wanted.add_partition(&self.topic, p);
        }
        let committed = reader
            .committed_offsets(wanted, Duration::from_secs(10))
            .expect("committed offsets");
        (0..PARTITIONS)
            .map(|p| {
                let offset = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                };
                (p, offset)
            })
            .collect()
    }

    /// Wait until `group` has committed everything produced so far.
    pub async fn wait_caught_up(&self, group: &str, timeout: Duration) {
        let end = self.end_offsets();
        wait_for(
            &format!("{group} to commit up to {end:?}"),
            timeout,
            || async { self.committed(group) == end },
        )
        .await;
    }

    pub async fn refresh(&self, index: &str) {
        let response = self
            .es
            .indices()
            .refresh(IndicesRefreshParts::Index(&[index]))
            .send()
            .await
            .expect("Elasticsearch refresh");
        assert!(response.status_code().is_success(), "refresh {index}");
    }

    /// Every document of an index: id → (source, version).
    pub async fn documents(&self, index: &str) -> BTreeMap<String, (Value, i64)> {
        self.refresh(index).await;
        let body = elastic::read_ok(
            self.es
                .search(elasticsearch::SearchParts::Index(&[index]))
                .body(json!({"size": 10000, "version": true, "query": {"match_all": {}}}))
                .send()
                .await,
        )
        .await
        .expect("search");
        body["hits"]["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| {
                (
                    h["_id"].as_str().unwrap().to_string(),
                    (h["_source"].clone(), h["_version"].as_i64().unwrap()),
                )
            })
            .collect()
    }

    /// Every archive object under `prefix`, read with apache-avro's standard object container
    /// reader: name (below the prefix) → records. Asserts the container's codec and schema.
    pub async fn archive(&self, prefix: &str) -> BTreeMap<String, Vec<ArchivedRecord>> {
        let root = Path::from(prefix);
        let listed: Vec<_> = self
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .expect("listing the archive");
        let mut objects = BTreeMap::new();
        for meta in listed {
            let bytes = self
                .store
                .get(&meta.location)
                .await
                .expect("get an archive object")
                .bytes()
                .await
                .expect("read an archive object");
            let reader = Reader::new(&bytes[..]).expect("an Avro object container file");
            let schema = reader.writer_schema().clone();
            assert_eq!(
                schema.canonical_form(),
                archive::schema().canonical_form(),
                "{} is not written with the archive schema",
                meta.location
            );
            let records: Vec<ArchivedRecord> = reader
                .map(|v| {
                    ArchivedRecord::from_value(&v.expect("an Avro record"))
                        .expect("an archived record")
                })
                .collect();
            assert_eq!(
                &bytes[..4],
                b"Obj\x01",
                "{} is an object container file",
                meta.location
            );
            assert!(
                contains(&bytes, b"deflate"),
                "{} is deflate-compressed",
                meta.location
            );
            let name = meta
                .location
                .as_ref()
                .strip_prefix(&format!("{prefix}/"))
                .expect("under the prefix")
                .to_string();
            objects.insert(name, records);
        }
        objects
    }

    /// Remove what the test made: index, template, archive objects, topics.
    pub async fn cleanup(&self, extra_prefixes: &[&str], extra_indices: &[&str]) {
        let mut indices = vec![self.index.as_str()];
        indices.extend_from_slice(extra_indices);
        for index in indices {
            let _ = self
                .es
                .indices()
                .delete(IndicesDeleteParts::Index(&[index]))
                .send()
                .await;
            let _ = self
                .es
                .indices()
                .delete_index_template(IndicesDeleteIndexTemplateParts::Name(
                    &elastic::template_name(index),
                ))
                .send()
                .await;
        }
        let mut prefixes = vec![self.prefix.as_str()];
        prefixes.extend_from_slice(extra_prefixes);
        for prefix in prefixes {
            let listed: Vec<_> = self
                .store
                .list(Some(&Path::from(prefix)))
                .try_collect()
                .await
                .unwrap_or_default();
            for meta in listed {
                let _ = self.store.delete(&meta.location).await;
            }
        }
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let _ = self
            .admin
            .delete_topics(&topics, &AdminOptions::new())
            .await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A sink running in this process.
pub struct RunningSink {
    handle: JoinHandle<anyhow::Result<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningSink {
    pub fn start(config: SinkConfig) -> RunningSink {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(orderflow_analytics::sink::run(config, async {
            let _ = stopped.await;
        }));
        RunningSink {
            handle,
            stop: Some(stop),
        }
    }

    /// Ask it to stop and wait until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.handle)
            .await
            .expect("the sink stops within 30 s")
            .expect("the sink task")
            .expect("the sink ends without error");
    }

    /// Kill it where it stands, like a crash: nothing after the current await point runs.
    pub async fn crash(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}
