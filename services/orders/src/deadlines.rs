//! Saga deadlines: every state in which an order waits for another service has a deadline, so that
//! nothing stays PLACED or CONFIRMED forever without someone being told.
//!
//! | waiting state                    | waits for                                  | past the deadline |
//! |----------------------------------|--------------------------------------------|-------------------|
//! | PLACED                           | stock and payment (`PaymentSucceeded`, ...) | cancelled, reason TIMEOUT (the usual compensations follow `OrderCancelled`) |
//! | CONFIRMED, cancellation requested | shipping's answer (`ShipmentCancelled` or `ShipmentDispatched`) | reported |
//! | CONFIRMED                        | the carrier's dispatch (`ShipmentDispatched`) | reported |
//! | SHIPPED                          | the delivery (`ShipmentDelivered`)          | reported |
//!
//! `overdue` lists the orders past a deadline (for `orderflow orders stuck` and the worker's
//! `orderflow_orders_past_deadline` gauge); `cancel_overdue_placed` is the sweep the worker runs.
//! The deadlines come from the environment (`Deadlines::from_env`), in seconds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orderflow_platform::config::{ConfigError, setting_or};
use orderflow_schemas::OrderId;
use orderflow_schemas::orders::OrderStatus;
use orderflow_service_kit::{Outbox, TraceContext};
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::error::OrderError;
use crate::order::SagaCancellation;
use crate::saga_actions;
use crate::status::{parse_status, status_name};

pub const PLACED_KEY: &str = "ORDERFLOW_ORDERS_DEADLINE_PLACED_SECONDS";
pub const CANCEL_REQUESTED_KEY: &str = "ORDERFLOW_ORDERS_DEADLINE_CANCEL_REQUESTED_SECONDS";
pub const CONFIRMED_KEY: &str = "ORDERFLOW_ORDERS_DEADLINE_CONFIRMED_SECONDS";
pub const SHIPPED_KEY: &str = "ORDERFLOW_ORDERS_DEADLINE_SHIPPED_SECONDS";

/// How long an order may wait in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// PLACED → CONFIRMED (stock and payment answer within milliseconds when all is well).
    pub placed: Duration,
    /// A cancellation request → shipping's answer.
    pub cancel_requested: Duration,
    /// CONFIRMED → dispatched (a person at the warehouse).
    pub confirmed: Duration,
    /// SHIPPED → delivered (the carrier).
    pub shipped: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            placed: Duration::from_secs(5 * 60),
            cancel_requested: Duration::from_secs(5 * 60),
            confirmed: Duration::from_secs(2 * 24 * 3600),
            shipped: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

impl Deadlines {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let seconds = |key: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            let value: u64 = setting_or(key, default.as_secs())?;
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    value: "0".into(),
                    problem: "a deadline must be at least one second".into(),
                });
            }
            Ok(Duration::from_secs(value))
        };
        Ok(Self {
            placed: seconds(PLACED_KEY, defaults.placed)?,
            cancel_requested: seconds(CANCEL_REQUESTED_KEY, defaults.cancel_requested)?,
            confirmed: seconds(CONFIRMED_KEY, defaults.confirmed)?,
            shipped: seconds(SHIPPED_KEY, defaults.shipped)?,
        })
    }
}

/// An order past its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub order_id: OrderId,
    /// PLACED, CONFIRMED or SHIPPED.
    pub status: String,
    /// Since when it waits (placed, confirmed, cancellation requested or shipped).
    pub since: DateTime<Utc>,
    /// The deadline it passed.
    pub deadline: DateTime<Utc>,
    /// The events that would move it on.
    pub waiting_for: &'static str,
}

