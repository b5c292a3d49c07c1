//! Each report as an Elasticsearch request (built by a pure function, so tests and the Kibana
//! checks can read it) and its answer turned into the report. Only core aggregations are used:
//! `terms`, `date_histogram`, `sum`, `filter`, `nested`, `reverse_nested` and `composite`.
//!
//! The index has one shard, so `terms` counts and orderings are exact. Sums come back as doubles;
//! amounts below 2^53 minor units are exact and are rounded back to integers.

use chrono::{DateTime, Utc};
use elasticsearch::{Elasticsearch, GetParts, SearchParts};
use serde_json::{Value, json};

use super::model::{
    Amount, Count, CurrencyRanking, CustomerRank, OrderPage, OutcomesReport, PricePoint,
    ProductSales, ProductsReport, SalesBucket, SalesReport, SalesTotals, TopCustomersReport,
};
use super::params::{FinalStatus, Interval, Range, Ranking};
use crate::elastic::{self, EsError};
use crate::sink::document::OrderDocument;

/// Composite pages of the products report.
const COMPOSITE_PAGE: usize = 1000;
/// More currencies than this in one answer is not expected.
const MAX_CURRENCIES: usize = 1000;

fn range_filter(field: &str, range: &Range) -> Option<Value> {
    if range.from.is_none() && range.to.is_none() {
        return None;
    }
    let mut bounds = serde_json::Map::new();
    if let Some(from) = range.from {
        bounds.insert("gte".into(), json!(from.timestamp_millis()));
    }
    if let Some(to) = range.to {
        bounds.insert("lt".into(), json!(to.timestamp_millis()));
    }
    bounds.insert("format".into(), json!("epoch_millis"));
    Some(json!({"range": {field: bounds}}))
}

fn term(field: &str, value: &str) -> Value {
    json!({"term": {field: value}})
}

fn bool_filter(filters: Vec<Option<Value>>) -> Value {
    let filters: Vec<Value> = filters.into_iter().flatten().collect();
    json!({"bool": {"filter": filters}})
}

fn revenue_by_currency() -> Value {
    json!({
        "terms": {"field": "currency", "size": MAX_CURRENCIES, "order": {"_key": "asc"}},
        "aggs": {"revenue": {"sum": {"field": "total_minor"}}}
    })
}

