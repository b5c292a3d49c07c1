//! Parked events: the store behind sequenced dead letters, in the consumer's own database (the
//! kit's `parked_events` table). Once an event of a key is dead-lettered, that key is *parked*: its
//! later events are stored here in arrival order instead of applied, until the head (the dead
//! letter, the row with the lowest `seq`) is redriven and applied, or discarded. Then the parked
//! events are applied in order (see [`crate::reactions::Transactional`]). Other keys go on.
//!
//! A key is parked while it has any row. The head is `DEAD_LETTERED` (its copy is on
//! `<consumer>.dlq`) or `REDRIVEN` (produced back onto its topic, waiting to be applied); the rows
//! behind it are `PARKED`.

use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::dead_letter::Reason;
use crate::handler::Record;

pub const DEAD_LETTERED: &str = "DEAD_LETTERED";
pub const REDRIVEN: &str = "REDRIVEN";
pub const PARKED: &str = "PARKED";

/// A row of `parked_events`, as the runtime needs it to decide about a record of a parked key.
#[derive(Debug, Clone, FromRow)]
pub struct Parked {
    pub record_key: String,
    pub seq: i64,
    pub event_id: Uuid,
    pub state: String,
    pub reason: Option<String>,
    pub error: Option<String>,
}

/// A row with everything needed to apply it again or produce it again.
#[derive(Debug, Clone, FromRow)]
pub struct Stored {
    pub record_key: String,
    pub seq: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub header_keys: Vec<String>,
    pub header_values: Vec<Option<Vec<u8>>>,
    pub payload: Option<Vec<u8>>,
    pub state: String,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

impl Stored {
    /// The record as it was received (its original topic, partition and offset).
    pub fn record(&self) -> Record {
        Record {
            topic: self.topic.clone(),
            partition: self.kafka_partition,
            offset: self.kafka_offset,
            timestamp: None,
            key: Some(self.record_key.clone().into_bytes()),
            headers: self
                .header_keys
                .iter()
                .cloned()
                .zip(self.header_values.iter().cloned())
                .collect(),
            payload: self.payload.clone(),
            event: None,
        }
    }
}

const STORED_COLUMNS: &str = "record_key, seq, event_id, event_type, topic, kafka_partition, \
     kafka_offset, header_keys, header_values, payload, state, reason, error, parked_at";

/// Lock and read every row of these keys, in key then `seq` order: one indexed query per batch.
pub async fn lock_keys(
    tx: &mut PgConnection,
    consumer: &str,
    keys: &[String],
) -> sqlx::Result<Vec<Parked>> {
    sqlx::query_as(
        "SELECT record_key, seq, event_id, state, reason, error FROM parked_events
         WHERE consumer = $1 AND record_key = ANY($2)
         ORDER BY record_key, seq FOR UPDATE",
    )
    .bind(consumer)
    .bind(keys)
    .fetch_all(tx)
    .await
}

/// Every row of one key, locked, in `seq` order, with payloads (for a drain).
pub async fn lock_key_stored(
    tx: &mut PgConnection,
    consumer: &str,
    key: &str,
) -> sqlx::Result<Vec<Stored>> {
    sqlx::query_as(&format!(
        "SELECT {STORED_COLUMNS} FROM parked_events
         WHERE consumer = $1 AND record_key = $2 ORDER BY seq FOR UPDATE"
    ))
    .bind(consumer)
    .bind(key)
    .fetch_all(tx)
    .await
}

/// Every row of a consumer, in key then `seq` order (for `orderflow dlq parked` and redrive).
pub async fn all(db: impl PgExecutor<'_>, consumer: &str) -> sqlx::Result<Vec<Stored>> {
    sqlx::query_as(&format!(
        "SELECT {STORED_COLUMNS} FROM parked_events
         WHERE consumer = $1 ORDER BY record_key, seq"
    ))
    .bind(consumer)
    .fetch_all(db)
    .await
}

/// One row by event id, if any.
pub async fn by_event(
    db: impl PgExecutor<'_>,
    consumer: &str,
    event_id: Uuid,
) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as(&format!(
        "SELECT {STORED_COLUMNS} FROM parked_events WHERE consumer = $1 AND event_id = $2"
    ))
    .bind(consumer)
    .bind(event_id)
    .fetch_optional(db)
    .await
}

/// Store `record` under `state`. A row of the same event already there is left as it is, unless
/// `state` is `DEAD_LETTERED`: a dead letter (again) takes the row over with its new reason,
/// keeping its place in the key's order. An event this consumer has in its inbox (applied, or
/// discarded) is not stored. True when a row was written.
pub async fn store(
    db: impl PgExecutor<'_>,
    consumer: &str,
    key: &str,
    record: &Record,
    state: &str,
    dead: Option<(Reason, &str)>,
) -> sqlx::Result<bool> {
    let (keys, values): (Vec<String>, Vec<Option<Vec<u8>>>) =
        record.headers.iter().cloned().unzip();
    let on_conflict = if state == DEAD_LETTERED {
        "DO UPDATE SET state = excluded.state, reason = excluded.reason, error = excluded.error,
         topic = excluded.topic, kafka_partition = excluded.kafka_partition,
         kafka_offset = excluded.kafka_offset"
    } else {
        "DO NOTHING"
    };
    let written = sqlx::query(&format!(
        "INSERT INTO parked_events (consumer, record_key, event_id, event_type, topic,
             kafka_partition, kafka_offset, header_keys, header_values, payload, state, reason, error)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
         WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $3)
         ON CONFLICT (consumer, event_id) {on_conflict}"
    ))
    .bind(consumer)
    .bind(key)
    .bind(record.event_id())
    .bind(record.event_type())
    .bind(&record.topic)
    .bind(record.partition)
    .bind(record.offset)
    .bind(keys)
    .bind(values)
    .bind(record.payload.as_deref())
    .bind(state)
    .bind(dead.map(|(reason, _)| reason.as_str()))
    .bind(dead.map(|(_, error)| error))
    .execute(db)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Set a row's state (and, for a dead letter, why).
pub async fn set_state(
    db: impl PgExecutor<'_>,
    consumer: &str,
    event_id: Uuid,
    state: &str,
    dead: Option<(Reason, &str)>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE parked_events SET state = $3, reason = coalesce($4, reason), error = coalesce($5, error)
         WHERE consumer = $1 AND event_id = $2",
    )
    .bind(consumer)
    .bind(event_id)
    .bind(state)
    .bind(dead.map(|(reason, _)| reason.as_str()))
    .bind(dead.map(|(_, error)| error))
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Delete a row: its event was applied or discarded.
pub async fn remove(db: impl PgExecutor<'_>, consumer: &str, event_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM parked_events WHERE consumer = $1 AND event_id = $2")
        .bind(consumer)
        .bind(event_id)
        .execute(db)
        .await?;
    Ok(())
}
