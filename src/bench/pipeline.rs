//! The pipeline under load: orders placed at a fixed offered rate through the orders API, the carrier
//! played as soon as a shipment exists, and every stage of each order timed (client clock for the
//! calls, the orders service's timeline for the state changes, Elasticsearch for searchability).
//! A tailing consumer on `orders.events` timestamps every record, for the CDC lag.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};

/// Wall-clock time in seconds since the epoch (every timestamp here is on this one machine's clock).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub struct Target {
    pub http: reqwest::Client,
    pub orders: String,
    pub inventory: String,
    pub customers: String,
    pub shipping: String,
    pub elasticsearch: String,
    pub index: String,
    pub customer_ids: Vec<String>,
    pub sku: String,
    pub poll: Duration,
    pub order_timeout: Duration,
}

/// Every timestamp of one order, seconds since the epoch.
#[derive(Debug, Clone, Default)]
pub struct OrderTimes {
    pub order_id: String,
    pub place_sent: f64,
    pub place_answered: f64,
    pub placed_at: Option<f64>,
    pub confirmed_at: Option<f64>,
    pub shipment_seen: Option<f64>,
    pub dispatch_sent: Option<f64>,
    pub shipped_at: Option<f64>,
    pub deliver_sent: Option<f64>,
    pub completed_at: Option<f64>,
    pub searchable: Option<f64>,
    pub status: String,
}

pub async fn setup(target_base: Target, run_id: &str, customers: usize) -> anyhow::Result<Target> {
    let mut target = target_base;
    let sku = format!("BENCH-{run_id}-ITEM");
    let body = json!({"sku": sku, "name": "Bench item", "unit_price": {"amount_minor": 1_000, "currency": "EUR"}, "on_hand": 100_000_000});
    expect(
        post(&target.http, format!("{}/products", target.inventory), body).await?,
        201,
        "create the bench product",
    )?;
    for i in 0..customers {
        let body = json!({
            "name": format!("Bench Customer {i}"),
            "email": format!("bench-{}-{i}@example.org", run_id.to_lowercase()),
            "phone": format!("+4940{:07}", 1_000_000 + i),
            "shipping_address": {"line1": format!("{} Bench Street", i + 1), "city": "Hamburg", "postal_code": "20095", "country": "DE"}
        });
        let (_, customer) = expect(
            post(
                &target.http,
                format!("{}/customers", target.customers),
                body,
            )
            .await?,
            201,
            "register a bench customer",
        )?;
        target
            .customer_ids
            .push(customer["id"].as_str().context("customer id")?.to_string());
    }
    target.sku = sku;
    Ok(target)
}

/// One order from draft to searchable.
pub async fn drive_order(target: Arc<Target>, n: usize) -> anyhow::Result<OrderTimes> {
    let customer = &target.customer_ids[n % target.customer_ids.len()];
    let http = &target.http;
    let (_, draft) = retry_unknown(
        || {
            post(
                http,
                format!("{}/orders", target.orders),
                json!({"customer_id": customer}),
            )
        },
        201,
    )
    .await?;
    let order_id = draft["order_id"].as_str().context("order id")?.to_string();
    retry_unknown(
        || {
            post(
                http,
                format!("{}/orders/{order_id}/lines", target.orders),
                json!({"sku": target.sku, "quantity": 1 + (n % 3) as u64}),
            )
        },
        200,
    )
    .await?;
    let mut t = OrderTimes {
        order_id: order_id.clone(),
        place_sent: now(),
        ..Default::default()
    };
    expect(
        post(
            http,
            format!("{}/orders/{order_id}/place", target.orders),
            json!({}),
        )
        .await?,
        200,
        "place an order",
    )?;
    t.place_answered = now();

    let deadline = Instant::now() + target.order_timeout;
    loop {
        if Instant::now() > deadline {
            t.status = format!("TIMEOUT ({})", t.status);
            return Ok(t);
        }
        let (_, order) = get(http, format!("{}/orders/{order_id}", target.orders)).await?;
        t.status = order["status"].as_str().unwrap_or_default().to_string();
        match t.status.as_str() {
            "COMPLETED" | "CANCELLED" => {
                let timeline = &order["timeline"];
                t.placed_at = ts(&timeline["placed_at"]);
                t.confirmed_at = ts(&timeline["confirmed_at"]);
                t.shipped_at = ts(&timeline["shipped_at"]);
                t.completed_at = ts(&timeline["completed_at"]);
                break;
            }
            "CONFIRMED" if t.dispatch_sent.is_none() => {
                let (status, shipment) = get(
                    http,
                    format!("{}/orders/{order_id}/shipment", target.shipping),
                )
                .await?;
                if status == 200 && shipment["status"] == "CREATED" {
                    t.shipment_seen.get_or_insert_with(now);
                    let id = shipment["shipment_id"].as_str().unwrap_or_default();
                    let sent = now();
                    let (status, _) = post(
                        http,
                        format!("{}/shipments/{id}/dispatch", target.shipping),
                        json!({"carrier": "BenchPost", "tracking_number": format!("B{}", &order_id[..8])}),
                    )
                    .await?;
                    if status < 300 {
                        t.dispatch_sent = Some(sent);
                    }
                    continue;
                }
            }
            "SHIPPED" if t.deliver_sent.is_none() => {
                let (status, shipment) = get(
                    http,
                    format!("{}/orders/{order_id}/shipment", target.shipping),
                )
                .await?;
                if status == 200 && shipment["status"] == "DISPATCHED" {
                    let id = shipment["shipment_id"].as_str().unwrap_or_default();
                    let sent = now();
                    let (status, _) = post(
                        http,
                        format!("{}/shipments/{id}/deliver", target.shipping),
                        json!({}),
                    )
                    .await?;
                    if status < 300 {
                        t.deliver_sent = Some(sent);
                    }
                    continue;
                }
            }
            _ => {}
        }
        tokio::time::sleep(target.poll).await;
    }
    if t.status != "COMPLETED" {
        return Ok(t);
    }
    // Searchable: a non-realtime GET only sees what a refresh has made visible to search.
    let url = format!(
        "{}/{}/_doc/{order_id}?realtime=false&_source=false",
        target.elasticsearch, target.index
    );
    while Instant::now() < deadline {
        let (status, doc) = get(http, url.clone()).await?;
        if status == 200 && doc["found"] == true {
            t.searchable = Some(now());
            break;
        }
        tokio::time::sleep(target.poll).await;
    }
    Ok(t)
}

