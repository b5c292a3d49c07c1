//! Reactions: what a saga consumer does with one event, as a plain function of the event and the
//! runtime's database transaction. A consumer's `Reactions` names once the event types it handles
//! (the runtime filters on the `event_type` header before decoding anything) and applies one
//! event's effects on the transaction it is given; it never begins or commits a transaction,
//! retries, or produces to Kafka itself. Its errors say what the runtime should do next: retry
//! (`Transient`) or dead-letter (`Refused`).
//!
//! [`Transactional`] turns a `Reactions` into the runtime's [`Handler`]: every record of a batch is
//! recorded in the inbox and applied on one transaction, so a batch of a partition shares one
//! commit; a refused record rolls the batch back and the runtime applies its records one by one.

use std::future::Future;
use std::pin::Pin;

use orderflow_schemas::AnyEvent;
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::{PgConnection, PgPool};

use crate::classify;
use crate::dead_letter::Reason;
use crate::handler::{Applied, Batch, BatchError, BatchFuture, Handler, Interest};
use crate::inbox;

/// What a reaction may touch: its service's database, on the runtime's transaction, and the outbox.
pub struct Effects<'a> {
    pub tx: &'a mut PgConnection,
    pub outbox: &'a Outbox,
    /// The trace context of the event being handled; events the reaction writes continue it.
    pub trace: &'a TraceContext,
}

pub type ReactionFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ReactionError>> + Send + 'a>>;

/// The reactions of one consumer.
pub trait Reactions: Send + Sync + 'static {
    /// The full names of the event types this consumer reacts to (`orderflow.orders.OrderPlaced`).
    /// Records of any other type are skipped without being decoded or touching the database.
    fn event_types(&self) -> &'static [&'static str];

    /// Apply `event`'s effects. Called only for events of the types above.
    fn react<'a>(&'a self, event: &'a AnyEvent, effects: Effects<'a>) -> ReactionFuture<'a>;
}

impl<R: Reactions + ?Sized> Reactions for std::sync::Arc<R> {
    fn event_types(&self) -> &'static [&'static str] {
        (**self).event_types()
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, effects: Effects<'a>) -> ReactionFuture<'a> {
        (**self).react(event, effects)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The event cannot be applied, now or ever (the state machine refuses it, it contradicts what the
    /// database holds): it goes to the dead-letter topic with this reason.
    #[error("refused: {0}")]
    Refused(String),
    /// Something outside the event failed (database or registry unavailable, a serialization
    /// conflict): the runtime rolls back and tries again after a backoff, never skipping the event.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
}

impl ReactionError {
    /// Classify any error by its cause (see [`classify::is_transient`]).
    pub fn classify(error: anyhow::Error) -> Self {
        if classify::is_transient(&error) {
            ReactionError::Transient(error)
        } else {
            ReactionError::Refused(format!("{error:#}"))
        }
    }
}

impl From<sqlx::Error> for ReactionError {
    fn from(error: sqlx::Error) -> Self {
        ReactionError::classify(error.into())
    }
}

impl From<anyhow::Error> for ReactionError {
    fn from(error: anyhow::Error) -> Self {
        ReactionError::classify(error)
    }
}

/// A `Reactions` run on the database: inbox row and effects of every record of a batch on one
/// transaction.
pub struct Transactional<R> {
    pub reactions: R,
    pub pool: PgPool,
    pub outbox: Outbox,
}

impl<R: Reactions> Transactional<R> {
    async fn apply_all(&self, batch: &Batch<'_>) -> Result<Applied, BatchError> {
        let mut tx = self.pool.begin().await.map_err(transient)?;
        let mut applied = Applied::default();
        for (index, record) in batch.records.iter().enumerate() {
            let Some(event) = &record.event else {
                continue;
            };
            let delivery = inbox::Delivery {
                consumer: batch.consumer,
                event_id: event.event_id().as_uuid(),
                event_type: event.name(),
                topic: &record.topic,
                partition: record.partition,
                offset: record.offset,
            };
            if !inbox::record(&mut tx, &delivery).await.map_err(transient)? {
                tracing::info!(event_id = %delivery.event_id, event_type = delivery.event_type, "already applied; skipped");
                applied.duplicates += 1;
                continue;
            }
            let trace = TraceContext::continue_from(record.header("traceparent"));
            let effects = Effects {
                tx: &mut tx,
                outbox: &self.outbox,
                trace: &trace,
            };
            match self.reactions.react(event, effects).await {
                Ok(()) => {
                    tracing::debug!(event_id = %delivery.event_id, event_type = delivery.event_type, offset = record.offset, "applied");
                }
                Err(ReactionError::Refused(reason)) => {
                    drop(tx);
                    if batch.records.len() == 1 {
                        applied.dead_letters.push((index, Reason::Refused, reason));
                        return Ok(applied);
                    }
                    return Err(BatchError::Split(reason));
                }
                Err(ReactionError::Transient(error)) => return Err(BatchError::Transient(error)),
            }
        }
        tx.commit().await.map_err(transient)?;
        Ok(applied)
    }
}

fn transient(error: sqlx::Error) -> BatchError {
    match ReactionError::from(error) {
        ReactionError::Transient(error) => BatchError::Transient(error),
        // A database error no retry fixes (a constraint, say) on the inbox or the commit: the batch
        // is applied record by record, and the record that still fails is dead-lettered.
        ReactionError::Refused(reason) => BatchError::Split(reason),
    }
}

impl<R: Reactions> Handler for Transactional<R> {
    fn interest(&self) -> Interest {
        Interest::Events(self.reactions.event_types())
    }

    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BatchFuture<'a> {
        Box::pin(async move {
            match self.apply_all(batch).await {
                // One record that the database refuses for good: its dead letter.
                Err(BatchError::Split(reason)) if batch.records.len() == 1 => Ok(Applied {
                    dead_letters: vec![(0, Reason::Refused, reason)],
                    duplicates: 0,
                }),
                other => other,
            }
        })
    }
}
