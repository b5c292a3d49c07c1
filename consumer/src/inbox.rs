//! The inbox: the record, in the consumer's own database and on the reaction's transaction, of every
//! event a consumer has applied. Recording comes first: if the event is already there the transaction
//! is rolled back untouched, so a redelivered event has no second effect.

use sqlx::PgConnection;
use uuid::Uuid;

pub struct Delivery<'a> {
    pub consumer: &'a str,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Record the event; false when this consumer has already applied it.
pub async fn record(tx: &mut PgConnection, delivery: &Delivery<'_>) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, event_id, event_type, topic, kafka_partition, kafka_offset)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(delivery.consumer)
    .bind(delivery.event_id)
    .bind(delivery.event_type)
    .bind(delivery.topic)
    .bind(delivery.partition)
    .bind(delivery.offset)
    .execute(tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Whether this consumer has the event in its inbox (applied, or discarded as a dead letter).
pub async fn contains(
    db: impl sqlx::PgExecutor<'_>,
    consumer: &str,
    event_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2)")
        .bind(consumer)
        .bind(event_id)
        .fetch_one(db)
        .await
}

/// The inbox's rows expire after a retention far longer than any redelivery window.
pub const EXPIRING: orderflow_service_kit::database::Expiring =
    orderflow_service_kit::database::Expiring {
        table: "inbox",
        column: "processed_at",
    };
