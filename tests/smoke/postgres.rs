//! PostgreSQL: every service database exists and has logical decoding on, which Debezium needs.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::support::{Server, stack};

#[tokio::test]
async fn every_service_database_has_wal_level_logical() {
    let config = stack();
    Server::Postgres.require(&config);
    assert_eq!(
        config.postgres.databases,
        ["orders", "inventory", "payments", "shipping", "customers"],
        "stack.env names one database per service"
    );
    for database in &config.postgres.databases {
        let mut conn = PgConnection::connect_with(&orderflow_service_kit::database::admin_options(
            &config.postgres,
            database,
        ))
        .await
        .unwrap_or_else(|e| {
            Server::Postgres.failed(&config, &format!("open database {database}"), e)
        });
        let wal_level: String = sqlx::query_scalar("SHOW wal_level")
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| Server::Postgres.failed(&config, "run SHOW wal_level", e));
        assert_eq!(wal_level, "logical", "wal_level in database {database}");
    }
}
