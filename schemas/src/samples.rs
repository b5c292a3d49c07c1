//! Realistic sample events, one of every type, telling one order's story (plus a cancelled one),
//! for tests and demos in any crate of the workspace.

use uuid::Uuid;

use crate::catalog::AnyEvent;
use crate::contact::Address;
use crate::customers::{CustomerDeactivated, CustomerRegistered};
use crate::ids::{CustomerId, EventId, OrderId, PaymentId, RefundId, ShipmentId, Sku};
use crate::inventory::{
    ProductCreated, ProductRestocked, StockCommitted, StockLine, StockRejected, StockReleased,
    StockReserved, StockShortage,
};
use crate::money::{Currency, Money};
use crate::orders::{
    CancellationReason, OrderCancellationRequested, OrderCancelled, OrderCompleted, OrderConfirmed,
    OrderCreated, OrderLine, OrderLineAdded, OrderLineRemoved, OrderPlaced, OrderShipped,
    OrderSnapshot, OrderStatus, OrderTimeline,
};
use crate::payments::{DeclineReason, PaymentDeclined, PaymentRefunded, PaymentSucceeded};
use crate::quantity::{Quantity, StockLevel};
use crate::shipping::{ShipmentCancelled, ShipmentCreated, ShipmentDelivered, ShipmentDispatched};
use crate::time::Timestamp;

/// 2026-03-02T09:00:00.000Z, the moment the sample order is created.
const T0: i64 = 1_772_442_000_000;

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_millis(T0 + minutes * 60_000 + 123).expect("in range")
}

fn id(n: u128) -> Uuid {
    // Fixed, valid v7-shaped UUIDs so samples are reproducible.
    Uuid::from_u128(0x0195_5a3c_0000_7000_8000_0000_0000_0000 | n)
}

fn event_id(n: u128) -> EventId {
    EventId::from_uuid(id(0xe000 + n))
}

/// The sample order's id.
pub fn order_id() -> OrderId {
    OrderId::from_uuid(id(0x0001))
}

/// The cancelled sample order's id.
pub fn cancelled_order_id() -> OrderId {
    OrderId::from_uuid(id(0x0002))
}

/// The sample customer's id.
pub fn customer_id() -> CustomerId {
    CustomerId::from_uuid(id(0x00c1))
}

fn payment_id() -> PaymentId {
    PaymentId::from_uuid(id(0x00a1))
}

fn shipment_id() -> ShipmentId {
    ShipmentId::from_uuid(id(0x005e))
}

fn sku(s: &str) -> Sku {
    s.parse().expect("valid sample SKU")
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR).expect("non-negative")
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).expect("positive")
}

/// The sample customer's address (with every optional part filled in).
pub fn address() -> Address {
    Address {
        recipient: "Ada Lovelace".into(),
        line1: "Friedrichstraße 123".into(),
        line2: Some("3. OG, c/o Byron".into()),
        city: "Berlin".into(),
        region: Some("Berlin".into()),
        postal_code: "10117".into(),
        country: "DE".parse().expect("valid country"),
    }
}

fn lines() -> Vec<OrderLine> {
    vec![
        OrderLine {
            sku: sku("TSHIRT-RED-M"),
            quantity: qty(2),
            unit_price: eur(1_999),
        },
        OrderLine {
            sku: sku("MUG-CLASSIC"),
            quantity: qty(1),
            unit_price: eur(1_250),
        },
    ]
}

fn total() -> Money {
    eur(2 * 1_999 + 1_250)
}

fn stock_lines() -> Vec<StockLine> {
    lines()
        .into_iter()
        .map(|l| StockLine {
            sku: l.sku,
            quantity: l.quantity,
        })
        .collect()
}

/// `CustomerRegistered` for the sample customer.
pub fn customer_registered() -> CustomerRegistered {
    CustomerRegistered {
        event_id: event_id(1),
        occurred_at: at(-60 * 24),
        customer_id: customer_id(),
        name: "Ada Lovelace".into(),
        email: "ada@example.org".parse().expect("valid"),
        phone: Some("+4930123456789".parse().expect("valid")),
        shipping_address: address(),
    }
}

/// `CustomerDeactivated` with no reason given.
pub fn customer_deactivated() -> CustomerDeactivated {
    CustomerDeactivated {
        event_id: event_id(2),
        occurred_at: at(60 * 24 * 30),
        customer_id: customer_id(),
        reason: None,
    }
}

/// `ProductCreated` for one of the sample order's products.
pub fn product_created() -> ProductCreated {
    ProductCreated {
        event_id: event_id(3),
        occurred_at: at(-60 * 48),
        sku: sku("TSHIRT-RED-M"),
        name: "T-shirt, red, M".into(),
        description: Some("Organic cotton, 180 g/m².".into()),
        unit_price: eur(1_999),
        on_hand: StockLevel::new(40).expect("in range"),
    }
}

