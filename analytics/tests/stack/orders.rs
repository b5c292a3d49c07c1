//! Orders told as events, the way the orders service tells them: a draft is created and its lines
//! added, it is placed, maybe confirmed and shipped, and it ends completed or cancelled with a full
//! snapshot. Each [`Story`] also keeps the plain facts (customer, lines, currency, dates, outcome)
//! from which the tests compute the expected report figures on their own.

#![allow(dead_code)]

use orderflow_schemas::orders::{
    CancellationReason, OrderCancelled, OrderCompleted, OrderConfirmed, OrderCreated, OrderLine,
    OrderLineAdded, OrderPlaced, OrderShipped, OrderSnapshot, OrderStatus, OrderTimeline,
};
use orderflow_schemas::{
    AnyEvent, Currency, CustomerId, EventId, Money, OrderId, PaymentId, Quantity, ShipmentId,
    Timestamp, samples,
};

/// How an order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Cancelled for this reason, from this status (`Placed` or `Confirmed`).
    Cancelled(CancellationReason, OrderStatus),
}

/// One order's facts.
#[derive(Debug, Clone)]
pub struct Story {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub currency: Currency,
    /// (sku, quantity, unit price in minor units)
    pub lines: Vec<(String, u32, i64)>,
    /// When the draft was created (ms since the epoch); every later step is some minutes after.
    pub created_ms: i64,
    /// When it finished (completed or cancelled).
    pub closed_ms: i64,
    pub outcome: Outcome,
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("a valid instant")
}

const MINUTE: i64 = 60_000;

impl Story {
    pub fn new(
        customer_id: CustomerId,
        currency: Currency,
        lines: &[(&str, u32, i64)],
        closed_ms: i64,
        outcome: Outcome,
    ) -> Story {
        Story {
            order_id: OrderId::new_v7(),
            customer_id,
            currency,
            lines: lines
                .iter()
                .map(|(s, q, p)| (s.to_string(), *q, *p))
                .collect(),
            created_ms: closed_ms - 90 * MINUTE,
            closed_ms,
            outcome,
        }
    }

    pub fn total_minor(&self) -> i64 {
        self.lines.iter().map(|(_, q, p)| i64::from(*q) * p).sum()
    }

    pub fn units(&self) -> i64 {
        self.lines.iter().map(|(_, q, _)| i64::from(*q)).sum()
    }

    pub fn is_completed(&self) -> bool {
        self.outcome == Outcome::Completed
    }

    fn money(&self, minor: i64) -> Money {
        Money::new(minor, self.currency).expect("non-negative")
    }

    fn order_lines(&self) -> Vec<OrderLine> {
        self.lines
            .iter()
            .map(|(sku, q, p)| OrderLine {
                sku: sku.parse().expect("a valid SKU"),
                quantity: Quantity::new(*q).expect("positive"),
                unit_price: self.money(*p),
            })
            .collect()
    }

    fn placed_ms(&self) -> i64 {
        self.created_ms + 10 * MINUTE
    }

    fn confirmed_ms(&self) -> i64 {
        self.created_ms + 20 * MINUTE
    }

    fn shipped_ms(&self) -> i64 {
        self.created_ms + 30 * MINUTE
    }

    fn reached_confirmed(&self) -> bool {
        match self.outcome {
            Outcome::Completed => true,
            Outcome::Cancelled(_, from) => from == OrderStatus::Confirmed,
        }
    }

    fn payment_id(&self) -> PaymentId {
        PaymentId::from_uuid(self.order_id.as_uuid())
    }

    fn shipment_id(&self) -> ShipmentId {
        ShipmentId::from_uuid(self.order_id.as_uuid())
    }

    /// The snapshot a terminal event carries.
    pub fn snapshot(&self) -> OrderSnapshot {
        let completed = self.is_completed();
        OrderSnapshot {
            order_id: self.order_id,
            customer_id: self.customer_id,
            status: if completed {
                OrderStatus::Completed
            } else {
                OrderStatus::Cancelled
            },
            lines: self.order_lines(),
            total: self.money(self.total_minor()),
            shipping_address: Some(samples::address()),
            payment_id: self.reached_confirmed().then(|| self.payment_id()),
            shipment_id: completed.then(|| self.shipment_id()),
            carrier: completed.then(|| "DHL".to_string()),
            tracking_number: completed.then(|| format!("JJD{}", self.order_id.as_uuid().simple())),
            timeline: OrderTimeline {
                created_at: ts(self.created_ms),
                placed_at: Some(ts(self.placed_ms())),
                confirmed_at: self.reached_confirmed().then(|| ts(self.confirmed_ms())),
                shipped_at: completed.then(|| ts(self.shipped_ms())),
                completed_at: completed.then(|| ts(self.closed_ms)),
                cancelled_at: (!completed).then(|| ts(self.closed_ms)),
            },
        }
    }

