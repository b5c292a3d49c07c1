//! Every Rust event type round-trips through its own schema: struct -> Avro value -> datum bytes
//! -> Avro value -> struct gives back an equal struct, and the struct has exactly the schema's
//! fields (nothing silently dropped or defaulted).

use apache_avro::schema::{ResolvedSchema, Schema};
use apache_avro::types::Value;
use orderflow_schemas::orders::{OrderPlaced, OrdersEvent};
use orderflow_schemas::samples;
use orderflow_schemas::{AnyEvent, Event, SchemaError};

/// Checks that `value` (the plain serde serialization of a Rust event) has, at every record
/// level, exactly the fields of `schema`, in order.
fn assert_same_shape(path: &str, value: &Value, schema: &Schema, resolved: &ResolvedSchema) {
    match schema {
        Schema::Ref { name } => {
            let target = resolved
                .get_names()
                .get(name)
                .unwrap_or_else(|| panic!("{path}: unresolved reference {name:?}"));
            assert_same_shape(path, value, target, resolved)
        }
        Schema::Record(record) => {
            let Value::Record(fields) = value else {
                panic!("{path}: expected a record, got {value:?}")
            };
            let rust: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
            let avro: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(rust, avro, "{path}: Rust fields vs {} fields", record.name);
            for ((name, v), field) in fields.iter().zip(&record.fields) {
                assert_same_shape(&format!("{path}.{name}"), v, &field.schema, resolved);
            }
        }
        Schema::Array(array) => {
            let Value::Array(items) = value else {
                panic!("{path}: expected an array, got {value:?}")
            };
            for (i, item) in items.iter().enumerate() {
                assert_same_shape(&format!("{path}[{i}]"), item, &array.items, resolved);
            }
        }
        Schema::Union(union) => {
            let inner = match value {
                Value::Union(_, inner) => inner.as_ref(),
                other => other,
            };
            if *inner == Value::Null {
                assert!(
                    union.variants().contains(&Schema::Null),
                    "{path}: None for a union without null"
                );
            } else {
                let branch = union
                    .variants()
                    .iter()
                    .find(|s| **s != Schema::Null)
                    .expect("a non-null branch");
                assert_same_shape(path, inner, branch, resolved);
            }
        }
        _ => {}
    }
}

fn round_trip<E: Event>(event: &E) {
    // Exactly the schema's fields.
    let plain = apache_avro::to_value(event).expect("serde serialization");
    let resolved = ResolvedSchema::try_from(E::schema()).expect("schema resolves");
    assert_same_shape(E::NAME, &plain, E::schema(), &resolved);

    // Value round trip, validated.
    let value = event.to_value().expect("to_value");
    assert!(
        value.validate(E::schema()),
        "{}: value does not validate",
        E::NAME
    );
    assert_eq!(
        &E::from_value(value.clone()).expect("from_value"),
        event,
        "{}",
        E::NAME
    );

    // Datum round trip.
    let bytes = event.to_datum().expect("to_datum");
    assert!(!bytes.is_empty());
    let back = E::from_datum(&bytes).unwrap_or_else(|e| panic!("{}: from_datum: {e}", E::NAME));
    assert_eq!(&back, event, "{}: datum round trip", E::NAME);

    // Dispatch by name gives the same event, typed.
    let any = AnyEvent::from_datum(E::NAME, &bytes).expect("AnyEvent::from_datum");
    assert_eq!(any.name(), E::NAME);
    assert_eq!(any.topic(), E::TOPIC);
    assert_eq!(any.to_value().expect("to_value"), value);
    assert_eq!(
        AnyEvent::from_value(E::NAME, value).expect("from_value"),
        any
    );
    assert_eq!(any.event_id(), event.event_id());
    assert_eq!(any.occurred_at(), event.occurred_at());
    assert_eq!(any.key(), event.key());
}

macro_rules! round_trip_tests {
    ($($test:ident: $sample:path => $ty:ty),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                let event: $ty = $sample();
                round_trip(&event);
            }
        )+
    };
}

round_trip_tests! {
    order_placed: samples::order_placed => orderflow_schemas::orders::OrderPlaced,
    order_confirmed: samples::order_confirmed => orderflow_schemas::orders::OrderConfirmed,
    order_shipped: samples::order_shipped => orderflow_schemas::orders::OrderShipped,
    order_completed: samples::order_completed => orderflow_schemas::orders::OrderCompleted,
    order_cancelled: samples::order_cancelled => orderflow_schemas::orders::OrderCancelled,
    product_created: samples::product_created => orderflow_schemas::inventory::ProductCreated,
    product_restocked: samples::product_restocked => orderflow_schemas::inventory::ProductRestocked,
    stock_reserved: samples::stock_reserved => orderflow_schemas::inventory::StockReserved,
    stock_rejected: samples::stock_rejected => orderflow_schemas::inventory::StockRejected,
    stock_released: samples::stock_released => orderflow_schemas::inventory::StockReleased,
    stock_committed: samples::stock_committed => orderflow_schemas::inventory::StockCommitted,
    payment_succeeded: samples::payment_succeeded => orderflow_schemas::payments::PaymentSucceeded,
    payment_declined: samples::payment_declined => orderflow_schemas::payments::PaymentDeclined,
    payment_refunded: samples::payment_refunded => orderflow_schemas::payments::PaymentRefunded,
    shipment_created: samples::shipment_created => orderflow_schemas::shipping::ShipmentCreated,
    shipment_dispatched: samples::shipment_dispatched => orderflow_schemas::shipping::ShipmentDispatched,
    shipment_delivered: samples::shipment_delivered => orderflow_schemas::shipping::ShipmentDelivered,
    shipment_cancelled: samples::shipment_cancelled => orderflow_schemas::shipping::ShipmentCancelled,
    order_cancellation_requested: samples::order_cancellation_requested => orderflow_schemas::orders::OrderCancellationRequested,
    customer_registered: samples::customer_registered => orderflow_schemas::customers::CustomerRegistered,
    customer_deactivated: samples::customer_deactivated => orderflow_schemas::customers::CustomerDeactivated,
}

