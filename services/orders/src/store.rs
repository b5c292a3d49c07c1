//! Orders and their lines in PostgreSQL (`orders`, `order_lines`): reading an order whole (optionally
//! locked for the rest of the caller's transaction, so concurrent writers to one order queue up), and
//! writing back what an operation changed. Rows are turned into domain values on the way in; a stored
//! value the domain refuses is a decode error (the CHECK constraints keep that from happening).

use chrono::{DateTime, Utc};
use orderflow_schemas::orders::{OrderStatus, OrderTimeline};
use orderflow_schemas::{Currency, CustomerId, OrderId, PaymentId, ShipmentId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::order::{Cancellation, CancellationRequest, Line, LineQuantity, Order};
use crate::replicas::{address_from_row, decode_error, money_from_row};
use crate::status::{parse_reason, parse_status, reason_name, status_name};

/// The order, or `None`.
pub async fn find_order(conn: &mut PgConnection, order_id: OrderId) -> sqlx::Result<Option<Order>> {
    load(conn, order_id, false).await
}

/// The order, locked (`FOR UPDATE`) until the caller's transaction ends; or `None`.
pub async fn lock_order(conn: &mut PgConnection, order_id: OrderId) -> sqlx::Result<Option<Order>> {
    load(conn, order_id, true).await
}

async fn load(
    conn: &mut PgConnection,
    order_id: OrderId,
    for_update: bool,
) -> sqlx::Result<Option<Order>> {
    let sql = if for_update {
        "SELECT * FROM orders WHERE order_id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM orders WHERE order_id = $1"
    };
    let Some(row) = sqlx::query(sql)
        .bind(order_id.as_uuid())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query("SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_seq")
        .bind(order_id.as_uuid())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<sqlx::Result<Vec<_>>>()?;
    order_from_row(&row, lines).map(Some)
}

fn timestamp(row: &PgRow, column: &str) -> sqlx::Result<Option<Timestamp>> {
    let value: Option<DateTime<Utc>> = row.try_get(column)?;
    Ok(value.map(Timestamp::from))
}

fn status(row: &PgRow, column: &str) -> sqlx::Result<Option<OrderStatus>> {
    let name: Option<String> = row.try_get(column)?;
    name.map(|n| parse_status(&n).ok_or_else(|| decode_error(format!("order status {n:?}"))))
        .transpose()
}

fn line_from_row(row: &PgRow) -> sqlx::Result<Line> {
    let sku: String = row.try_get("sku")?;
    let quantity: i32 = row.try_get("quantity")?;
    Ok(Line {
        sku: sku.parse().map_err(decode_error)?,
        product_name: row.try_get("product_name")?,
        quantity: LineQuantity::new(quantity.into()).map_err(decode_error)?,
        unit_price: money_from_row(row, "unit_price_minor", "currency")?,
    })
}

/// An `orders` row and its lines as an [`Order`].
pub(crate) fn order_from_row(row: &PgRow, lines: Vec<Line>) -> sqlx::Result<Order> {
    let currency: String = row.try_get("currency")?;
    let currency: Currency = currency.parse().map_err(decode_error)?;
    let uuid = |column: &str| -> sqlx::Result<Option<Uuid>> { row.try_get(column) };
    let reason: Option<String> = row.try_get("cancel_reason")?;
    let cancellation = match reason {
        Some(reason) => Some(Cancellation {
            reason: parse_reason(&reason)
                .ok_or_else(|| decode_error(format!("cancel reason {reason:?}")))?,
            detail: row.try_get("cancel_detail")?,
            cancelled_from: status(row, "cancelled_from")?
                .ok_or_else(|| decode_error("cancelled_from missing"))?,
        }),
        None => None,
    };
    Ok(Order {
        order_id: OrderId::from_uuid(row.try_get("order_id")?),
        customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
        status: status(row, "status")?.ok_or_else(|| decode_error("status missing"))?,
        currency,
        lines,
        total: money_from_row(row, "total_minor", "currency")?,
        shipping_address: address_from_row(row, "ship_")?,
        payment_id: uuid("payment_id")?.map(PaymentId::from_uuid),
        shipment_id: uuid("shipment_id")?.map(ShipmentId::from_uuid),
        carrier: row.try_get("carrier")?,
        tracking_number: row.try_get("tracking_number")?,
        timeline: OrderTimeline {
            created_at: timestamp(row, "created_at")?
                .ok_or_else(|| decode_error("created_at missing"))?,
            placed_at: timestamp(row, "placed_at")?,
            confirmed_at: timestamp(row, "confirmed_at")?,
            shipped_at: timestamp(row, "shipped_at")?,
            completed_at: timestamp(row, "completed_at")?,
            cancelled_at: timestamp(row, "cancelled_at")?,
        },
        cancellation,
        cancellation_request: match timestamp(row, "cancel_requested_at")? {
            Some(requested_at) => Some(CancellationRequest {
                requested_at,
                detail: row.try_get("cancel_request_detail")?,
            }),
            None => None,
        },
    })
}

/// Insert a new (draft, lineless) order.
pub async fn insert_order(conn: &mut PgConnection, order: &Order) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, status, currency, total_minor, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order.order_id.as_uuid())
    .bind(order.customer_id.as_uuid())
    .bind(status_name(order.status))
    .bind(order.currency.as_str())
    .bind(order.total.amount_minor())
    .bind(order.timeline.created_at.as_datetime())
    .execute(conn)
    .await?;
    Ok(())
}