/// The sales report's request: completed orders in `[from, to)` by `closed_at`, per period.
pub fn sales_request(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    currency: Option<&str>,
) -> Value {
    let range = Range {
        from: Some(from),
        to: Some(to),
    };
    json!({
        "size": 0,
        "track_total_hits": true,
        "query": bool_filter(vec![
            Some(term("status", "COMPLETED")),
            range_filter("closed_at", &range),
            currency.map(|c| term("currency", c)),
        ]),
        "aggs": {
            "periods": {
                "date_histogram": {
                    "field": "closed_at",
                    "calendar_interval": interval.calendar_interval(),
                    "min_doc_count": 0,
                    "extended_bounds": {
                        "min": from.timestamp_millis(),
                        "max": to.timestamp_millis() - 1
                    }
                },
                "aggs": {
                    "units": {"sum": {"field": "units"}},
                    "currencies": revenue_by_currency()
                }
            },
            "units": {"sum": {"field": "units"}},
            "currencies": revenue_by_currency()
        }
    })
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// A `sum` aggregation's value as an integer.
fn sum(agg: &Value) -> i64 {
    agg["value"].as_f64().unwrap_or(0.0).round() as i64
}

fn buckets(agg: &Value) -> &[Value] {
    agg["buckets"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn key_string(bucket: &Value) -> String {
    match &bucket["key"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn amounts(currencies: &Value) -> Vec<Amount> {
    buckets(currencies)
        .iter()
        .map(|b| Amount {
            currency: key_string(b),
            amount_minor: sum(&b["revenue"]),
        })
        .collect()
}

fn millis_to_time(value: &Value) -> DateTime<Utc> {
    value
        .as_i64()
        .or_else(|| value.as_f64().map(|f| f as i64))
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
}

/// The sales report from its answer.
pub fn sales_report(
    answer: &Value,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    currency: Option<&str>,
) -> SalesReport {
    let aggs = &answer["aggregations"];
    let buckets = buckets(&aggs["periods"])
        .iter()
        .map(|b| SalesBucket {
            start: millis_to_time(&b["key"]),
            orders: count(&b["doc_count"]),
            units: sum(&b["units"]),
            revenue: amounts(&b["currencies"]),
        })
        .collect();
    SalesReport {
        from,
        to,
        interval,
        currency: currency.map(str::to_string),
        buckets,
        totals: SalesTotals {
            orders: count(&answer["hits"]["total"]["value"]),
            units: sum(&aggs["units"]),
            revenue: amounts(&aggs["currencies"]),
        },
    }
}

/// One page of the products report's request (`after`: the previous page's `after_key`).
pub fn products_request(
    range: &Range,
    sku: Option<&str>,
    currency: Option<&str>,
    after: Option<&Value>,
) -> Value {
    let mut composite = json!({
        "size": COMPOSITE_PAGE,
        "sources": [
            {"sku": {"terms": {"field": "lines.sku"}}},
            {"currency": {"terms": {"field": "lines.currency"}}},
            {"unit_price_minor": {"terms": {"field": "lines.unit_price_minor"}}}
        ]
    });
    if let Some(after) = after {
        composite["after"] = after.clone();
    }
    let line_filter = match sku {
        Some(sku) => term("lines.sku", sku),
        None => json!({"match_all": {}}),
    };
    json!({
        "size": 0,
        "query": bool_filter(vec![
            Some(term("status", "COMPLETED")),
            range_filter("closed_at", range),
            currency.map(|c| term("currency", c)),
        ]),
        "aggs": {
            "lines": {
                "nested": {"path": "lines"},
                "aggs": {
                    "selected": {
                        "filter": line_filter,
                        "aggs": {
                            "prices": {
                                "composite": composite,
                                "aggs": {
                                    "units": {"sum": {"field": "lines.quantity"}},
                                    "revenue": {"sum": {"field": "lines.line_total_minor"}},
                                    "orders": {"reverse_nested": {}}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The price points of one products page, and the key to ask the next page after.
pub fn products_page(answer: &Value) -> (Vec<(String, PricePoint)>, Option<Value>) {
    let prices = &answer["aggregations"]["lines"]["selected"]["prices"];
    let points: Vec<(String, PricePoint)> = buckets(prices)
        .iter()
        .map(|b| {
            let key = &b["key"];
            (
                key["sku"].as_str().unwrap_or_default().to_string(),
                PricePoint {
                    currency: key["currency"].as_str().unwrap_or_default().to_string(),
                    unit_price_minor: key["unit_price_minor"].as_i64().unwrap_or(0),
                    units: sum(&b["units"]),
                    orders: count(&b["orders"]["doc_count"]),
                    revenue_minor: sum(&b["revenue"]),
                },
            )
        })
        .collect();
    let after = if points.is_empty() {
        None
    } else {
        prices.get("after_key").cloned()
    };
    (points, after)
}

/// Group price points (in composite order: sku, currency, price) by product.
pub fn products_report(range: &Range, points: Vec<(String, PricePoint)>) -> ProductsReport {
    let mut products: Vec<ProductSales> = Vec::new();
    for (sku, point) in points {
        match products.last_mut() {
            Some(p) if p.sku == sku => {
                p.units += point.units;
                p.prices.push(point);
            }
            _ => products.push(ProductSales {
                sku,
                units: point.units,
                prices: vec![point],
            }),
        }
    }
    ProductsReport {
        from: range.from,
        to: range.to,
        products,
    }
}

/// The outcomes report's request: finished orders in the range by status, cancellations by reason.
pub fn outcomes_request(range: &Range, currency: Option<&str>) -> Value {
    json!({
        "size": 0,
        "track_total_hits": true,
        "query": bool_filter(vec![
            range_filter("closed_at", range),
            currency.map(|c| term("currency", c)),
        ]),
        "aggs": {
            "statuses": {"terms": {"field": "status", "size": 10}},
            "cancelled": {
                "filter": term("status", "CANCELLED"),
                "aggs": {
                    "reasons": {"terms": {"field": "cancellation_reason", "size": 100}},
                    "from": {"terms": {"field": "cancelled_from", "size": 10}}
                }
            }
        }
    })
}

fn counts(agg: &Value) -> Vec<Count> {
    buckets(agg)
        .iter()
        .map(|b| Count {
            key: key_string(b),
            orders: count(&b["doc_count"]),
        })
        .collect()
}

/// The outcomes report from its answer.
pub fn outcomes_report(answer: &Value, range: &Range) -> OutcomesReport {
    let aggs = &answer["aggregations"];
    let statuses = counts(&aggs["statuses"]);
    let of = |status: &str| {
        statuses
            .iter()
            .find(|c| c.key == status)
            .map_or(0, |c| c.orders)
    };
    OutcomesReport {
        from: range.from,
        to: range.to,
        orders: count(&answer["hits"]["total"]["value"]),
        completed: of("COMPLETED"),
        cancelled: of("CANCELLED"),
        cancelled_by_reason: counts(&aggs["cancelled"]["reasons"]),
        cancelled_from: counts(&aggs["cancelled"]["from"]),
    }
}

/// The top customers' request: per currency, the first `limit` customers by the ranking.
pub fn top_customers_request(
    range: &Range,
    by: Ranking,
    limit: u32,
    currency: Option<&str>,
) -> Value {
    let order = match by {
        Ranking::Revenue => json!([{"revenue": "desc"}, {"_count": "desc"}, {"_key": "asc"}]),
        Ranking::Orders => json!([{"_count": "desc"}, {"revenue": "desc"}, {"_key": "asc"}]),
    };
    json!({
        "size": 0,
        "query": bool_filter(vec![
            Some(term("status", "COMPLETED")),
            range_filter("closed_at", range),
            currency.map(|c| term("currency", c)),
        ]),
        "aggs": {
            "currencies": {
                "terms": {"field": "currency", "size": MAX_CURRENCIES, "order": {"_key": "asc"}},
                "aggs": {
                    "customers": {
                        "terms": {"field": "customer_id", "size": limit, "order": order},
                        "aggs": {
                            "revenue": {"sum": {"field": "total_minor"}},
                            "units": {"sum": {"field": "units"}}
                        }
                    }
                }
            }
        }
    })
}

/// The top customers from their answer.
pub fn top_customers_report(answer: &Value, range: &Range, by: Ranking) -> TopCustomersReport {
    let rankings = buckets(&answer["aggregations"]["currencies"])
        .iter()
        .map(|c| CurrencyRanking {
            currency: key_string(c),
            customers: buckets(&c["customers"])
                .iter()
                .enumerate()
                .map(|(i, b)| CustomerRank {
                    rank: i as u32 + 1,
                    customer_id: key_string(b),
                    orders: count(&b["doc_count"]),
                    units: sum(&b["units"]),
                    revenue_minor: sum(&b["revenue"]),
                })
                .collect(),
        })
        .collect();
    TopCustomersReport {
        from: range.from,
        to: range.to,
        by,
        rankings,
    }
}

/// An order search's request.
pub fn search_request(
    status: Option<FinalStatus>,
    customer_id: Option<&str>,
    date_field: &str,
    range: &Range,
    page: u32,
    page_size: u32,
) -> Value {
    json!({
        "from": u64::from(page - 1) * u64::from(page_size),
        "size": page_size,
        "track_total_hits": true,
        "query": bool_filter(vec![
            status.map(|s| term("status", s.as_str())),
            customer_id.map(|c| term("customer_id", c)),
            range_filter(date_field, range),
        ]),
        "sort": [{"closed_at": "desc"}, {"order_id": "asc"}]
    })
}

/// An order search's page from its answer.
pub fn search_page(answer: &Value, page: u32, page_size: u32) -> Result<OrderPage, EsError> {
    let orders = answer["hits"]["hits"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|hit| {
            serde_json::from_value::<OrderDocument>(hit["_source"].clone()).map_err(|e| {
                EsError::Refused {
                    status: 200,
                    body: format!("an indexed order does not read back: {e}"),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OrderPage {
        total: count(&answer["hits"]["total"]["value"]),
        page,
        page_size,
        orders,
    })
}

/// Run a search; a missing index reads as empty.
pub async fn search(client: &Elasticsearch, index: &str, body: Value) -> Result<Value, EsError> {
    elastic::read_ok(
        client
            .search(SearchParts::Index(&[index]))
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .body(body)
            .send()
            .await,
    )
    .await
}

/// Every price point of the products report, page after page.
pub async fn products(
    client: &Elasticsearch,
    index: &str,
    range: &Range,
    sku: Option<&str>,
    currency: Option<&str>,
) -> Result<ProductsReport, EsError> {
    let mut points = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let answer = search(
            client,
            index,
            products_request(range, sku, currency, after.as_ref()),
        )
        .await?;
        let (page, next) = products_page(&answer);
        let full = page.len() >= COMPOSITE_PAGE;
        points.extend(page);
        match next {
            Some(next) if full => after = Some(next),
            _ => break,
        }
    }
    Ok(products_report(range, points))
}

/// One order's document, `None` if there is none.
pub async fn order(
    client: &Elasticsearch,
    index: &str,
    order_id: &str,
) -> Result<Option<OrderDocument>, EsError> {
    let (status, body) =
        elastic::read(client.get(GetParts::IndexId(index, order_id)).send().await).await?;
    if status == 404 {
        return Ok(None);
    }
    if status >= 400 {
        return Err(EsError::Refused {
            status,
            body: body.to_string(),
        });
    }
    serde_json::from_value(body["_source"].clone())
        .map(Some)
        .map_err(|e| EsError::Refused {
            status,
            body: format!("the indexed order does not read back: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_group_price_points_by_sku() {
        let answer = json!({"aggregations": {"lines": {"selected": {"prices": {
        "after_key": {"sku": "B", "currency": "EUR", "unit_price_minor": 5},
        "buckets": [
            {"key": {"sku": "A", "currency": "EUR", "unit_price_minor": 100}, "doc_count": 2,
             "units": {"value": 3.0}, "revenue": {"value": 300.0}, "orders": {"doc_count": 2}},
            {"key": {"sku": "A", "currency": "EUR", "unit_price_minor": 120}, "doc_count": 1,
             "units": {"value": 1.0}, "revenue": {"value": 120.0}, "orders": {"doc_count": 1}},
            {"key": {"sku": "B", "currency": "EUR", "unit_price_minor": 5}, "doc_count": 1,
             "units": {"value": 7.0}, "revenue": {"value": 35.0}, "orders": {"doc_count": 1}}
        ]}}}}});
        let (points, after) = products_page(&answer);
        assert!(after.is_some());
        let report = products_report(
            &Range {
                from: None,
                to: None,
            },
            points,
        );
        assert_eq!(report.products.len(), 2);
        assert_eq!(report.products[0].units, 4);
        assert_eq!(report.products[0].prices[1].unit_price_minor, 120);
        assert_eq!(report.products[1].prices[0].revenue_minor, 35);
    }

    #[test]
    fn a_missing_index_reads_as_an_empty_report() {
        let range = Range {
            from: None,
            to: None,
        };
        let report = outcomes_report(&json!({"hits": {"total": {"value": 0}}}), &range);
        assert_eq!(
            (report.orders, report.completed, report.cancelled),
            (0, 0, 0)
        );
        let (points, after) = products_page(&json!({}));
        assert!(points.is_empty() && after.is_none());
    }
}
