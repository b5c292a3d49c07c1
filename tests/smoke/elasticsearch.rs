//! Elasticsearch: index a document with the `elasticsearch` crate, then find it with a search.

use elasticsearch::http::transport::Transport;
use elasticsearch::indices::IndicesDeleteParts;
use elasticsearch::{Elasticsearch, IndexParts, SearchParts};
use serde_json::{Value, json};

use crate::support::{Server, stack, unique};

#[tokio::test]
async fn index_and_search_a_document() {
    let config = stack();
    Server::Elasticsearch.require(&config);
    let transport = Transport::single_node(&config.elasticsearch_url)
        .unwrap_or_else(|e| Server::Elasticsearch.failed(&config, "build a client", e));
    let client = Elasticsearch::new(transport);
    let index = unique("smoke");

    let indexed = client
        .index(IndexParts::IndexId(&index, "order-1"))
        .body(json!({"order_id": "order-1", "status": "COMPLETED", "total_minor": 4200}))
        .refresh(elasticsearch::params::Refresh::True)
        .send()
        .await
        .unwrap_or_else(|e| Server::Elasticsearch.failed(&config, "index a document", e));
    assert!(
        indexed.status_code().is_success(),
        "index: {}",
        indexed.status_code()
    );

    let response = client
        .search(SearchParts::Index(&[&index]))
        .body(json!({"query": {"match": {"status": "COMPLETED"}}}))
        .send()
        .await
        .unwrap_or_else(|e| Server::Elasticsearch.failed(&config, "search", e));
    assert!(
        response.status_code().is_success(),
        "search: {}",
        response.status_code()
    );
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| Server::Elasticsearch.failed(&config, "answer a search", e));
    let hits = body["hits"]["hits"].as_array().expect("hits array");
    assert_eq!(hits.len(), 1, "{body}");
    assert_eq!(hits[0]["_id"], "order-1");
    assert_eq!(hits[0]["_source"]["total_minor"], 4200);

    client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&index]))
        .send()
        .await
        .unwrap_or_else(|e| Server::Elasticsearch.failed(&config, "delete the index", e));
}
