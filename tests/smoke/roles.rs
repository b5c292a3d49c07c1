//! Least privilege in PostgreSQL, on the real cluster as `orderflow cdc prepare` left it: each service
//! role owns its database and cannot even connect to another service's; the connectors' replication
//! role reads the outbox and writes the heartbeat row, and cannot read a business table or write the
//! outbox; and no password is printed by `orderflow config` or shown by a `Debug` of the config.

use orderflow_platform::config::{ExposeSecret, Login};
use orderflow_service_kit::database::connect_options;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::support::{Server, stack};

/// The business table each service database has besides the kit's.
const BUSINESS_TABLES: [(&str, &str); 5] = [
    ("orders", "orders"),
    ("inventory", "products"),
    ("payments", "payments"),
    ("shipping", "shipments"),
    ("customers", "customers"),
];

async fn login(database: &str, login: &Login) -> Result<PgConnection, sqlx::Error> {
    let config = stack();
    PgConnection::connect_with(&connect_options(&config.postgres, login, database)).await
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

#[tokio::test]
async fn a_service_role_can_use_its_own_database_and_no_other() {
    let config = stack();
    Server::Postgres.require(&config);
    for (database, table) in BUSINESS_TABLES {
        let own = config.postgres.service(database).unwrap();
        let mut conn = login(database, own).await.unwrap_or_else(|e| {
            panic!("{} cannot connect to its own database {database}: {e} (run `orderflow cdc prepare`)", own.user)
        });
        let is_owner: bool = sqlx::query_scalar(
            "SELECT pg_get_userbyid(relowner) = current_user FROM pg_class WHERE relname = $1",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| {
            panic!("{database}.{table}: {e} (has the service run its migrations?)")
        });
        assert!(is_owner, "{} owns {database}.{table}", own.user);
        let superuser: bool = sqlx::query_scalar("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(!superuser, "{} has no special attribute", own.user);
        conn.close().await.unwrap();
        for (other, _) in BUSINESS_TABLES.iter().filter(|(d, _)| *d != database) {
            let error = login(other, own).await.err().unwrap_or_else(|| {
                panic!(
                    "{} could connect to {other}, another service's database",
                    own.user
                )
            });
            assert_eq!(
                sqlstate(&error).as_deref(),
                Some("42501"),
                "{} on {other}: permission denied, got {error}",
                own.user
            );
        }
    }
}

#[tokio::test]
async fn the_replication_role_reads_the_outbox_and_nothing_else() {
    let config = stack();
    Server::Postgres.require(&config);
    let cdc = &config.postgres.replication;
    for (database, table) in BUSINESS_TABLES {
        let mut conn = login(database, cdc).await.unwrap_or_else(|e| {
            panic!(
                "{} cannot connect to {database}: {e} (run `orderflow cdc prepare`)",
                cdc.user
            )
        });
        sqlx::query("SELECT count(*) FROM outbox")
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{} reads {database}.outbox: {e}", cdc.user));
        sqlx::query("UPDATE debezium_heartbeat SET beat_at = now() WHERE id = 1")
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{} writes the heartbeat of {database}: {e}", cdc.user));
        for refused in [
            format!("SELECT * FROM {table} LIMIT 1"),
            "SELECT * FROM idempotency_keys LIMIT 1".to_string(),
            "DELETE FROM outbox WHERE false".to_string(),
            "CREATE TABLE cdc_was_here (id int)".to_string(),
            "CREATE PUBLICATION cdc_everything FOR ALL TABLES".to_string(),
        ] {
            let error = sqlx::query(&refused)
                .execute(&mut conn)
                .await
                .err()
                .unwrap_or_else(|| panic!("{} could run {refused:?} on {database}", cdc.user));
            assert_eq!(
                sqlstate(&error).as_deref(),
                Some("42501"),
                "{refused:?} on {database}: permission denied, got {error}"
            );
        }
        // The publication its connector streams holds the outbox and the heartbeat, nothing else.
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1",
        )
        .bind(format!("outbox_{database}"))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, ["debezium_heartbeat", "outbox"], "{database}");
    }
}

#[test]
fn no_password_is_printed_by_orderflow_config_or_a_debug_of_the_config() {
    let config = stack();
    let mut secrets: Vec<String> = config
        .postgres
        .services
        .values()
        .chain([&config.postgres.admin, &config.postgres.replication])
        .map(|login| login.password.expose_secret().to_owned())
        .collect();
    secrets.push(config.s3.secret_key.expose_secret().to_owned());
    // The development owner's password is its user name ("orderflow"), which every role name
    // contains: a password that is also a user name proves nothing here.
    let users: Vec<&str> = config
        .postgres
        .services
        .values()
        .chain([&config.postgres.admin, &config.postgres.replication])
        .map(|login| login.user.as_str())
        .collect();
    secrets.retain(|secret| !users.contains(&secret.as_str()));
    assert!(
        secrets.len() >= 6,
        "the service and replication passwords are checked"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("config")
        .output()
        .expect("run orderflow config");
    assert!(output.status.success(), "{output:?}");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("orderflow_orders"), "{printed}");
    let debug = format!("{config:?}");
    for secret in &secrets {
        assert!(
            !printed.contains(secret.as_str()),
            "orderflow config prints a password:\n{printed}"
        );
        assert!(!debug.contains(secret.as_str()), "Debug shows a password");
    }
}
