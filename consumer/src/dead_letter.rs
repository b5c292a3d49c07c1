//! Dead letters: a record a consumer cannot apply, ever, goes to its `<consumer>.dlq` topic unchanged
//! (same key, value and headers) with `dlq.*` headers saying why and where it came from. `list` reads
//! them back; `redrive` puts them back on their original topic.
//!
//! A consumer with a database sequences its dead letters (see [`crate::parking`]): the dead letter
//! is the head of its key's parked events there, and redrive produces those heads (marking them
//! `REDRIVEN` first), then what is on the topic without a row (records without a key, or older
//! than sequencing) and not in the consumer's inbox. Redrive partitions like Kafka Connect's Java
//! producer (murmur2 of the key; librdkafka's default CRC32 would put a redriven record on another
//! partition than the rest of its order), keeps the original headers byte for byte (without the
//! `dlq.*` ones) and adds `dlq.redriven_from` and `dlq.event_id`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use sqlx::PgPool;
use uuid::Uuid;

use crate::handler::Record;
use crate::parking;

pub const REASON: &str = "dlq.reason";
pub const ERROR: &str = "dlq.error";
pub const CONSUMER: &str = "dlq.consumer";
pub const ORIGINAL_TOPIC: &str = "dlq.original.topic";
pub const ORIGINAL_PARTITION: &str = "dlq.original.partition";
pub const ORIGINAL_OFFSET: &str = "dlq.original.offset";
pub const FAILED_AT: &str = "dlq.failed_at";
/// The event id the consumer parked the record under (see [`Record::event_id`]).
pub const EVENT_ID: &str = "dlq.event_id";
/// On a redriven record: where it was redriven from.
pub const REDRIVEN_FROM: &str = "dlq.redriven_from";

/// Why a record was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The bytes are not a Confluent-framed Avro value of a known schema.
    Undecodable,
    /// The reaction refused the event (the state machine, or what the database holds).
    Refused,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Undecodable => "undecodable",
            Reason::Refused => "refused",
        }
    }

    /// The reason `as_str` names (anything else counts as refused).
    pub fn parse(text: &str) -> Self {
        match text {
            "undecodable" => Reason::Undecodable,
            _ => Reason::Refused,
        }
    }
}

/// The dead-letter topic of a consumer.
pub fn topic_of(consumer: &str) -> String {
    orderflow_platform::topics::dead_letter_topic(consumer)
}

/// Produce `record` to the consumer's dead-letter topic and wait until Kafka has it.
pub async fn send(
    producer: &FutureProducer,
    consumer: &str,
    record: &Record,
    reason: Reason,
    error: &str,
) -> anyhow::Result<()> {
    let mut headers = OwnedHeaders::new();
    for (key, value) in &record.headers {
        headers = headers.insert(Header {
            key,
            value: value.as_deref(),
        });
    }
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let failed_at = chrono::Utc::now().to_rfc3339();
    let event_id = record.event_id().to_string();
    for (key, value) in [
        (EVENT_ID, event_id.as_str()),
        (REASON, reason.as_str()),
        (ERROR, error),
        (CONSUMER, consumer),
        (ORIGINAL_TOPIC, record.topic.as_str()),
        (ORIGINAL_PARTITION, partition.as_str()),
        (ORIGINAL_OFFSET, offset.as_str()),
        (FAILED_AT, failed_at.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let topic = topic_of(consumer);
    let mut letter = FutureRecord::<[u8], [u8]>::to(&topic).headers(headers);
    if let Some(key) = &record.key {
        letter = letter.key(key);
    }
    if let Some(payload) = &record.payload {
        letter = letter.payload(payload);
    }
    producer
        .send(letter, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
    Ok(())
}

/// A dead letter as `list` shows it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The headers as text (lossy), for display.
    pub headers: BTreeMap<String, String>,
    /// The headers byte for byte, in order.
    pub raw_headers: Vec<(String, Option<Vec<u8>>)>,
    pub payload: Option<Vec<u8>>,
    /// Whether `redrive` has already put it back.
    pub redriven: bool,
}

impl DeadLetter {
    pub fn header(&self, key: &str) -> &str {
        self.headers.get(key).map(String::as_str).unwrap_or("")
    }

    /// The event id the consumer parked it under, when the letter says.
    pub fn event_id(&self) -> Option<Uuid> {
        Uuid::parse_str(self.header(EVENT_ID)).ok()
    }
}

fn redrive_group(consumer: &str) -> String {
    format!("{consumer}.dlq-redrive")
}

fn base_consumer(bootstrap: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating a Kafka consumer")
}

/// Every dead letter of `consumer`, oldest first per partition.
pub fn list(bootstrap: &str, consumer: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let topic = topic_of(consumer);
    let reader = base_consumer(bootstrap, &redrive_group(consumer))?;
    let metadata = reader
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {topic} does not exist (run `orderflow topics`)"
    );

    let mut wanted = TopicPartitionList::new();
    for p in &partitions {
        wanted.add_partition(&topic, *p);
    }
    let committed = reader.committed_offsets(wanted, Duration::from_secs(10))?;
    let mut letters = Vec::new();
    for partition in partitions {
        let (low, high) = reader.fetch_watermarks(&topic, partition, Duration::from_secs(10))?;
        if high <= low {
            continue;
        }
        let redriven_below = match committed
            .find_partition(&topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o,
            _ => low,
        };
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, partition, Offset::Offset(low))?;
        reader.assign(&assignment)?;
        let mut next = low;
        while next < high {
            let message = match reader.poll(Duration::from_secs(10)) {
                Some(m) => m.with_context(|| format!("reading {topic}"))?,
                None => anyhow::bail!(
                    "timed out reading {topic} partition {partition} at offset {next}"
                ),
            };
            next = message.offset() + 1;
            let raw_headers: Vec<(String, Option<Vec<u8>>)> = message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            let headers = raw_headers
                .iter()
                .map(|(k, v)| {
                    let value = v
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    (k.clone(), value)
                })
                .collect();
            letters.push(DeadLetter {
                partition,
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                headers,
                raw_headers,
                payload: message.payload().map(<[u8]>::to_vec),
                redriven: message.offset() < redriven_below,
            });
        }
    }
    Ok(letters)
}

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// Records produced back onto their original topics.
    pub produced: usize,
    /// Dead letters on the topic left alone: their event was applied or discarded since (the inbox
    /// has it), or it is parked behind an earlier dead letter of its key.
    pub skipped: usize,
}

