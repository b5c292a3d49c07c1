//! The shipping database: reading and writing `shipments` and `shipment_lines` on a caller's
//! connection or transaction, and turning rows back into domain values (a row that breaks a domain
//! rule is a `Corrupt` error, not a value).

use chrono::{DateTime, Utc};
use orderflow_schemas::{Address, OrderId, Quantity, ShipmentId, Timestamp};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::domain::{Dispatch, Shipment, ShipmentLine};
use crate::error::ShippingError;

const SHIPMENT_COLUMNS: &str = "shipment_id, order_id, customer_id, recipient, line1, line2, city, \
     region, postal_code, country, status, carrier, tracking_number, created_at, dispatched_at, \
     delivered_at, cancelled_at, updated_at";

#[derive(FromRow)]
struct ShipmentRow {
    shipment_id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    recipient: String,
    line1: String,
    line2: Option<String>,
    city: String,
    region: Option<String>,
    postal_code: String,
    country: String,
    status: String,
    carrier: Option<String>,
    tracking_number: Option<String>,
    created_at: DateTime<Utc>,
    dispatched_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct LineRow {
    sku: String,
    quantity: i32,
}

fn corrupt(what: &str, problem: impl std::fmt::Display) -> ShippingError {
    ShippingError::Corrupt(format!("{what}: {problem}"))
}

impl ShipmentRow {
    fn into_shipment(self, lines: Vec<ShipmentLine>) -> Result<Shipment, ShippingError> {
        let id = self.shipment_id;
        let dispatch = match (self.carrier, self.tracking_number, self.dispatched_at) {
            (Some(carrier), Some(tracking_number), Some(at)) => Some(Dispatch {
                carrier: carrier
                    .parse()
                    .map_err(|e| corrupt(&format!("carrier of shipment {id}"), e))?,
                tracking_number: tracking_number
                    .parse()
                    .map_err(|e| corrupt(&format!("tracking number of shipment {id}"), e))?,
                dispatched_at: at.into(),
            }),
            _ => None,
        };
        Ok(Shipment {
            shipment_id: id.into(),
            order_id: self.order_id.into(),
            customer_id: self.customer_id.into(),
            address: Address {
                recipient: self.recipient,
                line1: self.line1,
                line2: self.line2,
                city: self.city,
                region: self.region,
                postal_code: self.postal_code,
                country: self
                    .country
                    .parse()
                    .map_err(|e| corrupt(&format!("country of shipment {id}"), e))?,
            },
            lines,
            status: self
                .status
                .parse()
                .map_err(|e| corrupt(&format!("status of shipment {id}"), e))?,
            dispatch,
            delivered_at: self.delivered_at.map(Timestamp::from),
            cancelled_at: self.cancelled_at.map(Timestamp::from),
            created_at: self.created_at.into(),
            updated_at: self.updated_at.into(),
        })
    }
}

async fn lines_of(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Vec<ShipmentLine>, ShippingError> {
    sqlx::query_as::<_, LineRow>(
        "SELECT sku, quantity FROM shipment_lines WHERE shipment_id = $1 ORDER BY line_no",
    )
    .bind(shipment_id)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| {
        Ok(ShipmentLine {
            sku: row
                .sku
                .parse()
                .map_err(|e| corrupt(&format!("sku of shipment {shipment_id}"), e))?,
            quantity: Quantity::try_from(row.quantity)
                .map_err(|e| corrupt(&format!("quantity of shipment {shipment_id}"), e))?,
        })
    })
    .collect()
}

async fn fetch_one(
    conn: &mut PgConnection,
    filter: &str,
    id: Uuid,
    lock: bool,
) -> Result<Option<Shipment>, ShippingError> {
    let sql = format!(
        "SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE {filter} = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(row) = sqlx::query_as::<_, ShipmentRow>(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let lines = lines_of(conn, row.shipment_id).await?;
    row.into_shipment(lines).map(Some)
}

/// A shipment; `lock` takes a row lock (`FOR UPDATE`) for the rest of the transaction.
pub async fn shipment(
    conn: &mut PgConnection,
    shipment_id: ShipmentId,
    lock: bool,
) -> Result<Option<Shipment>, ShippingError> {
    fetch_one(conn, "shipment_id", shipment_id.as_uuid(), lock).await
}

/// The shipment of an order.
pub async fn shipment_for_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Shipment>, ShippingError> {
    fetch_one(conn, "order_id", order_id.as_uuid(), false).await
}

/// The shipment of an order, row-locked (`FOR UPDATE`) for the rest of the transaction: a dispatch
/// of the same shipment waits for it, and the other way round.
pub async fn lock_shipment_for_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Shipment>, ShippingError> {
    fetch_one(conn, "order_id", order_id.as_uuid(), true).await
}

/// Insert a new (CREATED) shipment and its lines unless its order already has one; `false` when it
/// had. A concurrent insert for the same order makes this wait for that transaction, then answer `false`.
pub async fn insert_shipment_if_absent(
    conn: &mut PgConnection,
    shipment: &Shipment,
) -> Result<bool, ShippingError> {
    let address = &shipment.address;
    let done = sqlx::query(
        "INSERT INTO shipments (shipment_id, order_id, customer_id, recipient, line1, line2, city,
                                region, postal_code, country, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(shipment.shipment_id.as_uuid())
    .bind(shipment.order_id.as_uuid())
    .bind(shipment.customer_id.as_uuid())
    .bind(&address.recipient)
    .bind(&address.line1)
    .bind(&address.line2)
    .bind(&address.city)
    .bind(&address.region)
    .bind(&address.postal_code)
    .bind(address.country.as_str())
    .bind(shipment.status.as_str())
    .bind(shipment.created_at.as_datetime())
    .bind(shipment.updated_at.as_datetime())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for (line_no, line) in shipment.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO shipment_lines (shipment_id, line_no, sku, quantity) VALUES ($1, $2, $3, $4)",
        )
        .bind(shipment.shipment_id.as_uuid())
        .bind(line_no as i32)
        .bind(line.sku.as_str())
        .bind(i32::from(line.quantity))
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// Write a shipment's status, dispatch details, delivery and cancellation times as they now are.
pub async fn update_progress(
    conn: &mut PgConnection,
    shipment: &Shipment,
) -> Result<(), ShippingError> {
    let dispatch = shipment.dispatch.as_ref();
    sqlx::query(
        "UPDATE shipments
         SET status = $2, carrier = $3, tracking_number = $4, dispatched_at = $5,
             delivered_at = $6, updated_at = $7, cancelled_at = $8
         WHERE shipment_id = $1",
    )
    .bind(shipment.shipment_id.as_uuid())
    .bind(shipment.status.as_str())
    .bind(dispatch.map(|d| d.carrier.as_str()))
    .bind(dispatch.map(|d| d.tracking_number.as_str()))
    .bind(dispatch.map(|d| d.dispatched_at.as_datetime()))
    .bind(shipment.delivered_at.map(|t| t.as_datetime()))
    .bind(shipment.updated_at.as_datetime())
    .bind(shipment.cancelled_at.map(|t| t.as_datetime()))
    .execute(conn)
    .await?;
    Ok(())
}
