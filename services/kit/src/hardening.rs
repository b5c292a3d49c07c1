//! The hardening every orderflow HTTP server gets, applied once by [`crate::server::app`] so that no
//! service can forget a part of it: a request body size limit (413), a whole-request timeout (408), a
//! per-client rate limit (429 with `Retry-After`), an `x-request-id` taken from the request (or made)
//! that is echoed in the answer and is a field of the request's tracing span (so every log line of the
//! request carries it), CORS for the web front end's origin only, and the standard security headers.
//! Every refusal these layers produce answers the kit's JSON error shape, like the handlers' own.
//!
//! Everything is configured from the environment (defaults in parentheses; a bad value stops the
//! process naming the key):
//!
//! | key | meaning |
//! |---|---|
//! | `ORDERFLOW_HTTP_MAX_BODY_BYTES` (65536) | the largest request body, in bytes |
//! | `ORDERFLOW_HTTP_REQUEST_TIMEOUT_MS` (15000) | a request not answered within this is answered 408 |
//! | `ORDERFLOW_HTTP_RATE_PER_SECOND` (1000) | requests per second one client IP may sustain; 0 turns the limit off |
//! | `ORDERFLOW_HTTP_RATE_BURST` (2000) | requests one client may send at once above that rate |
//! | `ORDERFLOW_WEB_ORIGIN` (unset: no cross-origin access) | the web front end's origin, `scheme://host[:port]` |
//!
//! The rate limit is per peer IP address (`tower_governor`'s `PeerIpKeyExtractor`): forwarded-for
//! headers are not trusted, since any client could set them. The defaults are far above what the
//! bench sends from one host (100+ orders/s, five calls each).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_platform::config::{ConfigError, setting_or};
use tower::ServiceBuilder;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::http::ApiError;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest incoming request id kept; a longer (or otherwise unfit) one is replaced by a new one.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

pub const MAX_BODY_KEY: &str = "ORDERFLOW_HTTP_MAX_BODY_BYTES";
pub const TIMEOUT_KEY: &str = "ORDERFLOW_HTTP_REQUEST_TIMEOUT_MS";
pub const RATE_KEY: &str = "ORDERFLOW_HTTP_RATE_PER_SECOND";
pub const BURST_KEY: &str = "ORDERFLOW_HTTP_RATE_BURST";
pub const WEB_ORIGIN_KEY: &str = "ORDERFLOW_WEB_ORIGIN";

/// The Content-Security-Policy of an API: it serves JSON only, so nothing may be loaded or framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// What the hardening layers enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// `None`: no rate limit.
    pub rate_limit: Option<RateLimit>,
    /// The one origin allowed cross-origin requests; `None`: none is.
    pub web_origin: Option<HeaderValue>,
}

/// A token bucket per client: `per_second` tokens come back each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for Hardening {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(15),
            rate_limit: Some(RateLimit {
                per_second: 1000,
                burst: 2000,
            }),
            web_origin: None,
        }
    }
}

impl Hardening {
    /// Read every key of the table in this module's documentation.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let max_body_bytes = setting_or(MAX_BODY_KEY, defaults.max_body_bytes)?;
        if !(1..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(invalid(
                MAX_BODY_KEY,
                max_body_bytes,
                "expected 1 to 16777216 bytes",
            ));
        }
        let timeout_ms: u64 = setting_or(TIMEOUT_KEY, 15_000)?;
        if !(1..=600_000).contains(&timeout_ms) {
            return Err(invalid(TIMEOUT_KEY, timeout_ms, "expected 1 to 600000 ms"));
        }
        let per_second: u32 = setting_or(RATE_KEY, 1000)?;
        let burst: u32 = setting_or(BURST_KEY, 2000)?;
        if burst == 0 {
            return Err(invalid(BURST_KEY, burst, "expected at least 1"));
        }
        let web_origin = match setting_or::<String>(WEB_ORIGIN_KEY, String::new())? {
            origin if origin.trim().is_empty() => None,
            origin => {
                Some(
                    parse_origin(origin.trim()).map_err(|problem| ConfigError::Invalid {
                        key: WEB_ORIGIN_KEY,
                        value: origin.clone(),
                        problem,
                    })?,
                )
            }
        };
        Ok(Self {
            max_body_bytes,
            request_timeout: Duration::from_millis(timeout_ms),
            rate_limit: (per_second > 0).then_some(RateLimit { per_second, burst }),
            web_origin,
        })
    }

    /// `routes` behind every layer. A rate-limited router must be served with the peer's address
    /// (`into_make_service_with_connect_info::<SocketAddr>`), as [`crate::server::Server`] does.
    pub fn apply(&self, routes: Router) -> Router {
        let routes = routes
            .layer(RequestBodyLimitLayer::new(self.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.request_timeout,
            ));
        let routes = match self.rate_limit {
            Some(limit) => rate_limited(routes, limit),
            None => routes,
        };
        let security = ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(API_CSP),
            ));
        let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
        routes
            .layer(CatchPanicLayer::custom(
                |_panic: Box<dyn std::any::Any + Send>| {
                    ApiError::internal("the handler panicked").into_response()
                },
            ))
            .layer(axum::middleware::map_response(json_refusals))
            .layer(self.cors())
            .layer(security)
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
            .layer(axum::middleware::map_request(drop_unfit_request_id))
    }

    fn cors(&self) -> CorsLayer {
        let origin = match &self.web_origin {
            // A list, not `exact`: the header is sent only to the origin it names.
            Some(origin) => AllowOrigin::list([origin.clone()]),
            // An empty list allows no origin: cross-origin requests get no CORS headers at all.
            None => AllowOrigin::list([]),
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static(REQUEST_ID_HEADER),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("idempotency-replayed"),
                HeaderName::from_static(REQUEST_ID_HEADER),
            ])
            .max_age(Duration::from_secs(600))
    }
}

