//! The consumer runtime against the real Kafka, PostgreSQL and registry, with a test reaction that
//! records each applied event in a table. One run covers: an event delivered twice has one effect; a
//! poison record and a refused event go to the dead-letter topic with their reason and origin while
//! the consumer keeps consuming; a transient failure is retried until it passes; offsets are
//! committed at shutdown, so a restarted consumer repeats nothing; dead letters list and redrive once.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use orderflow_consumer::Settings;
use orderflow_consumer::dead_letter;
use orderflow_schemas::{CustomerId, OrderId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::{Fixture, Recorder, placed, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_poison_refusals_and_transient_failures() {
    let f = Fixture::new(2).await;
    let reactions = Arc::new(Recorder::new());
    reactions.stuck.store(false, Ordering::SeqCst);
    let good = placed(OrderId::new_v7(), CustomerId::new_v7(), 0);
    let refused = placed(OrderId::new_v7(), reactions.refused_customer, 0);
    let flaky = placed(OrderId::new_v7(), reactions.flaky_customer, 0);
    f.produce_placed(&good, None).await;
    f.produce_placed(&good, None).await; // delivered twice
    f.produce("poison", b"\x00not avro at all", None, None)
        .await;
    f.produce_placed(&refused, None).await;
    f.produce_placed(&flaky, None).await;

    let running = f.start(reactions.clone(), None, Settings::default()).await;
    wait_for("the good and the flaky event to be applied", || async {
        f.count("SELECT count(*) FROM effects").await >= 2
    })
    .await;
    wait_for("two dead letters", || async {
        f.dead_letters().await.len() >= 2
    })
    .await;
    running.stop().await;

    // One effect per event, despite the duplicate delivery; the refused event's effect rolled back.
    let applied: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT event_id FROM effects ORDER BY event_id")
            .fetch_all(&f.db.pool)
            .await
            .unwrap();
    let mut expected = vec![(good.event_id.as_uuid(),), (flaky.event_id.as_uuid(),)];
    expected.sort();
    assert_eq!(applied, expected);
    assert_eq!(f.count("SELECT count(*) FROM inbox").await, 2);
    assert_eq!(
        reactions.flaky_failures.load(Ordering::SeqCst),
        3,
        "two transient failures, then success"
    );

    // The dead letters say why and where from.
    let letters = f.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let poison = letters
        .iter()
        .find(|l| l.key.as_deref() == Some("poison"))
        .expect("poison dead letter");
    assert_eq!(poison.header(dead_letter::REASON), "undecodable");
    assert_eq!(poison.header(dead_letter::ORIGINAL_TOPIC), f.topic);
    assert_eq!(poison.header(dead_letter::CONSUMER), f.name);
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
        .set("bootstrap.servers", &f.stack.kafka_bootstrap)
        .set("group.id", f.name)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(&f.topic, 0);
    partitions.add_partition(&f.topic, 1);
    let committed = checker
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    for partition in [0, 1] {
        let (_, high) = checker
            .fetch_watermarks(&f.topic, partition, Duration::from_secs(10))
            .unwrap();
        let at = committed
            .find_partition(&f.topic, partition)
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

    // Both keys are parked behind their dead letters. Redrive puts both back on the original topic
    // once (from the parked heads, which it marks REDRIVEN); a second redrive has nothing to do.
    assert_eq!(
        f.count("SELECT count(*) FROM parked_events WHERE state = 'DEAD_LETTERED'")
            .await,
        2
    );
    let redriven = dead_letter::redrive(&f.stack.kafka_bootstrap, f.name, Some(&f.db.pool), false)
        .await
        .unwrap();
    assert_eq!(redriven.produced, 2, "{redriven:?}");
    assert_eq!(
        redriven.skipped, 2,
        "the topic's copies are those of the heads"
    );
    assert_eq!(
        dead_letter::redrive(&f.stack.kafka_bootstrap, f.name, Some(&f.db.pool), false)
            .await
            .unwrap(),
        dead_letter::Redriven::default()
    );
    assert_eq!(
        f.count("SELECT count(*) FROM parked_events WHERE state = 'REDRIVEN'")
            .await,
        2
    );
    let letters = f.dead_letters().await;
    assert!(letters.iter().all(|l| l.redriven), "{letters:?}");
    f.cleanup().await;
}