/// What an order in `status` (with or without a pending cancellation request) waits for.
pub fn waiting_for(status: OrderStatus, cancel_requested: bool) -> &'static str {
    match (status, cancel_requested) {
        (OrderStatus::Placed, _) => {
            "StockReserved then PaymentSucceeded (or StockRejected / PaymentDeclined)"
        }
        (OrderStatus::Confirmed, true) => {
            "ShipmentCancelled or ShipmentDispatched (shipping's answer to the cancellation request)"
        }
        (OrderStatus::Confirmed, false) => "ShipmentDispatched (the carrier takes the shipment)",
        (OrderStatus::Shipped, _) => "ShipmentDelivered",
        _ => "nothing",
    }
}

/// Every order past its deadline at `now`, oldest first (at most `limit`).
pub async fn overdue(
    pool: &PgPool,
    deadlines: &Deadlines,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Overdue>> {
    let secs = |d: Duration| d.as_secs_f64();
    let rows = sqlx::query(
        "SELECT order_id, status, since, cancel_requested_at IS NOT NULL AS cancel_requested,
                since + make_interval(secs => allowed) AS deadline
         FROM (
             SELECT order_id, status, cancel_requested_at,
                    CASE WHEN status = 'PLACED' THEN placed_at
                         WHEN status = 'CONFIRMED' THEN coalesce(cancel_requested_at, confirmed_at)
                         ELSE shipped_at END AS since,
                    CASE WHEN status = 'PLACED' THEN $1
                         WHEN status = 'CONFIRMED' AND cancel_requested_at IS NOT NULL THEN $2
                         WHEN status = 'CONFIRMED' THEN $3
                         ELSE $4 END AS allowed
             FROM orders WHERE status IN ('PLACED', 'CONFIRMED', 'SHIPPED')
         ) waiting
         WHERE since + make_interval(secs => allowed) < $5
         ORDER BY since LIMIT $6",
    )
    .bind(secs(deadlines.placed))
    .bind(secs(deadlines.cancel_requested))
    .bind(secs(deadlines.confirmed))
    .bind(secs(deadlines.shipped))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            let parsed = parse_status(&status).unwrap_or(OrderStatus::Placed);
            Ok(Overdue {
                order_id: OrderId::from_uuid(row.try_get("order_id")?),
                since: row.try_get("since")?,
                deadline: row.try_get("deadline")?,
                waiting_for: waiting_for(parsed, row.try_get("cancel_requested")?),
                status,
            })
        })
        .collect()
}

/// How many orders are past their deadline, per status (for the gauge).
pub fn count_by_status(overdue: &[Overdue]) -> Vec<(&'static str, usize)> {
    [
        OrderStatus::Placed,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
    ]
    .into_iter()
    .map(|status| {
        let name = status_name(status);
        (name, overdue.iter().filter(|o| o.status == name).count())
    })
    .collect()
}

/// Cancel, with reason TIMEOUT, every PLACED order past its deadline at `now` (at most `limit`),
/// each in its own transaction, re-checked under its row lock (an answer that arrived meanwhile
/// wins). Returns the orders cancelled.
pub async fn cancel_overdue_placed(
    pool: &PgPool,
    outbox: &Outbox,
    deadlines: &Deadlines,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OrderId>, OrderError> {
    let candidates: Vec<OrderId> = overdue(pool, deadlines, now, limit)
        .await?
        .into_iter()
        .filter(|o| o.status == "PLACED")
        .map(|o| o.order_id)
        .collect();
    let mut cancelled = Vec::new();
    let cause = SagaCancellation::Timeout {
        detail: format!(
            "not confirmed within {} s of being placed",
            deadlines.placed.as_secs()
        ),
    };
    for order_id in candidates {
        let mut tx = pool.begin().await?;
        match saga_actions::cancel_by_saga(
            &mut tx,
            outbox,
            &TraceContext::new_root(),
            order_id,
            &cause,
        )
        .await
        {
            Ok(_) => {
                tx.commit().await?;
                tracing::warn!(%order_id, "order cancelled: not confirmed before its deadline");
                cancelled.push(order_id);
            }
            // Confirmed or cancelled meanwhile: nothing to do.
            Err(error) if error.is_refused_transition() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(cancelled)
}
