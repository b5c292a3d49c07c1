//! How a consumer uses the machine, from the environment (each key has a default):
//!
//! | key | default | what it bounds |
//! |---|---|---|
//! | `ORDERFLOW_CONSUMER_MAX_BATCH` | 200 | records of one partition applied in one batch (one transaction) |
//! | `ORDERFLOW_CONSUMER_KEY_LANES` | 1 | independent key lanes per partition (records of one key keep their order in one lane); more lanes mean more, smaller transactions at once, which measured slower on two cores (see the README) |
//! | `ORDERFLOW_CONSUMER_MAX_IN_FLIGHT` | 5000 | records received and not yet finished, per consumer; above it every partition is paused |
//! | `ORDERFLOW_CONSUMER_MAX_PARTITION_IN_FLIGHT` | 1000 | the same per partition; above it that partition is paused |
//! | `ORDERFLOW_CONSUMER_COMMIT_INTERVAL_MS` | 200 | how often finished offsets are committed |
//! | `ORDERFLOW_CONSUMER_FETCH_WAIT_MAX_MS` | 100 | librdkafka `fetch.wait.max.ms`: how long the broker may hold a fetch until `fetch.min.bytes` are there |
//! | `ORDERFLOW_CONSUMER_FETCH_MIN_BYTES` | 1 | librdkafka `fetch.min.bytes`: with 1 the broker answers a fetch as soon as anything is there |
//! | `ORDERFLOW_CONSUMER_RETRY_CAP_MS` | 30000 | the longest backoff between two attempts of a failing batch |
//! | `ORDERFLOW_CONSUMER_SESSION_TIMEOUT_MS` | 10000 | librdkafka `session.timeout.ms`: how soon a consumer that died (SIGKILL) loses its partitions to the others (librdkafka's default is 45 s) |

use std::time::Duration;

use orderflow_platform::config::{ConfigError, setting_or};

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_batch: usize,
    pub key_lanes: usize,
    pub max_in_flight: usize,
    pub max_partition_in_flight: usize,
    pub commit_interval: Duration,
    pub fetch_wait_max_ms: u64,
    pub fetch_min_bytes: u64,
    pub retry_cap: Duration,
    pub session_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_batch: 200,
            key_lanes: 1,
            max_in_flight: 5000,
            max_partition_in_flight: 1000,
            commit_interval: Duration::from_millis(200),
            fetch_wait_max_ms: 100,
            fetch_min_bytes: 1,
            retry_cap: Duration::from_secs(30),
            session_timeout_ms: 10_000,
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Settings::default();
        let positive = |key: &'static str, value: usize| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    key,
                    value: value.to_string(),
                    problem: "must be at least 1".into(),
                })
            } else {
                Ok(value)
            }
        };
        Ok(Settings {
            max_batch: positive(
                "ORDERFLOW_CONSUMER_MAX_BATCH",
                setting_or("ORDERFLOW_CONSUMER_MAX_BATCH", d.max_batch)?,
            )?,
            key_lanes: positive(
                "ORDERFLOW_CONSUMER_KEY_LANES",
                setting_or("ORDERFLOW_CONSUMER_KEY_LANES", d.key_lanes)?,
            )?,
            max_in_flight: positive(
                "ORDERFLOW_CONSUMER_MAX_IN_FLIGHT",
                setting_or("ORDERFLOW_CONSUMER_MAX_IN_FLIGHT", d.max_in_flight)?,
            )?,
            max_partition_in_flight: positive(
                "ORDERFLOW_CONSUMER_MAX_PARTITION_IN_FLIGHT",
                setting_or(
                    "ORDERFLOW_CONSUMER_MAX_PARTITION_IN_FLIGHT",
                    d.max_partition_in_flight,
                )?,
            )?,
            commit_interval: Duration::from_millis(setting_or(
                "ORDERFLOW_CONSUMER_COMMIT_INTERVAL_MS",
                200u64,
            )?),
            fetch_wait_max_ms: setting_or(
                "ORDERFLOW_CONSUMER_FETCH_WAIT_MAX_MS",
                d.fetch_wait_max_ms,
            )?,
            fetch_min_bytes: setting_or("ORDERFLOW_CONSUMER_FETCH_MIN_BYTES", d.fetch_min_bytes)?,
            retry_cap: Duration::from_millis(setting_or(
                "ORDERFLOW_CONSUMER_RETRY_CAP_MS",
                30_000u64,
            )?),
            session_timeout_ms: setting_or(
                "ORDERFLOW_CONSUMER_SESSION_TIMEOUT_MS",
                d.session_timeout_ms,
            )?,
        })
    }
}
