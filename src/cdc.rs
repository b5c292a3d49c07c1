//! `orderflow cdc ...`: what a service database needs around its Debezium connector, done in SQL.
//!
//! - `prepare`: the outbox table (the service kit's migrations) and the heartbeat table the
//!   connector's `heartbeat.action.query` writes, so the connector can start before the service has
//!   ever run, and an idle database still moves its replication slot forward.
//! - `drop`: the replication slot and publication of a deleted connector, so no dead slot keeps WAL.
//! - `slots`: every replication slot of the cluster and the WAL it holds back.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::{Context, bail};
use orderflow_platform::config::PostgresConfig;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

/// The table `heartbeat.action.query` updates in every service database (see `connectors/*.json`).
/// It is in the connector's publication, so each heartbeat produces a change in that database's
/// own logical stream: Debezium then confirms a recent LSN even when the service writes nothing
/// while other databases of the cluster fill the shared WAL.
pub const HEARTBEAT_TABLE: &str = "debezium_heartbeat";

async fn connect(config: &PostgresConfig, database: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&config.user)
        .password(&config.password)
        .database(database)
        // "already exists, skipping" notices are expected on every run: keep them out of the output.
        .options([("client_min_messages", "warning")]);
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL database {database} at {}:{}",
                config.host, config.port
            )
        })
}

/// The kit's migrations (the outbox table), without the service's own: those are the service's to
/// run. Migrations the service has already applied are left alone.
fn kit_migrator() -> Migrator {
    let none = Migrator {
        migrations: Cow::Owned(Vec::new()),
        ..Migrator::DEFAULT
    };
    let mut migrator = orderflow_service_kit::database::migrator(&none);
    migrator.set_ignore_missing(true);
    migrator
}

pub async fn prepare(config: &PostgresConfig, databases: &[String]) -> anyhow::Result<()> {
    for database in databases {
        let pool = connect(config, database).await?;
        kit_migrator()
            .run(&pool)
            .await
            .with_context(|| format!("migrating the outbox table of database {database}"))?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} (
                 id      integer     PRIMARY KEY,
                 beat_at timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .execute(&pool)
        .await
        .with_context(|| format!("creating {HEARTBEAT_TABLE} in database {database}"))?;
        sqlx::query(&format!(
            "INSERT INTO {HEARTBEAT_TABLE} (id) VALUES (1) ON CONFLICT (id) DO NOTHING"
        ))
        .execute(&pool)
        .await?;
        pool.close().await;
        println!("{database:<12} outbox and {HEARTBEAT_TABLE} tables ready");
    }
    Ok(())
}

/// Drop a connector's replication slot and publication. The slot may stay active for a moment
/// after the connector stopped: wait up to `wait` for its walsender to go away.
pub async fn drop_slot(
    config: &PostgresConfig,
    database: &str,
    slot: &str,
    publication: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let pool = connect(config, database).await?;
    let started = std::time::Instant::now();
    let slot_status = loop {
        let row =
            sqlx::query("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1")
                .bind(slot)
                .fetch_optional(&pool)
                .await?;
        match row {
            None => break "absent",
            Some(row) if !row.get::<bool, _>("active") => {
                sqlx::query("SELECT pg_drop_replication_slot($1)")
                    .bind(slot)
                    .execute(&pool)
                    .await
                    .with_context(|| format!("dropping replication slot {slot}"))?;
                break "dropped";
            }
            Some(row) => {
                if started.elapsed() > wait {
                    let pid: Option<i32> = row.get("active_pid");
                    bail!(
                        "replication slot {slot} is still in use by process {pid:?} after {}s: \
                         is a connector still using it? (`scripts/setup-connectors --status`)",
                        wait.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let existed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(publication)
            .fetch_one(&pool)
            .await?;
    if existed {
        sqlx::query(&format!(r#"DROP PUBLICATION IF EXISTS "{publication}""#))
            .execute(&pool)
            .await
            .with_context(|| format!("dropping publication {publication}"))?;
    }
    pool.close().await;
    println!(
        "{database:<12} replication slot {slot} {slot_status}, publication {publication} {}",
        if existed { "dropped" } else { "absent" }
    );
    Ok(())
}

/// Every logical replication slot of the cluster, with the WAL it keeps (what a dead or stuck slot
/// costs in disk). `tsv`: one `slot<TAB>database<TAB>active<TAB>retained WAL` line per slot, no
/// header, for scripts.
pub async fn slots(config: &PostgresConfig, tsv: bool) -> anyhow::Result<()> {
    let pool = connect(config, "postgres").await?;
    let rows = sqlx::query(
        "SELECT slot_name, database, active, confirmed_flush_lsn::text AS confirmed,
                pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained
         FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY database, slot_name",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    if !tsv {
        println!(
            "{:<28} {:<12} {:<8} {:<14} RETAINED WAL",
            "SLOT", "DATABASE", "ACTIVE", "CONFIRMED LSN"
        );
    }
    for row in rows {
        let slot: String = row.get("slot_name");
        let database = row.get::<Option<String>, _>("database").unwrap_or_default();
        let active = if row.get::<bool, _>("active") {
            "yes"
        } else {
            "no"
        };
        let confirmed = row
            .get::<Option<String>, _>("confirmed")
            .unwrap_or_default();
        let retained = row.get::<Option<String>, _>("retained").unwrap_or_default();
        if tsv {
            println!("{slot}\t{database}\t{active}\t{retained}");
        } else {
            println!("{slot:<28} {database:<12} {active:<8} {confirmed:<14} {retained}");
        }
    }
    Ok(())
}
