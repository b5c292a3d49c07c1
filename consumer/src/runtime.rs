//! The runtime: one `Runtime` runs one consumer group and owns everything a handler does not.
//!
//! - **Receiving.** A dedicated thread polls librdkafka (so rebalance callbacks may block on it
//!   while work drains, without stalling the async tasks), copies each record out and hands it to
//!   the record's *key lane*: partition × (hash of the key mod `key_lanes`). Records whose
//!   `event_type` header the handler has no interest in are skipped there, undecoded.
//! - **Concurrency that keeps per-key order.** Every lane is a task of its own, so partitions (and
//!   keys within a partition) proceed in parallel, while the records of one key stay in order in
//!   one lane. A lane that keeps failing transiently holds back only its own keys.
//! - **Batches.** A lane takes every record queued for it (up to `max_batch`) as one batch: the
//!   handler applies it at once (the saga in one transaction), so the commit is shared and the
//!   batch grows with the load, not with a timer. A batch the handler splits is applied one record
//!   at a time; a record that is refused for good is dead-lettered and the rest go on.
//! - **Back-pressure.** Records received and not finished are bounded per partition and per
//!   consumer; a partition above its bound is paused until it drains to half.
//! - **Offsets.** Each partition's [`Tracker`] commits only up to the first unfinished record, every
//!   `commit_interval`, and synchronously when a partition is revoked (after its lanes stopped) and
//!   at shutdown. A crash replays at most the uncommitted tail; handlers are idempotent (the inbox).
//! - **Retries** wait out a capped exponential backoff that ends at once when the partition is
//!   revoked or the consumer stops: a revoked partition's unfinished records are simply left to
//!   the next owner.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orderflow_schemas::AnyEvent;
use orderflow_schemas::registry::EventCodec;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::dead_letter::{self, Reason};
use crate::handler::{Applied, Batch, BatchError, Handler, Interest, Record};
use crate::settings::Settings;
use crate::tracker::Tracker;

/// The Kafka consumer the runtime polls (health checks and lag use it too).
pub type KafkaConsumer = BaseConsumer<RuntimeContext>;

/// One consumer, as data.
pub struct Spec {
    /// The consumer group id; it also names the inbox rows and the dead-letter topic `<name>.dlq`.
    pub name: &'static str,
    /// The topics it reads.
    pub topics: Vec<String>,
    pub handler: Arc<dyn Handler>,
    /// Key lanes per partition; `None` takes the settings' `key_lanes`. A handler that keeps
    /// per-partition state in offset order (the archive) uses 1.
    pub key_lanes: Option<usize>,
}

/// A topic-partition.
type Tp = (String, i32);

struct Lane {
    queue: mpsc::UnboundedSender<Record>,
    task: tokio::task::JoinHandle<()>,
}

struct PartitionState {
    tracker: Tracker,
    cancel: CancellationToken,
    lanes: Vec<Option<Lane>>,
    paused: bool,
}

/// What the polling thread, the rebalance callbacks and the lanes share.
struct Shared {
    name: &'static str,
    handler: Arc<dyn Handler>,
    interest: Interest,
    codec: EventCodec,
    producer: FutureProducer,
    settings: Settings,
    lanes: usize,
    partitions: Mutex<HashMap<Tp, PartitionState>>,
    in_flight: AtomicUsize,
    /// Cancelled when the consumer stops; every partition's token is a child of it.
    stop: CancellationToken,
    /// Set when `run` was dropped before it finished (a crash, or its task aborted): the polling
    /// thread ends at once, commits nothing, and every lane is aborted.
    abandoned: std::sync::atomic::AtomicBool,
    runtime: tokio::runtime::Handle,
}

/// The librdkafka context: it hands rebalances to the runtime.
pub struct RuntimeContext {
    shared: Mutex<Option<Arc<Shared>>>,
}

impl ClientContext for RuntimeContext {}

