//! The order as the domain sees it: an [`Order`] with its [`Line`]s, totals in checked [`Money`]
//! arithmetic, and the value types requests are parsed into ([`LineQuantity`], [`CancelDetail`]), so a
//! bad value is refused while parsing and cannot reach the rest of the code. Every change of status
//! goes through the table in [`crate::status`]. Pure: no I/O here.

use std::fmt;

use orderflow_schemas::orders::{
    CancellationReason, OrderLine, OrderSnapshot, OrderStatus, OrderTimeline,
};
use orderflow_schemas::{
    Address, Currency, CustomerId, Money, OrderId, PaymentId, Quantity, ShipmentId, Sku, Timestamp,
};
use serde::{Deserialize, Deserializer};

use crate::error::OrderError;
use crate::replicas::Product;
use crate::status::{Action, next_status};

/// The most units one line may have.
pub const MAX_LINE_QUANTITY: u32 = 1000;

/// The most characters a cancellation's free-text detail may have.
pub const MAX_CANCEL_DETAIL_CHARS: usize = 500;

/// Units of a product on one line: 1 to [`MAX_LINE_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineQuantity(u32);

impl LineQuantity {
    /// `n` units; fails outside 1..=1000.
    pub fn new(n: i64) -> Result<LineQuantity, String> {
        match u32::try_from(n) {
            Ok(n) if (1..=MAX_LINE_QUANTITY).contains(&n) => Ok(LineQuantity(n)),
            _ => Err(format!(
                "a line quantity is between 1 and {MAX_LINE_QUANTITY}, got {n}"
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The wire type (at least 1, always true here).
    pub fn as_quantity(self) -> Quantity {
        Quantity::new(self.0).expect("1..=1000 is a valid quantity")
    }
}

impl fmt::Display for LineQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for LineQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(deserializer)?;
        LineQuantity::new(n).map_err(serde::de::Error::custom)
    }
}

/// Why a customer cancels, in their words: at most [`MAX_CANCEL_DETAIL_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CancelDetail(String);

impl CancelDetail {
    pub fn new(text: &str) -> Result<CancelDetail, String> {
        let count = text.chars().count();
        if count > MAX_CANCEL_DETAIL_CHARS {
            Err(format!(
                "at most {MAX_CANCEL_DETAIL_CHARS} characters, got {count}"
            ))
        } else {
            Ok(CancelDetail(text.trim().to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CancelDetail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CancelDetail::new(&text).map_err(serde::de::Error::custom)
    }
}

/// One line: a product, how many, and its unit price captured from the product replica when the
/// line was first added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: Sku,
    pub product_name: String,
    pub quantity: LineQuantity,
    pub unit_price: Money,
}

impl Line {
    /// Quantity times unit price, or `None` on overflow.
    pub fn total(&self) -> Option<Money> {
        self.unit_price.checked_mul(self.quantity.as_quantity())
    }

    /// The line as events carry it.
    pub fn to_order_line(&self) -> OrderLine {
        OrderLine {
            sku: self.sku.clone(),
            quantity: self.quantity.as_quantity(),
            unit_price: self.unit_price,
        }
    }
}

/// The sum of the line totals in `currency`, or why there is none.
pub fn total_of(currency: Currency, lines: &[Line]) -> Result<Money, OrderError> {
    lines.iter().try_fold(Money::zero(currency), |sum, line| {
        line.total()
            .and_then(|t| sum.checked_add(t))
            .ok_or(OrderError::TotalOverflow)
    })
}

/// How and why an order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub reason: CancellationReason,
    /// Free text; may be empty.
    pub detail: String,
    /// DRAFT, PLACED or CONFIRMED: which steps need compensation.
    pub cancelled_from: OrderStatus,
}

/// What the carrier reported when the shipment left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub shipment_id: ShipmentId,
    pub carrier: String,
    pub tracking_number: String,
    /// When the shipment was dispatched: the order's `shipped_at`.
    pub dispatched_at: Timestamp,
}

impl From<&orderflow_schemas::shipping::ShipmentDispatched> for Dispatch {
    fn from(event: &orderflow_schemas::shipping::ShipmentDispatched) -> Self {
        Dispatch {
            shipment_id: event.shipment_id,
            carrier: event.carrier.clone(),
            tracking_number: event.tracking_number.clone(),
            dispatched_at: event.occurred_at,
        }
    }
}

/// Why the saga gives up on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaCancellation {
    /// Inventory could not reserve every line (`StockRejected`); the detail names the shortages.
    OutOfStock { detail: String },
    /// The gateway refused the charge (`PaymentDeclined`); the detail is the gateway's message.
    PaymentDeclined { detail: String },
    /// Not confirmed within the PLACED deadline (`deadlines`); the detail says how long it waited.
    Timeout { detail: String },
}

impl SagaCancellation {
    pub fn reason(&self) -> CancellationReason {
        match self {
            SagaCancellation::OutOfStock { .. } => CancellationReason::OutOfStock,
            SagaCancellation::PaymentDeclined { .. } => CancellationReason::PaymentDeclined,
            SagaCancellation::Timeout { .. } => CancellationReason::Timeout,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            SagaCancellation::OutOfStock { detail }
            | SagaCancellation::PaymentDeclined { detail }
            | SagaCancellation::Timeout { detail } => detail,
        }
    }
}

impl From<&orderflow_schemas::inventory::StockRejected> for SagaCancellation {
    fn from(event: &orderflow_schemas::inventory::StockRejected) -> Self {
        let detail = event
            .shortages
            .iter()
            .map(|s| {
                format!(
                    "{}: requested {}, available {}",
                    s.sku, s.requested, s.available
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        SagaCancellation::OutOfStock { detail }
    }
}

impl From<&orderflow_schemas::payments::PaymentDeclined> for SagaCancellation {
    fn from(event: &orderflow_schemas::payments::PaymentDeclined) -> Self {
        SagaCancellation::PaymentDeclined {
            detail: event.detail.clone(),
        }
    }
}

/// An order, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub currency: Currency,
    /// In the order they were first added; one per SKU.
    pub lines: Vec<Line>,
    /// The sum of the line totals.
    pub total: Money,
    /// Copied from the customer when placed.
    pub shipping_address: Option<Address>,
    pub payment_id: Option<PaymentId>,
    pub shipment_id: Option<ShipmentId>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub timeline: OrderTimeline,
    pub cancellation: Option<Cancellation>,
    /// The customer asked to cancel while CONFIRMED; kept whatever shipping answered.
    pub cancellation_request: Option<CancellationRequest>,
}

/// A customer's request to cancel a CONFIRMED order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationRequest {
    pub requested_at: Timestamp,
    /// Why, in the customer's words (may be empty).
    pub detail: String,
}

/// What adding units of a product did to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAdded {
    /// The line after the addition.
    pub line: Line,
    /// Whether the line is new (else its quantity grew).
    pub new_line: bool,
}

impl Order {
    /// A new, empty draft.
    pub fn new_draft(
        order_id: OrderId,
        customer_id: CustomerId,
        currency: Currency,
        now: Timestamp,
    ) -> Order {
        Order {
            order_id,
            customer_id,
            status: OrderStatus::Draft,
            currency,
            lines: Vec::new(),
            total: Money::zero(currency),
            shipping_address: None,
            payment_id: None,
            shipment_id: None,
            carrier: None,
            tracking_number: None,
            timeline: OrderTimeline {
                created_at: now,
                placed_at: None,
                confirmed_at: None,
                shipped_at: None,
                completed_at: None,
                cancelled_at: None,
            },
            cancellation: None,
            cancellation_request: None,
        }
    }

