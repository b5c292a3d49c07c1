//! The saga's outcomes: completed, out of stock, payment declined, cancelled by the customer after
//! payment, and many orders racing for the last units.

use crate::shop::*;
use crate::support::platform::platform;

#[tokio::test]
async fn the_happy_path_ends_completed_with_stock_payment_and_shipment_consistent() {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 1_250, 10).await;
    let order_id = place_order(p, &customer, &[(&sku, 2)]).await;

    let confirmed = order_reaches(p, &order_id, "CONFIRMED").await;
    stock_reaches(p, &sku, 10, 2).await;
    let payment = payment_reaches(p, &order_id, "SUCCEEDED").await;
    assert_eq!(payment["amount"]["amount_minor"], 2_500);
    assert_eq!(confirmed["payment_id"], payment["payment_id"]);

    let shipment = shipment(p, &order_id).await;
    assert_eq!(shipment["status"], "CREATED");
    let shipment_id = shipment["shipment_id"].as_str().unwrap().to_string();
    dispatch(p, &shipment_id).await;
    order_reaches(p, &order_id, "SHIPPED").await;
    stock_reaches(p, &sku, 8, 0).await; // committed on dispatch: on hand goes down for good
    deliver(p, &shipment_id).await;
    let completed = order_reaches(p, &order_id, "COMPLETED").await;
    assert_eq!(completed["shipment_id"], shipment["shipment_id"]);
    assert!(
        completed["timeline"]["completed_at"].is_string(),
        "{completed}"
    );
    assert_eq!(
        payment_reaches(p, &order_id, "SUCCEEDED").await["refunds"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn out_of_stock_ends_cancelled_with_no_stock_touched() {
    let p = platform();
    let customer = register_customer(p).await;
    let plenty = create_product(p, 500, 10).await;
    let scarce = create_product(p, 700, 1).await;
    let order_id = place_order(p, &customer, &[(&plenty, 1), (&scarce, 2)]).await;

    let cancelled = order_reaches(p, &order_id, "CANCELLED").await;
    assert_eq!(
        cancelled["cancellation"]["reason"], "OUT_OF_STOCK",
        "{cancelled}"
    );
    assert_eq!(cancelled["cancellation"]["cancelled_from"], "PLACED");
    // all or none: not even the line that was available is held
    let plenty_now = product(p, &plenty).await;
    assert_eq!(
        (
            plenty_now["on_hand"].as_i64(),
            plenty_now["reserved"].as_i64()
        ),
        (Some(10), Some(0))
    );
    let scarce_now = product(p, &scarce).await;
    assert_eq!(
        (
            scarce_now["on_hand"].as_i64(),
            scarce_now["reserved"].as_i64()
        ),
        (Some(1), Some(0))
    );
    let (status, _) = p
        .get(format!("{}/orders/{order_id}/payment", p.payments))
        .await;
    assert_eq!(status, 404, "no payment is taken for an order out of stock");
}

#[tokio::test]
async fn a_declined_payment_ends_cancelled_with_the_reservation_released() {
    let p = platform();
    let customer = register_customer(p).await;
    // The mock gateway declines amounts whose minor units end in 13 (ORDERFLOW_PAYMENTS_TEST_AMOUNTS).
    let sku = create_product(p, 613, 5).await;
    let order_id = place_order(p, &customer, &[(&sku, 1)]).await;

    let cancelled = order_reaches(p, &order_id, "CANCELLED").await;
    assert_eq!(
        cancelled["cancellation"]["reason"], "PAYMENT_DECLINED",
        "{cancelled}"
    );
    let payment = payment_reaches(p, &order_id, "DECLINED").await;
    assert_eq!(payment["decline_reason"], "CARD_DECLINED");
    stock_reaches(p, &sku, 5, 0).await;
}

#[tokio::test]
async fn a_customer_cancelling_after_payment_gets_a_refund_and_the_stock_back() {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 4).await;
    let order_id = place_order(p, &customer, &[(&sku, 3)]).await;
    order_reaches(p, &order_id, "CONFIRMED").await;
    stock_reaches(p, &sku, 4, 3).await;

    let (status, body) = p
        .post(
            format!("{}/orders/{order_id}/cancel", p.orders),
            serde_json::json!({"reason_detail": "changed my mind"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancellation"]["cancelled_from"], "CONFIRMED");

    let refunded = payment_reaches(p, &order_id, "REFUNDED").await;
    let refunds = refunded["refunds"].as_array().expect("refunds");
    assert_eq!(refunds.len(), 1, "{refunded}");
    assert_eq!(refunds[0]["amount"]["amount_minor"], 2_970);
    stock_reaches(p, &sku, 4, 0).await;

    // Cancelling again is refused and changes nothing.
    let (status, body) = p
        .post(
            format!("{}/orders/{order_id}/cancel", p.orders),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn concurrent_orders_racing_for_the_last_units_never_oversell() {
    let p = platform();
    let sku = create_product(p, 400, 5).await;
    let mut customers = Vec::new();
    for _ in 0..12 {
        customers.push(register_customer(p).await);
    }
    let placed = futures::future::join_all(customers.iter().map(|c| {
        let sku = sku.clone();
        async move { place_order(p, c, &[(&sku, 1)]).await }
    }))
    .await;

    let mut confirmed = 0;
    let mut out_of_stock = 0;
    for order_id in &placed {
        let settled = crate::support::platform::eventually(
            &format!("order {order_id} to settle"),
            SAGA,
            || async {
                let body = order(p, order_id).await;
                match body["status"].as_str() {
                    Some("CONFIRMED") | Some("CANCELLED") => Ok(body),
                    _ => Err(body.to_string()),
                }
            },
        )
        .await;
        match settled["status"].as_str() {
            Some("CONFIRMED") => confirmed += 1,
            _ => {
                assert_eq!(
                    settled["cancellation"]["reason"], "OUT_OF_STOCK",
                    "{settled}"
                );
                out_of_stock += 1;
            }
        }
    }
    assert_eq!((confirmed, out_of_stock), (5, 7));
    stock_reaches(p, &sku, 5, 5).await;
}
