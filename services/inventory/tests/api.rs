//! The inventory service against the real PostgreSQL and schema registry: every write endpoint's
//! answer, rows and single outbox event (decoded through the registry); every bad input answered 4xx
//! naming the field with nothing written; reads, search and pagination; and the saga operations
//! (reserve all-or-none, concurrency, idempotence, release, commit) driven at the database level.

use axum::http::StatusCode;
use orderflow_inventory::domain::{Outcome, ReservationStatus};
use orderflow_inventory::reservations::{
    ReserveOutcome, commit_for_order, release_for_order, reservations_of, reserve_for_order,
};
use orderflow_inventory::spec;
use orderflow_schemas::inventory::{
    ProductCreated, ProductRestocked, StockCommitted, StockLine, StockRejected, StockReleased,
    StockReserved, StockShortage,
};
use orderflow_schemas::orders::{OrderLine, OrderPlaced};
use orderflow_schemas::{
    Currency, CustomerId, EventId, Money, OrderId, Quantity, Sku, StockLevel, Timestamp, samples,
};
use orderflow_service_kit::TraceContext;
use orderflow_service_kit::testing::TestService;
use serde_json::{Value, json};

const TABLES: [&str; 4] = ["products", "stock_decisions", "reservations", "outbox"];

fn sku(s: &str) -> Sku {
    s.parse().unwrap()
}
fn q(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}
fn level(n: u32) -> StockLevel {
    StockLevel::new(n).unwrap()
}
fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR).unwrap()
}

fn product_body(sku: &str, name: &str, price: i64, on_hand: i64) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "unit_price": {"amount_minor": price, "currency": "EUR"},
        "on_hand": on_hand,
    })
}

async fn create(service: &TestService, sku: &str, name: &str, on_hand: i64) {
    let (status, body) = service
        .post("/products", product_body(sku, name, 500, on_hand))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn stock_of(service: &TestService, sku: &str) -> (i32, i32) {
    sqlx::query_as("SELECT on_hand, reserved FROM products WHERE sku = $1")
        .bind(sku)
        .fetch_one(service.pool())
        .await
        .unwrap()
}

/// An `OrderPlaced` for `lines` at 5.00 EUR a unit.
fn order_placed(lines: &[(&str, u32)]) -> OrderPlaced {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|&(s, n)| OrderLine {
            sku: sku(s),
            quantity: q(n),
            unit_price: eur(500),
        })
        .collect();
    let total = lines
        .iter()
        .map(|l| l.line_total().unwrap())
        .fold(eur(0), |a, b| a.checked_add(b).unwrap());
    OrderPlaced {
        event_id: EventId::new_v7(),
        occurred_at: Timestamp::now(),
        order_id: OrderId::new_v7(),
        customer_id: CustomerId::new_v7(),
        lines,
        total,
        shipping_address: samples::address(),
        created_at: Timestamp::now(),
        placed_at: Timestamp::now(),
    }
}

async fn reserve(service: &TestService, order: &OrderPlaced) -> ReserveOutcome {
    let mut tx = service.pool().begin().await.unwrap();
    let outcome = reserve_for_order(
        &mut tx,
        &service.context.outbox,
        &TraceContext::new_root(),
        order,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    outcome
}

/// Assert a 4xx JSON error naming `field` and nothing written.
async fn assert_refused(
    service: &TestService,
    (status, body): (StatusCode, Value),
    expected: StatusCode,
    field: &str,
    before: &[(String, i64)],
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["field"], field, "{body}");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    assert_eq!(service.counts(&TABLES).await, before, "nothing written");
}