fn invalid(key: &'static str, value: impl ToString, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        problem: problem.into(),
    }
}

/// `scheme://host[:port]`, nothing after it: what a browser sends in `Origin`.
fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("expected http://host[:port] or https://host[:port]")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
        return Err("an origin is scheme://host[:port], without a path or a wildcard".into());
    }
    HeaderValue::from_str(text).map_err(|e| e.to_string())
}

/// `routes` behind a token bucket per peer IP address.
fn rate_limited(routes: Router, limit: RateLimit) -> Router {
    let config = GovernorConfigBuilder::default()
        .period(Duration::from_secs(1) / limit.per_second.max(1))
        .burst_size(limit.burst)
        .key_extractor(PeerIpKeyExtractor)
        .finish()
        .expect("a positive period and burst");
    let config = Arc::new(config);
    // The limiter keeps a bucket per client address it has seen; forget the ones full again.
    let limiter = Arc::downgrade(config.limiter());
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            match limiter.upgrade() {
                Some(limiter) => limiter.retain_recent(),
                None => break,
            }
        }
    });
    routes.layer(GovernorLayer::new(config))
}

/// An incoming `x-request-id` is kept when it is 1 to 128 visible ASCII characters without spaces;
/// otherwise it is dropped, and `SetRequestIdLayer` makes a new one.
async fn drop_unfit_request_id(mut request: Request<Body>) -> Request<Body> {
    let fit = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_CHARS
            && bytes.iter().all(|b| b.is_ascii_graphic())
    };
    let headers = request.headers_mut();
    let values: Vec<_> = headers.get_all(REQUEST_ID_HEADER).iter().collect();
    if values.len() != 1 || !fit(values[0]) {
        headers.remove(REQUEST_ID_HEADER);
    }
    request
}

/// The span of one request; `request_id` is on every log line written while it runs.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

/// Refusals made by the layers (413 by content length, 408, 429, 405 ...) come with an empty or plain
/// text body: answer them in the kit's JSON error shape, keeping their headers (`Retry-After`).
async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let mut retry_after = None;
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "body_too_large",
            Some("body".into()),
            "the request body is larger than this server accepts",
        ),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            status,
            "request_timeout",
            None,
            "the request was not answered in time (a body sent too slowly, or a slow server); it may be retried",
        ),
        StatusCode::TOO_MANY_REQUESTS => {
            // The limiter rounds the wait down to whole seconds; 0 would invite an immediate retry.
            let wait = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1);
            retry_after = Some(wait);
            ApiError::new(
                status,
                "rate_limited",
                None,
                format!("too many requests from this client; retry after {wait} s"),
            )
        }
        _ => ApiError::new(
            status,
            "refused",
            None,
            status.canonical_reason().unwrap_or("refused").to_string(),
        ),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (new_parts, body) = error.into_response().into_parts();
    parts.headers.extend(new_parts.headers);
    if let Some(wait) = retry_after {
        parts.headers.insert(header::RETRY_AFTER, wait.into());
        parts.headers.insert("x-ratelimit-after", wait.into());
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_port() {
        assert!(parse_origin("http://127.0.0.1:18130").is_ok());
        assert!(parse_origin("https://shop.example.org").is_ok());
        for bad in [
            "127.0.0.1:18130",
            "http://",
            "https://shop.example.org/",
            "*",
            "http://*",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
