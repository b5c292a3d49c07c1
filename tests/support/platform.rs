//! The whole platform for end-to-end tests: the five services on random ports over their real
//! databases (on a runtime of their own, alive for the whole test binary), and the stream workers as a
//! child process (`orderflow worker`) that a test can SIGKILL and start again. The connectors must be
//! set up (`scripts/setup-connectors`, which `scripts/test` runs); a test fails saying so if not.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use orderflow_platform::StackConfig;
use orderflow_service_kit::Outbox;
use orderflow_service_kit::auth::Authenticator;
use orderflow_service_kit::database::connect_and_migrate;
use orderflow_service_kit::server::Server;
use orderflow_service_kit::service::{ServiceContext, ServiceSpec, routes};
use orderflow_service_kit::testing::TestIdentity;
use serde_json::Value;
use sqlx::PgPool;

use super::Server as StackServer;

pub struct Platform {
    pub stack: StackConfig,
    pub orders: String,
    pub inventory: String,
    pub customers: String,
    pub payments: String,
    pub shipping: String,
    pub http: reqwest::Client,
    /// Tokens from the identity provider; `get` and `post` send an admin token.
    pub identity: TestIdentity,
    /// The worker process's health and metrics, `http://127.0.0.1:<port>`.
    pub workers_url: String,
    /// The reporting endpoints (`orderflow reports`, fed by `orderflow sink`, both child processes).
    pub reports: String,
    workers: Mutex<std::sync::mpsc::Sender<WorkerCommand>>,
}

/// What the thread that owns the worker process is asked to do; it answers when done.
enum WorkerCommand {
    Start(std::sync::mpsc::Sender<()>),
    Kill(std::sync::mpsc::Sender<()>),
}

static PLATFORM: OnceLock<Platform> = OnceLock::new();

/// The platform, started on first use.
pub fn platform() -> &'static Platform {
    PLATFORM.get_or_init(start)
}

fn start() -> Platform {
    let stack = super::stack();
    for server in [
        StackServer::Postgres,
        StackServer::Kafka,
        StackServer::Registry,
        StackServer::Connect,
        StackServer::Identity,
    ] {
        server.require(&stack);
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let for_thread = stack.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the services");
        runtime.block_on(async move {
            if let Err(problem) = require_connectors(&for_thread).await {
                sender.send(Err(problem)).expect("hand the problem over");
                return;
            }
            let mut urls = Vec::new();
            for spec in [
                orderflow_orders::spec(),
                orderflow_inventory::spec(),
                orderflow_customers::spec(),
                orderflow_payments::spec(),
                orderflow_shipping::spec(),
            ] {
                urls.push(serve(&for_thread, spec).await);
            }
            sender.send(Ok(urls)).expect("hand the addresses over");
            std::future::pending::<()>().await;
        });
    });
    let urls = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("the services start")
        .unwrap_or_else(|problem| panic!("{problem}"));
    let workers_listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port for the workers");
    let reports_listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port for the reports");
    let platform = Platform {
        stack,
        orders: urls[0].clone(),
        inventory: urls[1].clone(),
        customers: urls[2].clone(),
        payments: urls[3].clone(),
        shipping: urls[4].clone(),
        // No idle connections kept: each test has its own runtime, and a pooled connection would
        // outlive the runtime it was made on.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("HTTP client"),
        identity: TestIdentity::new(),
        workers_url: format!("http://{workers_listen}"),
        reports: format!("http://{reports_listen}"),
        workers: Mutex::new(spawn_worker_owner(workers_listen, reports_listen)),
    };
    platform.start_workers();
    platform
}

async fn serve(stack: &StackConfig, spec: ServiceSpec) -> String {
    let pool = connect_and_migrate(&stack.postgres, spec.name, spec.migrations)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let outbox = Outbox::new(&stack.registry_url).expect("registry client");
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        routes(
            &spec,
            ServiceContext {
                pool,
                outbox,
                auth: Authenticator::from_env()
                    .unwrap_or_else(|e| panic!("auth configuration: {e}")),
            },
        ),
    )
    .await
    .expect("bind");
    format!("http://{}", server.spawn())
}

/// Every service's connector and its task RUNNING, or what to do about it.
async fn require_connectors(stack: &StackConfig) -> Result<(), String> {
    let url = format!("{}/connectors?expand=status", stack.connect_url);
    let body: Value = async { reqwest::get(&url).await?.json().await }
        .await
        .map_err(|e| {
            format!(
                "Kafka Connect at {} does not answer: {e} (`scripts/stack up connect`)",
                stack.connect_url
            )
        })?;
    for service in ["orders", "inventory", "payments", "shipping", "customers"] {
        let running = body
            .as_object()
            .into_iter()
            .flat_map(|all| all.values())
            .any(|c| {
                let status = &c["status"];
                status["connector"]["state"] == "RUNNING"
                    && status["tasks"]
                        .as_array()
                        .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING"))
                    && status["name"].as_str().is_some_and(|n| n.contains(service))
            });
        if !running {
            return Err(format!(
                "the {service} connector is not RUNNING in Kafka Connect: run `scripts/setup-connectors` (connectors: {body})"
            ));
        }
    }
    Ok(())
}

