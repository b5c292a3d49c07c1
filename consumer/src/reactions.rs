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
//!
//! It also sequences dead letters ([`crate::parking`]): a dead-lettered record's key is parked
//! (the runtime calls [`Handler::dead_lettered`] before producing the copy), and once per batch
//! one indexed query locks the parked rows of the batch's keys. A record of a parked key is stored
//! behind the dead letter (no inbox row, no effects); the redriven dead letter itself is applied,
//! and then its key's parked events, in order, each under a savepoint: one refused on the way is
//! the key's new dead letter and the rest stay parked. [`Transactional::discard`] drops a dead
//! letter (an inbox row says it is done with) and drains its key the same way.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use orderflow_schemas::AnyEvent;
use orderflow_schemas::registry::EventCodec;
use orderflow_service_kit::{Outbox, TraceContext};
use rdkafka::producer::FutureProducer;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::dead_letter::{self, Reason};
use crate::handler::{
    Applied, Batch, BatchError, BatchFuture, Handler, Interest, ParkFuture, Record,
};
use crate::{classify, inbox, parking, runtime};

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
/// transaction, with dead letters sequenced per key.
pub struct Transactional<R> {
    pub reactions: R,
    pub pool: PgPool,
    pub outbox: Outbox,
}

/// How one event went on a transaction.
enum One {
    Applied,
    Duplicate,
    Refused(String),
}

/// How draining a key ended.
#[derive(Debug, Default)]
pub struct Drained {
    /// Parked events applied (or found applied before).
    pub applied: usize,
    /// The parked event that was refused (or could not be decoded) on the way: the key's dead
    /// letter now, committed as such with the drain; the caller produces its copy after commit.
    pub dead_letter: Option<(Record, Reason, String)>,
    /// The rows left behind it (the new head first), when it stopped.
    pub left: Vec<parking::Parked>,
}

/// What `discard` did.
#[derive(Debug)]
pub struct Discarded {
    pub key: String,
    /// Parked events applied after the dead letter was dropped.
    pub drained: usize,
    /// The event that is the key's dead letter now, if one was refused during the drain.
    pub new_dead_letter: Option<Uuid>,
}

/// How a drain decodes a stored payload: the runtime's decode (retrying while the registry is
/// unreachable, ending when cancelled).
struct Decoder<'a> {
    consumer: &'static str,
    codec: &'a EventCodec,
    cancel: &'a CancellationToken,
    retry_cap: Duration,
}

impl<R: Reactions> Transactional<R> {
    /// The inbox row, then the effects, on `tx`.
    async fn apply_one(
        &self,
        tx: &mut PgConnection,
        consumer: &str,
        record: &Record,
        event: &AnyEvent,
    ) -> Result<One, BatchError> {
        let delivery = inbox::Delivery {
            consumer,
            event_id: event.event_id().as_uuid(),
            event_type: event.name(),
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
        };
        if !inbox::record(&mut *tx, &delivery)
            .await
            .map_err(transient)?
        {
            tracing::info!(event_id = %delivery.event_id, event_type = delivery.event_type, "already applied; skipped");
            return Ok(One::Duplicate);
        }
        let trace = TraceContext::continue_from(record.header("traceparent"));
        let effects = Effects {
            tx: &mut *tx,
            outbox: &self.outbox,
            trace: &trace,
        };
        match self.reactions.react(event, effects).await {
            Ok(()) => {
                tracing::debug!(event_id = %delivery.event_id, event_type = delivery.event_type, offset = record.offset, "applied");
                Ok(One::Applied)
            }
            Err(ReactionError::Refused(reason)) => Ok(One::Refused(reason)),
            Err(ReactionError::Transient(error)) => Err(BatchError::Transient(error)),
        }
    }

