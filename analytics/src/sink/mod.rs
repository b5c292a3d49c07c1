//! The analytics sink: consumes the orders topic in batches, indexes one document per finished
//! order into Elasticsearch and archives every record to object storage; only when both writes of a
//! batch succeeded does it commit the batch's offsets.
//!
//! One batch, step by step:
//! 1. Poll up to `batch_max_records` records, or for `batch_max_wait` after the first one.
//! 2. Decode each through the registry (retrying while the registry is unreachable). A record that
//!    cannot be decoded is dead-lettered to `<group>.dlq` (reason `undecodable`) and still archived.
//! 3. Place every record in its partition's archive window (see `window`), reading a window's
//!    earlier records back from Kafka when the sink starts in the middle of one.
//! 4. At the same time: bulk-index the documents of the terminal events (`document`, `bulk`) and
//!    write every window the batch touched (`archive`). Elasticsearch unreachable, 429 or 5xx, and any
//!    S3 failure, are retried with capped backoff, the same batch, forever: nothing is skipped. A
//!    version conflict means Elasticsearch already has that event or a newer one: done. A document
//!    Elasticsearch refuses (4xx) is dead-lettered (reason `refused`).
//! 5. Commit the batch's offsets synchronously.
//!
//! A crash anywhere before step 5 replays the batch: the documents are versioned and the archive
//! objects named by window, so the replay overwrites what the first attempt wrote.

pub mod archive;
pub mod backfill;
pub mod bulk;
pub mod document;
pub mod http;
pub mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use elasticsearch::Elasticsearch;
use object_store::ObjectStore;
use orderflow_schemas::AnyEvent;
use orderflow_schemas::registry::EventCodec;
use orderflow_stream_workers::runtime::backoff::Backoff;
use orderflow_stream_workers::runtime::dead_letter::{self, Reason};
use orderflow_stream_workers::runtime::health::spawn_lag_reporter;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;

use self::archive::ArchivedRecord;
use self::backfill::Backfill;
use self::bulk::ItemOutcome;
use self::document::OrderDocument;
use self::window::{Placement, Window, Windows};
use crate::config::SinkConfig;
use crate::elastic;

/// Why a batch was left unfinished (and uncommitted).
#[derive(Debug)]
enum Halt {
    /// Shutdown was asked for.
    Stopped,
    /// A bug: the sink stops rather than skip the batch.
    Fatal(anyhow::Error),
}

use Halt::Stopped;

/// What a consumed record means for Elasticsearch.
enum Disposition {
    /// A terminal event: this document.
    Index(Box<OrderDocument>),
    /// Any other event: archived only.
    Skip,
    /// Dead-letter it (and archive it).
    DeadLetter(Reason, String),
}

/// The sink, connected.
pub struct Sink {
    config: SinkConfig,
    /// The consumer group name with a `'static` lifetime, for metric labels.
    name: &'static str,
    consumer: Arc<StreamConsumer>,
    producer: FutureProducer,
    codec: EventCodec,
    es: Elasticsearch,
    store: Arc<dyn ObjectStore>,
    backfill: Backfill,
    windows: Windows,
    stop: watch::Receiver<bool>,
}

/// Run the sink until `shutdown` resolves (serving health and metrics on `config.http` if set).
/// The batch in hand when shutdown comes is left uncommitted; the next start replays it.
pub async fn run(
    config: SinkConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sink = Sink::connect(config)?;
    if let Some(address) = sink.config.http {
        let probe = http::Probe {
            consumer: sink.consumer.clone(),
            es: sink.es.clone(),
            store: sink.store.clone(),
            archive_prefix: sink.config.archive_prefix.clone(),
            metrics: orderflow_stream_workers::runtime::health::install_metrics()?,
        };
        let server =
            orderflow_service_kit::server::Server::bind(address, http::routes(probe)).await?;
        let bound = server.spawn();
        tracing::info!(address = %bound, "sink health and metrics");
    }
    sink.run(shutdown).await
}

