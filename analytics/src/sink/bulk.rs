//! One bulk request of order documents, with every item classified: indexed; already newer (a
//! version conflict under external versioning: a replayed or older event, which counts as done);
//! to retry (the item or the whole request met 429, 5xx or no answer); or refused for good (a 4xx on
//! the item, e.g. a mapping error: the record is dead-lettered).

use elasticsearch::params::VersionType;
use elasticsearch::{BulkOperation, BulkParts, Elasticsearch};
use serde_json::Value;

use super::document::OrderDocument;
use crate::elastic::{self, EsError};

/// What happened to one document of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Indexed,
    /// Elasticsearch already holds this version or a newer one.
    AlreadyNewer,
    /// Try this item again later.
    Retry(String),
    /// Elasticsearch refuses this document.
    Refused(String),
}

impl ItemOutcome {
    pub fn is_done(&self) -> bool {
        matches!(self, ItemOutcome::Indexed | ItemOutcome::AlreadyNewer)
    }
}

/// Send `documents` in one bulk request to `index`, each with its order id as document id and its
/// version as external version; one outcome per document, in order. `Err` when the request as a
/// whole failed (every document to be retried, or refused if the request was).
pub async fn index(
    client: &Elasticsearch,
    index: &str,
    documents: &[&OrderDocument],
) -> Result<Vec<ItemOutcome>, EsError> {
    if documents.is_empty() {
        return Ok(Vec::new());
    }
    let operations: Vec<BulkOperation<&OrderDocument>> = documents
        .iter()
        .map(|doc| {
            BulkOperation::index(*doc)
                .id(doc.order_id.clone())
                .version(doc.version())
                .version_type(VersionType::External)
                .into()
        })
        .collect();
    let body = elastic::read_ok(
        client
            .bulk(BulkParts::Index(index))
            .body(operations)
            .send()
            .await,
    )
    .await?;
    outcomes(&body, documents.len())
}

/// The per-item outcomes of a bulk answer.
pub fn outcomes(body: &Value, expected: usize) -> Result<Vec<ItemOutcome>, EsError> {
    let items = body["items"]
        .as_array()
        .ok_or_else(|| EsError::Unavailable(format!("a bulk answer without items: {body}")))?;
    if items.len() != expected {
        return Err(EsError::Unavailable(format!(
            "a bulk answer with {} items for {expected} documents",
            items.len()
        )));
    }
    Ok(items.iter().map(item_outcome).collect())
}

fn item_outcome(item: &Value) -> ItemOutcome {
    let result = &item["index"];
    let status = result["status"].as_u64().unwrap_or(0) as u16;
    let error = || result["error"].to_string();
    match status {
        200..=299 => ItemOutcome::Indexed,
        409 if result["error"]["type"] == "version_conflict_engine_exception" => {
            ItemOutcome::AlreadyNewer
        }
        s if elastic::status_is_retriable(s) || s == 0 => ItemOutcome::Retry(error()),
        _ => ItemOutcome::Refused(error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_classified() {
        let body = json!({"errors": true, "items": [
            {"index": {"_id": "a", "status": 201, "result": "created"}},
            {"index": {"_id": "b", "status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"index": {"_id": "c", "status": 429, "error": {"type": "es_rejected_execution_exception"}}},
            {"index": {"_id": "d", "status": 400, "error": {"type": "strict_dynamic_mapping_exception"}}},
            {"index": {"_id": "e", "status": 503, "error": {"type": "unavailable_shards_exception"}}},
        ]});
        let got = outcomes(&body, 5).unwrap();
        assert_eq!(got[0], ItemOutcome::Indexed);
        assert_eq!(got[1], ItemOutcome::AlreadyNewer);
        assert!(matches!(got[2], ItemOutcome::Retry(_)));
        assert!(matches!(&got[3], ItemOutcome::Refused(e) if e.contains("strict")));
        assert!(matches!(got[4], ItemOutcome::Retry(_)));
        assert!(outcomes(&body, 4).is_err());
    }
}
