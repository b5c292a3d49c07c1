//! The shipping service against the real PostgreSQL and schema registry: the saga step
//! `create_shipment` and the dispatch/deliver endpoints write the expected rows and exactly one outbox
//! event that decodes through the registry; bad input and transitions the state machine refuses are
//! answered with a JSON 4xx naming the problem and change nothing.

use axum::http::StatusCode;
use orderflow_schemas::orders::{OrderCancellationRequested, OrderConfirmed};
use orderflow_schemas::shipping::{
    ShipmentCancelled, ShipmentCreated, ShipmentDelivered, ShipmentDispatched,
};
use orderflow_schemas::{CustomerId, EventId, OrderId, samples};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::testing::TestService;
use orderflow_shipping::{
    CancelOutcome, CreateOutcome, Shipment, ShipmentStatus, ShippingError, cancel_for_order,
    create_shipment, spec,
};
use serde_json::{Value, json};
use sqlx::Row;

const TABLES: &[&str] = &["shipments", "shipment_lines", "outbox"];

/// The sample `OrderConfirmed` for a fresh order.
fn confirmed() -> OrderConfirmed {
    OrderConfirmed {
        event_id: EventId::new_v7(),
        order_id: OrderId::new_v7(),
        customer_id: CustomerId::new_v7(),
        ..samples::order_confirmed()
    }
}

/// `create_shipment` on its own committed transaction, as the reaction would.
async fn create(svc: &TestService, confirmed: &OrderConfirmed) -> CreateOutcome {
    let mut tx = svc.pool().begin().await.unwrap();
    let outcome = create_shipment(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        confirmed,
    )
    .await
    .expect("create shipment");
    tx.commit().await.unwrap();
    outcome
}

async fn created(svc: &TestService) -> Shipment {
    match create(svc, &confirmed()).await {
        CreateOutcome::Created(shipment) => shipment,
        other => panic!("expected a new shipment, got {other:?}"),
    }
}

/// `cancel_for_order` on its own committed transaction, as the reaction to the order's
/// `OrderCancellationRequested` would.
async fn request_cancel(
    svc: &TestService,
    shipment: &Shipment,
) -> Result<CancelOutcome, ShippingError> {
    let request = OrderCancellationRequested {
        event_id: EventId::new_v7(),
        order_id: shipment.order_id,
        customer_id: shipment.customer_id,
        ..samples::order_cancellation_requested()
    };
    let mut tx = svc.pool().begin().await.unwrap();
    let outcome = cancel_for_order(
        &mut tx,
        &svc.context.outbox,
        &TraceContext::new_root(),
        &request,
    )
    .await;
    if outcome.is_ok() {
        tx.commit().await.unwrap();
    }
    outcome
}

/// status, carrier, tracking number as stored
async fn stored(
    svc: &TestService,
    shipment: &Shipment,
) -> (String, Option<String>, Option<String>) {
    let row = sqlx::query(
        "SELECT status, carrier, tracking_number FROM shipments WHERE shipment_id = $1",
    )
    .bind(shipment.shipment_id.as_uuid())
    .fetch_one(svc.pool())
    .await
    .unwrap();
    (
        row.get("status"),
        row.get("carrier"),
        row.get("tracking_number"),
    )
}

fn dispatch_path(shipment: &Shipment) -> String {
    format!("/shipments/{}/dispatch", shipment.shipment_id)
}

fn deliver_path(shipment: &Shipment) -> String {
    format!("/shipments/{}/deliver", shipment.shipment_id)
}

fn dhl() -> Value {
    json!({"carrier": "DHL", "tracking_number": "JJD0099887766554433"})
}

