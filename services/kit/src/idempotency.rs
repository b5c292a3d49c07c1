//! Idempotency keys on the POSTs that create or change something (`Idempotency-Key`, as payment APIs
//! have them), so a client that retries after a timeout gets the first answer instead of a second
//! effect.
//!
//! A handler extracts an [`Idempotency`] (or an [`Idempotent`] around its body extractor, which also
//! hashes the body) and runs its transaction through [`Idempotency::run`]. Without the header the
//! transaction runs exactly as before. With one, the key's row in `idempotency_keys` is read and
//! written on the SAME transaction as the effect (its business rows and outbox event): either both
//! are committed or neither is, so a retry finds the committed answer and replays it, or finds
//! nothing because nothing happened, even if the process died right after the commit.
//!
//! - Keys are scoped per client (the bearer token's subject, `''` on a route without `auth`), per method and route (`POST /orders/{order_id}/place`);
//!   the request hash covers the method, the path with its query, and the body bytes.
//! - A transaction-scoped advisory lock on the key answers a duplicate that arrives while the first
//!   request still runs with 409; the primary key stops anything the lock would miss.
//! - 2xx and 4xx answers of a request that ran are stored (status, headers, body) and replayed with
//!   `Idempotency-Replayed: true`; a 5xx stores nothing and rolls the effect back, so a retry runs
//!   again. A 4xx rolls the effect back to a savepoint and stores the answer.
//! - Keys live for `ORDERFLOW_IDEMPOTENCY_RETENTION_HOURS` (24 by default); an expired key is treated
//!   as new, and the janitor deletes expired rows.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use orderflow_platform::config::{ConfigError, setting_or};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool, Row};

use crate::http::{ApiError, read_body};

/// The request header carrying the key.
pub const KEY_HEADER: &str = "Idempotency-Key";
/// The response header marking an answer replayed from a stored key (`true`).
pub const REPLAYED_HEADER: &str = "Idempotency-Replayed";
/// The longest key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 255;
/// The configuration key of the retention, in hours.
pub const RETENTION_KEY: &str = "ORDERFLOW_IDEMPOTENCY_RETENTION_HOURS";
pub const DEFAULT_RETENTION_HOURS: u64 = 24;
/// The longest retention accepted: a year.
pub const MAX_RETENTION_HOURS: u64 = 24 * 366;

/// How long keys are kept. `service::routes_with` puts it into every request's extensions; a router
/// built without it uses the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    pub retention: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self::hours(DEFAULT_RETENTION_HOURS)
    }
}

impl IdempotencyConfig {
    fn hours(hours: u64) -> Self {
        Self {
            retention: Duration::from_secs(hours * 3600),
        }
    }

    /// `ORDERFLOW_IDEMPOTENCY_RETENTION_HOURS`, 1 to a year's hours; a bad value is an error naming it.
    pub fn from_env() -> Result<Self, ConfigError> {
        let hours: u64 = setting_or(RETENTION_KEY, DEFAULT_RETENTION_HOURS)?;
        Self::from_hours(hours)
    }

    pub fn from_hours(hours: u64) -> Result<Self, ConfigError> {
        if (1..=MAX_RETENTION_HOURS).contains(&hours) {
            Ok(Self::hours(hours))
        } else {
            Err(ConfigError::Invalid {
                key: RETENTION_KEY,
                value: hours.to_string(),
                problem: format!(
                    "the retention of idempotency keys is 1 to {MAX_RETENTION_HOURS} hours"
                ),
            })
        }
    }
}

/// A well-formed key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of a request, `None` without the header, or a 400 naming the header.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(bad_key("send one Idempotency-Key header, not several"));
        }
        let text = value
            .to_str()
            .map_err(|_| bad_key("the Idempotency-Key is visible ASCII characters only"))?;
        Self::parse(text).map(Some)
    }

    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.trim().is_empty() {
            return Err(bad_key("the Idempotency-Key is empty"));
        }
        if text.chars().count() > MAX_KEY_CHARS {
            return Err(bad_key(format!(
                "the Idempotency-Key is at most {MAX_KEY_CHARS} characters, got {}",
                text.chars().count()
            )));
        }
        if !text.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(bad_key(
                "the Idempotency-Key is visible ASCII characters only",
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bad_key(message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(KEY_HEADER, message)
}

fn key_in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        Some(KEY_HEADER.into()),
        "a request with this Idempotency-Key is still being processed; retry once it has been answered",
    )
}

