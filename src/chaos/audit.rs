//! The end of a chaos run: what the data stores themselves say happened to the run's orders, with
//! nothing taken from the load generator's own bookkeeping. Each problem found is one
//! [`Problem`]: an effect that is missing (*lost*) or happened more than once (*duplicated*).
//!
//! - orders (orders database): every order of the run's customers is COMPLETED or CANCELLED;
//! - payments: at most one capture per order, a completed order captured and not refunded, a
//!   cancelled order not left charged, a refund only of a capture and at most one;
//! - shipping: at most one shipment per order, a completed order's delivered, a cancelled order's
//!   never dispatched and not left live;
//! - inventory: a completed order's reservation committed, a cancelled one's released, and the
//!   run's product conserved: created stock = on hand + committed, reserved = the live reservations;
//! - Elasticsearch: one document per finished order, with its final status;
//! - the archive: every record `orders.events` received during the run, exactly once per
//!   partition and offset;
//! - the dead-letter topics: nothing new.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use orderflow_platform::config::StackConfig;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// An effect that is missing or happened twice.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The order it is about, if it is about one.
    pub order_id: Option<String>,
    pub kind: ProblemKind,
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    Lost,
    Duplicated,
}

fn lost(order: Option<&Uuid>, what: impl Into<String>) -> Problem {
    Problem {
        order_id: order.map(Uuid::to_string),
        kind: ProblemKind::Lost,
        what: what.into(),
    }
}

fn duplicated(order: Option<&Uuid>, what: impl Into<String>) -> Problem {
    Problem {
        order_id: order.map(Uuid::to_string),
        kind: ProblemKind::Duplicated,
        what: what.into(),
    }
}

/// End offsets of a set of topics' partitions.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// The topic the sink archives.
pub const ARCHIVED_TOPIC: &str = "orders.events";

/// The topics whose end offsets a run records before and after: the archived one and every
/// consumer's dead-letter topic.
pub fn watched_topics() -> Vec<String> {
    let mut all: Vec<String> = vec![ARCHIVED_TOPIC.to_string()];
    all.extend(
        orderflow_platform::topics::CONSUMERS
            .iter()
            .map(|c| orderflow_platform::topics::dead_letter_topic(c)),
    );
    all
}

/// The end offset of every partition of `topics`.
pub fn end_offsets(bootstrap: &str, topics: &[String]) -> anyhow::Result<Offsets> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("a Kafka client for offsets")?;
    let timeout = std::time::Duration::from_secs(10);
    let mut offsets = Offsets::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .with_context(|| format!("the metadata of {topic}"))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                let (_, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
                offsets.insert((topic.clone(), p.id()), high);
            }
        }
    }
    Ok(offsets)
}

/// The committed offsets of a consumer group on `topic`.
pub fn committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .context("a Kafka client for committed offsets")?;
    let mut list = rdkafka::TopicPartitionList::new();
    for p in partitions {
        list.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(list, std::time::Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect())
}

/// A small pool on a service database, as that service's own role (it reads only what is its own).
async fn pool(config: &StackConfig, database: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(orderflow_service_kit::database::service_options(
            &config.postgres,
            database,
        )?)
        .await
        .with_context(|| format!("connecting to the {database} database"))
}

/// The run's orders and their status, from the orders database.
pub async fn order_statuses(
    config: &StackConfig,
    customers: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, String>> {
    let orders = pool(config, "orders").await?;
    let rows = sqlx::query(
        "SELECT order_id, status FROM orders WHERE customer_id = ANY($1) AND status <> 'DRAFT'",
    )
    .bind(customers)
    .fetch_all(&orders)
    .await?;
    orders.close().await;
    Ok(rows
        .iter()
        .map(|r| (r.get::<Uuid, _>("order_id"), r.get::<String, _>("status")))
        .collect())
}

/// Everything the audit needs to know about the run.
pub struct Run<'a> {
    pub config: &'a StackConfig,
    pub customers: &'a [Uuid],
    pub sku: &'a str,
    pub stock: i64,
    pub index: &'a str,
    pub archive_prefix: &'a str,
    pub before: &'a Offsets,
    pub after: &'a Offsets,
    pub http: &'a reqwest::Client,
}

/// What the audit found: the figures it checked, and every problem.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub orders: usize,
    pub completed: usize,
    pub cancelled: usize,
    pub captures: usize,
    pub refunds: usize,
    pub shipments: usize,
    pub documents: usize,
    pub archived_records: usize,
    pub dead_letters: i64,
    pub problems: Vec<Problem>,
}

