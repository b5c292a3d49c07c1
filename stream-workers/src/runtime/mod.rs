//! The consumer runtime. One `Worker` runs one consumer group: it receives records with rdkafka,
//! decodes them through the registry, and for each event its `Reactions` handle it runs, in one
//! database transaction, the inbox insert and the reaction's effects; only after that commits is the
//! record's offset stored for committing. Transient failures are retried with capped backoff, on the
//! same record, forever; permanent ones go to the dead-letter topic and the worker moves on.
//!
//! Records of one partition are handled one at a time, in order, so per-order ordering holds.

pub mod backoff;
pub mod dead_letter;
pub mod health;
pub mod inbox;
pub mod reaction;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orderflow_platform::StackConfig;
use orderflow_schemas::AnyEvent;
use orderflow_schemas::registry::EventCodec;
use orderflow_service_kit::{Outbox, TraceContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tracing::Instrument;

use self::backoff::Backoff;
use self::dead_letter::Reason;
use self::reaction::{Effects, ReactionError, Reactions};

/// One consumer of the saga, as data.
#[derive(Clone)]
pub struct ConsumerSpec {
    /// The consumer group id; also names the inbox rows and the dead-letter topic `<name>.dlq`.
    pub name: &'static str,
    /// The service database its reactions write to.
    pub database: &'static str,
    /// That service's migrations (the inbox table comes with the kit's).
    pub migrations: &'static Migrator,
    /// The topics it reads.
    pub topics: &'static [&'static str],
    pub reactions: Arc<dyn Reactions>,
}

pub struct Worker {
    spec: ConsumerSpec,
    consumer: Arc<StreamConsumer>,
    producer: FutureProducer,
    pool: PgPool,
    codec: EventCodec,
    outbox: Outbox,
}

/// How one record ended.
enum Outcome {
    Applied,
    Duplicate,
    NotHandled,
    DeadLettered,
}

