//! The inventory saga's dead letters on the real Kafka, PostgreSQL and registry: an OrderPlaced the
//! database refuses is dead-lettered and the order's OrderCancelled parks behind it; redriven, the
//! OrderPlaced and then the cancellation apply in one transaction, so no stock is ever held for the
//! cancelled order and the stock ends unchanged. And an OrderPlaced redriven after its order's
//! cancellation was applied (a dead letter from before sequencing, or a copy) reserves nothing.

use std::sync::Arc;
use std::time::Duration;

use orderflow_consumer::{Runtime, Settings, Spec, Transactional, dead_letter};
use orderflow_platform::StackConfig;
use orderflow_schemas::orders::{OrderCancelled, OrderLine, OrderPlaced};
use orderflow_schemas::registry::EventCodec;
use orderflow_schemas::{Event, EventId, Money, OrderId, Quantity, samples};
use orderflow_service_kit::Outbox;
use orderflow_service_kit::database::TestDatabase;
use orderflow_stream_workers::reactions::inventory::InventorySaga;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const SKU: &str = "MUG-CLASSIC";

async fn wait_for<F, Fut>(what: &str, mut check: F)
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

fn placed(order: OrderId) -> OrderPlaced {
    let mut event = samples::order_placed();
    event.event_id = EventId::new_v7();
    event.order_id = order;
    let price = Money::new(500, event.total.currency()).unwrap();
    event.lines = vec![OrderLine {
        sku: SKU.parse().unwrap(),
        quantity: Quantity::new(2).unwrap(),
        unit_price: price,
    }];
    event.total = Money::new(1000, price.currency()).unwrap();
    event
}

fn cancelled(order: &OrderPlaced) -> OrderCancelled {
    let mut event = samples::order_cancelled();
    event.event_id = EventId::new_v7();
    event.order.order_id = order.order_id;
    event.order.customer_id = order.customer_id;
    event
}

