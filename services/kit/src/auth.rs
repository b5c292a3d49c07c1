//! Bearer-token authentication and role-based authorization, once for every API.
//!
//! Every route of a service sits behind [`layer`]: a request without `Authorization: Bearer <token>`,
//! or with a token that does not verify, answers 401 with `WWW-Authenticate: Bearer ...` (RFC 6750) and
//! the usual JSON error body. A token verifies when its signature checks against a key of the identity
//! provider's JWKS (the asymmetric algorithm the key names, never `none` or a shared secret), its issuer
//! is `ORDERFLOW_AUTH_ISSUER`, its audience holds `ORDERFLOW_AUTH_AUDIENCE`, and it has not expired. The
//! crypto is the `jsonwebtoken` crate's.
//!
//! The JWKS is found through the issuer's OpenID discovery document, fetched on first use and cached.
//! A token signed with a key id the cache does not know makes it fetch again (the provider rotated its
//! keys), at most once every [`MIN_REFETCH`] so that tokens with made-up key ids cannot make the
//! service hammer the provider; the cache is also renewed when older than [`MAX_KEY_AGE`], so a key the
//! provider withdrew stops being trusted.
//!
//! What passed is a [`Principal`] in the request's extensions: the subject, the roles (`customer`,
//! `carrier`, `admin`) and, for a customer, the customer id from the token's `customer_id` claim. The
//! handlers state what they need with the extractors [`Caller`] (any role), [`Carrier`] (carrier or
//! admin) and [`Admin`] (admin), a wrong role answering 403; data a customer owns is scoped with
//! [`Principal::scope`], so a customer's request reaches only what the token's customer id owns.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use orderflow_platform::config::{ConfigError, setting, setting_or};
use orderflow_schemas::CustomerId;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::http::ApiError;

/// The least time between two JWKS fetches caused by unknown key ids.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// A cached JWKS older than this is fetched again before it is used.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(600);
/// Paths behind the layer that need no token: the API's own description.
const PUBLIC_PATHS: &[&str] = &["/openapi.json"];

/// Who may call: the provider's issuer URL and the audience the tokens must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `ORDERFLOW_AUTH_ISSUER`, e.g. `http://127.0.0.1:18180/realms/orderflow`: the `iss` of every
    /// token, and where `/.well-known/openid-configuration` is.
    pub issuer: String,
    /// `ORDERFLOW_AUTH_AUDIENCE`: a value the token's `aud` must hold.
    pub audience: String,
    /// `ORDERFLOW_AUTH_LEEWAY_SECONDS` (5): clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The least time between two JWKS fetches ([`MIN_REFETCH`]).
    pub min_refetch: Duration,
}

impl AuthConfig {
    /// From the environment (after `stack.env`); an error names the key that is missing or wrong.
    pub fn from_env() -> Result<Self, ConfigError> {
        let issuer: String = setting("ORDERFLOW_AUTH_ISSUER")?;
        if !(issuer.starts_with("http://") || issuer.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "ORDERFLOW_AUTH_ISSUER",
                value: issuer,
                problem: "the issuer is an http:// or https:// URL".into(),
            });
        }
        let audience: String = setting("ORDERFLOW_AUTH_AUDIENCE")?;
        if audience.is_empty() {
            return Err(ConfigError::Invalid {
                key: "ORDERFLOW_AUTH_AUDIENCE",
                value: audience,
                problem: "the audience may not be empty".into(),
            });
        }
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience,
            leeway_seconds: setting_or("ORDERFLOW_AUTH_LEEWAY_SECONDS", 5)?,
            min_refetch: MIN_REFETCH,
        })
    }
}

/// A role of the realm, as the token's `realm_access.roles` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Carrier,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Carrier => "carrier",
            Role::Admin => "admin",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "customer" => Some(Role::Customer),
            "carrier" => Some(Role::Carrier),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: the user (or a client's service account) at the provider.
    pub subject: String,
    /// The client the token was issued to (`azp`), for logs and idempotency scopes.
    pub client: String,
    roles: Vec<Role>,
    /// The customers-service record this user is, from the `customer_id` claim.
    pub customer_id: Option<CustomerId>,
}

/// What a caller may see of customer-owned data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admin).
    All,
    /// Only what this customer owns.
    Customer(CustomerId),
}

impl Scope {
    /// Does this scope reach data owned by `owner`?
    pub fn reaches(self, owner: CustomerId) -> bool {
        match self {
            Scope::All => true,
            Scope::Customer(me) => me == owner,
        }
    }

