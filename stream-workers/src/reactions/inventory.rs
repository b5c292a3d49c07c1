//! inventory-saga: reserves stock when an order is placed (all lines or none), releases it when the
//! order is cancelled, and commits it when the shipment is dispatched.

use orderflow_inventory::InventoryError;
use orderflow_inventory::reservations;
use orderflow_schemas::{AnyEvent, OrdersEvent, ShippingEvent};

use orderflow_consumer::{Effects, ReactionError, ReactionFuture, Reactions};
use orderflow_schemas::Event;
use orderflow_schemas::orders::{OrderCancelled, OrderPlaced};
use orderflow_schemas::shipping::ShipmentDispatched;

pub struct InventorySaga;

impl Reactions for InventorySaga {
    fn event_types(&self) -> &'static [&'static str] {
        &[
            OrderPlaced::NAME,
            OrderCancelled::NAME,
            ShipmentDispatched::NAME,
        ]
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, fx: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            match event {
                AnyEvent::Orders(OrdersEvent::OrderPlaced(placed)) => {
                    reservations::reserve_for_order(fx.tx, fx.outbox, fx.trace, placed)
                        .await
                        .map_err(classify)?;
                }
                AnyEvent::Orders(OrdersEvent::OrderCancelled(cancelled)) => {
                    reservations::release_for_order(
                        fx.tx,
                        fx.outbox,
                        fx.trace,
                        cancelled.order.order_id,
                    )
                    .await
                    .map_err(classify)?;
                }
                AnyEvent::Shipping(ShippingEvent::ShipmentDispatched(dispatched)) => {
                    reservations::commit_for_order(fx.tx, fx.outbox, fx.trace, dispatched.order_id)
                        .await
                        .map_err(classify)?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

fn classify(error: InventoryError) -> ReactionError {
    match error {
        InventoryError::Database(e) => e.into(),
        InventoryError::Outbox(e) => ReactionError::classify(e),
        refused => ReactionError::Refused(refused.to_string()),
    }
}
