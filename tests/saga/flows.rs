//! The saga's outcomes: completed, out of stock, payment declined, cancelled by the customer after
//! payment (through the shipment) or refused after dispatch, cancellations racing dispatches, and
//! many orders racing for the last units.

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
async fn a_customer_cancelling_after_payment_gets_the_shipment_cancelled_a_refund_and_the_stock_back()
 {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 4).await;
    let order_id = place_order(p, &customer, &[(&sku, 3)]).await;
    order_reaches(p, &order_id, "CONFIRMED").await;
    stock_reaches(p, &sku, 4, 3).await;
    let created = shipment_reaches(p, &order_id, "CREATED").await;
    let shipment_id = created["shipment_id"].as_str().unwrap().to_string();

    // A confirmed order has a shipment: the cancel is a request that shipping answers.
    let (status, body) = p
        .post(
            format!("{}/orders/{order_id}/cancel", p.orders),
            serde_json::json!({"reason_detail": "changed my mind"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["cancellation_request"]["detail"], "changed my mind");

    let cancelled = order_reaches(p, &order_id, "CANCELLED").await;
    assert_eq!(cancelled["cancellation"]["cancelled_from"], "CONFIRMED");
    assert_eq!(cancelled["cancellation"]["detail"], "changed my mind");
    assert_eq!(cancelled["cancellation_request"]["outcome"], "CANCELLED");
    let shipment = shipment_reaches(p, &order_id, "CANCELLED").await;
    assert!(shipment["cancelled_at"].is_string(), "{shipment}");
    let refunded = payment_reaches(p, &order_id, "REFUNDED").await;
    let refunds = refunded["refunds"].as_array().expect("refunds");
    assert_eq!(refunds.len(), 1, "{refunded}");
    assert_eq!(refunds[0]["amount"]["amount_minor"], 2_970);
    stock_reaches(p, &sku, 4, 0).await;

    // The carrier can no longer take it, so nothing is committed and the units stay sellable.
    let (status, body) = p
        .post(
            format!("{}/shipments/{shipment_id}/dispatch", p.shipping),
            serde_json::json!({"carrier": "DHL", "tracking_number": unique("JJD")}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("CANCELLED"),
        "{body}"
    );
    let again = product(p, &sku).await;
    assert_eq!(
        (again["on_hand"].as_i64(), again["reserved"].as_i64()),
        (Some(4), Some(0)),
        "{again}"
    );

    // Cancelling again is refused and changes nothing.
    let (status, body) = p
        .post(
            format!("{}/orders/{order_id}/cancel", p.orders),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        payment_reaches(p, &order_id, "REFUNDED").await["refunds"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn a_customer_cannot_cancel_after_dispatch() {
    let p = platform();
    let customer = register_customer(p).await;
    let sku = create_product(p, 990, 4).await;
    let order_id = place_order(p, &customer, &[(&sku, 1)]).await;
    order_reaches(p, &order_id, "CONFIRMED").await;
    let created = shipment_reaches(p, &order_id, "CREATED").await;
    dispatch(p, created["shipment_id"].as_str().unwrap()).await;
    order_reaches(p, &order_id, "SHIPPED").await;

    let (status, body) = p
        .post(
            format!("{}/orders/{order_id}/cancel", p.orders),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "already_dispatched", "{body}");
    assert!(body["message"].as_str().unwrap().contains("DHL"), "{body}");
    stock_reaches(p, &sku, 3, 0).await;
    let payment = payment_reaches(p, &order_id, "SUCCEEDED").await;
    assert_eq!(payment["refunds"], serde_json::json!([]));
}

/// Cancel requests racing the carrier's dispatch: every order ends one way or the other, whole:
/// cancelled (shipment cancelled, refunded, stock released) or shipped (shipment dispatched, no
/// refund, stock committed), never a mix.
#[tokio::test]
async fn cancel_requests_racing_dispatches_never_refund_goods_that_left() {
    let p = platform();
    let customer = register_customer(p).await;
    let rounds = 6;
    let mut orders = Vec::new();
    for _ in 0..rounds {
        let sku = create_product(p, 990, 2).await;
        let order_id = place_order(p, &customer, &[(&sku, 1)]).await;
        orders.push((sku, order_id));
    }
    let mut cancelled = 0;
    for (sku, order_id) in &orders {
        order_reaches(p, order_id, "CONFIRMED").await;
        let created = shipment_reaches(p, order_id, "CREATED").await;
        let shipment_id = created["shipment_id"].as_str().unwrap().to_string();
        let cancel = p.post(
            format!("{}/orders/{order_id}/cancel", p.orders),
            serde_json::json!({}),
        );
        let dispatch = p.post(
            format!("{}/shipments/{shipment_id}/dispatch", p.shipping),
            serde_json::json!({"carrier": "DHL", "tracking_number": unique("JJD")}),
        );
        let ((cancel_status, cancel_body), (dispatch_status, dispatch_body)) =
            tokio::join!(cancel, dispatch);
        assert!(
            cancel_status == 202 || cancel_status == 409,
            "{cancel_status} {cancel_body}"
        );
        if dispatch_status == 200 {
            // The goods left: the order ships, nothing is refunded, the stock is committed.
            order_reaches(p, order_id, "SHIPPED").await;
            stock_reaches(p, sku, 1, 0).await;
            let payment = payment_reaches(p, order_id, "SUCCEEDED").await;
            assert_eq!(payment["refunds"], serde_json::json!([]), "{payment}");
            if cancel_status == 202 {
                let shipped = order(p, order_id).await;
                assert_eq!(
                    shipped["cancellation_request"]["outcome"], "TOO_LATE",
                    "{shipped}"
                );
            }
        } else {
            assert_eq!(dispatch_status, 409, "{dispatch_body}");
            assert_eq!(cancel_status, 202, "{cancel_body}");
            cancelled += 1;
            order_reaches(p, order_id, "CANCELLED").await;
            shipment_reaches(p, order_id, "CANCELLED").await;
            stock_reaches(p, sku, 2, 0).await;
            let refunded = payment_reaches(p, order_id, "REFUNDED").await;
            assert_eq!(refunded["refunds"].as_array().map(Vec::len), Some(1));
        }
    }
    eprintln!("{cancelled} of {rounds} cancelled, the others dispatched first");
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