    /// The customer a query must be limited to, if any.
    pub fn customer(self) -> Option<CustomerId> {
        match self {
            Scope::All => None,
            Scope::Customer(me) => Some(me),
        }
    }
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), AuthError> {
        if roles.iter().any(|role| self.has(*role)) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// What of customer-owned data the caller reaches: an admin everything, a customer what the
    /// token's customer id owns; anyone else (a carrier, a customer not linked to a record) is 403.
    pub fn scope(&self) -> Result<Scope, AuthError> {
        if self.has(Role::Admin) {
            return Ok(Scope::All);
        }
        match (self.has(Role::Customer), self.customer_id) {
            (true, Some(customer)) => Ok(Scope::Customer(customer)),
            (true, None) => Err(AuthError::Forbidden(
                "this account is not linked to a customer record (no customer_id in the token)"
                    .into(),
            )),
            (false, _) => Err(AuthError::Forbidden(
                "this needs the role customer or admin".into(),
            )),
        }
    }
}

/// Why a request is refused: 401 (no or bad token), 403 (wrong role), 503 (the provider's keys
/// cannot be had to check a token signed with a key not seen yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    MissingToken,
    InvalidToken(String),
    Forbidden(String),
    ProviderUnavailable(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingToken => write!(f, "no bearer token"),
            AuthError::InvalidToken(why) => write!(f, "invalid token: {why}"),
            AuthError::Forbidden(why) => write!(f, "forbidden: {why}"),
            AuthError::ProviderUnavailable(why) => {
                write!(f, "identity provider unavailable: {why}")
            }
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, error, message, challenge) = match self {
            AuthError::MissingToken => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API needs a bearer token (Authorization: Bearer <token>)".to_string(),
                r#"Bearer realm="orderflow""#.to_string(),
            ),
            AuthError::InvalidToken(why) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                format!("the bearer token was refused: {why}"),
                format!(
                    r#"Bearer realm="orderflow", error="invalid_token", error_description="{}""#,
                    why.replace(['"', '\\'], "'")
                ),
            ),
            AuthError::Forbidden(why) => {
                return ApiError::new(StatusCode::FORBIDDEN, "forbidden", None, why)
                    .into_response();
            }
            AuthError::ProviderUnavailable(why) => {
                tracing::error!(%why, "cannot check a token: the identity provider's keys are unavailable");
                let body = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "identity_provider_unavailable",
                    None,
                    "the identity provider cannot be reached to check the token; retry later",
                );
                return body.into_response();
            }
        };
        let mut response = ApiError::new(status, error, None, message).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The token's claims this module reads; `iss`, `aud` and `exp` are checked by `jsonwebtoken`.
#[derive(Debug, Deserialize)]
struct Claims {
    /// Optional here so that a token without it is refused by the claim check, naming it.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    realm_access: RealmAccess,
    #[serde(default)]
    customer_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RealmAccess {
    #[serde(default)]
    roles: Vec<String>,
}

impl TryFrom<Claims> for Principal {
    type Error = AuthError;

    fn try_from(claims: Claims) -> Result<Self, AuthError> {
        let customer_id = claims
            .customer_id
            .filter(|id| !id.is_empty())
            .map(|id| {
                id.parse::<CustomerId>().map_err(|e| {
                    AuthError::InvalidToken(format!(
                        "the customer_id claim is not a customer id: {e}"
                    ))
                })
            })
            .transpose()?;
        let mut roles: Vec<Role> = claims
            .realm_access
            .roles
            .iter()
            .filter_map(|name| Role::from_name(name))
            .collect();
        roles.dedup();
        let subject = claims
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| AuthError::InvalidToken("the token has no subject (sub)".into()))?;
        Ok(Principal {
            subject,
            client: claims.azp.unwrap_or_default(),
            roles,
            customer_id,
        })
    }
}

/// Checks tokens; cheap to clone (one key cache behind an `Arc`).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    http: reqwest::Client,
    keys: RwLock<KeyCache>,
    /// Held while fetching, so concurrent requests with an unknown key id make one fetch.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
    /// The last fetch attempt, successful or not (the rate limit).
    attempted_at: Option<Instant>,
}

