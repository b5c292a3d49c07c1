//! Elasticsearch as the sink and the reports use it: the client, the index template (the file
//! `elasticsearch/orders-template.json`, also read by the Kibana checks), putting it and the index
//! idempotently, and telling a failure worth retrying (unreachable, 429, 5xx) from a refusal.

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::indices::{
    IndicesCreateParts, IndicesPutIndexTemplateParts, IndicesPutMappingParts,
    IndicesPutSettingsParts,
};
use serde_json::Value;

/// The index template as written in the repository (with its `_comment`).
pub const TEMPLATE_JSON: &str = include_str!("../elasticsearch/orders-template.json");

/// How long one request to Elasticsearch may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the node at `url`, bypassing any HTTP proxy.
pub fn client(url: &str) -> anyhow::Result<Elasticsearch> {
    let url = url
        .parse()
        .map_err(|e| anyhow::anyhow!("Elasticsearch URL {url:?}: {e}"))?;
    let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .disable_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    Ok(Elasticsearch::new(transport))
}

/// Why a request to Elasticsearch did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    /// Unreachable, timed out, overloaded (429) or failing (5xx): try again later.
    #[error("Elasticsearch is unavailable: {0}")]
    Unavailable(String),
    /// Elasticsearch answered a 4xx other than 429: the request itself is refused.
    #[error("Elasticsearch refused the request ({status}): {body}")]
    Refused { status: u16, body: String },
}

impl EsError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, EsError::Unavailable(_))
    }
}

/// Whether an HTTP status from Elasticsearch means "try again later".
pub fn status_is_retriable(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The status and JSON body of an answer, or the failure classified.
pub async fn read(sent: Result<Response, elasticsearch::Error>) -> Result<(u16, Value), EsError> {
    let response = sent.map_err(|e| EsError::Unavailable(e.to_string()))?;
    let status = response.status_code().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| EsError::Unavailable(format!("reading the answer: {e}")))?;
    if status_is_retriable(status) {
        return Err(EsError::Unavailable(format!(
            "HTTP {status}: {}",
            cut(&text)
        )));
    }
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .map_err(|e| EsError::Unavailable(format!("unreadable answer ({e}): {}", cut(&text))))?
    };
    Ok((status, body))
}

/// Like [`read`], and a 4xx is an error too.
pub async fn read_ok(sent: Result<Response, elasticsearch::Error>) -> Result<Value, EsError> {
    let (status, body) = read(sent).await?;
    if status >= 400 {
        return Err(EsError::Refused {
            status,
            body: cut(&body.to_string()),
        });
    }
    Ok(body)
}

fn cut(text: &str) -> String {
    const MAX: usize = 2000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The template file without its comment.
fn template_file() -> Value {
    let mut template: Value =
        serde_json::from_str(TEMPLATE_JSON).expect("elasticsearch/orders-template.json is JSON");
    if let Some(object) = template.as_object_mut() {
        object.remove("_comment");
    }
    template
}

/// The mappings of the index (`template.mappings` of the template file).
pub fn mappings() -> Value {
    template_file()["template"]["mappings"].clone()
}

/// The composable index template for `index`: the file's settings and mappings, matching exactly
/// that index name (no wildcard, so indices of other tests or deployments never overlap).
pub fn template_for(index: &str) -> Value {
    let mut template = template_file();
    template["index_patterns"] = Value::from(vec![index.to_string()]);
    template
}

/// The name of the template for `index`.
pub fn template_name(index: &str) -> String {
    format!("orderflow-{index}")
}

/// Put the template, create the index if it is missing, and put the mappings on it (so an index
/// created by an older template gains new fields). Idempotent; a conflicting mapping is refused.
pub async fn ensure_index(client: &Elasticsearch, index: &str) -> Result<(), EsError> {
    let name = template_name(index);
    read_ok(
        client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
            .body(template_for(index))
            .send()
            .await,
    )
    .await?;
    let (status, body) = read(
        client
            .indices()
            .create(IndicesCreateParts::Index(index))
            .send()
            .await,
    )
    .await?;
    let exists = body["error"]["type"] == "resource_already_exists_exception";
    if status >= 400 && !exists {
        return Err(EsError::Refused {
            status,
            body: body.to_string(),
        });
    }
    read_ok(
        client
            .indices()
            .put_mapping(IndicesPutMappingParts::Index(&[index]))
            .body(mappings())
            .send()
            .await,
    )
    .await?;
    // And the dynamic settings (the refresh interval), which the template gives new indices only.
    read_ok(
        client
            .indices()
            .put_settings(IndicesPutSettingsParts::Index(&[index]))
            .body(dynamic_settings())
            .send()
            .await,
    )
    .await?;
    Ok(())
}

/// The template's settings that can change on an open index.
fn dynamic_settings() -> Value {
    let settings = &template_file()["template"]["settings"];
    serde_json::json!({"index": {"refresh_interval": settings["refresh_interval"]}})
}

/// Every field path of the mappings with its type (`lines` → `nested`, `lines.sku` → `keyword`).
pub fn field_types() -> Vec<(String, String)> {
    fn walk(prefix: &str, properties: &Value, out: &mut Vec<(String, String)>) {
        let Some(properties) = properties.as_object() else {
            return;
        };
        for (name, spec) in properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let kind = spec["type"].as_str().unwrap_or("object").to_string();
            out.push((path.clone(), kind));
            walk(&path, &spec["properties"], out);
        }
    }
    let mut out = Vec::new();
    walk("", &mappings()["properties"], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_matches_exactly_its_index_and_is_strict() {
        let template = template_for("orders");
        assert_eq!(template["index_patterns"], serde_json::json!(["orders"]));
        assert!(template.get("_comment").is_none());
        assert_eq!(template["template"]["mappings"]["dynamic"], "strict");
    }

    #[test]
    fn field_types_name_nested_paths() {
        let fields = field_types();
        let get = |p: &str| fields.iter().find(|(f, _)| f == p).map(|(_, t)| t.as_str());
        assert_eq!(get("lines"), Some("nested"));
        assert_eq!(get("lines.unit_price_minor"), Some("long"));
        assert_eq!(get("closed_at"), Some("date"));
        assert_eq!(get("nope"), None);
    }
}
