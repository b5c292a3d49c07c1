//! The one small trait every consumer implements. The runtime hands a `Handler` batches of records
//! of one partition (and, within it, of one key lane), in offset order, already filtered on the
//! `event_type` header and decoded; the handler applies a whole batch and says how it went. The saga
//! consumers are [`crate::reactions::Transactional`] handlers; the analytics sink is another.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use orderflow_schemas::AnyEvent;
use rdkafka::Message;
use rdkafka::message::Headers;
use tokio_util::sync::CancellationToken;

use orderflow_schemas::registry::EventCodec;

use crate::backoff::Backoff;
use uuid::Uuid;

use crate::dead_letter::{self, Reason};
use crate::runtime;

/// One Kafka record, owned, with its event once decoded.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (ms since the epoch), as Kafka has it.
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub payload: Option<Vec<u8>>,
    /// The decoded event; `None` when the value could not be decoded (the runtime has
    /// dead-lettered it; only a handler with [`Interest::Everything`] sees such records).
    pub event: Option<AnyEvent>,
}

impl Record {
    /// Copy a message out of the consumer.
    pub fn from_message<M: Message>(message: &M) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            headers,
            payload: message.payload().map(<[u8]>::to_vec),
            event: None,
        }
    }

    /// A header's value as text (the first one of that name).
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The key as text.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The event's id: the decoded event's own, else the connector's `id` header, else the one
    /// redrive put on (`dlq.event_id`), else one derived from where the record was read, so that
    /// even an undecodable record has one stable id.
    pub fn event_id(&self) -> Uuid {
        if let Some(event) = &self.event {
            return event.event_id().as_uuid();
        }
        [ID_HEADER, dead_letter::EVENT_ID]
            .iter()
            .find_map(|name| self.header(name).and_then(|v| Uuid::parse_str(v).ok()))
            .unwrap_or_else(|| {
                let place = format!("kafka:{}/{}/{}", self.topic, self.partition, self.offset);
                Uuid::new_v5(&Uuid::NAMESPACE_URL, place.as_bytes())
            })
    }

    /// The event's type: the decoded event's, else the `event_type` header, else `unknown`.
    pub fn event_type(&self) -> &str {
        match &self.event {
            Some(event) => event.name(),
            None => self.header("event_type").unwrap_or("unknown"),
        }
    }
}

/// The connector's header carrying the event id.
pub const ID_HEADER: &str = "id";

/// Which records a handler is given.
#[derive(Debug, Clone, Copy)]
pub enum Interest {
    /// Only events of these full names (`orderflow.orders.OrderPlaced`): the runtime skips every
    /// other record by its `event_type` header, without decoding it.
    Events(&'static [&'static str]),
    /// Every record, decoded where possible (the archive keeps them all).
    Everything,
}

impl Interest {
    /// Whether a record whose `event_type` header is `event_type` may be of interest. A record
    /// without the header is decoded to find out.
    pub fn admits_header(&self, event_type: Option<&str>) -> bool {
        match (self, event_type) {
            (Interest::Everything, _) | (_, None) => true,
            (Interest::Events(types), Some(name)) => types.contains(&name),
        }
    }

    /// Whether a decoded event of this name is of interest.
    pub fn admits(&self, name: &str) -> bool {
        match self {
            Interest::Everything => true,
            Interest::Events(types) => types.contains(&name),
        }
    }
}

/// A batch as the handler sees it: the records, the consumer's name, and the runtime's ways to
/// wait out a transient failure and to decode a value, both of which end early when the partition
/// is revoked or the consumer stops.
pub struct Batch<'a> {
    pub consumer: &'static str,
    pub records: &'a [Record],
    pub(crate) cancel: &'a CancellationToken,
    pub(crate) codec: &'a EventCodec,
    pub(crate) retry_cap: Duration,
}

impl Batch<'_> {
    /// Sleep the backoff's next delay after a transient failure at `stage`; `Err(Cancelled)` when
    /// the batch must be given up instead (it stays uncommitted and is delivered again).
    pub async fn pause(
        &self,
        stage: &'static str,
        error: &str,
        backoff: &mut Backoff,
    ) -> Result<(), BatchError> {
        runtime::wait_out(self.consumer, stage, error, backoff, self.cancel)
            .await
            .map_err(|_| BatchError::Cancelled)
    }

    /// Decode a value as the runtime decodes records (retrying while the registry is
    /// unreachable); the inner `Err` is why it can never be decoded.
    pub async fn decode(
        &self,
        payload: Option<&[u8]>,
    ) -> Result<Result<AnyEvent, String>, BatchError> {
        runtime::decode_payload(
            self.consumer,
            self.codec,
            payload,
            self.backoff(),
            self.cancel,
        )
        .await
        .map_err(|_| BatchError::Cancelled)
    }

    /// Whether the batch is to be given up.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The runtime's backoff for retries inside a handler (100 ms doubling up to the consumer's
    /// retry cap).
    pub fn backoff(&self) -> Backoff {
        Backoff::up_to(self.retry_cap)
    }
}

/// How a batch that was applied went.
#[derive(Debug, Default)]
pub struct Applied {
    /// Records (by index in the batch) that can never be applied: the runtime dead-letters them.
    pub dead_letters: Vec<(usize, Reason, String)>,
    /// Records that had been applied before (the inbox had them).
    pub duplicates: usize,
    /// Records of a parked key, stored behind its dead letter instead of applied.
    pub parked: usize,
    /// Parked events applied after their key's redriven dead letter (not records of the batch).
    pub drained: usize,
    /// Parked events, not records of the batch, refused while their key was drained: each is its
    /// key's dead letter now (committed as such), and the runtime produces it to the dead-letter
    /// topic.
    pub drained_dead_letters: Vec<(Record, Reason, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Nothing of the batch was applied and trying again later may succeed: the runtime applies a
    /// batch of several records one at a time, and retries a single record after a backoff,
    /// forever (only its key lane waits).
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Nothing of the batch was applied because one record is refused: the runtime applies the
    /// records one at a time, so only that one is dead-lettered.
    #[error("a record of the batch was refused: {0}")]
    Split(String),
    /// The batch was given up (revocation, shutdown); it stays uncommitted.
    #[error("cancelled")]
    Cancelled,
}

pub type BatchFuture<'a> = Pin<Box<dyn Future<Output = Result<Applied, BatchError>> + Send + 'a>>;

pub type ParkFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// A consumer's processing, as the runtime drives it.
pub trait Handler: Send + Sync + 'static {
    /// Which records it wants.
    fn interest(&self) -> Interest;

    /// Apply a batch: at least one record, all of one partition, in offset order. Called again
    /// with the same records after `Transient`, and with one record at a time after `Split`.
    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BatchFuture<'a>;

    /// `record` is about to be dead-lettered (`consumer`'s dead-letter topic gets it next): a
    /// handler that sequences dead letters parks the record's key here, durably, before the copy is
    /// produced. An error is transient: the runtime retries (stage `park`). Default: nothing.
    fn dead_lettered<'a>(
        &'a self,
        _consumer: &'static str,
        _record: &'a Record,
        _reason: Reason,
        _error: &'a str,
    ) -> ParkFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// The partition was taken away from this consumer (or the consumer stops); whatever the
    /// handler keeps per partition is stale now.
    fn revoked(&self, _topic: &str, _partition: i32) {}
}
