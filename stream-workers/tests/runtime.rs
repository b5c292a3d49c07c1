//! The consumer runtime against the real Kafka, PostgreSQL and registry, with a test reaction that
//! records each applied event in a table. One run covers: an event delivered twice has one effect; a
//! poison record and a refused event go to the dead-letter topic with their reason and origin while
//! the worker keeps consuming; a transient failure is retried until it passes; offsets are committed
//! at shutdown, so a restarted consumer repeats nothing; dead letters list and redrive once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use orderflow_platform::StackConfig;
use orderflow_schemas::registry::EventCodec;
use orderflow_schemas::{AnyEvent, CustomerId, EventId, OrderId, OrdersEvent, samples};
use orderflow_service_kit::database::TestDatabase;
use orderflow_stream_workers::runtime::dead_letter;
use orderflow_stream_workers::{
    ConsumerSpec, Effects, ReactionError, ReactionFuture, Reactions, Worker,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::migrate::Migrator;

static NO_SERVICE_MIGRATIONS: Migrator = Migrator::DEFAULT;

/// Applies OrderPlaced: one row in `effects`. Refuses one customer; fails transiently twice for another.
struct RecordingReactions {
    refused_customer: CustomerId,
    flaky_customer: CustomerId,
    flaky_failures: AtomicU32,
}

impl Reactions for RecordingReactions {
    fn handles(&self, event: &AnyEvent) -> bool {
        matches!(event, AnyEvent::Orders(OrdersEvent::OrderPlaced(_)))
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, effects: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            let AnyEvent::Orders(OrdersEvent::OrderPlaced(placed)) = event else {
                unreachable!("handles() admits only OrderPlaced")
            };
            sqlx::query("INSERT INTO effects (event_id, order_id) VALUES ($1, $2)")
                .bind(placed.event_id.as_uuid())
                .bind(placed.order_id.as_uuid())
                .execute(&mut *effects.tx)
                .await?;
            if placed.customer_id == self.refused_customer {
                return Err(ReactionError::Refused(
                    "customer is not allowed to order".into(),
                ));
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

fn placed(customer: CustomerId) -> orderflow_schemas::orders::OrderPlaced {
    let mut event = samples::order_placed();
    event.event_id = EventId::new_v7();
    event.order_id = OrderId::new_v7();
    event.customer_id = customer;
    event
}

async fn produce(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| {
            panic!(
                "Kafka: producing to {topic} failed: {e} (start it with `scripts/stack up kafka`)"
            )
        });
}

async fn encode(codec: &EventCodec, event: &orderflow_schemas::orders::OrderPlaced) -> Vec<u8> {
    codec.encode(event).await.unwrap_or_else(|err| {
        panic!("the schema registry failed: {err} (start it with `scripts/stack up registry`)")
    })
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..240 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn duplicates_poison_refusals_and_transient_failures() {
    let stack = StackConfig::from_env().expect("stack configuration");
    let db = TestDatabase::create(&stack.postgres, "runtime", &NO_SERVICE_MIGRATIONS)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    sqlx::query("CREATE TABLE effects (event_id uuid NOT NULL, order_id uuid NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();

    let run = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("runtime-test-{run}.events");
    let consumer_name: &'static str = Box::leak(format!("runtime-test-{run}").into_boxed_str());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            &[
                NewTopic::new(&topic, 2, TopicReplication::Fixed(1)),
                NewTopic::new(
                    &dead_letter::topic_of(consumer_name),
                    1,
                    TopicReplication::Fixed(1),
                ),
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
        .create()
        .unwrap();
    let refused_customer = CustomerId::new_v7();
    let flaky_customer = CustomerId::new_v7();
    let good = placed(CustomerId::new_v7());
    let refused = placed(refused_customer);
    let flaky = placed(flaky_customer);
    let good_bytes = encode(&codec, &good).await;
    produce(&producer, &topic, &good.order_id.to_string(), &good_bytes).await;
    produce(&producer, &topic, &good.order_id.to_string(), &good_bytes).await; // delivered twice
    produce(&producer, &topic, "poison", b"\x00not avro at all").await;
    produce(
        &producer,
        &topic,
        &refused.order_id.to_string(),
        &encode(&codec, &refused).await,
    )
    .await;
    produce(
        &producer,
        &topic,
        &flaky.order_id.to_string(),
        &encode(&codec, &flaky).await,
    )
    .await;

    let reactions = Arc::new(RecordingReactions {
        refused_customer,
        flaky_customer,
        flaky_failures: AtomicU32::new(0),
    });
    let topics: &'static [&'static str] =
        Box::leak(vec![&*Box::leak(topic.clone().into_boxed_str())].into_boxed_slice());
    let spec = ConsumerSpec {
        name: consumer_name,
        database: Box::leak(db.name.clone().into_boxed_str()),
        migrations: &NO_SERVICE_MIGRATIONS,
        topics,
        reactions: reactions.clone(),
    };
    let worker = Worker::connect(&stack, spec)
        .await
        .expect("worker connects");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));

    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    wait_for("the good and the flaky event to be applied", || async {
        count("SELECT count(*) FROM effects").await >= 2
    })
    .await;
    let bootstrap = stack.kafka_bootstrap.clone();
    wait_for("two dead letters", || {
        let bootstrap = bootstrap.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                dead_letter::list(&bootstrap, consumer_name)
                    .map(|l| l.len())
                    .unwrap_or(0)
            })
            .await
            .unwrap()
                >= 2
        }
    })
    .await;
    stop.send(()).unwrap();
    running.await.unwrap().expect("worker stops cleanly");

    // One effect per event, despite the duplicate delivery; the refused event's effect rolled back.
    let applied: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT event_id FROM effects ORDER BY event_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let mut expected = vec![(good.event_id.as_uuid(),), (flaky.event_id.as_uuid(),)];
    expected.sort();
    assert_eq!(applied, expected);
    assert_eq!(count("SELECT count(*) FROM inbox").await, 2);
    assert_eq!(
        reactions.flaky_failures.load(Ordering::SeqCst),
        3,
        "two transient failures, then success"
    );

    // The dead letters say why and where from.
    let letters = tokio::task::spawn_blocking({
        let bootstrap = stack.kafka_bootstrap.clone();
        move || dead_letter::list(&bootstrap, consumer_name).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let poison = letters
        .iter()
        .find(|l| l.key.as_deref() == Some("poison"))
        .expect("poison dead letter");
    assert_eq!(poison.header(dead_letter::REASON), "undecodable");
    assert_eq!(poison.header(dead_letter::ORIGINAL_TOPIC), topic);
    assert_eq!(poison.header(dead_letter::CONSUMER), consumer_name);
    assert!(!poison.header(dead_letter::ERROR).is_empty());
    assert_eq!(poison.payload.as_deref(), Some(&b"\x00not avro at all"[..]));
    let refusal = letters
        .iter()
        .find(|l| l.key.as_deref() == Some(refused.order_id.to_string().as_str()))
        .expect("refused dead letter");
    assert_eq!(refusal.header(dead_letter::REASON), "refused");
    assert!(
        refusal
            .header(dead_letter::ERROR)
            .contains("customer is not allowed to order")
    );
    assert!(
        refusal
            .header(dead_letter::ORIGINAL_OFFSET)
            .parse::<i64>()
            .is_ok()
    );

    // Offsets were committed: the group's committed position is the end of every partition.
    let checker: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", consumer_name)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(&topic, 0);
    partitions.add_partition(&topic, 1);
    let committed = checker
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    for partition in [0, 1] {
        let (_, high) = checker
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .unwrap();
        let at = committed
            .find_partition(&topic, partition)
            .unwrap()
            .offset();
        let expected_at = if high == 0 {
            Offset::Invalid
        } else {
            Offset::Offset(high)
        };
        assert_eq!(
            at, expected_at,
            "partition {partition}: committed {at:?}, end {high}"
        );
    }

    // Redrive puts both back on the original topic once; a second redrive has nothing to do.
    let redriven = dead_letter::redrive(&stack.kafka_bootstrap, consumer_name)
        .await
        .unwrap();
    assert_eq!(redriven, 2);
    assert_eq!(
        dead_letter::redrive(&stack.kafka_bootstrap, consumer_name)
            .await
            .unwrap(),
        0
    );
    let letters = tokio::task::spawn_blocking({
        let bootstrap = stack.kafka_bootstrap.clone();
        move || dead_letter::list(&bootstrap, consumer_name).unwrap()
    })
    .await
    .unwrap();
    assert!(letters.iter().all(|l| l.redriven), "{letters:?}");

    admin
        .delete_topics(
            &[&topic, &dead_letter::topic_of(consumer_name)],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    db.drop_database().await.unwrap();
}
