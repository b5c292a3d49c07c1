//! Restarting Kafka Connect in the middle of a stream of outbox writes loses no event: every event id
//! written before, during and after the restart arrives on the topic (duplicates are allowed: the
//! delivery is at-least-once, and consumers dedupe by event id).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use orderflow_schemas::customers::CustomerRegistered;
use orderflow_schemas::{CustomerId, Event, EventId, Timestamp, samples};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::outbox::Outbox;

use crate::common::{CONNECT, TopicTail, require_running, root, slot};
use crate::support::{Server, stack};

/// Runs `scripts/stack <args>`; panics with its output when it fails.
fn stack_script(args: &[&str]) {
    let output = Command::new(root().join("scripts/stack"))
        .args(args)
        .output()
        .expect("run scripts/stack");
    assert!(
        output.status.success(),
        "scripts/stack {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Brings Connect back when the test ends, however it ends.
struct ConnectBack(PathBuf);

impl Drop for ConnectBack {
    fn drop(&mut self) {
        let _ = Command::new(self.0.join("scripts/stack"))
            .args(["up", "connect"])
            .output();
    }
}

#[tokio::test]
async fn restarting_connect_mid_stream_loses_no_event() {
    // Exclusive: no other test of this binary talks to Connect while it is down.
    let _exclusive = CONNECT.write().await;
    let config = stack();
    for server in [
        Server::Postgres,
        Server::Kafka,
        Server::Connect,
        Server::Registry,
    ] {
        server.require(&config);
    }
    require_running(&config, "customers-outbox", Duration::from_secs(60)).await;
    let pool = orderflow_service_kit::database::connect_and_migrate(
        &config.postgres,
        "customers",
        &orderflow_customers::MIGRATOR,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let outbox = Outbox::new(&config.registry_url).unwrap();
    let tail = TopicTail::at_end(&config, CustomerRegistered::TOPIC);

    // The writer: one event per transaction, every 25 ms, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written, pool, outbox) =
            (stop.clone(), written.clone(), pool.clone(), outbox.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let event = CustomerRegistered {
                    event_id: EventId::new_v7(),
                    occurred_at: Timestamp::now(),
                    customer_id: CustomerId::new_v7(),
                    ..samples::customer_registered()
                };
                let mut tx = pool.begin().await.expect("begin");
                let id = outbox
                    .append(&mut tx, &event, &TraceContext::new_root())
                    .await
                    .expect("append to the outbox");
                tx.commit().await.expect("commit");
                ids.push(id);
                written.store(ids.len(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ids
        })
    };
    let wait_for = |n: usize| {
        let written = written.clone();
        async move {
            while written.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    wait_for(40).await;
    let back = ConnectBack(root());
    let before_down = written.load(Ordering::SeqCst);
    tokio::task::spawn_blocking(|| stack_script(&["down", "connect"]))
        .await
        .unwrap();
    let at_down = written.load(Ordering::SeqCst);
    // Keep writing while nothing reads the WAL.
    wait_for(at_down + 40).await;
    tokio::task::spawn_blocking(|| stack_script(&["up", "connect"]))
        .await
        .unwrap();
    let at_up = written.load(Ordering::SeqCst);
    drop(back);
    // The connector comes back by itself: Connect keeps its config and offsets in Kafka.
    require_running(&config, "customers-outbox", Duration::from_secs(120)).await;
    wait_for(at_up + 40).await;
    stop.store(true, Ordering::SeqCst);
    let ids = writer.await.unwrap();
    assert!(
        before_down >= 40 && at_up >= at_down + 40 && ids.len() >= at_up + 40,
        "events were written before ({before_down}), during ({}) and after ({}) the restart",
        at_up - at_down,
        ids.len() - at_up
    );

    let expected: HashSet<String> = ids.iter().map(|id| id.to_string()).collect();
    let records = tail
        .read_until(
            Duration::from_secs(180),
            |r| r.headers.get("id").is_some_and(|id| expected.contains(id)),
            |kept| {
                let seen: HashSet<&String> = kept.iter().map(|r| &r.headers["id"]).collect();
                seen.len() == expected.len()
            },
        )
        .await;
    let seen: HashSet<&String> = records.iter().map(|r| &r.headers["id"]).collect();
    assert_eq!(seen.len(), expected.len(), "every event arrived");
    eprintln!(
        "{} events written ({} before Connect went down, {} while it was down or starting, {} after); \
         {} records read ({} duplicates from the replay)",
        ids.len(),
        at_down,
        at_up - at_down,
        ids.len() - at_up,
        records.len(),
        records.len() - seen.len()
    );
    assert!(
        records
            .iter()
            .all(|r| r.headers["event_type"] == CustomerRegistered::NAME)
    );

    // And the connector streams again from its slot.
    let admin = crate::common::admin_pool(&config, "customers").await;
    let (active, _) = slot(&admin, "outbox_customers")
        .await
        .expect("slot outbox_customers");
    assert!(active, "the slot is streaming again after the restart");
}
