//! The value types refuse what their domain forbids, both when built in Rust and when decoded
//! from Avro: currencies, money, quantities, stock levels, ids, SKUs, e-mail, phone, country.

use apache_avro::types::Value;
use orderflow_schemas::inventory::ProductRestocked;
use orderflow_schemas::orders::OrderPlaced;
use orderflow_schemas::{
    CountryCode, Currency, Email, Event, Money, OrderId, Phone, Quantity, SchemaError, Sku,
    StockLevel, Timestamp, samples,
};

#[test]
fn currency_is_three_uppercase_ascii_letters() {
    for good in ["EUR", "USD", "JPY", "CHF"] {
        assert_eq!(good.parse::<Currency>().unwrap().as_str(), good);
    }
    for bad in ["", "eur", "Eur", "EU", "EURO", "E1R", "€UR", " EUR", "ÄUR"] {
        let err = bad.parse::<Currency>().unwrap_err();
        assert_eq!(err.kind, "currency", "{bad:?}");
    }
    assert_eq!(Currency::EUR.to_string(), "EUR");
}

#[test]
fn money_is_never_negative_and_never_mixes_currencies() {
    assert!(Money::new(-1, Currency::EUR).is_err());
    assert_eq!(
        Money::new(0, Currency::EUR).unwrap(),
        Money::zero(Currency::EUR)
    );
    let a = Money::new(1999, Currency::EUR).unwrap();
    assert_eq!(a.amount_minor(), 1999);
    assert_eq!(a.to_string(), "1999 EUR");
    assert_eq!(
        a.checked_add(a),
        Some(Money::new(3998, Currency::EUR).unwrap())
    );
    assert_eq!(a.checked_add(Money::zero(Currency::USD)), None);
    assert_eq!(
        Money::new(i64::MAX, Currency::EUR).unwrap().checked_add(a),
        None
    );
    assert_eq!(
        a.checked_mul(Quantity::new(3).unwrap()),
        Some(Money::new(5997, Currency::EUR).unwrap())
    );
}

#[test]
fn quantities_are_positive_and_stock_levels_non_negative() {
    assert!(Quantity::new(0).is_err());
    assert!(Quantity::new(i32::MAX as u32 + 1).is_err());
    assert_eq!(Quantity::new(1).unwrap().get(), 1);
    assert!(Quantity::try_from(-3).is_err());
    assert!(Quantity::try_from(0).is_err());
    assert_eq!(Quantity::try_from(7).unwrap().get(), 7);
    assert_eq!(StockLevel::new(0).unwrap(), StockLevel::ZERO);
    assert!(StockLevel::new(u32::MAX).is_err());
    assert!(StockLevel::try_from(-1).is_err());
}

#[test]
fn ids_skus_and_contact_details_are_parsed() {
    let id: OrderId = "01955a3c-0000-7000-8000-000000000001".parse().unwrap();
    assert_eq!(id.to_string(), "01955a3c-0000-7000-8000-000000000001");
    assert!("not-a-uuid".parse::<OrderId>().is_err());
    assert_ne!(OrderId::new_v7(), OrderId::new_v7());

    assert!("TSHIRT-RED-M".parse::<Sku>().is_ok());
    for bad in ["", "has space", "semi;colon", &"X".repeat(65)] {
        assert!(bad.parse::<Sku>().is_err(), "{bad:?}");
    }
    assert!("ada@example.org".parse::<Email>().is_ok());
    for bad in [
        "",
        "ada",
        "@example.org",
        "ada@",
        "a@b@c",
        "ada @example.org",
    ] {
        assert!(bad.parse::<Email>().is_err(), "{bad:?}");
    }
    assert!("+4930123456".parse::<Phone>().is_ok());
    for bad in [
        "4930123456",
        "+0301234567",
        "+49 30 123456",
        "+1234567",
        "+1234567890123456",
    ] {
        assert!(bad.parse::<Phone>().is_err(), "{bad:?}");
    }
    assert!("DE".parse::<CountryCode>().is_ok());
    for bad in ["de", "DEU", "D", ""] {
        assert!(bad.parse::<CountryCode>().is_err(), "{bad:?}");
    }
}