#[tokio::test]
async fn creating_a_product_writes_it_and_one_product_created_event() {
    let service = TestService::start(spec()).await;
    let (status, body) = service
        .post(
            "/products",
            json!({
                "sku": "MUG-BLUE",
                "name": "  Blue mug ",
                "description": "Holds tea.",
                "unit_price": {"amount_minor": 1299, "currency": "EUR"},
                "on_hand": 7,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["sku"], "MUG-BLUE");
    assert_eq!(body["name"], "Blue mug");
    assert_eq!(body["description"], "Holds tea.");
    assert_eq!(
        body["unit_price"],
        json!({"amount_minor": 1299, "currency": "EUR"})
    );
    assert_eq!(
        (&body["on_hand"], &body["reserved"], &body["available"]),
        (&json!(7), &json!(0), &json!(7))
    );
    assert_eq!(service.count("products").await, 1);
    let row: (String, i64, String, i32, i32) = sqlx::query_as(
        "SELECT name, unit_price_minor, currency, on_hand, reserved FROM products WHERE sku = 'MUG-BLUE'",
    )
    .fetch_one(service.pool())
    .await
    .unwrap();
    assert_eq!(row, ("Blue mug".into(), 1299, "EUR".into(), 7, 0));
    let event: ProductCreated = service.single_new_event(0).await;
    assert_eq!(event.sku, sku("MUG-BLUE"));
    assert_eq!(event.name, "Blue mug");
    assert_eq!(event.description.as_deref(), Some("Holds tea."));
    assert_eq!(event.unit_price, eur(1299));
    assert_eq!(event.on_hand, level(7));
    service.finish().await;
}

#[tokio::test]
async fn a_duplicate_sku_is_a_conflict_naming_sku() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", "Mug", 1).await;
    let before = service.counts(&TABLES).await;
    let answer = service
        .post("/products", product_body("MUG", "Another mug", 100, 3))
        .await;
    assert_refused(&service, answer, StatusCode::CONFLICT, "sku", &before).await;
    service.finish().await;
}

#[tokio::test]
async fn bad_product_bodies_are_refused_naming_the_field() {
    let service = TestService::start(spec()).await;
    create(&service, "EXISTING", "Existing", 1).await;
    let before = service.counts(&TABLES).await;
    let with = |key: &str, value: Value| {
        let mut body = product_body("NEW-1", "New", 100, 1);
        body[key] = value;
        body
    };
    let cases = [
        (with("on_hand", json!(-1)), "on_hand"),
        (with("on_hand", json!("3")), "on_hand"),
        (with("on_hand", json!(3_000_000_000i64)), "on_hand"),
        (with("sku", json!("no spaces")), "sku"),
        (with("sku", json!("")), "sku"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("description", json!("x".repeat(2001))), "description"),
        (
            with("unit_price", json!({"amount_minor": -1, "currency": "EUR"})),
            "unit_price.amount_minor",
        ),
        (
            with("unit_price", json!({"amount_minor": 1, "currency": "eur"})),
            "unit_price.currency",
        ),
        (
            with(
                "unit_price",
                json!({"amount_minor": 1, "currency": "EUR", "tax": 1}),
            ),
            "unit_price.tax",
        ),
        (with("discount", json!(5)), "discount"),
        (
            json!({"sku": "NEW-2", "name": "New", "on_hand": 1}),
            "unit_price",
        ),
    ];
    for (body, field) in cases {
        let answer = service.post("/products", body.clone()).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{body}: {}", answer.1);
        let named = answer.1["field"].as_str().unwrap_or_default().to_owned();
        let message = answer.1["message"].as_str().unwrap_or_default().to_owned();
        assert_eq!(named, field, "{body}: {}", answer.1);
        if field == "unit_price" {
            // a missing field: named by its path, and in the message
            assert!(
                message.contains("missing field `unit_price`"),
                "{body}: {}",
                answer.1
            );
        }
        assert_eq!(service.counts(&TABLES).await, before, "{body}");
    }
    let answer = service
        .post_raw("/products", "application/json", br#"{"sku": "X""#.to_vec())
        .await;
    assert_refused(
        &service,
        answer.clone(),
        StatusCode::BAD_REQUEST,
        "body",
        &before,
    )
    .await;
    assert_eq!(answer.1["error"], "malformed_json");
    let answer = service
        .post_raw("/products", "text/plain", b"sku=X".to_vec())
        .await;
    assert_refused(
        &service,
        answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content-type",
        &before,
    )
    .await;
    let mut huge = product_body("HUGE", "Huge", 1, 1);
    huge["description"] = json!("x".repeat(70 * 1024));
    let answer = service
        .post_raw(
            "/products",
            "application/json",
            serde_json::to_vec(&huge).unwrap(),
        )
        .await;
    assert_refused(
        &service,
        answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body",
        &before,
    )
    .await;
    service.finish().await;
}

#[tokio::test]
async fn restocking_adds_units_and_writes_one_product_restocked_event() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", "Mug", 2).await;
    let before = service.outbox_rows().await.len();
    let (status, body) = service
        .post("/products/MUG/restock", json!({"quantity": 5}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["on_hand"], &body["available"]),
        (&json!(7), &json!(7))
    );
    assert_eq!(stock_of(&service, "MUG").await, (7, 0));
    let event: ProductRestocked = service.single_new_event(before).await;
    assert_eq!(event.sku, sku("MUG"));
    assert_eq!(event.quantity_added, q(5));
    assert_eq!(event.on_hand_after, level(7));
    service.finish().await;
}

#[tokio::test]
async fn bad_restocks_are_refused_and_change_nothing() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", "Mug", 2).await;
    create(&service, "FULL", "Full", i64::from(i32::MAX)).await;
    let before = service.counts(&TABLES).await;
    for quantity in [json!(0), json!(-3), json!(1.5), json!("2"), Value::Null] {
        let answer = service
            .post("/products/MUG/restock", json!({"quantity": quantity}))
            .await;
        assert_refused(
            &service,
            answer,
            StatusCode::BAD_REQUEST,
            "quantity",
            &before,
        )
        .await;
    }
    let answer = service
        .post("/products/MUG/restock", json!({"quantity": 1, "note": "x"}))
        .await;
    assert_eq!(answer.0, StatusCode::BAD_REQUEST);
    assert!(answer.1["message"].as_str().unwrap().contains("note"));
    let answer = service
        .post("/products/NOPE/restock", json!({"quantity": 1}))
        .await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
    assert_eq!(answer.1["error"], "not_found");
    let answer = service
        .post("/products/not%20a%20sku/restock", json!({"quantity": 1}))
        .await;
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "sku", &before).await;
    let answer = service
        .post("/products/FULL/restock", json!({"quantity": 1}))
        .await;
    assert_refused(
        &service,
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "quantity",
        &before,
    )
    .await;
    assert_eq!(service.counts(&TABLES).await, before);
    assert_eq!(stock_of(&service, "MUG").await, (2, 0));
    service.finish().await;
}

