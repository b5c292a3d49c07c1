//! The stack's addresses, from the environment. `stack.env` at the repository root is the one place where
//! they are written down; it is loaded first (without overriding variables already set), so a binary
//! started from the repository and one started by an orchestrator read the same keys.
//!
//! Every password and secret is a [`SecretString`]: its `Debug` prints `[REDACTED]`, it has no
//! `Display`, and reading it takes an explicit `expose_secret()` where it is handed to a client. No
//! connection URL with a password in it is ever built.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration key {key} is not set (see stack.env)")]
    Missing { key: &'static str },
    #[error("configuration key {key} has an invalid value {value:?}: {problem}")]
    Invalid {
        key: &'static str,
        value: String,
        problem: String,
    },
    #[error("could not read the env file {path}: {source}")]
    EnvFile {
        path: PathBuf,
        source: dotenvy::Error,
    },
}

/// Where each server of the stack listens.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub postgres: PostgresConfig,
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub kafka_bootstrap: String,
    /// Kafka Connect REST API.
    pub connect_url: String,
    /// The registry's Confluent-compatible API.
    pub registry_url: String,
    pub elasticsearch_url: String,
    pub s3: S3Config,
}

pub use secrecy::{ExposeSecret, SecretString};

/// Where PostgreSQL is, and as whom each part of orderflow logs in.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub host: String,
    pub port: u16,
    /// The cluster's owner (`ORDERFLOW_PG_USER`, `ORDERFLOW_PG_PASSWORD`): for set-up only (roles,
    /// databases, publications, test databases), never for a service.
    pub admin: Login,
    /// The service databases, one per bounded context.
    pub databases: Vec<String>,
    /// Each service database's own role, which owns that database and may connect to no other:
    /// `ORDERFLOW_PG_<DATABASE>_USER`, `ORDERFLOW_PG_<DATABASE>_PASSWORD`.
    pub services: BTreeMap<String, Login>,
    /// The Debezium connectors' role: REPLICATION, and SELECT on the outbox alone
    /// (`ORDERFLOW_PG_REPLICATION_USER`, `ORDERFLOW_PG_REPLICATION_PASSWORD`).
    pub replication: Login,
}

/// A role and its password.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: SecretString,
}

impl PostgresConfig {
    /// The role of a service database (`orders`, ...); an error naming the keys for another name.
    pub fn service(&self, database: &str) -> Result<&Login, ConfigError> {
        self.services
            .get(database)
            .ok_or_else(|| ConfigError::Invalid {
                key: "ORDERFLOW_PG_DATABASES",
                value: self.databases.join(" "),
                problem: format!("{database} is not one of the service databases"),
            })
    }
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: SecretString,
    pub bucket: String,
}

