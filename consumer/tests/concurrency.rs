//! The runtime's concurrency, batching and filtering against the real Kafka, PostgreSQL and
//! registry: a partition stuck on a transient failure does not hold back another; many events per
//! order, spread over partitions and key lanes, are applied in each order's order, in shared
//! transactions; records of types the consumer does not handle are skipped by their header without
//! being decoded; a refused and an undecodable record in the middle of a batch are dead-lettered
//! alone while the rest of the batch is applied once.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use orderflow_consumer::Settings;
use orderflow_consumer::dead_letter;
use orderflow_schemas::{CustomerId, Event, OrderId};
use support::{Fixture, Recorder, placed, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_failing_transiently_does_not_hold_back_another() {
    let f = Fixture::new(2).await;
    let reactions = Arc::new(Recorder::new());
    let stuck_order = OrderId::new_v7();
    f.produce_placed(&placed(stuck_order, reactions.stuck_customer, 0), Some(0))
        .await;
    // A later event of the stuck order (a customer that is not stuck) must wait behind it.
    f.produce_placed(&placed(stuck_order, CustomerId::new_v7(), 1), Some(0))
        .await;
    let running = f
        .start(reactions.clone(), Some(1), Settings::default())
        .await;
    let others: Vec<OrderId> = (0..10).map(|_| OrderId::new_v7()).collect();
    for order in &others {
        f.produce_placed(&placed(*order, CustomerId::new_v7(), 0), Some(1))
            .await;
    }
    wait_for(
        "partition 1's orders applied while the stuck record is retried",
        || async {
            f.count("SELECT count(*) FROM effects").await == 10
                && reactions.stuck_attempts.load(Ordering::SeqCst) >= 3
        },
    )
    .await;
    let stuck_applied =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM effects WHERE order_id = $1")
            .bind(stuck_order.as_uuid())
            .fetch_one(&f.db.pool)
            .await
            .unwrap();
    assert_eq!(
        stuck_applied, 0,
        "nothing of the stuck order is applied while it fails"
    );

    reactions.stuck.store(false, Ordering::SeqCst);
    wait_for(
        "the stuck order's two events, once the failure passed",
        || async { f.count("SELECT count(*) FROM effects").await == 12 },
    )
    .await;
    running.stop().await;
    assert_eq!(
        f.count("SELECT count(*) FROM violations").await,
        0,
        "in order"
    );
    assert!(
        f.dead_letters().await.is_empty(),
        "a transient failure is never dead-lettered"
    );
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_events_per_order_apply_in_order_in_shared_transactions() {
    const ORDERS: usize = 30;
    const EVENTS: i64 = 8;
    let f = Fixture::new(3).await;
    let reactions = Arc::new(Recorder::new());
    let orders: Vec<OrderId> = (0..ORDERS).map(|_| OrderId::new_v7()).collect();
    // Interleaved: every order's event 0, then every order's event 1, ...; between them records of a
    // type the consumer does not handle, whose value is not even Avro (it must not be decoded).
    for seq in 0..EVENTS {
        for order in &orders {
            f.produce_placed(&placed(*order, CustomerId::new_v7(), seq), None)
                .await;
        }
        f.produce(
            &orders[0].to_string(),
            b"not avro: skipped by its header",
            Some(orderflow_schemas::orders::OrderConfirmed::NAME),
            None,
        )
        .await;
    }
    let settings = Settings {
        max_batch: 50,
        ..Settings::default()
    };
    // Four key lanes per partition: orders of one partition are applied concurrently too.
    let running = f.start(reactions.clone(), Some(4), settings).await;
    let total = ORDERS as i64 * EVENTS;
    wait_for("every event to be applied", || async {
        f.count("SELECT count(*) FROM effects").await == total
    })
    .await;
    running.stop().await;
    assert_eq!(
        f.count("SELECT count(*) FROM violations").await,
        0,
        "every order's events applied in order"
    );
    assert_eq!(
        f.count("SELECT count(DISTINCT (order_id, seq)) FROM effects")
            .await,
        total,
        "each once"
    );
    let transactions = f.count("SELECT count(DISTINCT txid) FROM effects").await;
    assert!(
        transactions < total / 2,
        "batches share transactions: {transactions} transactions for {total} events"
    );
    assert!(
        f.dead_letters().await.is_empty(),
        "records of other types are skipped, not dead-lettered"
    );
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_and_a_poison_record_in_a_batch_are_dead_lettered_alone() {
    let f = Fixture::new(1).await;
    let reactions = Arc::new(Recorder::new());
    reactions.stuck.store(false, Ordering::SeqCst);
    let mut good = Vec::new();
    for _ in 0..5 {
        good.push(placed(OrderId::new_v7(), CustomerId::new_v7(), 0));
    }
    let refused = placed(OrderId::new_v7(), reactions.refused_customer, 0);
    for event in &good[..3] {
        f.produce_placed(event, None).await;
    }
    f.produce_placed(&refused, None).await;
    f.produce(
        "poison",
        b"\x00\x00\x00\x00\x01garbage",
        Some(orderflow_schemas::orders::OrderPlaced::NAME),
        None,
    )
    .await;
    for event in &good[3..] {
        f.produce_placed(event, None).await;
    }
    // Everything is waiting before the consumer starts, in one partition and one lane: one batch.
    let running = f
        .start(reactions.clone(), Some(1), Settings::default())
        .await;
    wait_for("the good events applied and two dead letters", || async {
        f.count("SELECT count(*) FROM effects").await == 5 && f.dead_letters().await.len() == 2
    })
    .await;
    running.stop().await;
    let applied: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_all(&f.db.pool)
        .await
        .unwrap();
    let mut expected: Vec<uuid::Uuid> = good.iter().map(|e| e.event_id.as_uuid()).collect();
    let mut applied_sorted = applied.clone();
    applied_sorted.sort();
    expected.sort();
    assert_eq!(applied_sorted, expected, "the rest of the batch, each once");
    let letters = f.dead_letters().await;
    let mut reasons: Vec<(String, String)> = letters
        .iter()
        .map(|l| {
            (
                l.key.clone().unwrap_or_default(),
                l.header(dead_letter::REASON).to_string(),
            )
        })
        .collect();
    reasons.sort();
    let mut want = vec![
        ("poison".to_string(), "undecodable".to_string()),
        (refused.order_id.to_string(), "refused".to_string()),
    ];
    want.sort();
    assert_eq!(reasons, want);
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_retries_at_once_and_commits_the_finished_work() {
    let f = Fixture::new(1).await;
    let reactions = Arc::new(Recorder::new());
    let before: Vec<OrderId> = (0..5).map(|_| OrderId::new_v7()).collect();
    for order in &before {
        f.produce_placed(&placed(*order, CustomerId::new_v7(), 0), None)
            .await;
    }
    let stuck = placed(OrderId::new_v7(), reactions.stuck_customer, 0);
    f.produce_placed(&stuck, None).await;
    let after = placed(OrderId::new_v7(), CustomerId::new_v7(), 0);
    f.produce_placed(&after, None).await;

    // A consumer that gets stuck on the sixth record, retrying with a backoff of up to 30 s.
    let running = f
        .start(reactions.clone(), Some(1), Settings::default())
        .await;
    wait_for(
        "the five records before the stuck one, and retries of it",
        || async {
            f.count("SELECT count(*) FROM effects").await == 5
                && reactions.stuck_attempts.load(Ordering::SeqCst) >= 6
        },
    )
    .await;
    let stopping = std::time::Instant::now();
    running.stop().await;
    let took = stopping.elapsed();
    // Not a speed target: after six attempts the next backoff wait is at least 2.4 s, and a stop
    // that waited for it, or for the stuck record to finish, would take that long or forever.
    assert!(
        took < std::time::Duration::from_millis(1000),
        "the stop waited for the retry: {took:?}"
    );
    let committed = f.committed_offset(0).await;
    assert_eq!(
        committed,
        Some(5),
        "the five finished records are committed, the stuck one is not"
    );

    // The next consumer starts at the stuck record and applies it and the one after, once.
    reactions.stuck.store(false, Ordering::SeqCst);
    let running = f
        .start(reactions.clone(), Some(1), Settings::default())
        .await;
    wait_for("the stuck record and the one after it", || async {
        f.count("SELECT count(*) FROM effects").await == 7
    })
    .await;
    running.stop().await;
    assert_eq!(
        f.count("SELECT count(*) FROM inbox").await,
        7,
        "nothing twice"
    );
    assert_eq!(f.committed_offset(0).await, Some(7));
    f.cleanup().await;
}
