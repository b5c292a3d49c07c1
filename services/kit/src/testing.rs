//! Integration-test support for service crates: start the real service on a random port over a fresh,
//! migrated database in the real PostgreSQL, with the real schema registry behind its outbox; then call
//! it over HTTP and look at its rows. A server that is down fails the test with its name and the command
//! that starts it. `restart` replaces the running instance by a new one over the same database, as a
//! process restart would. The service checks bearer tokens against the real identity provider
//! (Keycloak, `scripts/stack up identity`): `get`, `post` and the rest send an admin token of the
//! `orderflow-tests` client; `request_as` sends any token or none, and [`TestIdentity`] has the tokens
//! of the other roles (a customer user made for the test, linked to a customer id; the carrier client).

use axum::http::StatusCode;
use orderflow_platform::StackConfig;
use orderflow_schemas::Event;
use serde_json::Value;
use sqlx::Row;

use crate::auth::Authenticator;
use crate::database::{TestDatabase, connect_and_migrate_as};
use crate::hardening::Hardening;
use crate::idempotency::{IdempotencyConfig, KEY_HEADER, REPLAYED_HEADER};
use crate::identity::{IdentityAdmin, TokenSource};
use crate::outbox::{Outbox, OutboxRow};
use crate::server::Server;
use crate::service::{ServiceContext, ServiceSpec, routes_with};

/// An answer with what idempotency tests look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    /// The answer carried `Idempotency-Replayed: true`.
    pub replayed: bool,
}

pub struct TestService {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub context: ServiceContext,
    pub stack: StackConfig,
    /// A client that sends the admin token with every request (its default `Authorization`).
    pub http: reqwest::Client,
    /// A client without default headers, for `request_as`.
    bare: reqwest::Client,
    /// Tokens of the realm's roles, from the identity provider.
    pub identity: TestIdentity,
    /// The admin token `get`, `post`, ... send.
    admin_token: String,
    database: Option<TestDatabase>,
    spec: ServiceSpec,
    idempotency: IdempotencyConfig,
    hardening: Hardening,
    server: tokio::task::JoinHandle<()>,
}

impl TestService {
    /// Start `spec` over a fresh database. Panics naming PostgreSQL or the registry if one is down.
    pub async fn start(spec: ServiceSpec) -> Self {
        Self::start_with(spec, IdempotencyConfig::default()).await
    }

    /// Start `spec` over a fresh database, keeping idempotency keys as `idempotency` says.
    pub async fn start_with(spec: ServiceSpec, idempotency: IdempotencyConfig) -> Self {
        Self::start_full(spec, idempotency, Hardening::default()).await
    }

    /// Start `spec` over a fresh database behind `hardening` (tests of the limits use tight ones).
    pub async fn start_hardened(spec: ServiceSpec, hardening: Hardening) -> Self {
        Self::start_full(spec, IdempotencyConfig::default(), hardening).await
    }

