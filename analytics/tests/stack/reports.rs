//! Every report over what the sink indexed from a varied set of orders, checked against figures the
//! test computes on its own from the same orders' facts (not from the documents).
//!
//! Note: the figures here come from the events the test fed. The end-to-end check against SQL over
//! the services' databases (same orders through the real saga) belongs with the saga's tests.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate};
use orderflow_analytics::reports_routes;
use orderflow_schemas::orders::{CancellationReason, OrderStatus};
use orderflow_schemas::{Currency, CustomerId};
use orderflow_service_kit::server::Server;
use serde_json::{Value, json};

use crate::orders::{DAY, HOUR, MARCH_2, Outcome, Story, varied_stories};
use crate::sink::{Produced, assert_document, produce_stories};
use crate::support::{Fixture, RunningSink};

fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY) * DAY
}

/// Weeks start on Monday; 1970-01-01 was a Thursday.
fn week_start(ms: i64) -> i64 {
    let day = ms.div_euclid(DAY);
    (day - (day + 3).rem_euclid(7)) * DAY
}

fn month_start(ms: i64) -> i64 {
    let date = DateTime::from_timestamp_millis(ms).unwrap().date_naive();
    NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn next_start(start: i64, interval: &str) -> i64 {
    match interval {
        "day" => start + DAY,
        "week" => start + 7 * DAY,
        _ => month_start(start + 32 * DAY),
    }
}

fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn amounts(map: &BTreeMap<String, i64>) -> Value {
    Value::Array(
        map.iter()
            .map(|(c, a)| json!({"currency": c, "amount_minor": a}))
            .collect(),
    )
}

/// The sales report the stories should give, computed from their facts.
fn expected_sales(
    stories: &[Story],
    from: i64,
    to: i64,
    interval: &str,
    currency: Option<&str>,
) -> Value {
    let bucket_of = |ms: i64| match interval {
        "day" => day_start(ms),
        "week" => week_start(ms),
        _ => month_start(ms),
    };
    let sold: Vec<&Story> = stories
        .iter()
        .filter(|s| s.is_completed() && s.closed_ms >= from && s.closed_ms < to)
        .filter(|s| currency.is_none_or(|c| s.currency.as_str() == c))
        .collect();
    let mut buckets = Vec::new();
    let mut start = bucket_of(from);
    while start < to {
        let in_bucket: Vec<&&Story> = sold
            .iter()
            .filter(|s| bucket_of(s.closed_ms) == start)
            .collect();
        let mut revenue = BTreeMap::new();
        for s in &in_bucket {
            *revenue.entry(s.currency.as_str().to_string()).or_insert(0) += s.total_minor();
        }
        buckets.push(json!({
            "start": iso(start),
            "orders": in_bucket.len(),
            "units": in_bucket.iter().map(|s| s.units()).sum::<i64>(),
            "revenue": amounts(&revenue),
        }));
        start = next_start(start, interval);
    }
    let mut revenue = BTreeMap::new();
    for s in &sold {
        *revenue.entry(s.currency.as_str().to_string()).or_insert(0) += s.total_minor();
    }
    json!({
        "from": iso(from),
        "to": iso(to),
        "interval": interval,
        "currency": currency,
        "buckets": buckets,
        "totals": {
            "orders": sold.len(),
            "units": sold.iter().map(|s| s.units()).sum::<i64>(),
            "revenue": amounts(&revenue),
        }
    })
}

/// (currency, unit price) → (units, orders, revenue)
type Prices = BTreeMap<(String, i64), (i64, u64, i64)>;

fn expected_products(stories: &[Story], from: i64, to: i64) -> Value {
    let mut products: BTreeMap<String, Prices> = BTreeMap::new();
    for s in stories
        .iter()
        .filter(|s| s.is_completed() && s.closed_ms >= from && s.closed_ms < to)
    {
        for (sku, q, p) in &s.lines {
            let entry = products
                .entry(sku.clone())
                .or_default()
                .entry((s.currency.as_str().to_string(), *p))
                .or_default();
            entry.0 += i64::from(*q);
            entry.1 += 1;
            entry.2 += i64::from(*q) * p;
        }
    }
    Value::Array(
        products
            .into_iter()
            .map(|(sku, prices)| {
                json!({
                    "sku": sku,
                    "units": prices.values().map(|v| v.0).sum::<i64>(),
                    "prices": prices.into_iter().map(|((currency, price), (units, orders, revenue))| json!({
                        "currency": currency,
                        "unit_price_minor": price,
                        "units": units,
                        "orders": orders,
                        "revenue_minor": revenue,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn ranked(counts: BTreeMap<String, u64>) -> Value {
    let mut list: Vec<(String, u64)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Value::Array(
        list.into_iter()
            .map(|(key, orders)| json!({"key": key, "orders": orders}))
            .collect(),
    )
}

fn name<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn expected_outcomes(stories: &[Story], from: i64, to: i64) -> Value {
    let finished: Vec<&Story> = stories
        .iter()
        .filter(|s| s.closed_ms >= from && s.closed_ms < to)
        .collect();
    let mut reasons = BTreeMap::new();
    let mut froms = BTreeMap::new();
    for s in &finished {
        if let Outcome::Cancelled(reason, from) = s.outcome {
            *reasons.entry(name(reason)).or_insert(0) += 1;
            *froms.entry(name(from)).or_insert(0) += 1;
        }
    }
    let completed = finished.iter().filter(|s| s.is_completed()).count();
    json!({
        "from": iso(from),
        "to": iso(to),
        "orders": finished.len(),
        "completed": completed,
        "cancelled": finished.len() - completed,
        "cancelled_by_reason": ranked(reasons),
        "cancelled_from": ranked(froms),
    })
}

fn expected_top_customers(stories: &[Story], by_orders: bool, limit: usize) -> Value {
    // currency → customer → (revenue, orders, units)
    let mut per: BTreeMap<String, BTreeMap<String, (i64, u64, i64)>> = BTreeMap::new();
    for s in stories.iter().filter(|s| s.is_completed()) {
        let e = per
            .entry(s.currency.as_str().to_string())
            .or_default()
            .entry(s.customer_id.to_string())
            .or_default();
        e.0 += s.total_minor();
        e.1 += 1;
        e.2 += s.units();
    }
    let rankings: Vec<Value> = per
        .into_iter()
        .map(|(currency, customers)| {
            let mut list: Vec<(String, (i64, u64, i64))> = customers.into_iter().collect();
            list.sort_by(|a, b| {
                let (ra, oa, _) = a.1;
                let (rb, ob, _) = b.1;
                let primary = if by_orders {
                    ob.cmp(&oa).then(rb.cmp(&ra))
                } else {
                    rb.cmp(&ra).then(ob.cmp(&oa))
                };
                primary.then(a.0.cmp(&b.0))
            });
            json!({
                "currency": currency,
                "customers": list.into_iter().take(limit).enumerate().map(|(i, (id, (revenue, orders, units)))| json!({
                    "rank": i + 1,
                    "customer_id": id,
                    "orders": orders,
                    "units": units,
                    "revenue_minor": revenue,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(rankings)
}

/// The orders to feed: the varied set, plus orders just outside and just inside March's bounds.
pub fn report_stories() -> Vec<Story> {
    let mut stories = varied_stories(42);
    let edge = CustomerId::new_v7();
    let march_1 = MARCH_2 - DAY;
    let april_1 = MARCH_2 + 30 * DAY;
    stories.push(Story::new(
        edge,
        Currency::EUR,
        &[("MUG-CLASSIC", 9, 1_250)],
        march_1 - 2 * DAY,
        Outcome::Completed,
    ));
    stories.push(Story::new(
        edge,
        Currency::EUR,
        &[("MUG-CLASSIC", 8, 1_250)],
        april_1,
        Outcome::Completed,
    ));
    stories.push(Story::new(
        edge,
        Currency::EUR,
        &[("MUG-CLASSIC", 7, 1_250)],
        april_1 - 1,
        Outcome::Completed,
    ));
    stories.push(Story::new(
        edge,
        Currency::EUR,
        &[("POSTER-A2", 1, 800)],
        march_1,
        Outcome::Cancelled(CancellationReason::Other, OrderStatus::Placed),
    ));
    stories.push(Story::new(
        edge,
        Currency::USD,
        &[("POSTER-A2", 2, 900)],
        march_1 + 5 * HOUR,
        Outcome::Completed,
    ));
    stories
}

fn authenticator() -> orderflow_service_kit::auth::Authenticator {
    orderflow_service_kit::auth::Authenticator::from_env()
        .unwrap_or_else(|e| panic!("auth configuration: {e}"))
}

/// A client that sends an admin token from the identity provider with every request.
async fn admin_client() -> reqwest::Client {
    let token = orderflow_service_kit::testing::TestIdentity::new()
        .admin()
        .await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get_ok(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let (status, body) = get(client, base, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_matches_the_orders_fed() {
    let fixture = Fixture::new("reports").await;
    let stories = report_stories();
    let mut produced = Produced::new();
    produce_stories(&fixture, &stories, &mut produced).await;
    let sink = RunningSink::start(fixture.config());
    fixture
        .wait_caught_up(&fixture.group, Duration::from_secs(120))
        .await;
    sink.stop().await;
    fixture.refresh(&fixture.index).await;

    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        reports_routes(fixture.es.clone(), fixture.index.clone(), authenticator()),
    )
    .await
    .expect("the reports bind a port");
    let base = format!("http://{}", server.spawn());
    let client = admin_client().await;

    let march_1 = MARCH_2 - DAY;
    let april_1 = MARCH_2 + 30 * DAY;

    // Sales per day, week and month; with and without a currency; dates and instants.
    for (query, from, to, interval, currency) in [
        (
            "from=2026-03-01&to=2026-03-31",
            march_1,
            april_1,
            "day",
            None,
        ),
        (
            "from=2026-03-01&to=2026-03-31&interval=week",
            march_1,
            april_1,
            "week",
            None,
        ),
        (
            "from=2026-02-01&to=2026-04-30&interval=month",
            march_1 - 28 * DAY,
            april_1 + 30 * DAY,
            "month",
            None,
        ),
        (
            "from=2026-03-01&to=2026-03-31&interval=week&currency=EUR",
            march_1,
            april_1,
            "week",
            Some("EUR"),
        ),
        (
            "from=2026-03-05T06:00:00Z&to=2026-03-12T18:00:00Z",
            MARCH_2 + 3 * DAY + 6 * HOUR,
            MARCH_2 + 10 * DAY + 18 * HOUR,
            "day",
            None,
        ),
    ] {
        let report = get_ok(&client, &base, &format!("/reports/sales?{query}")).await;
        assert_eq!(
            report,
            expected_sales(&stories, from, to, interval, currency),
            "sales {query}"
        );
    }

    // Units per product and unit price.
    let report = get_ok(
        &client,
        &base,
        "/reports/products?from=2026-03-01&to=2026-03-31",
    )
    .await;
    assert_eq!(
        report["products"],
        expected_products(&stories, march_1, april_1)
    );
    let mugs = get_ok(&client, &base, "/reports/products?sku=MUG-CLASSIC").await;
    let all = expected_products(&stories, i64::MIN / 2, i64::MAX / 2);
    let expected_mugs: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["sku"] == "MUG-CLASSIC")
        .collect();
    assert_eq!(mugs["products"], json!(expected_mugs));
    assert!(
        mugs["products"][0]["prices"].as_array().unwrap().len() >= 2,
        "the mug sold at two prices at least: {mugs}"
    );

    // Outcomes.
    let report = get_ok(
        &client,
        &base,
        "/reports/outcomes?from=2026-03-01&to=2026-03-31",
    )
    .await;
    assert_eq!(report, expected_outcomes(&stories, march_1, april_1));

    // Top customers, by revenue and by orders.
    let report = get_ok(&client, &base, "/reports/top-customers?limit=3").await;
    assert_eq!(report["by"], "revenue");
    assert_eq!(
        report["rankings"],
        expected_top_customers(&stories, false, 3)
    );
    let report = get_ok(&client, &base, "/reports/top-customers?by=orders&limit=100").await;
    assert_eq!(
        report["rankings"],
        expected_top_customers(&stories, true, 100)
    );

    // Order search, in pages: cancelled orders, newest first.
    let mut cancelled: Vec<&Story> = stories.iter().filter(|s| !s.is_completed()).collect();
    cancelled.sort_by(|a, b| {
        b.closed_ms
            .cmp(&a.closed_ms)
            .then(a.order_id.to_string().cmp(&b.order_id.to_string()))
    });
    let mut seen = Vec::new();
    for page in 1.. {
        let body = get_ok(
            &client,
            &base,
            &format!("/reports/orders?status=CANCELLED&page_size=3&page={page}"),
        )
        .await;
        assert_eq!(body["total"], cancelled.len());
        let orders = body["orders"].as_array().unwrap();
        if orders.is_empty() {
            break;
        }
        seen.extend(
            orders
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_string()),
        );
    }
    let expected: Vec<String> = cancelled.iter().map(|s| s.order_id.to_string()).collect();
    assert_eq!(seen, expected);
    // By customer and creation date.
    let customer = stories[0].customer_id;
    let body = get_ok(
        &client,
        &base,
        &format!("/reports/orders?customer_id={customer}&date=created&from=2026-03-01&to=2026-03-10&page_size=100"),
    )
    .await;
    let mut expected: Vec<&Story> = stories
        .iter()
        .filter(|s| {
            s.customer_id == customer
                && s.created_ms >= march_1
                && s.created_ms < march_1 + 10 * DAY
        })
        .collect();
    expected.sort_by(|a, b| {
        b.closed_ms
            .cmp(&a.closed_ms)
            .then(a.order_id.to_string().cmp(&b.order_id.to_string()))
    });
    let ids: Vec<&str> = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        expected
            .iter()
            .map(|s| s.order_id.to_string())
            .collect::<Vec<_>>()
    );
    assert!(!ids.is_empty());

    // One order.
    for story in [&stories[0], cancelled[0]] {
        let body = get_ok(
            &client,
            &base,
            &format!("/reports/orders/{}", story.order_id),
        )
        .await;
        assert_document(&body, story);
    }
    let (status, body) = get(
        &client,
        &base,
        &format!("/reports/orders/{}", uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    // A bad parameter answers 400 naming it.
    for (path, field) in [
        ("/reports/orders/not-a-uuid", "order_id"),
        ("/reports/sales?to=2026-03-31", "from"),
        ("/reports/sales?from=2026-03-01&to=2026-02-01", "to"),
        (
            "/reports/sales?from=2026-03-01&to=2026-03-31&interval=hour",
            "interval",
        ),
        (
            "/reports/sales?from=2026-03-01&to=2026-03-31&currency=euro",
            "currency",
        ),
        ("/reports/sales?from=1900-01-01&to=2026-03-31", "interval"),
        ("/reports/sales?from=yesterday&to=2026-03-31", "from"),
        ("/reports/products?sku=", "sku"),
        ("/reports/outcomes?form=2026-03-01", "form"),
        ("/reports/top-customers?limit=101", "limit"),
        ("/reports/top-customers?by=units", "by"),
        ("/reports/orders?status=SHIPPED", "status"),
        ("/reports/orders?customer_id=42", "customer_id"),
        ("/reports/orders?page=0", "page"),
        ("/reports/orders?page_size=500", "page_size"),
        ("/reports/orders?date=shipped", "date"),
    ] {
        let (status, body) = get(&client, &base, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }

    // The OpenAPI document and health.
    let doc = get_ok(&client, &base, "/openapi.json").await;
    assert!(doc["paths"]["/reports/top-customers"]["get"].is_object());
    assert_eq!(
        get_ok(&client, &base, "/health/ready").await["status"],
        "ready"
    );

    fixture.cleanup(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_a_missing_index_are_empty_and_elasticsearch_down_is_503() {
    let fixture = Fixture::new("reports-empty").await;
    let client = admin_client().await;
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        reports_routes(fixture.es.clone(), fixture.index.clone(), authenticator()),
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.spawn());
    let sales = get_ok(
        &client,
        &base,
        "/reports/sales?from=2026-03-01&to=2026-03-03",
    )
    .await;
    assert_eq!(sales["totals"]["orders"], 0);
    let outcomes = get_ok(&client, &base, "/reports/outcomes").await;
    assert_eq!(outcomes["orders"], 0);
    let page = get_ok(&client, &base, "/reports/orders").await;
    assert_eq!(page["total"], 0);
    let (status, _) = get(
        &client,
        &base,
        &format!("/reports/orders/{}", uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!(status, 404);

    let nowhere = orderflow_analytics::elastic::client("http://127.0.0.1:9").unwrap();
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        reports_routes(nowhere, "orders", authenticator()),
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.spawn());
    let (status, body) = get(&client, &base, "/reports/outcomes").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")));
    let (status, _) = get(&client, &base, "/health/ready").await;
    assert_eq!(status, 503);
    fixture.cleanup(&[], &[]).await;
}
