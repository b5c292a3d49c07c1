//! Dead letters: a record a consumer cannot apply, ever, goes to its `<consumer>.dlq` topic unchanged
//! (same key, value and headers) with `dlq.*` headers saying why and where it came from. `list` reads
//! them back; `redrive` puts the ones not yet redriven back on their original topic, where the inbox
//! of every consumer that already applied them makes the replay harmless.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::handler::Record;

pub const REASON: &str = "dlq.reason";
pub const ERROR: &str = "dlq.error";
pub const CONSUMER: &str = "dlq.consumer";
pub const ORIGINAL_TOPIC: &str = "dlq.original.topic";
pub const ORIGINAL_PARTITION: &str = "dlq.original.partition";
pub const ORIGINAL_OFFSET: &str = "dlq.original.offset";
pub const FAILED_AT: &str = "dlq.failed_at";

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
    for (key, value) in [
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
    pub headers: BTreeMap<String, String>,
    pub payload: Option<Vec<u8>>,
    /// Whether `redrive` has already put it back.
    pub redriven: bool,
}

impl DeadLetter {
    pub fn header(&self, key: &str) -> &str {
        self.headers.get(key).map(String::as_str).unwrap_or("")
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
            let headers = message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            let value = h
                                .value
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default();
                            (h.key.to_string(), value)
                        })
                        .collect()
                })
                .unwrap_or_default();
            letters.push(DeadLetter {
                partition,
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                headers,
                payload: message.payload().map(<[u8]>::to_vec),
                redriven: message.offset() < redriven_below,
            });
        }
    }
    Ok(letters)
}

/// Put every dead letter not yet redriven back on its original topic (original key, value and
/// headers, plus `dlq.redriven_from`), then remember how far redrive got. Returns how many.
pub async fn redrive(bootstrap: &str, consumer: &str) -> anyhow::Result<usize> {
    let topic = topic_of(consumer);
    let letters = list(bootstrap, consumer)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .context("creating a Kafka producer")?;
    let mut progress: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    for letter in letters.iter().filter(|l| !l.redriven) {
        let original = letter.header(ORIGINAL_TOPIC);
        anyhow::ensure!(
            !original.is_empty(),
            "dead letter {}:{} has no {ORIGINAL_TOPIC} header",
            letter.partition,
            letter.offset
        );
        let from = format!("{topic}:{}:{}", letter.partition, letter.offset);
        let mut headers = OwnedHeaders::new();
        for (key, value) in letter
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq."))
        {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        headers = headers.insert(Header {
            key: "dlq.redriven_from",
            value: Some(&from),
        });
        let mut record = FutureRecord::<str, [u8]>::to(original).headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        if let Some(payload) = &letter.payload {
            record = record.payload(payload);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {original}: {e}"))?;
        progress.insert(letter.partition, letter.offset + 1);
        count += 1;
    }
    if count > 0 {
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in progress {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        }
        let committer = base_consumer(bootstrap, &redrive_group(consumer))?;
        committer
            .commit(&offsets, CommitMode::Sync)
            .context("remembering redrive progress")?;
    }
    Ok(count)
}
