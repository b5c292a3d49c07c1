//! `run_sink` and `run_reports`, as the `orderflow sink` and `orderflow reports` roles call them:
//! configured from the environment alone, serving health and metrics (sink) and the reports on their
//! addresses. A test binary of its own, because it sets environment variables.

#[path = "stack/orders.rs"]
mod orders;
#[path = "stack/support.rs"]
mod support;

use std::time::Duration;

use serde_json::Value;

use crate::orders::varied_stories;
use crate::support::{Fixture, wait_for};

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_and_reports_roles_run_from_the_environment() {
    let fixture = Fixture::new("roles").await;
    let (sink_http, reports_http) = (free_port(), free_port());
    for (key, value) in [
        ("ORDERFLOW_SINK_TOPIC", fixture.topic.as_str()),
        ("ORDERFLOW_SINK_GROUP", fixture.group.as_str()),
        ("ORDERFLOW_ANALYTICS_INDEX", fixture.index.as_str()),
        ("ORDERFLOW_ARCHIVE_PREFIX", fixture.prefix.as_str()),
        ("ORDERFLOW_SINK_HTTP", sink_http.as_str()),
        ("ORDERFLOW_REPORTS_HTTP", reports_http.as_str()),
    ] {
        // SAFETY: this binary's only test sets these before starting anything that reads the
        // environment; nothing else in the process reads or writes it concurrently.
        unsafe { std::env::set_var(key, value) };
    }
    let sink = tokio::spawn(orderflow_analytics::run_sink());
    let reports = tokio::spawn(orderflow_analytics::run_reports());

    let stories = varied_stories(3);
    for story in &stories {
        for event in story.events() {
            fixture.produce(&event).await;
        }
    }
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(60))
        .await;

    // The reports need an admin token from the identity provider; health and metrics need none.
    let token = orderflow_service_kit::testing::TestIdentity::new()
        .admin()
        .await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap();
    let ready = format!("http://{sink_http}/health/ready");
    wait_for(
        "the sink to answer ready",
        Duration::from_secs(20),
        || async { matches!(get(&client, &ready).await, Some((200, _))) },
    )
    .await;
    let (_, body) = get(&client, &ready).await.unwrap();
    let checks: Value = serde_json::from_str(&body).unwrap();
    for server in ["kafka", "elasticsearch", "s3"] {
        assert_eq!(checks["checks"][server]["status"], "up", "{body}");
    }
    let (status, metrics) = get(&client, &format!("http://{sink_http}/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("orderflow_sink_records_total")
            && metrics.contains(&format!("consumer=\"{}\"", fixture.group)),
        "{metrics}"
    );

    let order = format!(
        "http://{reports_http}/reports/orders/{}",
        stories[0].order_id
    );
    wait_for(
        "the reports to find the order",
        Duration::from_secs(20),
        || async { matches!(get(&client, &order).await, Some((200, _))) },
    )
    .await;
    let (status, _) = get(&client, &format!("http://{reports_http}/openapi.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);

    sink.abort();
    reports.abort();
    let _ = sink.await;
    let _ = reports.await;
    fixture.cleanup(&[], &[]).await;
}