    /// The status `action` leads to, or the refusal as an error.
    pub fn check(&self, action: Action) -> Result<OrderStatus, OrderError> {
        next_status(self.status, action).map_err(|refusal| OrderError::Refused {
            order_id: self.order_id,
            refusal,
        })
    }

    /// The line for `sku`, if any.
    pub fn line(&self, sku: &Sku) -> Option<&Line> {
        self.lines.iter().find(|l| &l.sku == sku)
    }

    /// Add `quantity` of `product`. A SKU the order already has grows its line (at the price captured
    /// when the line was first added); a new SKU adds a line priced at the product's current price.
    pub fn add_units(
        &mut self,
        product: &Product,
        quantity: LineQuantity,
        max_lines: usize,
    ) -> Result<LineAdded, OrderError> {
        self.check(Action::EditLines)?;
        let mut lines = self.lines.clone();
        let new_line = match lines.iter_mut().find(|l| l.sku == product.sku) {
            Some(line) => {
                let merged = LineQuantity::new(i64::from(line.quantity.get() + quantity.get()))
                    .map_err(|_| OrderError::LineQuantityTooLarge {
                        sku: product.sku.clone(),
                        existing: line.quantity.get(),
                        added: quantity.get(),
                    })?;
                line.quantity = merged;
                false
            }
            None => {
                if product.unit_price.currency() != self.currency {
                    return Err(OrderError::CurrencyMismatch {
                        sku: product.sku.clone(),
                        product: product.unit_price.currency(),
                        order: self.currency,
                    });
                }
                if lines.len() >= max_lines {
                    return Err(OrderError::TooManyLines { max: max_lines });
                }
                lines.push(Line {
                    sku: product.sku.clone(),
                    product_name: product.name.clone(),
                    quantity,
                    unit_price: product.unit_price,
                });
                true
            }
        };
        let total = total_of(self.currency, &lines)?;
        self.lines = lines;
        self.total = total;
        let line = self.line(&product.sku).expect("just added").clone();
        Ok(LineAdded { line, new_line })
    }