/// The worker process belongs to a thread that lives as long as the test binary: the child's
/// parent-death signal fires when the thread that started it ends, so it must not be a test's thread.
fn spawn_worker_owner(
    listen: std::net::SocketAddr,
    reports: std::net::SocketAddr,
) -> std::sync::mpsc::Sender<WorkerCommand> {
    let (commands, inbox) = std::sync::mpsc::channel::<WorkerCommand>();
    std::thread::spawn(move || {
        // The analytics sink and the reports run for the whole binary; only the workers are crashed.
        let _analytics = [
            spawn_orderflow(
                &["sink"],
                &[("ORDERFLOW_SINK_HTTP", "127.0.0.1:0".to_string())],
            ),
            spawn_orderflow(
                &["reports"],
                &[("ORDERFLOW_REPORTS_HTTP", reports.to_string())],
            ),
        ];
        let mut child: Option<Child> = None;
        for command in inbox {
            match command {
                WorkerCommand::Start(done) => {
                    let running = child
                        .as_mut()
                        .is_some_and(|c| c.try_wait().ok().flatten().is_none());
                    if !running {
                        child = Some(spawn_workers(listen));
                    }
                    let _ = done.send(());
                }
                WorkerCommand::Kill(done) => {
                    if let Some(mut c) = child.take() {
                        c.kill().expect("SIGKILL the workers");
                        c.wait().expect("reap the workers");
                    }
                    let _ = done.send(());
                }
            }
        }
    });
    commands
}

/// The workers of the tests: a short statement timeout, so that a test holding a row lock makes
/// reactions time out and retry (`tests/saga/deadlines.rs`), and a deadline sweep every second.
fn spawn_workers(listen: std::net::SocketAddr) -> Child {
    spawn_orderflow(
        &["worker", "--listen", &listen.to_string()],
        &[
            ("ORDERFLOW_WORKER_STATEMENT_TIMEOUT_MS", "1000".into()),
            ("ORDERFLOW_ORDERS_DEADLINE_SWEEP_SECONDS", "1".into()),
        ],
    )
}

/// Start `orderflow <args>` with its output in the e2e log; it dies with the thread that started it.
fn spawn_orderflow(args: &[&str], env: &[(&str, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(concat!(env!("CARGO_TARGET_TMPDIR"), "/e2e-workers.log"))
        .expect("worker log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl in the child between fork and exec only sets its parent-death signal.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("start orderflow {args:?}: {e}"))
}

impl Platform {
    fn ask(&self, command: impl FnOnce(std::sync::mpsc::Sender<()>) -> WorkerCommand) {
        let (done, finished) = std::sync::mpsc::channel();
        self.workers
            .lock()
            .unwrap()
            .send(command(done))
            .expect("the worker owner thread");
        finished.recv().expect("the worker owner answers");
    }

    /// Start `orderflow worker` (all saga consumers) unless it runs; it dies with the test binary.
    pub fn start_workers(&self) {
        self.ask(WorkerCommand::Start);
    }

    /// SIGKILL the workers, as a crash would; nothing gets to clean up.
    pub fn kill_workers(&self) {
        self.ask(WorkerCommand::Kill);
    }

    /// A connection pool to one service database, on the calling test's runtime.
    pub async fn db(&self, database: &str) -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_with(orderflow_service_kit::database::admin_options(
                &self.stack.postgres,
                database,
            ))
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL database {database}: {e} (`scripts/stack up postgres`)")
            })
    }

    /// The sum of a counter of the workers' `/metrics` over the series whose labels include every
    /// one of `labels` (an error while the workers are not answering).
    pub async fn worker_counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        let body = self
            .http
            .get(format!("{}/metrics", self.workers_url))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("the workers' /metrics: {e}"))?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let prefix = format!("{name}{{");
        Ok(body
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    pub async fn get(&self, url: String) -> (u16, Value) {
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.identity.admin().await)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        read(response).await
    }

    pub async fn post(&self, url: String, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.identity.admin().await)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        read(response).await
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Poll `check` until it returns Some, or fail after `limit` saying what was awaited and the last state.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match check().await {
            Ok(value) => return value,
            Err(state) => last = state,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!(
        "timed out after {limit:?} waiting for {what}; last seen: {last}\n(worker log: {}/e2e-workers.log)",
        env!("CARGO_TARGET_TMPDIR")
    )
}