fn key_reused(scope: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        Some(KEY_HEADER.into()),
        format!(
            "this Idempotency-Key was first used for {scope} with another path or body; \
             use a new key for a new request"
        ),
    )
}

/// A key together with what it was sent on.
#[derive(Debug, Clone)]
struct Claim {
    /// The authenticated client (the token's `sub`); `''` on a route without authentication.
    client: String,
    /// Method and route template: `POST /orders/{order_id}/place`.
    scope: String,
    key: IdempotencyKey,
    /// SHA-256 of the method, the path and query, and the body.
    request_hash: [u8; 32],
}

impl Claim {
    /// The text the advisory lock is taken on (no part contains a newline).
    fn lock_name(&self) -> String {
        format!(
            "idempotency\n{}\n{}\n{}",
            self.client,
            self.scope,
            self.key.as_str()
        )
    }
}

/// What a handler needs to run its transaction idempotently: the request's key, if it sent one.
/// As an extractor it hashes the method, path and query only; use [`Idempotent`] for a route with a
/// body.
#[derive(Debug, Clone)]
pub struct Idempotency {
    claim: Option<Claim>,
    config: IdempotencyConfig,
}

impl Idempotency {
    fn from_parts(parts: &Parts, key: Option<IdempotencyKey>, body: &[u8]) -> Self {
        let config = parts
            .extensions
            .get::<IdempotencyConfig>()
            .copied()
            .unwrap_or_default();
        let claim = key.map(|key| {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| parts.uri.path().to_string());
            let target = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or_else(|| parts.uri.path());
            let mut hash = Sha256::new();
            hash.update(parts.method.as_str().as_bytes());
            hash.update(b"\n");
            hash.update(target.as_bytes());
            hash.update(b"\n");
            hash.update(body);
            Claim {
                // The token's subject: one client's key never replays another's answer.
                client: parts
                    .extensions
                    .get::<crate::auth::Principal>()
                    .map(|principal| principal.subject.clone())
                    .unwrap_or_default(),
                scope: format!("{} {route}", parts.method),
                key,
                request_hash: hash.finalize().into(),
            }
        });
        Self { claim, config }
    }

    /// Whether the request carried a key.
    pub fn is_keyed(&self) -> bool {
        self.claim.is_some()
    }

    /// Run `effect` on one transaction and answer its result. Without a key: commit on `Ok`, roll
    /// back on `Err`, as a handler would. With one: replay the stored answer (422 if the request
    /// differs, 409 if the first is still running); otherwise run the effect, store its answer on the
    /// same transaction and commit both (a 4xx rolls the effect back first; a 5xx stores nothing).
    pub async fn run<R, F>(self, pool: &PgPool, effect: F) -> Response
    where
        R: IntoResponse,
        F: AsyncFnOnce(&mut PgConnection) -> Result<R, ApiError>,
    {
        match self.try_run(pool, effect).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }

    async fn try_run<R, F>(self, pool: &PgPool, effect: F) -> Result<Response, ApiError>
    where
        R: IntoResponse,
        F: AsyncFnOnce(&mut PgConnection) -> Result<R, ApiError>,
    {
        let mut tx = pool.begin().await?;
        let Some(claim) = self.claim else {
            let answer = effect(&mut tx).await?;
            tx.commit().await?;
            return Ok(answer.into_response());
        };
        if !store::try_lock(&mut tx, &claim).await? {
            tracing::info!(scope = %claim.scope, key = claim.key.as_str(), "idempotency key in use");
            return Err(key_in_use());
        }
        match store::find(&mut tx, &claim, self.config.retention).await? {
            Some(stored) if stored.live => {
                tx.rollback().await?;
                if stored.request_hash != claim.request_hash {
                    tracing::warn!(scope = %claim.scope, key = claim.key.as_str(), "idempotency key reused for another request");
                    return Err(key_reused(&claim.scope));
                }
                tracing::info!(scope = %claim.scope, key = claim.key.as_str(), status = stored.answer.status.as_u16(), "answer replayed");
                return Ok(stored.answer.into_response(true));
            }
            Some(_) => store::delete(&mut tx, &claim).await?,
            None => {}
        }
        let mut attempt = tx.begin().await?;
        let response = match effect(&mut attempt).await {
            Ok(answer) => {
                attempt.commit().await?;
                answer.into_response()
            }
            Err(error) if error.status.is_client_error() => {
                attempt.rollback().await?;
                error.into_response()
            }
            Err(error) => return Err(error),
        };
        if response.status().is_server_error() {
            return Ok(response);
        }
        let answer = Answer::capture(response).await?;
        store::insert(&mut tx, &claim, &answer).await?;
        tx.commit().await?;
        tracing::debug!(scope = %claim.scope, key = claim.key.as_str(), status = answer.status.as_u16(), "answer stored");
        Ok(answer.into_response(false))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let key = IdempotencyKey::from_headers(&parts.headers)?;
        Ok(Self::from_parts(parts, key, &[]))
    }
}

