//! A consumer SIGKILLed in the middle of a batch, at the two worst moments: inside the batch's
//! transaction (some of its effects written, nothing committed) and after the transaction committed
//! but before the offsets were (the whole batch is delivered again). Every effect still happens
//! exactly once, in order.
//!
//! And SIGKILLed between a dead letter's two steps: its key parked (committed) and its copy produced
//! to the dead-letter topic. The restarted consumer produces the copy, and the key's later events
//! stay parked: the dead letter is neither lost nor overtaken.
//!
//! The consumer runs in a child process: this test binary started again with only the ignored test
//! `crash_child` selected and `ORDERFLOW_CRASH_CHILD` saying what to do.

mod support;

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use orderflow_consumer::dead_letter::Reason;
use orderflow_consumer::{
    Applied, Batch, BatchError, BatchFuture, Effects, Handler, Interest, ParkFuture,
    ReactionFuture, Reactions, Record, Runtime, Settings, Spec, Transactional,
};
use orderflow_platform::StackConfig;
use orderflow_schemas::{AnyEvent, CustomerId, OrderId};
use orderflow_service_kit::Outbox;
use sqlx::PgPool;
use support::{Fixture, Recorder, placed, wait_for};

const CHILD: &str = "ORDERFLOW_CRASH_CHILD";
const ORDERS: usize = 20;
const EVENTS: i64 = 5;
const BATCH: usize = 10;

/// A child consumer, SIGKILLed when dropped too (so a failing test leaves none running).
struct ChildConsumer(Child);

impl Drop for ChildConsumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(f: &Fixture, moment: &str) -> ChildConsumer {
    spawn_child_refusing(f, moment, CustomerId::new_v7())
}

/// A child whose reaction refuses the events of `refused` customer.
fn spawn_child_refusing(f: &Fixture, moment: &str, refused: CustomerId) -> ChildConsumer {
    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env(
            CHILD,
            format!("{}|{}|{}|{moment}|{refused}", f.db.name, f.topic, f.name),
        )
        .spawn()
        .expect("starting the child consumer");
    ChildConsumer(child)
}

