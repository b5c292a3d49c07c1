//! The payments steps of the saga, as functions the stream-worker reactions call on their own
//! transaction: `charge` (on `StockReserved`) and `refund` (on `OrderCancelled`). Each writes its
//! business rows and exactly one outbox event, or nothing at all when the step was already taken, so
//! a redelivered event changes nothing. The caller commits.

use anyhow::Context;
use orderflow_schemas::payments::{PaymentDeclined, PaymentRefunded, PaymentSucceeded};
use orderflow_schemas::{EventId, OrderId, PaymentId, RefundId, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::PgConnection;

use crate::domain::{ChargeRequest, Decline, Payment, PaymentStatus, Refund, RefundRefused};
use crate::gateway::{Decision, GatewayConfig};
use crate::store;

/// What `charge` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The gateway was asked; the payment (SUCCEEDED or DECLINED) and its event were written.
    Decided(Payment),
    /// The order already had a payment: nothing was written.
    AlreadyDecided(Payment),
    /// The order was cancelled before it could be charged: nothing was written, no money taken.
    CancelledBeforeCharge,
}

impl ChargeOutcome {
    pub fn payment(&self) -> Option<&Payment> {
        match self {
            Self::Decided(payment) | Self::AlreadyDecided(payment) => Some(payment),
            Self::CancelledBeforeCharge => None,
        }
    }
}

/// Serialize `charge` and `refund` of one order across workers, for the rest of the transaction.
async fn lock_order(conn: &mut PgConnection, order_id: OrderId) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(order_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Charge an order once: if it already has a payment, return that and write nothing; else ask the
/// gateway and write the payment with `PaymentSucceeded` or `PaymentDeclined`.
#[tracing::instrument(skip(conn, outbox, gateway), fields(order_id = %request.order_id))]
pub async fn charge(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    gateway: &GatewayConfig,
    request: &ChargeRequest,
) -> anyhow::Result<ChargeOutcome> {
    lock_order(conn, request.order_id).await?;
    if let Some(existing) = store::payment_for_order(conn, request.order_id, false).await? {
        return Ok(ChargeOutcome::AlreadyDecided(existing));
    }
    let cancelled: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM cancelled_before_charge WHERE order_id = $1")
            .bind(request.order_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    if cancelled.is_some() {
        tracing::info!("the order was cancelled before it was charged: nothing to charge");
        return Ok(ChargeOutcome::CancelledBeforeCharge);
    }
    let now = Timestamp::now();
    let decision = gateway.decide(request.order_id, request.customer_id, request.amount);
    let (status, decline, gateway_reference) = match decision.clone() {
        Decision::Approved { gateway_reference } => {
            (PaymentStatus::Succeeded, None, Some(gateway_reference))
        }
        Decision::Declined { reason, detail } => (
            PaymentStatus::Declined,
            Some(Decline { reason, detail }),
            None,
        ),
    };
    let payment = Payment {
        payment_id: PaymentId::new_v7(),
        order_id: request.order_id,
        customer_id: request.customer_id,
        amount: request.amount,
        status,
        decline,
        gateway_reference,
        created_at: now,
        updated_at: now,
    };
    if !store::insert_payment_if_absent(conn, &payment).await? {
        // a concurrent charge of the same order committed first
        let existing = store::payment_for_order(conn, request.order_id, false)
            .await?
            .context("the payment that won the race is gone")?;
        return Ok(ChargeOutcome::AlreadyDecided(existing));
    }
    match decision {
        Decision::Approved { gateway_reference } => {
            let event = PaymentSucceeded {
                event_id: EventId::new_v7(),
                occurred_at: now,
                payment_id: payment.payment_id,
                order_id: payment.order_id,
                customer_id: payment.customer_id,
                amount: payment.amount,
                gateway_reference,
            };
            outbox.append(conn, &event, trace).await?;
            tracing::info!(payment_id = %payment.payment_id, "charged");
        }
        Decision::Declined { reason, detail } => {
            let event = PaymentDeclined {
                event_id: EventId::new_v7(),
                occurred_at: now,
                payment_id: payment.payment_id,
                order_id: payment.order_id,
                customer_id: payment.customer_id,
                amount: payment.amount,
                reason,
                detail,
            };
            outbox.append(conn, &event, trace).await?;
            tracing::info!(payment_id = %payment.payment_id, ?reason, "declined");
        }
    }
    Ok(ChargeOutcome::Decided(payment))
}

/// What `refund` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The charge was refunded: the refund row, the REFUNDED status and `PaymentRefunded` were written.
    Refunded { payment: Payment, refund: Refund },
    /// The order was never charged (no payment, or it was declined): nothing was written.
    NothingToRefund { payment: Option<Payment> },
    /// The charge had been refunded before: nothing was written.
    AlreadyRefunded { payment: Payment },
}

/// Refund an order's successful charge in full (compensation for a cancelled order). A declined or
/// already refunded payment: nothing is written. No payment yet: the cancellation is remembered so the
/// order is never charged later.
#[tracing::instrument(skip(conn, outbox))]
pub async fn refund(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    order_id: OrderId,
) -> anyhow::Result<RefundOutcome> {
    lock_order(conn, order_id).await?;
    let Some(mut payment) = store::payment_for_order(conn, order_id, true).await? else {
        // Not charged yet: remember the cancellation, so that a late `StockReserved` charges nothing.
        sqlx::query(
            "INSERT INTO cancelled_before_charge (order_id) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(order_id.as_uuid())
        .execute(&mut *conn)
        .await?;
        return Ok(RefundOutcome::NothingToRefund { payment: None });
    };
    let status = match payment.status.refund() {
        Ok(status) => status,
        Err(RefundRefused::NeverCharged) => {
            return Ok(RefundOutcome::NothingToRefund {
                payment: Some(payment),
            });
        }
        Err(RefundRefused::AlreadyRefunded) => {
            return Ok(RefundOutcome::AlreadyRefunded { payment });
        }
    };
    let now = Timestamp::now();
    let refund = Refund {
        refund_id: RefundId::new_v7(),
        payment_id: payment.payment_id,
        order_id,
        amount: payment.amount,
        gateway_reference: GatewayConfig::refund_reference(payment.payment_id),
        created_at: now,
    };
    store::insert_refund(conn, &refund).await?;
    store::update_status(conn, &payment, status, now.as_datetime()).await?;
    payment.status = status;
    payment.updated_at = now;
    let event = PaymentRefunded {
        event_id: EventId::new_v7(),
        occurred_at: now,
        refund_id: refund.refund_id,
        payment_id: payment.payment_id,
        order_id,
        amount: refund.amount,
        gateway_reference: refund.gateway_reference.clone(),
    };
    outbox.append(conn, &event, trace).await?;
    tracing::info!(payment_id = %payment.payment_id, refund_id = %refund.refund_id, "refunded");
    Ok(RefundOutcome::Refunded { payment, refund })
}
