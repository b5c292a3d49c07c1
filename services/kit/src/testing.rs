//! Integration-test support for service crates: start the real service on a random port over a fresh,
//! migrated database in the real PostgreSQL, with the real schema registry behind its outbox; then call
//! it over HTTP and look at its rows. A server that is down fails the test with its name and the command
//! that starts it. `restart` replaces the running instance by a new one over the same database, as a
//! process restart would.

use axum::http::StatusCode;
use orderflow_platform::StackConfig;
use orderflow_schemas::Event;
use serde_json::Value;
use sqlx::Row;

use crate::database::{TestDatabase, connect_and_migrate_as};
use crate::hardening::Hardening;
use crate::idempotency::{IdempotencyConfig, KEY_HEADER, REPLAYED_HEADER};
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
    pub http: reqwest::Client,
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
        let context = ServiceContext {
            pool: database.pool.clone(),
            outbox,
        };
        let (address, server) = Self::serve(&spec, context.clone(), idempotency, &hardening).await;
        Self {
            url: format!("http://{address}"),
            context,
            stack,
            http,
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
            .send()
            .await
            .expect("GET");
        Self::read(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
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
        }
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
}

impl KeyedClient {
    async fn post(&self, path: &str, key: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
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
