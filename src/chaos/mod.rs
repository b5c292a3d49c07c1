//! `orderflow chaos` (`scripts/chaos`): a steady open-loop load, the bench's, carrier included,
//! while every process of the platform is SIGKILLed in turn, kept down for a while and started
//! again the way the scripts start it (`faults`). Afterwards the data stores themselves are audited
//! (`audit`): every order terminal, every effect exactly once, Elasticsearch and the archive
//! complete, no new dead letters. It prints one row per component (time down, orders in flight
//! when it died, time to recover, effects lost and duplicated among the orders it could have
//! touched), writes the same as `chaos.json`, and exits non-zero when anything was lost or
//! duplicated.
//!
//! The load survives the faults the way a real client must: every POST carries an
//! `Idempotency-Key` and is retried with the same key on a transport error, a 5xx or a 429, for
//! longer than an outage lasts; the carrier's dispatch and deliver calls likewise.

pub mod audit;
pub mod faults;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orderflow_platform::config::StackConfig;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::bench::events::{Driver, OrderTimes, Tracker};
use crate::bench::pipeline::{self, STOCK, Target, now, post_keyed};
use faults::{Component, Kind};

pub struct ChaosOptions {
    pub rate: f64,
    pub down: Duration,
    /// Healthy time before the first fault and between two.
    pub gap: Duration,
    pub components: Vec<Component>,
    /// The longest wait for the orders in flight at a fault to finish after it came back.
    pub recover_max: Duration,
    /// The longest wait, after the load stopped, for every order to finish and the sink to catch up.
    pub settle: Duration,
    pub out: PathBuf,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub component: String,
    pub kind: Kind,
    pub processes_killed: usize,
    /// SIGKILL → started again and ready, seconds.
    pub down_s: f64,
    /// Orders started and not finished when it died.
    pub in_flight: usize,
    /// Ready again → every order started before it was ready has finished, seconds (`None`: not
    /// within `recover_max`).
    pub recover_s: Option<f64>,
    pub lost: usize,
    pub duplicated: usize,
    /// Wall-clock window (seconds since the epoch) in which an order could have been touched.
    #[serde(skip)]
    window: (f64, f64),
}

