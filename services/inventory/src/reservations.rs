//! Stock held for orders: the inventory's part of the saga. The stream-worker reactions call these
//! on `OrderPlaced` (reserve every line or none), `OrderCancelled` (release: compensation) and
//! `ShipmentDispatched` (commit: the units left for good). Each runs on the caller's transaction and
//! writes exactly one outbox event, or none when there is nothing to do.
//!
//! Concurrency: product rows are locked with `SELECT ... ORDER BY sku FOR UPDATE`, always in the same
//! order, so concurrent orders for the same products queue instead of overselling or deadlocking. An
//! order is decided once: `stock_decisions` has one row per order, so a repeated `OrderPlaced` (or two
//! racing copies of it) finds the first answer and writes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderflow_schemas::inventory::{
    StockCommitted, StockLine, StockRejected, StockReleased, StockReserved,
};
use orderflow_schemas::orders::OrderPlaced;
use orderflow_schemas::{EventId, OrderId, Quantity, Sku, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::{FromRow, PgConnection, PgExecutor};

use crate::domain::{self, Decision, Outcome, ReservationStatus, Stock, StockError};
use crate::error::InventoryError;
use crate::products::level;

/// How `reserve_for_order` answered.
#[derive(Debug, Clone, PartialEq)]
pub enum ReserveOutcome {
    /// Every line was reserved; `StockReserved` was written.
    Reserved(StockReserved),
    /// Some line was short, nothing was reserved; `StockRejected` was written.
    Rejected(StockRejected),
    /// The order had been decided before (a redelivered or repeated `OrderPlaced`): nothing was
    /// written, this is what was decided then.
    AlreadyDecided(Outcome),
}

#[derive(FromRow)]
struct StockRow {
    sku: String,
    on_hand: i32,
    reserved: i32,
}

#[derive(FromRow)]
struct HeldRow {
    sku: String,
    quantity: i32,
}

fn corrupt(what: impl std::fmt::Display) -> InventoryError {
    InventoryError::Corrupt(what.to_string())
}

impl StockRow {
    fn parse(self) -> Result<(Sku, Stock), InventoryError> {
        let stock = Stock::new(level(self.on_hand)?, level(self.reserved)?).map_err(corrupt)?;
        Ok((self.sku.parse().map_err(corrupt)?, stock))
    }
}

impl HeldRow {
    fn parse(self) -> Result<StockLine, InventoryError> {
        Ok(StockLine {
            sku: self.sku.parse().map_err(corrupt)?,
            quantity: Quantity::try_from(self.quantity).map_err(corrupt)?,
        })
    }
}

/// What was decided for an order before, if anything.
pub async fn decision_of(
    db: impl PgExecutor<'_>,
    order_id: OrderId,
) -> Result<Option<Outcome>, InventoryError> {
    let outcome: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM stock_decisions WHERE order_id = $1")
            .bind(order_id.as_uuid())
            .fetch_optional(db)
            .await?;
    outcome
        .map(|o| Outcome::parse(&o).ok_or_else(|| corrupt(format!("outcome {o:?}"))))
        .transpose()
}

/// Reserve every line of a placed order, or none: `StockReserved` (with the customer and the amount
/// payments must charge, copied from the order) when every product has enough available, else
/// `StockRejected` naming every short line (an unknown sku is short with 0 available) and no stock
/// changed. An order already decided writes nothing and answers `AlreadyDecided`.
pub async fn reserve_for_order(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order: &OrderPlaced,
) -> Result<ReserveOutcome, InventoryError> {
    let wanted = domain::merge_lines(order.lines.iter().map(|l| (l.sku.clone(), l.quantity)))
        .map_err(corrupt)?;
    if wanted.is_empty() {
        return Err(InventoryError::EmptyOrder(order.order_id));
    }
    if let Some(outcome) = decision_of(&mut *conn, order.order_id).await? {
        return Ok(ReserveOutcome::AlreadyDecided(outcome));
    }
    let skus: Vec<String> = wanted.keys().map(|s| s.as_str().to_owned()).collect();
    let rows: Vec<StockRow> = sqlx::query_as(
        "SELECT sku, on_hand, reserved FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
    )
    .bind(&skus)
    .fetch_all(&mut *conn)
    .await?;
    let stocks = rows
        .into_iter()
        .map(StockRow::parse)
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let decision = domain::decide(&wanted, &stocks);
    let outcome = match decision {
        Decision::Reserve { .. } => Outcome::Reserved,
        Decision::Reject { .. } => Outcome::Rejected,
    };
    let occurred_at = Timestamp::now();
    // Claim the order; a concurrent copy waits here for ours to commit, then finds it decided.
    let claimed = sqlx::query(
        "INSERT INTO stock_decisions (order_id, customer_id, outcome, decided_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.order_id.as_uuid())
    .bind(order.customer_id.as_uuid())
    .bind(outcome.as_str())
    .bind(occurred_at.as_datetime())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed == 0 {
        let previous = decision_of(&mut *conn, order.order_id)
            .await?
            .ok_or_else(|| corrupt("a claimed decision vanished"))?;
        return Ok(ReserveOutcome::AlreadyDecided(previous));
    }
    match decision {
        Decision::Reserve { lines, stocks } => {
            for line in &lines {
                sqlx::query(
                    "INSERT INTO reservations (order_id, sku, quantity, status, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(order.order_id.as_uuid())
                .bind(line.sku.as_str())
                .bind(i32::from(line.quantity))
                .bind(ReservationStatus::Reserved.as_str())
                .bind(occurred_at.as_datetime())
                .execute(&mut *conn)
                .await?;
            }
            for (sku, stock) in &stocks {
                save_stock(&mut *conn, sku, stock, occurred_at).await?;
            }
            let event = StockReserved {
                event_id: EventId::new_v7(),
                occurred_at,
                order_id: order.order_id,
                customer_id: order.customer_id,
                lines,
                amount_to_charge: order.total,
            };
            append(conn, outbox, trace, &event).await?;
            Ok(ReserveOutcome::Reserved(event))
        }
        Decision::Reject { shortages } => {
            let event = StockRejected {
                event_id: EventId::new_v7(),
                occurred_at,
                order_id: order.order_id,
                shortages,
            };
            append(conn, outbox, trace, &event).await?;
            Ok(ReserveOutcome::Rejected(event))
        }
    }
}

/// Compensation for a cancelled order: give back everything still reserved for it (RESERVED →
/// RELEASED, reserved stock goes down) and write `StockReleased`. Nothing reserved (rejected, never
/// seen, already released or committed) writes nothing and answers `None`. An order inventory has
/// not decided yet is decided CANCELLED, so an `OrderPlaced` that comes later (a redriven dead
/// letter, a stray copy) reserves nothing.
pub async fn release_for_order(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
) -> Result<Option<StockReleased>, InventoryError> {
    let occurred_at = Timestamp::now();
    let lines = settle(
        conn,
        order_id,
        ReservationStatus::Released,
        Stock::release,
        occurred_at,
    )
    .await?;
    if lines.is_empty() {
        let cancelled = sqlx::query(
            "INSERT INTO stock_decisions (order_id, customer_id, outcome, decided_at)
             VALUES ($1, NULL, $2, $3) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id.as_uuid())
        .bind(Outcome::Cancelled.as_str())
        .bind(occurred_at.as_datetime())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if cancelled == 1 {
            tracing::info!(%order_id, "cancelled before inventory decided it: a later OrderPlaced reserves nothing");
        }
        return Ok(None);
    }
    let event = StockReleased {
        event_id: EventId::new_v7(),
        occurred_at,
        order_id,
        lines,
    };
    append(conn, outbox, trace, &event).await?;
    Ok(Some(event))
}

/// The order's shipment was dispatched: what is reserved for it leaves for good (RESERVED →
/// COMMITTED, on hand and reserved both go down) and `StockCommitted` is written. Nothing reserved
/// writes nothing and answers `None`.
pub async fn commit_for_order(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
) -> Result<Option<StockCommitted>, InventoryError> {
    let occurred_at = Timestamp::now();
    let lines = settle(
        conn,
        order_id,
        ReservationStatus::Committed,
        Stock::commit,
        occurred_at,
    )
    .await?;
    if lines.is_empty() {
        return Ok(None);
    }
    let event = StockCommitted {
        event_id: EventId::new_v7(),
        occurred_at,
        order_id,
        lines,
    };
    append(conn, outbox, trace, &event).await?;
    Ok(Some(event))
}

/// Move every RESERVED line of an order to `status`, applying `movement` to each product's stock;
/// the lines moved, in sku order.
async fn settle(
    conn: &mut PgConnection,
    order_id: OrderId,
    status: ReservationStatus,
    movement: fn(Stock, Quantity) -> Result<Stock, StockError>,
    occurred_at: Timestamp,
) -> Result<Vec<StockLine>, InventoryError> {
    // Products first, in sku order like reserve_for_order, then the reservation rows.
    let rows: Vec<StockRow> = sqlx::query_as(
        "SELECT sku, on_hand, reserved FROM products
         WHERE sku IN (SELECT sku FROM reservations WHERE order_id = $1 AND status = 'RESERVED')
         ORDER BY sku FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    let stocks = rows
        .into_iter()
        .map(StockRow::parse)
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let held: Vec<HeldRow> = sqlx::query_as(
        "SELECT sku, quantity FROM reservations WHERE order_id = $1 AND status = 'RESERVED'
         ORDER BY sku FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::with_capacity(held.len());
    for row in held {
        let line = row.parse()?;
        let stock = stocks
            .get(&line.sku)
            .ok_or_else(|| corrupt(format!("reserved product {} was not locked", line.sku)))?;
        let after = movement(*stock, line.quantity)
            .map_err(|e| corrupt(format!("stock of {}: {e}", line.sku)))?;
        save_stock(&mut *conn, &line.sku, &after, occurred_at).await?;
        sqlx::query(
            "UPDATE reservations SET status = $3, updated_at = $4 WHERE order_id = $1 AND sku = $2",
        )
        .bind(order_id.as_uuid())
        .bind(line.sku.as_str())
        .bind(status.as_str())
        .bind(occurred_at.as_datetime())
        .execute(&mut *conn)
        .await?;
        lines.push(line);
    }
    Ok(lines)
}

async fn save_stock(
    conn: &mut PgConnection,
    sku: &Sku,
    stock: &Stock,
    at: Timestamp,
) -> Result<(), InventoryError> {
    sqlx::query("UPDATE products SET on_hand = $2, reserved = $3, updated_at = $4 WHERE sku = $1")
        .bind(sku.as_str())
        .bind(i32::from(stock.on_hand()))
        .bind(i32::from(stock.reserved()))
        .bind(at.as_datetime())
        .execute(conn)
        .await?;
    Ok(())
}

async fn append<E: orderflow_schemas::Event>(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    event: &E,
) -> Result<(), InventoryError> {
    outbox
        .append(conn, event, trace)
        .await
        .map(drop)
        .map_err(InventoryError::Outbox)
}

/// One product line held for an order, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: OrderId,
    pub sku: Sku,
    pub quantity: Quantity,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Every reservation line of an order, in sku order.
pub async fn reservations_of(
    db: impl PgExecutor<'_>,
    order_id: OrderId,
) -> Result<Vec<Reservation>, InventoryError> {
    #[derive(FromRow)]
    struct Row {
        sku: String,
        quantity: i32,
        status: String,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sku, quantity, status, created_at, updated_at FROM reservations
         WHERE order_id = $1 ORDER BY sku",
    )
    .bind(order_id.as_uuid())
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Reservation {
                order_id,
                sku: r.sku.parse().map_err(corrupt)?,
                quantity: Quantity::try_from(r.quantity).map_err(corrupt)?,
                status: ReservationStatus::parse(&r.status)
                    .ok_or_else(|| corrupt(format!("reservation status {:?}", r.status)))?,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}
