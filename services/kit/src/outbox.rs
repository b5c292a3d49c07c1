//! The transactional outbox: the only way an event leaves a service. `Outbox::append` encodes a typed
//! event through the schema registry (Confluent framing, TopicRecordNameStrategy) and inserts it into
//! the `outbox` table on the caller's transaction, so the event exists exactly when the business rows
//! do. Debezium streams the insert; the janitor deletes rows once they are older than the retention.

use std::sync::Arc;

use anyhow::Context;
use orderflow_schemas::Event;
use orderflow_schemas::registry::EventCodec;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::trace::TraceContext;

/// One outbox row, already encoded.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: Uuid,
    /// Routes to the topic `<aggregate_type>.events`.
    pub aggregate_type: String,
    /// The Kafka key: the order id for every saga event.
    pub aggregate_id: String,
    /// The Avro record's full name.
    pub event_type: String,
    /// The Avro value in the Confluent framing.
    pub payload: Vec<u8>,
    pub trace_context: Option<String>,
}

/// Insert an encoded row on the caller's transaction.
pub async fn insert(conn: &mut PgConnection, row: &OutboxRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(row.id)
    .bind(&row.aggregate_type)
    .bind(&row.aggregate_id)
    .bind(&row.event_type)
    .bind(&row.payload)
    .bind(&row.trace_context)
    .execute(conn)
    .await?;
    Ok(())
}

/// The outbox's rows expire: Debezium has read them from the WAL long before; they are kept a
/// while only so a person can look at recent events with SQL.
pub const EXPIRING: crate::database::Expiring = crate::database::Expiring {
    table: "outbox",
    column: "created_at",
};

/// Encodes typed events through the registry and appends them to the outbox.
/// Cheap to clone: the registry client (and its schema cache) is shared.
#[derive(Clone)]
pub struct Outbox {
    codec: Arc<EventCodec>,
}

impl Outbox {
    pub fn new(registry_url: &str) -> anyhow::Result<Self> {
        let codec = EventCodec::new(registry_url)
            .with_context(|| format!("creating a schema registry client for {registry_url}"))?;
        Ok(Self {
            codec: Arc::new(codec),
        })
    }

    /// Encode `event` and insert it on the caller's transaction, keyed by `event.key()`, with the
    /// event's own id as the row id; returns that id.
    pub async fn append<E: Event>(
        &self,
        conn: &mut PgConnection,
        event: &E,
        trace: &TraceContext,
    ) -> anyhow::Result<Uuid> {
        let payload = self.codec.encode(event).await.with_context(|| {
            format!(
                "encoding {} through the schema registry at {}",
                E::NAME,
                self.codec.url()
            )
        })?;
        let row = OutboxRow {
            id: event.event_id().as_uuid(),
            aggregate_type: E::TOPIC.trim_end_matches(".events").to_string(),
            aggregate_id: event.key(),
            event_type: E::NAME.to_string(),
            payload,
            trace_context: Some(trace.traceparent()),
        };
        insert(conn, &row).await?;
        Ok(row.id)
    }

    /// The registry client, for decoding in tests and tools.
    pub fn codec(&self) -> &EventCodec {
        &self.codec
    }
}