fn kill(mut child: ChildConsumer) {
    // SIGKILL: nothing of the child runs after this.
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap the child");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_in_the_middle_of_a_batch_ends_with_every_effect_once() {
    let f = Fixture::new(1).await;
    sqlx::query("CREATE TABLE reached (moment text NOT NULL, at_effects bigint NOT NULL)")
        .execute(&f.db.pool)
        .await
        .unwrap();
    let orders: Vec<OrderId> = (0..ORDERS).map(|_| OrderId::new_v7()).collect();
    for seq in 0..EVENTS {
        for order in &orders {
            f.produce_placed(&placed(*order, CustomerId::new_v7(), seq), None)
                .await;
        }
    }
    let total = ORDERS as i64 * EVENTS;
    let reached = |moment: &'static str| {
        let pool = f.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM reached WHERE moment = $1")
                .bind(moment)
                .fetch_one(&pool)
                .await
                .unwrap()
                > 0
        }
    };

    // 1. Killed inside a transaction that has applied more than one record of its batch.
    let child = spawn_child(&f, "in_transaction");
    wait_for("the child to be inside a batch's transaction", || {
        reached("in_transaction")
    })
    .await;
    kill(child);
    let committed_before = f
        .count("SELECT at_effects FROM reached WHERE moment = 'in_transaction'")
        .await;
    assert_eq!(
        f.count("SELECT count(*) FROM effects").await,
        committed_before,
        "nothing of the open transaction was committed"
    );

    // 2. Killed after a batch's transaction committed, before its offsets were committed.
    let child = spawn_child(&f, "after_commit");
    wait_for(
        "the child to have committed a batch it has not finished",
        || reached("after_commit"),
    )
    .await;
    let at_kill = f.count("SELECT count(*) FROM effects").await;
    kill(child);
    assert!(
        at_kill > committed_before,
        "the blocked batch's effects were committed ({at_kill} effects, {committed_before} before)"
    );

    // 3. A consumer that is left alone finishes everything.
    let child = spawn_child(&f, "none");
    wait_for("every event to be applied", || async {
        f.count("SELECT count(*) FROM effects").await >= total
    })
    .await;
    // The replayed batch comes as duplicates, which the inbox skips: nothing more is applied.
    wait_for("the committed position to reach the end", || async {
        f.count("SELECT count(*) FROM inbox").await == total
    })
    .await;
    kill(child);
    assert_eq!(
        f.count("SELECT count(*) FROM effects").await,
        total,
        "each effect once"
    );
    assert_eq!(
        f.count("SELECT count(DISTINCT (order_id, seq)) FROM effects")
            .await,
        total
    );
    assert_eq!(
        f.count("SELECT count(*) FROM violations").await,
        0,
        "in order"
    );
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_between_parking_and_the_dead_letter_copy_loses_neither() {
    let f = Fixture::new(1).await;
    sqlx::query("CREATE TABLE reached (moment text NOT NULL, at_effects bigint NOT NULL)")
        .execute(&f.db.pool)
        .await
        .unwrap();
    let refused = CustomerId::new_v7();
    let (a, b) = (OrderId::new_v7(), OrderId::new_v7());
    f.produce_placed(&placed(a, refused, 0), None).await;
    f.produce_placed(&placed(a, CustomerId::new_v7(), 1), None)
        .await;
    f.produce_placed(&placed(b, CustomerId::new_v7(), 0), None)
        .await;
    let parked = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT state FROM parked_events WHERE record_key = $1 ORDER BY seq",
        )
        .bind(a.to_string())
        .fetch_all(&f.db.pool)
        .await
        .unwrap()
    };

    // 1. Killed after A's dead letter parked A (committed), before its copy was produced.
    let child = spawn_child_refusing(&f, "after_park", refused);
    wait_for(
        "the child to have parked A behind its dead letter",
        || async {
            f.count("SELECT count(*) FROM reached WHERE moment = 'after_park'")
                .await
                > 0
        },
    )
    .await;
    kill(child);
    assert_eq!(parked().await, ["DEAD_LETTERED"]);
    assert!(
        f.dead_letters().await.is_empty(),
        "killed before the copy was produced"
    );

    // 2. Restarted: the dead letter is delivered again and its copy produced; A's next event is
    // parked behind it, B is applied.
    let child = spawn_child_refusing(&f, "none", refused);
    wait_for("the copy produced, A parked, B applied", || async {
        f.dead_letters().await.len() == 1
            && parked().await.len() == 2
            && f.count("SELECT count(*) FROM effects").await == 1
    })
    .await;
    f.wait_until_consumed(1).await;
    kill(child);
    assert_eq!(parked().await, ["DEAD_LETTERED", "PARKED"]);
    assert_eq!(f.dead_letters().await.len(), 1);
    let applied: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT order_id FROM effects")
        .fetch_all(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(applied, [b.as_uuid()], "nothing of A applied");
    f.cleanup().await;
}

/// Blocks forever once a dead letter's key is parked, before the runtime produces its copy.
struct BlockAfterPark {
    inner: Transactional<Arc<Recorder>>,
    pool: PgPool,
}

impl Handler for BlockAfterPark {
    fn interest(&self) -> Interest {
        self.inner.interest()
    }

    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BatchFuture<'a> {
        self.inner.apply(batch)
    }

    fn dead_lettered<'a>(
        &'a self,
        consumer: &'static str,
        record: &'a Record,
        reason: Reason,
        error: &'a str,
    ) -> ParkFuture<'a> {
        Box::pin(async move {
            self.inner
                .dead_lettered(consumer, record, reason, error)
                .await?;
            note(&self.pool, "after_park").await;
            std::future::pending::<()>().await;
            Ok(())
        })
    }
}

