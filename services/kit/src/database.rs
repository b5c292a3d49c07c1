//! A service's database: the connection pool, the migrations (the kit's shared tables, such as the
//! outbox, followed by the service's own), the janitor that keeps the kit's tables bounded, and
//! throwaway databases for tests.
//!
//! The kit's migrations are numbered below 100 and a service's from 100 up, so both live in one
//! `_sqlx_migrations` history.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use orderflow_platform::config::PostgresConfig;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

static KIT_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// The kit's migrations followed by the service's.
pub fn migrator(service: &Migrator) -> Migrator {
    let mut migrations: Vec<_> = KIT_MIGRATIONS.migrations.iter().cloned().collect();
    assert!(
        service.migrations.iter().all(|m| m.version >= 100),
        "service migrations are numbered from 100 up"
    );
    migrations.extend(service.migrations.iter().cloned());
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

fn options(config: &PostgresConfig, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&config.user)
        .password(&config.password)
        .database(database)
}

/// Connect a pool to a service database and bring its schema up to date.
pub async fn connect_and_migrate(
    config: &PostgresConfig,
    database: &str,
    service: &Migrator,
) -> anyhow::Result<PgPool> {
    connect_and_migrate_bounded(config, database, service, None).await
}

/// [`connect_and_migrate`], with every statement of the pool's sessions cancelled by PostgreSQL
/// after `statement_timeout` (SQLSTATE 57014, which the consumer runtime retries): a reaction that
/// waits on a row lock held elsewhere gives up and tries again instead of hanging.
pub async fn connect_and_migrate_bounded(
    config: &PostgresConfig,
    database: &str,
    service: &Migrator,
    statement_timeout: Option<Duration>,
) -> anyhow::Result<PgPool> {
    let mut options = options(config, database);
    if let Some(timeout) = statement_timeout {
        options = options.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL database {database} at {}:{}",
                config.host, config.port
            )
        })?;
    migrator(service)
        .run(&pool)
        .await
        .with_context(|| format!("migrating database {database}"))?;
    Ok(pool)
}

/// One of the kit's tables whose rows expire: the table and its timestamp column.
#[derive(Debug, Clone, Copy)]
pub struct Expiring {
    pub table: &'static str,
    pub column: &'static str,
}

/// Delete the rows of `expiring` older than `retention`; how many went.
pub async fn purge_older_than(
    pool: &PgPool,
    expiring: Expiring,
    retention: Duration,
) -> sqlx::Result<u64> {
    let sql = format!(
        "DELETE FROM {} WHERE {} < now() - make_interval(secs => $1)",
        expiring.table, expiring.column
    );
    let done = sqlx::query(&sql)
        .bind(retention.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Purge `expiring` of rows older than `retention` every `interval`, for as long as the process runs.
pub fn spawn_janitor(
    pool: PgPool,
    expiring: Expiring,
    retention: Duration,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            match purge_older_than(&pool, expiring, retention).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(table = expiring.table, deleted = n, "expired rows purged")
                }
                Err(error) => {
                    tracing::warn!(table = expiring.table, %error, "purge failed; will retry")
                }
            }
        }
    })
}

/// A fresh database for one test, migrated like the real one, dropped when the test ends.
pub struct TestDatabase {
    pub pool: PgPool,
    pub name: String,
    config: PostgresConfig,
}

impl TestDatabase {
    /// Create `<service>_test_<random>` and migrate it. Fails naming PostgreSQL when it is not reachable.
    pub async fn create(
        config: &PostgresConfig,
        service: &str,
        migrations: &Migrator,
    ) -> anyhow::Result<Self> {
        let name = format!("{service}_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&options(config, "postgres")).await.with_context(|| {
            format!(
                "PostgreSQL is not reachable at {}:{}: start it with `scripts/stack up postgres`",
                config.host, config.port
            )
        })?;
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await?;
        let pool = connect_and_migrate(config, &name, migrations).await?;
        Ok(Self {
            pool,
            name,
            config: config.clone(),
        })
    }

    /// Close the pool and drop the database.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut admin = PgConnection::connect_with(&options(&self.config, "postgres")).await?;
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}