impl ConsumerContext for RuntimeContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(shared) = self.shared.lock().unwrap().clone() else {
            return;
        };
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked = partitions_of(tpl);
                tracing::info!(consumer = shared.name, partitions = ?revoked, "partitions revoked: stopping their lanes and committing their finished records");
                shared.give_up(consumer, &revoked);
            }
            Rebalance::Assign(tpl) => {
                let assigned = partitions_of(tpl);
                tracing::info!(consumer = shared.name, partitions = ?assigned, "partitions assigned");
                let mut partitions = shared.partitions.lock().unwrap();
                for tp in assigned {
                    partitions.insert(tp, shared.new_partition());
                }
            }
            Rebalance::Error(error) => {
                tracing::warn!(consumer = shared.name, %error, "rebalance error");
            }
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// A consumer, connected and subscribed; `run` drives it.
pub struct Runtime {
    shared: Arc<Shared>,
    consumer: Arc<KafkaConsumer>,
}

impl Runtime {
    /// Create the Kafka clients and subscribe. Nothing is received before `run`.
    pub fn new(
        kafka_bootstrap: &str,
        registry_url: &str,
        settings: Settings,
        spec: Spec,
    ) -> anyhow::Result<Self> {
        let context = RuntimeContext {
            shared: Mutex::new(None),
        };
        let consumer: KafkaConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_bootstrap)
            .set("group.id", spec.name)
            .set("client.id", spec.name)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            // The broker answers a fetch once `fetch.min.bytes` are there, or after this long
            // (librdkafka's default wait is 500 ms).
            .set("fetch.wait.max.ms", settings.fetch_wait_max_ms.to_string())
            .set("fetch.min.bytes", settings.fetch_min_bytes.to_string())
            .set(
                "session.timeout.ms",
                settings.session_timeout_ms.to_string(),
            )
            .set_log_level(RDKafkaLogLevel::Warning)
            .create_with_context(context)
            .with_context(|| format!("creating the Kafka consumer {}", spec.name))?;
        let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .with_context(|| format!("subscribing {} to {:?}", spec.name, spec.topics))?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", kafka_bootstrap)
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()
            .context("creating the dead-letter producer")?;
        let shared = Arc::new(Shared {
            name: spec.name,
            interest: spec.handler.interest(),
            handler: spec.handler,
            codec: EventCodec::new(registry_url)?,
            producer,
            lanes: spec.key_lanes.unwrap_or(settings.key_lanes).max(1),
            settings,
            partitions: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            stop: CancellationToken::new(),
            abandoned: std::sync::atomic::AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
        });
        *consumer.context().shared.lock().unwrap() = Some(shared.clone());
        Ok(Runtime {
            shared,
            consumer: Arc::new(consumer),
        })
    }

    pub fn name(&self) -> &'static str {
        self.shared.name
    }

    pub fn consumer(&self) -> Arc<KafkaConsumer> {
        self.consumer.clone()
    }

    /// Consume until `shutdown` resolves; then stop receiving, let the attempts in hand finish
    /// (retry waits end at once), commit what is finished and leave the group.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let Runtime { shared, consumer } = self;
        let mut abandon = Abandon(Some(shared.clone()));
        tracing::info!(
            consumer = shared.name,
            lanes = shared.lanes,
            max_batch = shared.settings.max_batch,
            "consuming"
        );
        let lag = AbortOnDrop(crate::health::spawn_lag_reporter(
            shared.name,
            consumer.clone(),
        ));
        let poller = {
            let shared = shared.clone();
            let consumer = consumer.clone();
            std::thread::Builder::new()
                .name(format!("poll-{}", shared.name))
                .spawn(move || poll_loop(&shared, &consumer))
                .context("starting the polling thread")?
        };
        shutdown.await;
        abandon.0 = None;
        tracing::info!(
            consumer = shared.name,
            "shutting down: finishing the attempts in hand"
        );
        shared.stop.cancel();
        let joined = tokio::task::spawn_blocking(move || poller.join()).await;
        drop(lag);
        if !matches!(joined, Ok(Ok(()))) {
            anyhow::bail!("the polling thread of {} panicked", shared.name);
        }
        *consumer.context().shared.lock().unwrap() = None;
        tracing::info!(consumer = shared.name, "stopped");
        Ok(())
    }
}

