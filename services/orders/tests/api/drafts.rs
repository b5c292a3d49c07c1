//! Editing a draft: create it, add lines (a repeated SKU grows its line), remove lines. Each write:
//! the response, the rows, and exactly one outbox event decoded through the registry.

use axum::http::StatusCode;
use orderflow_schemas::orders::{OrderCreated, OrderLineAdded, OrderLineRemoved};
use orderflow_schemas::{Currency, OrderId};
use serde_json::json;
use sqlx::Row;

use crate::support::*;

#[tokio::test]
async fn creating_a_draft_writes_the_order_and_order_created() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    let before = svc.outbox_rows().await.len();

    let (status, body) = svc
        .post("/orders", json!({"customer_id": customer.to_string()}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "DRAFT");
    assert_eq!(body["customer_id"], customer.to_string());
    assert_eq!(body["currency"], "EUR", "the configured default");
    assert_eq!(body["lines"], json!([]));
    assert_eq!(body["total"], json!({"amount_minor": 0, "currency": "EUR"}));
    assert!(body["timeline"]["created_at"].is_string());
    assert_eq!(body["timeline"]["placed_at"], json!(null));
    assert_eq!(body["shipping_address"], json!(null));
    let order_id: OrderId = body["order_id"].as_str().unwrap().parse().unwrap();

    assert_eq!(svc.count("orders").await, 1);
    assert_eq!(stored_status(&svc, order_id).await, "DRAFT");
    let event: OrderCreated = svc.single_new_event(before).await;
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.customer_id, customer);
    assert_eq!(event.currency, Currency::EUR);
    svc.finish().await;
}

#[tokio::test]
async fn a_draft_may_name_its_currency() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    let before = svc.outbox_rows().await.len();
    let (status, body) = svc
        .post(
            "/orders",
            json!({"customer_id": customer.to_string(), "currency": "USD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["currency"], "USD");
    let event: OrderCreated = svc.single_new_event(before).await;
    assert_eq!(event.currency, Currency::USD);
    svc.finish().await;
}

#[tokio::test]
async fn adding_a_line_captures_the_price_and_writes_order_line_added() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    seed_product(&svc, "TSHIRT", 1_999, Currency::EUR).await;
    let order_id = create_draft(&svc, customer).await;
    let before = svc.outbox_rows().await.len();

    let (status, body) = svc
        .post(
            &format!("/orders/{order_id}/lines"),
            json!({"sku": "TSHIRT", "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["lines"],
        json!([{
            "sku": "TSHIRT",
            "product_name": "Product TSHIRT",
            "quantity": 2,
            "unit_price": {"amount_minor": 1999, "currency": "EUR"},
            "line_total": {"amount_minor": 3998, "currency": "EUR"},
        }])
    );
    assert_eq!(body["total"]["amount_minor"], 3998);

    let row = sqlx::query("SELECT quantity, unit_price_minor, currency FROM order_lines")
        .fetch_one(svc.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<i32, _>("quantity"), 2);
    assert_eq!(row.get::<i64, _>("unit_price_minor"), 1_999);
    let total: i64 = sqlx::query_scalar("SELECT total_minor FROM orders")
        .fetch_one(svc.pool())
        .await
        .unwrap();
    assert_eq!(total, 3_998);

    let event: OrderLineAdded = svc.single_new_event(before).await;
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.line.sku.as_str(), "TSHIRT");
    assert_eq!(event.line.quantity.get(), 2);
    assert_eq!(event.line.unit_price, money(1_999, Currency::EUR));
    assert_eq!(event.quantity_added.get(), 2);
    assert_eq!(event.total, money(3_998, Currency::EUR));
    svc.finish().await;
}

#[tokio::test]
async fn adding_a_sku_again_grows_its_line_at_the_captured_price() {
    let svc = start().await;
    let customer = seed_customer(&svc, true).await;
    seed_product(&svc, "TSHIRT", 1_999, Currency::EUR).await;
    let order_id = create_draft(&svc, customer).await;
    add_line(&svc, order_id, "TSHIRT", 2).await;
    // The list price changes; the line keeps the price it was added at.
    seed_product(&svc, "TSHIRT", 2_500, Currency::EUR).await;
    let before = svc.outbox_rows().await.len();

    let body = add_line(&svc, order_id, "TSHIRT", 3).await;
    assert_eq!(body["lines"].as_array().unwrap().len(), 1);
    assert_eq!(body["lines"][0]["quantity"], 5);
    assert_eq!(body["lines"][0]["unit_price"]["amount_minor"], 1999);
    assert_eq!(body["total"]["amount_minor"], 5 * 1999);
    assert_eq!(svc.count("order_lines").await, 1);

    let event: OrderLineAdded = svc.single_new_event(before).await;
    assert_eq!(event.line.quantity.get(), 5, "the line after the addition");
    assert_eq!(event.quantity_added.get(), 3);
    assert_eq!(event.line.unit_price, money(1_999, Currency::EUR));
    assert_eq!(event.total, money(5 * 1_999, Currency::EUR));
    svc.finish().await;
}

#[tokio::test]
async fn removing_a_line_writes_order_line_removed() {
    let svc = start().await;
    let (_, order_id) = draft_with_lines(&svc).await;
    let before = svc.outbox_rows().await.len();

    let (status, body) = svc
        .delete(&format!("/orders/{order_id}/lines/TSHIRT"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lines"].as_array().unwrap().len(), 1);
    assert_eq!(body["lines"][0]["sku"], "MUG");
    assert_eq!(body["total"]["amount_minor"], 1250);
    assert_eq!(svc.count("order_lines").await, 1);

    let event: OrderLineRemoved = svc.single_new_event(before).await;
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.sku.as_str(), "TSHIRT");
    assert_eq!(event.total, money(1_250, Currency::EUR));

    // The last line too: the total is zero again.
    let before = svc.outbox_rows().await.len();
    let (status, body) = svc.delete(&format!("/orders/{order_id}/lines/MUG")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lines"], json!([]));
    let event: OrderLineRemoved = svc.single_new_event(before).await;
    assert_eq!(event.total, money(0, Currency::EUR));
    svc.finish().await;
}
