//! The archive's conditional writes against the real S3 server: an object is never replaced by one
//! with fewer records, whoever writes last. This is what happens when a sink stalls (a long GC, a
//! frozen VM, SIGSTOP) past its session, its partition moves to another sink that carries the
//! window further, and the stalled sink then wakes up and finishes the write it had started.

use object_store::path::Path;
use orderflow_analytics::sink::archive::{self, ArchivedRecord, WindowWrite};

use crate::support::{require_stack, stack, unique};

fn records(topic: &str, n: i64) -> Vec<ArchivedRecord> {
    (0..n)
        .map(|offset| ArchivedRecord {
            topic: topic.into(),
            partition: 0,
            offset,
            timestamp: Some(1_772_442_000_000 + offset),
            key: Some(format!("order-{offset}").into_bytes()),
            headers: vec![],
            event_type: None,
            event_id: None,
            schema_id: None,
            payload: Some(vec![0, 0, 0, 0, 1, offset as u8]),
        })
        .collect()
}

fn encoded(topic: &str, n: i64) -> Vec<u8> {
    archive::encode(&records(topic, n), archive::marker(topic, 0, 0)).expect("encode")
}

fn e_tag(write: &WindowWrite) -> Option<String> {
    match write {
        WindowWrite::Written { e_tag } | WindowWrite::KeptExisting { e_tag, .. } => e_tag.clone(),
    }
}

#[tokio::test]
async fn an_archive_object_is_never_replaced_by_one_with_fewer_records() {
    let stack = stack();
    require_stack(&stack);
    let store = archive::store(&stack.s3).expect("an S3 client");
    let topic = unique("at-archive");
    let path = Path::from(format!("test-archive/{topic}/offset=000000000000.avro"));
    let held = |n: usize| {
        let store = store.clone();
        let path = path.clone();
        async move {
            let bytes = store
                .get(&path)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("read");
            let got = archive::decode(&bytes).expect("decode").len();
            assert_eq!(got, n, "records in {path}");
        }
    };

    // The first owner of the partition writes 5 records of the window, then 6.
    let stalled = archive::put_window(store.as_ref(), &path, encoded(&topic, 5), 5, None)
        .await
        .expect("first write");
    assert!(
        matches!(stalled, WindowWrite::Written { e_tag: Some(_) }),
        "{stalled:?}"
    );
    held(5).await;

    // It stalls; the partition moves to a second sink, which rebuilt the window from Kafka and
    // knows no ETag: its create fails, it finds 5 records there and replaces them with its 8.
    let new_owner = archive::put_window(store.as_ref(), &path, encoded(&topic, 8), 8, None)
        .await
        .expect("the new owner's write");
    assert!(
        matches!(new_owner, WindowWrite::Written { .. }),
        "{new_owner:?}"
    );
    held(8).await;

    // The stalled sink wakes up and finishes its write of 6 records, replacing the version it
    // wrote: the condition fails, it finds 8 there and keeps them.
    let late = archive::put_window(
        store.as_ref(),
        &path,
        encoded(&topic, 6),
        6,
        e_tag(&stalled),
    )
    .await
    .expect("the stalled sink's write");
    assert_eq!(
        late,
        WindowWrite::KeptExisting {
            records: 8,
            e_tag: e_tag(&new_owner)
        }
    );
    held(8).await;

    // A replay of the same 8 records (a restart before the commit) keeps the object too.
    let replay = archive::put_window(store.as_ref(), &path, encoded(&topic, 8), 8, None)
        .await
        .expect("a replay");
    assert!(
        matches!(replay, WindowWrite::KeptExisting { records: 8, .. }),
        "{replay:?}"
    );

    // And the new owner goes on growing it from the version it wrote.
    let grown = archive::put_window(
        store.as_ref(),
        &path,
        encoded(&topic, 9),
        9,
        e_tag(&new_owner),
    )
    .await
    .expect("the new owner's next write");
    assert!(matches!(grown, WindowWrite::Written { .. }), "{grown:?}");
    held(9).await;

    store.delete(&path).await.expect("clean up");
}
