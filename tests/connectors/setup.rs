//! `scripts/setup-connectors` itself: a second run changes nothing; a wrong password fails setup with a
//! message a person can act on, whether it is wrong from the start (validation) or stops working under
//! a running connector (status); a connector on an idle database keeps its replication slot moving
//! while another database fills the WAL (the heartbeat); `--delete` removes the connector, its slot
//! and its publication. Throwaway connectors run on throwaway databases, never on the services' own.

use std::time::{Duration, Instant};

use orderflow_platform::StackConfig;
use orderflow_platform::topics::{self, TopicKind};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::Value;

use crate::common::{
    TempConfig, admin_pool, config_variant, connector_files, connector_status, require_running,
    setup_connectors, slot, stack_with_connect,
};

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A throwaway database with its own connector (and optionally its own PostgreSQL role), removed
/// with everything it created when dropped, even when the test failed.
struct Throwaway {
    config: StackConfig,
    database: String,
    role: Option<String>,
    file: Option<TempConfig>,
}

impl Throwaway {
    async fn new(config: &StackConfig) -> Self {
        let database = format!("cdc_test_{}", short_id());
        let admin = admin_pool(config, "postgres").await;
        sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
            .execute(&admin)
            .await
            .unwrap();
        // Its connector's heartbeats need their topic, like the real connectors' (platform topology).
        create_topic(config, &topics::heartbeat_topic(&database)).await;
        Self {
            config: config.clone(),
            database,
            role: None,
            file: None,
        }
    }

    /// A connector config for this database, based on `connectors/customers.json`.
    fn connector(&mut self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> &TempConfig {
        let database = self.database.clone();
        self.file = Some(config_variant("customers.json", |c| {
            c.insert("database.dbname".into(), database.clone().into());
            c.insert(
                "topic.prefix".into(),
                topics::connector_topic_prefix(&database).into(),
            );
            c.insert("slot.name".into(), format!("outbox_{database}").into());
            c.insert(
                "publication.name".into(),
                format!("outbox_{database}").into(),
            );
            edit(c);
            database.replace('_', "-")
        }));
        self.file.as_ref().unwrap()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let config = self.config.clone();
        let database = self.database.clone();
        let role = self.role.clone();
        let file = self.file.take();
        // Async clean-up from a destructor: on a thread of its own, with a runtime of its own.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    if let Some(file) = &file {
                        setup_connectors(&["--delete", file.arg()]).await;
                    }
                    let admin = admin_pool(&config, "postgres").await;
                    let _ = sqlx::query(&format!(
                        r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
                    ))
                    .execute(&admin)
                    .await;
                    if let Some(role) = role {
                        let _ = sqlx::query(&format!(r#"DROP ROLE IF EXISTS "{role}""#))
                            .execute(&admin)
                            .await;
                    }
                    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                        .set("bootstrap.servers", &config.kafka_bootstrap)
                        .create()
                        .unwrap();
                    let _ = admin
                        .delete_topics(&[&topics::heartbeat_topic(&database)], &AdminOptions::new())
                        .await;
                })
        })
        .join()
        .unwrap();
    }
}

async fn create_topic(config: &StackConfig, name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_bootstrap)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact")],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .unwrap();
    assert!(
        results.iter().all(Result::is_ok),
        "create {name}: {results:?}"
    );
}

/// The lines of the script's output that name a connector: `<name> <word>`.
fn verdicts<'a>(output: &'a str, names: &[String]) -> Vec<(&'a str, &'a str)> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, verdict) = (words.next()?, words.next()?);
            (names.iter().any(|n| n == name)
                && ["created", "updated", "unchanged", "restarted"].contains(&verdict))
            .then_some((name, verdict))
        })
        .collect()
}

async fn connector_configs(config: &StackConfig, names: &[String]) -> Vec<Value> {
    let mut configs = Vec::new();
    for name in names {
        let url = format!("{}/connectors/{name}/config", config.connect_url);
        configs.push(reqwest::get(url).await.unwrap().json().await.unwrap());
    }
    configs
}

#[tokio::test]
async fn running_setup_twice_changes_nothing() {
    let (config, _connect) = stack_with_connect().await;
    let names: Vec<String> = connector_files().into_iter().map(|(_, n, _)| n).collect();

    let first = setup_connectors(&[]).await;
    assert!(first.success, "setup failed:\n{}", first.output);
    let before = connector_configs(&config, &names).await;

    let second = setup_connectors(&[]).await;
    assert!(second.success, "second setup failed:\n{}", second.output);
    let verdicts = verdicts(&second.output, &names);
    assert_eq!(verdicts.len(), names.len(), "{}", second.output);
    assert!(
        verdicts.iter().all(|(_, v)| *v == "unchanged"),
        "{verdicts:?}"
    );
    assert_eq!(connector_configs(&config, &names).await, before);
    for line in second
        .output
        .lines()
        .filter(|l| l.contains(".events") || l.contains(".dlq"))
    {
        assert!(line.contains("unchanged"), "topics unchanged: {line}");
    }
    for name in &names {
        let status = connector_status(&config, name).await.unwrap();
        assert_eq!(status["connector"]["state"], "RUNNING", "{status}");
    }
}

