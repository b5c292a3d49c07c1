//! `orderflow cdc ...`: what a service database needs around its Debezium connector, done in SQL.
//!
//! - `prepare`: the roles and their rights, the outbox table (the service kit's migrations), the
//!   heartbeat table the connector's `heartbeat.action.query` writes and the publication, so the
//!   connector can start before the service has ever run, and an idle database still moves its
//!   replication slot forward. Least privilege: each service database is owned by its own role
//!   (`ORDERFLOW_PG_<DATABASE>_USER`), which alone (with the cluster's owner) may connect to it; the
//!   connectors' role (`ORDERFLOW_PG_REPLICATION_USER`) has REPLICATION, may connect to the service
//!   databases, and may read the outbox and write the heartbeat row, nothing else. It owns no table,
//!   so it cannot publish one: `prepare` makes the publication `outbox_<database>` (outbox and
//!   heartbeat only) and the connectors use it as it is (`publication.autocreate.mode=disabled`).
//!   Every step is idempotent: run on every set-up, it also brings a cluster made before the roles
//!   existed to this state (and puts a changed password in place).
//! - `drop`: the replication slot and publication of a deleted connector, so no dead slot keeps WAL.
//! - `slots`: every replication slot of the cluster and the WAL it holds back.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::{Context, bail};
use orderflow_platform::config::{ExposeSecret, Login, PostgresConfig};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Row};

/// The table `heartbeat.action.query` updates in every service database (see `connectors/*.json`).
/// It is in the connector's publication, so each heartbeat produces a change in that database's
/// own logical stream: Debezium then confirms a recent LSN even when the service writes nothing
/// while other databases of the cluster fill the shared WAL.
pub const HEARTBEAT_TABLE: &str = "debezium_heartbeat";

async fn connect(config: &PostgresConfig, database: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&config.admin.user)
        .password(config.admin.password.expose_secret())
        .database(database)
        // "already exists, skipping" notices are expected on every run: keep them out of the output.
        .options([("client_min_messages", "warning")])
        // The statements that set passwords must never reach a log, even at debug level.
        .disable_statement_logging();
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

/// The publication a database's connector streams (`publication.name` in `connectors/*.json`).
pub fn publication_name(database: &str) -> String {
    format!("outbox_{database}")
}

pub async fn prepare(config: &PostgresConfig, databases: &[String]) -> anyhow::Result<()> {
    let admin = connect(config, "postgres").await?;
    ensure_role(&admin, &config.replication, "LOGIN REPLICATION").await?;
    for database in databases {
        if let Some(login) = config.services.get(database) {
            ensure_role(&admin, login, "LOGIN NOREPLICATION").await?;
            sqlx::query(&format!(
                "ALTER DATABASE {} OWNER TO {}",
                ident(database)?,
                ident(&login.user)?
            ))
            .execute(&admin)
            .await
            .with_context(|| format!("giving database {database} to role {}", login.user))?;
        }
        // Nobody but the owner (and the connectors' role, below) may connect to a service database.
        sqlx::query(&format!(
            "REVOKE ALL ON DATABASE {} FROM PUBLIC",
            ident(database)?
        ))
        .execute(&admin)
        .await?;
        sqlx::query(&format!(
            "GRANT CONNECT ON DATABASE {} TO {}",
            ident(database)?,
            ident(&config.replication.user)?
        ))
        .execute(&admin)
        .await?;
    }
    admin.close().await;
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
        if let Some(login) = config.services.get(database) {
            give_schema_to(&pool, &login.user)
                .await
                .with_context(|| format!("giving the tables of {database} to {}", login.user))?;
        }
        let cdc = ident(&config.replication.user)?;
        for grant in [
            format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {cdc}"),
            format!("GRANT USAGE ON SCHEMA public TO {cdc}"),
            format!("GRANT SELECT ON outbox TO {cdc}"),
            format!("GRANT SELECT, INSERT, UPDATE ON {HEARTBEAT_TABLE} TO {cdc}"),
        ] {
            sqlx::query(&grant).execute(&pool).await?;
        }
        let publication = publication_name(database);
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
                .bind(&publication)
                .fetch_one(&pool)
                .await?;
        let verb = if exists {
            format!("ALTER PUBLICATION {} SET TABLE", ident(&publication)?)
        } else {
            format!("CREATE PUBLICATION {} FOR TABLE", ident(&publication)?)
        };
        sqlx::query(&format!("{verb} outbox, {HEARTBEAT_TABLE}"))
            .execute(&pool)
            .await
            .with_context(|| format!("publication {publication} of database {database}"))?;
        pool.close().await;
        let owner = config
            .services
            .get(database)
            .map_or(config.admin.user.as_str(), |l| l.user.as_str());
        println!(
            "{database:<12} outbox and {HEARTBEAT_TABLE} tables, publication {publication} ready; \
             owned by {owner}, streamed by {}",
            config.replication.user
        );
    }
    Ok(())
}

/// A role name or database name as an SQL identifier. Only plain lower-case names are used, so a
/// name that needs quoting is refused rather than quoted.
fn ident(name: &str) -> anyhow::Result<String> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(format!("\"{name}\""))
    } else {
        bail!("{name:?} is not a plain role or database name (lower-case letters, digits, _)")
    }
}

/// Create `login`'s role if it is missing and (re)set its password and attributes. Never a
/// superuser, never able to create roles or databases. The password is quoted by PostgreSQL
/// (`format(%L)`) and the statement is not logged (see `connect`).
async fn ensure_role(admin: &PgPool, login: &Login, attributes: &str) -> anyhow::Result<()> {
    let role = ident(&login.user)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&login.user)
            .fetch_one(admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE ROLE {role}"))
            .execute(admin)
            .await
            .with_context(|| format!("creating role {}", login.user))?;
    }
    let statement: String = sqlx::query_scalar(&format!(
        "SELECT format('ALTER ROLE {role} WITH {attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE \
         NOBYPASSRLS PASSWORD %L', $1::text)"
    ))
    .bind(login.password.expose_secret())
    .fetch_one(admin)
    .await?;
    sqlx::query(&statement).execute(admin).await.map_err(|e| {
        anyhow::anyhow!(
            "setting the password of role {}: {}",
            login.user,
            e.as_database_error()
                .map_or("failed".into(), |d| d.message().to_string())
        )
    })?;
    Ok(())
}

/// Give every table, view, sequence and function of schema `public` to `role`: those the kit's
/// migrations made here as the cluster's owner, and those of a cluster made before the roles.
async fn give_schema_to(pool: &PgPool, role: &str) -> anyhow::Result<()> {
    let role = ident(role)?;
    let role_text = role.trim_matches('"');
    let sql = format!(
        r#"DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.relname, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                        WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END AS kind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND pg_get_userbyid(c.relowner) <> '{role_text}'
      -- a serial's or identity's sequence follows its table
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER %s public.%I OWNER TO {role}', r.kind, r.relname);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS signature, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{role_text}'
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO {role}', r.kind, r.signature);
  END LOOP;
END $$"#
    );
    sqlx::raw_sql(&sql).execute(pool).await?;
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
