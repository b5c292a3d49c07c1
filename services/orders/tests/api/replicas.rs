//! The customer and product replicas as the reactions will feed them: from the events, newest state
//! wins, and a late, older event changes nothing.

use orderflow_orders::replicas::{self, Product};
use orderflow_schemas::{Currency, Timestamp, samples};

use crate::support::*;

#[tokio::test]
async fn customer_events_fill_and_deactivate_the_replica() {
    let svc = start().await;
    let mut conn = svc.pool().acquire().await.unwrap();
    let registered = samples::customer_registered();
    assert!(
        replicas::apply_customer_registered(&mut conn, &registered)
            .await
            .unwrap()
    );
    let customer = replicas::find_customer(&mut conn, registered.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert!(customer.active);
    assert_eq!(customer.shipping_address, samples::address());

    // Deactivation (later) applies; replaying the older registration does not undo it.
    let deactivated = samples::customer_deactivated();
    assert!(
        replicas::apply_customer_deactivated(&mut conn, &deactivated)
            .await
            .unwrap()
    );
    assert!(
        !replicas::apply_customer_registered(&mut conn, &registered)
            .await
            .unwrap()
    );
    let customer = replicas::find_customer(&mut conn, registered.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!customer.active);
    drop(conn);

    // And orders refuses the customer now.
    let (status, body) = svc
        .post(
            "/orders",
            serde_json::json!({"customer_id": registered.customer_id.to_string()}),
        )
        .await;
    assert_eq!(
        status,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "{body}"
    );
    assert_eq!(body["field"], "customer_id");
    svc.finish().await;
}

#[tokio::test]
async fn product_events_fill_the_replica_newest_first() {
    let svc = start().await;
    let mut conn = svc.pool().acquire().await.unwrap();
    let created = samples::product_created();
    assert!(
        replicas::apply_product_created(&mut conn, &created)
            .await
            .unwrap()
    );
    let product = replicas::find_product(&mut conn, &created.sku)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(product, Product::from(&created));

    let older = Timestamp::from_millis(created.occurred_at.as_millis() - 1).unwrap();
    let stale = Product {
        unit_price: money(1, Currency::EUR),
        ..product.clone()
    };
    assert!(
        !replicas::upsert_product(&mut conn, &stale, older)
            .await
            .unwrap()
    );
    assert_eq!(
        replicas::find_product(&mut conn, &created.sku)
            .await
            .unwrap()
            .unwrap(),
        product
    );
    assert_eq!(svc.count("outbox").await, 0, "replicas publish nothing");
    drop(conn);
    svc.finish().await;
}
