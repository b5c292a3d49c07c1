//! The reports agree with the services' databases: for one customer's orders, finished through the
//! whole pipeline (saga, connectors, analytics sink into Elasticsearch), each figure the reporting
//! endpoints give equals what SQL over the orders database says. The orders are in a currency no other
//! test uses, so that the reports over all orders (sales, outcomes), filtered by that currency and by
//! the test's start, see only them.

use serde_json::{Value, json};

use crate::shop::*;
use crate::support::platform::{Platform, eventually, platform};

/// Only this test orders in Swiss francs.
const CURRENCY: &str = "CHF";

async fn report(p: &Platform, path: String) -> Value {
    eventually(&format!("the reports to answer {path}"), SAGA, || async {
        let (status, body) = p.get(format!("{}{path}", p.reports)).await;
        if status == 200 {
            Ok(body)
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await
}

#[tokio::test]
async fn each_report_equals_sql_over_the_orders_database() {
    let p = platform();
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let customer = register_customer(p).await;
    let sku = create_product_in(p, 77_777, 20, CURRENCY).await;
    let other = create_product_in(p, 1_500, 20, CURRENCY).await;

    // Two completed orders, one cancelled after payment.
    let mut finished = Vec::new();
    for lines in [
        vec![(sku.as_str(), 1)],
        vec![(sku.as_str(), 2), (other.as_str(), 3)],
    ] {
        let order_id = place_order_in(p, &customer, &lines, CURRENCY).await;
        order_reaches(p, &order_id, "CONFIRMED").await;
        let shipment_id = shipment(p, &order_id).await["shipment_id"]
            .as_str()
            .unwrap()
            .to_string();
        dispatch(p, &shipment_id).await;
        order_reaches(p, &order_id, "SHIPPED").await;
        deliver(p, &shipment_id).await;
        order_reaches(p, &order_id, "COMPLETED").await;
        finished.push(order_id);
    }
    let cancelled = place_order_in(p, &customer, &[(sku.as_str(), 4)], CURRENCY).await;
    order_reaches(p, &cancelled, "CONFIRMED").await;
    let (status, body) = p
        .post(format!("{}/orders/{cancelled}/cancel", p.orders), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    order_reaches(p, &cancelled, "CANCELLED").await;
    finished.push(cancelled);

    // Every order indexed by the sink, with its final status.
    for order_id in &finished {
        let expected = order(p, order_id).await["status"].clone();
        eventually(
            &format!("order {order_id} in Elasticsearch as {expected}"),
            SAGA,
            || async {
                let (status, body) = p
                    .get(format!("{}/reports/orders/{order_id}", p.reports))
                    .await;
                if status == 200 && body["status"] == expected {
                    Ok(())
                } else {
                    Err(format!("{status} {body}"))
                }
            },
        )
        .await;
    }

    // What SQL over the orders database says.
    let db = p.db("orders").await;
    let (completed, revenue): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(total_minor), 0)::bigint FROM orders
         WHERE customer_id = $1::uuid AND status = 'COMPLETED'",
    )
    .bind(&customer)
    .fetch_one(&db)
    .await
    .unwrap();
    let units: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(l.quantity), 0)::bigint FROM order_lines l JOIN orders o USING (order_id)
         WHERE o.customer_id = $1::uuid AND o.status = 'COMPLETED'",
    )
    .bind(&customer)
    .fetch_one(&db)
    .await
    .unwrap();
    let (sku_units, sku_price, sku_orders): (i64, i64, i64) = sqlx::query_as(
        "SELECT sum(l.quantity)::bigint, min(l.unit_price_minor), count(DISTINCT o.order_id) FROM order_lines l
         JOIN orders o USING (order_id) WHERE l.sku = $1 AND o.status = 'COMPLETED'",
    )
    .bind(&sku)
    .fetch_one(&db)
    .await
    .unwrap();
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM orders WHERE customer_id = $1::uuid GROUP BY status ORDER BY status",
    )
    .bind(&customer)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!((completed, units), (2, 6), "the scenario itself");

    // Top customers (revenue of completed orders since the test began).
    let top = report(
        p,
        format!("/reports/top-customers?from={since}&limit=100&currency={CURRENCY}"),
    )
    .await;
    let ours = top["rankings"][0]["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["customer_id"] == customer.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("customer {customer} is not among the top customers: {top}"));
    assert_eq!(ours["orders"].as_i64(), Some(completed), "{ours}");
    assert_eq!(ours["units"].as_i64(), Some(units), "{ours}");
    assert_eq!(ours["revenue_minor"].as_i64(), Some(revenue), "{ours}");

    // Units of the product at each unit price.
    let products = report(p, format!("/reports/products?sku={sku}")).await;
    let product = &products["products"][0];
    assert_eq!(product["sku"], sku.as_str(), "{products}");
    assert_eq!(product["units"].as_i64(), Some(sku_units), "{products}");
    assert_eq!(
        product["prices"][0]["unit_price_minor"].as_i64(),
        Some(sku_price),
        "{products}"
    );
    assert_eq!(
        product["prices"][0]["orders"].as_i64(),
        Some(sku_orders),
        "{products}"
    );

    // Sales over time: completed orders in the currency since the test began, by day.
    let today = chrono::Utc::now().format("%Y-%m-%d");
    let sales = report(
        p,
        format!("/reports/sales?from={since}&to={today}&interval=day&currency={CURRENCY}"),
    )
    .await;
    assert_eq!(
        sales["totals"]["orders"].as_i64(),
        Some(completed),
        "{sales}"
    );
    assert_eq!(sales["totals"]["units"].as_i64(), Some(units), "{sales}");
    assert_eq!(
        sales["totals"]["revenue"],
        json!([{"currency": CURRENCY, "amount_minor": revenue}]),
        "{sales}"
    );
    let bucket_orders: i64 = sales["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["orders"].as_i64().unwrap())
        .sum();
    assert_eq!(bucket_orders, completed, "{sales}");

    // Outcomes: completed against cancelled, by reason.
    let reasons: Vec<(String, i64)> = sqlx::query_as(
        "SELECT cancel_reason, count(*) FROM orders WHERE customer_id = $1::uuid AND status = 'CANCELLED'
         GROUP BY cancel_reason ORDER BY cancel_reason",
    )
    .bind(&customer)
    .fetch_all(&db)
    .await
    .unwrap();
    let outcomes = report(
        p,
        format!("/reports/outcomes?from={since}&currency={CURRENCY}"),
    )
    .await;
    assert_eq!(
        outcomes["completed"].as_i64(),
        Some(completed),
        "{outcomes}"
    );
    assert_eq!(
        outcomes["cancelled"].as_i64(),
        Some(reasons.iter().map(|(_, n)| n).sum()),
        "{outcomes}"
    );
    let mut by_reason: Vec<(String, i64)> = outcomes["cancelled_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_string(),
                c["orders"].as_i64().unwrap(),
            )
        })
        .collect();
    by_reason.sort();
    assert_eq!(by_reason, reasons, "{outcomes}");

    // Order search: the customer's orders by final status.
    let search = report(
        p,
        format!("/reports/orders?customer_id={customer}&page_size=50"),
    )
    .await;
    let mut found: Vec<(String, i64)> = Vec::new();
    for order in search["orders"].as_array().unwrap() {
        let status = order["status"].as_str().unwrap().to_string();
        match found.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => found.push((status, 1)),
        }
    }
    found.sort();
    assert_eq!(found, statuses, "{search}");
    assert_eq!(
        search["total"].as_i64(),
        Some(statuses.iter().map(|(_, n)| n).sum())
    );
}