/// The request's [`Idempotency`], with the body bytes in its hash, and the body extracted by `E`
/// (`Idempotent<ApiJson<T>>`). Without a key, `E` reads the body as it would alone.
pub struct Idempotent<E>(pub Idempotency, pub E);

impl<S, E> FromRequest<S> for Idempotent<E>
where
    S: Send + Sync,
    E: FromRequest<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let key =
            IdempotencyKey::from_headers(&parts.headers).map_err(IntoResponse::into_response)?;
        let (idempotency, body) = match key {
            None => (Idempotency::from_parts(&parts, None, &[]), body),
            Some(key) => {
                let bytes = read_body(Request::from_parts(parts.clone(), body), state)
                    .await
                    .map_err(IntoResponse::into_response)?;
                let idempotency = Idempotency::from_parts(&parts, Some(key), &bytes);
                (idempotency, Body::from(bytes))
            }
        };
        let inner = E::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(idempotency, inner))
    }
}

/// An answer as stored: status, headers and body bytes.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Answer {
    async fn capture(response: Response) -> Result<Self, ApiError> {
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| ApiError::internal(format!("reading the answer to store it: {e}")))?;
        let headers = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        Ok(Self {
            status: parts.status,
            headers,
            body,
        })
    }

    fn into_response(self, replayed: bool) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                headers.append(name, value);
            }
        }
        if replayed {
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// A stored key as read back.
struct Stored {
    request_hash: Vec<u8>,
    answer: Answer,
    /// Younger than the retention.
    live: bool,
}

/// The `idempotency_keys` table, always on the caller's transaction.
mod store {
    use super::*;

    /// Take the key's transaction-scoped advisory lock, or `false` if another transaction holds it.
    pub(super) async fn try_lock(conn: &mut PgConnection, claim: &Claim) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(claim.lock_name())
            .fetch_one(conn)
            .await
    }

    pub(super) async fn find(
        conn: &mut PgConnection,
        claim: &Claim,
        retention: Duration,
    ) -> sqlx::Result<Option<Stored>> {
        let row = sqlx::query(
            "SELECT request_hash, status, headers, body,
                    created_at > now() - make_interval(secs => $4) AS live
             FROM idempotency_keys WHERE client = $1 AND scope = $2 AND key = $3",
        )
        .bind(&claim.client)
        .bind(&claim.scope)
        .bind(claim.key.as_str())
        .bind(retention.as_secs_f64())
        .fetch_optional(conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: i16 = row.try_get("status")?;
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| sqlx::Error::Decode(format!("stored status {status}").into()))?;
        let Json(headers): Json<Vec<(String, String)>> = row.try_get("headers")?;
        let body: Vec<u8> = row.try_get("body")?;
        Ok(Some(Stored {
            request_hash: row.try_get("request_hash")?,
            answer: Answer {
                status,
                headers,
                body: Bytes::from(body),
            },
            live: row.try_get("live")?,
        }))
    }

    pub(super) async fn delete(conn: &mut PgConnection, claim: &Claim) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE client = $1 AND scope = $2 AND key = $3")
            .bind(&claim.client)
            .bind(&claim.scope)
            .bind(claim.key.as_str())
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Store the answer; a key another transaction stored meanwhile is a 409 and rolls back.
    pub(super) async fn insert(
        conn: &mut PgConnection,
        claim: &Claim,
        answer: &Answer,
    ) -> Result<(), ApiError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (client, scope, key, request_hash, status, headers, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&claim.client)
        .bind(&claim.scope)
        .bind(claim.key.as_str())
        .bind(&claim.request_hash[..])
        .bind(answer.status.as_u16() as i16)
        .bind(Json(&answer.headers))
        .bind(&answer.body[..])
        .execute(conn)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(key_in_use()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The keys expire after their retention (`IdempotencyConfig::retention`).
pub const EXPIRING: crate::database::Expiring = crate::database::Expiring {
    table: "idempotency_keys",
    column: "created_at",
};

/// Delete keys older than `retention`.
pub async fn purge_older_than(pool: &PgPool, retention: Duration) -> sqlx::Result<u64> {
    crate::database::purge_older_than(pool, EXPIRING, retention).await
}

/// Documents the `Idempotency-Key` header on every POST of a service's OpenAPI document:
/// `#[openapi(modifiers(&idempotency::KeyHeaderDoc))]`.
pub struct KeyHeaderDoc;

impl utoipa::Modify for KeyHeaderDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        let header = ParameterBuilder::new()
            .name(KEY_HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(format!(
                "Optional. The same key with the same request replays the first answer \
                 (`{REPLAYED_HEADER}: true`) and has no second effect; with another path or body it \
                 answers 422, while the first still runs 409, malformed 400 (each naming the header). \
                 Kept {RETENTION_KEY} hours (default {DEFAULT_RETENTION_HOURS})."
            )))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_KEY_CHARS)),
            ))
            .build();
        for item in openapi.paths.paths.values_mut() {
            if let Some(post) = item.post.as_mut() {
                post.parameters
                    .get_or_insert_with(Vec::new)
                    .push(header.clone());
                // What the key itself can be answered, on every POST (a route's own description of
                // the same status is kept).
                for (status, description) in [
                    (
                        "400",
                        "A malformed `Idempotency-Key` (field `Idempotency-Key`)",
                    ),
                    (
                        "409",
                        "The same `Idempotency-Key` is still in use by a request that runs (`idempotency_key_in_use`)",
                    ),
                    (
                        "422",
                        "The `Idempotency-Key` was used for another request (`idempotency_key_reused`)",
                    ),
                ] {
                    post.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| crate::openapi::error_answer(description));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_characters() {
        assert_eq!(IdempotencyKey::parse("a").unwrap().as_str(), "a");
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "   ", &"k".repeat(256), "tab\there", "é"] {
            let error = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(error.field.as_deref(), Some(KEY_HEADER), "{bad:?}");
        }
    }

    #[test]
    fn several_key_headers_are_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(IdempotencyKey::from_headers(&headers).unwrap(), None);
        headers.append(KEY_HEADER, HeaderValue::from_static("one"));
        assert!(IdempotencyKey::from_headers(&headers).unwrap().is_some());
        headers.append(KEY_HEADER, HeaderValue::from_static("two"));
        let error = IdempotencyKey::from_headers(&headers).unwrap_err();
        assert_eq!(error.field.as_deref(), Some(KEY_HEADER));
    }

    #[test]
    fn the_retention_is_checked_naming_its_key() {
        assert_eq!(
            IdempotencyConfig::from_hours(24).unwrap(),
            IdempotencyConfig::default()
        );
        for bad in [0, MAX_RETENTION_HOURS + 1] {
            let error = IdempotencyConfig::from_hours(bad).unwrap_err().to_string();
            assert!(error.contains(RETENTION_KEY), "{error}");
        }
    }
}
