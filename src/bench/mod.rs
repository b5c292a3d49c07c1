//! `orderflow bench`: the whole pipeline under load on the real stack, and the limits it is measured
//! against on the same machine.
//!
//! 1. The pipeline at a fixed offered rate: orders placed through the orders API, the carrier played
//!    at once, each order timed from the `place` call to CONFIRMED, COMPLETED and searchable in
//!    Elasticsearch; the CDC lag of every orders event (outbox `created_at` → Kafka record); the
//!    CPU and memory of each platform process per thousand orders.
//! 2. Full mode only: a step-up search for the highest rate the pipeline sustains.
//! 3. The limits: pgbench with a saga-step transaction, raw rdkafka produce/consume, raw ES bulk.
//!
//! Output: a table on stdout, `bench.json` (every figure, the machine) and `bench.svg` in `--out`.

mod limits;
mod pipeline;
mod plot;
mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use orderflow_platform::StackConfig;
use orderflow_platform::config::setting;
use serde_json::{Value, json};

use pipeline::{OrderTimes, Phase, Target};
use stats::{CostWindow, Summary, round};

pub struct BenchOptions {
    pub quick: bool,
    pub out: PathBuf,
    /// Offered rate of the fixed-rate run (orders per second).
    pub rate: Option<f64>,
    /// Length of the fixed-rate run in seconds.
    pub seconds: Option<f64>,
    /// Skip the step-up search even in full mode.
    pub no_step_up: bool,
}

struct Sizes {
    rate: f64,
    seconds: f64,
    step_seconds: f64,
    step_up: bool,
    pgbench_seconds: u64,
    kafka_records: usize,
    es_docs: usize,
}

fn url_of(key: &'static str) -> anyhow::Result<String> {
    let address: SocketAddr = setting(key)?;
    Ok(format!("http://{address}"))
}

pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let sizes = if options.quick {
        Sizes {
            rate: options.rate.unwrap_or(5.0),
            seconds: options.seconds.unwrap_or(20.0),
            step_seconds: 0.0,
            step_up: false,
            pgbench_seconds: 5,
            kafka_records: 50_000,
            es_docs: 5_000,
        }
    } else {
        Sizes {
            rate: options.rate.unwrap_or(5.0),
            seconds: options.seconds.unwrap_or(60.0),
            step_seconds: 20.0,
            step_up: !options.no_step_up,
            pgbench_seconds: 20,
            kafka_records: 300_000,
            es_docs: 30_000,
        }
    };
    let bench_started = std::time::Instant::now();
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("create {}", options.out.display()))?;
    let config = StackConfig::from_env()?;
    let machine = stats::machine();
    let run_id =
        format!("{:06x}", uuid::Uuid::new_v4().as_u128() as u32 & 0xff_ffff).to_uppercase();
    let state = std::env::var("ORDERFLOW_STATE").unwrap_or_else(|_| ".stack".into());
    let processes = stats::platform_processes(&PathBuf::from(&state).join("platform"));
    let index = std::env::var("ORDERFLOW_ES_INDEX")
        .unwrap_or_else(|_| orderflow_analytics::config::DEFAULT_INDEX.to_string());
    let es = config.elasticsearch_url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;

    eprintln!(
        "bench {run_id}: {} mode, {} orders/s for {} s; {} platform process(es) measured",
        if options.quick { "quick" } else { "full" },
        sizes.rate,
        sizes.seconds,
        processes.len()
    );
    let target = pipeline::setup(
        Target {
            http: http.clone(),
            orders: url_of("ORDERFLOW_ORDERS_HTTP")?,
            inventory: url_of("ORDERFLOW_INVENTORY_HTTP")?,
            customers: url_of("ORDERFLOW_CUSTOMERS_HTTP")?,
            shipping: url_of("ORDERFLOW_SHIPPING_HTTP")?,
            elasticsearch: es.clone(),
            index: index.clone(),
            customer_ids: Vec::new(),
            sku: String::new(),
            poll: Duration::from_millis(100),
            order_timeout: Duration::from_secs(if options.quick { 90 } else { 180 }),
        },
        &run_id,
        10,
    )
    .await?;
    let target = Arc::new(target);
    // One order through the whole pipeline first: the orders service has the replicas, nothing is cold.
    eprintln!("warm-up order ...");
    let warm = pipeline::drive_order(target.clone(), 0).await?;
    anyhow::ensure!(
        warm.searchable.is_some(),
        "the warm-up order ended {} without becoming searchable",
        warm.status
    );

    // The fixed-rate run, with the Kafka tail and the cost window around it.
    let tail = pipeline::Tail::start(&config.kafka_bootstrap, "orders.events")?;
    let cost = Arc::new(Mutex::new(CostWindow::start(&processes)));
    let sampler = {
        let cost = cost.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                cost.lock().unwrap().sample();
            }
        })
    };
    eprintln!(
        "fixed rate: {} orders/s for {} s ...",
        sizes.rate, sizes.seconds
    );
    let fixed = pipeline::run_phase(target.clone(), sizes.rate, sizes.seconds, 1).await?;
    sampler.abort();
    let completed = fixed
        .orders
        .iter()
        .filter(|o| o.status == "COMPLETED")
        .count();
    let cost_rows = cost.lock().unwrap().finish(completed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = tail.stop()?;

    // CDC lag: outbox created_at of each orders event of our orders, against what Kafka holds.
    let order_ids: Vec<String> = fixed.orders.iter().map(|o| o.order_id.clone()).collect();
    let orders_db = sqlx::PgPool::connect(&config.postgres.url("orders")).await?;
    let outbox: Vec<(uuid::Uuid, f64)> = sqlx::query_as(
        "SELECT id, extract(epoch FROM created_at)::float8 FROM outbox WHERE aggregate_id = ANY($1)",
    )
    .bind(&order_ids)
    .fetch_all(&orders_db)
    .await?;
    let (mut lag_record, mut lag_received, mut record_sizes) = (Vec::new(), Vec::new(), Vec::new());
    for (id, created) in &outbox {
        if let Some(s) = seen.get(&id.to_string()) {
            lag_record.push((s.kafka_ts - created) * 1000.0);
            lag_received.push((s.received - created) * 1000.0);
            record_sizes.push(s.bytes);
        }
    }
    // Events (= outbox rows = saga transactions = Kafka records) per order, over every service.
    let mut events = 0i64;
    for database in &config.postgres.databases {
        let pool = sqlx::PgPool::connect(&config.postgres.url(database)).await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM outbox WHERE aggregate_id = ANY($1)")
                .bind(&order_ids)
                .fetch_one(&pool)
                .await
                .unwrap_or((0,));
        events += count;
        pool.close().await;
    }
    orders_db.close().await;
    let events_per_order = if fixed.orders.is_empty() {
        0.0
    } else {
        events as f64 / fixed.orders.len() as f64
    };
    let record_bytes = if record_sizes.is_empty() {
        200
    } else {
        record_sizes.iter().sum::<usize>() / record_sizes.len()
    };

    // Step-up search (full mode).
    let mut steps = Vec::new();
    let mut sustained = None;
    if sizes.step_up {
        let mut rate = sizes.rate;
        let mut first_p95 = None;
        let mut next_id = 100_000;
        loop {
            eprintln!("step-up: {rate} orders/s for {} s ...", sizes.step_seconds);
            let phase =
                pipeline::run_phase(target.clone(), rate, sizes.step_seconds, next_id).await?;
            next_id += phase.orders.len() + 1;
            let figures = phase_figures(&phase);
            let p95 = figures.to_completed.p95;
            let baseline = *first_p95.get_or_insert(p95);
            let finished_share = figures.completed as f64 / phase.orders.len().max(1) as f64;
            let keeps_up = finished_share >= 0.95
                && figures.finished_per_second >= 0.9 * rate
                && p95 <= 3.0 * baseline.max(1.0);
            steps.push(json!({
                "offered_per_second": rate, "seconds": sizes.step_seconds,
                "orders": phase.orders.len(), "completed": figures.completed,
                "finished_per_second": round(figures.finished_per_second),
                "place_to_completed": figures.to_completed.json(),
                "sustained": keeps_up,
            }));
            if !keeps_up {
                break;
            }
            sustained = Some(rate);
            if rate >= 160.0 {
                break;
            }
            rate *= 2.0;
        }
    }

    // The limits.
    eprintln!(
        "limit: PostgreSQL (pgbench, {} s) ...",
        sizes.pgbench_seconds
    );
    let pg_limit =
        limits::postgres(&config.postgres, sizes.pgbench_seconds, 4, &options.out).await?;
    eprintln!(
        "limit: Kafka ({} records of {record_bytes} bytes) ...",
        sizes.kafka_records
    );
    let kafka_limit = limits::kafka(
        &config.kafka_bootstrap,
        sizes.kafka_records,
        record_bytes,
        &run_id,
    )
    .await?;
    eprintln!("limit: Elasticsearch ({} documents) ...", sizes.es_docs);
    let (_, sample) = pipeline::get(&http, format!("{es}/{index}/_doc/{}", warm.order_id)).await?;
    let es_limit = limits::elasticsearch(
        &http,
        &es,
        &index,
        &sample["_source"],
        sizes.es_docs,
        &run_id,
    )
    .await?;

    // Figures and ratios.
    let figures = phase_figures(&fixed);
    let cdc_record = Summary::of(&lag_record);
    let cdc_received = Summary::of(&lag_received);
    let pg_tps = pg_limit["transactions_per_second"].as_f64().unwrap_or(0.0);
    let pg_latency = pg_limit["latency_average_ms"].as_f64().unwrap_or(0.0);
    let produce = kafka_limit["produce_records_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    let consume = kafka_limit["consume_records_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    let es_rate = es_limit["index_documents_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            ((a / b) * 1e6).round() / 1e6
        } else {
            0.0
        }
    };
    let finished = figures.finished_per_second;
    let events_per_second = finished * events_per_order;
    // Latency floors: the chain of saga transactions without any CDC or Kafka in between.
    let ratios = json!({
        "saga_transactions_per_second_vs_pgbench": {
            "pipeline": round(events_per_second), "limit": pg_tps, "ratio": ratio(events_per_second, pg_tps),
            "note": "saga transactions per second (events per order x finished orders/s) against pgbench's saga-step tps"},
        "kafka_records_per_second_vs_raw_produce": {
            "pipeline": round(events_per_second), "limit": produce, "ratio": ratio(events_per_second, produce),
            "note": "records per second written by the connectors against raw rdkafka produce"},
        "kafka_records_per_second_vs_raw_consume": {
            "pipeline": round(events_per_second), "limit": consume, "ratio": ratio(events_per_second, consume),
            "note": "records per second against raw rdkafka consume (each record is read by a saga consumer and the sink)"},
        "documents_per_second_vs_raw_bulk": {
            "pipeline": round(finished), "limit": es_rate, "ratio": ratio(finished, es_rate),
            "note": "order documents per second against raw bulk indexing"},
        "place_p50_vs_pg_transaction": {
            "pipeline_ms": round(figures.place.p50), "limit_ms": pg_latency, "ratio": ratio(figures.place.p50, pg_latency),
            "note": "the place call against one saga-step transaction's average latency under pgbench"},
        "confirmed_p50_vs_4_saga_transactions": {
            "pipeline_ms": round(figures.to_confirmed.p50), "limit_ms": round(4.0 * pg_latency), "ratio": ratio(figures.to_confirmed.p50, 4.0 * pg_latency),
            "note": "place, reserve, charge, confirm: four transactions with nothing in between"},
        "completed_p50_vs_all_saga_transactions": {
            "pipeline_ms": round(figures.to_completed.p50), "limit_ms": round(events_per_order * pg_latency), "ratio": ratio(figures.to_completed.p50, events_per_order * pg_latency),
            "note": "every transaction of an order's saga back to back"},
    });

    let throughput_series = throughput_over_time(&fixed);
    let report = json!({
        "run_id": run_id,
        "mode": if options.quick { "quick" } else { "full" },
        "started_unix": fixed.started,
        "machine": machine,
        "stack": {"postgres": format!("{}:{}", config.postgres.host, config.postgres.port),
                  "kafka": config.kafka_bootstrap, "elasticsearch": es, "index": index},
        "pipeline": {
            "offered_per_second": sizes.rate, "seconds": sizes.seconds,
            "orders": fixed.orders.len(), "completed": figures.completed,
            "not_completed": fixed.orders.iter().filter(|o| o.status != "COMPLETED").map(|o| json!({"order_id": o.order_id, "status": o.status})).collect::<Vec<_>>(),
            "errors": fixed.errors,
            "placed_per_second": round(figures.placed_per_second),
            "finished_per_second": round(finished),
            "events_per_order": round(events_per_order),
            "orders_events_record_bytes_avg": record_bytes,
            "latency": {
                "place_http": figures.place.json(),
                "place_to_confirmed": figures.to_confirmed.json(),
                "place_to_completed": figures.to_completed.json(),
                "place_to_searchable": figures.to_searchable.json(),
                "cdc_lag_outbox_to_kafka_record_timestamp": cdc_record.json(),
                "cdc_lag_outbox_to_consumer_receipt": cdc_received.json(),
            },
            "stages": figures.stages.iter().map(|(k, v)| (k.to_string(), v.json())).collect::<BTreeMap<_, _>>(),
            "throughput_over_time": throughput_series.iter().map(|(k, v)| (k.to_string(), v.iter().map(|(t, r)| json!([t, r])).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
            "cost": cost_rows,
        },
        "step_up": {"steps": steps, "highest_sustained_per_second": sustained, "ran": sizes.step_up},
        "limits": {"postgres": pg_limit, "kafka": kafka_limit, "elasticsearch": es_limit},
        "ratios": ratios,
    });
    let json_path = options.out.join("bench.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let svg = plot::svg(
        &format!(
            "orderflow bench {run_id}: {} orders/s for {} s ({} completed)",
            sizes.rate, sizes.seconds, figures.completed
        ),
        &[
            ("place (HTTP)", figures.raw.place.clone()),
            ("place → CONFIRMED", figures.raw.to_confirmed.clone()),
            ("place → COMPLETED", figures.raw.to_completed.clone()),
            ("place → searchable", figures.raw.to_searchable.clone()),
            ("CDC lag (outbox → Kafka)", lag_record.clone()),
        ],
        &throughput_series,
    );
    let svg_path = options.out.join("bench.svg");
    std::fs::write(&svg_path, svg)?;

    print_table(&report, &figures, &cdc_record, &cdc_received);
    println!(
        "\nwritten: {}  {}  (orderflow bench took {:.0} s)",
        json_path.display(),
        svg_path.display(),
        bench_started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Raw {
    place: Vec<f64>,
    to_confirmed: Vec<f64>,
    to_completed: Vec<f64>,
    to_searchable: Vec<f64>,
}

struct Figures {
    completed: usize,
    placed_per_second: f64,
    finished_per_second: f64,
    place: Summary,
    to_confirmed: Summary,
    to_completed: Summary,
    to_searchable: Summary,
    stages: Vec<(&'static str, Summary)>,
    raw: Raw,
}

fn phase_figures(phase: &Phase) -> Figures {
    let done: Vec<&OrderTimes> = phase
        .orders
        .iter()
        .filter(|o| o.status == "COMPLETED")
        .collect();
    let ms = |f: &dyn Fn(&OrderTimes) -> Option<f64>| -> Vec<f64> {
        done.iter()
            .filter_map(|o| f(o))
            .map(|s| s * 1000.0)
            .collect()
    };
    let raw = Raw {
        place: ms(&|o| Some(o.place_answered - o.place_sent)),
        to_confirmed: ms(&|o| Some(o.confirmed_at? - o.place_sent)),
        to_completed: ms(&|o| Some(o.completed_at? - o.place_sent)),
        to_searchable: ms(&|o| Some(o.searchable? - o.place_sent)),
    };
    let stages: Vec<(&'static str, Summary)> = vec![
        (
            "1 place call → CONFIRMED (reserve, charge, confirm via CDC)",
            Summary::of(&ms(&|o| Some(o.confirmed_at? - o.place_sent))),
        ),
        (
            "2 CONFIRMED → shipment seen by the carrier (saga + bench poll)",
            Summary::of(&ms(&|o| Some(o.shipment_seen? - o.confirmed_at?))),
        ),
        (
            "3 dispatch call → dispatched_at (shipping's clock: no hop)",
            Summary::of(&ms(&|o| Some(o.shipped_at? - o.dispatch_sent?))),
        ),
        (
            "4 dispatched_at → deliver call (hop to orders + bench poll)",
            Summary::of(&ms(&|o| Some(o.deliver_sent? - o.shipped_at?))),
        ),
        (
            "5 deliver call → COMPLETED (via CDC)",
            Summary::of(&ms(&|o| Some(o.completed_at? - o.deliver_sent?))),
        ),
        (
            "6 COMPLETED → searchable (CDC, sink, ES refresh)",
            Summary::of(&ms(&|o| Some(o.searchable? - o.completed_at?))),
        ),
    ];
    let mut completions: Vec<f64> = done.iter().filter_map(|o| o.completed_at).collect();
    completions.sort_by(f64::total_cmp);
    let finished_per_second = match (completions.first(), completions.last()) {
        (Some(first), Some(last)) if last > first => {
            (completions.len() - 1) as f64 / (last - first)
        }
        _ => 0.0,
    };
    let placed_span = phase.last_placed - phase.started;
    Figures {
        completed: done.len(),
        placed_per_second: if placed_span > 0.0 {
            (phase.orders.len() + phase.errors.len()).saturating_sub(1) as f64 / placed_span
        } else {
            0.0
        },
        finished_per_second,
        place: Summary::of(&raw.place),
        to_confirmed: Summary::of(&raw.to_confirmed),
        to_completed: Summary::of(&raw.to_completed),
        to_searchable: Summary::of(&raw.to_searchable),
        stages,
        raw,
    }
}

/// Orders placed and completed per one-second bin, from the first placement.
fn throughput_over_time(phase: &Phase) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let start = phase.started;
    let bins = |times: Vec<f64>| -> Vec<(f64, f64)> {
        let last = times.iter().fold(0.0_f64, |m, t| m.max(t - start)).ceil() as usize + 1;
        let mut counts = vec![0.0; last];
        for t in times {
            let i = ((t - start).max(0.0)) as usize;
            if i < counts.len() {
                counts[i] += 1.0;
            }
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i as f64, c))
            .collect()
    };
    vec![
        (
            "placed / s",
            bins(phase.orders.iter().map(|o| o.place_sent).collect()),
        ),
        (
            "completed / s",
            bins(phase.orders.iter().filter_map(|o| o.completed_at).collect()),
        ),
        (
            "searchable / s",
            bins(phase.orders.iter().filter_map(|o| o.searchable).collect()),
        ),
    ]
}

fn print_table(report: &Value, figures: &Figures, cdc_record: &Summary, cdc_received: &Summary) {
    let p = &report["pipeline"];
    let m = &report["machine"];
    println!(
        "\norderflow bench {} ({} mode) on {} x {}, {} MiB, kernel {}, {} build",
        report["run_id"].as_str().unwrap_or(""),
        report["mode"].as_str().unwrap_or(""),
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory_mib"],
        m["kernel"].as_str().unwrap_or(""),
        m["build"].as_str().unwrap_or(""),
    );
    println!(
        "\nPIPELINE  offered {}/s for {} s: {} orders, {} completed; placed {}/s, finished {}/s; {} events per order\n",
        p["offered_per_second"],
        p["seconds"],
        p["orders"],
        p["completed"],
        p["placed_per_second"],
        p["finished_per_second"],
        p["events_per_order"]
    );
    println!(
        "{:<62} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "LATENCY (ms)", "n", "p50", "p95", "p99", "max"
    );
    let row = |name: &str, s: &Summary| {
        println!(
            "{:<62} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            name, s.count, s.p50, s.p95, s.p99, s.max
        )
    };
    row("place (HTTP call)", &figures.place);
    row("place → CONFIRMED", &figures.to_confirmed);
    row("place → COMPLETED", &figures.to_completed);
    row(
        "place → searchable in Elasticsearch",
        &figures.to_searchable,
    );
    row(
        "CDC lag: outbox created_at → Kafka record timestamp",
        cdc_record,
    );
    row(
        "CDC lag: outbox created_at → received by a consumer",
        cdc_received,
    );
    println!(
        "\n{:<62} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "STAGES (ms)", "n", "p50", "p95", "p99", "max"
    );
    for (name, s) in &figures.stages {
        row(name, s);
    }
    println!(
        "\n{:<14} {:>10} {:>14} {:>16} {:>20}",
        "COST", "cpu s", "cpu s/1000", "peak RSS MiB", "VmHWM MiB (lifetime)"
    );
    for c in p["cost"].as_array().into_iter().flatten() {
        println!(
            "{:<14} {:>10} {:>14} {:>16} {:>20}",
            c["process"].as_str().unwrap_or(""),
            c["cpu_seconds"].to_string(),
            c["cpu_seconds_per_1000_orders"].to_string(),
            c["peak_rss_mib_during_run"].to_string(),
            c["peak_rss_mib_since_start_vmhwm"].to_string()
        );
    }
    let l = &report["limits"];
    println!("\nLIMITS (same machine, same run)");
    println!(
        "  PostgreSQL saga-step transaction (pgbench, {} clients): {} tps, {} ms average",
        l["postgres"]["clients"],
        l["postgres"]["transactions_per_second"],
        l["postgres"]["latency_average_ms"]
    );
    println!(
        "  Kafka raw, {} records of {} bytes: produce {} rec/s, consume {} rec/s",
        l["kafka"]["records"],
        l["kafka"]["record_bytes"],
        l["kafka"]["produce_records_per_second"],
        l["kafka"]["consume_records_per_second"]
    );
    println!(
        "  Elasticsearch bulk, {} order documents: {} docs/s",
        l["elasticsearch"]["documents"], l["elasticsearch"]["index_documents_per_second"]
    );
    println!(
        "\n{:<44} {:>12} {:>12} {:>10}",
        "PIPELINE / LIMIT", "pipeline", "limit", "ratio"
    );
    for (name, r) in report["ratios"].as_object().into_iter().flatten() {
        let pipeline = r
            .get("pipeline")
            .or(r.get("pipeline_ms"))
            .cloned()
            .unwrap_or(Value::Null);
        let limit = r
            .get("limit")
            .or(r.get("limit_ms"))
            .cloned()
            .unwrap_or(Value::Null);
        println!(
            "{:<44} {:>12} {:>12} {:>10}",
            name,
            pipeline.to_string(),
            limit.to_string(),
            format!("{:.4}", r["ratio"].as_f64().unwrap_or(0.0))
        );
    }
    let s = &report["step_up"];
    if s["ran"] == true {
        println!("\nSTEP-UP (p95 place → COMPLETED; stops when the pipeline falls behind)");
        for step in s["steps"].as_array().into_iter().flatten() {
            println!(
                "  offered {:>6}/s  finished {:>8}/s  p95 {:>9} ms  {}",
                step["offered_per_second"],
                step["finished_per_second"],
                step["place_to_completed"]["p95_ms"],
                if step["sustained"] == true {
                    "sustained"
                } else {
                    "falls behind"
                }
            );
        }
        println!(
            "  highest sustained rate: {} orders/s",
            s["highest_sustained_per_second"]
        );
    }
}
