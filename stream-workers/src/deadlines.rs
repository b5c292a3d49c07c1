//! The saga's deadline sweep, run by the worker next to orders-saga (same database): every few
//! seconds it cancels the PLACED orders past their deadline (reason TIMEOUT; inventory and payments
//! compensate on the `OrderCancelled` as for any cancellation) and publishes how many orders are
//! past a deadline, per status, as `orderflow_orders_past_deadline{status}`. What the deadlines
//! are: `orderflow_orders::deadlines`.

use std::time::Duration;

use orderflow_orders::deadlines::{self, Deadlines};
use orderflow_platform::config::{ConfigError, setting_or};
use orderflow_service_kit::Outbox;
use sqlx::PgPool;

pub const SWEEP_KEY: &str = "ORDERFLOW_ORDERS_DEADLINE_SWEEP_SECONDS";

/// The sweep's settings: the deadlines, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    pub deadlines: Deadlines,
    pub every: Duration,
}

impl Sweep {
    pub fn from_env() -> Result<Self, ConfigError> {
        let every: u64 = setting_or(SWEEP_KEY, 5)?;
        if every == 0 {
            return Err(ConfigError::Invalid {
                key: SWEEP_KEY,
                value: "0".into(),
                problem: "the sweep needs at least one second between rounds".into(),
            });
        }
        Ok(Self {
            deadlines: Deadlines::from_env()?,
            every: Duration::from_secs(every),
        })
    }
}

/// Sweep until the task is dropped. A failing round (the database away) is logged and retried at
/// the next one.
pub async fn run(sweep: Sweep, pool: PgPool, outbox: Outbox) {
    let mut ticks = tokio::time::interval(sweep.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = round(&sweep, &pool, &outbox).await {
            tracing::warn!(error = %format!("{error:#}"), "deadline sweep failed; next round in {:?}", sweep.every);
        }
    }
}

async fn round(sweep: &Sweep, pool: &PgPool, outbox: &Outbox) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let cancelled =
        deadlines::cancel_overdue_placed(pool, outbox, &sweep.deadlines, now, 500).await?;
    metrics::counter!("orderflow_orders_timed_out_total").increment(cancelled.len() as u64);
    let overdue = deadlines::overdue(pool, &sweep.deadlines, now, 100_000).await?;
    for (status, count) in deadlines::count_by_status(&overdue) {
        metrics::gauge!("orderflow_orders_past_deadline", "status" => status).set(count as f64);
    }
    Ok(())
}
