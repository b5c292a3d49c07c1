//! The Kibana saved objects against the real Elasticsearch: every visualization's aggregation (and
//! the saved search), as derived from the saved object itself, runs on an index made by the sink's
//! own template and answers the figures the orders give.

use std::collections::BTreeMap;

use orderflow_analytics::elastic;
use orderflow_analytics::kibana::{self, SAVED_OBJECTS};
use orderflow_analytics::sink::bulk;
use orderflow_analytics::sink::document::OrderDocument;
use orderflow_schemas::AnyEvent;
use serde_json::Value;

use crate::orders::{DAY, MARCH_2, Outcome, Story, varied_stories};
use crate::support::Fixture;

fn document(story: &Story) -> OrderDocument {
    let AnyEvent::Orders(event) = story.terminal() else {
        unreachable!()
    };
    OrderDocument::from_event(&event).unwrap().unwrap()
}

fn buckets(agg: &Value) -> &Vec<Value> {
    agg["buckets"].as_array().expect("buckets")
}

fn sum(agg: &Value) -> i64 {
    agg["value"].as_f64().unwrap().round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_visualization_runs_against_elasticsearch() {
    let fixture = Fixture::new("kibana").await;
    let objects = kibana::parse(SAVED_OBJECTS).unwrap_or_else(|e| panic!("{e}"));
    let problems = kibana::problems(&objects, &elastic::field_types());
    assert!(problems.is_empty(), "{problems:#?}");

    // An index made exactly as the sink makes it, holding these orders.
    let stories = varied_stories(30);
    elastic::ensure_index(&fixture.es, &fixture.index)
        .await
        .expect("the template and index");
    let docs: Vec<OrderDocument> = stories.iter().map(document).collect();
    let refs: Vec<&OrderDocument> = docs.iter().collect();
    let outcomes = bulk::index(&fixture.es, &fixture.index, &refs)
        .await
        .expect("bulk");
    assert!(
        outcomes.iter().all(bulk::ItemOutcome::is_done),
        "{outcomes:?}"
    );
    fixture.refresh(&fixture.index).await;

    let (from, to) = (MARCH_2 - DAY, MARCH_2 + 30 * DAY);
    let requests = kibana::requests(&objects, from, to).unwrap_or_else(|e| panic!("{e}"));
    let mut answers: BTreeMap<String, Value> = BTreeMap::new();
    for request in requests {
        assert_eq!(
            request.index, "orders",
            "{} queries the data view's index",
            request.id
        );
        let answer = elastic::read_ok(
            fixture
                .es
                .search(elasticsearch::SearchParts::Index(&[&fixture.index]))
                .body(request.body.clone())
                .send()
                .await,
        )
        .await
        .unwrap_or_else(|e| panic!("{} ({}): {e}\n{}", request.id, request.title, request.body));
        assert_eq!(answer["_shards"]["failed"], 0, "{}: {answer}", request.id);
        answers.insert(request.id, answer);
    }
    for o in objects
        .iter()
        .filter(|o| o.kind == "visualization" || o.kind == "search")
    {
        assert!(answers.contains_key(&o.id), "{} was not run", o.id);
    }

    let completed: Vec<&Story> = stories.iter().filter(|s| s.is_completed()).collect();
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    for s in &completed {
        *revenue.entry(s.currency.as_str().to_string()).or_default() += s.total_minor();
    }

    // Sales over time: per day, per currency, revenue; over all days the totals.
    let sales = &answers["orderflow-sales-over-time"]["aggregations"]["4"];
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut orders = 0;
    for day in buckets(sales) {
        for currency in buckets(&day["5"]) {
            *seen
                .entry(currency["key"].as_str().unwrap().to_string())
                .or_default() += sum(&currency["1"]);
            orders += currency["doc_count"].as_u64().unwrap();
        }
    }
    assert_eq!(seen, revenue);
    assert_eq!(orders as usize, completed.len());

    // Outcomes: completed against cancelled, cancellations by reason.
    let pie = &answers["orderflow-outcomes"]["aggregations"]["2"];
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for status in buckets(pie) {
        let n = status["doc_count"].as_u64().unwrap();
        match status["key"].as_str().unwrap() {
            "COMPLETED" => assert_eq!(n as usize, completed.len()),
            "CANCELLED" => {
                assert_eq!(n as usize, stories.len() - completed.len());
                for reason in buckets(&status["3"]) {
                    reasons.insert(
                        reason["key"].as_str().unwrap().to_string(),
                        reason["doc_count"].as_u64().unwrap(),
                    );
                }
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let mut expected_reasons: BTreeMap<String, u64> = BTreeMap::new();
    for s in &stories {
        if let Outcome::Cancelled(reason, _) = s.outcome {
            *expected_reasons
                .entry(
                    serde_json::to_value(reason)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
                .or_default() += 1;
        }
    }
    assert_eq!(reasons, expected_reasons);

    // Top customers: the first of each currency has the most revenue there.
    let table = &answers["orderflow-top-customers"]["aggregations"]["4"];
    for currency in buckets(table) {
        let code = currency["key"].as_str().unwrap();
        let mut per_customer: BTreeMap<String, i64> = BTreeMap::new();
        for s in completed.iter().filter(|s| s.currency.as_str() == code) {
            *per_customer.entry(s.customer_id.to_string()).or_default() += s.total_minor();
        }
        let best = per_customer.values().max().copied().unwrap();
        let first = &buckets(&currency["5"])[0];
        assert_eq!(sum(&first["1"]), best, "{code}");
        assert_eq!(per_customer[first["key"].as_str().unwrap()], best);
    }

    // Units per product and unit price (Vega, through the nested lines).
    let vega =
        &answers["orderflow-units-by-unit-price"]["aggregations"]["completed"]["lines"]["prices"];
    let mut units: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
    for b in buckets(vega) {
        let key = &b["key"];
        units.insert(
            (
                key["sku"].as_str().unwrap().to_string(),
                key["currency"].as_str().unwrap().to_string(),
                key["unit_price_minor"].as_i64().unwrap(),
            ),
            sum(&b["units"]),
        );
    }
    let mut expected_units: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
    for s in &completed {
        for (sku, q, p) in &s.lines {
            *expected_units
                .entry((sku.clone(), s.currency.as_str().to_string(), *p))
                .or_default() += i64::from(*q);
        }
    }
    assert_eq!(units, expected_units);

    // The saved search lists the orders, newest first.
    let hits = answers["orderflow-orders-search"]["hits"]["hits"]
        .as_array()
        .unwrap();
    assert_eq!(hits.len(), stories.len().min(50));
    let newest = stories.iter().map(|s| s.closed_ms).max().unwrap();
    assert_eq!(
        hits[0]["sort"][0].as_i64().unwrap(),
        newest,
        "sorted by closed_at, newest first"
    );

    fixture.cleanup(&[], &[]).await;
}
