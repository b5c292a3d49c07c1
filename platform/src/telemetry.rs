//! Tracing setup: one call at the start of every binary. `RUST_LOG` filters, default `info`;
//! `ORDERFLOW_LOG_FORMAT=json` switches to JSON lines for log shippers.

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("ORDERFLOW_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: tests may call this more than once in one process.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