    /// Remove the line for `sku`, with all its units.
    pub fn remove_line(&mut self, sku: &Sku) -> Result<Line, OrderError> {
        self.check(Action::EditLines)?;
        let index = self
            .lines
            .iter()
            .position(|l| &l.sku == sku)
            .ok_or_else(|| OrderError::LineNotFound {
                order_id: self.order_id,
                sku: sku.clone(),
            })?;
        let removed = self.lines.remove(index);
        self.total = total_of(self.currency, &self.lines)?;
        Ok(removed)
    }

    /// DRAFT → PLACED, shipping to `address`. An order needs at least one line.
    pub fn place(&mut self, address: Address, now: Timestamp) -> Result<(), OrderError> {
        let next = self.check(Action::Place)?;
        if self.lines.is_empty() {
            return Err(OrderError::NoLines);
        }
        self.status = next;
        self.shipping_address = Some(address);
        self.timeline.placed_at = Some(now);
        Ok(())
    }

    /// PLACED → CONFIRMED: paid by `payment_id`.
    pub fn confirm(&mut self, payment_id: PaymentId, now: Timestamp) -> Result<(), OrderError> {
        self.status = self.check(Action::Confirm)?;
        self.payment_id = Some(payment_id);
        self.timeline.confirmed_at = Some(now);
        Ok(())
    }

    /// CONFIRMED → SHIPPED.
    pub fn ship(&mut self, dispatch: &Dispatch) -> Result<(), OrderError> {
        self.status = self.check(Action::Ship)?;
        self.shipment_id = Some(dispatch.shipment_id);
        self.carrier = Some(dispatch.carrier.clone());
        self.tracking_number = Some(dispatch.tracking_number.clone());
        self.timeline.shipped_at = Some(dispatch.dispatched_at);
        Ok(())
    }

    /// SHIPPED → COMPLETED.
    pub fn complete(&mut self, now: Timestamp) -> Result<(), OrderError> {
        self.status = self.check(Action::Complete)?;
        self.timeline.completed_at = Some(now);
        Ok(())
    }

    /// → CANCELLED, by the customer (from DRAFT, PLACED).
    pub fn cancel_by_customer(
        &mut self,
        detail: &CancelDetail,
        now: Timestamp,
    ) -> Result<(), OrderError> {
        let next = self.check(Action::CancelByCustomer)?;
        self.cancelled(
            next,
            CancellationReason::CustomerRequest,
            detail.as_str(),
            now,
        );
        Ok(())
    }

    /// CONFIRMED: record the customer's request to cancel; `false` when one was recorded before
    /// (nothing changes).
    pub fn request_cancel(
        &mut self,
        detail: &CancelDetail,
        now: Timestamp,
    ) -> Result<bool, OrderError> {
        self.check(Action::RequestCancel)?;
        if self.cancellation_request.is_some() {
            return Ok(false);
        }
        self.cancellation_request = Some(CancellationRequest {
            requested_at: now,
            detail: detail.as_str().to_owned(),
        });
        Ok(true)
    }

    /// CONFIRMED → CANCELLED with reason CUSTOMER_REQUEST, once shipping cancelled the shipment.
    pub fn cancel_after_shipment_cancelled(&mut self, now: Timestamp) -> Result<(), OrderError> {
        let next = self.check(Action::CancelAfterShipmentCancelled)?;
        let detail = self
            .cancellation_request
            .as_ref()
            .map(|r| r.detail.clone())
            .unwrap_or_default();
        self.cancelled(next, CancellationReason::CustomerRequest, &detail, now);
        Ok(())
    }

