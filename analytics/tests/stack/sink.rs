//! The sink against the real Kafka, registry, Elasticsearch and S3: one document per finished order,
//! every record archived once in its offset window, dead letters for what cannot be decoded, and
//! idempotence (a replay from offset 0 and an older event change nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::DateTime;
use orderflow_analytics::sink::archive::ArchivedRecord;
use orderflow_consumer::dead_letter;
use orderflow_schemas::orders::{CancellationReason, OrderStatus};
use orderflow_schemas::{AnyEvent, Currency, CustomerId};
use serde_json::Value;

use crate::orders::{Outcome, Story, varied_stories};
use crate::support::{Fixture, RunningSink};

/// What was produced: (partition, offset) → (key, payload, event type).
pub type Produced = BTreeMap<(i32, i64), (Option<Vec<u8>>, Option<Vec<u8>>, Option<String>)>;

pub async fn produce_stories(fixture: &Fixture, stories: &[Story], produced: &mut Produced) {
    // Interleave the orders' events, as concurrent orders would be.
    let events: Vec<Vec<AnyEvent>> = stories.iter().map(Story::events).collect();
    let longest = events.iter().map(Vec::len).max().unwrap_or(0);
    for step in 0..longest {
        for order in &events {
            if let Some(event) = order.get(step) {
                let at = fixture.produce(event).await;
                let bytes = fixture.codec.encode_any(event).await.unwrap();
                produced.insert(
                    at,
                    (
                        Some(event.key().into_bytes()),
                        Some(bytes),
                        Some(event.name().to_string()),
                    ),
                );
            }
        }
    }
}

/// Every object holds exactly the produced records of one window, named by its first offset and
/// dated by its first record; together they hold every produced record once.
pub fn assert_archive_matches(
    fixture: &Fixture,
    archive: &BTreeMap<String, Vec<ArchivedRecord>>,
    produced: &Produced,
    window: i64,
) {
    let mut seen: BTreeSet<(i32, i64)> = BTreeSet::new();
    for (name, records) in archive {
        assert!(!records.is_empty(), "{name} is empty");
        let first = &records[0];
        let start = first.offset / window * window;
        let date = DateTime::from_timestamp_millis(first.timestamp.expect("a timestamp"))
            .unwrap()
            .format("%Y-%m-%d");
        assert_eq!(
            name,
            &format!(
                "date={date}/topic={}/partition={}/offset={start:012}.avro",
                fixture.topic, first.partition
            )
        );
        let expected: Vec<i64> = produced
            .keys()
            .filter(|(p, o)| *p == first.partition && *o >= start && *o < start + window)
            .map(|(_, o)| *o)
            .collect();
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets, expected,
            "{name} holds exactly its window, in order"
        );
        for record in records {
            assert_eq!(record.topic, fixture.topic);
            assert!(
                seen.insert((record.partition, record.offset)),
                "record {}/{} archived twice",
                record.partition,
                record.offset
            );
            let (key, payload, event_type) = &produced[&(record.partition, record.offset)];
            assert_eq!(&record.key, key);
            assert_eq!(&record.payload, payload, "the original bytes");
            if event_type.is_some() {
                assert_eq!(&record.event_type, event_type);
                assert!(record.event_id.is_some());
                assert!(record.schema_id.is_some());
            }
        }
    }
    let all: BTreeSet<(i32, i64)> = produced.keys().copied().collect();
    assert_eq!(seen, all, "every produced record is archived");
}