impl StackConfig {
    /// Load `stack.env` (if found) and read every key from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        load_env_file()?;
        Self::from_lookup(|key| env::var(key).ok())
    }

    /// Read the configuration through any lookup; `from_env` uses the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &'static str| -> Result<String, ConfigError> {
            match lookup(key) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                _ => Err(ConfigError::Missing { key }),
            }
        };
        let url = |key: &'static str| -> Result<String, ConfigError> {
            let value = get(key)?;
            if value.starts_with("http://") || value.starts_with("https://") {
                Ok(value.trim_end_matches('/').to_string())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    value,
                    problem: "expected an http:// or https:// URL".into(),
                })
            }
        };
        let port_key = "ORDERFLOW_PG_PORT";
        let port_value = get(port_key)?;
        let port = port_value
            .parse::<u16>()
            .map_err(|e| ConfigError::Invalid {
                key: port_key,
                value: port_value.clone(),
                problem: format!("expected a TCP port number: {e}"),
            })?;
        let bootstrap = get("ORDERFLOW_KAFKA_BOOTSTRAP")?;
        if bootstrap.split(',').any(|hp| {
            hp.rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        }) {
            return Err(ConfigError::Invalid {
                key: "ORDERFLOW_KAFKA_BOOTSTRAP",
                value: bootstrap,
                problem: "expected host:port[,host:port...]".into(),
            });
        }
        let databases: Vec<String> = get("ORDERFLOW_PG_DATABASES")?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let login = |user_key: String, password_key: String| -> Result<Login, ConfigError> {
            // The keys of a service database are made from its name: leak them for the error's sake
            // (a handful of short strings, once per process).
            let user_key: &'static str = Box::leak(user_key.into_boxed_str());
            let password_key: &'static str = Box::leak(password_key.into_boxed_str());
            Ok(Login {
                user: get(user_key)?,
                password: SecretString::from(get(password_key)?),
            })
        };
        let mut services = BTreeMap::new();
        for database in &databases {
            if !database
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(ConfigError::Invalid {
                    key: "ORDERFLOW_PG_DATABASES",
                    value: databases.join(" "),
                    problem: format!(
                        "{database:?}: a database name is lower-case letters, digits and _"
                    ),
                });
            }
            let upper = database.to_ascii_uppercase();
            services.insert(
                database.clone(),
                login(
                    format!("ORDERFLOW_PG_{upper}_USER"),
                    format!("ORDERFLOW_PG_{upper}_PASSWORD"),
                )?,
            );
        }
        Ok(Self {
            postgres: PostgresConfig {
                host: get("ORDERFLOW_PG_HOST")?,
                port,
                admin: login("ORDERFLOW_PG_USER".into(), "ORDERFLOW_PG_PASSWORD".into())?,
                databases,
                services,
                replication: login(
                    "ORDERFLOW_PG_REPLICATION_USER".into(),
                    "ORDERFLOW_PG_REPLICATION_PASSWORD".into(),
                )?,
            },
            kafka_bootstrap: bootstrap,
            connect_url: url("ORDERFLOW_CONNECT_URL")?,
            registry_url: url("ORDERFLOW_REGISTRY_URL")?,
            elasticsearch_url: url("ORDERFLOW_ELASTICSEARCH_URL")?,
            s3: S3Config {
                endpoint: url("ORDERFLOW_S3_ENDPOINT")?,
                region: get("ORDERFLOW_S3_REGION")?,
                access_key: get("ORDERFLOW_S3_ACCESS_KEY")?,
                secret_key: SecretString::from(get("ORDERFLOW_S3_SECRET_KEY")?),
                bucket: get("ORDERFLOW_S3_BUCKET")?,
            },
        })
    }
}

/// Read one setting of a single process (a listen address, a rate) from the environment after loading
/// `stack.env`, parsed into its type; the error names the key and the problem.
pub fn setting<T>(key: &'static str) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    load_env_file()?;
    let value = env::var(key).map_err(|_| ConfigError::Missing { key })?;
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| ConfigError::Invalid {
            key,
            value,
            problem: e.to_string(),
        })
}

/// Like `setting`, with a default for when the key is not set at all.
pub fn setting_or<T>(key: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    load_env_file()?;
    if env::var_os(key).is_none() {
        return Ok(default);
    }
    setting(key)
}

/// `ORDERFLOW_ENV_FILE` if set, else the first `stack.env` in the working directory or its parents.
fn load_env_file() -> Result<(), ConfigError> {
    let path = match env::var_os("ORDERFLOW_ENV_FILE") {
        Some(p) => Some(PathBuf::from(p)),
        None => env::current_dir()
            .ok()
            .and_then(|dir| find_upwards(&dir, "stack.env")),
    };
    if let Some(path) = path {
        dotenvy::from_path(&path).map_err(|source| ConfigError::EnvFile { path, source })?;
    }
    Ok(())
}