/// Blocks forever inside the reaction of the second record of a transaction (the first record's
/// effects are written, uncommitted), after noting in `reached` how many effects are committed.
struct BlockInTransaction {
    inner: Recorder,
    pool: PgPool,
    last_transaction: AtomicI64,
}

impl Reactions for BlockInTransaction {
    fn event_types(&self) -> &'static [&'static str] {
        self.inner.event_types()
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, effects: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            let transaction: i64 = sqlx::query_scalar("SELECT txid_current()::bigint")
                .fetch_one(&mut *effects.tx)
                .await?;
            let previous = self.last_transaction.swap(transaction, Ordering::SeqCst);
            self.inner.react(event, effects).await?;
            if previous == transaction {
                note(&self.pool, "in_transaction").await;
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

/// Blocks forever after its first batch's transaction committed, before the runtime may finish it.
struct BlockAfterCommit {
    inner: Transactional<Arc<Recorder>>,
    pool: PgPool,
}

impl Handler for BlockAfterCommit {
    fn interest(&self) -> Interest {
        self.inner.interest()
    }

    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BatchFuture<'a> {
        Box::pin(async move {
            let applied: Applied = self.inner.apply(batch).await?;
            if applied.duplicates < batch.records.len() {
                note(&self.pool, "after_commit").await;
                std::future::pending::<()>().await;
            }
            Ok::<_, BatchError>(applied)
        })
    }
}

async fn note(pool: &PgPool, moment: &str) {
    sqlx::query("INSERT INTO reached (moment, at_effects) SELECT $1, count(*) FROM effects")
        .bind(moment)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_sigkill_in_the_middle_of_a_batch_ends_with_every_effect_once, which runs it"]
async fn crash_child() {
    let spec = std::env::var(CHILD).unwrap_or_else(|_| {
        panic!("{CHILD} is not set: this is run by a_sigkill_in_the_middle_of_a_batch_ends_with_every_effect_once")
    });
    let parts: Vec<&str> = spec.split('|').collect();
    let [database, topic, name, moment, refused] = parts[..] else {
        panic!("{CHILD}={spec}: expected database|topic|group|moment|refused customer")
    };
    let refused: CustomerId = refused.parse().expect("a customer id");
    let stack = StackConfig::from_env().expect("stack configuration");
    let pool = PgPool::connect_with(orderflow_service_kit::database::admin_options(
        &stack.postgres,
        database,
    ))
    .await
    .expect("the test database");
    let outbox = Outbox::new(&stack.registry_url).unwrap();
    let recorder = Arc::new(Recorder {
        refused_customer: refused,
        ..Recorder::new()
    });
    recorder.stuck.store(false, Ordering::SeqCst);
    let handler: Arc<dyn Handler> = match moment {
        "in_transaction" => Arc::new(Transactional {
            reactions: BlockInTransaction {
                inner: Recorder::new(),
                pool: pool.clone(),
                last_transaction: AtomicI64::new(0),
            },
            pool: pool.clone(),
            outbox,
        }),
        "after_park" => Arc::new(BlockAfterPark {
            inner: Transactional {
                reactions: recorder,
                pool: pool.clone(),
                outbox,
            },
            pool: pool.clone(),
        }),
        "after_commit" => Arc::new(BlockAfterCommit {
            inner: Transactional {
                reactions: recorder,
                pool: pool.clone(),
                outbox,
            },
            pool: pool.clone(),
        }),
        _ => Arc::new(Transactional {
            reactions: recorder,
            pool: pool.clone(),
            outbox,
        }),
    };
    let settings = Settings {
        max_batch: BATCH,
        ..Settings::default()
    };
    let runtime = Runtime::new(
        &stack.kafka_bootstrap,
        &stack.registry_url,
        settings,
        Spec {
            name: Box::leak(name.to_string().into_boxed_str()),
            topics: vec![topic.to_string()],
            handler,
            key_lanes: Some(1),
        },
    )
    .expect("the runtime starts");
    // Runs until the parent kills this process.
    runtime
        .run(tokio::time::sleep(Duration::from_secs(600)))
        .await
        .unwrap();
}