/// The document of a story, field by field, from the story's own facts.
pub fn assert_document(doc: &Value, story: &Story) {
    assert_eq!(doc["order_id"], story.order_id.to_string());
    assert_eq!(doc["customer_id"], story.customer_id.to_string());
    assert_eq!(doc["currency"], story.currency.as_str());
    assert_eq!(doc["total_minor"], story.total_minor());
    assert_eq!(doc["units"], story.units());
    assert_eq!(doc["line_count"], story.lines.len());
    for (i, (sku, q, p)) in story.lines.iter().enumerate() {
        let line = &doc["lines"][i];
        assert_eq!(line["sku"], sku.as_str());
        assert_eq!(line["quantity"], *q);
        assert_eq!(line["unit_price_minor"], *p);
        assert_eq!(line["line_total_minor"], i64::from(*q) * p);
        assert_eq!(line["currency"], story.currency.as_str());
    }
    let closed = DateTime::from_timestamp_millis(story.closed_ms).unwrap();
    let closed_at: DateTime<chrono::Utc> = doc["closed_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(closed_at, closed);
    match story.outcome {
        Outcome::Completed => {
            assert_eq!(doc["status"], "COMPLETED");
            assert_eq!(doc["completed_at"], doc["closed_at"]);
            assert!(doc["cancellation_reason"].is_null());
            assert_eq!(doc["event_type"], "orderflow.orders.OrderCompleted");
        }
        Outcome::Cancelled(reason, from) => {
            assert_eq!(doc["status"], "CANCELLED");
            assert_eq!(doc["cancelled_at"], doc["closed_at"]);
            assert_eq!(
                doc["cancellation_reason"],
                serde_json::to_value(reason).unwrap()
            );
            assert_eq!(doc["cancelled_from"], serde_json::to_value(from).unwrap());
            assert_eq!(doc["event_type"], "orderflow.orders.OrderCancelled");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_finished_order_is_indexed_and_every_record_archived() {
    let fixture = Fixture::new("sink").await;
    let stories = varied_stories(24);
    let mut produced = Produced::new();
    produce_stories(&fixture, &stories, &mut produced).await;
    // A record that is not Confluent-framed Avro, and one without a value.
    let poison = fixture
        .produce_raw("poison", b"\x00not avro at all", None)
        .await;
    produced.insert(
        poison,
        (
            Some(b"poison".to_vec()),
            Some(b"\x00not avro at all".to_vec()),
            None,
        ),
    );
    let tombstone = {
        let record =
            rdkafka::producer::FutureRecord::<str, [u8]>::to(&fixture.topic).key("tombstone");
        let d = fixture
            .producer
            .send(record, Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| panic!("Kafka: {e}"));
        (d.partition, d.offset)
    };
    produced.insert(tombstone, (Some(b"tombstone".to_vec()), None, None));

    let config = fixture.config();
    let sink = RunningSink::start(config.clone());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(120))
        .await;
    sink.stop().await;

    let docs = fixture.documents(&fixture.index).await;
    assert_eq!(docs.len(), stories.len(), "one document per finished order");
    for story in &stories {
        let (doc, version) = &docs[&story.order_id.to_string()];
        assert_document(doc, story);
        assert_eq!(
            *version, story.closed_ms,
            "the external version is occurred_at"
        );
    }

    let archive = fixture.archive(&fixture.prefix).await;
    assert_archive_matches(&fixture, &archive, &produced, config.archive_window);

    let letters = dead_letter::list(&fixture.stack.kafka_bootstrap, &fixture.group)
        .expect("the dead letters");
    let mut dead: Vec<(String, i64, String)> = letters
        .iter()
        .map(|l| {
            (
                l.header(dead_letter::REASON).to_string(),
                l.header(dead_letter::ORIGINAL_OFFSET).parse().unwrap(),
                l.header(dead_letter::ORIGINAL_TOPIC).to_string(),
            )
        })
        .collect();
    dead.sort();
    let mut expected = vec![
        ("undecodable".to_string(), poison.1, fixture.topic.clone()),
        (
            "undecodable".to_string(),
            tombstone.1,
            fixture.topic.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(dead, expected);

    fixture.cleanup(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_and_an_older_event_change_nothing() {
    let mut fixture = Fixture::new("replay").await;
    let stories = varied_stories(10);
    let mut produced = Produced::new();
    produce_stories(&fixture, &stories, &mut produced).await;
    let sink = RunningSink::start(fixture.config());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    sink.stop().await;
    let before = fixture.documents(&fixture.index).await;

    // An older terminal event of a completed order: a cancellation dated an hour before it.
    let completed = stories.iter().find(|s| s.is_completed()).unwrap();
    let mut cancelled = completed.clone();
    cancelled.outcome =
        Outcome::Cancelled(CancellationReason::CustomerRequest, OrderStatus::Confirmed);
    let older = cancelled.terminal_at(completed.closed_ms - 3_600_000);
    // The terminal event of another order twice more, at the same instant (a redelivery).
    let again = stories[1].terminal();
    // And a genuinely newer event of another order, which must win.
    let newer_story = stories.iter().rfind(|s| s.is_completed()).unwrap();
    let newer = newer_story.terminal_at(newer_story.closed_ms + 60_000);
    for event in [&older, &again, &again, &newer] {
        let at = fixture.produce(event).await;
        let bytes = fixture.codec.encode_any(event).await.unwrap();
        produced.insert(
            at,
            (
                Some(event.key().into_bytes()),
                Some(bytes),
                Some(event.name().to_string()),
            ),
        );
    }
    let sink = RunningSink::start(fixture.config());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    sink.stop().await;
    let after = fixture.documents(&fixture.index).await;
    assert_eq!(after.len(), before.len());
    for (id, (doc, version)) in &after {
        if *id == newer_story.order_id.to_string() {
            assert_eq!(
                *version,
                newer_story.closed_ms + 60_000,
                "the newer event wins"
            );
            assert_eq!(doc["event_id"], newer.event_id().to_string());
        } else {
            assert_eq!(
                (doc, version),
                (&before[id].0, &before[id].1),
                "order {id} unchanged"
            );
        }
    }
    assert_eq!(
        after[&completed.order_id.to_string()].0["status"],
        "COMPLETED"
    );
    let archive = fixture.archive(&fixture.prefix).await;
    assert_archive_matches(
        &fixture,
        &archive,
        &produced,
        fixture.config().archive_window,
    );

    // A replay of the whole topic by a new consumer group: same documents, same archive objects.
    let replay_group = fixture.another_group("replay").await;
    let mut config = fixture.config();
    config.group = replay_group.clone();
    let sink = RunningSink::start(config);
    fixture
        .wait_caught_up(&replay_group, Duration::from_secs(60))
        .await;
    sink.stop().await;
    assert_eq!(fixture.documents(&fixture.index).await, after);
    assert_eq!(fixture.archive(&fixture.prefix).await, archive);

    fixture.cleanup(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_of_one_customer_in_several_currencies_stay_apart() {
    // A document carries its order's currency on the order and on every line.
    let fixture = Fixture::new("currencies").await;
    let customer = CustomerId::new_v7();
    let stories = vec![
        Story::new(
            customer,
            Currency::EUR,
            &[("MUG-CLASSIC", 2, 1_250)],
            crate::orders::MARCH_2,
            Outcome::Completed,
        ),
        Story::new(
            customer,
            Currency::JPY,
            &[("MUG-CLASSIC", 1, 1_800)],
            crate::orders::MARCH_2 + 1,
            Outcome::Completed,
        ),
    ];
    let mut produced = Produced::new();
    produce_stories(&fixture, &stories, &mut produced).await;
    let sink = RunningSink::start(fixture.config());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    sink.stop().await;
    let docs = fixture.documents(&fixture.index).await;
    for story in &stories {
        assert_document(&docs[&story.order_id.to_string()].0, story);
    }
    fixture.cleanup(&[], &[]).await;
}