    async fn start_full(
        spec: ServiceSpec,
        idempotency: IdempotencyConfig,
        hardening: Hardening,
    ) -> Self {
        let stack = StackConfig::from_env().unwrap_or_else(|e| panic!("stack configuration: {e}"));
        let database = TestDatabase::create(&stack.postgres, spec.name, spec.migrations)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let http = reqwest::Client::new();
        let registry_up = http
            .get(format!("{}/subjects", stack.registry_url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        assert!(
            registry_up,
            "the schema registry is not reachable at {}: start it with `scripts/stack up registry`",
            stack.registry_url
        );
        let outbox = Outbox::new(&stack.registry_url).expect("registry client");
        let identity = TestIdentity::new();
        let admin_token = identity.admin().await;
        let bare = http;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {admin_token}")
                .parse()
                .expect("a token is a header value"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("HTTP client");
        let context = ServiceContext {
            pool: database.pool.clone(),
            outbox,
            auth: Authenticator::from_env().unwrap_or_else(|e| panic!("auth configuration: {e}")),
        };
        let (address, server) = Self::serve(&spec, context.clone(), idempotency, &hardening).await;
        Self {
            url: format!("http://{address}"),
            context,
            stack,
            http,
            bare,
            identity,
            admin_token,
            database: Some(database),
            spec,
            idempotency,
            hardening,
            server,
        }
    }

    async fn serve(
        spec: &ServiceSpec,
        context: ServiceContext,
        idempotency: IdempotencyConfig,
        hardening: &Hardening,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        Server::bind_with(
            "127.0.0.1:0".parse().unwrap(),
            routes_with(spec, context, idempotency),
            hardening,
        )
        .await
        .expect("bind a free port")
        .spawn_task()
    }

    /// Stop this instance and start a new one over the same database: a new pool (migrated again, as
    /// at a process start), a new registry client, a new port. Nothing is carried over but the rows.
    pub async fn restart(&mut self) {
        self.server.abort();
        let database = self.database.as_ref().expect("not finished");
        let pool = connect_and_migrate_as(
            &self.stack.postgres,
            &database.login,
            &database.name,
            self.spec.migrations,
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        let old = std::mem::replace(&mut self.context.pool, pool);
        old.close().await;
        self.context.outbox = Outbox::new(&self.stack.registry_url).expect("registry client");
        let (address, server) = Self::serve(
            &self.spec,
            self.context.clone(),
            self.idempotency,
            &self.hardening,
        )
        .await;
        self.url = format!("http://{address}");
        self.server = server;
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.context.pool
    }

    /// Rows in a table of the service's database.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("count {table}: {e}"))
    }

    /// Row counts of several tables, for "nothing changed" assertions.
    pub async fn counts(&self, tables: &[&str]) -> Vec<(String, i64)> {
        let mut counts = Vec::new();
        for table in tables {
            counts.push((table.to_string(), self.count(table).await));
        }
        counts
    }

    /// Every outbox row, oldest first.
    pub async fn outbox_rows(&self) -> Vec<OutboxRow> {
        sqlx::query(
            "SELECT id, aggregate_type, aggregate_id, event_type, payload, trace_context
             FROM outbox ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await
        .expect("read the outbox")
        .into_iter()
        .map(|row| OutboxRow {
            id: row.get("id"),
            aggregate_type: row.get("aggregate_type"),
            aggregate_id: row.get("aggregate_id"),
            event_type: row.get("event_type"),
            payload: row.get("payload"),
            trace_context: row.get("trace_context"),
        })
        .collect()
    }

    /// Decode an outbox row's payload through the registry as `E`, checking the row's metadata agrees.
    pub async fn decode<E: Event>(&self, row: &OutboxRow) -> E {
        assert_eq!(
            row.event_type,
            E::NAME,
            "event type of outbox row {}",
            row.id
        );
        assert_eq!(
            format!("{}.events", row.aggregate_type),
            E::TOPIC,
            "aggregate type of outbox row {}",
            row.id
        );
        let event: E = self
            .context
            .outbox
            .codec()
            .decode_as(&row.payload)
            .await
            .unwrap_or_else(|e| panic!("decode outbox row {} as {}: {e}", row.id, E::NAME));
        assert_eq!(
            event.event_id().as_uuid(),
            row.id,
            "outbox id is the event id"
        );
        assert_eq!(
            event.key(),
            row.aggregate_id,
            "outbox aggregate id is the event key"
        );
        event
    }

    /// The only outbox row added since `before` rows were there, decoded as `E`.
    pub async fn single_new_event<E: Event>(&self, before: usize) -> E {
        let rows = self.outbox_rows().await;
        assert_eq!(
            rows.len(),
            before + 1,
            "expected exactly one new outbox row, found {:?}",
            &rows[before.min(rows.len())..]
        );
        self.decode(&rows[before]).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("GET");
        Self::read(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        Self::read(response).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .delete(format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("DELETE");
        Self::read(response).await
    }

    /// POST arbitrary bytes with a content type, for malformed and oversized bodies.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        Self::read(response).await
    }

    /// POST `body` (none: no body at all) with `Idempotency-Key: key`.
    pub async fn post_keyed(&self, path: &str, key: &str, body: Option<&Value>) -> Answer {
        self.client_only().post(path, key, body).await
    }

    /// POST the same keyed request `copies` times at once (each from its own task); the answers in
    /// the order they were sent.
    pub async fn post_keyed_concurrently(
        &self,
        path: &str,
        key: &str,
        body: Option<&Value>,
        copies: usize,
    ) -> Vec<Answer> {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(copies));
        let tasks: Vec<_> = (0..copies)
            .map(|_| {
                let this = Self::client_only(self);
                let (path, key, body) = (path.to_string(), key.to_string(), body.cloned());
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    this.post(&path, &key, body.as_ref()).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("request task"));
        }
        answers
    }

    fn client_only(&self) -> KeyedClient {
        KeyedClient {
            url: self.url.clone(),
            http: self.http.clone(),
            token: self.admin_token.clone(),
        }
    }

    /// A request with `token` as its bearer token (`None`: no `Authorization` header), and `body` as
    /// JSON; the answer's status, headers and body.
    pub async fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.bare.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let headers = response.headers().clone();
        let (status, body) = Self::read(response).await;
        (status, headers, body)
    }

    /// Every POST of the service's `/openapi.json` documents the `Idempotency-Key` header.
    pub async fn assert_every_post_documents_the_idempotency_key(&self) {
        let (status, doc) = self.get("/openapi.json").await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        let mut posts = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let Some(post) = item.get("post") else {
                continue;
            };
            posts += 1;
            let documented = post["parameters"].as_array().is_some_and(|parameters| {
                parameters
                    .iter()
                    .any(|p| p["name"] == KEY_HEADER && p["in"] == "header")
            });
            assert!(documented, "POST {path} does not document {KEY_HEADER}");
        }
        assert!(posts > 0, "the document has no POST");
    }

    /// Wait until a session of this database, other than the caller's, waits for a lock: a request
    /// is then parked inside its transaction. Panics after 10 s.
    pub async fn wait_for_a_lock_wait(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(self.pool())
            .await
            .expect("read pg_stat_activity");
            if waiting > 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no request waited for a lock within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn read(response: reqwest::Response) -> (StatusCode, Value) {
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let text = response.text().await.expect("response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("response is not JSON ({status}): {text}"))
        };
        (status, body)
    }

    /// Drop the test database. Call at the end of a test; a failed test leaves it for inspection.
    pub async fn finish(mut self) {
        self.server.abort();
        if let Some(database) = self.database.take() {
            database
                .drop_database()
                .await
                .expect("drop the test database");
        }
    }
}

/// What a keyed POST needs of a `TestService`, cheap to move into a task.
struct KeyedClient {
    url: String,
    http: reqwest::Client,
    token: String,
}

impl KeyedClient {
    async fn post(&self, path: &str, key: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header(KEY_HEADER, key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("POST");
        let replayed = response
            .headers()
            .get(REPLAYED_HEADER)
            .is_some_and(|v| v.as_bytes() == b"true");
        let (status, body) = TestService::read(response).await;
        Answer {
            status,
            body,
            replayed,
        }
    }
}

/// The tokens a test needs, from the real identity provider, as its clients would get them.
#[derive(Clone)]
pub struct TestIdentity {
    admin: TokenSource,
    carrier: TokenSource,
    users: IdentityAdmin,
}

/// The password of the users [`TestIdentity::customer`] makes.
const TEST_USER_PASSWORD: &str = "orderflow-test-user";

impl TestIdentity {
    /// Panics naming the key when the identity settings are missing.
    pub fn new() -> Self {
        let admin =
            TokenSource::client_credentials("orderflow-tests", "ORDERFLOW_IDENTITY_TESTS_SECRET")
                .unwrap_or_else(|e| panic!("identity configuration: {e:#}"));
        let carrier = TokenSource::client_credentials(
            "orderflow-carrier",
            "ORDERFLOW_IDENTITY_CARRIER_SECRET",
        )
        .unwrap_or_else(|e| panic!("identity configuration: {e:#}"));
        let users = IdentityAdmin::new(admin.clone())
            .unwrap_or_else(|e| panic!("identity configuration: {e:#}"));
        Self {
            admin,
            carrier,
            users,
        }
    }

    /// A token with the role admin (the `orderflow-tests` client's service account).
    pub async fn admin(&self) -> String {
        self.admin
            .bearer()
            .await
            .unwrap_or_else(|e| panic!("an admin token: {e:#}"))
    }

    /// A token with the role carrier (the `orderflow-carrier` client's service account).
    pub async fn carrier(&self) -> String {
        self.carrier
            .bearer()
            .await
            .unwrap_or_else(|e| panic!("a carrier token: {e:#}"))
    }

    /// A token of a new customer user linked to `customer` (onboarding as the README describes it:
    /// the user is made, then its `customer_id` attribute is set through the admin API).
    pub async fn customer(&self, customer: orderflow_schemas::CustomerId) -> String {
        let username = format!("test-customer-{}", uuid::Uuid::new_v4().simple());
        self.users
            .ensure_user(&username, TEST_USER_PASSWORD, "customer")
            .await
            .unwrap_or_else(|e| panic!("create the customer user {username}: {e:#}"));
        self.users
            .link_customer(&username, customer)
            .await
            .unwrap_or_else(|e| panic!("link {username} to {customer}: {e:#}"));
        user_token(&username).await
    }

    /// A genuine admin token that expires `lifetime` after it is issued (the `orderflow-tests-short-lived`
    /// client, whose tokens live 2 s).
    pub async fn short_lived(&self) -> (String, std::time::Duration) {
        TokenSource::client_credentials(
            "orderflow-tests-short-lived",
            "ORDERFLOW_IDENTITY_TESTS_SECRET",
        )
        .unwrap_or_else(|e| panic!("identity configuration: {e:#}"))
        .fetch()
        .await
        .unwrap_or_else(|e| panic!("a short-lived token: {e:#}"))
    }

    /// A token of a customer user not linked to any customer record.
    pub async fn unlinked_customer(&self) -> String {
        let username = format!("test-unlinked-{}", uuid::Uuid::new_v4().simple());
        self.users
            .ensure_user(&username, TEST_USER_PASSWORD, "customer")
            .await
            .unwrap_or_else(|e| panic!("create the customer user {username}: {e:#}"));
        user_token(&username).await
    }
}

/// A token of a test user, by the password grant of the tests' client.
async fn user_token(username: &str) -> String {
    let (token, _) = TokenSource::password(
        "orderflow-tests",
        "ORDERFLOW_IDENTITY_TESTS_SECRET",
        username,
        TEST_USER_PASSWORD,
    )
    .unwrap_or_else(|e| panic!("identity configuration: {e:#}"))
    .fetch()
    .await
    .unwrap_or_else(|e| panic!("a token for {username}: {e:#}"));
    token
}

impl Default for TestIdentity {
    fn default() -> Self {
        Self::new()
    }
}

/// A token the provider never issued: the header (key id included) and claims of `genuine`, with
/// `changes` merged into the claims, signed RS256 with a key of our own, made here by `openssl`.
pub fn forged(genuine: &str, changes: Value) -> String {
    let header = jsonwebtoken::decode_header(genuine).expect("a genuine token's header");
    let mut claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(genuine)
        .expect("a genuine token's claims");
    if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            claims.insert(key.clone(), value.clone());
        }
    }
    let output = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .expect("openssl, to make a key of our own (apt-get install openssl)");
    assert!(output.status.success(), "openssl genrsa failed");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&output.stdout).expect("the RSA key");
    let mut forged_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    forged_header.kid = header.kid;
    jsonwebtoken::encode(&forged_header, &claims, &key).expect("sign the forged token")
}
