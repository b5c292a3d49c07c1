//! Restarting the sink mid-stream, twice by killing it (a crash at whatever await point it was)
//! and once by stopping it, leaves Elasticsearch and the archive exactly as a straight run leaves
//! them: same documents, same object names, same records in each object, nothing lost, nothing
//! twice.

use std::time::Duration;

use crate::orders::varied_stories;
use crate::sink::{Produced, assert_archive_matches, produce_stories};
use crate::support::{Fixture, RunningSink, wait_for};

fn total(offsets: &std::collections::BTreeMap<i32, i64>) -> i64 {
    offsets.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_restarted_mid_stream_loses_and_duplicates_nothing() {
    let mut fixture = Fixture::new("restart").await;
    // Long enough that the steps below (25, 60 and 20 committed records) stay far from the end:
    // the sink consumes a few hundred records a second, and commits every 200 ms.
    let stories = varied_stories(400);
    let mut produced = Produced::new();
    produce_stories(&fixture, &stories, &mut produced).await;
    let end = total(&fixture.end_offsets());
    let config = fixture.config();

    // Crash once some batches are committed, and again a little later.
    let mut last = 0;
    for step in [25, 60] {
        let sink = RunningSink::start(config.clone());
        wait_for(
            "the sink to commit some batches",
            Duration::from_secs(60),
            || async { total(&fixture.committed(&fixture.group)) >= last + step },
        )
        .await;
        sink.crash().await;
        last = total(&fixture.committed(&fixture.group));
        assert!(
            last < end,
            "the sink finished before it could be crashed mid-stream ({last} of {end})"
        );
    }
    // A graceful stop in the middle too.
    let sink = RunningSink::start(config.clone());
    wait_for(
        "the sink to commit more batches",
        Duration::from_secs(60),
        || async { total(&fixture.committed(&fixture.group)) >= last + 20 },
    )
    .await;
    sink.stop().await;
    // And the rest.
    let sink = RunningSink::start(config.clone());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(120))
        .await;
    sink.stop().await;

    // A straight run over the same topic into its own index and prefix.
    let straight_group = fixture.another_group("straight").await;
    let mut straight = config.clone();
    straight.group = straight_group.clone();
    straight.index = format!("{}-straight", fixture.index);
    straight.archive_prefix = format!("{}-straight", fixture.prefix);
    let sink = RunningSink::start(straight.clone());
    fixture
        .wait_caught_up(&straight_group, Duration::from_secs(120))
        .await;
    sink.stop().await;

    let restarted_docs = fixture.documents(&fixture.index).await;
    let straight_docs = fixture.documents(&straight.index).await;
    assert_eq!(restarted_docs.len(), stories.len());
    assert_eq!(
        restarted_docs, straight_docs,
        "same documents, same versions"
    );

    let restarted = fixture.archive(&fixture.prefix).await;
    let straight_archive = fixture.archive(&straight.archive_prefix).await;
    assert_archive_matches(&fixture, &restarted, &produced, config.archive_window);
    assert_eq!(
        restarted.keys().collect::<Vec<_>>(),
        straight_archive.keys().collect::<Vec<_>>(),
        "the same object names"
    );
    assert_eq!(
        restarted, straight_archive,
        "the same records in every object"
    );

    fixture
        .cleanup(&[&straight.archive_prefix], &[&straight.index])
        .await;
}
