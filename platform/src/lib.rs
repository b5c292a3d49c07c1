//! What every orderflow process shares: where the stack's servers are (read from the environment and
//! `stack.env`, with errors that name the key) and how tracing is set up.

pub mod config;
pub mod telemetry;
pub mod topics;

pub use config::{ConfigError, StackConfig};