/// `ProductRestocked`.
pub fn product_restocked() -> ProductRestocked {
    ProductRestocked {
        event_id: event_id(4),
        occurred_at: at(-60 * 24),
        sku: sku("MUG-CLASSIC"),
        quantity_added: qty(24),
        on_hand_after: StockLevel::new(30).expect("in range"),
    }
}

/// `OrderCreated`: the sample order starts as an empty EUR draft.
pub fn order_created() -> OrderCreated {
    OrderCreated {
        event_id: event_id(7),
        occurred_at: at(0),
        order_id: order_id(),
        customer_id: customer_id(),
        currency: Currency::EUR,
    }
}

/// `OrderLineAdded`: the sample order's second line, a mug, joins the two T-shirts.
pub fn order_line_added() -> OrderLineAdded {
    OrderLineAdded {
        event_id: event_id(8),
        occurred_at: at(2),
        order_id: order_id(),
        line: lines()[1].clone(),
        quantity_added: qty(1),
        total: total(),
    }
}

/// `OrderLineRemoved`: socks, added to the sample draft on a whim, are taken out again.
pub fn order_line_removed() -> OrderLineRemoved {
    OrderLineRemoved {
        event_id: event_id(9),
        occurred_at: at(3),
        order_id: order_id(),
        sku: sku("SOCKS-GREY-42"),
        total: total(),
    }
}

/// `OrderPlaced` for the sample order.
pub fn order_placed() -> OrderPlaced {
    OrderPlaced {
        event_id: event_id(10),
        occurred_at: at(5),
        order_id: order_id(),
        customer_id: customer_id(),
        lines: lines(),
        total: total(),
        shipping_address: address(),
        created_at: at(0),
        placed_at: at(5),
    }
}

/// `StockReserved` for the sample order.
pub fn stock_reserved() -> StockReserved {
    StockReserved {
        event_id: event_id(11),
        occurred_at: at(6),
        order_id: order_id(),
        customer_id: customer_id(),
        lines: stock_lines(),
        amount_to_charge: total(),
    }
}

/// `PaymentSucceeded` for the sample order.
pub fn payment_succeeded() -> PaymentSucceeded {
    PaymentSucceeded {
        event_id: event_id(12),
        occurred_at: at(7),
        payment_id: payment_id(),
        order_id: order_id(),
        customer_id: customer_id(),
        amount: total(),
        gateway_reference: "mockpay_ch_000042".into(),
    }
}

/// `OrderConfirmed` for the sample order.
pub fn order_confirmed() -> OrderConfirmed {
    OrderConfirmed {
        event_id: event_id(13),
        occurred_at: at(8),
        order_id: order_id(),
        customer_id: customer_id(),
        payment_id: payment_id(),
        lines: lines(),
        total: total(),
        shipping_address: address(),
        confirmed_at: at(8),
    }
}

/// `ShipmentCreated` for the sample order.
pub fn shipment_created() -> ShipmentCreated {
    ShipmentCreated {
        event_id: event_id(14),
        occurred_at: at(9),
        shipment_id: shipment_id(),
        order_id: order_id(),
        address: address(),
    }
}

/// `ShipmentDispatched` for the sample order.
pub fn shipment_dispatched() -> ShipmentDispatched {
    ShipmentDispatched {
        event_id: event_id(15),
        occurred_at: at(60),
        shipment_id: shipment_id(),
        order_id: order_id(),
        carrier: "DHL".into(),
        tracking_number: "JJD0099887766554433".into(),
    }
}

/// `StockCommitted` for the sample order.
pub fn stock_committed() -> StockCommitted {
    StockCommitted {
        event_id: event_id(16),
        occurred_at: at(61),
        order_id: order_id(),
        lines: stock_lines(),
    }
}

/// `OrderShipped` for the sample order.
pub fn order_shipped() -> OrderShipped {
    OrderShipped {
        event_id: event_id(17),
        occurred_at: at(61),
        order_id: order_id(),
        shipment_id: shipment_id(),
        carrier: "DHL".into(),
        tracking_number: "JJD0099887766554433".into(),
        shipped_at: at(60),
    }
}

/// `ShipmentDelivered` for the sample order.
pub fn shipment_delivered() -> ShipmentDelivered {
    ShipmentDelivered {
        event_id: event_id(18),
        occurred_at: at(60 * 26),
        shipment_id: shipment_id(),
        order_id: order_id(),
    }
}

/// `OrderCancellationRequested` for the sample order, while it is CONFIRMED.
pub fn order_cancellation_requested() -> OrderCancellationRequested {
    OrderCancellationRequested {
        event_id: event_id(25),
        occurred_at: at(60 * 20),
        order_id: order_id(),
        customer_id: customer_id(),
        detail: "ordered the wrong size".into(),
    }
}

