//! The analytics sink: a handler on the consumer runtime (`orderflow_consumer`) for the orders
//! topic. It indexes one document per finished order into Elasticsearch and archives every record
//! to object storage; the runtime commits a batch's offsets only after both writes succeeded.
//!
//! The runtime hands the sink batches of one partition at a time (one key lane per partition, since
//! the archive windows follow a partition's offsets), sized by what is waiting (up to
//! `ORDERFLOW_SINK_BATCH_RECORDS`), partitions in parallel. One batch, step by step:
//! 1. The runtime has decoded each record through the registry; a record that cannot be decoded it
//!    dead-letters to `<group>.dlq` (reason `undecodable`), and the sink still archives it.
//! 2. Place every record in its partition's archive window (see `window`), reading a window's
//!    earlier records back from Kafka when the sink starts in the middle of one.
//! 3. At the same time: bulk-index the documents of the terminal events (`document`, `bulk`) and
//!    write every window the batch touched (`archive`). Elasticsearch unreachable, 429 or 5xx, and any
//!    S3 failure, are retried with capped backoff, the same batch, until they pass or the partition
//!    is revoked: nothing is skipped. A version conflict means Elasticsearch already has that event or
//!    a newer one: done. A document Elasticsearch refuses (4xx) is dead-lettered (reason `refused`).
//! 4. The runtime commits the offsets.
//!
//! A crash anywhere before step 4 replays the batch: the documents are versioned and the archive
//! objects named by window and written conditionally, so the replay writes the same object again
//! (or keeps it, when it already holds as much), and no object ever loses records.

pub mod archive;
pub mod backfill;
pub mod bulk;
pub mod document;
pub mod http;
pub mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use elasticsearch::Elasticsearch;
use object_store::ObjectStore;
use orderflow_consumer::dead_letter::Reason;
use orderflow_consumer::{
    AbortOnDrop, Applied, Batch, BatchError, BatchFuture, Handler, Interest, Record, Runtime,
    Settings, Spec,
};
use orderflow_schemas::AnyEvent;
use rdkafka::Message;
use tokio::sync::watch;

use self::archive::ArchivedRecord;
use self::backfill::Backfill;
use self::bulk::ItemOutcome;
use self::document::OrderDocument;
use self::window::{Placement, Window, Windows};
use crate::config::SinkConfig;
use crate::elastic;

/// What a consumed record means for Elasticsearch.
enum Disposition {
    /// A terminal event: this document.
    Index(Box<OrderDocument>),
    /// Any other event (or an undecodable record, dead-lettered by the runtime): archived only.
    Skip,
    /// Dead-letter it (and archive it).
    DeadLetter(Reason, String),
}

/// Run the sink until `shutdown` resolves (serving health and metrics on `config.http` if set).
/// The batches in hand when shutdown comes get a few seconds to finish; what is not finished stays
/// uncommitted and the next start replays it.
pub async fn run(
    config: SinkConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tell, mut stop) = watch::channel(false);
    let _stopper = AbortOnDrop(tokio::spawn(async move {
        shutdown.await;
        let _ = tell.send(true);
    }));
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let handler = Arc::new(SinkHandler::connect(config.clone())?);
    let mut settings = Settings::from_env()?;
    settings.max_batch = config.batch_max_records;
    settings.retry_cap = config.retry_cap;
    tokio::pin!(stopped);
    // The index template first, retried while Elasticsearch is not there yet.
    let mut backoff = orderflow_consumer::backoff::Backoff::new(
        std::time::Duration::from_millis(200),
        config.retry_cap,
    );
    loop {
        match elastic::ensure_index(&handler.es, &config.index).await {
            Ok(()) => break,
            Err(error) if error.is_retriable() => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, delay_ms = delay.as_millis() as u64, "Elasticsearch not ready for the index template; retrying");
                metrics::counter!("orderflow_retries_total", "consumer" => handler.name, "stage" => "index_template").increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = &mut stopped => return Ok(()),
                }
            }
            Err(error) => {
                return Err(error).context(format!(
                    "putting the index template and mappings of {}",
                    config.index
                ));
            }
        }
    }
    let runtime = Runtime::new(
        &config.kafka_bootstrap,
        &config.registry_url,
        settings,
        Spec {
            name: handler.name,
            topics: vec![config.topic.clone()],
            handler: handler.clone(),
            // The archive windows follow each partition's offsets: one lane per partition.
            key_lanes: Some(1),
        },
    )?;
    if let Some(address) = config.http {
        orderflow_service_kit::auth::metrics_listener_on_loopback("ORDERFLOW_SINK_HTTP", address)?;
        let probe = http::Probe {
            consumer: runtime.consumer(),
            es: handler.es.clone(),
            store: handler.store.clone(),
            archive_prefix: config.archive_prefix.clone(),
            metrics: orderflow_consumer::health::install_metrics()?,
        };
        let server =
            orderflow_service_kit::server::Server::bind(address, http::routes(probe)).await?;
        let bound = server.spawn();
        tracing::info!(address = %bound, "sink health and metrics");
    }
    tracing::info!(
        group = handler.name,
        topic = %config.topic,
        index = %config.index,
        archive = %config.archive_prefix,
        "analytics sink consuming"
    );
    runtime.run(stopped).await?;
    tracing::info!(group = handler.name, "analytics sink stopped");
    Ok(())
}