impl Worker {
    /// Connect to the service database (migrating it), the registry and Kafka, and subscribe.
    pub async fn connect(stack: &StackConfig, spec: ConsumerSpec) -> anyhow::Result<Self> {
        let pool = orderflow_service_kit::database::connect_and_migrate(
            &stack.postgres,
            spec.database,
            spec.migrations,
        )
        .await?;
        let codec = EventCodec::new(&stack.registry_url)?;
        let outbox = Outbox::new(&stack.registry_url)?;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .set("group.id", spec.name)
            .set("client.id", spec.name)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create()
            .with_context(|| format!("creating the Kafka consumer {}", spec.name))?;
        consumer
            .subscribe(spec.topics)
            .with_context(|| format!("subscribing {} to {:?}", spec.name, spec.topics))?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .set("enable.idempotence", "true")
            .create()
            .context("creating the dead-letter producer")?;
        Ok(Self {
            spec,
            consumer: Arc::new(consumer),
            producer,
            pool,
            codec,
            outbox,
        })
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn consumer(&self) -> Arc<StreamConsumer> {
        self.consumer.clone()
    }

    /// Handle records until `shutdown` resolves; the record in hand is finished first, and the stored
    /// offsets are committed before returning.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let lag = health::spawn_lag_reporter(self.spec.name, self.consumer.clone());
        inbox::spawn_janitor(self.pool.clone(), Duration::from_secs(30 * 24 * 3600));
        tracing::info!(consumer = self.spec.name, topics = ?self.spec.topics, "consuming");
        tokio::pin!(shutdown);
        loop {
            let message = tokio::select! {
                _ = &mut shutdown => break,
                received = self.consumer.recv() => received,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(consumer = self.spec.name, %error, "Kafka error while receiving; continuing");
                    metrics::counter!("orderflow_consumer_errors_total", "consumer" => self.spec.name).increment(1);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let outcome = self.handle(&message).await;
            let label = match outcome {
                Outcome::Applied => "applied",
                Outcome::Duplicate => "duplicate",
                Outcome::NotHandled => "not_handled",
                Outcome::DeadLettered => "dead_lettered",
            };
            metrics::counter!("orderflow_events_total", "consumer" => self.spec.name, "outcome" => label).increment(1);
            if let Err(error) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(consumer = self.spec.name, %error, "could not store the offset; the record may be seen again (the inbox makes that harmless)");
            }
        }
        lag.abort();
        tracing::info!(
            consumer = self.spec.name,
            "shutting down: committing offsets"
        );
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last automatic commit is also a (harmless) error.
            tracing::debug!(consumer = self.spec.name, %error, "final commit");
        }
        Ok(())
    }

    async fn handle(&self, message: &BorrowedMessage<'_>) -> Outcome {
        let span = tracing::info_span!(
            "record",
            consumer = self.spec.name,
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset()
        );
        self.decode_and_apply(message).instrument(span).await
    }

    /// Decode, then apply once; retries transient failures until they pass.
    async fn decode_and_apply(&self, message: &BorrowedMessage<'_>) -> Outcome {
        let Some(payload) = message.payload() else {
            return self
                .dead_letter(message, Reason::Undecodable, "the record has no value")
                .await;
        };
        let mut backoff = Backoff::default();
        let event = loop {
            match self.codec.decode(payload).await {
                Ok(event) => break event,
                Err(error) if error.is_retriable() => {
                    self.retry("decode", &error.to_string(), &mut backoff).await;
                }
                Err(error) => {
                    return self
                        .dead_letter(message, Reason::Undecodable, &error.to_string())
                        .await;
                }
            }
        };
        if !self.spec.reactions.handles(&event) {
            return Outcome::NotHandled;
        }
        let trace = TraceContext::continue_from(header(message, "traceparent").as_deref());
        loop {
            match self.apply(message, &event, &trace).await {
                Ok(true) => return Outcome::Applied,
                Ok(false) => return Outcome::Duplicate,
                Err(ReactionError::Refused(reason)) => {
                    return self.dead_letter(message, Reason::Refused, &reason).await;
                }
                Err(ReactionError::Transient(error)) => {
                    self.retry("apply", &format!("{error:#}"), &mut backoff)
                        .await
                }
            }
        }
    }

    /// One attempt: inbox + effects in one transaction. Ok(false): already applied before.
    async fn apply(
        &self,
        message: &BorrowedMessage<'_>,
        event: &AnyEvent,
        trace: &TraceContext,
    ) -> Result<bool, ReactionError> {
        let mut tx = self.pool.begin().await?;
        let delivery = inbox::Delivery {
            consumer: self.spec.name,
            event_id: event.event_id().as_uuid(),
            event_type: event.name(),
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        };
        if !inbox::record(&mut tx, &delivery).await? {
            tx.rollback().await?;
            tracing::info!(event_id = %delivery.event_id, event_type = delivery.event_type, "already applied; skipped");
            return Ok(false);
        }
        let effects = Effects {
            tx: &mut tx,
            outbox: &self.outbox,
            trace,
        };
        self.spec.reactions.react(event, effects).await?;
        tx.commit().await?;
        tracing::info!(event_id = %delivery.event_id, event_type = delivery.event_type, "applied");
        Ok(true)
    }

    async fn retry(&self, stage: &'static str, error: &str, backoff: &mut Backoff) {
        let delay = backoff.next_delay();
        metrics::counter!("orderflow_retries_total", "consumer" => self.spec.name, "stage" => stage).increment(1);
        tracing::warn!(
            stage,
            error,
            attempt = backoff.attempts(),
            delay_ms = delay.as_millis() as u64,
            "transient failure; retrying"
        );
        tokio::time::sleep(delay).await;
    }

    /// Send the record to the dead-letter topic; keeps trying until Kafka has it, since moving on
    /// without it would lose the record.
    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: Reason,
        error: &str,
    ) -> Outcome {
        tracing::error!(
            reason = reason.as_str(),
            error,
            "permanent failure; dead-lettering the record"
        );
        let mut backoff = Backoff::default();
        while let Err(e) =
            dead_letter::send(&self.producer, self.spec.name, message, reason, error).await
        {
            self.retry("dead_letter", &format!("{e:#}"), &mut backoff)
                .await;
        }
        metrics::counter!("orderflow_dead_letters_total", "consumer" => self.spec.name, "reason" => reason.as_str()).increment(1);
        Outcome::DeadLettered
    }
}

/// A header's value as text.
pub fn header(message: &BorrowedMessage<'_>, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