struct Scratch {
    db: TestDatabase,
    topic: String,
    name: &'static str,
    codec: EventCodec,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl Scratch {
    async fn produce<E: Event>(&self, event: &E, key: OrderId, extra: &[(&str, &str)]) {
        let bytes = self.codec.encode(event).await.unwrap();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "id",
                value: Some(&event.event_id().to_string()),
            })
            .insert(Header {
                key: "event_type",
                value: Some(E::NAME),
            });
        for (name, value) in extra {
            headers = headers.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(&key.to_string())
                    .payload(&bytes)
                    .headers(headers),
                Duration::from_secs(20),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("Kafka: producing to {}: {e}", self.topic));
    }

    async fn stock(&self) -> (i32, i32) {
        sqlx::query_as("SELECT on_hand, reserved FROM products WHERE sku = $1")
            .bind(SKU)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn scalar(&self, sql: &str, order: OrderId) -> i64 {
        sqlx::query_scalar(sql)
            .bind(order.as_uuid())
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn parked(&self, order: OrderId) -> Vec<String> {
        sqlx::query_scalar("SELECT state FROM parked_events WHERE record_key = $1 ORDER BY seq")
            .bind(order.to_string())
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_order_placed_of_a_cancelled_order_holds_no_stock() {
    let stack = StackConfig::from_env().expect("stack configuration");
    let db = TestDatabase::create(&stack.postgres, "inventory", &orderflow_inventory::MIGRATOR)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    sqlx::query(
        "INSERT INTO products (sku, name, unit_price_minor, currency, on_hand)
         VALUES ($1, 'Mug', 500, 'EUR', 10)",
    )
    .bind(SKU)
    .execute(&db.pool)
    .await
    .unwrap();
    // The database refuses every stock decision for now (a constraint no retry fixes).
    for ddl in [
        "CREATE FUNCTION refuse_decision() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'no decisions today' USING ERRCODE = 'check_violation'; END $$",
        "CREATE TRIGGER refuse_decision BEFORE INSERT ON stock_decisions
         FOR EACH ROW EXECUTE FUNCTION refuse_decision()",
    ] {
        sqlx::query(ddl).execute(&db.pool).await.unwrap();
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name: &'static str = Box::leak(format!("inventory-saga-test-{run}").into_boxed_str());
    let topic = format!("redrive-test-{run}.orders-events");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            &[
                NewTopic::new(&topic, 1, TopicReplication::Fixed(1)),
                NewTopic::new(&dead_letter::topic_of(name), 1, TopicReplication::Fixed(1)),
            ],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("Kafka reachable");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let s = Scratch {
        db,
        topic: topic.clone(),
        name,
        codec: EventCodec::new(&stack.registry_url).unwrap(),
        producer: ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .create()
            .unwrap(),
        admin,
    };

    let runtime = Runtime::new(
        &stack.kafka_bootstrap,
        &stack.registry_url,
        Settings::default(),
        Spec {
            name,
            topics: vec![topic.clone()],
            handler: Arc::new(Transactional {
                reactions: InventorySaga,
                pool: s.db.pool.clone(),
                outbox: Outbox::new(&stack.registry_url).unwrap(),
            }),
            key_lanes: None,
        },
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runtime.run(async {
        let _ = stopped.await;
    }));

    // 1. The OrderPlaced is refused and dead-lettered; the order's cancellation parks behind it.
    let x = placed(OrderId::new_v7());
    s.produce(&x, x.order_id, &[]).await;
    s.produce(&cancelled(&x), x.order_id, &[]).await;
    wait_for("the cancellation parked behind the dead letter", || async {
        s.parked(x.order_id).await == ["DEAD_LETTERED", "PARKED"]
    })
    .await;
    assert_eq!(s.stock().await, (10, 0));

    // 2. The refusal is fixed and the dead letter redriven: placed, then cancelled, in one
    // transaction: no committed state ever held stock for the order.
    sqlx::query("DROP TRIGGER refuse_decision ON stock_decisions")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let redriven = dead_letter::redrive(&stack.kafka_bootstrap, s.name, Some(&s.db.pool), false)
        .await
        .unwrap();
    assert_eq!(redriven.produced, 1, "{redriven:?}");
    wait_for("the order's events applied", || async {
        s.parked(x.order_id).await.is_empty()
    })
    .await;
    assert_eq!(s.stock().await, (10, 0), "stock unchanged");
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM reservations WHERE order_id = $1 AND status <> 'RELEASED'",
            x.order_id
        )
        .await,
        0
    );
    assert_eq!(
        s.scalar(
            // now(), the default of created_at, is the start of the (top-level) transaction.
            "SELECT count(DISTINCT created_at) FROM outbox WHERE aggregate_id = $1::text",
            x.order_id
        )
        .await,
        1,
        "StockReserved and StockReleased were committed together"
    );
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM outbox WHERE aggregate_id = $1::text",
            x.order_id
        )
        .await,
        2
    );

    // 3. An order whose cancellation was applied first: its OrderPlaced, redriven later (here a
    // copy as `dlq redrive` produces one), reserves nothing.
    let y = placed(OrderId::new_v7());
    let y_cancelled = cancelled(&y);
    s.produce(&y_cancelled, y.order_id, &[]).await;
    s.produce(
        &y,
        y.order_id,
        &[(dead_letter::REDRIVEN_FROM, "an older dead letter")],
    )
    .await;
    let ids = vec![y_cancelled.event_id.as_uuid(), y.event_id.as_uuid()];
    wait_for("both events of the second order applied", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&s.db.pool)
            .await
            .unwrap()
            == 2
    })
    .await;
    assert_eq!(s.stock().await, (10, 0), "nothing reserved");
    let decision: String =
        sqlx::query_scalar("SELECT outcome FROM stock_decisions WHERE order_id = $1")
            .bind(y.order_id.as_uuid())
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(decision, "CANCELLED");
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM outbox WHERE aggregate_id = $1::text",
            y.order_id
        )
        .await,
        0,
        "no StockReserved"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the runtime stops")
        .unwrap()
        .unwrap();
    let _ = s
        .admin
        .delete_topics(
            &[&s.topic, &dead_letter::topic_of(s.name)],
            &AdminOptions::new(),
        )
        .await;
    s.db.drop_database().await.unwrap();
}
