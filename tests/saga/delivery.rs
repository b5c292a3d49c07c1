//! Delivery guarantees, seen from outside: an event produced again onto its topic has one effect; a
//! poison record lands in the dead-letter topic with its reason and the workers keep consuming; the
//! workers' health and metrics say so.

use std::time::Duration;

use orderflow_consumer::dead_letter;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Row;

use crate::shop::*;
use crate::support::platform::{Platform, eventually, platform};

fn producer(p: &Platform) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &p.stack.kafka_bootstrap)
        .create()
        .expect("Kafka producer")
}

/// Wait until `group` has committed past `offset` on `topic`/`partition`.
async fn consumed_past(p: &Platform, group: &str, topic: &str, partition: i32, offset: i64) {
    let bootstrap = p.stack.kafka_bootstrap.clone();
    eventually(
        &format!("{group} to commit past {topic}:{partition}:{offset}"),
        SAGA,
        || {
            let (bootstrap, group, topic) =
                (bootstrap.clone(), group.to_string(), topic.to_string());
            async move {
                tokio::task::spawn_blocking(move || {
                    let consumer: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", &bootstrap)
                        .set("group.id", &group)
                        .create()
                        .map_err(|e| e.to_string())?;
                    let mut wanted = TopicPartitionList::new();
                    wanted.add_partition(&topic, partition);
                    let committed = consumer
                        .committed_offsets(wanted, Duration::from_secs(5))
                        .map_err(|e| e.to_string())?;
                    match committed
                        .find_partition(&topic, partition)
                        .map(|e| e.offset())
                    {
                        Some(Offset::Offset(o)) if o > offset => Ok(()),
                        other => Err(format!("committed {other:?}")),
                    }
                })
                .await
                .unwrap()
            }
        },
    )
    .await
}

#[tokio::test]
async fn the_same_event_delivered_twice_has_one_effect() {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 1_100, 6).await;
    let order_id = place_order(p, &customer, &[(&sku, 2)]).await;
    order_reaches(p, &order_id, "CONFIRMED").await;
    stock_reaches(p, &sku, 6, 2).await;

    // The OrderPlaced record, exactly as the connector published it (the outbox row keeps it a while).
    let orders_db = p.db("orders").await;
    let row = sqlx::query(
        "SELECT id, payload, trace_context FROM outbox
         WHERE aggregate_id = $1 AND event_type = 'orderflow.orders.OrderPlaced'",
    )
    .bind(&order_id)
    .fetch_one(&orders_db)
    .await
    .expect("the OrderPlaced outbox row");
    let event_id: uuid::Uuid = row.get("id");
    let payload: Vec<u8> = row.get("payload");
    let event_id = event_id.to_string();
    // Every reaction here is idempotent by itself too (a stock decision per order, a payment per
    // order), so the effects alone would not show a missing inbox: the inbox's own verdict is
    // counted as well.
    let duplicates = || {
        p.worker_counter(
            "orderflow_events_total",
            &[("consumer", "inventory-saga"), ("outcome", "duplicate")],
        )
    };
    let duplicates_before = duplicates().await.unwrap();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "id",
            value: Some(&event_id),
        })
        .insert(Header {
            key: "event_type",
            value: Some("orderflow.orders.OrderPlaced"),
        });
    let delivery = producer(p)
        .send(
            FutureRecord::to("orders.events")
                .key(&order_id)
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("Kafka: produce the duplicate: {e}"));
    for group in ["inventory-saga", "payments-saga", "shipping-saga"] {
        consumed_past(
            p,
            group,
            "orders.events",
            delivery.partition,
            delivery.offset,
        )
        .await;
    }

    // One reservation, one decision event, one payment: nothing happened twice.
    let inventory_db = p.db("inventory").await;
    let decisions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE aggregate_id = $1
         AND event_type IN ('orderflow.inventory.StockReserved', 'orderflow.inventory.StockRejected')",
    )
    .bind(&order_id)
    .fetch_one(&inventory_db)
    .await
    .unwrap();
    assert_eq!(decisions, 1, "one stock decision for order {order_id}");
    let seen: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inbox WHERE consumer = 'inventory-saga' AND event_id = $1::uuid",
    )
    .bind(&event_id)
    .fetch_one(&inventory_db)
    .await
    .unwrap();
    assert_eq!(seen, 1);
    let still = product(p, &sku).await;
    assert_eq!(
        (still["on_hand"].as_i64(), still["reserved"].as_i64()),
        (Some(6), Some(2))
    );
    let payments_db = p.db("payments").await;
    let payments: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE order_id = $1::uuid")
            .bind(&order_id)
            .fetch_one(&payments_db)
            .await
            .unwrap();
    assert_eq!(payments, 1);
    let duplicates_after = duplicates().await.unwrap();
    assert!(
        duplicates_after > duplicates_before,
        "inventory-saga's inbox recognised the redelivery ({duplicates_before} -> {duplicates_after})"
    );
}

#[tokio::test]
async fn a_poison_record_is_dead_lettered_with_its_reason_and_the_workers_go_on() {
    let p = platform();
    let key = unique("poison");
    let delivery = producer(p)
        .send(
            FutureRecord::to("orders.events")
                .key(&key)
                .payload(&b"\x00\x00\x00\x00\x07garbage"[..]),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("Kafka: produce the poison record: {e}"));

    let bootstrap = p.stack.kafka_bootstrap.clone();
    let letter = eventually("the poison record in inventory-saga.dlq", SAGA, || {
        let (bootstrap, key) = (bootstrap.clone(), key.clone());
        async move {
            let letters = tokio::task::spawn_blocking(move || {
                dead_letter::list(&bootstrap, "inventory-saga")
            })
            .await
            .unwrap()
            .map_err(|e| e.to_string())?;
            letters
                .into_iter()
                .find(|l| l.key.as_deref() == Some(key.as_str()))
                .ok_or_else(|| "not there yet".to_string())
        }
    })
    .await;
    assert_eq!(letter.header(dead_letter::REASON), "undecodable");
    assert_eq!(letter.header(dead_letter::ORIGINAL_TOPIC), "orders.events");
    assert_eq!(
        letter.header(dead_letter::ORIGINAL_PARTITION),
        delivery.partition.to_string()
    );
    assert_eq!(
        letter.header(dead_letter::ORIGINAL_OFFSET),
        delivery.offset.to_string()
    );
    assert!(!letter.header(dead_letter::ERROR).is_empty());

    // The workers keep consuming: an order placed after the poison goes through.
    let customer = register_customer(p).await;
    let sku = create_product(p, 800, 3).await;
    let order_id = place_order(p, &customer, &[(&sku, 1)]).await;
    order_reaches(p, &order_id, "CONFIRMED").await;

    // ... and the workers' metrics and health say what happened.
    let (status, ready) = p.get(format!("{}/health/ready", p.workers_url)).await;
    assert_eq!(status, 200, "{ready}");
    let metrics = p
        .http
        .get(format!("{}/metrics", p.workers_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"orderflow_dead_letters_total{consumer="inventory-saga",reason="undecodable"}"#,
        r#"orderflow_events_total{consumer="inventory-saga",outcome="applied"}"#,
        r#"orderflow_events_total{consumer="orders-saga",outcome="applied"}"#,
    ] {
        assert!(
            metrics.contains(expected),
            "metrics lack {expected}:\n{metrics}"
        );
    }
}