pub async fn run(options: ChaosOptions) -> anyhow::Result<()> {
    let config = StackConfig::from_env()?;
    let root = PathBuf::from(
        std::env::var("ORDERFLOW_ROOT").context("ORDERFLOW_ROOT: run it through scripts/chaos")?,
    );
    let state = PathBuf::from(
        std::env::var("ORDERFLOW_STATE")
            .unwrap_or_else(|_| root.join(".stack").display().to_string()),
    );
    if std::env::var("ORDERFLOW_BIN").is_err() {
        bail!("ORDERFLOW_BIN: the orderflow binary the platform runs (scripts/chaos sets it)");
    }
    for component in &options.components {
        if component.pid(&state).is_none() {
            bail!(
                "{} is not running: scripts/chaos starts the stack and the platform first",
                component.name
            );
        }
    }
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("create {}", options.out.display()))?;
    let run_id = format!("{:06x}", Uuid::new_v4().as_u128() as u32 & 0xff_ffff).to_uppercase();
    let index = std::env::var("ORDERFLOW_ES_INDEX")
        .unwrap_or_else(|_| orderflow_analytics::config::DEFAULT_INDEX.to_string());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()?;
    let patience = options.down + options.recover_max + Duration::from_secs(60);
    let target = pipeline::setup(
        Target::from_env(
            http.clone(),
            &config.elasticsearch_url,
            &index,
            Duration::from_millis(500),
            patience,
        )?,
        &run_id,
        10,
    )
    .await
    .context("setting up the run's product and customers")?;
    let customers: Vec<Uuid> = target
        .customer_ids
        .iter()
        .map(|c| Uuid::parse_str(c))
        .collect::<Result<_, _>>()?;
    let target = Arc::new(target);
    let tracker = Arc::new(Tracker::default());
    let driver = Driver::start(
        &config.kafka_bootstrap,
        &config.registry_url,
        target.clone(),
        tracker.clone(),
    )?;
    let topics = audit::watched_topics();
    let before = audit::end_offsets(&config.kafka_bootstrap, &topics)?;
    eprintln!(
        "chaos {run_id}: {}/s open loop; {} fault(s), each down {} s, {} s apart",
        options.rate,
        options.components.len(),
        options.down.as_secs(),
        options.gap.as_secs()
    );

    // The load, until every fault is done.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(
        target.clone(),
        tracker.clone(),
        options.rate,
        patience,
        stop.clone(),
    ));
    let started = now();
    let mut rows = Vec::new();
    for component in &options.components {
        tokio::time::sleep(options.gap).await;
        let row = fault(component, &root, &state, &tracker, &options).await?;
        eprintln!(
            "  {:<14} down {:>5.1} s, {:>4} in flight, recovered {}",
            row.component,
            row.down_s,
            row.in_flight,
            row.recover_s
                .map(|s| format!("in {s:.1} s"))
                .unwrap_or_else(|| "NOT within the limit".into())
        );
        rows.push(row);
    }
    tokio::time::sleep(options.gap).await;
    stop.store(true, Ordering::Relaxed);
    let load_errors = load.await.context("the load task")?;
    let load_ended = now();

    // Settle: every order finished (by the database), the sink caught up.
    eprintln!("load stopped; waiting for every order to finish and the sink to catch up ...");
    let deadline = Instant::now() + options.settle;
    loop {
        let statuses = audit::order_statuses(&config, &customers).await?;
        let open = statuses
            .values()
            .filter(|s| *s != "COMPLETED" && *s != "CANCELLED")
            .count();
        let after = audit::end_offsets(&config.kafka_bootstrap, &topics)?;
        let partitions: Vec<i32> = after
            .keys()
            .filter(|(t, _)| t == audit::ARCHIVED_TOPIC)
            .map(|(_, p)| *p)
            .collect();
        let committed = audit::committed(
            &config.kafka_bootstrap,
            "analytics-sink",
            audit::ARCHIVED_TOPIC,
            &partitions,
        )?;
        let sink_behind: i64 = partitions
            .iter()
            .map(|p| {
                after[&(audit::ARCHIVED_TOPIC.to_string(), *p)]
                    - committed.get(p).copied().unwrap_or(0).max(0)
            })
            .sum();
        if (open == 0 && sink_behind == 0) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The last documents become searchable at the next refresh.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = audit::end_offsets(&config.kafka_bootstrap, &topics)?;
    driver.stop()?;
    let findings = audit::audit(audit::Run {
        config: &config,
        customers: &customers,
        sku: &target.sku,
        stock: STOCK,
        index: &index,
        archive_prefix: "archive",
        before: &before,
        after: &after,
        http: &http,
    })
    .await?;

    // Each order's problems count in the row of every fault whose window it overlaps.
    let orders: Vec<OrderTimes> = tracker.orders.lock().unwrap().values().cloned().collect();
    let lifetime = |order_id: &str| {
        orders
            .iter()
            .find(|o| o.order_id == order_id)
            .map(|o| (o.scheduled, o.finished_seen.unwrap_or(load_ended)))
    };
    for problem in &findings.problems {
        let span = problem.order_id.as_deref().and_then(lifetime);
        for row in rows.iter_mut() {
            let touches = match span {
                Some((from, to)) => from <= row.window.1 && to >= row.window.0,
                // Not about one order: it counts in every row.
                None => true,
            };
            if touches {
                match problem.kind {
                    audit::ProblemKind::Lost => row.lost += 1,
                    audit::ProblemKind::Duplicated => row.duplicated += 1,
                }
            }
        }
    }

    let table = render(&rows);
    println!("{table}");
    println!(
        "orders {}: {} completed, {} cancelled; {} captures, {} refunds, {} shipments; {} documents; {} records archived; {} new dead letters",
        findings.orders,
        findings.completed,
        findings.cancelled,
        findings.captures,
        findings.refunds,
        findings.shipments,
        findings.documents,
        findings.archived_records,
        findings.dead_letters
    );
    for problem in findings.problems.iter().take(30) {
        println!(
            "  {:?} {}: {}",
            problem.kind,
            problem.order_id.as_deref().unwrap_or("-"),
            problem.what
        );
    }
    for error in load_errors.iter().take(10) {
        println!("  load: {error}");
    }
    let report = json!({
        "run": run_id,
        "rate": options.rate,
        "down_s": options.down.as_secs_f64(),
        "gap_s": options.gap.as_secs_f64(),
        "seconds": load_ended - started,
        "rows": rows,
        "findings": findings,
        "load_errors": load_errors,
        "carrier_errors": tracker.carrier_errors.lock().unwrap().clone(),
        "machine": crate::bench::stats::machine(),
    });
    let path = options.out.join("chaos.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", path.display()))?;
    println!("written: {}", path.display());
    let broken = findings.problems.len() + load_errors.len();
    if broken > 0 {
        bail!(
            "{} problem(s) and {} order(s) the load could not start: see the list above and {}",
            findings.problems.len(),
            load_errors.len(),
            path.display()
        );
    }
    if rows.iter().any(|r| r.recover_s.is_none()) {
        bail!(
            "a component did not recover within {:?}",
            options.recover_max
        );
    }
    Ok(())
}