/// A background task that ends with its owner.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Dropped while armed, it abandons the consumer like a crash would.
struct Abandon(Option<Arc<Shared>>);

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.abandoned.store(true, Ordering::SeqCst);
            shared.stop.cancel();
            let mut partitions = shared.partitions.lock().unwrap();
            for state in partitions.values_mut() {
                for lane in state.lanes.iter_mut().filter_map(Option::take) {
                    lane.task.abort();
                }
            }
        }
    }
}

fn poll_loop(shared: &Arc<Shared>, consumer: &KafkaConsumer) {
    let mut last_commit = Instant::now();
    while !shared.stop.is_cancelled() {
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(message)) => shared.dispatch(Record::from_message(&message)),
            Some(Err(error)) => {
                tracing::warn!(consumer = shared.name, %error, "Kafka error while receiving; continuing");
                metrics::counter!("orderflow_consumer_errors_total", "consumer" => shared.name)
                    .increment(1);
            }
            None => {}
        }
        shared.flow_control(consumer);
        if last_commit.elapsed() >= shared.settings.commit_interval {
            shared.commit(consumer, CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    if shared.abandoned.load(Ordering::SeqCst) {
        *consumer.context().shared.lock().unwrap() = None;
        return;
    }
    // Shutdown: nothing new is received. Every lane has been told to stop (the partitions' tokens
    // are children of `stop`): a lane finishes the attempt in hand, a retry wait ends at once, and
    // records not started yet stay uncommitted for the next start. Then the finished work is
    // committed, synchronously.
    let all: Vec<Tp> = shared.partitions.lock().unwrap().keys().cloned().collect();
    shared.give_up(consumer, &all);
    consumer.unsubscribe();
}

impl Shared {
    /// The backoff of one record's or batch's retries.
    fn backoff(&self) -> Backoff {
        Backoff::up_to(self.settings.retry_cap)
    }

    fn new_partition(&self) -> PartitionState {
        PartitionState {
            tracker: Tracker::default(),
            cancel: self.stop.child_token(),
            lanes: (0..self.lanes).map(|_| None).collect(),
            paused: false,
        }
    }

    /// Hand a received record to its lane (or skip it by its header).
    fn dispatch(self: &Arc<Self>, record: Record) {
        let tp = (record.topic.clone(), record.partition);
        let wanted = self.interest.admits_header(record.header("event_type"));
        let mut partitions = self.partitions.lock().unwrap();
        let state = partitions
            .entry(tp.clone())
            .or_insert_with(|| self.new_partition());
        if !state.tracker.receive(record.offset, wanted) {
            return;
        }
        if !wanted {
            metrics::counter!("orderflow_events_total", "consumer" => self.name, "outcome" => "not_handled").increment(1);
            return;
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let lane_index = lane_of(record.key.as_deref(), self.lanes);
        let lane = state.lanes[lane_index].get_or_insert_with(|| {
            let (queue, receiver) = mpsc::unbounded_channel();
            let span = tracing::info_span!("lane", consumer = self.name, topic = %tp.0, partition = tp.1, lane = lane_index);
            let task = self
                .runtime
                .spawn(run_lane(self.clone(), tp.clone(), state.cancel.clone(), receiver).instrument(span));
            Lane { queue, task }
        });
        if lane.queue.send(record).is_err() {
            // The lane ended (its partition is being revoked): the record stays unfinished and
            // uncommitted, for the next owner.
            tracing::debug!(
                consumer = self.name,
                "lane closed; record left to the next owner"
            );
        }
    }

    /// Pause partitions with too much in flight, resume those that drained.
    fn flow_control(&self, consumer: &KafkaConsumer) {
        let total = self.in_flight.load(Ordering::SeqCst);
        let max_total = self.settings.max_in_flight;
        let max_partition = self.settings.max_partition_in_flight;
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        {
            let mut partitions = self.partitions.lock().unwrap();
            for ((topic, partition), state) in partitions.iter_mut() {
                let mine = state.tracker.in_flight();
                if !state.paused && (mine >= max_partition || total >= max_total) {
                    state.paused = true;
                    pause.add_partition(topic, *partition);
                } else if state.paused && mine <= max_partition / 2 && total <= max_total / 2 {
                    state.paused = false;
                    resume.add_partition(topic, *partition);
                }
            }
        }
        if pause.count() > 0 {
            tracing::debug!(
                consumer = self.name,
                partitions = pause.count(),
                in_flight = total,
                "pausing"
            );
            metrics::counter!("orderflow_consumer_pauses_total", "consumer" => self.name)
                .increment(pause.count() as u64);
            if let Err(error) = consumer.pause(&pause) {
                tracing::warn!(consumer = self.name, %error, "could not pause partitions");
            }
        }
        if resume.count() > 0 {
            tracing::debug!(
                consumer = self.name,
                partitions = resume.count(),
                in_flight = total,
                "resuming"
            );
            if let Err(error) = consumer.resume(&resume) {
                tracing::warn!(consumer = self.name, %error, "could not resume partitions");
            }
        }
    }

    /// Commit every partition's position that moved.
    fn commit(&self, consumer: &KafkaConsumer, mode: CommitMode) {
        let mut offsets = TopicPartitionList::new();
        let mut taken = Vec::new();
        {
            let mut partitions = self.partitions.lock().unwrap();
            for ((topic, partition), state) in partitions.iter_mut() {
                if let Some(position) = state.tracker.take_commit() {
                    let _ =
                        offsets.add_partition_offset(topic, *partition, Offset::Offset(position));
                    taken.push(((topic.clone(), *partition), position));
                }
            }
        }
        if taken.is_empty() {
            return;
        }
        if let Err(error) = consumer.commit(&offsets, mode) {
            tracing::warn!(consumer = self.name, %error, "committing offsets failed; will try again");
            let mut partitions = self.partitions.lock().unwrap();
            for (tp, position) in taken {
                if let Some(state) = partitions.get_mut(&tp) {
                    state.tracker.commit_failed(position);
                }
            }
        }
    }

    /// Stop the lanes of these partitions (their retries end at once), wait for them, commit what
    /// they finished, synchronously, and forget the partitions.
    fn give_up(&self, consumer: &KafkaConsumer, tps: &[Tp]) {
        let mut tasks = Vec::new();
        {
            let mut partitions = self.partitions.lock().unwrap();
            for tp in tps {
                if let Some(state) = partitions.get_mut(tp) {
                    state.cancel.cancel();
                    for lane in state.lanes.iter_mut().filter_map(Option::take) {
                        tasks.push(lane.task);
                    }
                }
            }
        }
        // A lane ends at its next wait; one in the middle of an attempt finishes that attempt.
        let deadline = Instant::now() + Duration::from_secs(30);
        while tasks.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut offsets = TopicPartitionList::new();
        {
            let mut partitions = self.partitions.lock().unwrap();
            for tp in tps {
                if let Some(state) = partitions.remove(tp) {
                    self.in_flight
                        .fetch_sub(state.tracker.in_flight(), Ordering::SeqCst);
                    if let Some(position) = state.tracker.position() {
                        let _ = offsets.add_partition_offset(&tp.0, tp.1, Offset::Offset(position));
                    }
                }
                self.handler.revoked(&tp.0, tp.1);
            }
        }
        if offsets.count() > 0 {
            match consumer.commit(&offsets, CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    consumer = self.name,
                    partitions = offsets.count(),
                    "committed the finished records of the partitions given up"
                ),
                Err(error) => {
                    tracing::warn!(consumer = self.name, %error, "could not commit the partitions given up; their next owner replays the uncommitted records (harmless: handlers are idempotent)")
                }
            }
        }
    }

    /// Records of a lane are finished (those finished before are not counted again).
    fn finish(&self, tp: &Tp, offsets: &[i64]) {
        let mut partitions = self.partitions.lock().unwrap();
        if let Some(state) = partitions.get_mut(tp) {
            let finished = offsets
                .iter()
                .filter(|offset| state.tracker.finish(**offset))
                .count();
            self.in_flight.fetch_sub(finished, Ordering::SeqCst);
        }
    }
}

/// The lane of a key: records of one key always share a lane.
fn lane_of(key: Option<&[u8]>, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

async fn run_lane(
    shared: Arc<Shared>,
    tp: Tp,
    cancel: CancellationToken,
    mut queue: mpsc::UnboundedReceiver<Record>,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            received = queue.recv() => match received {
                Some(record) => record,
                None => return,
            },
        };
        let mut records = vec![first];
        while records.len() < shared.settings.max_batch {
            match queue.try_recv() {
                Ok(record) => records.push(record),
                Err(_) => break,
            }
        }
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        let started = Instant::now();
        record_ages(&shared, &tp, &records);
        match process(&shared, &tp, records, &cancel).await {
            Ok(()) => {
                metrics::histogram!("orderflow_batch_records", "consumer" => shared.name)
                    .record(offsets.len() as f64);
                metrics::histogram!("orderflow_batch_seconds", "consumer" => shared.name)
                    .record(started.elapsed().as_secs_f64());
                shared.finish(&tp, &offsets);
            }
            Err(Cancelled) => return,
        }
    }
}

