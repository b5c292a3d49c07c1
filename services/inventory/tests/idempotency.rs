//! Idempotency keys on the inventory's POSTs, against the real PostgreSQL and registry: a retried
//! restock or product creation is answered from its key and has one effect (rows and outbox events
//! counted); another body under the key is a 422 naming the header; concurrent copies restock once and
//! a copy arriving while the first runs is a 409; a key replays after a restart; 4xx answers are
//! stored, 5xx are not, and a failure to store the key undoes the effect; expired keys run again and
//! are purged.

use std::time::Duration;

use axum::http::StatusCode;
use orderflow_inventory::spec;
use orderflow_service_kit::idempotency::{IdempotencyConfig, purge_older_than};
use orderflow_service_kit::testing::{Answer, TestService};
use serde_json::{Value, json};

fn product(sku: &str, on_hand: i64) -> Value {
    json!({
        "sku": sku,
        "name": "Mug",
        "unit_price": {"amount_minor": 500, "currency": "EUR"},
        "on_hand": on_hand,
    })
}

async fn create(service: &TestService, sku: &str, on_hand: i64) {
    let (status, body) = service.post("/products", product(sku, on_hand)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn on_hand(service: &TestService, sku: &str) -> i32 {
    sqlx::query_scalar("SELECT on_hand FROM products WHERE sku = $1")
        .bind(sku)
        .fetch_one(service.pool())
        .await
        .unwrap()
}

fn assert_names_the_header(answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["field"], "Idempotency-Key", "{}", answer.body);
    assert!(answer.body["message"].as_str().is_some(), "{}", answer.body);
    assert!(!answer.replayed);
}

#[tokio::test]
async fn a_retried_restock_is_answered_from_its_key_and_restocks_once() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", 2).await;
    let outbox = service.count("outbox").await;
    let body = json!({"quantity": 5});
    let first = service
        .post_keyed("/products/MUG/restock", "restock-1", Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    let again = service
        .post_keyed("/products/MUG/restock", "restock-1", Some(&body))
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed, "the second answer is marked replayed");
    assert_eq!(on_hand(&service, "MUG").await, 7, "restocked once");
    assert_eq!(
        service.count("outbox").await,
        outbox + 1,
        "one ProductRestocked"
    );

    // without a key, a second restock is a second effect, as before
    let (status, _) = service.post("/products/MUG/restock", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(on_hand(&service, "MUG").await, 12);
    service.finish().await;
}

#[tokio::test]
async fn a_retried_product_creation_answers_201_again_and_creates_once() {
    let service = TestService::start(spec()).await;
    let body = product("CUP", 3);
    let first = service
        .post_keyed("/products", "create-cup", Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = service
        .post_keyed("/products", "create-cup", Some(&body))
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed);
    assert_eq!(service.count("products").await, 1);
    assert_eq!(service.count("outbox").await, 1, "one ProductCreated");
    service.finish().await;
}

#[tokio::test]
async fn another_request_under_a_key_is_a_422_naming_the_header_and_changes_nothing() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", 2).await;
    create(&service, "CUP", 2).await;
    let first = service
        .post_keyed("/products/MUG/restock", "k", Some(&json!({"quantity": 5})))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let before = service.counts(&["outbox", "idempotency_keys"]).await;
    let other_body = service
        .post_keyed("/products/MUG/restock", "k", Some(&json!({"quantity": 6})))
        .await;
    assert_names_the_header(&other_body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other_body.body["error"], "idempotency_key_reused");
    let other_product = service
        .post_keyed("/products/CUP/restock", "k", Some(&json!({"quantity": 5})))
        .await;
    assert_names_the_header(&other_product, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        service.counts(&["outbox", "idempotency_keys"]).await,
        before
    );
    assert_eq!(
        (
            on_hand(&service, "MUG").await,
            on_hand(&service, "CUP").await
        ),
        (7, 2)
    );
    // keys are scoped per route: the same key on another route is another key
    let elsewhere = service
        .post_keyed("/products", "k", Some(&product("PLATE", 1)))
        .await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.body);
    service.finish().await;
}

#[tokio::test]
async fn a_malformed_key_is_a_400_naming_the_header_and_changes_nothing() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", 2).await;
    let before = service.counts(&["outbox", "idempotency_keys"]).await;
    for key in ["", "   ", &"k".repeat(256)] {
        let answer = service
            .post_keyed("/products/MUG/restock", key, Some(&json!({"quantity": 5})))
            .await;
        assert_names_the_header(&answer, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        service.counts(&["outbox", "idempotency_keys"]).await,
        before
    );
    assert_eq!(on_hand(&service, "MUG").await, 2);
    let longest = service
        .post_keyed(
            "/products/MUG/restock",
            &"k".repeat(255),
            Some(&json!({"quantity": 5})),
        )
        .await;
    assert_eq!(longest.status, StatusCode::OK, "{}", longest.body);
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_keyed_restock_restock_once() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", 2).await;
    let outbox = service.count("outbox").await;
    let body = json!({"quantity": 5});
    let answers = service
        .post_keyed_concurrently("/products/MUG/restock", "burst", Some(&body), 8)
        .await;
    let done: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert!(!done.is_empty(), "{answers:?}");
    assert!(done.iter().all(|a| a.body == done[0].body), "{answers:?}");
    for answer in answers.iter().filter(|a| a.status != StatusCode::OK) {
        assert_names_the_header(answer, StatusCode::CONFLICT);
        assert_eq!(answer.body["error"], "idempotency_key_in_use");
    }
    assert_eq!(
        on_hand(&service, "MUG").await,
        7,
        "restocked once: {answers:?}"
    );
    assert_eq!(service.count("outbox").await, outbox + 1);
    service.finish().await;
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_still_runs_is_a_409() {
    let service = TestService::start(spec()).await;
    create(&service, "MUG", 2).await;
    let body = json!({"quantity": 5});
    // hold the product's row lock so the first request parks inside its transaction
    let mut blocker = service.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM products WHERE sku = 'MUG' FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let first = {
        let service = &service;
        let body = body.clone();
        async move {
            service
                .post_keyed("/products/MUG/restock", "slow", Some(&body))
                .await
        }
    };
    let second = async {
        service.wait_for_a_lock_wait().await;
        let copy = service.post_keyed("/products/MUG/restock", "slow", Some(&body));
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), copy)
            .await
            .expect("the copy is answered at once, not queued behind the first");
        blocker.commit().await.unwrap();
        answer
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_names_the_header(&second, StatusCode::CONFLICT);
    assert_eq!(second.body["error"], "idempotency_key_in_use");
    let third = service
        .post_keyed("/products/MUG/restock", "slow", Some(&body))
        .await;
    assert!(third.replayed);
    assert_eq!(third.body, first.body);
    assert_eq!(on_hand(&service, "MUG").await, 7);
    service.finish().await;
}

