//! orders-saga: moves orders along the state machine as the other services answer (confirmed on
//! payment, cancelled on a stock or payment refusal or once shipping cancelled the shipment of an
//! order whose cancellation was requested, shipped on dispatch, completed on delivery), and
//! keeps the orders service's replicas of customers and products.
//!
//! A customer may cancel while the saga is still running; an answer that arrives for an order already
//! CANCELLED is expected then (the other services compensate on `OrderCancelled`) and is skipped, not
//! dead-lettered. Any other refused transition is dead-lettered for a person to look at.

use orderflow_orders::status::Action;
use orderflow_orders::{Dispatch, OrderError, SagaCancellation, replicas, saga_actions};
use orderflow_schemas::orders::OrderStatus;
use orderflow_schemas::{AnyEvent, CustomersEvent, InventoryEvent, PaymentsEvent, ShippingEvent};

use orderflow_consumer::{Effects, ReactionError, ReactionFuture, Reactions};
use orderflow_schemas::Event;
use orderflow_schemas::customers::{CustomerDeactivated, CustomerRegistered};
use orderflow_schemas::inventory::{ProductCreated, StockRejected};
use orderflow_schemas::payments::{PaymentDeclined, PaymentSucceeded};
use orderflow_schemas::shipping::{ShipmentCancelled, ShipmentDelivered, ShipmentDispatched};

pub struct OrdersSaga;

impl Reactions for OrdersSaga {
    fn event_types(&self) -> &'static [&'static str] {
        &[
            CustomerRegistered::NAME,
            CustomerDeactivated::NAME,
            ProductCreated::NAME,
            StockRejected::NAME,
            PaymentSucceeded::NAME,
            PaymentDeclined::NAME,
            ShipmentDispatched::NAME,
            ShipmentDelivered::NAME,
            ShipmentCancelled::NAME,
        ]
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, fx: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            let Effects { tx, outbox, trace } = fx;
            let result = match event {
                AnyEvent::Customers(CustomersEvent::CustomerRegistered(e)) => {
                    replicas::apply_customer_registered(tx, e).await?;
                    Ok(())
                }
                AnyEvent::Customers(CustomersEvent::CustomerDeactivated(e)) => {
                    replicas::apply_customer_deactivated(tx, e).await?;
                    Ok(())
                }
                AnyEvent::Inventory(InventoryEvent::ProductCreated(e)) => {
                    replicas::apply_product_created(tx, e).await?;
                    Ok(())
                }
                AnyEvent::Inventory(InventoryEvent::StockRejected(e)) => {
                    saga_actions::cancel_by_saga(
                        tx,
                        outbox,
                        trace,
                        e.order_id,
                        &SagaCancellation::from(e),
                    )
                    .await
                    .map(drop)
                }
                AnyEvent::Payments(PaymentsEvent::PaymentDeclined(e)) => {
                    saga_actions::cancel_by_saga(
                        tx,
                        outbox,
                        trace,
                        e.order_id,
                        &SagaCancellation::from(e),
                    )
                    .await
                    .map(drop)
                }
                AnyEvent::Payments(PaymentsEvent::PaymentSucceeded(e)) => {
                    saga_actions::confirm(tx, outbox, trace, e.order_id, e.payment_id)
                        .await
                        .map(drop)
                }
                AnyEvent::Shipping(ShippingEvent::ShipmentDispatched(e)) => {
                    saga_actions::mark_shipped(tx, outbox, trace, e.order_id, &Dispatch::from(e))
                        .await
                        .map(drop)
                }
                AnyEvent::Shipping(ShippingEvent::ShipmentCancelled(e)) => {
                    saga_actions::cancel_after_shipment_cancelled(tx, outbox, trace, e.order_id)
                        .await
                        .map(drop)
                }
                AnyEvent::Shipping(ShippingEvent::ShipmentDelivered(e)) => {
                    saga_actions::complete(tx, outbox, trace, e.order_id)
                        .await
                        .map(drop)
                }
                _ => Ok(()),
            };
            result.or_else(skip_answers_to_cancelled_orders)
        })
    }
}

fn skip_answers_to_cancelled_orders(error: OrderError) -> Result<(), ReactionError> {
    match error {
        OrderError::Refused { order_id, refusal }
            if refusal.from == OrderStatus::Cancelled
                && matches!(refusal.action, Action::Confirm | Action::CancelBySaga) =>
        {
            tracing::info!(%order_id, action = ?refusal.action, "the order was cancelled meanwhile; nothing to do");
            Ok(())
        }
        OrderError::Database(e) => Err(e.into()),
        OrderError::Outbox(e) => Err(ReactionError::classify(e)),
        refused => Err(ReactionError::Refused(refused.to_string())),
    }
}
