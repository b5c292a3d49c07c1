//! payments-saga: charges an order once its stock is reserved, and refunds a charged order that is
//! cancelled. The mock gateway's rules come from the environment (`GatewayConfig`).

use orderflow_payments::{ChargeRequest, GatewayConfig};
use orderflow_schemas::{AnyEvent, InventoryEvent, OrdersEvent};

use orderflow_consumer::{Effects, ReactionError, ReactionFuture, Reactions};
use orderflow_schemas::Event;
use orderflow_schemas::inventory::StockReserved;
use orderflow_schemas::orders::OrderCancelled;

pub struct PaymentsSaga {
    pub gateway: GatewayConfig,
}

impl Reactions for PaymentsSaga {
    fn event_types(&self) -> &'static [&'static str] {
        &[StockReserved::NAME, OrderCancelled::NAME]
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, fx: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            match event {
                AnyEvent::Inventory(InventoryEvent::StockReserved(reserved)) => {
                    let request = ChargeRequest::from(reserved);
                    orderflow_payments::charge(fx.tx, fx.outbox, fx.trace, &self.gateway, &request)
                        .await
                        .map_err(ReactionError::classify)?;
                }
                AnyEvent::Orders(OrdersEvent::OrderCancelled(cancelled)) => {
                    orderflow_payments::refund(
                        fx.tx,
                        fx.outbox,
                        fx.trace,
                        cancelled.order.order_id,
                    )
                    .await
                    .map_err(ReactionError::classify)?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}
