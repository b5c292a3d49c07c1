//! Idempotency keys on the customers' POSTs, against the real PostgreSQL and registry: a retried
//! registration or deactivation is answered from its key (201 again, not a 409 for the e-mail) and has
//! one effect (rows and outbox events counted); another body under the key is a 422 naming the header;
//! concurrent copies register once; a key replays after a restart.

use axum::http::StatusCode;
use orderflow_customers::spec;
use orderflow_service_kit::testing::{Answer, TestService};
use serde_json::{Value, json};

fn registration(email: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "email": email,
        "shipping_address": {
            "line1": "Friedrichstraße 123",
            "city": "Berlin",
            "postal_code": "10117",
            "country": "DE",
        },
    })
}

fn assert_names_the_header(answer: &Answer, status: StatusCode, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["field"], "Idempotency-Key", "{}", answer.body);
    assert_eq!(answer.body["error"], error, "{}", answer.body);
    assert!(!answer.replayed);
}

#[tokio::test]
async fn a_retried_registration_answers_201_again_and_registers_once() {
    let service = TestService::start(spec()).await;
    let body = registration("ada@example.org");
    let first = service
        .post_keyed("/customers", "signup-1", Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = service
        .post_keyed("/customers", "signup-1", Some(&body))
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed, "the first answer, not a 409 for the e-mail");
    assert_eq!(service.count("customers").await, 1);
    assert_eq!(service.count("outbox").await, 1, "one CustomerRegistered");

    let other = service
        .post_keyed(
            "/customers",
            "signup-1",
            Some(&registration("grace@example.org")),
        )
        .await;
    assert_names_the_header(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(
        service.count("customers").await,
        1,
        "grace was not registered"
    );
    service.finish().await;
}

#[tokio::test]
async fn a_retried_deactivation_is_answered_from_its_key() {
    let service = TestService::start(spec()).await;
    let (status, body) = service
        .post("/customers", registration("ada@example.org"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = format!("/customers/{}/deactivate", body["id"].as_str().unwrap());
    let reason = json!({"reason": "moved away"});
    let first = service.post_keyed(&path, "leave-1", Some(&reason)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = service.post_keyed(&path, "leave-1", Some(&reason)).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed, "not a 409 for deactivating twice");
    assert_eq!(service.count("outbox").await, 2, "one CustomerDeactivated");
    let without_body = service.post_keyed(&path, "leave-1", None).await;
    assert_names_the_header(
        &without_body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    service.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_keyed_registration_register_once() {
    let service = TestService::start(spec()).await;
    let body = registration("ada@example.org");
    let answers = service
        .post_keyed_concurrently("/customers", "burst", Some(&body), 8)
        .await;
    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(
        created.iter().all(|a| a.body == created[0].body),
        "{answers:?}"
    );
    for answer in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_names_the_header(answer, StatusCode::CONFLICT, "idempotency_key_in_use");
    }
    assert_eq!(service.count("customers").await, 1);
    assert_eq!(service.count("outbox").await, 1);
    service.finish().await;
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_still_runs_is_a_409() {
    let service = TestService::start(spec()).await;
    let body = registration("ada@example.org");
    // a table lock parks the first registration inside its transaction
    let mut blocker = service.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE customers IN EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let first = service.post_keyed("/customers", "slow", Some(&body));
    let second = async {
        service.wait_for_a_lock_wait().await;
        let copy = service.post_keyed("/customers", "slow", Some(&body));
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), copy)
            .await
            .expect("the copy is answered at once, not queued behind the first");
        blocker.commit().await.unwrap();
        answer
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_names_the_header(&second, StatusCode::CONFLICT, "idempotency_key_in_use");
    let third = service.post_keyed("/customers", "slow", Some(&body)).await;
    assert!(third.replayed);
    assert_eq!(third.body, first.body);
    assert_eq!(service.count("customers").await, 1);
    service.finish().await;
}

#[tokio::test]
async fn a_key_still_replays_after_the_service_restarted() {
    let mut service = TestService::start(spec()).await;
    let body = registration("ada@example.org");
    let first = service
        .post_keyed("/customers", "before-restart", Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    service.restart().await;
    let again = service
        .post_keyed("/customers", "before-restart", Some(&body))
        .await;
    assert!(again.replayed, "{}", again.body);
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(service.count("customers").await, 1);
    assert_eq!(service.count("outbox").await, 1);
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
