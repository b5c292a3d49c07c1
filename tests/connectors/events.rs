//! One write per service, on its real database, through its HTTP API (payments has no write endpoint:
//! its write is the saga step `charge`), and the event the connector puts on `<aggregate>.events`:
//! keyed by the aggregate id, with the event id, event type and trace context as headers, and a value
//! that is the outbox payload byte for byte and decodes through the registry to the expected event.

use std::time::Duration;

use orderflow_platform::StackConfig;
use orderflow_schemas::Event;
use orderflow_schemas::customers::CustomerRegistered;
use orderflow_schemas::inventory::ProductCreated;
use orderflow_schemas::orders::{OrderConfirmed, OrderCreated};
use orderflow_schemas::payments::PaymentSucceeded;
use orderflow_schemas::registry::EventCodec;
use orderflow_schemas::shipping::ShipmentDispatched;
use orderflow_schemas::{Currency, CustomerId, EventId, Money, OrderId, Timestamp, samples};
use orderflow_service_kit::TraceContext;
use serde_json::json;

use crate::common::{
    OutboxEvent, RealService, Record, TopicTail, new_traceparent, outbox_events, require_running,
    stack_with_connect,
};

/// How long an event may take from commit to topic (Connect polls the slot continuously; a restart
/// of Connect by another test is excluded by the lock).
const DELIVERY: Duration = Duration::from_secs(90);

/// The single outbox row of `aggregate_id` with type `E`, and the record the connector made of it,
/// checked header by header and byte by byte; returns the decoded event.
async fn assert_streamed<E: Event>(
    config: &StackConfig,
    tail: &TopicTail,
    rows: &[OutboxEvent],
    aggregate_id: &str,
    trace_id: &str,
) -> E {
    let row = rows
        .iter()
        .find(|r| r.event_type == E::NAME)
        .unwrap_or_else(|| panic!("no {} in the outbox for {aggregate_id}: {rows:?}", E::NAME));
    assert_eq!(tail.topic, E::TOPIC);
    let record: Record = tail.find_event(row.id, DELIVERY).await;

    assert_eq!(
        record.key.as_deref(),
        Some(aggregate_id),
        "key is the aggregate id"
    );
    assert_eq!(record.headers["id"], row.id.to_string(), "event id header");
    assert_eq!(record.headers["event_type"], E::NAME, "event type header");
    let traceparent = &record.headers["traceparent"];
    assert_eq!(Some(traceparent), row.trace_context.as_ref());
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "the trace continues the request's trace {trace_id}: {traceparent}"
    );
    let mut names = record.header_names.clone();
    names.sort();
    assert_eq!(
        names,
        ["event_type", "id", "traceparent"],
        "exactly the contract's headers (no __debezium.* extras)"
    );
    assert_eq!(
        record.value, row.payload,
        "the payload passes through untouched"
    );
    assert_eq!(record.value[0], 0, "Confluent framing: magic byte");

    let codec = EventCodec::new(&config.registry_url).unwrap();
    let event: E = codec
        .decode_as(&record.value)
        .await
        .unwrap_or_else(|e| panic!("decode the record as {}: {e}", E::NAME));
    assert_eq!(event.event_id().as_uuid(), row.id);
    assert_eq!(event.key(), aggregate_id);
    event
}

