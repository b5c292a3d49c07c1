//! Sequenced dead letters against the real Kafka, PostgreSQL and registry. Once an event of a key is
//! dead-lettered, the key's later events are parked behind it (no effect, not lost) while other
//! keys go on; redrive applies the dead letter and then what was parked, in order; discard drops
//! the dead letter and applies what was parked (a parked event refused on the way is the key's new
//! dead letter); and a redriven record lands on the partition Kafka Connect's producer (murmur2 of
//! the key) put its original on, with its headers byte for byte.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use orderflow_consumer::Settings;
use orderflow_consumer::dead_letter;
use orderflow_schemas::orders::OrderPlaced;
use orderflow_schemas::registry::EventCodec;
use orderflow_schemas::{CustomerId, Event, OrderId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::{Fixture, Recorder, placed, wait_for};

/// The sequence numbers of the effects of an order, in the order they were applied.
async fn effects_of(f: &Fixture, order: OrderId) -> Vec<i64> {
    sqlx::query_scalar("SELECT seq FROM effects WHERE order_id = $1 ORDER BY txid, seq")
        .bind(order.as_uuid())
        .fetch_all(&f.db.pool)
        .await
        .unwrap()
}

async fn parked_states(f: &Fixture, order: OrderId) -> Vec<String> {
    sqlx::query_scalar("SELECT state FROM parked_events WHERE record_key = $1 ORDER BY seq")
        .bind(order.to_string())
        .fetch_all(&f.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_parks_its_key_until_redriven_while_other_keys_go_on() {
    let f = Fixture::new(1).await;
    let reactions = Arc::new(Recorder::new());
    reactions.stuck.store(false, Ordering::SeqCst);
    let (a, b) = (OrderId::new_v7(), OrderId::new_v7());
    // A's first event is refused; its next two must wait behind it. B is unaffected.
    f.produce_placed(&placed(a, reactions.refused_customer, 0), None)
        .await;
    for seq in 0..3 {
        if seq > 0 {
            f.produce_placed(&placed(a, CustomerId::new_v7(), seq), None)
                .await;
        }
        f.produce_placed(&placed(b, CustomerId::new_v7(), seq), None)
            .await;
    }
    let running = f.start(reactions.clone(), None, Settings::default()).await;
    wait_for("B applied and A's later events parked", || async {
        effects_of(&f, b).await.len() == 3 && parked_states(&f, a).await.len() == 3
    })
    .await;
    f.wait_until_consumed(1).await;
    assert_eq!(effects_of(&f, b).await, vec![0, 1, 2]);
    assert_eq!(
        effects_of(&f, a).await,
        Vec::<i64>::new(),
        "nothing of A is applied behind its dead letter"
    );
    assert_eq!(
        parked_states(&f, a).await,
        ["DEAD_LETTERED", "PARKED", "PARKED"]
    );
    let inbox_of_a = f
        .count(&format!(
            "SELECT count(*) FROM inbox i JOIN parked_events p USING (consumer, event_id) WHERE p.record_key = '{a}'"
        ))
        .await;
    assert_eq!(inbox_of_a, 0, "a parked event has no inbox row");
    assert_eq!(f.dead_letters().await.len(), 1);

    // A later event of A, while it is parked, is parked too; one of B is applied.
    f.produce_placed(&placed(a, CustomerId::new_v7(), 3), None)
        .await;
    f.produce_placed(&placed(b, CustomerId::new_v7(), 3), None)
        .await;
    wait_for("A's fourth event parked, B's applied", || async {
        parked_states(&f, a).await.len() == 4 && effects_of(&f, b).await.len() == 4
    })
    .await;

    // Redriven (and no longer refused), A's dead letter is applied, then what was parked, in order.
    reactions.refusing.store(false, Ordering::SeqCst);
    let redriven = dead_letter::redrive(&f.stack.kafka_bootstrap, f.name, Some(&f.db.pool), false)
        .await
        .unwrap();
    assert_eq!(redriven.produced, 1, "{redriven:?}");
    wait_for("A's events applied after the redrive", || async {
        effects_of(&f, a).await.len() == 4
    })
    .await;
    assert_eq!(effects_of(&f, a).await, vec![0, 1, 2, 3]);
    assert!(
        parked_states(&f, a).await.is_empty(),
        "A is no longer parked"
    );
    assert_eq!(
        f.count("SELECT count(*) FROM violations").await,
        0,
        "in order"
    );

    // A is not parked any more: its next event is applied at once.
    f.produce_placed(&placed(a, CustomerId::new_v7(), 4), None)
        .await;
    wait_for("A's next event applied", || async {
        effects_of(&f, a).await.len() == 5
    })
    .await;
    running.stop().await;
    assert_eq!(f.count("SELECT count(*) FROM effects").await, 9);
    assert_eq!(f.count("SELECT count(*) FROM violations").await, 0);
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_drops_the_dead_letter_and_applies_what_was_parked_behind_it() {
    let f = Fixture::new(1).await;
    let reactions = Arc::new(Recorder::new());
    reactions.stuck.store(false, Ordering::SeqCst);
    let a = OrderId::new_v7();
    let first = placed(a, reactions.refused_customer, 0);
    let second = placed(a, CustomerId::new_v7(), 1);
    let third = placed(a, reactions.refused_customer, 2);
    let fourth = placed(a, CustomerId::new_v7(), 3);
    for event in [&first, &second, &third, &fourth] {
        f.produce_placed(event, None).await;
    }
    let running = f.start(reactions.clone(), None, Settings::default()).await;
    wait_for("A parked behind its first event", || async {
        parked_states(&f, a).await.len() == 4
    })
    .await;
    let codec = EventCodec::new(&f.stack.registry_url).unwrap();
    let producer = dead_letter::redrive_producer(&f.stack.kafka_bootstrap).unwrap();
    let handler = f.handler(reactions.clone());

    // Only the dead letter of a key can be discarded, not an event parked behind it.
    let error = handler
        .discard(f.name, second.event_id.as_uuid(), &codec, &producer)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("is not the dead letter") && error.contains(&first.event_id.to_string()),
        "{error}"
    );
    let error = handler
        .discard(f.name, uuid::Uuid::new_v4(), &codec, &producer)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no dead letter"), "{error}");

    // Discarded: the second event is applied; the third is refused on the way and is the key's
    // dead letter now, with the fourth parked behind it.
    let discarded = handler
        .discard(f.name, first.event_id.as_uuid(), &codec, &producer)
        .await
        .unwrap();
    assert_eq!(discarded.drained, 1);
    assert_eq!(discarded.new_dead_letter, Some(third.event_id.as_uuid()));
    assert_eq!(effects_of(&f, a).await, vec![1]);
    assert_eq!(parked_states(&f, a).await, ["DEAD_LETTERED", "PARKED"]);
    wait_for(
        "the new dead letter's copy on the dead-letter topic",
        || async { f.dead_letters().await.len() == 2 },
    )
    .await;

    // A stray copy of the discarded event is a no-op (the inbox has it), even though its customer
    // is still refused; so is a copy of an event applied during the drain.
    f.produce_placed(&first, None).await;
    f.wait_until_consumed(1).await;
    assert_eq!(
        parked_states(&f, a).await,
        ["DEAD_LETTERED", "PARKED"],
        "the stray copy is not parked: the inbox has it"
    );
    assert_eq!(f.dead_letters().await.len(), 2, "nor dead-lettered again");

    reactions.refusing.store(false, Ordering::SeqCst);
    let redriven = dead_letter::redrive(&f.stack.kafka_bootstrap, f.name, Some(&f.db.pool), false)
        .await
        .unwrap();
    assert_eq!(redriven.produced, 1, "{redriven:?}");
    wait_for("the rest of A applied", || async {
        parked_states(&f, a).await.is_empty()
    })
    .await;
    running.stop().await;
    assert_eq!(
        effects_of(&f, a).await,
        vec![1, 2, 3],
        "the discarded event never applied"
    );
    f.cleanup().await;
}

/// Kafka's Java producer's partitioner (`Utils.murmur2`, `toPositive`), which Kafka Connect uses
/// for the connectors' records.
fn java_partition(key: &[u8], partitions: i32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() == 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h as i32) & 0x7fff_ffff) % partitions
}

/// Every record of `topic` (its partitions 0..n), read from the start up to the end.
fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    cap: i64,
) -> Vec<rdkafka::message::OwnedMessage> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sequencing-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut out = Vec::new();
    for partition in 0..partitions {
        let (low, high) = reader
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap();
        let high = high.min(low + cap);
        if high <= low {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(low))
            .unwrap();
        reader.assign(&assignment).unwrap();
        let mut next = low;
        while next < high {
            let message = reader
                .poll(Duration::from_secs(10))
                .expect("a record within 10 s")
                .unwrap();
            next = message.offset() + 1;
            out.push(message.detach());
        }
    }
    out
}

