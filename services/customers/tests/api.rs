//! The customers service against the real PostgreSQL and schema registry: registration and
//! deactivation answers, rows and their single outbox event (decoded through the registry); every bad
//! input answered 4xx naming the field path with nothing written; get, list filters and pagination.

use axum::http::StatusCode;
use orderflow_customers::spec;
use orderflow_schemas::customers::{CustomerDeactivated, CustomerRegistered};
use orderflow_schemas::{Address, CustomerId};
use orderflow_service_kit::testing::TestService;
use serde_json::{Value, json};

const TABLES: [&str; 2] = ["customers", "outbox"];

fn registration(name: &str, email: &str) -> Value {
    json!({
        "name": name,
        "email": email,
        "phone": "+4930123456",
        "shipping_address": {
            "line1": "Friedrichstraße 123",
            "line2": "3. OG",
            "city": "Berlin",
            "postal_code": "10117",
            "country": "DE",
        },
    })
}

async fn register(service: &TestService, name: &str, email: &str) -> String {
    let (status, body) = service.post("/customers", registration(name, email)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

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
async fn registering_writes_the_customer_and_one_customer_registered_event() {
    let service = TestService::start(spec()).await;
    let mut body = registration("  Ada Lovelace ", "Ada@Example.org");
    body["shipping_address"]["recipient"] = json!("Ada L.");
    body["shipping_address"]["region"] = json!("Berlin");
    let (status, answer) = service.post("/customers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id: CustomerId = answer["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(answer["name"], "Ada Lovelace");
    assert_eq!(answer["email"], "Ada@Example.org");
    assert_eq!(answer["phone"], "+4930123456");
    assert_eq!(answer["status"], "ACTIVE");
    assert_eq!(answer["deactivation_reason"], Value::Null);
    assert_eq!(
        answer["shipping_address"],
        json!({
            "recipient": "Ada L.",
            "line1": "Friedrichstraße 123",
            "line2": "3. OG",
            "city": "Berlin",
            "region": "Berlin",
            "postal_code": "10117",
            "country": "DE",
        })
    );
    assert_eq!(service.count("customers").await, 1);
    let row: (String, String, Option<String>, String, String) = sqlx::query_as(
        "SELECT name, email, phone, ship_country, status FROM customers WHERE id = $1",
    )
    .bind(id.as_uuid())
    .fetch_one(service.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "Ada Lovelace".into(),
            "Ada@Example.org".into(),
            Some("+4930123456".into()),
            "DE".into(),
            "ACTIVE".into()
        )
    );
    let event: CustomerRegistered = service.single_new_event(0).await;
    assert_eq!(event.customer_id, id);
    assert_eq!(event.name, "Ada Lovelace");
    assert_eq!(event.email.as_str(), "Ada@Example.org");
    assert_eq!(
        event.phone.as_ref().map(|p| p.as_str()),
        Some("+4930123456")
    );
    assert_eq!(
        event.shipping_address,
        Address {
            recipient: "Ada L.".into(),
            line1: "Friedrichstraße 123".into(),
            line2: Some("3. OG".into()),
            city: "Berlin".into(),
            region: Some("Berlin".into()),
            postal_code: "10117".into(),
            country: "DE".parse().unwrap(),
        }
    );
    service.finish().await;
}

#[tokio::test]
async fn phone_and_optional_address_parts_may_be_left_out() {
    let service = TestService::start(spec()).await;
    let (status, answer) = service
        .post(
            "/customers",
            json!({
                "name": "Grace Hopper",
                "email": "grace@example.org",
                "shipping_address": {
                    "line1": "1 Navy Way", "city": "Arlington", "postal_code": "22201", "country": "US",
                },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["phone"], Value::Null);
    assert_eq!(answer["shipping_address"]["recipient"], "Grace Hopper");
    let event: CustomerRegistered = service.single_new_event(0).await;
    assert_eq!(event.phone, None);
    assert_eq!(event.shipping_address.recipient, "Grace Hopper");
    assert_eq!(event.shipping_address.line2, None);
    service.finish().await;
}

#[tokio::test]
async fn an_email_registered_in_any_case_is_a_conflict_naming_email() {
    let service = TestService::start(spec()).await;
    register(&service, "Ada", "ada@example.org").await;
    let before = service.counts(&TABLES).await;
    let answer = service
        .post("/customers", registration("Other Ada", "ADA@EXAMPLE.ORG"))
        .await;
    assert_refused(&service, answer, StatusCode::CONFLICT, "email", &before).await;
    service.finish().await;
}

#[tokio::test]
async fn bad_registrations_are_refused_naming_the_field_path() {
    let service = TestService::start(spec()).await;
    register(&service, "Ada", "ada@example.org").await;
    let before = service.counts(&TABLES).await;
    let with = |path: &[&str], value: Value| {
        let mut body = registration("New", "new@example.org");
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        body
    };
    let cases = [
        (with(&["name"], json!("  ")), "name"),
        (with(&["name"], json!("x".repeat(201))), "name"),
        (with(&["name"], json!(42)), "name"),
        (with(&["email"], json!("not-an-email")), "email"),
        (with(&["email"], json!("a@b@c")), "email"),
        (with(&["email"], json!("a b@c.org")), "email"),
        (with(&["phone"], json!("030123456")), "phone"),
        (with(&["phone"], json!("+0301234567")), "phone"),
        (with(&["phone"], json!("+49 30 123456")), "phone"),
        (
            with(&["shipping_address", "country"], json!("de")),
            "shipping_address.country",
        ),
        (
            with(&["shipping_address", "country"], json!("DEU")),
            "shipping_address.country",
        ),
        (
            with(&["shipping_address", "postal_code"], json!("10/117")),
            "shipping_address.postal_code",
        ),
        (
            with(&["shipping_address", "line1"], json!(" ")),
            "shipping_address.line1",
        ),
        (
            with(&["shipping_address", "line2"], json!("x".repeat(201))),
            "shipping_address.line2",
        ),
        (
            with(&["shipping_address", "zip"], json!("10117")),
            "shipping_address.zip",
        ),
        (with(&["nickname"], json!("ada")), "nickname"),
        (
            with(&["shipping_address"], json!("Berlin")),
            "shipping_address",
        ),
    ];
    for (body, field) in cases {
        let answer = service.post("/customers", body.clone()).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{body}: {}", answer.1);
        assert_eq!(answer.1["field"], field, "{body}: {}", answer.1);
        assert_eq!(service.counts(&TABLES).await, before, "{body}");
    }
    // A missing field is named by its path.
    let mut missing = registration("New", "new@example.org");
    missing["shipping_address"]
        .as_object_mut()
        .unwrap()
        .remove("city");
    let answer = service.post("/customers", missing).await;
    assert_eq!(answer.0, StatusCode::BAD_REQUEST);
    assert_eq!(answer.1["field"], "shipping_address.city", "{}", answer.1);
    assert!(answer.1["message"].as_str().unwrap().contains("city"));
    let answer = service
        .post_raw("/customers", "application/json", b"{\"name\":".to_vec())
        .await;
    assert_eq!(answer.1["error"], "malformed_json");
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "body", &before).await;
    let answer = service
        .post_raw("/customers", "text/plain", b"hello".to_vec())
        .await;
    assert_refused(
        &service,
        answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content-type",
        &before,
    )
    .await;
    let huge = with(&["name"], json!("x".repeat(70 * 1024)));
    let answer = service
        .post_raw(
            "/customers",
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
async fn deactivating_writes_the_status_and_one_customer_deactivated_event() {
    let service = TestService::start(spec()).await;
    let id = register(&service, "Ada", "ada@example.org").await;
    let before = service.outbox_rows().await.len();
    let (status, answer) = service
        .post(
            &format!("/customers/{id}/deactivate"),
            json!({"reason": " closed the account "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "DEACTIVATED");
    assert_eq!(answer["deactivation_reason"], "closed the account");
    assert!(answer["deactivated_at"].is_string());
    let row: (String, Option<String>, bool) = sqlx::query_as(
        "SELECT status, deactivation_reason, deactivated_at IS NOT NULL FROM customers WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(service.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "DEACTIVATED".into(),
            Some("closed the account".into()),
            true
        )
    );
    let event: CustomerDeactivated = service.single_new_event(before).await;
    assert_eq!(event.customer_id.to_string(), id);
    assert_eq!(event.reason.as_deref(), Some("closed the account"));

    // Once is enough: again is a conflict and writes nothing.
    let before = service.counts(&TABLES).await;
    let answer = service
        .post(&format!("/customers/{id}/deactivate"), json!({}))
        .await;
    assert_refused(&service, answer, StatusCode::CONFLICT, "status", &before).await;
    service.finish().await;
}

#[tokio::test]
async fn deactivating_without_a_body_records_no_reason() {
    let service = TestService::start(spec()).await;
    let id = register(&service, "Ada", "ada@example.org").await;
    let before = service.outbox_rows().await.len();
    let response = service
        .http
        .post(format!("{}/customers/{id}/deactivate", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "DEACTIVATED");
    assert_eq!(answer["deactivation_reason"], Value::Null);
    let event: CustomerDeactivated = service.single_new_event(before).await;
    assert_eq!(event.reason, None);
    service.finish().await;
}

#[tokio::test]
async fn bad_deactivations_are_refused_and_change_nothing() {
    let service = TestService::start(spec()).await;
    let id = register(&service, "Ada", "ada@example.org").await;
    let before = service.counts(&TABLES).await;
    let path = format!("/customers/{id}/deactivate");
    let answer = service
        .post(&path, json!({"reason": "x".repeat(501)}))
        .await;
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "reason", &before).await;
    let answer = service.post(&path, json!({"reason": 7})).await;
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "reason", &before).await;
    let answer = service.post(&path, json!({"why": "x"})).await;
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "why", &before).await;
    let answer = service
        .post_raw(&path, "application/json", b"{".to_vec())
        .await;
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "body", &before).await;
    let answer = service
        .post("/customers/not-a-uuid/deactivate", json!({}))
        .await;
    assert_refused(&service, answer, StatusCode::BAD_REQUEST, "id", &before).await;
    let unknown = CustomerId::new_v7();
    let (status, body) = service
        .post(&format!("/customers/{unknown}/deactivate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    assert_eq!(service.counts(&TABLES).await, before);
    let (_, customer) = service.get(&format!("/customers/{id}")).await;
    assert_eq!(customer["status"], "ACTIVE");
    service.finish().await;
}

#[tokio::test]
async fn get_one_customer_or_a_json_404() {
    let service = TestService::start(spec()).await;
    let id = register(&service, "Ada", "ada@example.org").await;
    let (status, body) = service.get(&format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&body["id"], &body["name"]), (&json!(id), &json!("Ada")));
    let (status, body) = service
        .get(&format!("/customers/{}", CustomerId::new_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, body) = service.get("/customers/42").await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("id"))
    );
    service.finish().await;
}

#[tokio::test]
async fn list_filters_by_status_and_text_and_pages_oldest_first() {
    let service = TestService::start(spec()).await;
    let mut ids = Vec::new();
    for (name, email) in [
        ("Ada Lovelace", "ada@example.org"),
        ("Grace Hopper", "grace@navy.example"),
        ("Alan Turing", "alan@example.org"),
        ("Barbara Liskov", "barbara@mit.example"),
        ("Edsger Dijkstra", "ewd@example.org"),
    ] {
        ids.push(register(&service, name, email).await);
    }
    service
        .post(&format!("/customers/{}/deactivate", ids[1]), json!({}))
        .await;
    service
        .post(&format!("/customers/{}/deactivate", ids[3]), json!({}))
        .await;
    let listed = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = service.get("/customers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&body), ids);
    assert_eq!(
        (&body["total"], &body["limit"], &body["offset"]),
        (&json!(5), &json!(20), &json!(0))
    );
    let (_, body) = service.get("/customers?status=DEACTIVATED").await;
    assert_eq!(listed(&body), [ids[1].clone(), ids[3].clone()]);
    let (_, body) = service.get("/customers?status=ACTIVE").await;
    assert_eq!(
        listed(&body),
        [ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    let (_, body) = service.get("/customers?q=EXAMPLE.ORG").await;
    assert_eq!(
        listed(&body),
        [ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    let (_, body) = service.get("/customers?q=hop").await;
    assert_eq!(listed(&body), [ids[1].clone()]);
    let (_, body) = service.get("/customers?q=example&status=DEACTIVATED").await;
    assert_eq!(listed(&body), [ids[1].clone(), ids[3].clone()]);
    let (_, body) = service.get("/customers?limit=2&offset=2").await;
    assert_eq!(listed(&body), ids[2..4]);
    assert_eq!(body["total"], 5);
    let (_, body) = service.get("/customers?offset=10").await;
    assert_eq!(listed(&body), Vec::<String>::new());
    for (query, field) in [
        ("status=active", "status"),
        ("status=GONE", "status"),
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("offset=-1", "offset"),
        (&format!("q={}", "x".repeat(101)), "q"),
        ("email=ada", "email"),
    ] {
        let (status, body) = service.get(&format!("/customers?{query}")).await;
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
    for path in [
        "/customers",
        "/customers/{id}",
        "/customers/{id}/deactivate",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} in {doc}");
    }
    service.finish().await;
}

/// `[]` is not a deactivation body (serde would read an array as the fields by position): refused,
/// and the customer stays active. No body at all is fine, and so documented (not required).
#[tokio::test]
async fn deactivating_takes_an_object_or_no_body_at_all() {
    let service = TestService::start(spec()).await;
    let id = register(&service, "Ada Lovelace", "ada.array@example.org").await;
    let before = service.counts(&TABLES).await;
    for body in [json!([]), json!(null), json!(["moved away"])] {
        let answer = service
            .post(&format!("/customers/{id}/deactivate"), body)
            .await;
        assert_refused(&service, answer, StatusCode::BAD_REQUEST, "body", &before).await;
    }
    let (_, customer) = service.get(&format!("/customers/{id}")).await;
    assert_eq!(customer["status"], "ACTIVE", "{customer}");
    let (status, array_registration) = service
        .post("/customers", json!(["Ada", "ada.positional@example.org"]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{array_registration}");
    assert_eq!(array_registration["error"], "not_an_object");

    let (_, doc) = service.get("/openapi.json").await;
    let body = &doc["paths"]["/customers/{id}/deactivate"]["post"]["requestBody"];
    assert_ne!(body["required"], json!(true), "{body}");
    assert_eq!(
        body["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/DeactivateRequest",
        "{body}"
    );
    let limit = doc["paths"]["/customers"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"]
        .clone();
    assert_eq!(limit["minimum"], json!(1), "{limit}");
    let (status, _) = service
        .http
        .post(format!("{}/customers/{id}/deactivate", service.url))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::OK, "no body at all deactivates");
}