/// The sink's handler: Elasticsearch, the archive, and the open archive window of every partition.
pub struct SinkHandler {
    config: SinkConfig,
    /// The consumer group name with a `'static` lifetime, for metric labels.
    name: &'static str,
    es: Elasticsearch,
    store: Arc<dyn ObjectStore>,
    backfill: Backfill,
    windows: Mutex<Windows>,
}

impl Handler for SinkHandler {
    fn interest(&self) -> Interest {
        Interest::Everything
    }

    fn apply<'a>(&'a self, batch: &'a Batch<'a>) -> BatchFuture<'a> {
        Box::pin(self.process(batch))
    }

    fn revoked(&self, topic: &str, partition: i32) {
        self.windows.lock().unwrap().forget(topic, partition);
    }
}

impl SinkHandler {
    /// Create the Elasticsearch client, the S3 store and the backfill consumer.
    /// Nothing is contacted yet: the servers may still be down.
    pub fn connect(config: SinkConfig) -> anyhow::Result<Self> {
        let name: &'static str = Box::leak(config.group.clone().into_boxed_str());
        let es = elastic::client(&config.elasticsearch_url)?;
        let store = archive::store(&config.s3)?;
        let backfill = Backfill::new(&config.kafka_bootstrap, &config.group)?;
        Ok(Self {
            windows: Mutex::new(Windows::new(config.archive_window)),
            name,
            es,
            store,
            backfill,
            config,
        })
    }

    /// One batch, steps 2 and 3 of the module documentation.
    async fn process(&self, batch: &Batch<'_>) -> Result<Applied, BatchError> {
        let mut records = Vec::with_capacity(batch.records.len());
        let mut dispositions = Vec::with_capacity(batch.records.len());
        for record in batch.records {
            let mut archived = archived(record);
            let disposition = match &record.event {
                Some(event) => {
                    archived.event_type = Some(event.name().to_string());
                    archived.event_id = Some(event.event_id().to_string());
                    match event {
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
                None => Disposition::Skip,
            };
            records.push(archived);
            dispositions.push(disposition);
        }

        // 2. Archive windows.
        let to_write = self.place(records, batch).await?;

        // 3. Index and archive, both until they succeed.
        let documents: Vec<(usize, &OrderDocument)> = dispositions
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match d {
                Disposition::Index(doc) => Some((i, doc.as_ref())),
                _ => None,
            })
            .collect();
        let (refused, archived) = tokio::join!(
            timed(
                self.name,
                "elasticsearch",
                self.index_documents(&documents, batch)
            ),
            timed(self.name, "archive", self.write_archive(&to_write, batch))
        );
        let refused = refused?;
        archived?;
        let indexed = documents.len() - refused.len();

        let mut dead: BTreeMap<usize, (Reason, String)> = refused
            .into_iter()
            .map(|(i, e)| (i, (Reason::Refused, e)))
            .collect();
        for (i, d) in dispositions.iter().enumerate() {
            if let Disposition::DeadLetter(reason, error) = d {
                dead.insert(i, (*reason, error.clone()));
            }
        }
        let dead_count = dead.len();
        let skipped = batch.records.len() - indexed - dead_count;
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
            records = batch.records.len(),
            indexed,
            dead_lettered = dead_count,
            objects = to_write.len(),
            "batch written"
        );
        Ok(Applied {
            dead_letters: dead.into_iter().map(|(i, (r, e))| (i, r, e)).collect(),
            ..Applied::default()
        })
    }

