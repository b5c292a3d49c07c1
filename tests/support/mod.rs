//! What every end-to-end test needs: the stack's configuration, and a check that fails loudly, naming
//! the server and how to start it, when a server of the stack is not there. Tests never skip.

#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use orderflow_platform::StackConfig;

/// The stack's addresses, read the way every binary reads them (`stack.env` plus the environment).
pub fn stack() -> StackConfig {
    StackConfig::from_env().unwrap_or_else(|e| panic!("the stack configuration is unusable: {e}"))
}

/// One server of the stack, as the tests name it.
#[derive(Clone, Copy)]
pub enum Server {
    Postgres,
    Kafka,
    Connect,
    Registry,
    Elasticsearch,
    S3,
    /// Keycloak, the identity provider (`ORDERFLOW_IDENTITY_URL`).
    Identity,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Postgres => "PostgreSQL",
            Server::Kafka => "Kafka",
            Server::Connect => "Kafka Connect",
            Server::Registry => "the schema registry (Apicurio)",
            Server::Elasticsearch => "Elasticsearch",
            Server::S3 => "the S3 server",
            Server::Identity => "the identity provider (Keycloak)",
        }
    }

    fn component(self) -> &'static str {
        match self {
            Server::Postgres => "postgres",
            Server::Kafka => "kafka",
            Server::Connect => "connect",
            Server::Registry => "registry",
            Server::Elasticsearch => "elasticsearch",
            Server::S3 => "s3",
            Server::Identity => "identity",
        }
    }

    /// host:port this server listens on, from the configuration.
    pub fn address(self, config: &StackConfig) -> String {
        let from_url = |url: &str| {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            rest.split('/').next().unwrap_or(rest).to_string()
        };
        match self {
            Server::Postgres => format!("{}:{}", config.postgres.host, config.postgres.port),
            Server::Kafka => config
                .kafka_bootstrap
                .split(',')
                .next()
                .unwrap_or_default()
                .to_string(),
            Server::Connect => from_url(&config.connect_url),
            Server::Registry => from_url(&config.registry_url),
            Server::Elasticsearch => from_url(&config.elasticsearch_url),
            Server::S3 => from_url(&config.s3.endpoint),
            Server::Identity => from_url(
                &orderflow_platform::config::setting::<String>("ORDERFLOW_IDENTITY_URL")
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        }
    }

    /// Panic, naming this server and how to start it, unless it accepts TCP connections.
    pub fn require(self, config: &StackConfig) {
        let address = self.address(config);
        let reachable = address
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok());
        if !reachable {
            panic!("{}", self.down_message(&address));
        }
    }

    /// The message a test fails with when this server does not answer.
    pub fn down_message(self, address: &str) -> String {
        format!(
            "{} is not reachable at {address}: start the stack with `scripts/stack up` (or just this server: `scripts/stack up {}`)",
            self.name(),
            self.component()
        )
    }

    /// Panic with the server's name, where it is and how to start it, plus what went wrong.
    pub fn failed(self, config: &StackConfig, what: &str, error: impl std::fmt::Display) -> ! {
        panic!(
            "{} at {} failed to {what}: {error}\n(is it up? `scripts/stack status`; start it with `scripts/stack up {}`)",
            self.name(),
            self.address(config),
            self.component()
        )
    }
}

/// A name no earlier run has used, for topics, subjects, indices and objects.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub mod platform;