#[tokio::test]
async fn order_confirmed_creates_one_shipment_with_shipment_created() {
    let svc = TestService::start(spec()).await;
    let confirmed = confirmed();
    let before = svc.outbox_rows().await.len();

    let CreateOutcome::Created(shipment) = create(&svc, &confirmed).await else {
        panic!("expected a new shipment");
    };
    assert_eq!(shipment.order_id, confirmed.order_id);
    assert_eq!(shipment.customer_id, confirmed.customer_id);
    assert_eq!(shipment.status, ShipmentStatus::Created);
    assert_eq!(shipment.address, confirmed.shipping_address);
    assert_eq!(shipment.lines.len(), confirmed.lines.len());
    assert_eq!(svc.count("shipments").await, 1);
    assert_eq!(
        svc.count("shipment_lines").await,
        confirmed.lines.len() as i64
    );
    assert_eq!(
        stored(&svc, &shipment).await,
        ("CREATED".into(), None, None)
    );

    let event: ShipmentCreated = svc.single_new_event(before).await;
    assert_eq!(event.shipment_id, shipment.shipment_id);
    assert_eq!(event.order_id, confirmed.order_id);
    assert_eq!(event.address, confirmed.shipping_address);

    // OrderConfirmed redelivered: the same shipment, nothing written
    let counts = svc.counts(TABLES).await;
    assert_eq!(
        create(&svc, &confirmed).await,
        CreateOutcome::AlreadyExists(shipment)
    );
    assert_eq!(svc.counts(TABLES).await, counts);
    svc.finish().await;
}

