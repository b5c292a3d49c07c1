//! Liveness and readiness. `/health/live` answers while the process runs; `/health/ready` answers 200
//! only when the service can do its work: its database and the schema registry both answer.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;

#[derive(Clone)]
pub struct Readiness {
    pub pool: PgPool,
    pub registry_url: String,
    pub http: reqwest::Client,
}

pub fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(readiness)
}

async fn ready(State(r): State<Readiness>) -> (StatusCode, axum::Json<Value>) {
    let database = sqlx::query("SELECT 1")
        .execute(&r.pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let registry = r
        .http
        .get(format!("{}/subjects", r.registry_url))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .and_then(|resp| resp.error_for_status())
        .map(|_| ())
        .map_err(|e| e.to_string());
    let check = |result: &Result<(), String>| match result {
        Ok(()) => json!({"status": "up"}),
        Err(e) => json!({"status": "down", "error": e}),
    };
    let status = if database.is_ok() && registry.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status.is_success() { "ready" } else { "not_ready" },
        "checks": {"database": check(&database), "registry": check(&registry)},
    });
    (status, axum::Json(body))
}
