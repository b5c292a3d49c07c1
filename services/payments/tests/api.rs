//! The payments service against the real PostgreSQL and schema registry: the saga steps `charge` and
//! `refund` write the expected rows and exactly one outbox event that decodes through the registry
//! (or nothing, when the step was already taken), and the read API answers them.

use axum::http::StatusCode;
use orderflow_payments::gateway::DeclineRate;
use orderflow_payments::{
    ChargeOutcome, ChargeRequest, GatewayConfig, Payment, PaymentStatus, RefundOutcome, charge,
    refund, spec,
};
use orderflow_schemas::payments::{
    DeclineReason, PaymentDeclined, PaymentRefunded, PaymentSucceeded,
};
use orderflow_schemas::{Currency, CustomerId, Money, OrderId};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::testing::TestService;
use serde_json::json;
use sqlx::Row;

const TABLES: &[&str] = &["payments", "refunds", "outbox"];

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR).unwrap()
}

fn request(minor: i64) -> ChargeRequest {
    ChargeRequest {
        order_id: OrderId::new_v7(),
        customer_id: CustomerId::new_v7(),
        amount: eur(minor),
    }
}

/// `charge` on its own committed transaction, as a reaction would.
async fn charge_once(
    svc: &TestService,
    gateway: &GatewayConfig,
    request: &ChargeRequest,
) -> ChargeOutcome {
    let mut tx = svc.pool().begin().await.unwrap();
    let outcome = charge(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        gateway,
        request,
    )
    .await
    .expect("charge");
    tx.commit().await.unwrap();
    outcome
}

async fn refund_once(svc: &TestService, order_id: OrderId) -> RefundOutcome {
    let mut tx = svc.pool().begin().await.unwrap();
    let outcome = refund(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        order_id,
    )
    .await
    .expect("refund");
    tx.commit().await.unwrap();
    outcome
}

