//! The payments database: reading and writing `payments` and `refunds` rows on a caller's connection
//! or transaction, and turning rows back into domain values (a row that breaks a domain rule is an
//! error, not a value).

use chrono::{DateTime, Utc};
use orderflow_schemas::{Currency, Money, OrderId, PaymentId};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::domain::{
    Decline, Payment, PaymentStatus, Refund, decline_reason_str, parse_decline_reason,
};

const PAYMENT_COLUMNS: &str = "payment_id, order_id, customer_id, amount_minor, currency, status, \
     decline_reason, decline_detail, gateway_reference, created_at, updated_at";

#[derive(FromRow)]
struct PaymentRow {
    payment_id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    amount_minor: i64,
    currency: String,
    status: String,
    decline_reason: Option<String>,
    decline_detail: Option<String>,
    gateway_reference: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn money(amount_minor: i64, currency: &str) -> anyhow::Result<Money> {
    let currency: Currency = currency.parse()?;
    Ok(Money::new(amount_minor, currency)?)
}

impl TryFrom<PaymentRow> for Payment {
    type Error = anyhow::Error;

    fn try_from(row: PaymentRow) -> anyhow::Result<Self> {
        let decline = match row.decline_reason {
            Some(reason) => Some(Decline {
                reason: parse_decline_reason(&reason).map_err(anyhow::Error::msg)?,
                detail: row.decline_detail.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(Payment {
            payment_id: row.payment_id.into(),
            order_id: row.order_id.into(),
            customer_id: row.customer_id.into(),
            amount: money(row.amount_minor, &row.currency)?,
            status: row.status.parse().map_err(anyhow::Error::msg)?,
            decline,
            gateway_reference: row.gateway_reference,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
        })
    }
}

#[derive(FromRow)]
struct RefundRow {
    refund_id: Uuid,
    payment_id: Uuid,
    order_id: Uuid,
    amount_minor: i64,
    currency: String,
    gateway_reference: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<RefundRow> for Refund {
    type Error = anyhow::Error;

    fn try_from(row: RefundRow) -> anyhow::Result<Self> {
        Ok(Refund {
            refund_id: row.refund_id.into(),
            payment_id: row.payment_id.into(),
            order_id: row.order_id.into(),
            amount: money(row.amount_minor, &row.currency)?,
            gateway_reference: row.gateway_reference,
            created_at: row.created_at.into(),
        })
    }
}

/// The payment of an order; `lock` takes a row lock (`FOR UPDATE`) for the rest of the transaction.
pub async fn payment_for_order(
    conn: &mut PgConnection,
    order_id: OrderId,
    lock: bool,
) -> anyhow::Result<Option<Payment>> {
    let sql = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as::<_, PaymentRow>(&sql)
        .bind(order_id.as_uuid())
        .fetch_optional(conn)
        .await?
        .map(Payment::try_from)
        .transpose()
}

pub async fn payment_by_id(
    conn: &mut PgConnection,
    payment_id: PaymentId,
) -> anyhow::Result<Option<Payment>> {
    sqlx::query_as::<_, PaymentRow>(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1"
    ))
    .bind(payment_id.as_uuid())
    .fetch_optional(conn)
    .await?
    .map(Payment::try_from)
    .transpose()
}

/// Insert `payment` unless its order already has one; `false` when it had (the other one stays).
/// A concurrent insert for the same order makes this wait for that transaction and then answer `false`.
pub async fn insert_payment_if_absent(
    conn: &mut PgConnection,
    payment: &Payment,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payments (payment_id, order_id, customer_id, amount_minor, currency, status,
                               decline_reason, decline_detail, gateway_reference, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(payment.payment_id.as_uuid())
    .bind(payment.order_id.as_uuid())
    .bind(payment.customer_id.as_uuid())
    .bind(payment.amount.amount_minor())
    .bind(payment.amount.currency().as_str())
    .bind(payment.status.as_str())
    .bind(payment.decline.as_ref().map(|d| decline_reason_str(d.reason)))
    .bind(payment.decline.as_ref().map(|d| d.detail.as_str()))
    .bind(payment.gateway_reference.as_deref())
    .bind(payment.created_at.as_datetime())
    .bind(payment.updated_at.as_datetime())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn update_status(
    conn: &mut PgConnection,
    payment: &Payment,
    status: PaymentStatus,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE payments SET status = $2, updated_at = $3 WHERE payment_id = $1")
        .bind(payment.payment_id.as_uuid())
        .bind(status.as_str())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_refund(conn: &mut PgConnection, refund: &Refund) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO refunds (refund_id, payment_id, order_id, amount_minor, currency,
                              gateway_reference, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(refund.refund_id.as_uuid())
    .bind(refund.payment_id.as_uuid())
    .bind(refund.order_id.as_uuid())
    .bind(refund.amount.amount_minor())
    .bind(refund.amount.currency().as_str())
    .bind(&refund.gateway_reference)
    .bind(refund.created_at.as_datetime())
    .execute(conn)
    .await?;
    Ok(())
}

/// The refunds of a payment, oldest first.
pub async fn refunds_of(
    conn: &mut PgConnection,
    payment_id: PaymentId,
) -> anyhow::Result<Vec<Refund>> {
    sqlx::query_as::<_, RefundRow>(
        "SELECT refund_id, payment_id, order_id, amount_minor, currency, gateway_reference, created_at
         FROM refunds WHERE payment_id = $1 ORDER BY created_at, refund_id",
    )
    .bind(payment_id.as_uuid())
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Refund::try_from)
    .collect()
}
