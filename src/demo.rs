//! `orderflow demo`: drives a running platform the way its users would. It seeds a catalogue and
//! customers, places a few hundred orders whose mix gives every outcome (completed, out of stock,
//! payment declined, cancelled by the customer before and after payment), plays the carrier
//! (dispatching and delivering confirmed orders after a short delay), shows progress until every order
//! is finished, and prints a summary from the reporting endpoints.
//!
//! Everything goes through the services' HTTP APIs; nothing here touches a database or Kafka. Each
//! call carries a bearer token from the identity provider, got as a real client would: the back office
//! (catalogue, customers, reports, orders placed on a customer's behalf) is the `orderflow-demo`
//! client's service account (client credentials, role admin); the carrier is the `orderflow-carrier`
//! client; and the demo user `alice` (password grant) is linked to the first customer registered
//! (onboarding: her `customer_id` attribute set through the admin API), whose orders she places and
//! cancels herself with her own token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_platform::config::setting;
use orderflow_service_kit::identity::{IdentityAdmin, TokenSource};
use serde_json::{Value, json};

/// How the demo is sized.
pub struct DemoOptions {
    pub orders: usize,
    pub customers: usize,
    /// Seed of the order mix, so a run can be repeated.
    pub seed: u64,
    /// Orders placed at once.
    pub concurrency: usize,
}

/// What one order is meant to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Plan {
    /// Confirmed, dispatched, delivered.
    Complete,
    /// Asks for a product with little stock: the first few go through, the rest run out.
    Scarce,
    /// Its total ends in 13 minor units: the mock gateway declines it.
    Decline,
    /// The customer cancels right after placing it.
    CancelEarly,
    /// The customer cancels once it is confirmed: refund and stock back.
    CancelAfterPayment,
}

struct Urls {
    orders: String,
    inventory: String,
    customers: String,
    shipping: String,
    reports: String,
}

/// An HTTP client that calls as one identity: every request carries that identity's bearer token.
struct Api {
    http: reqwest::Client,
    token: TokenSource,
}

impl Api {
    async fn post(&self, url: String, body: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.token.bearer().await?)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        read(response).await
    }

    async fn get(&self, url: String) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.token.bearer().await?)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        read(response).await
    }
}

/// The demo's customer user, linked to the first customer registered.
const DEMO_CUSTOMER_USER: &str = "alice";

fn url_of(key: &'static str) -> anyhow::Result<String> {
    let address: SocketAddr = setting(key)?;
    Ok(format!("http://{address}"))
}

