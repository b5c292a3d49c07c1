//! The bench's view of its orders, driven by the pipeline's own events instead of polling: one Kafka
//! consumer tails every saga topic from its end and timestamps each record (for the CDC figures); a
//! reactor plays the carrier (`ShipmentCreated` → dispatch, `ShipmentDispatched` → deliver) and learns
//! CONFIRMED, COMPLETED or CANCELLED, with the orders service's own timeline from the terminal event's
//! snapshot; a searcher asks Elasticsearch every 100 ms, in one `ids` query for all of them, which
//! completed orders have become searchable. Per order the bench makes five HTTP calls and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use orderflow_schemas::catalog::AnyEvent;
use orderflow_schemas::orders::{OrderTimeline, OrdersEvent};
use orderflow_schemas::registry::EventCodec;
use orderflow_schemas::shipping::ShippingEvent;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::pipeline::{Target, now, post, post_keyed};

/// The topics that carry the events of an order.
pub const TOPICS: [&str; 4] = [
    "orders.events",
    "inventory.events",
    "payments.events",
    "shipping.events",
];

/// Every timestamp of one order, seconds since the epoch (one machine, one clock).
#[derive(Debug, Clone, Default)]
pub struct OrderTimes {
    pub order_id: String,
    pub phase: usize,
    /// When the open-loop schedule says this order starts: every latency is measured from here.
    pub scheduled: f64,
    /// When the bench actually sent its first call (the draft).
    pub started: f64,
    pub place_sent: f64,
    pub place_answered: f64,
    pub confirmed_seen: Option<f64>,
    pub shipment_seen: Option<f64>,
    pub dispatch_sent: Option<f64>,
    pub dispatched_seen: Option<f64>,
    pub deliver_sent: Option<f64>,
    pub finished_seen: Option<f64>,
    // The orders service's timeline, from the OrderCompleted/OrderCancelled snapshot.
    pub placed_at: Option<f64>,
    pub confirmed_at: Option<f64>,
    pub shipped_at: Option<f64>,
    pub completed_at: Option<f64>,
    pub cancelled_at: Option<f64>,
    pub searchable: Option<f64>,
    /// PLACED until an event says otherwise; COMPLETED, CANCELLED; or a carrier call's failure.
    pub status: String,
}

impl OrderTimes {
    /// Nothing more will happen to it that the bench waits for.
    /// Whether the order reached its terminal state (COMPLETED or CANCELLED): what the step-up
    /// rule's latency bound is about.
    pub fn finished(&self) -> bool {
        self.status != "PLACED"
    }

    pub fn settled(&self) -> bool {
        match self.status.as_str() {
            "COMPLETED" => self.searchable.is_some(),
            "PLACED" => false,
            _ => true,
        }
    }
}

/// A record of one of our topics as the tail saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kafka_ts: f64,
    pub received: f64,
    pub bytes: usize,
}

/// The orders of the run and every record seen, shared by the tail, the reactor, the searcher and
/// the phases.
#[derive(Default)]
pub struct Tracker {
    pub orders: Mutex<HashMap<String, OrderTimes>>,
    /// By event id (the `id` header).
    pub seen: Mutex<HashMap<String, Seen>>,
    pub carrier_errors: Mutex<Vec<String>>,
}

impl Tracker {
    pub fn insert(&self, times: OrderTimes) {
        self.orders
            .lock()
            .unwrap()
            .insert(times.order_id.clone(), times);
    }

    pub fn phase(&self, phase: usize) -> Vec<OrderTimes> {
        self.orders
            .lock()
            .unwrap()
            .values()
            .filter(|o| o.phase == phase)
            .cloned()
            .collect()
    }

    /// Orders of any phase not settled yet.
    pub fn in_flight(&self) -> usize {
        self.orders
            .lock()
            .unwrap()
            .values()
            .filter(|o| !o.settled())
            .count()
    }

    pub fn update(&self, order_id: &str, f: impl FnOnce(&mut OrderTimes)) -> bool {
        match self.orders.lock().unwrap().get_mut(order_id) {
            Some(order) => {
                f(order);
                true
            }
            None => false,
        }
    }
}

/// A record the reactor acts on.
struct Reaction {
    order_id: String,
    event_type: String,
    received: f64,
    payload: Vec<u8>,
}

const ACTS_ON: [&str; 5] = [
    "orderflow.orders.OrderConfirmed",
    "orderflow.orders.OrderCompleted",
    "orderflow.orders.OrderCancelled",
    "orderflow.shipping.ShipmentCreated",
    "orderflow.shipping.ShipmentDispatched",
];