impl Sink {
    /// Create the Kafka clients, the registry codec, the Elasticsearch client and the S3 store.
    /// Nothing is contacted yet: the servers may still be down.
    pub fn connect(config: SinkConfig) -> anyhow::Result<Self> {
        let name: &'static str = Box::leak(config.group.clone().into_boxed_str());
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka_bootstrap)
            .set("group.id", &config.group)
            .set("client.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create()
            .with_context(|| format!("creating the Kafka consumer {}", config.group))?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka_bootstrap)
            .set("enable.idempotence", "true")
            .create()
            .context("creating the dead-letter producer")?;
        let codec = EventCodec::new(&config.registry_url)?;
        let es = elastic::client(&config.elasticsearch_url)?;
        let store = archive::store(&config.s3)?;
        let backfill = Backfill::new(&config.kafka_bootstrap, &config.group)?;
        let (_, stop) = watch::channel(false);
        Ok(Self {
            windows: Windows::new(config.archive_window),
            name,
            consumer: Arc::new(consumer),
            producer,
            codec,
            es,
            store,
            backfill,
            stop,
            config,
        })
    }

    /// Consume until `shutdown` resolves.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tell, stop) = watch::channel(false);
        self.stop = stop;
        let _stopper = AbortOnDrop(tokio::spawn(async move {
            shutdown.await;
            let _ = tell.send(true);
        }));
        self.consume().await
    }

    async fn consume(&mut self) -> anyhow::Result<()> {
        let mut backoff = self.backoff();
        loop {
            match elastic::ensure_index(&self.es, &self.config.index).await {
                Ok(()) => break,
                Err(error) if error.is_retriable() => {
                    if self
                        .pause("index_template", &error.to_string(), &mut backoff)
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Err(error) => {
                    return Err(error).context(format!(
                        "putting the index template and mappings of {}",
                        self.config.index
                    ));
                }
            }
        }
        self.consumer
            .subscribe(&[&self.config.topic])
            .with_context(|| format!("subscribing to {}", self.config.topic))?;
        // Aborted when this future is dropped too (a crash, or the task aborted), so that the
        // consumer it holds goes away with the sink.
        let lag = AbortOnDrop(spawn_lag_reporter(self.name, self.consumer.clone()));
        tracing::info!(
            group = self.name,
            topic = %self.config.topic,
            index = %self.config.index,
            archive = %self.config.archive_prefix,
            "analytics sink consuming"
        );
        let consumer = self.consumer.clone();
        loop {
            let Some(batch) = self.collect(&consumer).await else {
                break;
            };
            match self.process(&batch).await {
                Ok(()) => {}
                Err(Halt::Stopped) => break,
                Err(Halt::Fatal(error)) => return Err(error),
            }
        }
        drop(lag);
        tracing::info!(group = self.name, "analytics sink stopped");
        Ok(())
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(Duration::from_millis(200), self.config.retry_cap)
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves when shutdown is asked for.
    fn stop_signal(&self) -> impl Future<Output = ()> + use<> {
        let mut stop = self.stop.clone();
        async move {
            if stop.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Wait out one backoff delay after a transient failure; `Err` if shutdown came meanwhile.
    async fn pause(
        &self,
        stage: &'static str,
        error: &str,
        backoff: &mut Backoff,
    ) -> Result<(), Halt> {
        let delay = backoff.next_delay();
        metrics::counter!("orderflow_retries_total", "consumer" => self.name, "stage" => stage)
            .increment(1);
        tracing::warn!(
            consumer = self.name,
            stage,
            error,
            attempt = backoff.attempts(),
            delay_ms = delay.as_millis() as u64,
            "transient failure; retrying the batch"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.stop_signal() => Err(Stopped),
        }
    }

    /// Poll one batch; `None` when shutdown came first (a partial batch is dropped, uncommitted).
    async fn collect<'c>(&self, consumer: &'c StreamConsumer) -> Option<Vec<BorrowedMessage<'c>>> {
        let mut batch = Vec::new();
        let mut deadline: Option<Instant> = None;
        let stop = self.stop_signal();
        tokio::pin!(stop);
        while batch.len() < self.config.batch_max_records {
            let cut = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return None,
                _ = cut => break,
                received = consumer.recv() => match received {
                    Ok(message) => {
                        deadline.get_or_insert_with(|| Instant::now() + self.config.batch_max_wait);
                        batch.push(message);
                    }
                    Err(error) => {
                        tracing::warn!(consumer = self.name, %error, "Kafka error while receiving; continuing");
                        metrics::counter!("orderflow_consumer_errors_total", "consumer" => self.name).increment(1);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
        if self.stopped() { None } else { Some(batch) }
    }

    /// One batch, steps 2 to 5 of the module documentation.
    async fn process(&mut self, batch: &[BorrowedMessage<'_>]) -> Result<(), Halt> {
        // 2. Decode.
        let mut records = Vec::with_capacity(batch.len());
        let mut dispositions = Vec::with_capacity(batch.len());
        for message in batch {
            let mut record = archived(message);
            let disposition = match self.decode(message.payload()).await? {
                Ok(event) => {
                    record.event_type = Some(event.name().to_string());
                    record.event_id = Some(event.event_id().to_string());
                    match &event {
                        AnyEvent::Orders(e) => match OrderDocument::from_event(e) {
                            Some(Ok(doc)) => Disposition::Index(Box::new(doc)),
                            Some(Err(error)) => {
                                Disposition::DeadLetter(Reason::Refused, error.to_string())
                            }
                            None => Disposition::Skip,
                        },
                        _ => Disposition::Skip,
                    }
                }
                Err(error) => Disposition::DeadLetter(Reason::Undecodable, error),
            };
            records.push(record);
            dispositions.push(disposition);
        }

        // 3. Archive windows.
        let to_write = self.place(records).await?;

        // 4. Index and archive, both until they succeed.
        let documents: Vec<(usize, &OrderDocument)> = dispositions
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match d {
                Disposition::Index(doc) => Some((i, doc.as_ref())),
                _ => None,
            })
            .collect();
        let (refused, archived) = tokio::join!(
            self.index_documents(&documents),
            self.write_archive(&to_write)
        );
        let refused = refused?;
        archived?;
        let indexed = documents.len() - refused.len();

        // Dead letters: undecodable records and refused documents.
        let mut dead: BTreeMap<usize, (Reason, String)> = refused
            .into_iter()
            .map(|(i, e)| (i, (Reason::Refused, e)))
            .collect();
        for (i, d) in dispositions.iter().enumerate() {
            if let Disposition::DeadLetter(reason, error) = d {
                dead.insert(i, (*reason, error.clone()));
            }
        }
        for (i, (reason, error)) in &dead {
            self.dead_letter(&batch[*i], *reason, error).await?;
        }

        // 5. Commit.
        self.commit(batch).await?;

        let dead_count = dead.len();
        let skipped = batch.len() - indexed - dead_count;
        for (outcome, n) in [
            ("indexed", indexed),
            ("skipped", skipped),
            ("dead_lettered", dead_count),
        ] {
            metrics::counter!("orderflow_sink_records_total", "consumer" => self.name, "outcome" => outcome)
                .increment(n as u64);
        }
        metrics::counter!("orderflow_sink_batches_total", "consumer" => self.name).increment(1);
        tracing::debug!(
            consumer = self.name,
            records = batch.len(),
            indexed,
            dead_lettered = dead_count,
            objects = to_write.len(),
            "batch committed"
        );
        Ok(())
    }

    /// Decode a value; the inner `Err` is a permanent failure (the reason, for the dead letter).
    async fn decode(&self, payload: Option<&[u8]>) -> Result<Result<AnyEvent, String>, Halt> {
        let Some(payload) = payload else {
            return Ok(Err("the record has no value".into()));
        };
        let mut backoff = self.backoff();
        loop {
            match self.codec.decode(payload).await {
                Ok(event) => return Ok(Ok(event)),
                Err(error) if error.is_retriable() => {
                    self.pause("decode", &error.to_string(), &mut backoff)
                        .await?;
                }
                Err(error) => return Ok(Err(error.to_string())),
            }
        }
    }

    /// Put the batch's records into their windows; the windows to write, in the state this batch
    /// leaves them (closed ones included).
    async fn place(&mut self, records: Vec<ArchivedRecord>) -> Result<Vec<Window>, Halt> {
        let mut touched: BTreeSet<(String, i32, i64)> = BTreeSet::new();
        let mut closed_windows = Vec::new();
        for record in records {
            if let Placement::Backfill { from, until } =
                self.windows
                    .check(&record.topic, record.partition, record.offset)
            {
                let earlier = self
                    .read_back(&record.topic, record.partition, from, until)
                    .await?;
                tracing::info!(
                    consumer = self.name,
                    topic = %record.topic,
                    partition = record.partition,
                    from,
                    until,
                    records = earlier.len(),
                    "rebuilt the open archive window from Kafka"
                );
                self.windows
                    .rebuild(&record.topic, record.partition, from, until, earlier);
            }
            let key = (
                record.topic.clone(),
                record.partition,
                self.windows.start_of(record.offset),
            );
            if let Some(closed) = self.windows.push(record)
                && touched.remove(&(closed.topic.clone(), closed.partition, closed.start))
            {
                closed_windows.push(closed);
            }
            touched.insert(key);
        }
        for (topic, partition, start) in touched {
            if let Some(open) = self.windows.get(&topic, partition)
                && open.start == start
            {
                closed_windows.push(open.clone());
            }
        }
        Ok(closed_windows)
    }

    /// The archive records of `[from, until)` of a partition, read back from Kafka.
    async fn read_back(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> Result<Vec<ArchivedRecord>, Halt> {
        let mut backoff = self.backoff();
        let messages = loop {
            match self.backfill.read(topic, partition, from, until).await {
                Ok(messages) => break messages,
                Err(error) => {
                    self.pause("archive_backfill", &format!("{error:#}"), &mut backoff)
                        .await?
                }
            }
        };
        let mut records = Vec::with_capacity(messages.len());
        for message in &messages {
            let mut record = archived(message);
            if let Ok(event) = self.decode(message.payload()).await? {
                record.event_type = Some(event.name().to_string());
                record.event_id = Some(event.event_id().to_string());
            }
            records.push(record);
        }
        Ok(records)
    }

    /// Bulk-index until every document is done or refused; returns the refused ones (batch index,
    /// error).
    async fn index_documents(
        &self,
        documents: &[(usize, &OrderDocument)],
    ) -> Result<Vec<(usize, String)>, Halt> {
        let mut pending: Vec<(usize, &OrderDocument)> = documents.to_vec();
        let mut refused = Vec::new();
        let mut backoff = self.backoff();
        while !pending.is_empty() {
            let docs: Vec<&OrderDocument> = pending.iter().map(|(_, d)| *d).collect();
            match bulk::index(&self.es, &self.config.index, &docs).await {
                Ok(outcomes) => {
                    let mut retry = Vec::new();
                    let mut problem = String::new();
                    for ((i, doc), outcome) in pending.iter().zip(outcomes) {
                        match outcome {
                            ItemOutcome::Indexed => {}
                            ItemOutcome::AlreadyNewer => {
                                metrics::counter!("orderflow_sink_version_conflicts_total", "consumer" => self.name).increment(1);
                                tracing::debug!(order_id = %doc.order_id, version = doc.version(), "Elasticsearch already has this or a newer event of the order");
                            }
                            ItemOutcome::Retry(error) => {
                                problem = error;
                                retry.push((*i, *doc));
                            }
                            ItemOutcome::Refused(error) => {
                                tracing::error!(order_id = %doc.order_id, %error, "Elasticsearch refused the document");
                                refused.push((
                                    *i,
                                    format!("Elasticsearch refused the document: {error}"),
                                ));
                            }
                        }
                    }
                    pending = retry;
                    if !pending.is_empty() {
                        self.pause("elasticsearch", &problem, &mut backoff).await?;
                    }
                }
                Err(error) => {
                    if !error.is_retriable() {
                        tracing::error!(%error, "Elasticsearch refused a whole bulk request; retrying, nothing is skipped");
                    }
                    self.pause("elasticsearch", &error.to_string(), &mut backoff)
                        .await?;
                }
            }
        }
        Ok(refused)
    }

    /// Write every window until S3 has them all.
    async fn write_archive(&self, windows: &[Window]) -> Result<(), Halt> {
        let mut backoff = self.backoff();
        let mut objects = Vec::with_capacity(windows.len());
        for w in windows {
            let path = archive::object_path(
                &self.config.archive_prefix,
                &w.topic,
                w.partition,
                w.start,
                w.first_timestamp(),
            );
            let marker = archive::marker(&w.topic, w.partition, w.start);
            let bytes = archive::encode(&w.records, marker).map_err(|e| {
                Halt::Fatal(e.context(format!("encoding the archive object {path}")))
            })?;
            objects.push((path, bytes));
        }
        while !objects.is_empty() {
            let mut failed = Vec::new();
            let mut problem = String::new();
            for (path, bytes) in objects {
                match archive::put(self.store.as_ref(), &path, bytes.clone()).await {
                    Ok(()) => {
                        metrics::counter!("orderflow_sink_archive_writes_total", "consumer" => self.name).increment(1);
                    }
                    Err(error) => {
                        problem = format!("{error:#}");
                        failed.push((path, bytes));
                    }
                }
            }
            objects = failed;
            if !objects.is_empty() {
                self.pause("archive", &problem, &mut backoff).await?;
            }
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: Reason,
        error: &str,
    ) -> Result<(), Halt> {
        tracing::error!(
            consumer = self.name,
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason = reason.as_str(),
            error,
            "permanent failure; dead-lettering the record"
        );
        let mut backoff = self.backoff();
        while let Err(e) =
            dead_letter::send(&self.producer, self.name, message, reason, error).await
        {
            self.pause("dead_letter", &format!("{e:#}"), &mut backoff)
                .await?;
        }
        metrics::counter!("orderflow_dead_letters_total", "consumer" => self.name, "reason" => reason.as_str()).increment(1);
        Ok(())
    }

    /// Commit the offset after each partition's last record of the batch, synchronously. A commit
    /// that keeps failing is given up after a few attempts: a later batch's commit covers it, and if
    /// the partition moved to another consumer, that consumer replays (idempotently).
    async fn commit(&mut self, batch: &[BorrowedMessage<'_>]) -> Result<(), Halt> {
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for message in batch {
            let entry = next
                .entry((message.topic().to_string(), message.partition()))
                .or_insert(0);
            *entry = (*entry).max(message.offset() + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in &next {
            if let Err(error) =
                offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            {
                tracing::error!(%error, "building the commit");
            }
        }
        let mut backoff = self.backoff();
        for attempt in 1..=5 {
            let consumer = self.consumer.clone();
            let offsets = offsets.clone();
            let result =
                tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                    .await;
            match result {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) if attempt < 5 => {
                    self.pause("commit", &error.to_string(), &mut backoff)
                        .await?
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not commit the batch's offsets; a later commit or a replay covers them");
                    for (topic, partition) in next.keys() {
                        self.windows.forget(topic, *partition);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the commit task failed");
                }
            }
        }
        Ok(())
    }
}

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The archive record of a Kafka message (event type and id filled in once decoded).
pub fn archived<M: Message>(message: &M) -> ArchivedRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    ArchivedRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        headers,
        event_type: None,
        event_id: None,
        schema_id: archive::confluent_schema_id(message.payload()),
        payload: message.payload().map(<[u8]>::to_vec),
    }
}
