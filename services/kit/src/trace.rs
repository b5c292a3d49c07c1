//! The trace context carried from a request into the events it causes. A valid incoming W3C
//! `traceparent` header is continued (same trace id, new span id); otherwise a new trace starts. The
//! outbox stores it, Debezium turns it into a Kafka header, and consumers continue it.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
}

impl TraceContext {
    pub fn new_root() -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            span_id: new_span_id(),
        }
    }

    /// Continue a `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), or start a new trace if it is not one.
    pub fn continue_from(traceparent: Option<&str>) -> Self {
        let parsed = traceparent.and_then(|value| {
            let parts: Vec<&str> = value.trim().split('-').collect();
            let hex =
                |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
            match parts.as_slice() {
                [version, trace, parent, flags]
                    if hex(version, 2)
                        && hex(trace, 32)
                        && hex(parent, 16)
                        && hex(flags, 2)
                        && !trace.bytes().all(|b| b == b'0') =>
                {
                    Some(trace.to_ascii_lowercase())
                }
                _ => None,
            }
        });
        match parsed {
            Some(trace_id) => Self {
                trace_id,
                span_id: new_span_id(),
            },
            None => Self::new_root(),
        }
    }

    /// The W3C `traceparent` value.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

fn new_span_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_string()
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok());
        Ok(Self::continue_from(header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_traceparent() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::continue_from(Some(incoming));
        assert_eq!(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(context.span_id, "00f067aa0ba902b7");
        assert!(
            context
                .traceparent()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }

    #[test]
    fn starts_a_new_trace_for_garbage() {
        for bad in [
            "",
            "nonsense",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            let context = TraceContext::continue_from(Some(bad));
            assert_eq!(context.trace_id.len(), 32, "{bad}");
            assert_ne!(context.trace_id, "00000000000000000000000000000000");
        }
    }
}
