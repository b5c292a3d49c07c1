//! Elasticsearch overloaded (429), failing (503) or unreachable, and the S3 server unreachable: the
//! sink commits nothing while it cannot write, retries the same batch with backoff, and once the
//! server is back everything arrives, once. Each outage is made by a proxy in front of the real
//! server that only this test's sink goes through, so nothing else using the stack is disturbed.

use std::time::Duration;

use crate::orders::varied_stories;
use crate::proxy::{Mode, Proxy};
use crate::sink::{Produced, assert_archive_matches, produce_stories};
use crate::support::{Fixture, RunningSink};

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_overloaded_or_down_the_sink_waits_and_resumes() {
    let fixture = Fixture::new("es-outage").await;
    let proxy = Proxy::start(&host_port(&fixture.stack.elasticsearch_url)).await;
    let mut config = fixture.config();
    config.elasticsearch_url = proxy.url();
    let stories = varied_stories(10);
    let (first, second) = stories.split_at(4);
    let mut produced = Produced::new();
    produce_stories(&fixture, first, &mut produced).await;
    let sink = RunningSink::start(config.clone());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    let committed = fixture.committed(&fixture.group);
    assert_eq!(fixture.documents(&fixture.index).await.len(), first.len());

    for (mode, orders) in [Mode::Status(429), Mode::Status(503), Mode::Refuse]
        .into_iter()
        .zip(second.chunks(2))
    {
        proxy.set(mode);
        // Only terminal events: every batch has documents to index. (A batch of other events
        // needs no Elasticsearch and is rightly archived and committed meanwhile.)
        for story in orders {
            let event = story.terminal();
            let at = fixture.produce(&event).await;
            let bytes = fixture.codec.encode_any(&event).await.unwrap();
            produced.insert(
                at,
                (
                    Some(event.key().into_bytes()),
                    Some(bytes),
                    Some(event.name().to_string()),
                ),
            );
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            fixture.committed(&fixture.group),
            committed,
            "nothing is committed while Elasticsearch answers {mode:?}"
        );
        assert_eq!(
            fixture.documents(&fixture.index).await.len(),
            first.len(),
            "no document got through {mode:?}"
        );
        assert!(!sink.is_finished(), "the sink waits, it does not give up");
    }
    proxy.set(Mode::Pass);
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    sink.stop().await;
    let docs = fixture.documents(&fixture.index).await;
    assert_eq!(docs.len(), first.len() + 6, "every order arrived once");
    let archive = fixture.archive(&fixture.prefix).await;
    assert_archive_matches(&fixture, &archive, &produced, config.archive_window);
    fixture.cleanup(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_down_the_sink_waits_and_resumes() {
    let fixture = Fixture::new("s3-outage").await;
    let proxy = Proxy::start(&host_port(&fixture.stack.s3.endpoint)).await;
    let mut config = fixture.config();
    config.s3.endpoint = proxy.url();
    let stories = varied_stories(8);
    let (first, second) = stories.split_at(3);
    let mut produced = Produced::new();
    produce_stories(&fixture, first, &mut produced).await;
    let sink = RunningSink::start(config.clone());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    let committed = fixture.committed(&fixture.group);

    proxy.set(Mode::Refuse);
    produce_stories(&fixture, second, &mut produced).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        fixture.committed(&fixture.group),
        committed,
        "nothing is committed while the archive cannot be written"
    );
    assert!(!sink.is_finished(), "the sink waits, it does not give up");

    proxy.set(Mode::Pass);
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;
    sink.stop().await;
    assert_eq!(fixture.documents(&fixture.index).await.len(), stories.len());
    let archive = fixture.archive(&fixture.prefix).await;
    assert_archive_matches(&fixture, &archive, &produced, config.archive_window);
    fixture.cleanup(&[], &[]).await;
}
