//! A service's database: the connection pool, the migrations (the kit's shared tables, such as the
//! outbox, followed by the service's own), the janitor that keeps the kit's tables bounded, and
//! throwaway databases for tests.
//!
//! A service connects as its database's own role (`PostgresConfig::service`), which owns that
//! database and cannot connect to another; the cluster's owner (`admin`) only creates and drops the
//! test databases. Connections are built from options, never from a URL with the password in it.
//!
//! The kit's migrations are numbered below 100 and a service's from 100 up, so both live in one
//! `_sqlx_migrations` history.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use orderflow_platform::config::{ExposeSecret, Login, PostgresConfig};
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

/// How to reach `database` as `login`. (`PgConnectOptions`' `Debug` shows the password: never log
/// one.)
pub fn connect_options(config: &PostgresConfig, login: &Login, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&login.user)
        .password(login.password.expose_secret())
        .database(database)
}

/// How to reach `database` as the cluster's owner: set-up and tests' look-arounds only.
pub fn admin_options(config: &PostgresConfig, database: &str) -> PgConnectOptions {
    connect_options(config, &config.admin, database)
}

/// How to reach the service database `database` as its own role.
pub fn service_options(
    config: &PostgresConfig,
    database: &str,
) -> anyhow::Result<PgConnectOptions> {
    Ok(connect_options(config, config.service(database)?, database))
}

/// Connect a pool to a service database as its own role and bring its schema up to date.
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
    let login = config.service(database)?;
    connect_and_migrate_as(config, login, database, service, statement_timeout).await
}

/// [`connect_and_migrate_bounded`] as `login`, for a database that is not one of the configured
/// service databases (a test's copy of one, which its service's role owns).
pub async fn connect_and_migrate_as(
    config: &PostgresConfig,
    login: &Login,
    database: &str,
    service: &Migrator,
    statement_timeout: Option<Duration>,
) -> anyhow::Result<PgPool> {
    let mut options = connect_options(config, login, database);
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
                "connecting to PostgreSQL database {database} at {}:{} as {}",
                config.host, config.port, login.user
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

/// A fresh database for one test, migrated like the real one, dropped when the test ends. It is owned
/// by the service's role (as the real one is) and the pool logs in as that role.
pub struct TestDatabase {
    pub pool: PgPool,
    pub name: String,
    /// The role the pool logs in as.
    pub login: Login,
    config: PostgresConfig,
}

impl TestDatabase {
    /// Create `<service>_test_<random>`, owned by the role of the service database `service` (or by
    /// the cluster's owner for a name that is no service database, such as the consumer runtime's
    /// tests), and migrate it as that role. Fails naming PostgreSQL when it is not reachable, and
    /// `orderflow cdc prepare` when the role does not exist yet.
    pub async fn create(
        config: &PostgresConfig,
        service: &str,
        migrations: &Migrator,
    ) -> anyhow::Result<Self> {
        let name = format!("{service}_test_{}", uuid::Uuid::new_v4().simple());
        let login = config.service(service).unwrap_or(&config.admin).clone();
        let mut admin = PgConnection::connect_with(&admin_options(config, "postgres")).await.with_context(|| {
            format!(
                "PostgreSQL is not reachable at {}:{}: start it with `scripts/stack up postgres`",
                config.host, config.port
            )
        })?;
        sqlx::query(&format!(
            r#"CREATE DATABASE "{name}" OWNER "{}""#,
            login.user
        ))
        .execute(&mut admin)
        .await
        .with_context(|| {
            format!(
                "creating test database {name} owned by role {} (a missing role is made by \
                 `orderflow cdc prepare`, which scripts/setup-connectors runs)",
                login.user
            )
        })?;
        sqlx::query(&format!(r#"REVOKE ALL ON DATABASE "{name}" FROM PUBLIC"#))
            .execute(&mut admin)
            .await?;
        let pool = connect_and_migrate_as(config, &login, &name, migrations, None).await?;
        Ok(Self {
            pool,
            name,
            login,
            config: config.clone(),
        })
    }

    /// Close the pool and drop the database.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut admin =
            PgConnection::connect_with(&admin_options(&self.config, "postgres")).await?;
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}