/// Kill one component, keep it down, start it again, wait for the orders it caught in flight.
async fn fault(
    component: &Component,
    root: &std::path::Path,
    state: &std::path::Path,
    tracker: &Tracker,
    options: &ChaosOptions,
) -> anyhow::Result<Row> {
    let killed_at = now();
    let in_flight = tracker
        .orders
        .lock()
        .unwrap()
        .values()
        .filter(|o| !o.finished())
        .count();
    let processes_killed = component.kill(state).await?;
    tokio::time::sleep(options.down).await;
    component.restart(root).await?;
    let ready_at = now();
    // Recovered: every order started before it was ready again has finished.
    let deadline = Instant::now() + options.recover_max;
    let recover_s = loop {
        let waiting = tracker
            .orders
            .lock()
            .unwrap()
            .values()
            .filter(|o| o.scheduled <= ready_at && !o.finished())
            .count();
        if waiting == 0 {
            break Some(now() - ready_at);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok(Row {
        component: component.name.clone(),
        kind: component.kind,
        processes_killed,
        down_s: ready_at - killed_at,
        in_flight,
        recover_s,
        lost: 0,
        duplicated: 0,
        window: (killed_at, now()),
    })
}

/// The open-loop load: order i starts at t0 + i/rate until `stop`; returns the orders that could
/// not be started (placed) within `patience`.
async fn load(
    target: Arc<Target>,
    tracker: Arc<Tracker>,
    rate: f64,
    patience: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let t0 = tokio::time::Instant::now();
    let wall0 = now();
    let mut tasks = Vec::new();
    for i in 0usize.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let offset = i as f64 / rate;
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(offset)).await;
        let (target, tracker, errors) = (target.clone(), tracker.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(error) = start_order(&target, &tracker, i, wall0 + offset, patience).await {
                errors.lock().unwrap().push(format!("{error:#}"));
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    errors.lock().unwrap().clone()
}

/// Draft, a line, place: each call with its own key, retried with it until it is answered.
async fn start_order(
    target: &Target,
    tracker: &Tracker,
    n: usize,
    scheduled: f64,
    patience: Duration,
) -> anyhow::Result<()> {
    let started = now();
    let customer = &target.customer_ids[n % target.customer_ids.len()];
    let draft = call(
        target,
        format!("{}/orders", target.orders),
        json!({"customer_id": customer}),
        201,
        patience,
    )
    .await?;
    let order_id = draft["order_id"].as_str().context("order id")?.to_string();
    call(
        target,
        format!("{}/orders/{order_id}/lines", target.orders),
        json!({"sku": target.sku, "quantity": 1 + (n % 3) as u64}),
        200,
        patience,
    )
    .await?;
    tracker.insert(OrderTimes {
        order_id: order_id.clone(),
        phase: 0,
        scheduled,
        started,
        place_sent: now(),
        status: "PLACED".into(),
        ..Default::default()
    });
    call(
        target,
        format!("{}/orders/{order_id}/place", target.orders),
        json!({}),
        200,
        patience,
    )
    .await
    .inspect_err(|_| {
        tracker.update(&order_id, |o| o.status = "PLACE FAILED".into());
    })?;
    tracker.update(&order_id, |o| o.place_answered = now());
    Ok(())
}

/// One POST with an `Idempotency-Key`, retried with the same key on a transport error, a 5xx or a
/// 429 (the services store no answer for those). A 422, which the orders service answers until it
/// has learned the product or the customer from their events, is a stored answer: that retry is a
/// new request, with a new key.
async fn call(
    target: &Target,
    url: String,
    body: Value,
    want: u16,
    patience: Duration,
) -> anyhow::Result<Value> {
    let mut key = Uuid::new_v4().to_string();
    let deadline = Instant::now() + patience;
    let mut attempt = 0u64;
    loop {
        let last = match post_keyed(
            &target.http,
            &target.office,
            url.clone(),
            body.clone(),
            &key,
        )
        .await
        {
            Ok((status, answer)) if status == want => return Ok(answer),
            Ok((status, answer)) if status >= 500 || status == 429 => format!("{status} {answer}"),
            Ok((422, answer)) => {
                key = Uuid::new_v4().to_string();
                format!("422 {answer}")
            }
            Ok((status, answer)) => bail!("POST {url}: {status} {answer}"),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() > deadline {
            bail!("POST {url}: still failing after {patience:?}: {last}");
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis((100 * attempt).min(1_000))).await;
    }
}

fn render(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<15} {:<9} {:>6} {:>8} {:>10} {:>11} {:>5} {:>11}\n",
        "component", "kind", "procs", "down s", "in flight", "recover s", "lost", "duplicated"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<15} {:<9} {:>6} {:>8.1} {:>10} {:>11} {:>5} {:>11}\n",
            r.component,
            match r.kind {
                Kind::Server => "server",
                Kind::Platform => "platform",
            },
            r.processes_killed,
            r.down_s,
            r.in_flight,
            r.recover_s
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "not".into()),
            r.lost,
            r.duplicated
        ));
    }
    out
}