/// How old each record of a batch is when its batch starts: the wall clock minus the record's
/// Kafka timestamp (for the outbox topics, the time Connect handed it over), in
/// `orderflow_record_age_seconds{consumer, topic}`.
fn record_ages(shared: &Shared, tp: &Tp, records: &[Record]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let histogram = metrics::histogram!("orderflow_record_age_seconds", "consumer" => shared.name, "topic" => tp.0.clone());
    for record in records {
        if let Some(timestamp) = record.timestamp {
            histogram.record((now - timestamp).max(0) as f64 / 1000.0);
        }
    }
}

/// The batch was given up (revocation or shutdown).
pub(crate) struct Cancelled;

/// What became of a batch's records, for `orderflow_events_total`.
#[derive(Default)]
struct Outcomes {
    applied: u64,
    duplicate: u64,
    not_handled: u64,
    dead_lettered: u64,
    parked: u64,
}

/// Decode, apply (retrying, splitting), dead-letter: one batch of one lane.
///
/// An undecodable record is dead-lettered in its place: the records before it are applied first,
/// then it is dead-lettered (which parks its key, for a handler that sequences dead letters), so
/// the records of its key after it are parked behind it. A handler that wants every record (the
/// archive) gets undecodable ones in its batch instead, and their dead letters after it.
async fn process(
    shared: &Shared,
    tp: &Tp,
    mut records: Vec<Record>,
    cancel: &CancellationToken,
) -> Result<(), Cancelled> {
    let mut counts = Outcomes::default();
    let everything = matches!(shared.interest, Interest::Everything);
    let mut late: Vec<(Record, Reason, String)> = Vec::new();
    let mut wanted = Vec::with_capacity(records.len());
    for mut record in records.drain(..) {
        match decode(shared, &record, cancel).await? {
            Ok(event) => {
                if shared.interest.admits(event.name()) {
                    record.event = Some(event);
                    wanted.push(record);
                } else {
                    counts.not_handled += 1;
                }
            }
            Err(error) if everything => {
                late.push((record.clone(), Reason::Undecodable, error));
                wanted.push(record);
            }
            Err(error) => {
                apply_and_dead_letter(
                    shared,
                    tp,
                    &std::mem::take(&mut wanted),
                    cancel,
                    &mut counts,
                )
                .await?;
                send_dead_letter(shared, &record, Reason::Undecodable, &error, cancel).await?;
                counts.dead_lettered += 1;
            }
        }
    }
    apply_and_dead_letter(shared, tp, &wanted, cancel, &mut counts).await?;
    for (record, reason, error) in &late {
        send_dead_letter(shared, record, *reason, error, cancel).await?;
        counts.dead_lettered += 1;
    }
    for (outcome, n) in [
        ("applied", counts.applied),
        ("duplicate", counts.duplicate),
        ("not_handled", counts.not_handled),
        ("dead_lettered", counts.dead_lettered),
        ("parked", counts.parked),
    ] {
        if n > 0 {
            metrics::counter!("orderflow_events_total", "consumer" => shared.name, "outcome" => outcome).increment(n);
        }
    }
    Ok(())
}