#[tokio::test]
async fn a_wrong_password_fails_setup_naming_the_password_and_changes_nothing() {
    let (config, _connect) = stack_with_connect().await;
    let id = short_id();
    let file = config_variant("customers.json", |c| {
        c.insert(
            "database.password".into(),
            "definitely-not-the-password".into(),
        );
        c.insert("slot.name".into(), format!("outbox_wrongpw_{id}").into());
        c.insert(
            "publication.name".into(),
            format!("outbox_wrongpw_{id}").into(),
        );
        format!("wrongpw-{id}")
    });

    let run = setup_connectors(&[file.arg()]).await;
    assert!(!run.success, "setup must fail:\n{}", run.output);
    for expected in [
        "INVALID",
        r#"database.hostname: Error while validating connector config: FATAL: password authentication failed for user "orderflow_cdc""#,
        "PostgreSQL rejected the password for user orderflow_cdc",
        "${env:ORDERFLOW_PG_REPLICATION_PASSWORD}",
        "nothing was changed in Kafka Connect",
    ] {
        assert!(
            run.output.contains(expected),
            "the output names {expected:?}:\n{}",
            run.output
        );
    }
    assert!(
        connector_status(&config, &file.name).await.is_none(),
        "no connector was registered"
    );
    let admin = admin_pool(&config, "customers").await;
    assert!(
        slot(&admin, &format!("outbox_wrongpw_{id}"))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_password_that_stops_working_under_a_running_connector_is_diagnosed_by_status() {
    let (config, _connect) = stack_with_connect().await;
    let mut throwaway = Throwaway::new(&config).await;
    let role = format!("cdc_rotate_{}", short_id());
    let admin = admin_pool(&config, "postgres").await;
    // A role of its own, so changing its password touches nothing else; member of the owner of the
    // tables, so it may put them in its publication.
    sqlx::query(&format!(
        r#"CREATE ROLE "{role}" LOGIN REPLICATION PASSWORD 'first-password' IN ROLE "{}""#,
        config.postgres.admin.user
    ))
    .execute(&admin)
    .await
    .unwrap();
    throwaway.role = Some(role.clone());
    let role_for_config = role.clone();
    let file = throwaway.connector(|c| {
        c.insert("database.user".into(), role_for_config.into());
        c.insert("database.password".into(), "first-password".into());
    });
    let (name, arg) = (file.name.clone(), file.arg().to_string());

    let run = setup_connectors(&[&arg]).await;
    assert!(run.success, "setup failed:\n{}", run.output);

    // The password changes in PostgreSQL; the connector restarts with the old one. Debezium retries a
    // failing start without end and Connect keeps saying RUNNING: only the slot shows it.
    sqlx::query(&format!(
        r#"ALTER ROLE "{role}" PASSWORD 'second-password'"#
    ))
    .execute(&admin)
    .await
    .unwrap();
    let restart = reqwest::Client::new()
        .post(format!(
            "{}/connectors/{name}/restart?includeTasks=true",
            config.connect_url
        ))
        .send()
        .await
        .unwrap();
    assert!(restart.status().is_success(), "{restart:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;

    let status = setup_connectors(&["--status", &arg]).await;
    assert!(!status.success, "--status must fail:\n{}", status.output);
    for expected in [
        "is not streaming",
        &format!(r#"password authentication failed for user "{role}""#),
        &format!("PostgreSQL rejected the password for user {role}"),
    ] {
        assert!(
            status.output.contains(expected),
            "the output names {expected:?}:\n{}",
            status.output
        );
    }

    // --delete takes the connector, its offsets, its slot and its publication away.
    let delete = setup_connectors(&["--delete", &arg]).await;
    assert!(delete.success, "--delete failed:\n{}", delete.output);
    assert!(connector_status(&config, &name).await.is_none());
    let db = admin_pool(&config, &throwaway.database).await;
    let slot_name = format!("outbox_{}", throwaway.database);
    assert!(slot(&db, &slot_name).await.is_none(), "the slot is dropped");
    let publications: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_publication WHERE pubname = $1")
            .bind(&slot_name)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(publications, 0, "the publication is dropped");
    db.close().await;
}

/// The WAL is shared by every database of the cluster; a slot only moves when its own database sends
/// it something. The heartbeat (an update of `debezium_heartbeat`, which is in the publication, every
/// 10 s) is that something: the idle database's slot follows the busy one's WAL.
#[tokio::test]
async fn an_idle_database_slot_keeps_up_with_a_busy_cluster_and_delete_drops_it() {
    let (config, _connect) = stack_with_connect().await;
    let mut throwaway = Throwaway::new(&config).await;
    let file = throwaway.connector(|_| {});
    let (name, arg) = (file.name.clone(), file.arg().to_string());

    let run = setup_connectors(&[&arg]).await;
    assert!(run.success, "setup failed:\n{}", run.output);
    assert!(
        verdicts(&run.output, std::slice::from_ref(&name)) == [(name.as_str(), "created")],
        "{}",
        run.output
    );
    let again = setup_connectors(&[&arg]).await;
    assert!(again.success, "{}", again.output);
    assert!(
        verdicts(&again.output, std::slice::from_ref(&name)) == [(name.as_str(), "unchanged")],
        "{}",
        again.output
    );
    require_running(&config, &name, Duration::from_secs(30)).await;

    // Another database fills the WAL; the throwaway one writes nothing at all.
    let busy = admin_pool(&config, "postgres").await;
    let table = format!("cdc_busy_{}", short_id());
    sqlx::query(&format!("CREATE TABLE {table} (filler text)"))
        .execute(&busy)
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT repeat('x', 1000) FROM generate_series(1, 8000)"
    ))
    .execute(&busy)
    .await
    .unwrap();
    let busy_lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&busy)
        .await
        .unwrap();
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&busy)
        .await
        .unwrap();

    let slot_name = format!("outbox_{}", throwaway.database);
    let started = Instant::now();
    loop {
        let caught_up: Option<bool> = sqlx::query_scalar(
            "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
        )
        .bind(&busy_lsn)
        .bind(&slot_name)
        .fetch_optional(&busy)
        .await
        .unwrap();
        match caught_up {
            Some(true) => break,
            None => panic!("slot {slot_name} does not exist"),
            Some(false) if started.elapsed() > Duration::from_secs(90) => {
                let now = slot(&busy, &slot_name).await;
                panic!(
                    "the idle database's slot did not move past the busy database's WAL position \
                     {busy_lsn} within 90s: {now:?}"
                )
            }
            Some(false) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    eprintln!(
        "slot {slot_name} confirmed past {busy_lsn} after {:?}",
        started.elapsed()
    );

    let delete = setup_connectors(&["--delete", &arg]).await;
    assert!(delete.success, "--delete failed:\n{}", delete.output);
    assert!(
        delete
            .output
            .contains(&format!("replication slot {slot_name} dropped"))
            && delete
                .output
                .contains(&format!("publication {slot_name} dropped")),
        "{}",
        delete.output
    );
    assert!(connector_status(&config, &name).await.is_none());
    assert!(slot(&busy, &slot_name).await.is_none(), "the slot is gone");
}

/// The connector files, the topic topology and the event catalogue agree, and no file holds a secret.
#[tokio::test]
async fn connector_files_agree_with_the_topology_and_hold_no_password() {
    let topology = topics::topology(1);
    let events: Vec<&str> = topology
        .iter()
        .filter(|t| t.kind == TopicKind::Events)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        events,
        orderflow_schemas::TOPICS,
        "one events topic per schemas topic"
    );
    assert_eq!(
        topology
            .iter()
            .filter(|t| t.kind == TopicKind::DeadLetter)
            .count(),
        topics::CONSUMERS.len()
    );

    let files = connector_files();
    assert_eq!(files.len(), topics::SERVICES.len());
    let mut slots = Vec::new();
    for (path, _, database) in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let c = &doc["config"];
        assert!(topics::SERVICES.contains(&database.as_str()), "{path:?}");
        assert_eq!(
            c["database.password"], "${env:ORDERFLOW_PG_REPLICATION_PASSWORD}",
            "{path:?}"
        );
        for key in ["database.hostname", "database.port", "database.user"] {
            assert!(
                c[key].as_str().unwrap().starts_with("${env:"),
                "{path:?} {key}"
            );
        }
        assert_eq!(c["plugin.name"], "pgoutput");
        assert_eq!(c["database.user"], "${env:ORDERFLOW_PG_REPLICATION_USER}");
        // The replication role owns no table, so it cannot make a publication: cdc prepare does.
        assert_eq!(c["publication.autocreate.mode"], "disabled");
        assert_eq!(
            c["table.include.list"],
            "public.outbox,public.debezium_heartbeat"
        );
        assert_eq!(c["topic.prefix"], topics::connector_topic_prefix(database));
        assert!(
            topology
                .iter()
                .any(|t| t.name == topics::heartbeat_topic(database)
                    && t.kind == TopicKind::Heartbeat),
            "{path:?}: its heartbeat topic is created up front"
        );
        assert_eq!(
            c["value.converter"],
            "io.debezium.converters.BinaryDataConverter"
        );
        assert_eq!(
            c["transforms.outbox.route.topic.replacement"],
            "${routedByValue}.events"
        );
        slots.push(c["slot.name"].as_str().unwrap().to_string());
        slots.push(c["publication.name"].as_str().unwrap().to_string());
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains("orderflow\""),
            "{path:?} holds no literal credentials"
        );
    }
    let mut unique = slots.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        files.len(),
        "one slot (= publication) name per connector"
    );
}
