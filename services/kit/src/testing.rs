//! Integration-test support for service crates: start the real service on a random port over a fresh,
//! migrated database in the real PostgreSQL, with the real schema registry behind its outbox; then call
//! it over HTTP and look at its rows. A server that is down fails the test with its name and the command
//! that starts it.

use axum::http::StatusCode;
use orderflow_platform::StackConfig;
use orderflow_schemas::Event;
use serde_json::Value;
use sqlx::Row;

use crate::database::TestDatabase;
use crate::outbox::{Outbox, OutboxRow};
use crate::server::Server;
use crate::service::{ServiceContext, ServiceSpec, routes};

pub struct TestService {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub context: ServiceContext,
    pub stack: StackConfig,
    pub http: reqwest::Client,
    database: Option<TestDatabase>,
}

impl TestService {
    /// Start `spec` over a fresh database. Panics naming PostgreSQL or the registry if one is down.
    pub async fn start(spec: ServiceSpec) -> Self {
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
        let server = Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            routes(&spec, context.clone()),
        )
        .await
        .expect("bind a free port");
        let address = server.spawn();
        Self {
            url: format!("http://{address}"),
            context,
            stack,
            http,
            database: Some(database),
        }
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
        if let Some(database) = self.database.take() {
            database
                .drop_database()
                .await
                .expect("drop the test database");
        }
    }
}