/// The algorithms a key of the provider may sign with: asymmetric only.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Authenticator {
    pub fn new(config: AuthConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client with a timeout");
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                keys: RwLock::new(KeyCache::default()),
                fetching: Mutex::new(()),
            }),
        }
    }

    /// From `AuthConfig::from_env`.
    pub fn from_env() -> Result<Self, ConfigError> {
        AuthConfig::from_env().map(Self::new)
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// Verify a bearer token (the part after `Bearer `) and say whom it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(format!("not a JWT: {e}")))?;
        let kid = header
            .kid
            .ok_or_else(|| AuthError::InvalidToken("the token names no key id (kid)".into()))?;
        let (algorithm, key) = self.key(&kid).await?;
        if header.alg != algorithm {
            return Err(AuthError::InvalidToken(format!(
                "the token says {:?}, its key is for {algorithm:?}",
                header.alg
            )));
        }
        let config = &self.inner.config;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = config.leeway_seconds;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                ErrorKind::InvalidSignature => "the signature does not verify".to_string(),
                ErrorKind::InvalidIssuer => format!("the issuer is not {}", config.issuer),
                ErrorKind::InvalidAudience => {
                    format!("the audience does not include {}", config.audience)
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the token has no {claim} claim")
                }
                _ => e.to_string(),
            };
            AuthError::InvalidToken(why)
        })?;
        Principal::try_from(data.claims)
    }

    /// The key with id `kid`, from the cache, or fetched again (rate-limited) when unknown or stale.
    async fn key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), AuthError> {
        {
            let cache = self.inner.keys.read().await;
            let fresh = cache.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            if fresh && let Some(found) = cache.keys.get(kid) {
                return Ok(found.clone());
            }
        }
        let _one_fetch = self.inner.fetching.lock().await;
        {
            let cache = self.inner.keys.read().await;
            let fresh = cache.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            let min_refetch = self.inner.config.min_refetch;
            let recently_tried = cache
                .attempted_at
                .is_some_and(|t| t.elapsed() < min_refetch);
            if let Some(found) = cache.keys.get(kid)
                && (fresh || recently_tried)
            {
                return Ok(found.clone());
            }
            if recently_tried {
                return if cache.fetched_at.is_some() {
                    Err(AuthError::InvalidToken(format!(
                        "the token is signed with key {kid}, which the identity provider does not publish"
                    )))
                } else {
                    Err(AuthError::ProviderUnavailable(
                        "the last attempt to fetch its keys failed moments ago".into(),
                    ))
                };
            }
        }
        let fetched = self.fetch_keys().await;
        let mut cache = self.inner.keys.write().await;
        cache.attempted_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                tracing::info!(
                    keys = keys.len(),
                    "fetched the identity provider's signing keys"
                );
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
            }
            Err(why) => {
                tracing::warn!(%why, "could not fetch the identity provider's signing keys");
                // A stale key still checks tokens while the provider is away.
                if let Some(found) = cache.keys.get(kid) {
                    return Ok(found.clone());
                }
                return Err(AuthError::ProviderUnavailable(why));
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            AuthError::InvalidToken(format!(
                "the token is signed with key {kid}, which the identity provider does not publish"
            ))
        })
    }

    /// The signing keys of the JWKS the discovery document names, by key id. Keys this module cannot
    /// use (encryption keys, symmetric or unknown algorithms) are left out.
    async fn fetch_keys(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        #[derive(Deserialize)]
        struct RawJwkSet {
            keys: Vec<serde_json::Value>,
        }
        let config = &self.inner.config;
        let discovery_url = format!("{}/.well-known/openid-configuration", config.issuer);
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        if discovery.issuer.trim_end_matches('/') != config.issuer {
            return Err(format!(
                "{discovery_url} names the issuer {}, not {} (check ORDERFLOW_AUTH_ISSUER)",
                discovery.issuer, config.issuer
            ));
        }
        let set: RawJwkSet = self.get_json(&discovery.jwks_uri).await?;
        let mut keys = HashMap::new();
        for raw in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
                continue;
            };
            let is_signing = !matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            );
            let (Some(kid), Some(algorithm)) = (jwk.common.key_id.clone(), key_algorithm(&jwk))
            else {
                continue;
            };
            if !is_signing || !ASYMMETRIC.contains(&algorithm) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(&jwk) {
                keys.insert(kid, (algorithm, key));
            }
        }
        if keys.is_empty() {
            return Err(format!("{} has no usable signing key", discovery.jwks_uri));
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        response
            .json()
            .await
            .map_err(|e| format!("GET {url}: unreadable answer: {e}"))
    }
}

/// The algorithm a JWK is for: its `alg`, or RS256 for an RSA key without one.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm};
    match jwk.common.key_algorithm {
        Some(alg) => match alg {
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::RS384 => Some(Algorithm::RS384),
            KeyAlgorithm::RS512 => Some(Algorithm::RS512),
            KeyAlgorithm::PS256 => Some(Algorithm::PS256),
            KeyAlgorithm::PS384 => Some(Algorithm::PS384),
            KeyAlgorithm::PS512 => Some(Algorithm::PS512),
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::ES384 => Some(Algorithm::ES384),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            _ => None,
        },
        None => match jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            _ => None,
        },
    }
}