fn is_redriven(message: &rdkafka::message::OwnedMessage) -> bool {
    message
        .headers()
        .is_some_and(|h| h.iter().any(|h| h.key == dead_letter::REDRIVEN_FROM))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_record_lands_on_its_original_partition_with_its_headers() {
    const PARTITIONS: i32 = 3;
    const KEYS: usize = 30;
    let f = Fixture::new(PARTITIONS).await;

    // The partitioner above is Kafka Connect's: the connectors' own records on the stack's
    // orders.events (written by Debezium through Connect) sit on the partition it names.
    let bootstrap = f.stack.kafka_bootstrap.clone();
    // (Only those with the `traceparent` header the connector maps from the outbox: a test may
    // have produced a copy of its own to orders.events with another partitioner.)
    let mut connect_records =
        tokio::task::spawn_blocking(move || read_all(&bootstrap, "orders.events", 3, 50))
            .await
            .unwrap();
    connect_records.retain(|r| {
        r.headers()
            .is_some_and(|h| h.iter().any(|h| h.key == "traceparent"))
    });
    let disagree: Vec<String> = connect_records
        .iter()
        .filter(|r| r.partition() != java_partition(r.key().expect("outbox records have keys"), 3))
        .map(|r| {
            let headers: Vec<String> = r
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            format!(
                                "{}={}",
                                h.key,
                                String::from_utf8_lossy(h.value.unwrap_or_default())
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{}@{}:{} ts {:?} {headers:?}",
                String::from_utf8_lossy(r.key().unwrap()),
                r.partition(),
                r.offset(),
                r.timestamp()
            )
        })
        .collect();
    assert!(
        disagree.is_empty(),
        "{} of {} connector records are elsewhere than murmur2 says: {disagree:#?}",
        disagree.len(),
        connect_records.len()
    );
    eprintln!(
        "{} Connect records of orders.events agree with the murmur2 partitioner",
        connect_records.len()
    );

    // Originals as Connect would write them: on their key's murmur2 partition, with headers
    // (one of them not UTF-8). Every one is refused and dead-lettered.
    let reactions = Arc::new(Recorder::new());
    reactions.stuck.store(false, Ordering::SeqCst);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &f.stack.kafka_bootstrap)
        .create()
        .unwrap();
    let blob: &[u8] = &[0xff, 0x00, 0xfe, b'x'];
    let mut originals: HashMap<String, (i32, OrderPlaced)> = HashMap::new();
    for _ in 0..KEYS {
        let event = placed(OrderId::new_v7(), reactions.refused_customer, 0);
        let key = event.order_id.to_string();
        let partition = java_partition(key.as_bytes(), PARTITIONS);
        let bytes = f.encode(&event).await;
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "id",
                value: Some(&event.event_id.to_string()),
            })
            .insert(Header {
                key: "event_type",
                value: Some(OrderPlaced::NAME),
            })
            .insert(Header {
                key: "traceparent",
                value: Some(traceparent),
            })
            .insert(Header {
                key: "blob",
                value: Some(blob),
            });
        producer
            .send(
                FutureRecord::to(&f.topic)
                    .key(&key)
                    .payload(&bytes)
                    .headers(headers)
                    .partition(partition),
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        originals.insert(key, (partition, event));
    }
    let spread: std::collections::BTreeSet<i32> = originals.values().map(|(p, _)| *p).collect();
    assert_eq!(spread.len(), PARTITIONS as usize, "keys on every partition");
    let running = f.start(reactions.clone(), None, Settings::default()).await;
    wait_for("every record dead-lettered", || async {
        f.count("SELECT count(*) FROM parked_events WHERE state = 'DEAD_LETTERED'")
            .await
            == KEYS as i64
    })
    .await;
    running.stop().await;

    let redriven = dead_letter::redrive(&f.stack.kafka_bootstrap, f.name, Some(&f.db.pool), false)
        .await
        .unwrap();
    assert_eq!(redriven.produced, KEYS, "{redriven:?}");
    let (bootstrap, topic) = (f.stack.kafka_bootstrap.clone(), f.topic.clone());
    let all = tokio::task::spawn_blocking(move || read_all(&bootstrap, &topic, PARTITIONS, 1000))
        .await
        .unwrap();
    let copies: Vec<_> = all.iter().filter(|m| is_redriven(m)).collect();
    assert_eq!(copies.len(), KEYS);
    let mut moved = Vec::new();
    for copy in copies {
        let key = String::from_utf8(copy.key().unwrap().to_vec()).unwrap();
        let (partition, event) = &originals[&key];
        if copy.partition() != *partition {
            moved.push((key.clone(), *partition, copy.partition()));
        }
        let headers: Vec<(String, Option<Vec<u8>>)> = copy
            .headers()
            .unwrap()
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        let original: Vec<&(String, Option<Vec<u8>>)> = headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq."))
            .collect();
        assert_eq!(
            original,
            vec![
                &(
                    "id".to_string(),
                    Some(event.event_id.to_string().into_bytes())
                ),
                &(
                    "event_type".to_string(),
                    Some(OrderPlaced::NAME.as_bytes().to_vec())
                ),
                &(
                    "traceparent".to_string(),
                    Some(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec())
                ),
                &("blob".to_string(), Some(blob.to_vec())),
            ],
            "the original headers, byte for byte, in order"
        );
        let first = all
            .iter()
            .find(|m| m.key() == copy.key() && !is_redriven(m))
            .expect("the original record");
        assert_eq!(copy.payload(), first.payload(), "the value byte for byte");
    }
    assert!(
        moved.is_empty(),
        "{} of {KEYS} redriven records landed on another partition than their original (key, original, redriven): {moved:?}",
        moved.len()
    );
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_parks_its_key_in_its_place() {
    let f = Fixture::new(1).await;
    let reactions = Arc::new(Recorder::new());
    reactions.stuck.store(false, Ordering::SeqCst);
    let (k, l) = (OrderId::new_v7(), OrderId::new_v7());
    // In one batch: an event of K applied, K's undecodable record, K's next event (parked behind
    // it), and L's event (applied).
    let before = placed(k, CustomerId::new_v7(), 0);
    let after = placed(k, CustomerId::new_v7(), 1);
    f.produce_placed(&before, None).await;
    f.produce(
        &k.to_string(),
        b"\x00\x00\x00\x00\x07garbage",
        Some(OrderPlaced::NAME),
        None,
    )
    .await;
    f.produce_placed(&after, None).await;
    f.produce_placed(&placed(l, CustomerId::new_v7(), 0), None)
        .await;
    let running = f.start(reactions.clone(), None, Settings::default()).await;
    f.wait_until_consumed(1).await;
    assert_eq!(
        effects_of(&f, k).await,
        vec![0],
        "the event before it applied"
    );
    assert_eq!(effects_of(&f, l).await, vec![0]);
    assert_eq!(parked_states(&f, k).await, ["DEAD_LETTERED", "PARKED"]);
    let letters = f.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].header(dead_letter::REASON), "undecodable");
    let head = letters[0]
        .event_id()
        .expect("the dead letter names its event id");

    // Undecodable for good: discarded, and K's next event follows.
    let codec = EventCodec::new(&f.stack.registry_url).unwrap();
    let producer = dead_letter::redrive_producer(&f.stack.kafka_bootstrap).unwrap();
    let discarded = f
        .handler(reactions.clone())
        .discard(f.name, head, &codec, &producer)
        .await
        .unwrap();
    assert_eq!(discarded.drained, 1);
    assert_eq!(effects_of(&f, k).await, vec![0, 1]);
    assert!(parked_states(&f, k).await.is_empty());
    running.stop().await;
    assert_eq!(f.count("SELECT count(*) FROM violations").await, 0);
    f.cleanup().await;
}