/// The producer redrive uses: idempotent, and partitioning like Kafka Connect's Java producer
/// (murmur2 of the key bytes), so a redriven record lands on its key's partition.
pub fn redrive_producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()
        .context("creating a Kafka producer")
}

/// Put the dead letters of `consumer` back on their original topics (see the module's comment).
/// `db` is the consumer's database, when it has one (the saga's consumers); `again` also produces
/// heads redriven before and not applied yet (in case that copy was lost).
pub async fn redrive(
    bootstrap: &str,
    consumer: &str,
    db: Option<&PgPool>,
    again: bool,
) -> anyhow::Result<Redriven> {
    let topic = topic_of(consumer);
    let letters = {
        let (bootstrap, consumer) = (bootstrap.to_string(), consumer.to_string());
        tokio::task::spawn_blocking(move || list(&bootstrap, &consumer)).await??
    };
    let producer = redrive_producer(bootstrap)?;
    let mut report = Redriven::default();
    let mut rows: Vec<parking::Stored> = Vec::new();
    if let Some(db) = db {
        rows = parking::all(db, consumer)
            .await
            .with_context(|| format!("reading the parked events of {consumer}"))?;
        let mut heads: BTreeMap<&str, &parking::Stored> = BTreeMap::new();
        for row in &rows {
            heads.entry(row.record_key.as_str()).or_insert(row);
        }
        for head in heads.into_values() {
            let wanted =
                head.state == parking::DEAD_LETTERED || (again && head.state == parking::REDRIVEN);
            if !wanted {
                continue;
            }
            // Marked first: the copy finds the head REDRIVEN and is applied. A crash before the
            // produce leaves a REDRIVEN head without a copy, which `again` sends.
            parking::set_state(db, consumer, head.event_id, parking::REDRIVEN, None)
                .await
                .context("marking a dead letter redriven")?;
            let from = format!("{consumer}:parked:{}:{}", head.record_key, head.seq);
            let record = head.record();
            produce_back(
                &producer,
                &head.topic,
                record.key.as_deref(),
                &record.headers,
                record.payload.as_deref(),
                &from,
                head.event_id,
            )
            .await?;
            tracing::info!(consumer, key = %head.record_key, event_id = %head.event_id, topic = %head.topic, "redriven");
            report.produced += 1;
        }
    }
    let mut progress: BTreeMap<i32, i64> = BTreeMap::new();
    for letter in letters.iter().filter(|l| !l.redriven) {
        progress.insert(letter.partition, letter.offset + 1);
        let original = letter.header(ORIGINAL_TOPIC);
        anyhow::ensure!(
            !original.is_empty(),
            "dead letter {}:{} has no {ORIGINAL_TOPIC} header",
            letter.partition,
            letter.offset
        );
        if let (Some(db), Some(event_id)) = (db, letter.event_id()) {
            let parked = rows.iter().any(|r| r.event_id == event_id);
            if parked || crate::inbox::contains(db, consumer, event_id).await? {
                report.skipped += 1;
                continue;
            }
        }
        let from = format!("{topic}:{}:{}", letter.partition, letter.offset);
        produce_back(
            &producer,
            original,
            letter.key.as_deref().map(str::as_bytes),
            &letter.raw_headers,
            letter.payload.as_deref(),
            &from,
            letter.event_id().unwrap_or_else(Uuid::nil),
        )
        .await?;
        report.produced += 1;
    }
    if !progress.is_empty() {
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in progress {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        }
        let committer = base_consumer(bootstrap, &redrive_group(consumer))?;
        committer
            .commit(&offsets, CommitMode::Sync)
            .context("remembering redrive progress")?;
    }
    Ok(report)
}

/// Produce a record back onto `topic`: its headers byte for byte without the `dlq.*` ones, plus
/// where it was redriven from and its event id; partitioned by murmur2 of its key.
async fn produce_back(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    headers: &[(String, Option<Vec<u8>>)],
    payload: Option<&[u8]>,
    from: &str,
    event_id: Uuid,
) -> anyhow::Result<()> {
    let mut out = OwnedHeaders::new();
    for (name, value) in headers.iter().filter(|(k, _)| !k.starts_with("dlq.")) {
        out = out.insert(Header {
            key: name,
            value: value.as_deref(),
        });
    }
    out = out.insert(Header {
        key: REDRIVEN_FROM,
        value: Some(from),
    });
    if !event_id.is_nil() {
        out = out.insert(Header {
            key: EVENT_ID,
            value: Some(&event_id.to_string()),
        });
    }
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(out);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
    Ok(())
}