    /// → CANCELLED, by the saga (from PLACED).
    pub fn cancel_by_saga(
        &mut self,
        cause: &SagaCancellation,
        now: Timestamp,
    ) -> Result<(), OrderError> {
        let next = self.check(Action::CancelBySaga)?;
        self.cancelled(next, cause.reason(), cause.detail(), now);
        Ok(())
    }

    fn cancelled(
        &mut self,
        next: OrderStatus,
        reason: CancellationReason,
        detail: &str,
        now: Timestamp,
    ) {
        self.cancellation = Some(Cancellation {
            reason,
            detail: detail.to_owned(),
            cancelled_from: self.status,
        });
        self.status = next;
        self.timeline.cancelled_at = Some(now);
    }

    /// The lines as events carry them.
    pub fn order_lines(&self) -> Vec<OrderLine> {
        self.lines.iter().map(Line::to_order_line).collect()
    }

    /// The complete state, as the terminal events carry it.
    pub fn snapshot(&self) -> OrderSnapshot {
        OrderSnapshot {
            order_id: self.order_id,
            customer_id: self.customer_id,
            status: self.status,
            lines: self.order_lines(),
            total: self.total,
            shipping_address: self.shipping_address.clone(),
            payment_id: self.payment_id,
            shipment_id: self.shipment_id,
            carrier: self.carrier.clone(),
            tracking_number: self.tracking_number.clone(),
            timeline: self.timeline.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_772_442_000_000 + ms).unwrap()
    }

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR).unwrap()
    }

    fn product(sku: &str, price: Money) -> Product {
        Product {
            sku: sku.parse().unwrap(),
            name: format!("{sku} name"),
            unit_price: price,
        }
    }

    fn q(n: i64) -> LineQuantity {
        LineQuantity::new(n).unwrap()
    }

    fn draft() -> Order {
        Order::new_draft(OrderId::new_v7(), CustomerId::new_v7(), Currency::EUR, t(0))
    }

    fn address() -> Address {
        orderflow_schemas::samples::address()
    }

    #[test]
    fn line_quantities_are_1_to_1000() {
        assert!(LineQuantity::new(0).is_err());
        assert!(LineQuantity::new(-3).is_err());
        assert!(LineQuantity::new(1001).is_err());
        assert!(LineQuantity::new(i64::MAX).is_err());
        assert_eq!(q(1000).get(), 1000);
        let parsed: Result<LineQuantity, _> = serde_json::from_str("-2");
        assert!(
            parsed
                .unwrap_err()
                .to_string()
                .contains("between 1 and 1000"),
            "names the rule"
        );
    }

    #[test]
    fn cancel_details_are_bounded_and_trimmed() {
        assert_eq!(
            CancelDetail::new("  too slow ").unwrap().as_str(),
            "too slow"
        );
        assert!(CancelDetail::new(&"x".repeat(501)).is_err());
        assert!(CancelDetail::new(&"é".repeat(500)).is_ok());
    }

    #[test]
    fn adding_units_prices_new_lines_and_grows_existing_ones() {
        let mut order = draft();
        let added = order
            .add_units(&product("TSHIRT", eur(1_999)), q(2), 50)
            .unwrap();
        assert!(added.new_line);
        order
            .add_units(&product("MUG", eur(1_250)), q(1), 50)
            .unwrap();
        // The price changed since; the existing line keeps the captured one.
        let added = order
            .add_units(&product("TSHIRT", eur(2_500)), q(3), 50)
            .unwrap();
        assert!(!added.new_line);
        assert_eq!(added.line.quantity, q(5));
        assert_eq!(added.line.unit_price, eur(1_999));
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.total, eur(5 * 1_999 + 1_250));
        assert_eq!(order.lines[0].sku.as_str(), "TSHIRT", "first-added order");
    }

    #[test]
    fn a_line_cannot_grow_past_1000_units() {
        let mut order = draft();
        order
            .add_units(&product("MUG", eur(1)), q(999), 50)
            .unwrap();
        let before = order.clone();
        let err = order
            .add_units(&product("MUG", eur(1)), q(2), 50)
            .unwrap_err();
        assert!(matches!(
            err,
            OrderError::LineQuantityTooLarge {
                existing: 999,
                added: 2,
                ..
            }
        ));
        assert_eq!(order, before, "nothing changed");
    }

    #[test]
    fn lines_are_limited_and_in_one_currency() {
        let mut order = draft();
        order.add_units(&product("A", eur(1)), q(1), 2).unwrap();
        order.add_units(&product("B", eur(1)), q(1), 2).unwrap();
        let err = order.add_units(&product("C", eur(1)), q(1), 2).unwrap_err();
        assert!(matches!(err, OrderError::TooManyLines { max: 2 }));
        // Growing an existing line is not a new line.
        order.add_units(&product("A", eur(1)), q(1), 2).unwrap();
        let mut order = draft();
        let usd = Money::new(100, Currency::USD).unwrap();
        let err = order.add_units(&product("A", usd), q(1), 50).unwrap_err();
        assert!(matches!(err, OrderError::CurrencyMismatch { .. }), "{err}");
        assert!(order.lines.is_empty());
    }

    #[test]
    fn totals_are_checked() {
        let mut order = draft();
        let huge = eur(i64::MAX / 2);
        let err = order.add_units(&product("A", huge), q(3), 50).unwrap_err();
        assert!(matches!(err, OrderError::TotalOverflow));
        order.add_units(&product("A", huge), q(1), 50).unwrap();
        order.add_units(&product("B", huge), q(1), 50).unwrap();
        let err = order.add_units(&product("C", huge), q(1), 50).unwrap_err();
        assert!(matches!(err, OrderError::TotalOverflow));
        assert_eq!(order.lines.len(), 2);
    }

    #[test]
    fn removing_a_line_updates_the_total() {
        let mut order = draft();
        order.add_units(&product("A", eur(300)), q(2), 50).unwrap();
        order.add_units(&product("B", eur(50)), q(1), 50).unwrap();
        let removed = order.remove_line(&"A".parse().unwrap()).unwrap();
        assert_eq!(removed.quantity, q(2));
        assert_eq!(order.total, eur(50));
        let err = order.remove_line(&"A".parse().unwrap()).unwrap_err();
        assert!(matches!(err, OrderError::LineNotFound { .. }));
        order.remove_line(&"B".parse().unwrap()).unwrap();
        assert_eq!(order.total, eur(0));
    }

    #[test]
    fn placing_needs_a_line_and_freezes_the_lines() {
        let mut order = draft();
        assert!(matches!(
            order.place(address(), t(5)).unwrap_err(),
            OrderError::NoLines
        ));
        assert_eq!(order.status, OrderStatus::Draft);
        order.add_units(&product("A", eur(1)), q(1), 50).unwrap();
        order.place(address(), t(5)).unwrap();
        assert_eq!(order.status, OrderStatus::Placed);
        assert_eq!(order.timeline.placed_at, Some(t(5)));
        let err = order
            .add_units(&product("B", eur(1)), q(1), 50)
            .unwrap_err();
        assert!(err.is_refused_transition());
        let err = order.remove_line(&"A".parse().unwrap()).unwrap_err();
        assert!(err.is_refused_transition());
        assert!(
            order
                .place(address(), t(6))
                .unwrap_err()
                .is_refused_transition()
        );
    }

    #[test]
    fn the_whole_life_fills_the_snapshot() {
        let mut order = draft();
        order.add_units(&product("A", eur(700)), q(3), 50).unwrap();
        order.place(address(), t(5)).unwrap();
        let payment = PaymentId::new_v7();
        order.confirm(payment, t(8)).unwrap();
        let dispatch = Dispatch {
            shipment_id: ShipmentId::new_v7(),
            carrier: "DHL".into(),
            tracking_number: "JJD1".into(),
            dispatched_at: t(60),
        };
        order.ship(&dispatch).unwrap();
        assert!(
            order
                .cancel_by_customer(&CancelDetail::default(), t(61))
                .unwrap_err()
                .is_refused_transition(),
            "too late to cancel once shipped"
        );
        order.complete(t(90)).unwrap();
        let snapshot = order.snapshot();
        assert_eq!(snapshot.status, OrderStatus::Completed);
        assert_eq!(snapshot.total, eur(2_100));
        assert_eq!(snapshot.payment_id, Some(payment));
        assert_eq!(snapshot.carrier.as_deref(), Some("DHL"));
        assert_eq!(snapshot.timeline.shipped_at, Some(t(60)));
        assert_eq!(snapshot.timeline.completed_at, Some(t(90)));
        assert_eq!(snapshot.lines.len(), 1);
    }

    #[test]
    fn cancellations_record_where_they_came_from() {
        let mut order = draft();
        order
            .cancel_by_customer(&CancelDetail::new("changed my mind").unwrap(), t(3))
            .unwrap();
        let c = order.cancellation.clone().unwrap();
        assert_eq!(c.reason, CancellationReason::CustomerRequest);
        assert_eq!(c.cancelled_from, OrderStatus::Draft);
        assert_eq!(c.detail, "changed my mind");
        assert_eq!(order.timeline.cancelled_at, Some(t(3)));

        let mut order = draft();
        let cause = SagaCancellation::OutOfStock {
            detail: "A: requested 5, available 3".into(),
        };
        assert!(
            order
                .cancel_by_saga(&cause, t(2))
                .unwrap_err()
                .is_refused_transition(),
            "the saga only cancels placed orders"
        );
        order.add_units(&product("A", eur(1)), q(5), 50).unwrap();
        order.place(address(), t(4)).unwrap();
        order.cancel_by_saga(&cause, t(6)).unwrap();
        let c = order.cancellation.clone().unwrap();
        assert_eq!(c.reason, CancellationReason::OutOfStock);
        assert_eq!(c.cancelled_from, OrderStatus::Placed);
        assert_eq!(order.status, OrderStatus::Cancelled);
    }

    #[test]
    fn a_confirmed_order_is_cancelled_only_after_its_shipment_is() {
        let mut order = draft();
        order.add_units(&product("A", eur(700)), q(1), 50).unwrap();
        order.place(address(), t(5)).unwrap();
        order.confirm(PaymentId::new_v7(), t(8)).unwrap();
        assert!(
            order
                .cancel_by_customer(&CancelDetail::default(), t(9))
                .unwrap_err()
                .is_refused_transition(),
            "a confirmed order is not cancelled on the spot"
        );
        let detail = CancelDetail::new("wrong size").unwrap();
        assert!(order.request_cancel(&detail, t(10)).unwrap());
        assert_eq!(order.status, OrderStatus::Confirmed);
        assert!(!order.request_cancel(&detail, t(11)).unwrap(), "once");
        assert_eq!(
            order.cancellation_request.as_ref().unwrap().requested_at,
            t(10)
        );
        order.cancel_after_shipment_cancelled(t(12)).unwrap();
        let c = order.cancellation.clone().unwrap();
        assert_eq!(order.status, OrderStatus::Cancelled);
        assert_eq!(c.cancelled_from, OrderStatus::Confirmed);
        assert_eq!(c.reason, CancellationReason::CustomerRequest);
        assert_eq!(c.detail, "wrong size");

        // The shipment left first: the order ships, the request stays as a record.
        let mut order = draft();
        order.add_units(&product("A", eur(700)), q(1), 50).unwrap();
        order.place(address(), t(5)).unwrap();
        order.confirm(PaymentId::new_v7(), t(8)).unwrap();
        order.request_cancel(&detail, t(10)).unwrap();
        order
            .ship(&Dispatch {
                shipment_id: ShipmentId::new_v7(),
                carrier: "DHL".into(),
                tracking_number: "JJD1".into(),
                dispatched_at: t(9),
            })
            .unwrap();
        assert!(order.request_cancel(&detail, t(11)).is_err());
        assert!(order.cancel_after_shipment_cancelled(t(12)).is_err());
        assert!(order.cancellation_request.is_some());
    }

    #[test]
    fn saga_causes_come_from_the_events() {
        let cause = SagaCancellation::from(&orderflow_schemas::samples::stock_rejected());
        assert_eq!(
            cause,
            SagaCancellation::OutOfStock {
                detail: "MUG-CLASSIC: requested 5, available 3".into()
            }
        );
        let cause = SagaCancellation::from(&orderflow_schemas::samples::payment_declined());
        assert_eq!(cause.reason(), CancellationReason::PaymentDeclined);
        assert_eq!(cause.detail(), "issuer: insufficient funds");
        let dispatch = Dispatch::from(&orderflow_schemas::samples::shipment_dispatched());
        assert_eq!(dispatch.carrier, "DHL");
    }
}
