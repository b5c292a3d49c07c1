//! What the runtime's tests share: a scratch topic (and its dead-letter topic) on the real Kafka, a
//! scratch database with an `effects` table on the real PostgreSQL, OrderPlaced events encoded
//! through the real registry, and a `Recorder` reaction whose behaviour each test steers.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use orderflow_consumer::dead_letter::{self, DeadLetter};
use orderflow_consumer::{
    Effects, ReactionError, ReactionFuture, Reactions, Runtime, Settings, Spec, Transactional,
};
use orderflow_platform::StackConfig;
use orderflow_schemas::orders::OrderPlaced;
use orderflow_schemas::registry::EventCodec;
use orderflow_schemas::{
    AnyEvent, CustomerId, Event, EventId, Money, OrderId, OrdersEvent, samples,
};
use orderflow_service_kit::Outbox;
use orderflow_service_kit::database::TestDatabase;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::migrate::Migrator;

pub static NO_SERVICE_MIGRATIONS: Migrator = Migrator::DEFAULT;

/// Applies OrderPlaced: one row in `effects` with the event's sequence number (its total) and the
/// transaction id. Refuses one customer; fails transiently for another while `stuck` is set, or
/// twice when `flaky` is; notes in `violations` any event of an order applied out of order.
pub struct Recorder {
    pub refused_customer: CustomerId,
    /// Whether `refused_customer` is refused (true until a test says otherwise).
    pub refusing: AtomicBool,
    pub stuck_customer: CustomerId,
    pub stuck: AtomicBool,
    pub stuck_attempts: AtomicU32,
    pub flaky_customer: CustomerId,
    pub flaky_failures: AtomicU32,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            refused_customer: CustomerId::new_v7(),
            refusing: AtomicBool::new(true),
            stuck_customer: CustomerId::new_v7(),
            stuck: AtomicBool::new(true),
            stuck_attempts: AtomicU32::new(0),
            flaky_customer: CustomerId::new_v7(),
            flaky_failures: AtomicU32::new(0),
        }
    }
}

impl Reactions for Recorder {
    fn event_types(&self) -> &'static [&'static str] {
        &[OrderPlaced::NAME]
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, effects: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            let AnyEvent::Orders(OrdersEvent::OrderPlaced(placed)) = event else {
                unreachable!("event_types() admits only OrderPlaced")
            };
            let seq = placed.total.amount_minor();
            let previous: i64 = sqlx::query_scalar(
                "SELECT coalesce(max(seq), -1) FROM effects WHERE order_id = $1",
            )
            .bind(placed.order_id.as_uuid())
            .fetch_one(&mut *effects.tx)
            .await?;
            if previous != seq - 1 {
                sqlx::query("INSERT INTO violations (order_id, seq, previous) VALUES ($1, $2, $3)")
                    .bind(placed.order_id.as_uuid())
                    .bind(seq)
                    .bind(previous)
                    .execute(&mut *effects.tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO effects (event_id, order_id, seq, txid) VALUES ($1, $2, $3, txid_current())",
            )
            .bind(placed.event_id.as_uuid())
            .bind(placed.order_id.as_uuid())
            .bind(seq)
            .execute(&mut *effects.tx)
            .await?;
            if placed.customer_id == self.refused_customer && self.refusing.load(Ordering::SeqCst) {
                return Err(ReactionError::Refused(
                    "customer is not allowed to order".into(),
                ));
            }
            if placed.customer_id == self.stuck_customer && self.stuck.load(Ordering::SeqCst) {
                self.stuck_attempts.fetch_add(1, Ordering::SeqCst);
                return Err(sqlx::Error::PoolTimedOut.into());
            }
            if placed.customer_id == self.flaky_customer
                && self.flaky_failures.fetch_add(1, Ordering::SeqCst) < 2
            {
                return Err(sqlx::Error::PoolTimedOut.into());
            }
            Ok(())
        })
    }
}

/// An OrderPlaced of `order` by `customer` whose total (minor units) is its sequence number.
pub fn placed(order: OrderId, customer: CustomerId, seq: i64) -> OrderPlaced {
    let mut event = samples::order_placed();
    event.event_id = EventId::new_v7();
    event.order_id = order;
    event.customer_id = customer;
    event.total = Money::new(seq, event.total.currency()).unwrap();
    event
}