#[tokio::test]
async fn concurrent_creates_for_one_order_write_one_shipment() {
    let svc = TestService::start(spec()).await;
    let confirmed = confirmed();
    let (a, b) = tokio::join!(create(&svc, &confirmed), create(&svc, &confirmed));
    let new = [&a, &b]
        .iter()
        .filter(|o| matches!(o, CreateOutcome::Created(_)))
        .count();
    assert_eq!(new, 1, "{a:?} {b:?}");
    assert_eq!(a.shipment(), b.shipment());
    assert_eq!(svc.count("shipments").await, 1);
    assert_eq!(svc.count("outbox").await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn dispatch_then_deliver_write_their_events() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;

    let before = svc.outbox_rows().await.len();
    let (status, body) = svc
        .post(
            &dispatch_path(&shipment),
            json!({"carrier": "  DHL Express ", "tracking_number": "JJD0099887766554433"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "DISPATCHED");
    assert_eq!(body["carrier"], "DHL Express");
    assert_eq!(body["tracking_number"], "JJD0099887766554433");
    assert!(body["dispatched_at"].is_string());
    assert_eq!(body["delivered_at"], Value::Null);
    assert_eq!(
        stored(&svc, &shipment).await,
        (
            "DISPATCHED".into(),
            Some("DHL Express".into()),
            Some("JJD0099887766554433".into())
        )
    );
    let event: ShipmentDispatched = svc.single_new_event(before).await;
    assert_eq!(event.shipment_id, shipment.shipment_id);
    assert_eq!(event.order_id, shipment.order_id);
    assert_eq!(event.carrier, "DHL Express");
    assert_eq!(event.tracking_number, "JJD0099887766554433");

    let before = svc.outbox_rows().await.len();
    let (status, body) = svc
        .post_raw(&deliver_path(&shipment), "application/json", vec![])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "DELIVERED");
    assert!(body["delivered_at"].is_string());
    assert_eq!(body["carrier"], "DHL Express");
    assert_eq!(stored(&svc, &shipment).await.0, "DELIVERED");
    let event: ShipmentDelivered = svc.single_new_event(before).await;
    assert_eq!(event.shipment_id, shipment.shipment_id);
    assert_eq!(event.order_id, shipment.order_id);
    assert_eq!(svc.count("shipments").await, 1);
    svc.finish().await;
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued_into_the_event() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let response = svc
        .http
        .post(format!("{}{}", svc.url, dispatch_path(&shipment)))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&dhl())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let row = svc.outbox_rows().await.pop().unwrap();
    assert!(
        row.trace_context
            .unwrap()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    svc.finish().await;
}

#[tokio::test]
async fn bad_dispatch_input_is_refused_naming_the_field_and_changes_nothing() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let path = dispatch_path(&shipment);
    let counts = svc.counts(TABLES).await;

    // (body, expected status, expected error, expected field)
    let long = "x".repeat(65);
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"carrier": "", "tracking_number": "JJD1"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "carrier",
        ),
        (
            json!({"carrier": "   ", "tracking_number": "JJD1"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "carrier",
        ),
        (
            json!({"carrier": long, "tracking_number": "JJD1"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "carrier",
        ),
        (
            json!({"carrier": "DHL", "tracking_number": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "tracking_number",
        ),
        (
            json!({"carrier": "DHL", "tracking_number": "9".repeat(65)}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "tracking_number",
        ),
        (
            json!({"carrier": "DHL", "tracking_number": "JJD 1; DROP TABLE"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "tracking_number",
        ),
        (
            json!({"carrier": 42, "tracking_number": "JJD1"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "carrier",
        ),
        (
            json!({"carrier": "DHL"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "tracking_number",
        ),
        (
            json!({"carrier": "DHL", "tracking_number": "JJD1", "priority": true}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "priority",
        ),
    ];
    for (body, status, error, field) in cases {
        let (got, answer) = svc.post(&path, body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"], error, "{body} -> {answer}");
        assert_eq!(answer["field"], field, "{body} -> {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // a missing field is named in the message
    let (_, answer) = svc.post(&path, json!({"carrier": "DHL"})).await;
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("tracking_number"),
        "{answer}"
    );

    let (status, answer) = svc
        .post_raw(&path, "application/json", br#"{"carrier": "DHL","#.to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "malformed_json");

    let (status, answer) = svc
        .post_raw(&path, "text/plain", serde_json::to_vec(&dhl()).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer["field"], "content-type");

    let huge = json!({"carrier": "x".repeat(70 * 1024), "tracking_number": "J1"});
    let (status, answer) = svc
        .post_raw(
            &path,
            "application/json",
            serde_json::to_vec(&huge).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"], "body_too_large");

    let (status, answer) = svc.post("/shipments/not-a-uuid/dispatch", dhl()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["field"], "shipment_id");

    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(
        stored(&svc, &shipment).await,
        ("CREATED".into(), None, None)
    );
    svc.finish().await;
}

#[tokio::test]
async fn transitions_the_state_machine_refuses_answer_409_and_change_nothing() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;

    // deliver before dispatch
    let counts = svc.counts(TABLES).await;
    let (status, body) = svc.post(&deliver_path(&shipment), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("CREATED") && message.contains("DISPATCHED"),
        "{message}"
    );
    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(stored(&svc, &shipment).await.0, "CREATED");

    // dispatch twice
    assert_eq!(
        svc.post(&dispatch_path(&shipment), dhl()).await.0,
        StatusCode::OK
    );
    let counts = svc.counts(TABLES).await;
    let (status, body) = svc
        .post(
            &dispatch_path(&shipment),
            json!({"carrier": "UPS", "tracking_number": "1Z999"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("is DISPATCHED"),
        "{body}"
    );
    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(
        stored(&svc, &shipment).await.1.as_deref(),
        Some("DHL"),
        "the first carrier stays"
    );

    // anything after delivery
    assert_eq!(
        svc.post(&deliver_path(&shipment), json!({})).await.0,
        StatusCode::OK
    );
    let counts = svc.counts(TABLES).await;
    for (path, body) in [
        (deliver_path(&shipment), json!({})),
        (dispatch_path(&shipment), dhl()),
    ] {
        let (status, answer) = svc.post(&path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("is DELIVERED"),
            "{answer}"
        );
    }
    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(stored(&svc, &shipment).await.0, "DELIVERED");
    svc.finish().await;
}

#[tokio::test]
async fn concurrent_dispatches_let_one_through() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let before = svc.outbox_rows().await.len();
    let path = dispatch_path(&shipment);
    let (a, b) = tokio::join!(svc.post(&path, dhl()), svc.post(&path, dhl()));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let _: ShipmentDispatched = svc.single_new_event(before).await;
    svc.finish().await;
}

#[tokio::test]
async fn unknown_shipments_answer_404_and_change_nothing() {
    let svc = TestService::start(spec()).await;
    let nobody = OrderId::new_v7();
    for (status, body) in [
        svc.post(&format!("/shipments/{nobody}/dispatch"), dhl())
            .await,
        svc.post(&format!("/shipments/{nobody}/deliver"), json!({}))
            .await,
        svc.get(&format!("/shipments/{nobody}")).await,
        svc.get(&format!("/orders/{nobody}/shipment")).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"], "not_found");
    }
    let (status, body) = svc.get("/orders/xyz/shipment").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "order_id");
    let (status, body) = svc.post("/shipments/xyz/deliver", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "shipment_id");
    assert_eq!(
        svc.counts(TABLES).await,
        TABLES
            .iter()
            .map(|t| (t.to_string(), 0))
            .collect::<Vec<_>>()
    );
    svc.finish().await;
}

#[tokio::test]
async fn get_answers_the_shipment_of_an_order_and_by_id() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let (status, body) = svc
        .get(&format!("/orders/{}/shipment", shipment.order_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["shipment_id"], shipment.shipment_id.to_string());
    assert_eq!(body["order_id"], shipment.order_id.to_string());
    assert_eq!(body["customer_id"], shipment.customer_id.to_string());
    assert_eq!(body["status"], "CREATED");
    let address = samples::address();
    assert_eq!(
        body["address"],
        json!({
            "recipient": address.recipient,
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "region": address.region,
            "postal_code": address.postal_code,
            "country": "DE",
        })
    );
    assert_eq!(
        body["lines"],
        json!([
            {"sku": "TSHIRT-RED-M", "quantity": 2},
            {"sku": "MUG-CLASSIC", "quantity": 1},
        ])
    );
    assert_eq!(body["carrier"], Value::Null);
    assert_eq!(body["dispatched_at"], Value::Null);

    let (status, by_id) = svc
        .get(&format!("/shipments/{}", shipment.shipment_id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, body);
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
    for path in [
        "/orders/{order_id}/shipment",
        "/shipments/{shipment_id}",
        "/shipments/{shipment_id}/dispatch",
        "/shipments/{shipment_id}/deliver",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {paths:?}");
    }
    assert!(paths["/shipments/{shipment_id}/dispatch"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["schemas"]["DispatchRequest"].is_object());
    svc.finish().await;
}

#[tokio::test]
async fn a_cancellation_request_cancels_a_shipment_not_yet_dispatched_once() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let before = svc.outbox_rows().await.len();
    let outcome = request_cancel(&svc, &shipment).await.unwrap();
    assert!(
        matches!(outcome, CancelOutcome::Cancelled(_)),
        "{outcome:?}"
    );
    let event: ShipmentCancelled = svc.single_new_event(before).await;
    assert_eq!(event.shipment_id, shipment.shipment_id);
    assert_eq!(event.order_id, shipment.order_id);
    assert_eq!(stored(&svc, &shipment).await.0, "CANCELLED");
    let (status, body) = svc
        .get(&format!("/shipments/{}", shipment.shipment_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANCELLED");
    assert!(body["cancelled_at"].is_string(), "{body}");

    // A repeated request writes nothing; a dispatch is refused and writes nothing.
    let counts = svc.counts(TABLES).await;
    let again = request_cancel(&svc, &shipment).await.unwrap();
    assert!(
        matches!(again, CancelOutcome::AlreadyCancelled(_)),
        "{again:?}"
    );
    let (status, body) = svc.post(&dispatch_path(&shipment), dhl()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("CANCELLED"),
        "{body}"
    );
    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(
        stored(&svc, &shipment).await,
        ("CANCELLED".into(), None, None)
    );
    svc.finish().await;
}

#[tokio::test]
async fn a_cancellation_request_after_dispatch_changes_nothing() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let (status, body) = svc.post(&dispatch_path(&shipment), dhl()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counts = svc.counts(TABLES).await;
    let outcome = request_cancel(&svc, &shipment).await.unwrap();
    assert!(matches!(outcome, CancelOutcome::TooLate(_)), "{outcome:?}");
    assert_eq!(svc.counts(TABLES).await, counts);
    assert_eq!(stored(&svc, &shipment).await.0, "DISPATCHED");

    // An order without a shipment is a refusal (dead-lettered by the reaction), not a no-op.
    let orphan = Shipment {
        order_id: OrderId::new_v7(),
        ..shipment
    };
    let error = request_cancel(&svc, &orphan).await.unwrap_err();
    assert!(
        matches!(error, ShippingError::NoShipmentForOrder(_)),
        "{error}"
    );
    assert_eq!(svc.counts(TABLES).await, counts);
    svc.finish().await;
}

#[tokio::test]
async fn a_cancellation_racing_a_dispatch_ends_with_exactly_one_of_them() {
    let svc = TestService::start(spec()).await;
    for _ in 0..20 {
        let shipment = created(&svc).await;
        let before = svc.outbox_rows().await.len();
        let path = dispatch_path(&shipment);
        let (cancel, dispatch) =
            tokio::join!(request_cancel(&svc, &shipment), svc.post(&path, dhl()));
        let cancel = cancel.unwrap();
        let rows = svc.outbox_rows().await;
        let new = &rows[before..];
        assert_eq!(new.len(), 1, "exactly one event: {cancel:?} {dispatch:?}");
        match cancel {
            CancelOutcome::Cancelled(_) => {
                assert_eq!(dispatch.0, StatusCode::CONFLICT, "{dispatch:?}");
                assert_eq!(stored(&svc, &shipment).await.0, "CANCELLED");
            }
            CancelOutcome::TooLate(_) => {
                assert_eq!(dispatch.0, StatusCode::OK, "{dispatch:?}");
                assert_eq!(stored(&svc, &shipment).await.0, "DISPATCHED");
            }
            other => panic!("{other:?}"),
        }
    }
    svc.finish().await;
}

/// Who may move a shipment, with real tokens from the identity provider: the carrier dispatches and
/// delivers; a customer reads their own order's shipment but moves nothing (403, rows unchanged) and
/// does not see another customer's (404).
#[tokio::test]
async fn the_carrier_moves_shipments_a_customer_only_reads_their_own() {
    let svc = TestService::start(spec()).await;
    let shipment = created(&svc).await;
    let carrier = svc.identity.carrier().await;
    let owner = svc.identity.customer(shipment.customer_id).await;
    let stranger = svc.identity.customer(CustomerId::new_v7()).await;
    let by_order = format!("/orders/{}/shipment", shipment.order_id);

    let (status, _, body) = svc
        .request_as(reqwest::Method::GET, &by_order, Some(&owner), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the owner reads the shipment: {body}"
    );
    let (status, _, body) = svc
        .request_as(reqwest::Method::GET, &by_order, Some(&stranger), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another customer: {body}");

    let before = svc.counts(TABLES).await;
    let (status, _, body) = svc
        .request_as(
            reqwest::Method::POST,
            &dispatch_path(&shipment),
            Some(&owner),
            Some(dhl()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a customer dispatches: {body}"
    );
    assert_eq!(svc.counts(TABLES).await, before);

    let (status, _, body) = svc
        .request_as(
            reqwest::Method::POST,
            &dispatch_path(&shipment),
            Some(&carrier),
            Some(dhl()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the carrier dispatches: {body}");
    let (status, _, body) = svc
        .request_as(
            reqwest::Method::POST,
            &deliver_path(&shipment),
            Some(&carrier),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the carrier delivers: {body}");
    assert_eq!(stored(&svc, &shipment).await.0, "DELIVERED");
    svc.finish().await;
}
