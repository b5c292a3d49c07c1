//! Reading a range of one partition back from Kafka, for rebuilding an open archive window (see
//! `window`). A separate consumer with a manual assignment and no commits, so the sink's group
//! position is never touched. Partitions are processed in parallel, but the backfill consumer
//! reads one range at a time (a read assigns it the partition it reads).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Gives up (for the caller to retry) when Kafka sends nothing for this long.
const STALL: Duration = Duration::from_secs(15);

pub struct Backfill {
    consumer: Arc<Mutex<BaseConsumer>>,
}

impl Backfill {
    pub fn new(bootstrap: &str, group: &str) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("{group}.archive-backfill"))
            .set("client.id", format!("{group}.archive-backfill"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .create()
            .context("creating the archive backfill consumer")?;
        Ok(Self {
            consumer: Arc::new(Mutex::new(consumer)),
        })
    }

    /// The records of `topic`/`partition` with offsets in `[from, until)`, in order (fewer when
    /// retention removed some or offsets have gaps).
    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> anyhow::Result<Vec<OwnedMessage>> {
        let consumer = self.consumer.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let consumer = consumer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            read_blocking(&consumer, &topic, partition, from, until)
        })
        .await
        .context("the backfill task failed")?
    }
}

fn read_blocking(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    from: i64,
    until: i64,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
    consumer.assign(&assignment)?;
    let result = (|| {
        let mut records = Vec::new();
        if from >= until {
            return Ok(records);
        }
        let mut last_progress = Instant::now();
        loop {
            match consumer.poll(Duration::from_millis(500)) {
                None => {
                    if last_progress.elapsed() > STALL {
                        anyhow::bail!(
                            "Kafka sent nothing for {STALL:?} reading {topic}/{partition} [{from}, {until})"
                        );
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF))) => break,
                Some(Err(e)) => return Err(e).context(format!("reading {topic}/{partition}")),
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    if message.offset() >= until {
                        break;
                    }
                    let done = message.offset() + 1 >= until;
                    records.push(message.detach());
                    if done {
                        break;
                    }
                }
            }
        }
        Ok(records)
    })();
    let _ = consumer.unassign();
    result
}