#[tokio::test]
async fn get_one_product_or_a_json_404() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", "Mug", 3).await;
    let (status, body) = service.get("/products/MUG").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sku"], "MUG");
    assert_eq!(body["available"], 3);
    let (status, body) = service.get("/products/NOPE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, body) = service.get("/products/bad%20sku").await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("sku"))
    );
    service.finish().await;
}

#[tokio::test]
async fn list_searches_by_sku_prefix_or_name_and_pages_in_sku_order() {
    let service = TestService::start(spec()).await;
    for (s, name) in [
        ("TEA-GREEN", "Green tea"),
        ("MUG-RED", "Red mug"),
        ("MUG-BLUE", "Blue mug"),
        ("PLATE", "Dinner plate"),
        ("CUP-1", "Espresso cup (fits a MUG rack)"),
    ] {
        create(&service, s, name, 1).await;
    }
    let skus = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = service.get("/products").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        skus(&body),
        ["CUP-1", "MUG-BLUE", "MUG-RED", "PLATE", "TEA-GREEN"]
    );
    assert_eq!(
        (&body["total"], &body["limit"], &body["offset"]),
        (&json!(5), &json!(20), &json!(0))
    );
    let (_, body) = service.get("/products?q=mug").await;
    assert_eq!(skus(&body), ["CUP-1", "MUG-BLUE", "MUG-RED"]);
    let (_, body) = service.get("/products?q=tea-").await;
    assert_eq!(skus(&body), ["TEA-GREEN"]);
    let (_, body) = service.get("/products?q=PLAT").await;
    assert_eq!(skus(&body), ["PLATE"]);
    let (_, body) = service.get("/products?q=%25").await;
    assert_eq!(skus(&body), Vec::<String>::new(), "% is literal text");
    let (_, body) = service.get("/products?limit=2&offset=1").await;
    assert_eq!(skus(&body), ["MUG-BLUE", "MUG-RED"]);
    assert_eq!(body["total"], 5);
    let (_, body) = service.get("/products?limit=2&offset=4").await;
    assert_eq!(skus(&body), ["TEA-GREEN"]);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("limit=abc", "limit"),
        ("offset=-2", "offset"),
        ("sort=name", "sort"),
    ] {
        let (status, body) = service.get(&format!("/products?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    service.finish().await;
}

#[tokio::test]
async fn ready_and_the_openapi_document() {
    let service = TestService::start(spec()).await;
    let (status, body) = service.get("/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, doc) = service.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/products", "/products/{sku}", "/products/{sku}/restock"] {
        assert!(doc["paths"].get(path).is_some(), "{path} in {doc}");
    }
    service.finish().await;
}

#[tokio::test]
async fn an_order_is_reserved_in_full_with_one_stock_reserved_event() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    create(&service, "B", "B", 2).await;
    let before = service.outbox_rows().await.len();
    let order = order_placed(&[("B", 2), ("A", 3)]);
    let outcome = reserve(&service, &order).await;
    let ReserveOutcome::Reserved(returned) = outcome else {
        panic!("{outcome:?}")
    };
    let event: StockReserved = service.single_new_event(before).await;
    assert_eq!(event, returned);
    assert_eq!(event.order_id, order.order_id);
    assert_eq!(event.customer_id, order.customer_id);
    assert_eq!(event.amount_to_charge, eur(2500));
    assert_eq!(
        event.lines,
        vec![
            StockLine {
                sku: sku("A"),
                quantity: q(3)
            },
            StockLine {
                sku: sku("B"),
                quantity: q(2)
            }
        ]
    );
    assert_eq!(stock_of(&service, "A").await, (5, 3));
    assert_eq!(stock_of(&service, "B").await, (2, 2));
    let held = reservations_of(service.pool(), order.order_id)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|r| r.status == ReservationStatus::Reserved));
    let (status, body) = service.get("/products/A").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["reserved"], &body["available"]),
        (&json!(3), &json!(2))
    );
    service.finish().await;
}