    /// The terminal event, occurring at `occurred_ms`.
    pub fn terminal_at(&self, occurred_ms: i64) -> AnyEvent {
        match self.outcome {
            Outcome::Completed => OrderCompleted {
                event_id: EventId::new_v7(),
                occurred_at: ts(occurred_ms),
                order: self.snapshot(),
            }
            .into(),
            Outcome::Cancelled(reason, from) => OrderCancelled {
                event_id: EventId::new_v7(),
                occurred_at: ts(occurred_ms),
                reason,
                detail: format!("{reason:?} in a test"),
                cancelled_from: from,
                order: self.snapshot(),
            }
            .into(),
        }
    }

    pub fn terminal(&self) -> AnyEvent {
        self.terminal_at(self.closed_ms)
    }

    /// Every event of the order on `orders.events`, in order.
    pub fn events(&self) -> Vec<AnyEvent> {
        let mut events: Vec<AnyEvent> = vec![
            OrderCreated {
                event_id: EventId::new_v7(),
                occurred_at: ts(self.created_ms),
                order_id: self.order_id,
                customer_id: self.customer_id,
                currency: self.currency,
            }
            .into(),
        ];
        let mut total = 0;
        for (i, line) in self.order_lines().into_iter().enumerate() {
            total += self.lines[i].2 * i64::from(self.lines[i].1);
            events.push(
                OrderLineAdded {
                    event_id: EventId::new_v7(),
                    occurred_at: ts(self.created_ms + i as i64 + 1),
                    order_id: self.order_id,
                    quantity_added: line.quantity,
                    line,
                    total: self.money(total),
                }
                .into(),
            );
        }
        events.push(
            OrderPlaced {
                event_id: EventId::new_v7(),
                occurred_at: ts(self.placed_ms()),
                order_id: self.order_id,
                customer_id: self.customer_id,
                lines: self.order_lines(),
                total: self.money(self.total_minor()),
                shipping_address: samples::address(),
                created_at: ts(self.created_ms),
                placed_at: ts(self.placed_ms()),
            }
            .into(),
        );
        if self.reached_confirmed() {
            events.push(
                OrderConfirmed {
                    event_id: EventId::new_v7(),
                    occurred_at: ts(self.confirmed_ms()),
                    order_id: self.order_id,
                    customer_id: self.customer_id,
                    payment_id: self.payment_id(),
                    lines: self.order_lines(),
                    total: self.money(self.total_minor()),
                    shipping_address: samples::address(),
                    confirmed_at: ts(self.confirmed_ms()),
                }
                .into(),
            );
        }
        if self.is_completed() {
            events.push(
                OrderShipped {
                    event_id: EventId::new_v7(),
                    occurred_at: ts(self.shipped_ms()),
                    order_id: self.order_id,
                    shipment_id: self.shipment_id(),
                    carrier: "DHL".into(),
                    tracking_number: format!("JJD{}", self.order_id.as_uuid().simple()),
                    shipped_at: ts(self.shipped_ms()),
                }
                .into(),
            );
        }
        events.push(self.terminal());
        events
    }
}

/// 2026-03-02T00:00:00Z.
pub const MARCH_2: i64 = 1_772_409_600_000;
pub const DAY: i64 = 24 * 60 * MINUTE;
pub const HOUR: i64 = 60 * MINUTE;

/// A varied set of orders over about three weeks of March 2026: three currencies, a handful of
/// customers and products, a product sold at two prices, completions and every kind of
/// cancellation. `n` orders, deterministic but for the ids.
pub fn varied_stories(n: usize) -> Vec<Story> {
    let customers: Vec<CustomerId> = (0..5).map(|_| CustomerId::new_v7()).collect();
    let reasons = [
        (CancellationReason::OutOfStock, OrderStatus::Placed),
        (CancellationReason::PaymentDeclined, OrderStatus::Placed),
        (CancellationReason::CustomerRequest, OrderStatus::Confirmed),
        (CancellationReason::CustomerDeactivated, OrderStatus::Placed),
    ];
    (0..n)
        .map(|i| {
            let currency = match i % 7 {
                5 => Currency::USD,
                6 => Currency::JPY,
                _ => Currency::EUR,
            };
            let mug_price = if i % 2 == 0 { 1_250 } else { 1_100 };
            let lines: Vec<(&str, u32, i64)> = match i % 3 {
                0 => vec![("MUG-CLASSIC", 1 + (i % 4) as u32, mug_price)],
                1 => vec![("TSHIRT-RED-M", 2, 1_999), ("MUG-CLASSIC", 1, mug_price)],
                _ => vec![("POSTER-A2", 3, 750 + (i % 2) as i64 * 50)],
            };
            let outcome = if i % 4 == 3 {
                let (reason, from) = reasons[(i / 4) % reasons.len()];
                Outcome::Cancelled(reason, from)
            } else {
                Outcome::Completed
            };
            let closed =
                MARCH_2 + (i as i64 % 21) * DAY + (i as i64 % 13) * HOUR + i as i64 * 1_000;
            Story::new(
                customers[i % customers.len()],
                currency,
                &lines,
                closed,
                outcome,
            )
        })
        .collect()
}