async fn status_in_db(svc: &TestService, order_id: OrderId) -> String {
    sqlx::query("SELECT status FROM payments WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .fetch_one(svc.pool())
        .await
        .unwrap()
        .get("status")
}

fn decided(outcome: ChargeOutcome) -> Payment {
    match outcome {
        ChargeOutcome::Decided(payment) => payment,
        other => panic!("expected a new decision, got {other:?}"),
    }
}

#[tokio::test]
async fn an_approved_charge_writes_a_succeeded_payment_and_payment_succeeded() {
    let svc = TestService::start(spec()).await;
    let request = request(5_248);
    let before = svc.outbox_rows().await.len();

    let payment = decided(charge_once(&svc, &GatewayConfig::default(), &request).await);
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(payment.amount, eur(5_248));
    let reference = payment.gateway_reference.clone().expect("a reference");

    assert_eq!(svc.count("payments").await, 1);
    assert_eq!(status_in_db(&svc, request.order_id).await, "SUCCEEDED");
    let event: PaymentSucceeded = svc.single_new_event(before).await;
    assert_eq!(event.payment_id, payment.payment_id);
    assert_eq!(event.order_id, request.order_id);
    assert_eq!(event.customer_id, request.customer_id);
    assert_eq!(event.amount, eur(5_248));
    assert_eq!(event.gateway_reference, reference);
    let row = svc.outbox_rows().await.pop().unwrap();
    assert_eq!(row.aggregate_id, request.order_id.to_string());
    assert!(row.trace_context.is_some());
    svc.finish().await;
}

#[tokio::test]
async fn a_declined_charge_writes_a_declined_payment_and_payment_declined() {
    let svc = TestService::start(spec()).await;
    let gateway = GatewayConfig {
        decline_above_minor: Some(100_000),
        ..GatewayConfig::default()
    };
    // (amount, expected reason): the test amount rule, then the limit
    for (minor, reason) in [
        (1_213, DeclineReason::CardDeclined),
        (100_001, DeclineReason::AmountLimitExceeded),
    ] {
        let request = request(minor);
        let before = svc.outbox_rows().await.len();
        let payment = decided(charge_once(&svc, &gateway, &request).await);
        assert_eq!(payment.status, PaymentStatus::Declined);
        assert_eq!(payment.gateway_reference, None);
        assert_eq!(status_in_db(&svc, request.order_id).await, "DECLINED");
        let event: PaymentDeclined = svc.single_new_event(before).await;
        assert_eq!(event.payment_id, payment.payment_id);
        assert_eq!(event.order_id, request.order_id);
        assert_eq!(event.customer_id, request.customer_id);
        assert_eq!(event.amount, eur(minor));
        assert_eq!(event.reason, reason);
        assert!(!event.detail.is_empty());
    }
    assert_eq!(svc.count("payments").await, 2);
    svc.finish().await;
}

#[tokio::test]
async fn the_decline_rate_is_reproducible_across_charges() {
    let svc = TestService::start(spec()).await;
    let always = GatewayConfig {
        decline_rate: DeclineRate::ALWAYS,
        ..GatewayConfig::default()
    };
    let before = svc.outbox_rows().await.len();
    let request = request(2_000);
    let payment = decided(charge_once(&svc, &always, &request).await);
    assert_eq!(
        payment.decline.map(|d| d.reason),
        Some(DeclineReason::InsufficientFunds)
    );
    let event: PaymentDeclined = svc.single_new_event(before).await;
    assert_eq!(event.reason, DeclineReason::InsufficientFunds);
    svc.finish().await;
}

#[tokio::test]
async fn an_order_is_charged_once() {
    let svc = TestService::start(spec()).await;
    let request = request(3_000);
    let first = decided(charge_once(&svc, &GatewayConfig::default(), &request).await);
    let counts = svc.counts(TABLES).await;

    // redelivered StockReserved, even with rules that would now decline: the first answer stands
    let always = GatewayConfig {
        decline_rate: DeclineRate::ALWAYS,
        ..GatewayConfig::default()
    };
    let again = charge_once(&svc, &always, &request).await;
    assert_eq!(again, ChargeOutcome::AlreadyDecided(first.clone()));
    assert_eq!(svc.counts(TABLES).await, counts);

    // a declined order is not charged again either
    let declined = request_for_decline();
    decided(charge_once(&svc, &GatewayConfig::default(), &declined).await);
    let counts = svc.counts(TABLES).await;
    let again = charge_once(&svc, &GatewayConfig::default(), &declined).await;
    assert!(
        matches!(again, ChargeOutcome::AlreadyDecided(p) if p.status == PaymentStatus::Declined)
    );
    assert_eq!(svc.counts(TABLES).await, counts);
    svc.finish().await;
}

fn request_for_decline() -> ChargeRequest {
    request(9_913)
}

#[tokio::test]
async fn concurrent_charges_of_one_order_write_one_payment_and_one_event() {
    let svc = TestService::start(spec()).await;
    let request = request(4_200);
    let gateway = GatewayConfig::default();
    let outcomes = tokio::join!(
        charge_once(&svc, &gateway, &request),
        charge_once(&svc, &gateway, &request),
    );
    let decided = [&outcomes.0, &outcomes.1]
        .iter()
        .filter(|o| matches!(o, ChargeOutcome::Decided(_)))
        .count();
    assert_eq!(decided, 1, "{outcomes:?}");
    assert_eq!(outcomes.0.payment(), outcomes.1.payment());
    assert!(outcomes.0.payment().is_some());
    assert_eq!(svc.count("payments").await, 1);
    assert_eq!(svc.count("outbox").await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn a_charge_whose_transaction_rolls_back_leaves_nothing() {
    let svc = TestService::start(spec()).await;
    let request = request(1_000);
    let mut tx = svc.pool().begin().await.unwrap();
    charge(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        &GatewayConfig::default(),
        &request,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        svc.counts(TABLES).await,
        nothing(),
        "rows and event go together"
    );
    svc.finish().await;
}

/// The counts of empty tables.
fn nothing() -> Vec<(String, i64)> {
    TABLES.iter().map(|t| (t.to_string(), 0)).collect()
}

#[tokio::test]
async fn a_successful_charge_is_refunded_once() {
    let svc = TestService::start(spec()).await;
    let request = request(7_500);
    let payment = decided(charge_once(&svc, &GatewayConfig::default(), &request).await);
    let before = svc.outbox_rows().await.len();

    let RefundOutcome::Refunded {
        payment: refunded,
        refund,
    } = refund_once(&svc, request.order_id).await
    else {
        panic!("expected a refund");
    };
    assert_eq!(refunded.status, PaymentStatus::Refunded);
    assert_eq!(refund.amount, eur(7_500));
    assert_eq!(status_in_db(&svc, request.order_id).await, "REFUNDED");
    assert_eq!(svc.count("refunds").await, 1);
    let event: PaymentRefunded = svc.single_new_event(before).await;
    assert_eq!(event.refund_id, refund.refund_id);
    assert_eq!(event.payment_id, payment.payment_id);
    assert_eq!(event.order_id, request.order_id);
    assert_eq!(event.amount, eur(7_500));
    assert_eq!(event.gateway_reference, refund.gateway_reference);

    // OrderCancelled redelivered: nothing more
    let counts = svc.counts(TABLES).await;
    assert!(matches!(
        refund_once(&svc, request.order_id).await,
        RefundOutcome::AlreadyRefunded { .. }
    ));
    assert_eq!(svc.counts(TABLES).await, counts);

    // the read API shows the refund
    let (status, body) = svc
        .get(&format!("/orders/{}/payment", request.order_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "REFUNDED");
    assert_eq!(body["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["refunds"][0]["refund_id"],
        refund.refund_id.to_string()
    );
    assert_eq!(
        body["refunds"][0]["amount"],
        json!({"amount_minor": 7500, "currency": "EUR"})
    );
    svc.finish().await;
}

#[tokio::test]
async fn an_order_cancelled_before_its_charge_is_never_charged() {
    // OrderCancelled (orders.events) can overtake StockReserved (inventory.events).
    let svc = TestService::start(spec()).await;
    let late = request(4_200);
    assert_eq!(
        refund_once(&svc, late.order_id).await,
        RefundOutcome::NothingToRefund { payment: None }
    );
    let outcome = charge_once(&svc, &GatewayConfig::default(), &late).await;
    assert_eq!(outcome, ChargeOutcome::CancelledBeforeCharge);
    assert_eq!(svc.counts(TABLES).await, nothing(), "no payment, no event");
    // Another order is still charged as usual.
    decided(charge_once(&svc, &GatewayConfig::default(), &request(4_200)).await);
    assert_eq!(svc.count("payments").await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn an_order_never_charged_is_not_refunded() {
    let svc = TestService::start(spec()).await;
    // no payment at all (cancelled before StockReserved)
    assert_eq!(
        refund_once(&svc, OrderId::new_v7()).await,
        RefundOutcome::NothingToRefund { payment: None }
    );
    assert_eq!(svc.counts(TABLES).await, nothing());

    // a declined charge (cancelled because of it)
    let declined = request_for_decline();
    decided(charge_once(&svc, &GatewayConfig::default(), &declined).await);
    let counts = svc.counts(TABLES).await;
    assert!(matches!(
        refund_once(&svc, declined.order_id).await,
        RefundOutcome::NothingToRefund { payment: Some(p) } if p.status == PaymentStatus::Declined
    ));
    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(status_in_db(&svc, declined.order_id).await, "DECLINED");
    svc.finish().await;
}

#[tokio::test]
async fn get_answers_the_payment_of_an_order_and_by_id() {
    let svc = TestService::start(spec()).await;
    let request = request(5_248);
    let payment = decided(charge_once(&svc, &GatewayConfig::default(), &request).await);

    let (status, body) = svc
        .get(&format!("/orders/{}/payment", request.order_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["payment_id"], payment.payment_id.to_string());
    assert_eq!(body["order_id"], request.order_id.to_string());
    assert_eq!(body["customer_id"], request.customer_id.to_string());
    assert_eq!(
        body["amount"],
        json!({"amount_minor": 5248, "currency": "EUR"})
    );
    assert_eq!(body["status"], "SUCCEEDED");
    assert_eq!(
        body["gateway_reference"],
        payment.gateway_reference.clone().unwrap()
    );
    assert_eq!(body["decline_reason"], json!(null));
    assert_eq!(body["refunds"], json!([]));

    let (status, by_id) = svc.get(&format!("/payments/{}", payment.payment_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, body);

    let declined = request_for_decline();
    decided(charge_once(&svc, &GatewayConfig::default(), &declined).await);
    let (status, body) = svc
        .get(&format!("/orders/{}/payment", declined.order_id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "DECLINED");
    assert_eq!(body["decline_reason"], "CARD_DECLINED");
    assert_eq!(body["gateway_reference"], json!(null));
    svc.finish().await;
}

#[tokio::test]
async fn get_answers_404_and_400_as_json() {
    let svc = TestService::start(spec()).await;
    let (status, body) = svc
        .get(&format!("/orders/{}/payment", OrderId::new_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");

    let (status, body) = svc.get(&format!("/payments/{}", OrderId::new_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");

    let (status, body) = svc.get("/orders/not-a-uuid/payment").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_field");
    assert_eq!(body["field"], "order_id");

    let (status, body) = svc.get("/payments/42").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "payment_id");

    // there is no write endpoint: charges happen in the saga
    let (status, body) = svc
        .post(&format!("/orders/{}/payment", OrderId::new_v7()), json!({}))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(svc.counts(TABLES).await, nothing());
    svc.finish().await;
}

#[tokio::test]
async fn health_and_openapi() {
    let svc = TestService::start(spec()).await;
    let (status, body) = svc.get("/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, doc) = svc.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    for path in ["/orders/{order_id}/payment", "/payments/{payment_id}"] {
        assert!(paths.contains_key(path), "{path} missing from {paths:?}");
    }
    assert!(doc["components"]["schemas"]["PaymentView"].is_object());
    svc.finish().await;
}