/// The tail thread, the reactor and the searcher; stopped together.
pub struct Driver {
    stop: Arc<AtomicBool>,
    tail: std::thread::JoinHandle<anyhow::Result<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Driver {
    pub fn start(
        bootstrap: &str,
        registry: &str,
        target: Arc<Target>,
        tracker: Arc<Tracker>,
    ) -> anyhow::Result<Driver> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set(
                "group.id",
                format!("orderflow-bench-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            // The broker answers a fetch as soon as a record arrives (fetch.min.bytes is 1); the wait
            // only bounds idle fetches, which at 100 ms cost the broker ten requests a second.
            .set("fetch.wait.max.ms", "100")
            .create()
            .context("the bench's Kafka consumer")?;
        let mut assignment = TopicPartitionList::new();
        for topic in TOPICS {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("metadata of {topic}"))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (_, high) =
                        consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                    assignment.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
                }
            }
        }
        consumer.assign(&assignment)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = mpsc::unbounded_channel();
        let tail = {
            let stop = stop.clone();
            let tracker = tracker.clone();
            std::thread::Builder::new()
                .name("bench-tail".into())
                .spawn(move || tail(consumer, stop, tracker, sender))?
        };
        let codec = Arc::new(EventCodec::new(registry)?);
        let tasks = vec![
            tokio::spawn(react(receiver, codec, target.clone(), tracker.clone())),
            tokio::spawn(search(target, tracker, stop.clone())),
        ];
        Ok(Driver { stop, tail, tasks })
    }

    pub fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.abort();
        }
        self.tail
            .join()
            .map_err(|_| anyhow::anyhow!("the Kafka tail panicked"))?
    }
}

fn header(message: &rdkafka::message::BorrowedMessage<'_>, key: &str) -> Option<String> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

fn tail(
    consumer: BaseConsumer,
    stop: Arc<AtomicBool>,
    tracker: Arc<Tracker>,
    reactions: mpsc::UnboundedSender<Reaction>,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        // A broker that is down (or restarting) is reported here; librdkafka reconnects by itself.
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "the bench's Kafka tail: an error from Kafka; going on");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let received = now();
        let event_type = header(&message, "event_type").unwrap_or_default();
        let Some(id) = header(&message, "id") else {
            continue;
        };
        let payload = message.payload().unwrap_or_default();
        tracker.seen.lock().unwrap().insert(
            id,
            Seen {
                kafka_ts: message.timestamp().to_millis().unwrap_or(0) as f64 / 1000.0,
                received,
                bytes: payload.len(),
            },
        );
        if !ACTS_ON.contains(&event_type.as_str()) {
            continue;
        }
        let Some(order_id) = message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
        else {
            continue;
        };
        if tracker.orders.lock().unwrap().contains_key(&order_id) {
            let _ = reactions.send(Reaction {
                order_id,
                event_type,
                received,
                payload: payload.to_vec(),
            });
        }
    }
    Ok(())
}

fn millis(t: &orderflow_schemas::time::Timestamp) -> f64 {
    t.as_millis() as f64 / 1000.0
}

fn apply_timeline(order: &mut OrderTimes, timeline: &OrderTimeline) {
    order.placed_at = timeline.placed_at.as_ref().map(millis);
    order.confirmed_at = timeline.confirmed_at.as_ref().map(millis);
    order.shipped_at = timeline.shipped_at.as_ref().map(millis);
    order.completed_at = timeline.completed_at.as_ref().map(millis);
    order.cancelled_at = timeline.cancelled_at.as_ref().map(millis);
}

async fn react(
    mut reactions: mpsc::UnboundedReceiver<Reaction>,
    codec: Arc<EventCodec>,
    target: Arc<Target>,
    tracker: Arc<Tracker>,
) {
    while let Some(r) = reactions.recv().await {
        if r.event_type == "orderflow.orders.OrderConfirmed" {
            tracker.update(&r.order_id, |o| {
                o.confirmed_seen.get_or_insert(r.received);
            });
            continue;
        }
        let event = match codec.decode(&r.payload).await {
            Ok(event) => event,
            Err(error) => {
                tracker.carrier_errors.lock().unwrap().push(format!(
                    "decode {} of {}: {error}",
                    r.event_type, r.order_id
                ));
                continue;
            }
        };
        match event {
            AnyEvent::Orders(OrdersEvent::OrderCompleted(e)) => {
                tracker.update(&r.order_id, |o| {
                    apply_timeline(o, &e.order.timeline);
                    o.status = "COMPLETED".into();
                    o.finished_seen.get_or_insert(r.received);
                });
            }
            AnyEvent::Orders(OrdersEvent::OrderCancelled(e)) => {
                tracker.update(&r.order_id, |o| {
                    apply_timeline(o, &e.order.timeline);
                    o.status = "CANCELLED".into();
                    o.finished_seen.get_or_insert(r.received);
                });
            }
            AnyEvent::Shipping(ShippingEvent::ShipmentCreated(e)) => {
                let mut first = false;
                tracker.update(&r.order_id, |o| {
                    first = o.shipment_seen.is_none();
                    o.shipment_seen.get_or_insert(r.received);
                });
                if first {
                    let body = json!({"carrier": "BenchPost", "tracking_number": format!("B{}", &r.order_id[..8])});
                    let url = format!("{}/shipments/{}/dispatch", target.shipping, e.shipment_id);
                    tokio::spawn(carrier_call(
                        target.clone(),
                        tracker.clone(),
                        r.order_id,
                        url,
                        body,
                        true,
                    ));
                }
            }
            AnyEvent::Shipping(ShippingEvent::ShipmentDispatched(e)) => {
                let mut first = false;
                tracker.update(&r.order_id, |o| {
                    first = o.dispatched_seen.is_none();
                    o.dispatched_seen.get_or_insert(r.received);
                });
                if first {
                    let url = format!("{}/shipments/{}/deliver", target.shipping, e.shipment_id);
                    tokio::spawn(carrier_call(
                        target.clone(),
                        tracker.clone(),
                        r.order_id,
                        url,
                        json!({}),
                        false,
                    ));
                }
            }
            _ => {}
        }
    }
}