fn find_upwards(start: &Path, name: &str) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn complete() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("ORDERFLOW_PG_HOST", "127.0.0.1"),
            ("ORDERFLOW_PG_PORT", "55432"),
            ("ORDERFLOW_PG_USER", "orderflow"),
            ("ORDERFLOW_PG_PASSWORD", "secret"),
            ("ORDERFLOW_PG_DATABASES", "orders inventory"),
            ("ORDERFLOW_PG_ORDERS_USER", "orderflow_orders"),
            ("ORDERFLOW_PG_ORDERS_PASSWORD", "orders-secret"),
            ("ORDERFLOW_PG_INVENTORY_USER", "orderflow_inventory"),
            ("ORDERFLOW_PG_INVENTORY_PASSWORD", "inventory-secret"),
            ("ORDERFLOW_PG_REPLICATION_USER", "orderflow_cdc"),
            ("ORDERFLOW_PG_REPLICATION_PASSWORD", "cdc-secret"),
            ("ORDERFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
            ("ORDERFLOW_CONNECT_URL", "http://127.0.0.1:18083/"),
            (
                "ORDERFLOW_REGISTRY_URL",
                "http://127.0.0.1:18081/apis/ccompat/v7",
            ),
            ("ORDERFLOW_ELASTICSEARCH_URL", "http://127.0.0.1:19200"),
            ("ORDERFLOW_S3_ENDPOINT", "http://127.0.0.1:19000"),
            ("ORDERFLOW_S3_REGION", "us-east-1"),
            ("ORDERFLOW_S3_ACCESS_KEY", "a"),
            ("ORDERFLOW_S3_SECRET_KEY", "b"),
            ("ORDERFLOW_S3_BUCKET", "archive"),
        ])
    }

    fn load(vars: &HashMap<&'static str, &'static str>) -> Result<StackConfig, ConfigError> {
        StackConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn reads_every_key() {
        let config = load(&complete()).unwrap();
        assert_eq!(config.postgres.port, 55432);
        assert_eq!(config.postgres.databases, ["orders", "inventory"]);
        assert_eq!(config.connect_url, "http://127.0.0.1:18083");
        assert_eq!(
            config.postgres.service("orders").unwrap().user,
            "orderflow_orders"
        );
        assert_eq!(
            config
                .postgres
                .service("inventory")
                .unwrap()
                .password
                .expose_secret(),
            "inventory-secret"
        );
        assert_eq!(config.postgres.replication.user, "orderflow_cdc");
        assert!(config.postgres.service("payments").is_err());
    }

    #[test]
    fn no_secret_is_in_the_debug_output() {
        let config = load(&complete()).unwrap();
        let debug = format!("{config:?} {:#?}", config);
        for secret in [
            "orders-secret",
            "inventory-secret",
            "cdc-secret",
            "secret\"",
            "\"b\"",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("orderflow_orders"), "{debug}");
    }

    #[test]
    fn a_service_database_without_its_role_is_named() {
        let mut vars = complete();
        vars.remove("ORDERFLOW_PG_INVENTORY_PASSWORD");
        let err = load(&vars).unwrap_err().to_string();
        assert!(err.contains("ORDERFLOW_PG_INVENTORY_PASSWORD"), "{err}");
    }

    #[test]
    fn a_missing_key_is_named() {
        let mut vars = complete();
        vars.remove("ORDERFLOW_S3_BUCKET");
        let err = load(&vars).unwrap_err().to_string();
        assert!(err.contains("ORDERFLOW_S3_BUCKET"), "{err}");
    }

    #[test]
    fn a_bad_value_is_named_with_the_problem() {
        let mut vars = complete();
        vars.insert("ORDERFLOW_PG_PORT", "70000");
        let err = load(&vars).unwrap_err().to_string();
        assert!(
            err.contains("ORDERFLOW_PG_PORT") && err.contains("70000"),
            "{err}"
        );

        let mut vars = complete();
        vars.insert("ORDERFLOW_KAFKA_BOOTSTRAP", "localhost");
        let err = load(&vars).unwrap_err().to_string();
        assert!(err.contains("ORDERFLOW_KAFKA_BOOTSTRAP"), "{err}");

        let mut vars = complete();
        vars.insert("ORDERFLOW_ELASTICSEARCH_URL", "127.0.0.1:9200");
        let err = load(&vars).unwrap_err().to_string();
        assert!(err.contains("ORDERFLOW_ELASTICSEARCH_URL"), "{err}");
    }
}