/// Apply records (none: nothing to do) and send the dead letters that leaves, counting outcomes.
async fn apply_and_dead_letter(
    shared: &Shared,
    tp: &Tp,
    wanted: &[Record],
    cancel: &CancellationToken,
    counts: &mut Outcomes,
) -> Result<(), Cancelled> {
    if wanted.is_empty() {
        return Ok(());
    }
    let (outcome, sent) = apply(shared, tp, wanted, cancel).await?;
    let refused = outcome.dead_letters.len() as u64 + sent.refused;
    counts.duplicate += outcome.duplicates as u64;
    counts.parked += outcome.parked as u64 + sent.parked;
    counts.applied += (wanted.len() as u64)
        .saturating_sub(outcome.duplicates as u64 + outcome.parked as u64 + refused + sent.parked)
        + outcome.drained as u64;
    counts.dead_lettered += refused + sent.drained_dead;
    for (index, reason, error) in &outcome.dead_letters {
        send_dead_letter(shared, &wanted[*index], *reason, error, cancel).await?;
    }
    for (record, reason, error) in &outcome.drained_dead_letters {
        send_dead_letter(shared, record, *reason, error, cancel).await?;
        counts.dead_lettered += 1;
    }
    Ok(())
}

/// The record's event; the inner `Err` is why it can never be decoded.
async fn decode(
    shared: &Shared,
    record: &Record,
    cancel: &CancellationToken,
) -> Result<Result<AnyEvent, String>, Cancelled> {
    if let Some(event) = &record.event {
        return Ok(Ok(event.clone()));
    }
    decode_payload(
        shared.name,
        &shared.codec,
        record.payload.as_deref(),
        shared.backoff(),
        cancel,
    )
    .await
}

