//! Reading: one order, lists with filters and pagination (and their bad parameters), health, and the
//! OpenAPI document.

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use orderflow_schemas::OrderId;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn get_shows_lines_totals_status_and_timeline() {
    let svc = start().await;
    let (customer, order_id) = draft_with_lines(&svc).await;
    place(&svc, order_id).await;
    svc.post(
        &format!("/orders/{order_id}/cancel"),
        json!({"reason_detail": "oops"}),
    )
    .await;

    let (status, body) = svc.get(&format!("/orders/{order_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_id"], order_id.to_string());
    assert_eq!(body["customer_id"], customer.to_string());
    assert_eq!(body["status"], "CANCELLED");
    assert_eq!(body["lines"].as_array().unwrap().len(), 2);
    assert_eq!(body["lines"][0]["line_total"]["amount_minor"], 3998);
    assert_eq!(
        body["total"],
        json!({"amount_minor": 5248, "currency": "EUR"})
    );
    for at in ["created_at", "placed_at", "cancelled_at"] {
        let text = body["timeline"][at].as_str().unwrap();
        text.parse::<DateTime<Utc>>().unwrap();
    }
    assert_eq!(body["timeline"]["confirmed_at"], json!(null));
    assert_eq!(
        body["cancellation"],
        json!({"reason": "CUSTOMER_REQUEST", "detail": "oops", "cancelled_from": "PLACED"})
    );
    assert_eq!(body["shipping_address"]["country"], "DE");

    let (status, body) = svc.get(&format!("/orders/{}", OrderId::new_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert_error(
        &svc.get("/orders/not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "order_id",
    );
    svc.finish().await;
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_filter_and_paginate_newest_first() {
    let svc = start().await;
    let ada = seed_customer(&svc, true).await;
    let bob = seed_customer(&svc, true).await;
    seed_product(&svc, "MUG", 1_250, orderflow_schemas::Currency::EUR).await;
    // Five orders, one a day: ada's on days 0, 1, 2 and 4, bob's on day 3.
    let day0: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
    let mut orders = Vec::new();
    for (day, customer) in [(0, ada), (1, ada), (2, ada), (3, bob), (4, ada)] {
        let id = create_draft(&svc, customer).await;
        sqlx::query("UPDATE orders SET created_at = $2 WHERE order_id = $1")
            .bind(id.as_uuid())
            .bind(day0 + Duration::days(day))
            .execute(svc.pool())
            .await
            .unwrap();
        orders.push(id.to_string());
    }
    add_line(&svc, orders[1].parse().unwrap(), "MUG", 1).await;
    place(&svc, orders[1].parse().unwrap()).await;
    let newest_first: Vec<String> = orders.iter().rev().cloned().collect();

    let (status, page) = svc.get("/orders").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), newest_first);
    assert_eq!(page["next_cursor"], json!(null));
    assert_eq!(page["next"], json!(null));
    assert_eq!(page["orders"][3]["status"], "PLACED");
    assert_eq!(page["orders"][3]["line_count"], 1);
    assert_eq!(page["orders"][3]["total"]["amount_minor"], 1250);

    // Pages of two, following `next`.
    let mut seen = Vec::new();
    let mut path = "/orders?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = svc.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => {
                assert!(page["next_cursor"].is_string());
                path = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first);

    let (_, page) = svc.get(&format!("/orders?customer_id={bob}")).await;
    assert_eq!(ids(&page), [orders[3].clone()]);
    let (_, page) = svc.get("/orders?status=PLACED").await;
    assert_eq!(ids(&page), [orders[1].clone()]);
    let (_, page) = svc
        .get(&format!("/orders?status=DRAFT&customer_id={ada}"))
        .await;
    assert_eq!(
        ids(&page),
        [orders[4].clone(), orders[2].clone(), orders[0].clone()]
    );
    // from is inclusive, to exclusive.
    let (_, page) = svc
        .get("/orders?from=2026-03-03T09:00:00Z&to=2026-03-05T09:00:00Z")
        .await;
    assert_eq!(ids(&page), [orders[2].clone(), orders[1].clone()]);
    // A filtered page's `next` keeps the filters.
    let (_, page) = svc
        .get(&format!(
            "/orders?customer_id={ada}&limit=1&from=2026-03-02T00:00:00Z"
        ))
        .await;
    let next = page["next"].as_str().unwrap().to_owned();
    assert!(next.contains(&format!("customer_id={ada}")), "{next}");
    let (_, page) = svc.get(&next).await;
    assert_eq!(ids(&page), [orders[2].clone()]);
    svc.finish().await;
}

#[tokio::test]
async fn bad_list_parameters_are_named() {
    let svc = start().await;
    let before = svc.counts(TABLES).await;
    for (query, field) in [
        ("status=SHIPPING", "status"),
        ("status=placed", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("customer_id=42", "customer_id"),
        ("from=yesterday", "from"),
        ("from=2026-03-05T00:00:00Z&to=2026-03-01T00:00:00Z", "from"),
        ("cursor=garbage", "cursor"),
        ("page=2", "page"),
    ] {
        assert_error(
            &svc.get(&format!("/orders?{query}")).await,
            StatusCode::BAD_REQUEST,
            field,
        );
    }
    assert_eq!(svc.counts(TABLES).await, before);
    svc.finish().await;
}

#[tokio::test]
async fn ready_and_documented() {
    let svc = start().await;
    let (status, body) = svc.get("/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, doc) = svc.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/lines",
        "/orders/{order_id}/lines/{sku}",
        "/orders/{order_id}/place",
        "/orders/{order_id}/cancel",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {paths:?}");
    }
    assert!(paths["/orders"]["post"].is_object());
    assert!(paths["/orders"]["get"].is_object());
    assert!(doc["components"]["schemas"]["OrderBody"].is_object());
    svc.finish().await;
}
