//! What a person does with the platform, as test steps: register a customer, create a product, draft
//! and place an order, dispatch and deliver its shipment; and what they can look at: the order, the
//! product's stock, the payment, the shipment. Each step waits for the asynchronous parts it needs
//! (a replica catching up, the saga moving on) and fails naming what it waited for.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::platform::{Platform, eventually};

pub const SAGA: Duration = Duration::from_secs(120);

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..12]).to_uppercase()
}

pub async fn register_customer(p: &Platform) -> String {
    let email = format!("{}@example.org", unique("e2e").to_lowercase());
    let (status, body) = p
        .post(
            format!("{}/customers", p.customers),
            json!({
                "name": "Ada Lovelace",
                "email": email,
                "phone": "+441234567890",
                "shipping_address": {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}
            }),
        )
        .await;
    assert_eq!(status, 201, "register a customer: {body}");
    body["id"].as_str().expect("id").to_string()
}

/// A product with a fresh SKU, priced in EUR; returns the SKU.
pub async fn create_product(p: &Platform, unit_price_minor: i64, on_hand: i64) -> String {
    create_product_in(p, unit_price_minor, on_hand, "EUR").await
}

/// A product with a fresh SKU, priced in `currency`; returns the SKU.
pub async fn create_product_in(
    p: &Platform,
    unit_price_minor: i64,
    on_hand: i64,
    currency: &str,
) -> String {
    let sku = unique("SKU");
    let (status, body) = p
        .post(
            format!("{}/products", p.inventory),
            json!({"sku": sku, "name": format!("Widget {sku}"), "unit_price": {"amount_minor": unit_price_minor, "currency": currency}, "on_hand": on_hand}),
        )
        .await;
    assert_eq!(status, 201, "create a product: {body}");
    sku
}

/// Draft an order in EUR (once the orders service knows the customer), add the lines (once it knows
/// the products) and place it; returns the order id.
pub async fn place_order(p: &Platform, customer_id: &str, lines: &[(&str, u32)]) -> String {
    place_order_in(p, customer_id, lines, "EUR").await
}

/// Like `place_order`, for an order in `currency`.
pub async fn place_order_in(
    p: &Platform,
    customer_id: &str,
    lines: &[(&str, u32)],
    currency: &str,
) -> String {
    let order_id = eventually("the orders service to know the customer", SAGA, || async {
        let (status, body) = p
            .post(
                format!("{}/orders", p.orders),
                json!({"customer_id": customer_id, "currency": currency}),
            )
            .await;
        match status {
            201 => Ok(body["order_id"].as_str().unwrap().to_string()),
            _ => Err(format!("{status} {body}")),
        }
    })
    .await;
    for (sku, quantity) in lines {
        eventually("the orders service to know the product", SAGA, || async {
            let (status, body) = p
                .post(
                    format!("{}/orders/{order_id}/lines", p.orders),
                    json!({"sku": sku, "quantity": quantity}),
                )
                .await;
            if status == 200 {
                Ok(())
            } else {
                Err(format!("{status} {body}"))
            }
        })
        .await;
    }
    let (status, body) = p
        .post(format!("{}/orders/{order_id}/place", p.orders), json!({}))
        .await;
    assert_eq!(status, 200, "place the order: {body}");
    order_id
}

pub async fn order(p: &Platform, order_id: &str) -> Value {
    let (status, body) = p.get(format!("{}/orders/{order_id}", p.orders)).await;
    assert_eq!(status, 200, "get order {order_id}: {body}");
    body
}

/// Wait until the order has `status`; returns it.
pub async fn order_reaches(p: &Platform, order_id: &str, status: &str) -> Value {
    eventually(
        &format!("order {order_id} to be {status}"),
        SAGA,
        || async {
            let body = order(p, order_id).await;
            if body["status"] == status {
                Ok(body)
            } else {
                Err(body.to_string())
            }
        },
    )
    .await
}

pub async fn product(p: &Platform, sku: &str) -> Value {
    let (status, body) = p.get(format!("{}/products/{sku}", p.inventory)).await;
    assert_eq!(status, 200, "get product {sku}: {body}");
    body
}

/// Wait until the product's stock is (on_hand, reserved).
pub async fn stock_reaches(p: &Platform, sku: &str, on_hand: i64, reserved: i64) -> Value {
    eventually(
        &format!("{sku} to have on_hand {on_hand}, reserved {reserved}"),
        SAGA,
        || async {
            let body = product(p, sku).await;
            if body["on_hand"] == on_hand && body["reserved"] == reserved {
                Ok(body)
            } else {
                Err(body.to_string())
            }
        },
    )
    .await
}

/// The order's payment, once there is one with `status`.
pub async fn payment_reaches(p: &Platform, order_id: &str, status: &str) -> Value {
    eventually(
        &format!("the payment of {order_id} to be {status}"),
        SAGA,
        || async {
            let (code, body) = p
                .get(format!("{}/orders/{order_id}/payment", p.payments))
                .await;
            if code == 200 && body["status"] == status {
                Ok(body)
            } else {
                Err(format!("{code} {body}"))
            }
        },
    )
    .await
}

/// The order's shipment, once it exists.
pub async fn shipment(p: &Platform, order_id: &str) -> Value {
    shipment_when(p, order_id, None).await
}

/// The shipment of an order once it has `status`.
pub async fn shipment_reaches(p: &Platform, order_id: &str, status: &str) -> Value {
    shipment_when(p, order_id, Some(status)).await
}

async fn shipment_when(p: &Platform, order_id: &str, status: Option<&str>) -> Value {
    let what = format!(
        "the shipment of {order_id} {}",
        status.unwrap_or("to exist")
    );
    eventually(&what, SAGA, || async {
        let (code, body) = p
            .get(format!("{}/orders/{order_id}/shipment", p.shipping))
            .await;
        if code == 200 && status.is_none_or(|s| body["status"] == s) {
            Ok(body)
        } else {
            Err(format!("{code} {body}"))
        }
    })
    .await
}

pub async fn dispatch(p: &Platform, shipment_id: &str) {
    let (status, body) = p
        .post(
            format!("{}/shipments/{shipment_id}/dispatch", p.shipping),
            json!({"carrier": "DHL", "tracking_number": unique("JJD")}),
        )
        .await;
    assert_eq!(status, 200, "dispatch: {body}");
}

pub async fn deliver(p: &Platform, shipment_id: &str) {
    let (status, body) = p
        .post(
            format!("{}/shipments/{shipment_id}/deliver", p.shipping),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "deliver: {body}");
}