/// Orders at `rate` per second for `seconds`; waits until each one is finished (or timed out).
pub struct Phase {
    pub started: f64,
    pub last_placed: f64,
    pub orders: Vec<OrderTimes>,
    pub errors: Vec<String>,
}

pub async fn run_phase(
    target: Arc<Target>,
    rate: f64,
    seconds: f64,
    first: usize,
) -> anyhow::Result<Phase> {
    let count = (rate * seconds).round().max(1.0) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        ticker.tick().await;
        tasks.spawn(drive_order(target.clone(), first + i));
    }
    let last_placed = now();
    let mut phase = Phase {
        started,
        last_placed,
        orders: Vec::new(),
        errors: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(times)) => phase.orders.push(times),
            Ok(Err(error)) => phase.errors.push(format!("{error:#}")),
            Err(error) => phase.errors.push(error.to_string()),
        }
    }
    if phase.orders.is_empty() {
        bail!(
            "no order went through at {rate}/s: {}",
            phase.errors.first().cloned().unwrap_or_default()
        );
    }
    Ok(phase)
}

/// A record seen on orders.events: its Kafka timestamp and when this consumer received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kafka_ts: f64,
    pub received: f64,
    pub bytes: usize,
}

/// Tails a topic from its current end on a thread of its own until stopped.
pub struct Tail {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<HashMap<String, Seen>>>,
}

impl Tail {
    pub fn start(bootstrap: &str, topic: &str) -> anyhow::Result<Tail> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set(
                "group.id",
                format!("orderflow-bench-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .context("the bench's Kafka consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .context("metadata of orders.events")?;
        let mut assignment = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                let (_, high) =
                    consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                assignment.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
            }
        }
        consumer.assign(&assignment)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen = HashMap::new();
            while !flag.load(Ordering::Relaxed) {
                let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let message = message?;
                let received = now();
                let id = message.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == "id")
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                });
                if let Some(id) = id {
                    seen.insert(
                        id,
                        Seen {
                            kafka_ts: message.timestamp().to_millis().unwrap_or(0) as f64 / 1000.0,
                            received,
                            bytes: message.payload().map(|p| p.len()).unwrap_or(0),
                        },
                    );
                }
            }
            Ok(seen)
        });
        Ok(Tail { stop, handle })
    }

    pub fn stop(self) -> anyhow::Result<HashMap<String, Seen>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the Kafka tail panicked"))?
    }
}

fn ts(value: &Value) -> Option<f64> {
    let text = value.as_str()?;
    let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(parsed.timestamp_micros() as f64 / 1e6)
}

async fn retry_unknown<F, Fut>(call: F, want: u16) -> anyhow::Result<(u16, Value)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(u16, Value)>>,
{
    // The orders service learns customers and products from their events: retry until it has.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = call().await?;
        if status == want {
            return Ok((status, body));
        }
        if status != 422 || Instant::now() > deadline {
            bail!("unexpected answer {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn expect(answer: (u16, Value), want: u16, what: &str) -> anyhow::Result<(u16, Value)> {
    if answer.0 == want {
        Ok(answer)
    } else {
        bail!("{what}: expected {want}, got {} {}", answer.0, answer.1)
    }
}

pub async fn post(
    http: &reqwest::Client,
    url: String,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let response = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    read(response).await
}

pub async fn get(http: &reqwest::Client, url: String) -> anyhow::Result<(u16, Value)> {
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    read(response).await
}

async fn read(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