pub async fn audit(run: Run<'_>) -> anyhow::Result<Findings> {
    let mut findings = Findings::default();
    let statuses = order_statuses(run.config, run.customers).await?;
    let ids: Vec<Uuid> = statuses.keys().copied().collect();
    findings.orders = ids.len();
    for (id, status) in &statuses {
        match status.as_str() {
            "COMPLETED" => findings.completed += 1,
            "CANCELLED" => findings.cancelled += 1,
            other => findings
                .problems
                .push(lost(Some(id), format!("stuck in {other}"))),
        }
    }
    payments(&run, &statuses, &ids, &mut findings).await?;
    shipping(&run, &statuses, &ids, &mut findings).await?;
    inventory(&run, &statuses, &ids, &mut findings).await?;
    documents(&run, &statuses, &mut findings).await?;
    archive(&run, &mut findings).await?;
    for ((topic, partition), end) in run.after {
        if topic.ends_with(".dlq") {
            let start = run
                .before
                .get(&(topic.clone(), *partition))
                .copied()
                .unwrap_or(0);
            if *end > start {
                findings.dead_letters += end - start;
                findings.problems.push(lost(
                    None,
                    format!(
                        "{} new dead letter(s) on {topic} (`orderflow dlq list`)",
                        end - start
                    ),
                ));
            }
        }
    }
    Ok(findings)
}

