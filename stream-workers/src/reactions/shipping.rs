//! shipping-saga: creates the shipment of a confirmed order (once; a repeated `OrderConfirmed`
//! finds it there). Dispatch and delivery come from the shipping API or the simulated carrier.

use orderflow_schemas::{AnyEvent, OrdersEvent};
use orderflow_shipping::ShippingError;

use orderflow_consumer::{Effects, ReactionError, ReactionFuture, Reactions};
use orderflow_schemas::Event;
use orderflow_schemas::orders::OrderConfirmed;

pub struct ShippingSaga;

impl Reactions for ShippingSaga {
    fn event_types(&self) -> &'static [&'static str] {
        &[OrderConfirmed::NAME]
    }

    fn react<'a>(&'a self, event: &'a AnyEvent, fx: Effects<'a>) -> ReactionFuture<'a> {
        Box::pin(async move {
            if let AnyEvent::Orders(OrdersEvent::OrderConfirmed(confirmed)) = event {
                orderflow_shipping::create_shipment(fx.tx, fx.outbox, fx.trace, confirmed)
                    .await
                    .map_err(|error| match error {
                        ShippingError::Database(e) => e.into(),
                        ShippingError::Outbox(e) => {
                            ReactionError::classify(anyhow::Error::from_boxed(e))
                        }
                        refused => ReactionError::Refused(refused.to_string()),
                    })?;
            }
            Ok(())
        })
    }
}