/// Decode a record's value through the registry, retrying while the registry is unreachable; the
/// inner `Err` is why it can never be decoded.
pub(crate) async fn decode_payload(
    consumer: &'static str,
    codec: &EventCodec,
    payload: Option<&[u8]>,
    mut backoff: Backoff,
    cancel: &CancellationToken,
) -> Result<Result<AnyEvent, String>, Cancelled> {
    let Some(payload) = payload else {
        return Ok(Err("the record has no value".into()));
    };
    loop {
        match codec.decode(payload).await {
            Ok(event) => return Ok(Ok(event)),
            Err(error) if error.is_retriable() => {
                wait_out(consumer, "decode", &error.to_string(), &mut backoff, cancel).await?
            }
            Err(error) => return Ok(Err(error.to_string())),
        }
    }
}

/// What `apply` did one record at a time, beyond the `Applied` it returns.
#[derive(Default)]
struct SentAlready {
    /// Dead letters of the batch's records sent already.
    refused: u64,
    /// Records parked.
    parked: u64,
    /// Dead letters of drained parked events (not records of the batch) sent already.
    drained_dead: u64,
}

/// Apply the records as one batch; if it fails, one by one, each finished (and its dead letter
/// sent) as soon as it is done, so the records before one that keeps failing are committed. Returns
/// what is left to dead-letter and what was done record by record.
async fn apply(
    shared: &Shared,
    tp: &Tp,
    records: &[Record],
    cancel: &CancellationToken,
) -> Result<(Applied, SentAlready), Cancelled> {
    match apply_batch(shared, records, cancel).await? {
        Ok(applied) => Ok((applied, SentAlready::default())),
        Err(reason) => {
            tracing::info!(consumer = shared.name, records = records.len(), %reason, "the batch failed; applying its records one by one");
            metrics::counter!("orderflow_batch_splits_total", "consumer" => shared.name)
                .increment(1);
            let mut all = Applied::default();
            let mut sent = SentAlready::default();
            for record in records {
                let one = match apply_batch(shared, std::slice::from_ref(record), cancel).await? {
                    Ok(applied) => applied,
                    Err(reason) => Applied {
                        dead_letters: vec![(0, Reason::Refused, reason)],
                        ..Applied::default()
                    },
                };
                all.duplicates += one.duplicates;
                all.drained += one.drained;
                sent.parked += one.parked as u64;
                for (_, reason, error) in &one.dead_letters {
                    send_dead_letter(shared, record, *reason, error, cancel).await?;
                    sent.refused += 1;
                }
                // A parked event refused while its key was drained: its dead letter before the
                // record is finished, like any other.
                all.drained_dead_letters.extend(one.drained_dead_letters);
                for (record, reason, error) in all.drained_dead_letters.drain(..) {
                    send_dead_letter(shared, &record, reason, &error, cancel).await?;
                    sent.drained_dead += 1;
                }
                shared.finish(tp, &[record.offset]);
            }
            Ok((all, sent))
        }
    }
}

