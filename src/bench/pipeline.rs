//! The load: the bench's customers and product, then open-loop phases, in which order i is started
//! at its scheduled time t0 + i/rate whether or not earlier orders are done (draft, a line, `place`);
//! what happens to it afterwards is learned from its events (`events.rs`). Every latency is
//! measured from the scheduled time, so a slow pipeline cannot slow the offered load down
//! (no coordinated omission), and how far behind schedule the starts ran is recorded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use orderflow_service_kit::identity::TokenSource;
use serde_json::{Value, json};

use super::events::{OrderTimes, Tracker};

/// Wall-clock time in seconds since the epoch (every timestamp here is on this one machine's clock).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub struct Target {
    pub http: reqwest::Client,
    /// The bench's own token (client credentials of `orderflow-bench`, role admin): catalogue,
    /// customers and orders.
    pub office: TokenSource,
    /// The carrier's token (client credentials of `orderflow-carrier`): dispatch and deliver.
    pub carrier: TokenSource,
    pub orders: String,
    pub inventory: String,
    pub customers: String,
    pub shipping: String,
    pub elasticsearch: String,
    pub index: String,
    pub customer_ids: Vec<String>,
    pub sku: String,
    /// How often the searcher asks Elasticsearch.
    pub poll: Duration,
    /// How long a carrier call is retried on a transport error or a 5xx (the same
    /// `Idempotency-Key` every time): a few seconds for the bench, longer than an outage for
    /// `orderflow chaos`.
    pub patience: Duration,
}

impl Target {
    /// The services' addresses from the environment, the bench's and the carrier's identities,
    /// Elasticsearch's `index`; customers and product are filled in by [`setup`].
    pub fn from_env(
        http: reqwest::Client,
        elasticsearch: &str,
        index: &str,
        poll: Duration,
        patience: Duration,
    ) -> anyhow::Result<Target> {
        let url_of = |key: &'static str| -> anyhow::Result<String> {
            let address: std::net::SocketAddr = orderflow_platform::config::setting(key)?;
            Ok(format!("http://{address}"))
        };
        Ok(Target {
            http,
            office: TokenSource::client_credentials(
                "orderflow-bench",
                "ORDERFLOW_IDENTITY_BENCH_SECRET",
            )?,
            carrier: TokenSource::client_credentials(
                "orderflow-carrier",
                "ORDERFLOW_IDENTITY_CARRIER_SECRET",
            )?,
            orders: url_of("ORDERFLOW_ORDERS_HTTP")?,
            inventory: url_of("ORDERFLOW_INVENTORY_HTTP")?,
            customers: url_of("ORDERFLOW_CUSTOMERS_HTTP")?,
            shipping: url_of("ORDERFLOW_SHIPPING_HTTP")?,
            elasticsearch: elasticsearch.trim_end_matches('/').to_string(),
            index: index.to_string(),
            customer_ids: Vec::new(),
            sku: String::new(),
            poll,
            patience,
        })
    }
}

/// Units of the run's product when it is created.
pub const STOCK: i64 = 100_000_000;