pub struct Fixture {
    pub stack: StackConfig,
    pub db: TestDatabase,
    pub topic: String,
    pub name: &'static str,
    pub codec: EventCodec,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl Fixture {
    /// A topic of `partitions` partitions, its dead-letter topic and a database, all new.
    pub async fn new(partitions: i32) -> Fixture {
        let stack = StackConfig::from_env().expect("stack configuration");
        let db = TestDatabase::create(&stack.postgres, "runtime", &NO_SERVICE_MIGRATIONS)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        for ddl in [
            "CREATE TABLE effects (event_id uuid NOT NULL, order_id uuid NOT NULL, seq bigint NOT NULL, txid bigint NOT NULL)",
            "CREATE TABLE violations (order_id uuid NOT NULL, seq bigint NOT NULL, previous bigint NOT NULL)",
        ] {
            sqlx::query(ddl).execute(&db.pool).await.unwrap();
        }
        let run = uuid::Uuid::new_v4().simple().to_string();
        let topic = format!("runtime-test-{run}.events");
        let name: &'static str = Box::leak(format!("runtime-test-{run}").into_boxed_str());
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .create()
            .unwrap();
        let created = admin
            .create_topics(
                &[
                    NewTopic::new(&topic, partitions, TopicReplication::Fixed(1)),
                    NewTopic::new(&dead_letter::topic_of(name), 1, TopicReplication::Fixed(1)),
                ],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Kafka at {} is not reachable: {e} (start it with `scripts/stack up kafka`)",
                    stack.kafka_bootstrap
                )
            });
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        let codec = EventCodec::new(&stack.registry_url).unwrap();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .set("linger.ms", "0")
            .create()
            .unwrap();
        Fixture {
            stack,
            db,
            topic,
            name,
            codec,
            producer,
            admin,
        }
    }

    pub async fn encode(&self, event: &OrderPlaced) -> Vec<u8> {
        self.codec.encode(event).await.unwrap_or_else(|err| {
            panic!("the schema registry failed: {err} (start it with `scripts/stack up registry`)")
        })
    }

    /// Produce a record with the connector's `event_type` and `id` headers (when given), to a
    /// partition of Kafka's choice or the one named.
    pub async fn produce(
        &self,
        key: &str,
        payload: &[u8],
        event_type: Option<&str>,
        partition: Option<i32>,
    ) {
        let mut headers = OwnedHeaders::new();
        if let Some(event_type) = event_type {
            headers = headers.insert(Header {
                key: "event_type",
                value: Some(event_type),
            });
        }
        let mut record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.producer
            .send(record, Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| {
                panic!(
                    "Kafka: producing to {} failed: {e} (start it with `scripts/stack up kafka`)",
                    self.topic
                )
            });
    }

    /// Encode and produce an OrderPlaced, keyed by its order.
    pub async fn produce_placed(&self, event: &OrderPlaced, partition: Option<i32>) {
        let bytes = self.encode(event).await;
        self.produce(
            &event.order_id.to_string(),
            &bytes,
            Some(OrderPlaced::NAME),
            partition,
        )
        .await;
    }

    /// The runtime's handler for `reactions` on the fixture's database.
    pub fn handler(&self, reactions: Arc<Recorder>) -> Transactional<Arc<Recorder>> {
        Transactional {
            reactions,
            pool: self.db.pool.clone(),
            outbox: Outbox::new(&self.stack.registry_url).unwrap(),
        }
    }

    /// Start the runtime with `reactions` in a task of its own.
    pub async fn start(
        &self,
        reactions: Arc<Recorder>,
        key_lanes: Option<usize>,
        settings: Settings,
    ) -> Running {
        let handler = self.handler(reactions);
        let runtime = Runtime::new(
            &self.stack.kafka_bootstrap,
            &self.stack.registry_url,
            settings,
            Spec {
                name: self.name,
                topics: vec![self.topic.clone()],
                handler: Arc::new(handler),
                key_lanes,
            },
        )
        .expect("the runtime starts");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(runtime.run(async {
            let _ = stopped.await;
        }));
        Running { stop, task }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// The consumer group's committed offset of a partition of the topic, if any.
    pub async fn committed_offset(&self, partition: i32) -> Option<i64> {
        let bootstrap = self.stack.kafka_bootstrap.clone();
        let (name, topic) = (self.name, self.topic.clone());
        tokio::task::spawn_blocking(move || {
            let reader: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", name)
                .create()
                .unwrap();
            let mut wanted = TopicPartitionList::new();
            wanted.add_partition(&topic, partition);
            let committed = reader
                .committed_offsets(wanted, Duration::from_secs(10))
                .unwrap();
            match committed
                .find_partition(&topic, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => Some(offset),
                _ => None,
            }
        })
        .await
        .unwrap()
    }

    /// The high watermark of a partition of the topic.
    pub async fn end_of(&self, partition: i32) -> i64 {
        let bootstrap = self.stack.kafka_bootstrap.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let reader: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .unwrap();
            reader
                .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .await
        .unwrap()
    }

    /// Wait until the consumer group has committed every partition (of `partitions`) to its end.
    pub async fn wait_until_consumed(&self, partitions: i32) {
        wait_for("the consumer to commit everything produced", || async {
            for partition in 0..partitions {
                let end = self.end_of(partition).await;
                if end > 0 && self.committed_offset(partition).await != Some(end) {
                    return false;
                }
            }
            true
        })
        .await;
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let bootstrap = self.stack.kafka_bootstrap.clone();
        let name = self.name;
        tokio::task::spawn_blocking(move || dead_letter::list(&bootstrap, name).unwrap())
            .await
            .unwrap()
    }

    pub async fn cleanup(self) {
        let _ = self
            .admin
            .delete_topics(
                &[&self.topic, &dead_letter::topic_of(self.name)],
                &AdminOptions::new(),
            )
            .await;
        self.db.drop_database().await.unwrap();
    }
}

pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the runtime stops within 60 s")
            .unwrap()
            .expect("the runtime stops cleanly");
    }
}

/// Wait (up to a minute) until `check` holds.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}
