//! Kafka Connect: the REST API answers and lists the Debezium PostgreSQL connector plugin.

use serde::Deserialize;

use crate::support::{Server, stack};

#[derive(Deserialize)]
struct Plugin {
    class: String,
    #[serde(rename = "type")]
    kind: String,
    version: String,
}

#[tokio::test]
async fn connect_lists_the_debezium_postgres_plugin() {
    let config = stack();
    Server::Connect.require(&config);
    let url = format!("{}/connector-plugins", config.connect_url);
    let plugins: Vec<Plugin> = async { reqwest::get(&url).await?.error_for_status()?.json().await }
        .await
        .unwrap_or_else(|e| Server::Connect.failed(&config, "list connector plugins", e));
    let debezium = plugins
        .iter()
        .find(|p| p.class == "io.debezium.connector.postgresql.PostgresConnector")
        .unwrap_or_else(|| {
            let classes: Vec<_> = plugins.iter().map(|p| p.class.as_str()).collect();
            panic!("the Debezium PostgreSQL plugin is not on Connect's plugin path; plugins: {classes:?}")
        });
    assert_eq!(debezium.kind, "source");
    assert!(
        debezium.version.starts_with('3'),
        "expected Debezium 3.x, got {}",
        debezium.version
    );
}
