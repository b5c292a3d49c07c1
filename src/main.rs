//! The `orderflow` binary: one subcommand per role, so the same code runs as one process on a laptop
//! or as many in a cluster. Every role reads the stack's addresses from the environment (`stack.env`).

mod bench;
mod cdc;
mod chaos;
mod demo;
mod dlq;
mod topics;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use orderflow_platform::{StackConfig, telemetry};

#[derive(Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Event-driven order processing over change data capture"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the configuration this process would use, or the key that is missing or wrong.
    Config,
    /// Create the Kafka topics of platform/src/topics.rs that are missing and put back drifted
    /// settings (retention, cleanup policy); one line per topic. Idempotent.
    Topics {
        /// Report only: change nothing, exit non-zero if any topic is missing or differs.
        #[arg(long)]
        check: bool,
        /// Raise the partition count of topics that have fewer partitions than specified
        /// (keys move between partitions: per-key order across the change is lost).
        #[arg(long)]
        add_partitions: bool,
        /// Replicas per topic (1 on the single-node stack).
        #[arg(long, env = "ORDERFLOW_KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
        replication_factor: i32,
    },
    /// What a service database needs around its Debezium connector (used by scripts/setup-connectors).
    #[command(subcommand)]
    Cdc(Cdc),
    /// Serve one service's HTTP API (each listens on its ORDERFLOW_<SERVICE>_HTTP address).
    Serve {
        #[arg(value_enum)]
        service: Service,
    },
    /// Run saga consumers (all of them unless named), with /health and /metrics.
    Worker {
        /// Consumers to run: orders-saga, inventory-saga, payments-saga, shipping-saga.
        names: Vec<String>,
        /// Health and metrics address (default: ORDERFLOW_WORKERS_HTTP).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Dead letters of a consumer: list them, the keys parked behind them, redrive or discard them.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Orders as an operator sees them: those stuck past a saga deadline.
    #[command(subcommand)]
    Orders(Orders),
    /// Run the analytics sink: finished orders into Elasticsearch, every event into the S3 archive.
    Sink,
    /// Serve the reporting endpoints over Elasticsearch (ORDERFLOW_REPORTS_HTTP).
    Reports,
    /// Benchmark the running platform: latency, throughput and cost of the whole pipeline, and the
    /// limits of PostgreSQL, Kafka and Elasticsearch on the same machine (scripts/bench).
    Bench {
        /// A short run (well under two minutes): a fixed rate only, smaller limits.
        #[arg(long)]
        quick: bool,
        /// Where bench.json and bench.svg go.
        #[arg(long, default_value = "target/bench")]
        out: std::path::PathBuf,
        /// Offered rate of the fixed-rate run, orders per second (default 5).
        #[arg(long)]
        rate: Option<f64>,
        /// Length of the fixed-rate run in seconds (default 20 quick, 60 full).
        #[arg(long)]
        seconds: Option<f64>,
        /// Seconds of load at the fixed rate before anything is measured, so that the JVM servers
        /// are warm (default 30 full, 0 quick).
        #[arg(long)]
        warmup: Option<f64>,
        /// Skip the step-up search in full mode.
        #[arg(long)]
        no_step_up: bool,
        /// The step-up search never offers more than this many orders per second.
        #[arg(long, default_value_t = 640.0)]
        max_rate: f64,
        /// Bisection phases between the last rate that kept up and the first that did not.
        #[arg(long, default_value_t = 3)]
        bisections: usize,
    },
    /// SIGKILL every process of the platform in turn under a steady load, start each again the way
    /// the scripts do, then audit the data stores: nothing lost, nothing twice (scripts/chaos).
    Chaos {
        /// Offered orders per second, open loop, for the whole run.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Seconds each component stays down.
        #[arg(long, default_value_t = 15)]
        down: u64,
        /// Healthy seconds before the first fault and between two.
        #[arg(long, default_value_t = 10)]
        gap: u64,
        /// The components to kill, in order, comma-separated, or `all`.
        #[arg(long, default_value = "all")]
        components: String,
        /// Longest wait for the orders caught in flight to finish after a component is back.
        #[arg(long, default_value_t = 120)]
        recover_max: u64,
        /// Longest wait, after the load stops, for every order to finish and the sink to catch up.
        #[arg(long, default_value_t = 180)]
        settle: u64,
        /// Where chaos.json goes.
        #[arg(long, default_value = "target/chaos")]
        out: std::path::PathBuf,
    },
    /// Drive the running platform: seed products and customers, place orders with every outcome,
    /// play the carrier, wait until all are finished, print a summary.
    Demo {
        #[arg(long, default_value_t = 300)]
        orders: usize,
        #[arg(long, default_value_t = 40)]
        customers: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Service {
    Orders,
    Inventory,
    Payments,
    Shipping,
    Customers,
}

#[derive(Subcommand)]
enum Orders {
    /// Every order past its saga deadline: state, since when, which event it waits for
    /// (deadlines from ORDERFLOW_ORDERS_DEADLINE_*_SECONDS; PLACED ones are cancelled by the worker).
    Stuck {
        /// The orders database (default: the stack's `orders`).
        #[arg(long, default_value = "orders")]
        database: String,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// At most this many orders, oldest first.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum Dlq {
    /// One line per dead letter on <consumer>.dlq: where it came from, why, whether it was redriven.
    List { consumer: String },
    /// One line per key parked behind a dead letter: the dead letter's event id, its state
    /// (DEAD_LETTERED, or REDRIVEN and not applied yet) and how many events wait behind it.
    Parked { consumer: String },
    /// Produce the dead letters back onto their original topics, partitioned like Kafka Connect
    /// (murmur2 of the key), headers kept. Once applied, the events parked behind each follow in
    /// order; the inbox makes a copy of anything applied before harmless.
    Redrive {
        consumer: String,
        /// Also produce again the dead letters redriven before and not applied yet.
        #[arg(long)]
        again: bool,
    },
    /// Drop a dead letter for good (it is never applied) and apply the events parked behind it.
    /// Only a key's dead letter can be discarded, not an event parked behind it.
    Discard {
        consumer: String,
        /// The dead letter's event id (`orderflow dlq parked <consumer>` lists them).
        event_id: String,
    },
}

#[derive(Subcommand)]
enum Cdc {
    /// Create the outbox table (the service kit's migrations) and the connector's heartbeat table.
    Prepare {
        /// Service databases, e.g. `orders inventory`.
        #[arg(required = true)]
        databases: Vec<String>,
    },
    /// Drop a deleted connector's replication slot and publication, so no dead slot retains WAL.
    Drop {
        database: String,
        #[arg(long)]
        slot: String,
        #[arg(long)]
        publication: String,
        /// How long to wait for the slot to be released by a connector that is stopping.
        #[arg(long, default_value_t = 30)]
        wait_seconds: u64,
    },
    /// List the cluster's logical replication slots and the WAL each retains.
    Slots {
        /// Tab-separated lines without a header: slot, database, active (yes/no), retained WAL.
        #[arg(long)]
        tsv: bool,
    },
}

fn main() -> ExitCode {
    telemetry::init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain of causes on one line, without a backtrace: these errors are for a person.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config => {
            let config = StackConfig::from_env()?;
            // Role names only: a password is never printed (they are SecretStrings).
            let pg = &config.postgres;
            println!(
                "postgres       {}:{} databases {:?}",
                pg.host, pg.port, pg.databases
            );
            println!(
                "  roles        owner {} (set-up only), replication {}",
                pg.admin.user, pg.replication.user
            );
            for (database, login) in &pg.services {
                println!("  {database:<12} as {}", login.user);
            }
            println!("kafka          {}", config.kafka_bootstrap);
            println!("connect        {}", config.connect_url);
            println!("registry       {}", config.registry_url);
            println!("elasticsearch  {}", config.elasticsearch_url);
            println!(
                "s3             {} bucket {}",
                config.s3.endpoint, config.s3.bucket
            );
            let auth = orderflow_service_kit::auth::AuthConfig::from_env()?;
            println!(
                "identity       issuer {} audience {}",
                auth.issuer, auth.audience
            );
        }
        Command::Topics {
            check,
            add_partitions,
            replication_factor,
        } => {
            let config = StackConfig::from_env()?;
            let topology = orderflow_platform::topics::topology(replication_factor);
            runtime()?.block_on(topics::ensure(
                &config.kafka_bootstrap,
                &topology,
                topics::Mode {
                    check,
                    add_partitions,
                },
            ))?;
        }
        Command::Cdc(command) => {
            let config = StackConfig::from_env()?;
            let runtime = runtime()?;
            match command {
                Cdc::Prepare { databases } => {
                    runtime.block_on(cdc::prepare(&config.postgres, &databases))?
                }
                Cdc::Drop {
                    database,
                    slot,
                    publication,
                    wait_seconds,
                } => runtime.block_on(cdc::drop_slot(
                    &config.postgres,
                    &database,
                    &slot,
                    &publication,
                    Duration::from_secs(wait_seconds),
                ))?,
                Cdc::Slots { tsv } => runtime.block_on(cdc::slots(&config.postgres, tsv))?,
            }
        }
        Command::Serve { service } => {
            let serve = async {
                match service {
                    Service::Orders => orderflow_orders::run().await,
                    Service::Inventory => orderflow_inventory::run().await,
                    Service::Payments => orderflow_payments::run().await,
                    Service::Shipping => orderflow_shipping::run().await,
                    Service::Customers => orderflow_customers::run().await,
                }
            };
            multi_thread_runtime()?.block_on(serve)?;
        }
        Command::Worker { names, listen } => {
            multi_thread_runtime()?
                .block_on(orderflow_stream_workers::consumers::run(&names, listen))?;
        }
        Command::Sink => multi_thread_runtime()?.block_on(orderflow_analytics::run_sink())?,
        Command::Reports => multi_thread_runtime()?.block_on(orderflow_analytics::run_reports())?,
        Command::Demo {
            orders,
            customers,
            seed,
            concurrency,
        } => multi_thread_runtime()?.block_on(demo::run(demo::DemoOptions {
            orders,
            customers: customers.max(1),
            seed,
            concurrency: concurrency.max(1),
        }))?,
        Command::Chaos {
            rate,
            down,
            gap,
            components,
            recover_max,
            settle,
            out,
        } => multi_thread_runtime()?.block_on(chaos::run(chaos::ChaosOptions {
            rate: rate.max(0.1),
            down: std::time::Duration::from_secs(down),
            gap: std::time::Duration::from_secs(gap),
            components: chaos::faults::Component::parse_list(&components)?,
            recover_max: std::time::Duration::from_secs(recover_max),
            settle: std::time::Duration::from_secs(settle),
            out,
        }))?,
        Command::Bench {
            quick,
            out,
            rate,
            seconds,
            warmup,
            no_step_up,
            max_rate,
            bisections,
        } => multi_thread_runtime()?.block_on(bench::run(bench::BenchOptions {
            quick,
            out,
            rate: rate.filter(|r| *r > 0.0),
            seconds: seconds.filter(|s| *s > 0.0),
            warmup: warmup.filter(|s| *s >= 0.0),
            no_step_up,
            max_rate: max_rate.max(1.0),
            bisections,
        }))?,
        Command::Orders(Orders::Stuck {
            database,
            json,
            limit,
        }) => runtime()?.block_on(orders_stuck(&database, json, limit))?,
        Command::Dlq(command) => {
            let config = StackConfig::from_env()?;
            match command {
                Dlq::List { consumer } => dlq::list(&config.kafka_bootstrap, &consumer)?,
                Dlq::Parked { consumer } => runtime()?.block_on(dlq::parked(&config, &consumer))?,
                Dlq::Redrive { consumer, again } => {
                    runtime()?.block_on(dlq::redrive(&config, &consumer, again))?
                }
                Dlq::Discard { consumer, event_id } => {
                    runtime()?.block_on(dlq::discard(&config, &consumer, &event_id))?
                }
            }
        }
    }
    Ok(())
}

async fn orders_stuck(database: &str, json: bool, limit: i64) -> anyhow::Result<()> {
    let config = StackConfig::from_env()?;
    let deadlines = orderflow_orders::deadlines::Deadlines::from_env()?;
    let pool = orderflow_service_kit::database::connect_and_migrate(
        &config.postgres,
        database,
        &orderflow_orders::MIGRATOR,
    )
    .await?;
    let overdue =
        orderflow_orders::deadlines::overdue(&pool, &deadlines, chrono::Utc::now(), limit).await?;
    if json {
        for order in &overdue {
            println!("{}", serde_json::to_string(order)?);
        }
        return Ok(());
    }
    println!(
        "{:<36} {:<9} {:<20} {:<20} WAITING FOR",
        "ORDER", "STATUS", "SINCE", "DEADLINE"
    );
    for o in &overdue {
        println!(
            "{:<36} {:<9} {:<20} {:<20} {}",
            o.order_id,
            o.status,
            o.since.format("%Y-%m-%d %H:%M:%S"),
            o.deadline.format("%Y-%m-%d %H:%M:%S"),
            o.waiting_for
        );
    }
    println!("{} order(s) past their deadline", overdue.len());
    Ok(())
}

fn multi_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
