//! The kit's HTTP hardening, on a real started service (customers, over its real database): the body
//! limit (413 JSON, by length and while streaming), the request timeout (408 JSON for a body that
//! never finishes), the per-client rate limit (429 JSON with `Retry-After`, and the defaults let a
//! burst far above the bench's through), `x-request-id` taken or made, echoed and on the log lines of
//! the request, CORS for the web front end's origin only, and the security headers on every answer.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use orderflow_customers::spec;
use orderflow_service_kit::hardening::{API_CSP, Hardening, RateLimit};
use orderflow_service_kit::testing::TestService;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEB: &str = "http://127.0.0.1:18130";

fn registration(email: &str) -> Value {
    json!({
        "name": "Grace Hopper",
        "email": email,
        "shipping_address": {"line1": "1 Main St", "city": "Arlington", "postal_code": "22201", "country": "US"},
    })
}

fn unique_email() -> String {
    format!("grace-{}@example.org", uuid::Uuid::new_v4().simple())
}

async fn json_error(
    response: reqwest::Response,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    assert_eq!(
        headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("application/json".to_owned()),
        "{status}: a JSON answer"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    (status, headers, body)
}

fn assert_security_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["content-security-policy"], API_CSP);
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_413_as_json() {
    let hardening = Hardening {
        max_body_bytes: 1024,
        ..Hardening::default()
    };
    let service = TestService::start_hardened(spec(), hardening).await;
    let mut big = registration(&unique_email());
    big["name"] = json!("x".repeat(2000));
    let body = serde_json::to_vec(&big).unwrap();
    // Announced by Content-Length: refused before the handler runs.
    let response = service
        .http
        .post(format!("{}/customers", service.url))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (status, headers, error) = json_error(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(
        (error["error"].as_str(), error["field"].as_str()),
        (Some("body_too_large"), Some("body"))
    );
    assert_security_headers(&headers);
    // Streamed without a length: refused once the limit is crossed.
    let stream = futures_stream(body);
    let response = service
        .http
        .post(format!("{}/customers", service.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let (status, _, error) = json_error(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(service.count("customers").await, 0, "nothing written");
}

fn futures_stream(
    body: Vec<u8>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(256).map(|c| Ok(c.to_vec())).collect();
    futures::stream::iter(chunks)
}

#[tokio::test]
async fn a_request_not_finished_in_time_is_answered_408_as_json() {
    let hardening = Hardening {
        request_timeout: Duration::from_millis(300),
        ..Hardening::default()
    };
    let service = TestService::start_hardened(spec(), hardening).await;
    let address = service.url.trim_start_matches("http://");
    // A valid token, so that the request gets past the token check to its body.
    let token = orderflow_service_kit::testing::TestIdentity::new()
        .admin()
        .await;
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    // Half a body, then nothing: the handler waits for the rest until the timeout answers.
    let head = format!(
        "POST /customers HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         authorization: Bearer {token}\r\ncontent-length: 100\r\nx-request-id: slow-client-1\r\n\r\n{{\"name\":"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = socket.read(&mut buffer).await.unwrap();
            answer.extend_from_slice(&buffer[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "answered within 5 s, got {:?}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("content-type: application/json"), "{text}");
    assert!(text.contains("\"error\":\"request_timeout\""), "{text}");
    assert!(text.contains("x-request-id: slow-client-1"), "{text}");
    assert_eq!(service.count("customers").await, 0, "nothing written");
}

#[tokio::test]
async fn a_client_over_its_rate_is_answered_429_with_retry_after() {
    let hardening = Hardening {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 3,
        }),
        ..Hardening::default()
    };
    let service = TestService::start_hardened(spec(), hardening).await;
    for _ in 0..3 {
        let (status, body) = service.get("/customers?limit=1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = service
        .http
        .get(format!("{}/customers?limit=1", service.url))
        .send()
        .await
        .unwrap();
    let (status, headers, error) = json_error(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{error}");
    assert_eq!(error["error"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert_security_headers(&headers);
}

#[tokio::test]
async fn the_default_rate_limit_lets_far_more_than_the_bench_through() {
    let service = TestService::start(spec()).await;
    // 600 requests at once from one client: a few seconds of the bench at 100 orders/s.
    let calls = (0..600).map(|_| {
        let (http, url) = (service.http.clone(), format!("{}/health/live", service.url));
        async move { http.get(url).send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{:?}",
        statuses.iter().filter(|s| **s != StatusCode::OK).count()
    );
}

/// Every log line written while a request runs, captured from a subscriber of this test binary.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .init();
        logs
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_request_id_is_taken_or_made_echoed_and_on_every_log_line() {
    let logs = captured_logs();
    let service = TestService::start(spec()).await;
    let url = format!("{}/customers", service.url);
    // Taken: echoed, and on the handler's own log line ("customer registered").
    let email = unique_email();
    let response = service
        .http
        .post(&url)
        .header("x-request-id", "req-7f3a")
        .json(&registration(&email))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-request-id"], "req-7f3a");
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("customer registered") && l.contains("req-7f3a"))
        .unwrap_or_else(|| panic!("no log line of the request names its id:\n{text}"));
    assert!(line.contains("request_id=req-7f3a"), "{line}");
    // Made: a UUID, different each time.
    let made = |r: reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let first = made(service.http.get(&url).send().await.unwrap());
    let second = made(service.http.get(&url).send().await.unwrap());
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
    assert_ne!(first, second);
    // An unfit one (too long, or with spaces) is replaced by a new one.
    for unfit in ["x".repeat(129), "two words".to_string()] {
        let response = service
            .http
            .get(&url)
            .header("x-request-id", &unfit)
            .send()
            .await
            .unwrap();
        let echoed = made(response);
        assert!(
            uuid::Uuid::parse_str(&echoed).is_ok(),
            "{unfit:?} → {echoed}"
        );
    }
}

#[tokio::test]
async fn cors_answers_the_web_front_end_only() {
    let hardening = Hardening {
        web_origin: Some(WEB.parse().unwrap()),
        ..Hardening::default()
    };
    let service = TestService::start_hardened(spec(), hardening).await;
    let url = format!("{}/customers", service.url);
    let preflight = |origin: &'static str| {
        service
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight(WEB).await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], WEB);
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight("http://evil.example").await.unwrap();
    assert!(
        !other.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        other.headers()
    );
    for (origin, expected) in [(WEB, Some(WEB)), ("http://evil.example", None)] {
        let response = service
            .http
            .get(&url)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            expected,
            "{origin}"
        );
    }
    // Without a configured origin, not even the front end's is allowed.
    let closed = TestService::start(spec()).await;
    let response = closed
        .http
        .get(format!("{}/customers", closed.url))
        .header("origin", WEB)
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    let service = TestService::start(spec()).await;
    for (method, path) in [
        (reqwest::Method::GET, "/customers"),
        (reqwest::Method::GET, "/openapi.json"),
        (reqwest::Method::GET, "/health/live"),
        (reqwest::Method::GET, "/no/such/route"),
        (reqwest::Method::DELETE, "/customers"),
        (reqwest::Method::GET, "/customers/not-a-uuid"),
    ] {
        let response = service
            .http
            .request(method.clone(), format!("{}{path}", service.url))
            .send()
            .await
            .unwrap();
        assert_security_headers(response.headers());
        if !response.status().is_success() {
            let (_, _, error) = json_error(response).await;
            assert!(error["error"].is_string(), "{method} {path}: {error}");
        }
    }
}