#[tokio::test]
async fn customers_registration_reaches_customers_events() {
    let (config, _connect) = stack_with_connect().await;
    require_running(&config, "customers-outbox", Duration::from_secs(60)).await;
    let service = RealService::start(&config, orderflow_customers::spec()).await;
    let tail = TopicTail::at_end(&config, CustomerRegistered::TOPIC);
    let (traceparent, trace_id) = new_traceparent();
    let email = format!("cdc-{}@example.org", uuid::Uuid::new_v4().simple());

    let (status, body) = service
        .post(
            "/customers",
            &traceparent,
            json!({
                "name": "Grace Hopper",
                "email": email,
                "phone": "+4930123456",
                "shipping_address": {
                    "line1": "Friedrichstraße 123",
                    "city": "Berlin",
                    "postal_code": "10117",
                    "country": "DE",
                },
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let customer_id = body["id"].as_str().unwrap().to_string();

    let rows = outbox_events(service.pool(), &customer_id).await;
    let event: CustomerRegistered =
        assert_streamed(&config, &tail, &rows, &customer_id, &trace_id).await;
    assert_eq!(event.customer_id.to_string(), customer_id);
    assert_eq!(event.name, "Grace Hopper");
    assert_eq!(event.email.as_str(), email);
}

#[tokio::test]
async fn inventory_product_creation_reaches_inventory_events() {
    let (config, _connect) = stack_with_connect().await;
    require_running(&config, "inventory-outbox", Duration::from_secs(60)).await;
    let service = RealService::start(&config, orderflow_inventory::spec()).await;
    let tail = TopicTail::at_end(&config, ProductCreated::TOPIC);
    let (traceparent, trace_id) = new_traceparent();
    let sku = format!("CDC-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]).to_uppercase();

    let (status, body) = service
        .post(
            "/products",
            &traceparent,
            json!({
                "sku": sku,
                "name": "Change data capture mug",
                "unit_price": {"amount_minor": 1250, "currency": "EUR"},
                "on_hand": 7,
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let rows = outbox_events(service.pool(), &sku).await;
    let event: ProductCreated = assert_streamed(&config, &tail, &rows, &sku, &trace_id).await;
    assert_eq!(event.sku.as_str(), sku);
    assert_eq!(event.name, "Change data capture mug");
    assert_eq!(event.unit_price, Money::new(1250, Currency::EUR).unwrap());
}

#[tokio::test]
async fn orders_draft_creation_reaches_orders_events() {
    let (config, _connect) = stack_with_connect().await;
    require_running(&config, "orders-outbox", Duration::from_secs(60)).await;
    let service = RealService::start(&config, orderflow_orders::spec()).await;
    // The customer replica, as the CustomerRegistered reaction writes it.
    let customer_id = CustomerId::new_v7();
    let mut conn = service.pool().acquire().await.unwrap();
    orderflow_orders::replicas::upsert_customer(
        &mut conn,
        &orderflow_orders::replicas::Customer {
            customer_id,
            active: true,
            shipping_address: samples::address(),
        },
        Timestamp::now(),
    )
    .await
    .unwrap();
    drop(conn);
    let tail = TopicTail::at_end(&config, OrderCreated::TOPIC);
    let (traceparent, trace_id) = new_traceparent();

    let (status, body) = service
        .post(
            "/orders",
            &traceparent,
            json!({"customer_id": customer_id.to_string(), "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().unwrap().to_string();

    let rows = outbox_events(service.pool(), &order_id).await;
    let event: OrderCreated = assert_streamed(&config, &tail, &rows, &order_id, &trace_id).await;
    assert_eq!(event.order_id.to_string(), order_id);
    assert_eq!(event.customer_id, customer_id);
}

#[tokio::test]
async fn shipping_dispatch_reaches_shipping_events() {
    let (config, _connect) = stack_with_connect().await;
    require_running(&config, "shipping-outbox", Duration::from_secs(60)).await;
    let service = RealService::start(&config, orderflow_shipping::spec()).await;
    // The shipment, as the OrderConfirmed reaction creates it (ShipmentCreated goes out too).
    let confirmed = OrderConfirmed {
        event_id: EventId::new_v7(),
        order_id: OrderId::new_v7(),
        customer_id: CustomerId::new_v7(),
        ..samples::order_confirmed()
    };
    let mut tx = service.pool().begin().await.unwrap();
    let created = orderflow_shipping::create_shipment(
        &mut tx,
        &service.context.outbox,
        &TraceContext::new_root(),
        &confirmed,
    )
    .await
    .expect("create the shipment");
    tx.commit().await.unwrap();
    let shipment_id = created.shipment().shipment_id;
    let order_id = confirmed.order_id.to_string();
    let tail = TopicTail::at_end(&config, ShipmentDispatched::TOPIC);
    let (traceparent, trace_id) = new_traceparent();

    let (status, body) = service
        .post(
            &format!("/shipments/{shipment_id}/dispatch"),
            &traceparent,
            json!({"carrier": "DHL Express", "tracking_number": "JJD0099887766554433"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let rows = outbox_events(service.pool(), &order_id).await;
    let event: ShipmentDispatched =
        assert_streamed(&config, &tail, &rows, &order_id, &trace_id).await;
    assert_eq!(event.shipment_id, shipment_id);
    assert_eq!(event.carrier, "DHL Express");
}

/// Payments has no write endpoint: a charge happens only as the saga's reaction to StockReserved.
/// Its write is that step, on the real database, exactly as the reaction calls it.
#[tokio::test]
async fn payments_charge_reaches_payments_events() {
    let (config, _connect) = stack_with_connect().await;
    require_running(&config, "payments-outbox", Duration::from_secs(60)).await;
    let service = RealService::start(&config, orderflow_payments::spec()).await;
    let tail = TopicTail::at_end(&config, PaymentSucceeded::TOPIC);
    let (traceparent, trace_id) = new_traceparent();
    let request = orderflow_payments::ChargeRequest {
        order_id: OrderId::new_v7(),
        customer_id: CustomerId::new_v7(),
        amount: Money::new(4_200, Currency::EUR).unwrap(),
    };

    let mut tx = service.pool().begin().await.unwrap();
    orderflow_payments::charge(
        &mut tx,
        &service.context.outbox,
        &TraceContext::continue_from(Some(&traceparent)),
        &orderflow_payments::GatewayConfig::default(),
        &request,
    )
    .await
    .expect("charge");
    tx.commit().await.unwrap();

    let order_id = request.order_id.to_string();
    let rows = outbox_events(service.pool(), &order_id).await;
    let event: PaymentSucceeded =
        assert_streamed(&config, &tail, &rows, &order_id, &trace_id).await;
    assert_eq!(event.order_id, request.order_id);
    assert_eq!(event.amount, request.amount);
}