/// `ShipmentCancelled` for the sample order's shipment.
pub fn shipment_cancelled() -> ShipmentCancelled {
    ShipmentCancelled {
        event_id: event_id(26),
        occurred_at: at(60 * 20 + 1),
        shipment_id: shipment_id(),
        order_id: order_id(),
    }
}

/// `OrderCompleted` for the sample order, with its full snapshot.
pub fn order_completed() -> OrderCompleted {
    OrderCompleted {
        event_id: event_id(19),
        occurred_at: at(60 * 26 + 1),
        order: OrderSnapshot {
            order_id: order_id(),
            customer_id: customer_id(),
            status: OrderStatus::Completed,
            lines: lines(),
            total: total(),
            shipping_address: Some(address()),
            payment_id: Some(payment_id()),
            shipment_id: Some(shipment_id()),
            carrier: Some("DHL".into()),
            tracking_number: Some("JJD0099887766554433".into()),
            timeline: OrderTimeline {
                created_at: at(0),
                placed_at: Some(at(5)),
                confirmed_at: Some(at(8)),
                shipped_at: Some(at(60)),
                completed_at: Some(at(60 * 26 + 1)),
                cancelled_at: None,
            },
        },
    }
}

/// `StockRejected` for the cancelled sample order.
pub fn stock_rejected() -> StockRejected {
    StockRejected {
        event_id: event_id(20),
        occurred_at: at(31),
        order_id: cancelled_order_id(),
        shortages: vec![StockShortage {
            sku: sku("MUG-CLASSIC"),
            requested: qty(5),
            available: StockLevel::new(3).expect("in range"),
        }],
    }
}

/// `PaymentDeclined` (for a third order, declined by the gateway).
pub fn payment_declined() -> PaymentDeclined {
    PaymentDeclined {
        event_id: event_id(21),
        occurred_at: at(40),
        payment_id: PaymentId::from_uuid(id(0x00a2)),
        order_id: OrderId::from_uuid(id(0x0003)),
        customer_id: customer_id(),
        amount: Money::new(150_000, Currency::JPY).expect("non-negative"),
        reason: DeclineReason::InsufficientFunds,
        detail: "issuer: insufficient funds".into(),
    }
}

/// `OrderCancelled` for the cancelled sample order (out of stock), with its full snapshot.
pub fn order_cancelled() -> OrderCancelled {
    OrderCancelled {
        event_id: event_id(22),
        occurred_at: at(32),
        reason: CancellationReason::OutOfStock,
        detail: "MUG-CLASSIC: requested 5, available 3".into(),
        cancelled_from: OrderStatus::Placed,
        order: OrderSnapshot {
            order_id: cancelled_order_id(),
            customer_id: customer_id(),
            status: OrderStatus::Cancelled,
            lines: vec![OrderLine {
                sku: sku("MUG-CLASSIC"),
                quantity: qty(5),
                unit_price: eur(1_250),
            }],
            total: eur(6_250),
            shipping_address: Some(Address {
                line2: None,
                region: None,
                ..address()
            }),
            payment_id: None,
            shipment_id: None,
            carrier: None,
            tracking_number: None,
            timeline: OrderTimeline {
                created_at: at(20),
                placed_at: Some(at(30)),
                confirmed_at: None,
                shipped_at: None,
                completed_at: None,
                cancelled_at: Some(at(32)),
            },
        },
    }
}

/// `StockReleased` (compensation for an order cancelled after its stock was reserved).
pub fn stock_released() -> StockReleased {
    StockReleased {
        event_id: event_id(23),
        occurred_at: at(50),
        order_id: OrderId::from_uuid(id(0x0004)),
        lines: stock_lines(),
    }
}

/// `PaymentRefunded` (compensation for an order cancelled after it was charged).
pub fn payment_refunded() -> PaymentRefunded {
    PaymentRefunded {
        event_id: event_id(24),
        occurred_at: at(51),
        refund_id: RefundId::from_uuid(id(0x00f1)),
        payment_id: PaymentId::from_uuid(id(0x00a4)),
        order_id: OrderId::from_uuid(id(0x0004)),
        amount: total(),
        gateway_reference: "mockpay_re_000007".into(),
    }
}

/// One sample of every event type.
pub fn all() -> Vec<AnyEvent> {
    vec![
        customer_registered().into(),
        customer_deactivated().into(),
        product_created().into(),
        product_restocked().into(),
        order_created().into(),
        order_line_added().into(),
        order_line_removed().into(),
        order_placed().into(),
        stock_reserved().into(),
        payment_succeeded().into(),
        order_confirmed().into(),
        shipment_created().into(),
        shipment_dispatched().into(),
        stock_committed().into(),
        order_shipped().into(),
        shipment_delivered().into(),
        order_completed().into(),
        stock_rejected().into(),
        payment_declined().into(),
        order_cancelled().into(),
        stock_released().into(),
        payment_refunded().into(),
        order_cancellation_requested().into(),
        shipment_cancelled().into(),
    ]
}
