//! The CDC hops of the run's events, measured on both ends: the producing transaction's commit
//! (`pg_xact_commit_timestamp(xmin)` of the outbox row, which needs `track_commit_timestamp = on`),
//! the Kafka record's timestamp (set by Connect when Debezium hands the record over), the bench's own
//! receipt of the record, and the commit of each consuming reaction (the commit timestamp of that
//! event's row in the consumer's `inbox`, in the consuming service's database). Also the older
//! figure from the outbox `created_at` (the producing transaction's start) to the record and to the
//! bench's receipt, for `orders.events`.

use std::collections::{BTreeMap, HashMap};

use orderflow_platform::config::PostgresConfig;
use serde_json::{Value, json};

use super::events::Seen;
use super::stats::Summary;

pub struct Hops {
    pub commit_timestamps: bool,
    pub events: usize,
    pub reactions: usize,
    pub commit_to_record: Vec<f64>,
    pub record_to_receipt: Vec<f64>,
    pub receipt_to_reaction: Vec<f64>,
    pub record_to_reaction: Vec<f64>,
    pub commit_to_reaction: Vec<f64>,
    /// `orders.events` only, from `created_at`, as the bench measured before commit timestamps.
    pub created_to_record: Vec<f64>,
    pub created_to_receipt: Vec<f64>,
    /// Per event type → consumer: commit → reaction commit.
    pub by_hop: BTreeMap<String, Vec<f64>>,
    /// Average size of the run's orders.events records.
    pub orders_record_bytes: usize,
    /// Outbox rows (= events = saga transactions) of the run's orders, every database.
    pub outbox_rows: usize,
}

impl Hops {
    pub fn json(&self) -> Value {
        let s = |v: &Vec<f64>| Summary::of(v).json();
        json!({
            "track_commit_timestamp": self.commit_timestamps,
            "events": self.events, "reactions": self.reactions,
            "commit_to_kafka_record": s(&self.commit_to_record),
            "kafka_record_to_bench_receipt": s(&self.record_to_receipt),
            "bench_receipt_to_reaction_commit": s(&self.receipt_to_reaction),
            "kafka_record_to_reaction_commit": s(&self.record_to_reaction),
            "commit_to_reaction_commit": s(&self.commit_to_reaction),
            "by_hop_commit_to_reaction_commit": self.by_hop.iter().map(|(k, v)| (k.clone(), Summary::of(v).json())).collect::<BTreeMap<_, _>>(),
            "orders_events_created_at_to_kafka_record": s(&self.created_to_record),
            "orders_events_created_at_to_bench_receipt": s(&self.created_to_receipt),
        })
    }
}

/// Whether the cluster records commit timestamps (a setting read at server start).
pub async fn commit_timestamps_on(pg: &PostgresConfig) -> anyhow::Result<bool> {
    let pool = sqlx::PgPool::connect_with(orderflow_service_kit::database::admin_options(
        pg, "postgres",
    ))
    .await?;
    let (value,): (String,) = sqlx::query_as("SHOW track_commit_timestamp")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(value == "on")
}

pub async fn measure(
    pg: &PostgresConfig,
    order_ids: &[String],
    seen: &HashMap<String, Seen>,
) -> anyhow::Result<Hops> {
    let commit_timestamps = commit_timestamps_on(pg).await?;
    let commit = if commit_timestamps {
        "extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
    } else {
        "NULL::float8"
    };
    // id → (commit, created_at, topic of the outbox row's aggregate)
    let mut outbox: HashMap<uuid::Uuid, (Option<f64>, f64, String, String)> = HashMap::new();
    let mut pools = Vec::new();
    for database in &pg.databases {
        let pool = sqlx::PgPool::connect_with(orderflow_service_kit::database::admin_options(
            pg, database,
        ))
        .await?;
        let rows: Vec<(uuid::Uuid, String, String, Option<f64>, f64)> = sqlx::query_as(&format!(
            "SELECT id, aggregate_type, event_type, {commit}, extract(epoch FROM created_at)::float8 \
             FROM outbox WHERE aggregate_id = ANY($1)"
        ))
        .bind(order_ids)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        for (id, aggregate, event_type, committed, created) in rows {
            outbox.insert(id, (committed, created, aggregate, event_type));
        }
        pools.push(pool);
    }
    let ids: Vec<uuid::Uuid> = outbox.keys().copied().collect();
    // (event id, consumer, reaction commit)
    let mut reactions: Vec<(uuid::Uuid, String, Option<f64>)> = Vec::new();
    for pool in &pools {
        let rows: Vec<(uuid::Uuid, String, Option<f64>)> = sqlx::query_as(&format!(
            "SELECT event_id, consumer, {commit} FROM inbox WHERE event_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        reactions.extend(rows);
    }
    for pool in pools {
        pool.close().await;
    }

    let ms = |a: f64, b: f64| (b - a) * 1000.0;
    let mut hops = Hops {
        commit_timestamps,
        events: outbox.len(),
        reactions: reactions.len(),
        commit_to_record: Vec::new(),
        record_to_receipt: Vec::new(),
        receipt_to_reaction: Vec::new(),
        record_to_reaction: Vec::new(),
        commit_to_reaction: Vec::new(),
        created_to_record: Vec::new(),
        created_to_receipt: Vec::new(),
        by_hop: BTreeMap::new(),
        orders_record_bytes: 0,
        outbox_rows: outbox.len(),
    };
    let mut sizes = Vec::new();
    for (id, (committed, created, aggregate, _)) in &outbox {
        let Some(s) = seen.get(&id.to_string()) else {
            continue;
        };
        if let Some(c) = committed {
            hops.commit_to_record.push(ms(*c, s.kafka_ts));
        }
        hops.record_to_receipt.push(ms(s.kafka_ts, s.received));
        if aggregate == "orders" {
            hops.created_to_record.push(ms(*created, s.kafka_ts));
            hops.created_to_receipt.push(ms(*created, s.received));
            sizes.push(s.bytes);
        }
    }
    for (id, consumer, reacted) in &reactions {
        let (Some(reacted), Some((committed, _, _, event_type))) = (reacted, outbox.get(id)) else {
            continue;
        };
        if let Some(s) = seen.get(&id.to_string()) {
            hops.receipt_to_reaction.push(ms(s.received, *reacted));
            hops.record_to_reaction.push(ms(s.kafka_ts, *reacted));
        }
        if let Some(c) = committed {
            let total = ms(*c, *reacted);
            hops.commit_to_reaction.push(total);
            let short = event_type.rsplit('.').next().unwrap_or(event_type);
            hops.by_hop
                .entry(format!("{short} → {consumer}"))
                .or_default()
                .push(total);
        }
    }
    hops.orders_record_bytes = if sizes.is_empty() {
        200
    } else {
        sizes.iter().sum::<usize>() / sizes.len()
    };
    Ok(hops)
}