#[test]
fn timestamps_are_truncated_to_milliseconds() {
    let t = chrono::DateTime::from_timestamp(1_772_442_000, 123_456_789).unwrap();
    let ts = Timestamp::from(t);
    assert_eq!(ts.as_millis(), 1_772_442_000_123);
    assert_eq!(ts.to_string(), "2026-03-02T09:00:00.123Z");
    assert!(Timestamp::from_millis(i64::MAX).is_err());
}

/// Replaces the value at a path of record field names inside a record value.
fn set(value: &mut Value, path: &[&str], new: Value) {
    let Value::Record(fields) = value else {
        panic!("not a record at {path:?}")
    };
    let (_, slot) = fields
        .iter_mut()
        .find(|(n, _)| n == path[0])
        .unwrap_or_else(|| panic!("no field {}", path[0]));
    if path.len() == 1 {
        *slot = new;
    } else {
        let slot = match slot {
            Value::Union(_, inner) => inner.as_mut(),
            Value::Array(items) => &mut items[0],
            other => other,
        };
        set(slot, &path[1..], new);
    }
}

fn assert_refused<E: Event>(value: Value, what: &str) {
    match E::from_value(value.clone()) {
        Err(SchemaError::Decode { event, source }) => {
            assert_eq!(event, E::NAME);
            eprintln!("{what}: refused as expected: {source}");
        }
        other => panic!("{what}: expected a decode error, got {other:?}"),
    }
    // And the same through bytes: a datum written by someone who skipped the rules.
    let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(E::schema())
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .expect("the schema alone allows it");
    assert!(
        E::from_datum(&bytes).is_err(),
        "{what}: accepted from bytes"
    );
}

#[test]
fn decoding_refuses_values_that_break_domain_rules() {
    let good = samples::order_placed().to_value().unwrap();

    let mut v = good.clone();
    set(&mut v, &["total", "currency"], Value::String("eur".into()));
    assert_refused::<OrderPlaced>(v, "lowercase currency");

    let mut v = good.clone();
    set(&mut v, &["total", "currency"], Value::String("EURO".into()));
    assert_refused::<OrderPlaced>(v, "four-letter currency");

    let mut v = good.clone();
    set(&mut v, &["total", "amount_minor"], Value::Long(-1));
    assert_refused::<OrderPlaced>(v, "negative total");

    let mut v = good.clone();
    set(&mut v, &["lines", "quantity"], Value::Int(0));
    assert_refused::<OrderPlaced>(v, "zero quantity");

    let mut v = good.clone();
    set(&mut v, &["lines", "quantity"], Value::Int(-2));
    assert_refused::<OrderPlaced>(v, "negative quantity");

    let mut v = good.clone();
    set(
        &mut v,
        &["lines", "unit_price", "amount_minor"],
        Value::Long(-100),
    );
    assert_refused::<OrderPlaced>(v, "negative unit price");

    let mut v = good.clone();
    set(
        &mut v,
        &["lines", "sku"],
        Value::String("no spaces allowed".into()),
    );
    assert_refused::<OrderPlaced>(v, "bad SKU");

    let mut v = good.clone();
    set(
        &mut v,
        &["shipping_address", "country"],
        Value::String("Germany".into()),
    );
    assert_refused::<OrderPlaced>(v, "bad country");

    let restocked = samples::product_restocked().to_value().unwrap();
    let mut v = restocked.clone();
    set(&mut v, &["on_hand_after"], Value::Int(-5));
    assert_refused::<ProductRestocked>(v, "negative stock level");
}

#[test]
fn decoding_refuses_malformed_uuids() {
    let mut v = samples::order_placed().to_value().unwrap();
    set(&mut v, &["order_id"], Value::String("order-42".into()));
    assert!(matches!(
        OrderPlaced::from_value(v),
        Err(SchemaError::Decode { .. })
    ));
}
