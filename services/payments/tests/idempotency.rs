//! The payments API only reads (charges and refunds happen in the saga), so it has no POST to take an
//! `Idempotency-Key`. This keeps it so: a write route added to the API fails here until it runs its
//! transaction through the kit's `Idempotency::run` and this test is changed with it.

use orderflow_payments::spec;
use orderflow_service_kit::testing::TestService;

#[tokio::test]
async fn the_payments_api_has_no_write_route_to_key() {
    let service = TestService::start(spec()).await;
    let (status, doc) = service.get("/openapi.json").await;
    assert!(status.is_success(), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, operations) in paths {
        for method in ["post", "put", "patch", "delete"] {
            assert!(
                operations.get(method).is_none(),
                "{method} {path}: a write route must take an Idempotency-Key"
            );
        }
    }
    service.finish().await;
}