/// The bearer token of a request, if it has one `Authorization: Bearer <token>` header.
fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::MissingToken);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidToken("the Authorization header is not ASCII".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AuthError::InvalidToken("expected Authorization: Bearer <token>".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

/// The middleware of [`layer`]: verify the token, put the [`Principal`] in the extensions.
async fn authenticate(
    State(authenticator): State<Authenticator>,
    request: Request,
    next: Next,
) -> Response {
    if PUBLIC_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let principal = match bearer(&parts) {
        Ok(token) => authenticator.verify(token).await,
        Err(refused) => Err(refused),
    };
    match principal {
        Ok(principal) => {
            tracing::debug!(subject = %principal.subject, client = %principal.client, "authenticated");
            parts.extensions.insert(principal);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refused) => {
            tracing::info!(path = %parts.uri.path(), %refused, "request refused");
            refused.into_response()
        }
    }
}

/// Require a verified bearer token on every route of `routes`.
pub fn layer<S: Clone + Send + Sync + 'static>(
    routes: axum::Router<S>,
    authenticator: Authenticator,
) -> axum::Router<S> {
    routes.layer(axum::middleware::from_fn_with_state(
        authenticator,
        authenticate,
    ))
}

/// Any authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// A caller with the role `carrier` or `admin`.
#[derive(Debug, Clone)]
pub struct Carrier(pub Principal);

/// A caller with the role `admin`.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

fn principal(parts: &Parts) -> Result<Principal, ApiError> {
    parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
        ApiError::internal("a handler needs a caller, but the route is not behind auth::layer")
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        principal(parts)
            .map(Caller)
            .map_err(IntoResponse::into_response)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Carrier {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let principal = principal(parts).map_err(IntoResponse::into_response)?;
        principal
            .require(&[Role::Carrier, Role::Admin])
            .map_err(IntoResponse::into_response)?;
        Ok(Carrier(principal))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let principal = principal(parts).map_err(IntoResponse::into_response)?;
        principal
            .require(&[Role::Admin])
            .map_err(IntoResponse::into_response)?;
        Ok(Admin(principal))
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Forbidden(why) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", None, why)
            }
            other => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                None,
                other.to_string(),
            ),
        }
    }
}

/// `/metrics` carries no token check (Prometheus scrapes it), so the listener that serves it must be
/// on loopback: a scraper runs beside the process. An error names the key to change.
pub fn metrics_listener_on_loopback(
    key: &'static str,
    address: std::net::SocketAddr,
) -> Result<(), ConfigError> {
    if address.ip().is_loopback() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            value: address.to_string(),
            problem: "this listener serves /metrics without authentication, so it must be a loopback address (127.0.0.1 or [::1])".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], customer: Option<CustomerId>) -> Principal {
        Principal {
            subject: "s".into(),
            client: "c".into(),
            roles: roles.to_vec(),
            customer_id: customer,
        }
    }

    #[test]
    fn scopes_follow_the_roles_and_the_customer_id() {
        let me: CustomerId = "0190c4a5-6b6e-7c6e-8f3a-1b2c3d4e5f60".parse().unwrap();
        let other: CustomerId = "0190c4a5-6b6e-7c6e-8f3a-1b2c3d4e5f61".parse().unwrap();
        let customer = principal(&[Role::Customer], Some(me));
        assert_eq!(customer.scope(), Ok(Scope::Customer(me)));
        assert!(customer.scope().unwrap().reaches(me));
        assert!(!customer.scope().unwrap().reaches(other));
        assert_eq!(principal(&[Role::Admin], None).scope(), Ok(Scope::All));
        assert!(matches!(
            principal(&[Role::Customer], None).scope(),
            Err(AuthError::Forbidden(_))
        ));
        assert!(matches!(
            principal(&[Role::Carrier], None).scope(),
            Err(AuthError::Forbidden(_))
        ));
        assert!(
            principal(&[Role::Carrier], None)
                .require(&[Role::Admin])
                .is_err()
        );
        assert!(
            principal(&[Role::Admin], None)
                .require(&[Role::Carrier, Role::Admin])
                .is_ok()
        );
    }

    #[test]
    fn a_malformed_customer_id_claim_refuses_the_token() {
        let claims = Claims {
            sub: Some("s".into()),
            azp: None,
            realm_access: RealmAccess {
                roles: vec!["customer".into(), "offline_access".into()],
            },
            customer_id: Some("not-a-uuid".into()),
        };
        assert!(matches!(
            Principal::try_from(claims),
            Err(AuthError::InvalidToken(_))
        ));
    }
}