#[tokio::test]
async fn one_short_line_reserves_nothing_and_names_every_shortage() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    create(&service, "B", "B", 1).await;
    let before_stock = (stock_of(&service, "A").await, stock_of(&service, "B").await);
    let before = service.outbox_rows().await.len();
    let order = order_placed(&[("A", 2), ("B", 3), ("GHOST", 1)]);
    let outcome = reserve(&service, &order).await;
    let ReserveOutcome::Rejected(returned) = outcome else {
        panic!("{outcome:?}")
    };
    let event: StockRejected = service.single_new_event(before).await;
    assert_eq!(event, returned);
    assert_eq!(event.order_id, order.order_id);
    assert_eq!(
        event.shortages,
        vec![
            StockShortage {
                sku: sku("B"),
                requested: q(3),
                available: level(1)
            },
            StockShortage {
                sku: sku("GHOST"),
                requested: q(1),
                available: level(0)
            },
        ]
    );
    assert_eq!(
        (stock_of(&service, "A").await, stock_of(&service, "B").await),
        before_stock
    );
    assert_eq!(service.count("reservations").await, 0);
    service.finish().await;
}

#[tokio::test]
async fn reserving_twice_for_one_order_writes_nothing_the_second_time() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    let order = order_placed(&[("A", 2)]);
    assert!(matches!(
        reserve(&service, &order).await,
        ReserveOutcome::Reserved(_)
    ));
    let before = service.counts(&TABLES).await;
    let again = OrderPlaced {
        event_id: EventId::new_v7(),
        ..order.clone()
    };
    assert_eq!(
        reserve(&service, &again).await,
        ReserveOutcome::AlreadyDecided(Outcome::Reserved)
    );
    assert_eq!(service.counts(&TABLES).await, before);
    assert_eq!(stock_of(&service, "A").await, (5, 2));

    let rejected = order_placed(&[("A", 99)]);
    assert!(matches!(
        reserve(&service, &rejected).await,
        ReserveOutcome::Rejected(_)
    ));
    // Even with the stock there now, a decided order stays decided.
    let before = service.counts(&TABLES).await;
    let smaller = OrderPlaced {
        lines: vec![OrderLine {
            sku: sku("A"),
            quantity: q(1),
            unit_price: eur(500),
        }],
        ..rejected
    };
    assert_eq!(
        reserve(&service, &smaller).await,
        ReserveOutcome::AlreadyDecided(Outcome::Rejected)
    );
    assert_eq!(service.counts(&TABLES).await, before);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_copies_of_one_order_reserve_once() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 10).await;
    let before = service.outbox_rows().await.len();
    let order = order_placed(&[("A", 3)]);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (pool, outbox, order) = (
            service.pool().clone(),
            service.context.outbox.clone(),
            order.clone(),
        );
        tasks.spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let outcome = reserve_for_order(&mut tx, &outbox, &TraceContext::new_root(), &order)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            outcome
        });
    }
    let outcomes = tasks.join_all().await;
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, ReserveOutcome::Reserved(_)))
        .count();
    let repeated = outcomes
        .iter()
        .filter(|o| **o == ReserveOutcome::AlreadyDecided(Outcome::Reserved))
        .count();
    assert_eq!((reserved, repeated), (1, 5), "{outcomes:?}");
    assert_eq!(stock_of(&service, "A").await, (10, 3));
    assert_eq!(service.outbox_rows().await.len(), before + 1);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_never_oversell_or_deadlock() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    create(&service, "B", "B", 100).await;
    create(&service, "C", "C", 100).await;
    let before = service.outbox_rows().await.len();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        // Lines in opposite orders, so a lock order taken from the request would deadlock.
        let lines: &[(&str, u32)] = if i % 2 == 0 {
            &[("A", 1), ("B", 1), ("C", 1)]
        } else {
            &[("C", 1), ("B", 1), ("A", 1)]
        };
        let order = order_placed(lines);
        let (pool, outbox) = (service.pool().clone(), service.context.outbox.clone());
        tasks.spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let outcome = reserve_for_order(&mut tx, &outbox, &TraceContext::new_root(), &order)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            outcome
        });
    }
    let outcomes = tasks.join_all().await;
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, ReserveOutcome::Reserved(_)))
        .count();
    let rejected = outcomes
        .iter()
        .filter(|o| matches!(o, ReserveOutcome::Rejected(_)))
        .count();
    assert_eq!((reserved, rejected), (5, 15));
    assert_eq!(stock_of(&service, "A").await, (5, 5));
    assert_eq!(stock_of(&service, "B").await, (100, 5));
    assert_eq!(stock_of(&service, "C").await, (100, 5));
    assert_eq!(service.count("reservations").await, 15);
    assert_eq!(service.outbox_rows().await.len(), before + 20);
    for outcome in outcomes {
        if let ReserveOutcome::Rejected(event) = outcome {
            assert_eq!(
                event.shortages,
                vec![StockShortage {
                    sku: sku("A"),
                    requested: q(1),
                    available: level(0)
                }]
            );
        }
    }
    service.finish().await;
}