    /// Put the batch's records into their windows; the windows to write, in the state this batch
    /// leaves them (closed ones included).
    async fn place(
        &self,
        records: Vec<ArchivedRecord>,
        batch: &Batch<'_>,
    ) -> Result<Vec<Window>, BatchError> {
        let mut touched: BTreeSet<(String, i32, i64)> = BTreeSet::new();
        let mut closed_windows = Vec::new();
        for record in records {
            let placement =
                self.windows
                    .lock()
                    .unwrap()
                    .check(&record.topic, record.partition, record.offset);
            if let Placement::Backfill { from, until } = placement {
                let earlier = self
                    .read_back(&record.topic, record.partition, from, until, batch)
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
                self.windows.lock().unwrap().rebuild(
                    &record.topic,
                    record.partition,
                    from,
                    until,
                    earlier,
                );
            }
            let mut windows = self.windows.lock().unwrap();
            let key = (
                record.topic.clone(),
                record.partition,
                windows.start_of(record.offset),
            );
            if let Some(closed) = windows.push(record)
                && touched.remove(&(closed.topic.clone(), closed.partition, closed.start))
            {
                closed_windows.push(closed);
            }
            touched.insert(key);
        }
        let windows = self.windows.lock().unwrap();
        for (topic, partition, start) in touched {
            if let Some(open) = windows.get(&topic, partition)
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
        batch: &Batch<'_>,
    ) -> Result<Vec<ArchivedRecord>, BatchError> {
        let mut backoff = batch.backoff();
        let messages = loop {
            match self.backfill.read(topic, partition, from, until).await {
                Ok(messages) => break messages,
                Err(error) => {
                    batch
                        .pause("archive_backfill", &format!("{error:#}"), &mut backoff)
                        .await?
                }
            }
        };
        let mut records = Vec::with_capacity(messages.len());
        for message in &messages {
            let mut record = archived(&Record::from_message(message));
            if let Ok(event) = batch.decode(message.payload()).await? {
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
        batch: &Batch<'_>,
    ) -> Result<Vec<(usize, String)>, BatchError> {
        let mut pending: Vec<(usize, &OrderDocument)> = documents.to_vec();
        let mut refused = Vec::new();
        let mut backoff = batch.backoff();
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
                        batch.pause("elasticsearch", &problem, &mut backoff).await?;
                    }
                }
                Err(error) => {
                    if !error.is_retriable() {
                        tracing::error!(%error, "Elasticsearch refused a whole bulk request; retrying, nothing is skipped");
                    }
                    batch
                        .pause("elasticsearch", &error.to_string(), &mut backoff)
                        .await?;
                }
            }
        }
        Ok(refused)
    }

    /// Write every window until S3 has them all (or holds more of them, see
    /// `archive::put_window`).
    async fn write_archive(&self, windows: &[Window], batch: &Batch<'_>) -> Result<(), BatchError> {
        let mut backoff = batch.backoff();
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
            // A bug, not a passing fault: the batch is retried, and the error stays in the log.
            let bytes = archive::encode(&w.records, marker).map_err(|e| {
                BatchError::Transient(e.context(format!("encoding the archive object {path}")))
            })?;
            objects.push((w, path, bytes));
        }
        while !objects.is_empty() {
            let mut failed = Vec::new();
            let mut problem = String::new();
            for (w, path, bytes) in objects {
                let written = archive::put_window(
                    self.store.as_ref(),
                    &path,
                    bytes.clone(),
                    w.records.len(),
                    w.e_tag.clone(),
                )
                .await;
                match written {
                    Ok(outcome) => {
                        let (label, e_tag) = match outcome {
                            archive::WindowWrite::Written { e_tag } => ("written", e_tag),
                            archive::WindowWrite::KeptExisting { records, e_tag } => {
                                tracing::warn!(consumer = self.name, %path, records, window = w.records.len(), "the archive object already holds this window or more (written by another run or sink): kept it");
                                ("kept_existing", e_tag)
                            }
                        };
                        metrics::counter!("orderflow_sink_archive_writes_total", "consumer" => self.name, "outcome" => label).increment(1);
                        self.windows
                            .lock()
                            .unwrap()
                            .written(&w.topic, w.partition, w.start, e_tag);
                    }
                    Err(error) => {
                        problem = format!("{error:#}");
                        failed.push((w, path, bytes));
                    }
                }
            }
            objects = failed;
            if !objects.is_empty() {
                batch.pause("archive", &problem, &mut backoff).await?;
            }
        }
        Ok(())
    }
}

/// Run one of a batch's writes, recording how long it took (retries included) in
/// `orderflow_sink_write_seconds{target}`.
async fn timed<T>(
    consumer: &'static str,
    target: &'static str,
    write: impl Future<Output = T>,
) -> T {
    let started = std::time::Instant::now();
    let out = write.await;
    metrics::histogram!("orderflow_sink_write_seconds", "consumer" => consumer, "target" => target)
        .record(started.elapsed().as_secs_f64());
    out
}

/// The archive record of a Kafka record (event type and id filled in once decoded).
pub fn archived(record: &Record) -> ArchivedRecord {
    ArchivedRecord {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: record.key.clone(),
        headers: record.headers.clone(),
        event_type: None,
        event_id: None,
        schema_id: archive::confluent_schema_id(record.payload.as_deref()),
        payload: record.payload.clone(),
    }
}