/// The `status` of every row of `table` (a table with `order_id` and `status`) of these orders.
async fn statuses_by_order(
    db: &PgPool,
    table: &str,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, Vec<String>>> {
    let mut by_order: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in sqlx::query(&format!(
        "SELECT order_id, status FROM {table} WHERE order_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?
    {
        by_order
            .entry(row.get("order_id"))
            .or_default()
            .push(row.get("status"));
    }
    Ok(by_order)
}

async fn payments(
    run: &Run<'_>,
    statuses: &HashMap<Uuid, String>,
    ids: &[Uuid],
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let db = pool(run.config, "payments").await?;
    let charged = statuses_by_order(&db, "payments", ids).await?;
    let mut refunds: HashMap<Uuid, i64> = HashMap::new();
    for row in sqlx::query(
        "SELECT order_id, count(*) AS n FROM refunds WHERE order_id = ANY($1) GROUP BY order_id",
    )
    .bind(ids)
    .fetch_all(&db)
    .await?
    {
        refunds.insert(row.get("order_id"), row.get("n"));
    }
    db.close().await;
    for (id, status) in statuses {
        let payments = charged.get(id).cloned().unwrap_or_default();
        let captures = payments.iter().filter(|s| *s != "DECLINED").count();
        let refunded = refunds.get(id).copied().unwrap_or(0);
        findings.captures += captures;
        findings.refunds += refunded as usize;
        if payments.len() > 1 {
            findings
                .problems
                .push(duplicated(Some(id), format!("{} payments", payments.len())));
        }
        if refunded > 1 {
            findings
                .problems
                .push(duplicated(Some(id), format!("{refunded} refunds")));
        }
        if refunded > 0 && !payments.iter().any(|s| s == "REFUNDED") {
            findings
                .problems
                .push(duplicated(Some(id), "a refund of no capture"));
        }
        match status.as_str() {
            "COMPLETED" if !payments.iter().any(|s| s == "SUCCEEDED") => findings
                .problems
                .push(lost(Some(id), "completed without a standing capture")),
            "CANCELLED" if payments.iter().any(|s| s == "SUCCEEDED") => findings
                .problems
                .push(lost(Some(id), "cancelled but still charged (no refund)")),
            _ => {}
        }
    }
    Ok(())
}

async fn shipping(
    run: &Run<'_>,
    statuses: &HashMap<Uuid, String>,
    ids: &[Uuid],
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let db = pool(run.config, "shipping").await?;
    let shipments = statuses_by_order(&db, "shipments", ids).await?;
    db.close().await;
    for (id, status) in statuses {
        let of_order = shipments.get(id).cloned().unwrap_or_default();
        findings.shipments += of_order.len();
        if of_order.len() > 1 {
            findings.problems.push(duplicated(
                Some(id),
                format!("{} shipments", of_order.len()),
            ));
        }
        match status.as_str() {
            "COMPLETED" if !of_order.iter().any(|s| s == "DELIVERED") => findings
                .problems
                .push(lost(Some(id), "completed without a delivered shipment")),
            "CANCELLED" if of_order.iter().any(|s| s != "CANCELLED") => {
                findings.problems.push(lost(
                    Some(id),
                    format!("cancelled with a live shipment ({of_order:?})"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

async fn inventory(
    run: &Run<'_>,
    statuses: &HashMap<Uuid, String>,
    ids: &[Uuid],
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let db = pool(run.config, "inventory").await?;
    let reservations = statuses_by_order(&db, "reservations", ids).await?;
    let product = sqlx::query(
        "SELECT p.on_hand::bigint AS on_hand, p.reserved::bigint AS reserved,
                COALESCE((SELECT sum(quantity) FROM reservations WHERE sku = p.sku AND status = 'COMMITTED'), 0)::bigint AS committed,
                COALESCE((SELECT sum(quantity) FROM reservations WHERE sku = p.sku AND status = 'RESERVED'), 0)::bigint AS live
         FROM products p WHERE p.sku = $1",
    )
    .bind(run.sku)
    .fetch_optional(&db)
    .await?;
    db.close().await;
    for (id, status) in statuses {
        let of_order = reservations.get(id).cloned().unwrap_or_default();
        match status.as_str() {
            "COMPLETED" if !of_order.iter().all(|s| s == "COMMITTED") || of_order.is_empty() => {
                findings.problems.push(lost(
                    Some(id),
                    format!("completed, reservation not committed ({of_order:?})"),
                ))
            }
            "CANCELLED" if of_order.iter().any(|s| s == "RESERVED") => findings
                .problems
                .push(lost(Some(id), "cancelled, stock still reserved")),
            _ => {}
        }
    }
    let Some(product) = product else {
        findings
            .problems
            .push(lost(None, format!("product {} is gone", run.sku)));
        return Ok(());
    };
    let (on_hand, reserved, committed, live): (i64, i64, i64, i64) = (
        product.get("on_hand"),
        product.get("reserved"),
        product.get("committed"),
        product.get("live"),
    );
    if on_hand + committed != run.stock {
        let what = format!(
            "stock not conserved: created {} units, {on_hand} on hand + {committed} shipped = {}",
            run.stock,
            on_hand + committed
        );
        findings.problems.push(if on_hand + committed > run.stock {
            lost(None, what)
        } else {
            duplicated(None, what)
        });
    }
    if reserved != live {
        findings.problems.push(duplicated(
            None,
            format!("reserved {reserved} units, live reservations hold {live}"),
        ));
    }
    Ok(())
}

async fn documents(
    run: &Run<'_>,
    statuses: &HashMap<Uuid, String>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let finished: Vec<String> = statuses
        .iter()
        .filter(|(_, s)| *s == "COMPLETED" || *s == "CANCELLED")
        .map(|(id, _)| id.to_string())
        .collect();
    let es = run.config.elasticsearch_url.trim_end_matches('/');
    for chunk in finished.chunks(1000) {
        let answer: serde_json::Value = run
            .http
            .post(format!("{es}/{}/_mget", run.index))
            .json(&serde_json::json!({"ids": chunk}))
            .send()
            .await
            .context("Elasticsearch _mget")?
            .error_for_status()?
            .json()
            .await?;
        for doc in answer["docs"].as_array().cloned().unwrap_or_default() {
            let id = doc["_id"].as_str().unwrap_or_default();
            let order = Uuid::parse_str(id).ok();
            if doc["found"] != true {
                findings
                    .problems
                    .push(lost(order.as_ref(), "finished, not in Elasticsearch"));
                continue;
            }
            findings.documents += 1;
            let want = order
                .and_then(|o| statuses.get(&o))
                .cloned()
                .unwrap_or_default();
            let got = doc["_source"]["status"].as_str().unwrap_or_default();
            if got != want {
                findings.problems.push(lost(
                    order.as_ref(),
                    format!("Elasticsearch says {got}, the orders database {want}"),
                ));
            }
        }
    }
    Ok(())
}

/// Every offset of `orders.events` the run added, exactly once in the archive.
async fn archive(run: &Run<'_>, findings: &mut Findings) -> anyhow::Result<()> {
    let store = orderflow_analytics::sink::archive::store(&run.config.s3)?;
    let topic = ARCHIVED_TOPIC;
    let today = chrono::Utc::now().date_naive();
    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    for ((t, partition), end) in run.after {
        if t != topic {
            continue;
        }
        let start = run
            .before
            .get(&(t.clone(), *partition))
            .copied()
            .unwrap_or(0);
        if *end <= start {
            continue;
        }
        // The objects are dated by their first record: the run's, and yesterday's for a window
        // open across midnight.
        for day in [today.pred_opt().unwrap_or(today), today] {
            let prefix = Path::from(format!(
                "{}/date={day}/topic={topic}/partition={partition}",
                run.archive_prefix.trim_end_matches('/')
            ));
            let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
            for meta in listed {
                let bytes = store.get(&meta.location).await?.bytes().await?;
                for record in orderflow_analytics::sink::archive::decode(&bytes)? {
                    if record.offset >= start && record.offset < *end {
                        *seen.entry((*partition, record.offset)).or_default() += 1;
                    }
                }
            }
        }
        for offset in start..*end {
            match seen.get(&(*partition, offset)).copied().unwrap_or(0) {
                0 => findings.problems.push(lost(
                    None,
                    format!("{topic} partition {partition} offset {offset} is not archived"),
                )),
                1 => findings.archived_records += 1,
                n => findings.problems.push(duplicated(
                    None,
                    format!("{topic} partition {partition} offset {offset} archived {n} times"),
                )),
            }
        }
    }
    Ok(())
}