#[test]
fn every_sample_round_trips_through_any_event() {
    let all = samples::all();
    assert_eq!(all.len(), 24);
    for event in all {
        let bytes = event.to_datum().expect("to_datum");
        let back = AnyEvent::from_datum(event.name(), &bytes).expect("from_datum");
        assert_eq!(back, event);
    }
}

#[test]
fn optional_fields_round_trip_when_absent() {
    let mut event = samples::customer_registered();
    event.phone = None;
    event.shipping_address.line2 = None;
    event.shipping_address.region = None;
    round_trip(&event);
    let mut event = samples::customer_deactivated();
    event.reason = Some("requested by the customer (GDPR erasure)".into());
    round_trip(&event);
}

#[test]
fn timestamps_travel_as_timestamp_millis_and_ids_as_uuid_strings() {
    let event = samples::order_placed();
    let Value::Record(fields) = event.to_value().unwrap() else {
        panic!("not a record")
    };
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(
        field("occurred_at"),
        Value::TimestampMillis(event.occurred_at.as_millis())
    );
    assert_eq!(field("order_id"), Value::Uuid(event.order_id.as_uuid()));
    // A plain long and a plain string are accepted on the way in too (as from a writer that
    // did not use the logical types).
    let mut plain = Vec::new();
    for (name, value) in fields {
        let value = match value {
            Value::TimestampMillis(t) => Value::Long(t),
            Value::Uuid(u) => Value::String(u.to_string()),
            v => v,
        };
        plain.push((name, value));
    }
    assert_eq!(
        OrderPlaced::from_value(Value::Record(plain)).unwrap(),
        event
    );
}

#[test]
fn decoding_refuses_the_wrong_event_and_unknown_names() {
    let placed = samples::order_placed();
    let value = placed.to_value().unwrap();
    match OrdersEvent::from_value("orderflow.inventory.StockReserved", value.clone()) {
        Err(SchemaError::UnexpectedEvent { found, .. }) => {
            assert_eq!(found, "orderflow.inventory.StockReserved")
        }
        other => panic!("expected UnexpectedEvent, got {other:?}"),
    }
    match AnyEvent::from_value("orderflow.orders.OrderTeleported", value.clone()) {
        Err(SchemaError::UnknownEvent { name }) => {
            assert_eq!(name, "orderflow.orders.OrderTeleported")
        }
        other => panic!("expected UnknownEvent, got {other:?}"),
    }
    // An OrderPlaced value is not a valid StockReserved.
    assert!(matches!(
        AnyEvent::from_value("orderflow.inventory.StockReserved", value),
        Err(SchemaError::Decode { .. })
    ));
    // Bytes of one event are not another event, and leftovers are refused.
    let mut bytes = placed.to_datum().unwrap();
    assert!(orderflow_schemas::shipping::ShipmentDelivered::from_datum(&bytes).is_err());
    bytes.push(0);
    assert!(matches!(
        OrderPlaced::from_datum(&bytes),
        Err(SchemaError::TrailingBytes { count: 1, .. })
    ));
    assert!(OrderPlaced::from_datum(&[]).is_err());
}

#[test]
fn keys_are_the_aggregate_ids() {
    assert_eq!(
        samples::order_placed().key(),
        samples::order_id().to_string()
    );
    assert_eq!(
        samples::order_completed().key(),
        samples::order_id().to_string()
    );
    assert_eq!(
        samples::order_cancelled().key(),
        samples::cancelled_order_id().to_string()
    );
    assert_eq!(samples::product_created().key(), "TSHIRT-RED-M");
    assert_eq!(
        samples::customer_registered().key(),
        samples::customer_id().to_string()
    );
    assert_eq!(
        samples::order_placed().key(),
        "01955a3c-0000-7000-8000-000000000001"
    );
}

#[test]
fn sample_totals_add_up() {
    let completed = samples::order_completed().order;
    let cancelled = samples::order_cancelled().order;
    let placed = samples::order_placed();
    let confirmed = samples::order_confirmed();
    for (lines, total) in [
        (&placed.lines, placed.total),
        (&confirmed.lines, confirmed.total),
        (&completed.lines, completed.total),
        (&cancelled.lines, cancelled.total),
    ] {
        let sum = lines
            .iter()
            .map(|l| l.line_total().unwrap())
            .try_fold(orderflow_schemas::Money::zero(total.currency()), |a, b| {
                a.checked_add(b)
            });
        assert_eq!(sum, Some(total));
    }
}