/// One batch, retried while it fails transiently (a single record) or split (several). The inner
/// `Err` asks for a split.
async fn apply_batch(
    shared: &Shared,
    records: &[Record],
    cancel: &CancellationToken,
) -> Result<Result<Applied, String>, Cancelled> {
    let mut backoff = shared.backoff();
    loop {
        let batch = Batch {
            consumer: shared.name,
            records,
            cancel,
            codec: &shared.codec,
            retry_cap: shared.settings.retry_cap,
        };
        match shared.handler.apply(&batch).await {
            Ok(applied) => return Ok(Ok(applied)),
            Err(BatchError::Split(reason)) => return Ok(Err(reason)),
            Err(BatchError::Cancelled) => return Err(Cancelled),
            // A batch of several records is not retried whole: one record's passing fault (a
            // deadlock, a lock timeout, a lost connection) would hold back the records before it
            // too. Applied one by one, the records before it are committed and only it waits.
            Err(BatchError::Transient(error)) if records.len() > 1 => {
                return Ok(Err(format!(
                    "transient failure in a batch of {}: {error:#}",
                    records.len()
                )));
            }
            Err(BatchError::Transient(error)) => {
                wait_out(
                    shared.name,
                    "apply",
                    &format!("{error:#}"),
                    &mut backoff,
                    cancel,
                )
                .await?
            }
        }
    }
}

/// Produce the dead letter, retrying until Kafka has it (moving on without it would lose it).
async fn send_dead_letter(
    shared: &Shared,
    record: &Record,
    reason: Reason,
    error: &str,
    cancel: &CancellationToken,
) -> Result<(), Cancelled> {
    tracing::error!(
        consumer = shared.name,
        topic = %record.topic,
        partition = record.partition,
        offset = record.offset,
        reason = reason.as_str(),
        error,
        "permanent failure; dead-lettering the record"
    );
    // First the key is parked behind it (committed), then the copy is produced: a crash between
    // the two delivers the record again, which dead-letters it again; never is a later event of
    // its key applied before it.
    let mut backoff = shared.backoff();
    while let Err(e) = shared
        .handler
        .dead_lettered(shared.name, record, reason, error)
        .await
    {
        wait_out(shared.name, "park", &format!("{e:#}"), &mut backoff, cancel).await?;
    }
    let mut backoff = shared.backoff();
    while let Err(e) = dead_letter::send(&shared.producer, shared.name, record, reason, error).await
    {
        wait_out(
            shared.name,
            "dead_letter",
            &format!("{e:#}"),
            &mut backoff,
            cancel,
        )
        .await?;
    }
    metrics::counter!("orderflow_dead_letters_total", "consumer" => shared.name, "reason" => reason.as_str()).increment(1);
    Ok(())
}

/// Wait out the backoff's next delay after a transient failure at `stage` (logged and counted);
/// `Err(Cancelled)` at once when `cancel` fires.
pub(crate) async fn wait_out(
    consumer: &'static str,
    stage: &'static str,
    error: &str,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Result<(), Cancelled> {
    let delay = backoff.next_delay();
    metrics::counter!("orderflow_retries_total", "consumer" => consumer, "stage" => stage)
        .increment(1);
    tracing::warn!(
        consumer,
        stage,
        error,
        attempt = backoff.attempts(),
        delay_ms = delay.as_millis() as u64,
        "transient failure; retrying"
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = cancel.cancelled() => Err(Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_has_the_same_lane() {
        let lanes: Vec<usize> = (0..100)
            .map(|i| lane_of(Some(format!("order-{i}").as_bytes()), 4))
            .collect();
        assert!(lanes.iter().all(|l| *l < 4));
        assert!(
            (0..4).all(|l| lanes.contains(&l)),
            "keys spread over every lane"
        );
        assert_eq!(lane_of(Some(b"order-7"), 4), lane_of(Some(b"order-7"), 4));
        assert_eq!(lane_of(Some(b"anything"), 1), 0);
    }
}