#[tokio::test]
async fn releasing_gives_reserved_stock_back_once() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    create(&service, "B", "B", 5).await;
    let order = order_placed(&[("A", 2), ("B", 1)]);
    reserve(&service, &order).await;
    let before = service.outbox_rows().await.len();
    let trace = TraceContext::new_root();
    let mut tx = service.pool().begin().await.unwrap();
    let returned = release_for_order(&mut tx, &service.context.outbox, &trace, order.order_id)
        .await
        .unwrap()
        .expect("something was reserved");
    tx.commit().await.unwrap();
    let event: StockReleased = service.single_new_event(before).await;
    assert_eq!(event, returned);
    assert_eq!(event.order_id, order.order_id);
    assert_eq!(
        event.lines,
        vec![
            StockLine {
                sku: sku("A"),
                quantity: q(2)
            },
            StockLine {
                sku: sku("B"),
                quantity: q(1)
            }
        ]
    );
    assert_eq!(stock_of(&service, "A").await, (5, 0));
    assert_eq!(stock_of(&service, "B").await, (5, 0));
    let held = reservations_of(service.pool(), order.order_id)
        .await
        .unwrap();
    assert!(held.iter().all(|r| r.status == ReservationStatus::Released));

    // Again: nothing to do, nothing written.
    let before = service.counts(&TABLES).await;
    let mut tx = service.pool().begin().await.unwrap();
    let released = release_for_order(&mut tx, &service.context.outbox, &trace, order.order_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(released, None);
    assert_eq!(service.counts(&TABLES).await, before);
    service.finish().await;
}

