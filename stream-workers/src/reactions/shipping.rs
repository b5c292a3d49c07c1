//! shipping-saga: creates the shipment of a confirmed order (once; a repeated `OrderConfirmed`
//! finds it there), and cancels it when the order's cancellation is requested before it left (see
//! `orderflow_shipping::shipments` for why shipping decides). Dispatch and delivery come from the
//! shipping API or the simulated carrier.

use orderflow_schemas::{AnyEvent, OrdersEvent};
use orderflow_shipping::ShippingError;

use orderflow_consumer::{Effects, ReactionError, ReactionFuture, Reactions};
use orderflow_schemas::Event;
use orderflow_schemas::orders::{OrderCancellationRequested, OrderConfirmed};

pub struct ShippingSaga;

impl Reactions for ShippingSaga {
    fn event_types(&self) -> &'static [&'static str] {
        &[OrderConfirmed::NAME, OrderCancellationRequested::NAME]
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, fx: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            match event {
                AnyEvent::Orders(OrdersEvent::OrderConfirmed(confirmed)) => {
                    orderflow_shipping::create_shipment(fx.tx, fx.outbox, fx.trace, confirmed)
                        .await
                        .map_err(reaction_error)?;
                }
                AnyEvent::Orders(OrdersEvent::OrderCancellationRequested(request)) => {
                    orderflow_shipping::cancel_for_order(fx.tx, fx.outbox, fx.trace, request)
                        .await
                        .map_err(reaction_error)?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

/// Database and outbox failures keep their cause for the runtime's classification; a refusal
/// (no shipment, a transition the state machine refuses) is permanent.
fn reaction_error(error: ShippingError) -> ReactionError {
    match error {
        ShippingError::Database(e) => e.into(),
        ShippingError::Outbox(e) => ReactionError::classify(anyhow::Error::from_boxed(e)),
        refused => ReactionError::Refused(refused.to_string()),
    }
}