/// One carrier call (dispatch or deliver), retried on a transport error or a 5xx for
/// `target.patience`, with one `Idempotency-Key`, so a retry after a lost answer is not a second
/// dispatch. A 404 is retried for a few seconds too: PostgreSQL streams a transaction to logical
/// decoding once its commit record is flushed, a moment before other sessions see it, so on a busy
/// machine the event of a new shipment can reach the carrier, and the carrier's call the shipping
/// service, before the shipment is visible there (seen under `orderflow chaos`).
async fn carrier_call(
    target: Arc<Target>,
    tracker: Arc<Tracker>,
    order_id: String,
    url: String,
    body: Value,
    dispatch: bool,
) {
    let sent = now();
    tracker.update(&order_id, |o| {
        if dispatch {
            o.dispatch_sent = Some(sent);
        } else {
            o.deliver_sent = Some(sent);
        }
    });
    let mut key = uuid::Uuid::new_v4().to_string();
    let first = std::time::Instant::now();
    let deadline = first + target.patience;
    let mut last = String::new();
    for attempt in 0u64.. {
        if attempt > 0 {
            if std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis((200 * attempt).min(1_000))).await;
        }
        match post_keyed(
            &target.http,
            &target.carrier,
            url.clone(),
            body.clone(),
            &key,
        )
        .await
        {
            Ok((status, _)) if status < 300 => return,
            // A stored answer: the next try is a new request, with a new key.
            Ok((404, answer)) if first.elapsed() < Duration::from_secs(5) => {
                key = uuid::Uuid::new_v4().to_string();
                last = format!("404 {answer}")
            }
            Ok((status, answer)) if status < 500 && status != 429 => {
                last = format!("{status} {answer}");
                break;
            }
            Ok((status, answer)) => last = format!("{status} {answer}"),
            Err(error) => last = format!("{error:#}"),
        }
    }
    let what = if dispatch { "dispatch" } else { "deliver" };
    tracker
        .carrier_errors
        .lock()
        .unwrap()
        .push(format!("{what} {order_id}: {last}"));
    tracker.update(&order_id, |o| {
        if o.status == "PLACED" {
            o.status = format!("{} FAILED", what.to_uppercase());
        }
    });
}

/// Every 100 ms, one `ids` query (in chunks of 1000) for the completed orders not yet searchable.
/// `_search` only sees refreshed documents, like any reader of the index.
async fn search(target: Arc<Target>, tracker: Arc<Tracker>, stop: Arc<AtomicBool>) {
    let url = format!(
        "{}/{}/_search?filter_path=hits.hits._id",
        target.elasticsearch, target.index
    );
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(target.poll).await;
        let waiting: Vec<String> = tracker
            .orders
            .lock()
            .unwrap()
            .values()
            .filter(|o| o.status == "COMPLETED" && o.searchable.is_none())
            .map(|o| o.order_id.clone())
            .collect();
        for chunk in waiting.chunks(1000) {
            let body =
                json!({"query": {"ids": {"values": chunk}}, "_source": false, "size": chunk.len()});
            let Ok((200, answer)) = post(&target.http, url.clone(), body).await else {
                continue;
            };
            let at = now();
            for hit in answer["hits"]["hits"].as_array().into_iter().flatten() {
                if let Some(id) = hit["_id"].as_str() {
                    tracker.update(id, |o| {
                        o.searchable.get_or_insert(at);
                    });
                }
            }
        }
    }
}
