//! `orderflow bench`: the whole pipeline under load on the real stack, and the limits it is measured
//! against on the same machine.
//!
//! 1. The pipeline at a fixed offered rate, open loop: order i starts at t0 + i/rate whatever the
//!    earlier ones are doing, and every latency is measured from that scheduled time. What happens to
//!    each order is learned from its events (a Kafka tail of the saga topics plays the carrier and
//!    sees CONFIRMED/COMPLETED; one Elasticsearch `ids` query every 100 ms sees searchability). The
//!    CDC hops of every event of the run, from commit timestamps on both ends. The CPU and memory of
//!    every process of the stack and the platform, and of the machine, per thousand orders.
//! 2. Full mode only: the step-up search for the highest rate the pipeline sustains (`search.rs`).
//! 3. The limits: pgbench with a saga-step transaction, raw rdkafka produce/consume, raw ES bulk.
//!
//! Output: a table on stdout, `bench.json` (every figure, the machine), `bench.svg`, and one line
//! appended to `history.jsonl`, all in `--out`.

mod cdc;
mod cost;
pub(crate) mod events;
mod limits;
pub(crate) mod pipeline;
mod plot;
mod search;
pub(crate) mod stats;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use orderflow_platform::StackConfig;
use serde_json::{Value, json};

use events::{OrderTimes, Tracker};
use pipeline::{Phase, PhasePlan, Target};
use stats::{Summary, round};

pub struct BenchOptions {
    pub quick: bool,
    pub out: PathBuf,
    /// Offered rate of the fixed-rate run (orders per second).
    pub rate: Option<f64>,
    /// Length of the fixed-rate run in seconds.
    pub seconds: Option<f64>,
    /// Seconds of load at the fixed rate before anything is measured (default 30 full, 0 quick).
    pub warmup: Option<f64>,
    /// Skip the step-up search even in full mode.
    pub no_step_up: bool,
    /// The step-up search never offers more than this (orders per second).
    pub max_rate: f64,
    /// Bisection phases between the last rate that kept up and the first that did not.
    pub bisections: usize,
}

struct Sizes {
    rate: f64,
    seconds: f64,
    warmup: f64,
    drain: Duration,
    step_seconds: f64,
    step_drain: Duration,
    step_up: bool,
    pgbench_seconds: u64,
    kafka_records: usize,
    es_docs: usize,
}

pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let sizes = if options.quick {
        Sizes {
            rate: options.rate.unwrap_or(5.0),
            seconds: options.seconds.unwrap_or(20.0),
            warmup: options.warmup.unwrap_or(0.0),
            drain: Duration::from_secs(45),
            step_seconds: 0.0,
            step_drain: Duration::ZERO,
            step_up: false,
            pgbench_seconds: 5,
            kafka_records: 50_000,
            es_docs: 5_000,
        }
    } else {
        Sizes {
            rate: options.rate.unwrap_or(5.0),
            seconds: options.seconds.unwrap_or(60.0),
            warmup: options.warmup.unwrap_or(30.0),
            drain: Duration::from_secs(90),
            step_seconds: 20.0,
            step_drain: Duration::from_secs(30),
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
    let state = PathBuf::from(std::env::var("ORDERFLOW_STATE").unwrap_or_else(|_| ".stack".into()));
    let watched = cost::watched(&state);
    let binaries = binaries(&watched);
    let index = std::env::var("ORDERFLOW_ES_INDEX")
        .unwrap_or_else(|_| orderflow_analytics::config::DEFAULT_INDEX.to_string());
    let es = config.elasticsearch_url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()?;
    let commit_timestamps = cdc::commit_timestamps_on(&config.postgres).await?;

    eprintln!(
        "bench {run_id}: {} mode, {} build, {} orders/s for {} s, open loop; measuring {} process trees",
        if options.quick { "quick" } else { "full" },
        machine["build"].as_str().unwrap_or("?"),
        sizes.rate,
        sizes.seconds,
        watched.len()
    );
    if let Some(warning) = binaries["warning"].as_str() {
        eprintln!("WARNING: {warning}");
    }
    if !commit_timestamps {
        eprintln!(
            "note: track_commit_timestamp is off, so the CDC hops from commit timestamps are not measured; \
             it is read at server start: scripts/stack down postgres && scripts/stack up postgres"
        );
    }
    let target = pipeline::setup(
        Target::from_env(
            http.clone(),
            &es,
            &index,
            Duration::from_millis(100),
            Duration::from_secs(3),
        )?,
        &run_id,
        10,
    )
    .await?;
    let target = Arc::new(target);
    let tracker = Arc::new(Tracker::default());
    let driver = events::Driver::start(
        &config.kafka_bootstrap,
        &config.registry_url,
        target.clone(),
        tracker.clone(),
    )?;
    let result = measure(
        &options, &sizes, &config, &machine, &run_id, watched, &binaries, &es, &index, &target,
        &tracker,
    )
    .await;
    driver.stop()?;
    let report = result?;

    let json_path = options.out.join("bench.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let history_path = options.out.join("history.jsonl");
    append_history(&history_path, &report)?;
    print_table(&report);
    println!(
        "\nwritten: {}  {}  {} (+1 line)  (orderflow bench took {:.0} s)",
        json_path.display(),
        options.out.join("bench.svg").display(),
        history_path.display(),
        bench_started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    options: &BenchOptions,
    sizes: &Sizes,
    config: &StackConfig,
    machine: &Value,
    run_id: &str,
    watched: Vec<cost::Watched>,
    binaries: &Value,
    es: &str,
    index: &str,
    target: &Arc<Target>,
    tracker: &Arc<Tracker>,
) -> anyhow::Result<Value> {
    // One order through the whole pipeline first: nothing is cold, and the carrier is proven.
    eprintln!("warm-up order ...");
    let warm = pipeline::run_phase(
        target.clone(),
        tracker.clone(),
        PhasePlan {
            number: 0,
            rate: 1.0,
            seconds: 1.0,
            first: 0,
            drain: Duration::from_secs(120),
            backlog_limit: None,
        },
    )
    .await?;
    let warm_order = warm.orders[0].clone();
    anyhow::ensure!(
        warm_order.searchable.is_some(),
        "the warm-up order ended {} without becoming searchable{}",
        warm_order.status,
        carrier_errors(tracker)
    );

    // The warm-up load: the fixed rate for a while, measured by nothing but its own summary. The
    // JVM servers (Kafka, Connect, Elasticsearch) compile their hot paths in the first minute
    // under load; a run measured from a cold start is 1.5-2x slower and says little about the
    // steady state.
    let warmup = if sizes.warmup > 0.0 {
        eprintln!(
            "warm-up load: {} orders/s for {} s (not measured) ...",
            sizes.rate, sizes.warmup
        );
        let phase = pipeline::run_phase(
            target.clone(),
            tracker.clone(),
            PhasePlan {
                number: 0,
                rate: sizes.rate,
                seconds: sizes.warmup,
                first: 2_000_000,
                drain: sizes.drain,
                backlog_limit: None,
            },
        )
        .await?;
        let settle_until = tokio::time::Instant::now() + Duration::from_secs(60);
        while tracker.in_flight() > 0 && tokio::time::Instant::now() < settle_until {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let figures = phase_figures(&phase);
        json!({
            "offered_per_second": sizes.rate, "seconds": sizes.warmup,
            "orders": figures.orders, "completed": figures.completed,
            "finished_per_second": round(figures.finished_per_second),
            "scheduled_to_completed": figures.to_completed.json(),
        })
    } else {
        Value::Null
    };

    // The fixed-rate run, inside the cost window.
    let cost = Arc::new(Mutex::new(cost::CostWindow::start(watched.clone())));
    let sampler = {
        let cost = cost.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let cost = cost.clone();
                let _ = tokio::task::spawn_blocking(move || cost.lock().unwrap().sample()).await;
            }
        })
    };
    eprintln!(
        "fixed rate: {} orders/s for {} s, open loop ...",
        sizes.rate, sizes.seconds
    );
    let fixed = pipeline::run_phase(
        target.clone(),
        tracker.clone(),
        PhasePlan {
            number: 1,
            rate: sizes.rate,
            seconds: sizes.seconds,
            first: 1,
            drain: sizes.drain,
            backlog_limit: None,
        },
    )
    .await?;
    sampler.abort();
    let figures = phase_figures(&fixed);
    let cost_report = cost.lock().unwrap().finish(figures.completed);

    // The CDC hops of every event of the fixed run's orders.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let order_ids: Vec<String> = fixed.orders.iter().map(|o| o.order_id.clone()).collect();
    let seen = tracker.seen.lock().unwrap().clone();
    let hops = cdc::measure(&config.postgres, &order_ids, &seen).await?;
    let events_per_order = hops.outbox_rows as f64 / fixed.orders.len().max(1) as f64;

    // Step-up search (full mode).
    let baseline_p95 = figures.to_completed.p95;
    let fixed_verdict = search::judge(&figures.rule(&fixed), baseline_p95);
    let mut search = search::Search::new(0.5, options.max_rate, options.bisections);
    let mut steps = vec![step_json(&fixed, &figures, &fixed_verdict, None, 0)];
    let mut phases = vec![fixed];
    let mut search_error = None;
    if sizes.step_up {
        search.record(sizes.rate, fixed_verdict.keeps_up);
        let mut next_first = 1_000_000;
        let mut number = 2;
        while let Some(rate) = search.next() {
            // Let the previous phase's backlog drain first, so each phase starts from an idle pipeline.
            let settle_until = tokio::time::Instant::now() + Duration::from_secs(60);
            while tracker.in_flight() > 0 && tokio::time::Instant::now() < settle_until {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let limit = search::backlog_limit(rate, baseline_p95);
            eprintln!(
                "step-up: {rate} orders/s for {} s (stops early past {limit} in flight) ...",
                sizes.step_seconds
            );
            let mut window = cost::CostWindow::start(watched.clone());
            let phase = match pipeline::run_phase(
                target.clone(),
                tracker.clone(),
                PhasePlan {
                    number,
                    rate,
                    seconds: sizes.step_seconds,
                    first: next_first,
                    drain: sizes.step_drain,
                    backlog_limit: Some(limit),
                },
            )
            .await
            {
                Ok(phase) => phase,
                Err(error) => {
                    // Not slowness: the pipeline stopped answering. The search ends here; the
                    // figures so far, the limits and the report still follow.
                    eprintln!("  the phase failed: {error:#}");
                    search_error = Some(format!("{rate}/s: {error:#}"));
                    break;
                }
            };
            let step = phase_figures(&phase);
            let machine_cost = window.finish(step.completed)["machine"].clone();
            let verdict = search::judge(&step.rule(&phase), baseline_p95);
            eprintln!(
                "  {} ({})",
                if verdict.keeps_up {
                    "keeps up"
                } else {
                    "falls behind"
                },
                if verdict.reasons.is_empty() {
                    format!("finished {:.1}/s", step.finished_per_second)
                } else {
                    verdict.reasons.join("; ")
                }
            );
            search.record(rate, verdict.keeps_up);
            steps.push(step_json(
                &phase,
                &step,
                &verdict,
                Some(machine_cost),
                limit,
            ));
            next_first += phase.orders.len() + phase.errors.len() + 1;
            number += 1;
            phases.push(phase);
        }
    }
    let fixed = &phases[0];

    // The limits.
    eprintln!(
        "limit: PostgreSQL (pgbench, {} s) ...",
        sizes.pgbench_seconds
    );
    let pg_limit =
        limits::postgres(&config.postgres, sizes.pgbench_seconds, 4, &options.out).await?;
    let record_bytes = hops.orders_record_bytes;
    eprintln!(
        "limit: Kafka ({} records of {record_bytes} bytes) ...",
        sizes.kafka_records
    );
    let kafka_limit = limits::kafka(
        &config.kafka_bootstrap,
        sizes.kafka_records,
        record_bytes,
        run_id,
    )
    .await?;
    eprintln!("limit: Elasticsearch ({} documents) ...", sizes.es_docs);
    let (_, sample) = pipeline::get(
        &target.http,
        format!("{es}/{index}/_doc/{}", warm_order.order_id),
    )
    .await?;
    let es_limit = limits::elasticsearch(
        &target.http,
        es,
        index,
        &sample["_source"],
        sizes.es_docs,
        run_id,
    )
    .await?;

    // Ratios.
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
    let confirmed = figures.place_to_confirmed.p50;
    let completed = figures.place_to_completed.p50;
    // Latency floors: the chain of saga transactions without any CDC or Kafka in between.
    // The completions per second of the phase at the highest sustained rate (full mode).
    let sustained_finished = search.sustained().and_then(|rate| {
        steps
            .iter()
            .filter(|s| s["keeps_up"] == true && s["offered_per_second"].as_f64() == Some(rate))
            .filter_map(|s| s["finished_per_second"].as_f64())
            .next()
    });
    let sustained_events = sustained_finished.map(|f| f * events_per_order);
    let ratios = json!({
        "saga_tx_per_second_at_sustained_vs_pgbench": {
            "pipeline": sustained_events.map(round), "limit": pg_tps,
            "ratio": sustained_events.map(|e| ratio(e, pg_tps)),
            "note": "as saga_transactions_per_second_vs_pgbench, in the step-up phase at the highest sustained rate (full mode only)"},
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
            "pipeline_ms": round(confirmed), "limit_ms": round(4.0 * pg_latency), "ratio": ratio(confirmed, 4.0 * pg_latency),
            "note": "place call sent → CONFIRMED against place, reserve, charge, confirm: four transactions with nothing in between"},
        "completed_p50_vs_all_saga_transactions": {
            "pipeline_ms": round(completed), "limit_ms": round(events_per_order * pg_latency), "ratio": ratio(completed, events_per_order * pg_latency),
            "note": "place call sent → COMPLETED against every transaction of an order's saga back to back"},
    });

    let series = throughput_over_time(&phases);
    let marks: Vec<(f64, String)> = phases
        .iter()
        .map(|p| (p.started - phases[0].started, format!("{}/s", p.rate)))
        .collect();
    let behind = Summary::of(&figures.raw.behind_schedule);
    let report = json!({
        "run_id": run_id,
        "mode": if options.quick { "quick" } else { "full" },
        "started_unix": fixed.started,
        "git": git_revision(),
        "machine": machine,
        "binaries": binaries,
        "stack": {"postgres": format!("{}:{}", config.postgres.host, config.postgres.port),
                  "kafka": config.kafka_bootstrap, "elasticsearch": es, "index": index},
        "method": {
            "arrivals": "open loop: order i is started at t0 + i/rate whether or not earlier orders are done; every latency is measured from that scheduled time",
            "carrier": "event driven: a Kafka tail of the saga topics; ShipmentCreated → POST dispatch, ShipmentDispatched → POST deliver",
            "states": "CONFIRMED/COMPLETED/CANCELLED from orders.events; the times are the orders service's own timeline from the terminal event's snapshot",
            "searchable": "one Elasticsearch ids query every 100 ms for every completed order not yet seen (_search sees refreshed documents only)",
        },
        "warmup": warmup,
        "pipeline": {
            "offered_per_second": sizes.rate, "seconds": sizes.seconds,
            "orders": fixed.orders.len(), "completed": figures.completed,
            "not_completed": fixed.orders.iter().filter(|o| o.status != "COMPLETED").take(20).map(|o| json!({"order_id": o.order_id, "status": o.status})).collect::<Vec<_>>(),
            "errors": fixed.errors.iter().take(20).collect::<Vec<_>>(),
            "carrier_errors": tracker.carrier_errors.lock().unwrap().iter().take(20).cloned().collect::<Vec<_>>(),
            "placed_per_second": round(figures.placed_per_second),
            "finished_per_second": round(finished),
            "events_per_order": round(events_per_order),
            "orders_events_record_bytes_avg": record_bytes,
            "behind_schedule": behind.json(),
            "latency": figures.latency.iter().map(|(k, _, v)| (k.to_string(), v.json())).collect::<BTreeMap<_, _>>(),
            "stages": figures.stages.iter().map(|(k, v)| (k.to_string(), v.json())).collect::<BTreeMap<_, _>>(),
            "cdc": hops.json(),
            "cost": cost_report,
        },
        "throughput_over_time": {
            "seconds_since": "the fixed-rate run's first scheduled start",
            "phases": marks.iter().map(|(t, l)| json!([round(*t), l])).collect::<Vec<_>>(),
            "series": series.iter().map(|(k, v)| (k.to_string(), v.iter().map(|(t, r)| json!([t, r])).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
        },
        "step_up": {"ran": sizes.step_up, "rule": search::RULE,
                    "baseline_p95_ms": round(baseline_p95),
                    "latency_bound_ms": round(search::latency_bound_ms(baseline_p95)),
                    "search": search.json(), "phases": steps, "error": search_error},
        "limits": {"postgres": pg_limit, "kafka": kafka_limit, "elasticsearch": es_limit},
        "ratios": ratios,
    });
    let mut cdfs: Vec<(&str, Vec<f64>)> = figures
        .latency
        .iter()
        .filter(|(_, plotted, _)| *plotted)
        .map(|(name, _, _)| (*name, figures.raw_of(name)))
        .collect();
    cdfs.push((
        "CDC hop: commit → reaction commit",
        hops.commit_to_reaction.clone(),
    ));
    let svg = plot::svg(
        &format!(
            "orderflow bench {run_id}: {} orders/s for {} s, open loop ({} of {} completed), {} build",
            sizes.rate,
            sizes.seconds,
            figures.completed,
            fixed.orders.len(),
            machine["build"].as_str().unwrap_or("?")
        ),
        &cdfs,
        &series,
        &marks,
    );
    std::fs::write(options.out.join("bench.svg"), svg)?;
    Ok(report)
}

fn carrier_errors(tracker: &Tracker) -> String {
    let errors = tracker.carrier_errors.lock().unwrap();
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}

/// Which executable each platform process runs, against the bench's own: a reused process of an
/// older build (or of another profile) measures other code than this binary.
fn binaries(watched: &[cost::Watched]) -> Value {
    let own = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut platform = BTreeMap::new();
    let mut differing = Vec::new();
    for w in watched.iter().filter(|w| w.group == "platform") {
        let exe = cost::exe(w.root).unwrap_or_default();
        if exe != own {
            differing.push(format!("{} runs {exe}", w.name));
        }
        platform.insert(w.name.clone(), exe);
    }
    let warning = (!differing.is_empty()).then(|| {
        format!(
            "platform processes run another binary than this bench ({own}): {}",
            differing.join(", ")
        )
    });
    json!({"bench": own, "profile": stats::build_profile(), "platform": platform, "warning": warning})
}

fn git_revision() -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// The report without its bulky parts, as one line of the history file.
fn append_history(path: &Path, report: &Value) -> anyhow::Result<()> {
    let mut line = report.clone();
    if let Some(o) = line.as_object_mut() {
        o.remove("throughput_over_time");
    }
    if let Some(p) = line["pipeline"].as_object_mut() {
        for key in ["not_completed", "errors", "carrier_errors"] {
            p.remove(key);
        }
    }
    if let Some(p) = line["limits"]["postgres"].as_object_mut() {
        p.remove("script");
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(&line)?)?;
    Ok(())
}

struct Raw {
    behind_schedule: Vec<f64>,
    series: BTreeMap<&'static str, Vec<f64>>,
}

struct Figures {
    orders: usize,
    completed: usize,
    placed_per_second: f64,
    finished_per_second: f64,
    place: Summary,
    place_to_confirmed: Summary,
    place_to_completed: Summary,
    to_completed: Summary,
    /// (name, plotted as a CDF, summary), in table order.
    latency: Vec<(&'static str, bool, Summary)>,
    stages: Vec<(&'static str, Summary)>,
    behind_p99: f64,
    raw: Raw,
}

impl Figures {
    fn raw_of(&self, name: &str) -> Vec<f64> {
        self.raw.series.get(name).cloned().unwrap_or_default()
    }

    fn rule(&self, phase: &Phase) -> search::PhaseFigures {
        search::PhaseFigures {
            offered_per_second: phase.rate,
            orders: self.orders,
            completed: self.completed,
            finished_per_second: self.finished_per_second,
            p95_completed_ms: self.to_completed.p95,
            behind_schedule_p99_ms: self.behind_p99,
            aborted_backlog: phase.aborted_backlog,
        }
    }
}

const L_BEHIND: &str = "behind schedule: scheduled → draft call sent";
const L_PLACE: &str = "place (HTTP call)";
const L_PLACED: &str = "scheduled → place answered (draft, line, place)";
const L_CONFIRMED: &str = "scheduled → CONFIRMED";
const L_COMPLETED: &str = "scheduled → COMPLETED";
const L_SEARCHABLE: &str = "scheduled → searchable in Elasticsearch";

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
    // Every order started, finished or not: how well the bench kept its own schedule.
    let behind_schedule: Vec<f64> = phase
        .orders
        .iter()
        .map(|o| (o.started - o.scheduled) * 1000.0)
        .collect();
    let mut series = BTreeMap::new();
    series.insert(L_BEHIND, behind_schedule.clone());
    series.insert(L_PLACE, ms(&|o| Some(o.place_answered - o.place_sent)));
    series.insert(L_PLACED, ms(&|o| Some(o.place_answered - o.scheduled)));
    series.insert(L_CONFIRMED, ms(&|o| Some(o.confirmed_at? - o.scheduled)));
    series.insert(L_COMPLETED, ms(&|o| Some(o.completed_at? - o.scheduled)));
    series.insert(L_SEARCHABLE, ms(&|o| Some(o.searchable? - o.scheduled)));
    let latency: Vec<(&'static str, bool, Summary)> = [
        (L_BEHIND, false),
        (L_PLACE, true),
        (L_PLACED, false),
        (L_CONFIRMED, true),
        (L_COMPLETED, true),
        (L_SEARCHABLE, true),
    ]
    .into_iter()
    .map(|(name, plotted)| (name, plotted, Summary::of(&series[name])))
    .collect();
    let stages: Vec<(&'static str, Summary)> = vec![
        (
            "1 place call → CONFIRMED (reserve, charge, confirm: 3 CDC hops)",
            Summary::of(&ms(&|o| Some(o.confirmed_at? - o.place_sent))),
        ),
        (
            "2 CONFIRMED → ShipmentCreated at the carrier (saga + 2 hops)",
            Summary::of(&ms(&|o| Some(o.shipment_seen? - o.confirmed_at?))),
        ),
        (
            "3 dispatch call → dispatched (shipping's clock: no hop)",
            Summary::of(&ms(&|o| Some(o.shipped_at? - o.dispatch_sent?))),
        ),
        (
            "4 dispatched → deliver call (1 hop to the carrier)",
            Summary::of(&ms(&|o| Some(o.deliver_sent? - o.shipped_at?))),
        ),
        (
            "5 deliver call → COMPLETED (1 hop to orders)",
            Summary::of(&ms(&|o| Some(o.completed_at? - o.deliver_sent?))),
        ),
        (
            "6 COMPLETED → searchable (hop, sink, ES refresh, 100 ms query)",
            Summary::of(&ms(&|o| Some(o.searchable? - o.completed_at?))),
        ),
    ];
    let rate = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        match (times.first(), times.last()) {
            (Some(first), Some(last)) if last > first => (times.len() - 1) as f64 / (last - first),
            _ => 0.0,
        }
    };
    let place = Summary::of(&series[L_PLACE]);
    Figures {
        orders: phase.orders.len() + phase.errors.len(),
        completed: done.len(),
        placed_per_second: rate(phase.orders.iter().map(|o| o.place_sent).collect()),
        finished_per_second: rate(done.iter().filter_map(|o| o.completed_at).collect()),
        place,
        place_to_confirmed: Summary::of(&ms(&|o| Some(o.confirmed_at? - o.place_sent))),
        place_to_completed: Summary::of(&ms(&|o| Some(o.completed_at? - o.place_sent))),
        to_completed: Summary::of(&series[L_COMPLETED]),
        latency,
        stages,
        behind_p99: Summary::of(&behind_schedule).p99,
        raw: Raw {
            behind_schedule,
            series,
        },
    }
}

fn step_json(
    phase: &Phase,
    figures: &Figures,
    verdict: &search::Verdict,
    machine: Option<Value>,
    backlog_limit: usize,
) -> Value {
    json!({
        "phase": phase.number,
        "offered_per_second": phase.rate, "seconds": phase.seconds,
        "orders": figures.orders, "completed": figures.completed,
        "finished_per_second": round(figures.finished_per_second),
        "scheduled_to_completed": figures.to_completed.json(),
        "behind_schedule_p99_ms": round(figures.behind_p99),
        "in_flight_at_start": phase.in_flight_at_start,
        "backlog_limit": backlog_limit,
        "stopped_early": phase.aborted_backlog,
        "keeps_up": verdict.keeps_up, "reasons": verdict.reasons,
        "machine": machine,
    })
}

/// Orders offered (scheduled), completed and searchable per one-second bin, over every phase.
fn throughput_over_time(phases: &[Phase]) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let start = phases.first().map(|p| p.started).unwrap_or(0.0);
    let end = phases.iter().map(|p| p.ended).fold(start, f64::max);
    let bins = (end - start).ceil().max(1.0) as usize + 1;
    let count = |times: Vec<f64>| -> Vec<(f64, f64)> {
        let mut counts = vec![0.0; bins];
        for t in times {
            let i = (t - start).max(0.0) as usize;
            if i < bins {
                counts[i] += 1.0;
            }
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i as f64, c))
            .collect()
    };
    let all = || phases.iter().flat_map(|p| p.orders.iter());
    vec![
        ("offered / s", count(all().map(|o| o.scheduled).collect())),
        (
            "completed / s",
            count(all().filter_map(|o| o.completed_at).collect()),
        ),
        (
            "searchable / s",
            count(all().filter_map(|o| o.searchable).collect()),
        ),
    ]
}

fn print_table(report: &Value) {
    let p = &report["pipeline"];
    let m = &report["machine"];
    println!(
        "\norderflow bench {} ({} mode, git {}) on {} x {}, {} MiB, kernel {}, {} build",
        report["run_id"].as_str().unwrap_or(""),
        report["mode"].as_str().unwrap_or(""),
        report["git"].as_str().unwrap_or("?"),
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory_mib"],
        m["kernel"].as_str().unwrap_or(""),
        m["build"].as_str().unwrap_or(""),
    );
    println!(
        "load average at the start: {}",
        m["loadavg_at_start"].as_str().unwrap_or("")
    );
    if let Some(warning) = report["binaries"]["warning"].as_str() {
        println!("WARNING: {warning}");
    }
    let w = &report["warmup"];
    if !w.is_null() {
        println!(
            "\nWARM-UP   {}/s for {} s before anything is measured: {} orders, {} completed, finished {}/s, scheduled → COMPLETED p50 {} ms, p99 {} ms",
            w["offered_per_second"],
            w["seconds"],
            w["orders"],
            w["completed"],
            w["finished_per_second"],
            w["scheduled_to_completed"]["p50_ms"],
            w["scheduled_to_completed"]["p99_ms"]
        );
    }
    let behind = &p["behind_schedule"];
    println!(
        "\nPIPELINE  offered {}/s for {} s, open loop: {} orders, {} completed; placed {}/s, finished {}/s; {} events per order",
        p["offered_per_second"],
        p["seconds"],
        p["orders"],
        p["completed"],
        p["placed_per_second"],
        p["finished_per_second"],
        p["events_per_order"]
    );
    println!(
        "          starts behind schedule: p50 {} ms, p99 {} ms, max {} ms",
        behind["p50_ms"], behind["p99_ms"], behind["max_ms"]
    );
    let header = |title: &str| {
        println!(
            "\n{:<66} {:>6} {:>9} {:>9} {:>9} {:>9}",
            title, "n", "p50", "p95", "p99", "max"
        )
    };
    let row = |name: &str, s: &Value| {
        let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
        println!(
            "{:<66} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            name,
            s["count"],
            f("p50_ms"),
            f("p95_ms"),
            f("p99_ms"),
            f("max_ms")
        )
    };
    header("LATENCY (ms, from each order's scheduled start)");
    for name in [
        L_BEHIND,
        L_PLACE,
        L_PLACED,
        L_CONFIRMED,
        L_COMPLETED,
        L_SEARCHABLE,
    ] {
        row(name, &p["latency"][name]);
    }
    header("STAGES (ms)");
    for (name, s) in p["stages"].as_object().into_iter().flatten() {
        row(name, s);
    }
    let cdc = &p["cdc"];
    header("CDC HOPS (ms, every event of the run's orders)");
    if cdc["track_commit_timestamp"] == true {
        row(
            "producing commit → Kafka record timestamp",
            &cdc["commit_to_kafka_record"],
        );
        row(
            "Kafka record timestamp → the bench's receipt",
            &cdc["kafka_record_to_bench_receipt"],
        );
        row(
            "the bench's receipt → consuming reaction's commit",
            &cdc["bench_receipt_to_reaction_commit"],
        );
        row(
            "Kafka record timestamp → consuming reaction's commit",
            &cdc["kafka_record_to_reaction_commit"],
        );
        row(
            "producing commit → consuming reaction's commit (the hop)",
            &cdc["commit_to_reaction_commit"],
        );
    } else {
        println!(
            "  (track_commit_timestamp is off: restart PostgreSQL with scripts/stack down postgres && scripts/stack up postgres)"
        );
        row(
            "Kafka record timestamp → the bench's receipt",
            &cdc["kafka_record_to_bench_receipt"],
        );
    }
    row(
        "orders.events: outbox created_at → Kafka record timestamp",
        &cdc["orders_events_created_at_to_kafka_record"],
    );
    row(
        "orders.events: outbox created_at → the bench's receipt",
        &cdc["orders_events_created_at_to_bench_receipt"],
    );

    let c = &p["cost"];
    let machine = &c["machine"];
    println!(
        "\nCOST over the fixed-rate run: {} s on {} CPUs, {} completed orders",
        c["window_seconds"], c["cpus"], c["completed_orders"]
    );
    println!(
        "{:<10} {:<22} {:>6} {:>8} {:>10} {:>7} {:>10} {:>10}",
        "", "process (tree)", "procs", "cpu s", "cpu s/1000", "% busy", "PSS MiB", "max VmHWM"
    );
    for r in c["processes"].as_array().into_iter().flatten() {
        println!(
            "{:<10} {:<22} {:>6} {:>8.2} {:>10.2} {:>7.1} {:>10.1} {:>10.1}",
            r["group"].as_str().unwrap_or(""),
            r["process"].as_str().unwrap_or(""),
            r["processes_in_tree_peak"],
            r["cpu_seconds"].as_f64().unwrap_or(0.0),
            r["cpu_seconds_per_1000_orders"].as_f64().unwrap_or(0.0),
            r["share_of_machine_busy"].as_f64().unwrap_or(0.0),
            r["peak_pss_mib"].as_f64().unwrap_or(0.0),
            r["largest_vmhwm_mib"].as_f64().unwrap_or(0.0),
        );
    }
    for (group, cpu) in c["groups_cpu_seconds"].as_object().into_iter().flatten() {
        println!(
            "{:<10} {:<22} {:>6} {:>8.2}",
            group,
            "(sum)",
            "",
            cpu.as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "machine    /proc/stat busy: {} of {} CPU-s ({}%), {} CPU-s per 1000 orders; measured trees {}, not accounted for {} (other processes, kernel)",
        machine["busy_cpu_seconds"],
        machine["capacity_cpu_seconds"],
        machine["busy_percent"],
        machine["busy_cpu_seconds_per_1000_orders"],
        machine["measured_processes_cpu_seconds"],
        machine["not_accounted_cpu_seconds"]
    );

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
        println!(
            "\nSTEP-UP  rule: {}\n         baseline p95 {} ms (the fixed-rate run), bound {} ms",
            s["rule"].as_str().unwrap_or(""),
            s["baseline_p95_ms"],
            s["latency_bound_ms"]
        );
        for step in s["phases"].as_array().into_iter().flatten() {
            let reasons: Vec<&str> = step["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .collect();
            println!(
                "  offered {:>7}/s  finished {:>8}/s  p95 {:>9} ms  {}{}",
                step["offered_per_second"],
                step["finished_per_second"],
                step["scheduled_to_completed"]["p95_ms"],
                if step["keeps_up"] == true {
                    "keeps up"
                } else {
                    "falls behind"
                },
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", reasons.join("; "))
                }
            );
        }
        if let Some(error) = s["error"].as_str() {
            println!("  the search stopped: a phase failed at {error}");
        }
        let search = &s["search"];
        println!(
            "  highest sustained rate: {} orders/s (first rate not sustained: {})",
            search["highest_sustained_per_second"], search["first_not_sustained_per_second"]
        );
    }
}