/// A small deterministic generator (xorshift64*), enough for choosing an order mix.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let urls = Urls {
        orders: url_of("ORDERFLOW_ORDERS_HTTP")?,
        inventory: url_of("ORDERFLOW_INVENTORY_HTTP")?,
        customers: url_of("ORDERFLOW_CUSTOMERS_HTTP")?,
        shipping: url_of("ORDERFLOW_SHIPPING_HTTP")?,
        reports: url_of("ORDERFLOW_REPORTS_HTTP")?,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let office =
        TokenSource::client_credentials("orderflow-demo", "ORDERFLOW_IDENTITY_DEMO_SECRET")?;
    let admin = Api {
        http: http.clone(),
        token: office.clone(),
    };
    let carrier = Api {
        http: http.clone(),
        token: TokenSource::client_credentials(
            "orderflow-carrier",
            "ORDERFLOW_IDENTITY_CARRIER_SECRET",
        )?,
    };
    let alice = Api {
        http: http.clone(),
        token: TokenSource::password(
            "orderflow-demo",
            "ORDERFLOW_IDENTITY_DEMO_SECRET",
            DEMO_CUSTOMER_USER,
            &setting::<String>("ORDERFLOW_IDENTITY_DEMO_PASSWORD")?,
        )?,
    };
    admin
        .token
        .bearer()
        .await
        .context("a token for the demo's back office")?;
    let run_id =
        format!("{:06x}", uuid::Uuid::new_v4().as_u128() as u32 & 0xff_ffff).to_uppercase();
    let mut mix = Mix(options.seed.max(1));

    // The catalogue: plenty of most things, little of two, and one priced so that a single unit is declined.
    let catalogue = [
        ("KETTLE", "Stovetop kettle", 3_450, 10_000),
        ("MUG", "Stoneware mug", 1_290, 10_000),
        ("TEAPOT", "Glass teapot", 2_990, 10_000),
        ("GRINDER", "Burr grinder", 8_900, 10_000),
        ("FILTER", "Paper filters (100)", 490, 10_000),
        ("SCALE", "Kitchen scale", 2_450, 10_000),
        ("BEANS", "Single-origin beans 250 g", 1_150, 10_000),
        ("TIN", "Storage tin", 990, 10_000),
        ("PRESS", "French press (limited run)", 3_900, 6),
        ("DRIPPER", "Porcelain dripper (last stock)", 2_700, 4),
        ("GIFTCARD", "Gift card", 2_013, 10_000),
    ];
    let step = ProgressBar::new_spinner();
    step.set_message("seeding the catalogue");
    let mut skus = BTreeMap::new();
    for (name, title, price, on_hand) in catalogue {
        let sku = format!("DEMO-{run_id}-{name}");
        let body = json!({"sku": sku, "name": title, "unit_price": {"amount_minor": price, "currency": "EUR"}, "on_hand": on_hand});
        expect_status(
            admin
                .post(format!("{}/products", urls.inventory), body)
                .await?,
            201,
            "create a product",
        )?;
        skus.insert(name, sku);
    }
    step.set_message("registering customers");
    let mut customers = Vec::new();
    for i in 0..options.customers {
        let body = json!({
            "name": format!("Demo Customer {i}"),
            "email": format!("demo-{}-{i}@example.org", run_id.to_lowercase()),
            "phone": format!("+4930{:07}", 1_000_000 + i),
            "shipping_address": {"line1": format!("{} Demo Street", i + 1), "city": "Berlin", "postal_code": "10115", "country": "DE"}
        });
        let (_, customer) = expect_status(
            admin
                .post(format!("{}/customers", urls.customers), body)
                .await?,
            201,
            "register a customer",
        )?;
        customers.push(customer["id"].as_str().context("customer id")?.to_string());
    }
    step.set_message(format!(
        "linking the user {DEMO_CUSTOMER_USER} to the first customer"
    ));
    let first: orderflow_schemas::CustomerId = customers
        .first()
        .context("the demo needs at least one customer")?
        .parse()?;
    IdentityAdmin::new(office)?
        .link_customer(DEMO_CUSTOMER_USER, first)
        .await
        .with_context(|| format!("link the demo user {DEMO_CUSTOMER_USER} to customer {first}"))?;
    step.finish_and_clear();
    println!(
        "The demo user {DEMO_CUSTOMER_USER} is customer {first}: {} of the orders are placed with her own token.",
        options.orders.div_ceil(customers.len())
    );

    // The mix of orders.
    let ample = [
        "KETTLE", "MUG", "TEAPOT", "GRINDER", "FILTER", "SCALE", "BEANS", "TIN",
    ];
    let mut orders = Vec::new();
    for i in 0..options.orders {
        let customer = customers[i % customers.len()].clone();
        let plan = match mix.below(100) {
            0..=64 => Plan::Complete,
            65..=76 => Plan::Scarce,
            77..=84 => Plan::Decline,
            85..=91 => Plan::CancelEarly,
            _ => Plan::CancelAfterPayment,
        };
        let lines: Vec<(String, u64)> = match plan {
            Plan::Scarce => vec![(
                skus[if mix.below(2) == 0 {
                    "PRESS"
                } else {
                    "DRIPPER"
                }]
                .clone(),
                1,
            )],
            Plan::Decline => vec![(skus["GIFTCARD"].clone(), 1)],
            _ => {
                let count = 1 + mix.below(3);
                (0..count)
                    .map(|_| {
                        (
                            skus[ample[mix.below(ample.len() as u64) as usize]].clone(),
                            1 + mix.below(3),
                        )
                    })
                    .collect()
            }
        };
        orders.push((plan, customer, lines));
    }

    let started = Instant::now();
    let bar = ProgressBar::new(orders.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    bar.set_prefix("placing");
    let placed: Vec<anyhow::Result<(Plan, String)>> = futures::stream::iter(orders)
        .map(|(plan, customer, lines)| {
            let (urls, bar) = (&urls, &bar);
            // The first customer's orders are alice's own; the others the back office places.
            let api = if customer == customers[0] {
                &alice
            } else {
                &admin
            };
            async move {
                let order_id = place(api, urls, &customer, &lines).await?;
                if plan == Plan::CancelEarly {
                    api.post(
                        format!("{}/orders/{order_id}/cancel", urls.orders),
                        json!({"reason_detail": "ordered by mistake"}),
                    )
                    .await?;
                }
                bar.inc(1);
                Ok((plan, order_id))
            }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    bar.finish();
    let placed: Vec<(Plan, String)> = placed.into_iter().collect::<anyhow::Result<_>>()?;

    // Play the carrier and the second thoughts until every order is finished.
    let bar = ProgressBar::new(placed.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    bar.set_prefix("finishing");
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending = placed;
    let deadline = Instant::now() + Duration::from_secs(600);
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!(
                "{} orders did not finish within 10 minutes; see the worker log",
                pending.len()
            );
        }
        let mut still = Vec::new();
        for (plan, order_id) in pending {
            let (_, order) = admin
                .get(format!("{}/orders/{order_id}", urls.orders))
                .await?;
            match (order["status"].as_str().unwrap_or_default(), plan) {
                ("COMPLETED", _) => {
                    *outcomes.entry("COMPLETED".into()).or_default() += 1;
                    bar.inc(1);
                }
                ("CANCELLED", _) => {
                    let reason = order["cancellation"]["reason"].as_str().unwrap_or("?");
                    *outcomes.entry(format!("CANCELLED ({reason})")).or_default() += 1;
                    bar.inc(1);
                }
                ("CONFIRMED", Plan::CancelAfterPayment) => {
                    admin
                        .post(
                            format!("{}/orders/{order_id}/cancel", urls.orders),
                            json!({"reason_detail": "found it cheaper"}),
                        )
                        .await?;
                    still.push((plan, order_id));
                }
                ("CONFIRMED", _) => {
                    let (status, shipment) = carrier
                        .get(format!("{}/orders/{order_id}/shipment", urls.shipping))
                        .await?;
                    if status == 200 && shipment["status"] == "CREATED" {
                        let id = shipment["shipment_id"].as_str().unwrap_or_default();
                        let tracking = format!("DEMO{}", &order_id[..8].to_uppercase());
                        carrier
                            .post(
                                format!("{}/shipments/{id}/dispatch", urls.shipping),
                                json!({"carrier": "DemoPost", "tracking_number": tracking}),
                            )
                            .await?;
                    }
                    still.push((plan, order_id));
                }
                ("SHIPPED", _) => {
                    let (status, shipment) = carrier
                        .get(format!("{}/orders/{order_id}/shipment", urls.shipping))
                        .await?;
                    if status == 200 && shipment["status"] == "DISPATCHED" {
                        let id = shipment["shipment_id"].as_str().unwrap_or_default();
                        carrier
                            .post(
                                format!("{}/shipments/{id}/deliver", urls.shipping),
                                json!({}),
                            )
                            .await?;
                    }
                    still.push((plan, order_id));
                }
                _ => still.push((plan, order_id)),
            }
        }
        pending = still;
        bar.set_message(format!("{} in flight", pending.len()));
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    bar.finish_with_message(format!(
        "all finished in {:.1}s",
        started.elapsed().as_secs_f64()
    ));

    println!("\nOutcomes (from the orders service):");
    for (outcome, count) in &outcomes {
        println!("  {outcome:<38} {count:>5}");
    }
    print_reports(&admin, &urls).await;
    Ok(())
}

/// A short summary from the reporting endpoints (over Elasticsearch, fed by the analytics sink).
async fn print_reports(admin: &Api, urls: &Urls) {
    // The sink indexes a finished order a moment after its last event; give it a few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("\nReports (from Elasticsearch, via {}):", urls.reports);
    let today = chrono::Utc::now().format("%Y-%m-%d");
    match admin
        .get(format!(
            "{}/reports/sales?from={today}&to={today}&interval=day",
            urls.reports
        ))
        .await
    {
        Ok((200, body)) => println!("  sales today:   {body}"),
        Ok((status, body)) => println!("  sales today:   {status} {body}"),
        Err(error) => println!("  sales today:   unavailable ({error:#})"),
    }
    match admin
        .get(format!("{}/reports/outcomes", urls.reports))
        .await
    {
        Ok((200, body)) => println!("  outcomes:      {body}"),
        Ok((status, body)) => println!("  outcomes:      {status} {body}"),
        Err(error) => println!("  outcomes:      unavailable ({error:#})"),
    }
    match admin
        .get(format!("{}/reports/top-customers?limit=3", urls.reports))
        .await
    {
        Ok((200, body)) => println!("  top customers: {body}"),
        Ok((status, body)) => println!("  top customers: {status} {body}"),
        Err(error) => println!("  top customers: unavailable ({error:#})"),
    }
}

async fn place(
    api: &Api,
    urls: &Urls,
    customer: &str,
    lines: &[(String, u64)],
) -> anyhow::Result<String> {
    // The orders service learns about customers and products through their events: retry until it has.
    let order_id = retry_while_unknown(
        || {
            api.post(
                format!("{}/orders", urls.orders),
                json!({"customer_id": customer}),
            )
        },
        201,
    )
    .await?["order_id"]
        .as_str()
        .context("order id")?
        .to_string();
    for (sku, quantity) in lines {
        retry_while_unknown(
            || {
                api.post(
                    format!("{}/orders/{order_id}/lines", urls.orders),
                    json!({"sku": sku, "quantity": quantity}),
                )
            },
            200,
        )
        .await?;
    }
    expect_status(
        api.post(
            format!("{}/orders/{order_id}/place", urls.orders),
            json!({}),
        )
        .await?,
        200,
        "place an order",
    )?;
    Ok(order_id)
}

async fn retry_while_unknown<F, Fut>(call: F, want: u16) -> anyhow::Result<Value>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(u16, Value)>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = call().await?;
        if status == want {
            return Ok(body);
        }
        if status != 422 || Instant::now() > deadline {
            bail!("unexpected answer {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn expect_status(answer: (u16, Value), want: u16, what: &str) -> anyhow::Result<(u16, Value)> {
    if answer.0 == want {
        Ok(answer)
    } else {
        bail!("{what}: expected {want}, got {} {}", answer.0, answer.1)
    }
}

async fn read(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