    async fn apply_all(&self, batch: &Batch<'_>) -> Result<Applied, BatchError> {
        let mut tx = self.pool.begin().await.map_err(transient)?;
        let mut applied = Applied::default();
        // The batch's parked keys, locked for this transaction: one indexed query.
        let keys: Vec<String> = batch
            .records
            .iter()
            .filter(|r| r.event.is_some())
            .filter_map(|r| r.key_str().map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut parked: HashMap<String, Vec<parking::Parked>> = HashMap::new();
        if !keys.is_empty() {
            for row in parking::lock_keys(&mut tx, batch.consumer, &keys)
                .await
                .map_err(transient)?
            {
                parked.entry(row.record_key.clone()).or_default().push(row);
            }
        }
        let decoder = Decoder {
            consumer: batch.consumer,
            codec: batch.codec,
            cancel: batch.cancel,
            retry_cap: batch.retry_cap,
        };
        for (index, record) in batch.records.iter().enumerate() {
            let Some(event) = &record.event else {
                continue;
            };
            let event_id = event.event_id().as_uuid();
            let rows = record
                .key_str()
                .and_then(|key| parked.get_mut(key).map(|rows| (key, rows)))
                .filter(|(_, rows)| !rows.is_empty());
            // A record of a key with nothing parked, and the redriven dead letter at the head of
            // its key, are applied; the latter then lets out what was parked behind it.
            let redriven = rows.as_ref().is_some_and(|(_, rows)| {
                rows[0].event_id == event_id && rows[0].state == parking::REDRIVEN
            });
            if rows.is_none() || redriven {
                match self
                    .apply_one(&mut tx, batch.consumer, record, event)
                    .await?
                {
                    One::Applied => {}
                    One::Duplicate => applied.duplicates += 1,
                    One::Refused(reason) => {
                        drop(tx);
                        return refused(batch, index, reason);
                    }
                }
            }
            let Some((key, rows)) = rows else {
                continue;
            };
            let head = &rows[0];
            if redriven {
                parking::remove(&mut *tx, batch.consumer, event_id)
                    .await
                    .map_err(transient)?;
                tracing::info!(consumer = batch.consumer, key, %event_id, "redriven dead letter applied; draining its key");
                let drained = self.drain(&mut tx, batch.consumer, key, &decoder).await?;
                applied.drained += drained.applied;
                applied.drained_dead_letters.extend(drained.dead_letter);
                *rows = drained.left;
            } else if head.event_id == event_id && head.state == parking::DEAD_LETTERED {
                // The dead letter delivered again (its offset was not committed): its copy may not
                // have reached the dead-letter topic, so it is dead-lettered again.
                let reason = head
                    .reason
                    .as_deref()
                    .map_or(Reason::Refused, Reason::parse);
                let error = head.error.clone().unwrap_or_default();
                applied.dead_letters.push((index, reason, error));
            } else if rows.iter().any(|r| r.event_id == event_id) {
                applied.duplicates += 1;
            } else {
                let stored =
                    parking::store(&mut *tx, batch.consumer, key, record, parking::PARKED, None)
                        .await
                        .map_err(transient)?;
                if stored {
                    tracing::info!(consumer = batch.consumer, key, %event_id, event_type = event.name(), "parked behind its key's dead letter");
                    applied.parked += 1;
                } else {
                    applied.duplicates += 1;
                }
                rows.push(parking::Parked {
                    record_key: key.to_owned(),
                    seq: i64::MAX,
                    event_id,
                    state: parking::PARKED.into(),
                    reason: None,
                    error: None,
                });
            }
        }
        tx.commit().await.map_err(transient)?;
        Ok(applied)
    }

    /// Apply the parked events of `key` in order, each under a savepoint, until one is refused
    /// (it becomes the key's dead letter) or a dead letter is reached; every row applied is
    /// deleted. On the caller's transaction, whose commit makes it so.
    async fn drain(
        &self,
        tx: &mut PgConnection,
        consumer: &'static str,
        key: &str,
        decoder: &Decoder<'_>,
    ) -> Result<Drained, BatchError> {
        let rows = parking::lock_key_stored(&mut *tx, consumer, key)
            .await
            .map_err(transient)?;
        let mut drained = Drained::default();
        let mut rows = rows.into_iter();
        while let Some(row) = rows.next() {
            let stop = |row: &parking::Stored, rest: std::vec::IntoIter<parking::Stored>| {
                std::iter::once(row.clone())
                    .chain(rest)
                    .map(|r| parking::Parked {
                        record_key: r.record_key,
                        seq: r.seq,
                        event_id: r.event_id,
                        state: r.state,
                        reason: r.reason,
                        error: r.error,
                    })
                    .collect::<Vec<_>>()
            };
            if row.state == parking::DEAD_LETTERED {
                drained.left = stop(&row, rows);
                return Ok(drained);
            }
            let mut record = row.record();
            let event = match runtime::decode_payload(
                decoder.consumer,
                decoder.codec,
                record.payload.as_deref(),
                Backoff::up_to(decoder.retry_cap),
                decoder.cancel,
            )
            .await
            .map_err(|_| BatchError::Cancelled)?
            {
                Ok(event) => event,
                Err(error) => {
                    drained.dead_letter = Some((record, Reason::Undecodable, error));
                    break;
                }
            };
            record.event = Some(event.clone());
            let mut savepoint = tx.begin().await.map_err(transient)?;
            match self
                .apply_one(&mut savepoint, consumer, &record, &event)
                .await?
            {
                One::Applied | One::Duplicate => {
                    savepoint.commit().await.map_err(transient)?;
                    parking::remove(&mut *tx, consumer, row.event_id)
                        .await
                        .map_err(transient)?;
                    drained.applied += 1;
                }
                One::Refused(reason) => {
                    savepoint.rollback().await.map_err(transient)?;
                    drained.dead_letter = Some((record, Reason::Refused, reason));
                    // The refused row is the head now; what follows stays parked behind it.
                    let mut left = stop(&row, rows);
                    left[0].state = parking::DEAD_LETTERED.into();
                    drained.left = left;
                    break;
                }
            }
        }
        if let Some((record, reason, error)) = &drained.dead_letter {
            let event_id = record.event_id();
            parking::set_state(
                &mut *tx,
                consumer,
                event_id,
                parking::DEAD_LETTERED,
                Some((*reason, error)),
            )
            .await
            .map_err(transient)?;
            tracing::warn!(consumer, key, %event_id, reason = reason.as_str(), error, "a parked event was refused while its key was drained; it is the key's dead letter now");
            if drained.left.is_empty() {
                // Undecodable: it and what follows stay.
                drained.left = parking::lock_key_stored(&mut *tx, consumer, key)
                    .await
                    .map_err(transient)?
                    .into_iter()
                    .map(|r| parking::Parked {
                        record_key: r.record_key,
                        seq: r.seq,
                        event_id: r.event_id,
                        state: r.state,
                        reason: r.reason,
                        error: r.error,
                    })
                    .collect();
            }
        }
        Ok(drained)
    }

    /// Drop the dead letter `event_id` of `consumer` for good: it must be the head of its key (the
    /// oldest of the key's parked events, dead-lettered or redriven). An inbox row records it as
    /// done with, so a copy still on its way has no effect; then the key's parked events are
    /// applied in order, as after a redrive. A parked event refused on the way is the key's new
    /// dead letter, and its copy is produced to the dead-letter topic with `producer`.
    pub async fn discard(
        &self,
        consumer: &'static str,
        event_id: Uuid,
        codec: &EventCodec,
        producer: &FutureProducer,
    ) -> anyhow::Result<Discarded> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = parking::by_event(&mut *tx, consumer, event_id).await? else {
            anyhow::bail!(
                "{consumer} has no dead letter {event_id} (`orderflow dlq parked {consumer}` lists them)"
            );
        };
        let rows = parking::lock_key_stored(&mut tx, consumer, &row.record_key).await?;
        let head = rows
            .first()
            .context("the dead letter was applied or discarded meanwhile")?;
        anyhow::ensure!(
            head.event_id == event_id && head.state != parking::PARKED,
            "event {event_id} is not the dead letter of key {}: it is parked behind {} ({}); discard or redrive that one first",
            row.record_key,
            head.event_id,
            head.state
        );
        parking::remove(&mut *tx, consumer, event_id).await?;
        inbox::record(
            &mut tx,
            &inbox::Delivery {
                consumer,
                event_id,
                event_type: &head.event_type,
                topic: &head.topic,
                partition: head.kafka_partition,
                offset: head.kafka_offset,
            },
        )
        .await?;
        let cancel = CancellationToken::new();
        let decoder = Decoder {
            consumer,
            codec,
            cancel: &cancel,
            retry_cap: Duration::from_secs(5),
        };
        let drained = self
            .drain(&mut tx, consumer, &row.record_key, &decoder)
            .await
            .map_err(|e| anyhow::anyhow!("draining key {}: {e}", row.record_key))?;
        tx.commit().await?;
        tracing::info!(consumer, key = %row.record_key, %event_id, drained = drained.applied, "dead letter discarded");
        let new_dead_letter = match &drained.dead_letter {
            Some((record, reason, error)) => {
                dead_letter::send(producer, consumer, record, *reason, error).await?;
                Some(record.event_id())
            }
            None => None,
        };
        Ok(Discarded {
            key: row.record_key,
            drained: drained.applied,
            new_dead_letter,
        })
    }
}

/// A refused record: the batch is split (several records), or this is its dead letter (one).
fn refused(batch: &Batch<'_>, index: usize, reason: String) -> Result<Applied, BatchError> {
    if batch.records.len() == 1 {
        Ok(Applied {
            dead_letters: vec![(index, Reason::Refused, reason)],
            ..Applied::default()
        })
    } else {
        Err(BatchError::Split(reason))
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
                    ..Applied::default()
                }),
                other => other,
            }
        })
    }

    /// Park the record's key behind it: the dead letter is the head of the key's parked events
    /// (committed before its copy is produced). A record without a key is not sequenced.
    fn dead_lettered<'a>(
        &'a self,
        consumer: &'static str,
        record: &'a Record,
        reason: Reason,
        error: &'a str,
    ) -> ParkFuture<'a> {
        Box::pin(async move {
            let Some(key) = record.key_str() else {
                return Ok(());
            };
            parking::store(
                &self.pool,
                consumer,
                key,
                record,
                parking::DEAD_LETTERED,
                Some((reason, error)),
            )
            .await
            .context("parking the key of a dead letter")?;
            Ok(())
        })
    }
}