#[tokio::test]
async fn an_order_cancelled_before_it_was_decided_reserves_nothing_when_placed_later() {
    // A redriven dead letter (or a stray copy) of an OrderPlaced can come after the order's
    // OrderCancelled: the cancellation decides the order, so the late OrderPlaced reserves nothing.
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    let order = order_placed(&[("A", 2)]);
    let trace = TraceContext::new_root();
    let before = service.outbox_rows().await.len();
    let mut tx = service.pool().begin().await.unwrap();
    let released = release_for_order(&mut tx, &service.context.outbox, &trace, order.order_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(released, None, "nothing was reserved, nothing released");
    let mut tx = service.pool().begin().await.unwrap();
    let outcome = reserve_for_order(&mut tx, &service.context.outbox, &trace, &order)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(outcome, ReserveOutcome::AlreadyDecided(Outcome::Cancelled));
    assert_eq!(stock_of(&service, "A").await, (5, 0), "stock unchanged");
    assert!(
        reservations_of(service.pool(), order.order_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        service.outbox_rows().await.len(),
        before,
        "no StockReserved, no StockReleased"
    );
    service.finish().await;
}

#[tokio::test]
async fn committing_takes_the_units_off_hand_for_good() {
    let service = TestService::start(spec()).await;
    create(&service, "A", "A", 5).await;
    let order = order_placed(&[("A", 2)]);
    reserve(&service, &order).await;
    let other = order_placed(&[("A", 1)]);
    reserve(&service, &other).await;
    assert_eq!(stock_of(&service, "A").await, (5, 3));
    let before = service.outbox_rows().await.len();
    let trace = TraceContext::new_root();
    let mut tx = service.pool().begin().await.unwrap();
    let returned = commit_for_order(&mut tx, &service.context.outbox, &trace, order.order_id)
        .await
        .unwrap()
        .expect("something was reserved");
    tx.commit().await.unwrap();
    let event: StockCommitted = service.single_new_event(before).await;
    assert_eq!(event, returned);
    assert_eq!(
        event.lines,
        vec![StockLine {
            sku: sku("A"),
            quantity: q(2)
        }]
    );
    assert_eq!(stock_of(&service, "A").await, (3, 1));
    let held = reservations_of(service.pool(), order.order_id)
        .await
        .unwrap();
    assert_eq!(held[0].status, ReservationStatus::Committed);

    // A committed order has nothing left to commit or release.
    let before = service.counts(&TABLES).await;
    let mut tx = service.pool().begin().await.unwrap();
    assert_eq!(
        commit_for_order(&mut tx, &service.context.outbox, &trace, order.order_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        release_for_order(&mut tx, &service.context.outbox, &trace, order.order_id)
            .await
            .unwrap(),
        None
    );
    tx.commit().await.unwrap();
    assert_eq!(service.counts(&TABLES).await, before);
    assert_eq!(stock_of(&service, "A").await, (3, 1));
    service.finish().await;
}

#[tokio::test]
async fn an_order_without_lines_is_refused_and_writes_nothing() {
    let service = TestService::start(spec()).await;
    let before = service.counts(&TABLES).await;
    let order = order_placed(&[]);
    let mut tx = service.pool().begin().await.unwrap();
    let error = reserve_for_order(
        &mut tx,
        &service.context.outbox,
        &TraceContext::new_root(),
        &order,
    )
    .await
    .unwrap_err();
    tx.rollback().await.unwrap();
    assert!(matches!(
        error,
        orderflow_inventory::InventoryError::EmptyOrder(id) if id == order.order_id
    ));
    assert_eq!(service.counts(&TABLES).await, before);
    service.finish().await;
}
