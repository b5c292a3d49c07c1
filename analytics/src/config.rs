//! What the sink and the reports read from the environment (after `stack.env`): the stack's
//! addresses from [`StackConfig`], plus their own keys, each with a default. Every field is public so
//! that tests can point a sink at their own topic, consumer group, index and archive prefix.

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_platform::config::{S3Config, setting, setting_or};
use orderflow_platform::{ConfigError, StackConfig};

/// The topic the sink reads by default: the orders aggregate's events.
pub const DEFAULT_TOPIC: &str = "orders.events";
/// The sink's consumer group by default; its dead-letter topic is `<group>.dlq`.
pub const DEFAULT_GROUP: &str = "analytics-sink";
/// The Elasticsearch index of finished orders by default (the Kibana data view's title).
pub const DEFAULT_INDEX: &str = "orders";
/// The key prefix of archive objects in the bucket by default.
pub const DEFAULT_ARCHIVE_PREFIX: &str = "archive";

/// The analytics sink's configuration.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub kafka_bootstrap: String,
    pub registry_url: String,
    pub elasticsearch_url: String,
    pub s3: S3Config,
    /// `ORDERFLOW_SINK_TOPIC`, default `orders.events`.
    pub topic: String,
    /// `ORDERFLOW_SINK_GROUP`, default `analytics-sink`. Dead letters go to `<group>.dlq`.
    pub group: String,
    /// `ORDERFLOW_ANALYTICS_INDEX`, default `orders`.
    pub index: String,
    /// `ORDERFLOW_ARCHIVE_PREFIX`, default `archive`: objects are `<prefix>/date=.../...`.
    pub archive_prefix: String,
    /// `ORDERFLOW_ARCHIVE_WINDOW`, default 100: offsets per archive object. Object `n` of a
    /// partition holds offsets `[n*window, (n+1)*window)` (see `sink::window`).
    pub archive_window: i64,
    /// `ORDERFLOW_SINK_BATCH_RECORDS`, default 500: the most records of a partition in one batch
    /// (a batch is whatever is waiting, up to this).
    pub batch_max_records: usize,
    /// Longest wait between two attempts when Elasticsearch, S3, Kafka or the registry fail.
    pub retry_cap: Duration,
    /// `ORDERFLOW_SINK_HTTP` (health and metrics); `None` serves nothing (tests).
    pub http: Option<SocketAddr>,
}

impl SinkConfig {
    /// Defaults for everything that is not an address of the stack.
    pub fn from_stack(stack: &StackConfig) -> Self {
        Self {
            kafka_bootstrap: stack.kafka_bootstrap.clone(),
            registry_url: stack.registry_url.clone(),
            elasticsearch_url: stack.elasticsearch_url.clone(),
            s3: stack.s3.clone(),
            topic: DEFAULT_TOPIC.into(),
            group: DEFAULT_GROUP.into(),
            index: DEFAULT_INDEX.into(),
            archive_prefix: DEFAULT_ARCHIVE_PREFIX.into(),
            archive_window: 100,
            batch_max_records: 500,
            retry_cap: Duration::from_secs(10),
            http: None,
        }
    }

    /// Everything from the environment; a bad value is named with its key.
    pub fn from_env() -> Result<Self, ConfigError> {
        let stack = StackConfig::from_env()?;
        let mut config = Self::from_stack(&stack);
        config.topic = setting_or("ORDERFLOW_SINK_TOPIC", config.topic)?;
        config.group = setting_or("ORDERFLOW_SINK_GROUP", config.group)?;
        config.index = setting_or("ORDERFLOW_ANALYTICS_INDEX", config.index)?;
        config.archive_prefix = setting_or("ORDERFLOW_ARCHIVE_PREFIX", config.archive_prefix)?;
        config.archive_window = positive("ORDERFLOW_ARCHIVE_WINDOW", config.archive_window)?;
        config.batch_max_records = positive(
            "ORDERFLOW_SINK_BATCH_RECORDS",
            config.batch_max_records as i64,
        )? as usize;
        config.http = Some(setting("ORDERFLOW_SINK_HTTP")?);
        Ok(config)
    }
}

/// The reporting endpoints' configuration.
#[derive(Debug, Clone)]
pub struct ReportsConfig {
    pub elasticsearch_url: String,
    /// `ORDERFLOW_ANALYTICS_INDEX`, default `orders`.
    pub index: String,
    /// `ORDERFLOW_REPORTS_HTTP`.
    pub http: SocketAddr,
}

impl ReportsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let stack = StackConfig::from_env()?;
        Ok(Self {
            elasticsearch_url: stack.elasticsearch_url,
            index: setting_or("ORDERFLOW_ANALYTICS_INDEX", DEFAULT_INDEX.to_string())?,
            http: setting("ORDERFLOW_REPORTS_HTTP")?,
        })
    }
}

fn positive(key: &'static str, default: i64) -> Result<i64, ConfigError> {
    let value: i64 = setting_or(key, default)?;
    if value < 1 {
        return Err(ConfigError::Invalid {
            key,
            value: value.to_string(),
            problem: "expected a positive number".into(),
        });
    }
    Ok(value)
}