#[tokio::test]
async fn a_key_still_replays_after_the_service_restarted() {
    let mut service = TestService::start(spec()).await;
    create(&service, "MUG", 2).await;
    let body = json!({"quantity": 5});
    let first = service
        .post_keyed("/products/MUG/restock", "before-restart", Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let old_url = service.url.clone();
    service.restart().await;
    assert_ne!(service.url, old_url, "a new instance");
    let again = service
        .post_keyed("/products/MUG/restock", "before-restart", Some(&body))
        .await;
    assert!(again.replayed, "{}", again.body);
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(on_hand(&service, "MUG").await, 7);
    assert_eq!(
        service.count("outbox").await,
        2,
        "ProductCreated, one ProductRestocked"
    );
    service.finish().await;
}

#[tokio::test]
async fn a_4xx_is_stored_and_replayed_but_a_5xx_is_not() {
    let service = TestService::start(spec()).await;
    let body = json!({"quantity": 5});
    let missing = service
        .post_keyed("/products/MUG/restock", "early", Some(&body))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    create(&service, "MUG", 2).await;
    let replayed = service
        .post_keyed("/products/MUG/restock", "early", Some(&body))
        .await;
    assert!(replayed.replayed, "the 404 is the key's answer");
    assert_eq!(
        (replayed.status, &replayed.body),
        (missing.status, &missing.body)
    );
    assert_eq!(on_hand(&service, "MUG").await, 2);

    // the outbox insert fails: 500, nothing stored, nothing changed; the retry then runs
    sqlx::query(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
    )
    .execute(service.pool())
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .execute(service.pool())
    .await
    .unwrap();
    let before = service.counts(&["outbox", "idempotency_keys"]).await;
    let failed = service
        .post_keyed("/products/MUG/restock", "server-error", Some(&body))
        .await;
    assert_eq!(
        failed.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        failed.body
    );
    assert_eq!(
        service.counts(&["outbox", "idempotency_keys"]).await,
        before
    );
    sqlx::query("DROP TRIGGER refuse ON outbox")
        .execute(service.pool())
        .await
        .unwrap();
    let retried = service
        .post_keyed("/products/MUG/restock", "server-error", Some(&body))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert!(!retried.replayed);
    assert_eq!(on_hand(&service, "MUG").await, 7);

    // storing the key fails: the effect, on the same transaction, is undone with it
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .execute(service.pool())
    .await
    .unwrap();
    let before = service.counts(&["outbox", "idempotency_keys"]).await;
    let unstored = service
        .post_keyed("/products/MUG/restock", "unstored", Some(&body))
        .await;
    assert_eq!(unstored.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        service.counts(&["outbox", "idempotency_keys"]).await,
        before
    );
    assert_eq!(
        on_hand(&service, "MUG").await,
        7,
        "the restock was rolled back"
    );
    service.finish().await;
}

#[tokio::test]
async fn an_expired_key_runs_again_and_is_purged() {
    let config = IdempotencyConfig::from_hours(1).unwrap();
    let service = TestService::start_with(spec(), config).await;
    create(&service, "MUG", 2).await;
    let body = json!({"quantity": 5});
    let first = service
        .post_keyed("/products/MUG/restock", "old", Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '61 minutes'")
        .execute(service.pool())
        .await
        .unwrap();
    let after_expiry = service
        .post_keyed("/products/MUG/restock", "old", Some(&body))
        .await;
    assert_eq!(after_expiry.status, StatusCode::OK);
    assert!(!after_expiry.replayed, "an expired key is a new key");
    assert_eq!(on_hand(&service, "MUG").await, 12);
    assert_eq!(
        service.count("idempotency_keys").await,
        1,
        "the key row was replaced"
    );

    let kept = service
        .post_keyed("/products/MUG/restock", "young", Some(&body))
        .await;
    assert_eq!(kept.status, StatusCode::OK);
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '61 minutes' WHERE key = 'old'",
    )
    .execute(service.pool())
    .await
    .unwrap();
    let purged = purge_older_than(service.pool(), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(service.pool())
        .await
        .unwrap();
    assert_eq!(left, ["young"]);
    service.finish().await;
}

#[tokio::test]
async fn the_openapi_document_names_the_header_on_every_post() {
    let service = TestService::start(spec()).await;
    service
        .assert_every_post_documents_the_idempotency_key()
        .await;
    service.finish().await;
}