pub async fn setup(target_base: Target, run_id: &str, customers: usize) -> anyhow::Result<Target> {
    let mut target = target_base;
    let sku = format!("BENCH-{run_id}-ITEM");
    let body = json!({"sku": sku, "name": "Bench item", "unit_price": {"amount_minor": 1_000, "currency": "EUR"}, "on_hand": STOCK});
    expect(
        post_with(
            &target.http,
            &target.office,
            format!("{}/products", target.inventory),
            body,
        )
        .await?,
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
            post_with(
                &target.http,
                &target.office,
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

/// Starts order `n` (draft, a line, place) and hands it to the tracker; the events do the rest.
async fn start_order(
    target: Arc<Target>,
    tracker: Arc<Tracker>,
    phase: usize,
    n: usize,
    scheduled: f64,
) -> anyhow::Result<()> {
    let started = now();
    let customer = &target.customer_ids[n % target.customer_ids.len()];
    let http = &target.http;
    let (_, draft) = retry_unknown(
        || {
            post_with(
                http,
                &target.office,
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
            post_with(
                http,
                &target.office,
                format!("{}/orders/{order_id}/lines", target.orders),
                json!({"sku": target.sku, "quantity": 1 + (n % 3) as u64}),
            )
        },
        200,
    )
    .await?;
    // Known to the tracker before `place`, so none of the saga's events can come first.
    tracker.insert(OrderTimes {
        order_id: order_id.clone(),
        phase,
        scheduled,
        started,
        place_sent: now(),
        status: "PLACED".into(),
        ..Default::default()
    });
    let answer = post_with(
        http,
        &target.office,
        format!("{}/orders/{order_id}/place", target.orders),
        json!({}),
    )
    .await;
    let answered = now();
    let failed = match &answer {
        Ok((200, _)) => None,
        Ok((status, body)) => Some(format!("place {order_id}: {status} {body}")),
        Err(error) => Some(format!("place {order_id}: {error:#}")),
    };
    tracker.update(&order_id, |o| {
        o.place_answered = answered;
        if failed.is_some() {
            o.status = "PLACE FAILED".into();
        }
    });
    match failed {
        Some(error) => bail!(error),
        None => Ok(()),
    }
}

/// One open-loop phase: order i starts at t0 + i/rate whether or not earlier ones are done.
pub struct Phase {
    pub number: usize,
    pub rate: f64,
    pub seconds: f64,
    /// t0, the first scheduled start (seconds since the epoch).
    pub started: f64,
    /// When the phase stopped waiting for its orders.
    pub ended: f64,
    pub orders: Vec<OrderTimes>,
    pub errors: Vec<String>,
    /// Scheduling stopped early: more orders in flight than `backlog_limit`.
    pub aborted_backlog: bool,
    pub in_flight_at_start: usize,
}

pub struct PhasePlan {
    pub number: usize,
    pub rate: f64,
    pub seconds: f64,
    /// Order numbers start here (they pick the customer and the quantity).
    pub first: usize,
    /// How long after the last scheduled start to wait for the orders to settle.
    pub drain: Duration,
    /// Stop starting orders once more than this many of the phase's are in flight.
    pub backlog_limit: Option<usize>,
}

pub async fn run_phase(
    target: Arc<Target>,
    tracker: Arc<Tracker>,
    plan: PhasePlan,
) -> anyhow::Result<Phase> {
    let count = (plan.rate * plan.seconds).round().max(1.0) as usize;
    let in_flight_at_start = tracker.in_flight();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let lead = Duration::from_millis(20);
    let t0 = tokio::time::Instant::now() + lead;
    let wall0 = now() + lead.as_secs_f64();
    let mut aborted_backlog = false;
    let mut last_scheduled = wall0;
    let check_every = ((plan.rate / 4.0).ceil() as usize).max(1);
    for i in 0..count {
        let offset = i as f64 / plan.rate;
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(offset)).await;
        if let Some(limit) = plan.backlog_limit
            && i % check_every == 0
            && tracker
                .phase(plan.number)
                .iter()
                .filter(|o| !o.finished())
                .count()
                > limit
        {
            aborted_backlog = true;
            break;
        }
        last_scheduled = wall0 + offset;
        let (target, tracker, errors) = (target.clone(), tracker.clone(), errors.clone());
        let (number, n) = (plan.number, plan.first + i);
        tokio::spawn(async move {
            if let Err(error) = start_order(target, tracker, number, n, wall0 + offset).await {
                errors.lock().unwrap().push(format!("{error:#}"));
            }
        });
    }
    let started_orders = if aborted_backlog {
        ((last_scheduled - wall0) * plan.rate).round() as usize + 1
    } else {
        count
    };
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs_f64((last_scheduled - now()).max(0.0))
        + plan.drain;
    loop {
        let orders = tracker.phase(plan.number);
        let failed = errors.lock().unwrap().len();
        let settled = orders.iter().filter(|o| o.settled()).count();
        if (orders.len() + failed >= started_orders && settled == orders.len())
            || tokio::time::Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let orders = tracker.phase(plan.number);
    let errors = errors.lock().unwrap().clone();
    if orders.is_empty() {
        bail!(
            "no order went through at {}/s: {}",
            plan.rate,
            errors.first().cloned().unwrap_or_default()
        );
    }
    Ok(Phase {
        number: plan.number,
        rate: plan.rate,
        seconds: plan.seconds,
        started: wall0,
        ended: now(),
        orders,
        errors,
        aborted_backlog,
        in_flight_at_start,
    })
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

/// POST to an orderflow API with a bearer token of `token`.
pub async fn post_with(
    http: &reqwest::Client,
    token: &TokenSource,
    url: String,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let response = http
        .post(&url)
        .bearer_auth(token.bearer().await?)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    read(response).await
}

/// A POST with an `Idempotency-Key` and a bearer token of `token`: the services answer a retry with
/// the first call's answer (keys are scoped per token subject).
pub async fn post_keyed(
    http: &reqwest::Client,
    token: &TokenSource,
    url: String,
    body: Value,
    key: &str,
) -> anyhow::Result<(u16, Value)> {
    let response = http
        .post(&url)
        .bearer_auth(token.bearer().await?)
        .header("Idempotency-Key", key)
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