/// Write back everything about an order but its lines.
pub async fn update_order(conn: &mut PgConnection, order: &Order) -> sqlx::Result<()> {
    let address = order.shipping_address.as_ref();
    let cancellation = order.cancellation.as_ref();
    let at = |t: Option<Timestamp>| t.map(|t| t.as_datetime());
    sqlx::query(
        "UPDATE orders SET status = $2, total_minor = $3,
             ship_recipient = $4, ship_line1 = $5, ship_line2 = $6, ship_city = $7, ship_region = $8,
             ship_postal_code = $9, ship_country = $10,
             payment_id = $11, shipment_id = $12, carrier = $13, tracking_number = $14,
             cancel_reason = $15, cancel_detail = $16, cancelled_from = $17,
             placed_at = $18, confirmed_at = $19, shipped_at = $20, completed_at = $21, cancelled_at = $22,
             cancel_requested_at = $23, cancel_request_detail = $24
         WHERE order_id = $1",
    )
    .bind(order.order_id.as_uuid())
    .bind(status_name(order.status))
    .bind(order.total.amount_minor())
    .bind(address.map(|a| a.recipient.as_str()))
    .bind(address.map(|a| a.line1.as_str()))
    .bind(address.and_then(|a| a.line2.as_deref()))
    .bind(address.map(|a| a.city.as_str()))
    .bind(address.and_then(|a| a.region.as_deref()))
    .bind(address.map(|a| a.postal_code.as_str()))
    .bind(address.map(|a| a.country.as_str()))
    .bind(order.payment_id.map(|id| id.as_uuid()))
    .bind(order.shipment_id.map(|id| id.as_uuid()))
    .bind(order.carrier.as_deref())
    .bind(order.tracking_number.as_deref())
    .bind(cancellation.map(|c| reason_name(c.reason)))
    .bind(cancellation.map(|c| c.detail.as_str()))
    .bind(cancellation.map(|c| status_name(c.cancelled_from)))
    .bind(at(order.timeline.placed_at))
    .bind(at(order.timeline.confirmed_at))
    .bind(at(order.timeline.shipped_at))
    .bind(at(order.timeline.completed_at))
    .bind(at(order.timeline.cancelled_at))
    .bind(at(order.cancellation_request.as_ref().map(|r| r.requested_at)))
    .bind(order.cancellation_request.as_ref().map(|r| r.detail.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Insert a line, or set the quantity of the order's existing line for its SKU.
pub async fn upsert_line(
    conn: &mut PgConnection,
    order_id: OrderId,
    line: &Line,
    now: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO order_lines (order_id, sku, product_name, quantity, unit_price_minor, currency, added_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (order_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity",
    )
    .bind(order_id.as_uuid())
    .bind(line.sku.as_str())
    .bind(&line.product_name)
    .bind(i32::try_from(line.quantity.get()).expect("at most 1000"))
    .bind(line.unit_price.amount_minor())
    .bind(line.unit_price.currency().as_str())
    .bind(now.as_datetime())
    .execute(conn)
    .await?;
    Ok(())
}

/// Delete the order's line for `line.sku`.
pub async fn delete_line(
    conn: &mut PgConnection,
    order_id: OrderId,
    line: &Line,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM order_lines WHERE order_id = $1 AND sku = $2")
        .bind(order_id.as_uuid())
        .bind(line.sku.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
