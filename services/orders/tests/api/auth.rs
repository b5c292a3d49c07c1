//! Who may do what with orders, with real tokens from the identity provider (Keycloak): a customer
//! reaches only their own orders (another's answer 404, reads and writes alike, and nothing changes),
//! a carrier none; no token, a forged token or an expired one answer 401 with `WWW-Authenticate`;
//! health and the OpenAPI document need no token.

use axum::http::StatusCode;
use orderflow_service_kit::testing::forged;
use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_customer_reaches_only_their_own_orders() {
    let svc = start().await;
    let (alice_id, alices_order) = draft_with_lines(&svc).await;
    let bob_id = seed_customer(&svc, true).await;
    let alice = svc.identity.customer(alice_id).await;
    let bob = svc.identity.customer(bob_id).await;

    // Alice sees and changes her own order with her own token.
    let path = format!("/orders/{alices_order}");
    let (status, _, body) = svc.request_as(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bob is told it does not exist, and every write of his changes nothing.
    let before = svc.counts(TABLES).await;
    let (status, _, body) = svc.request_as(Method::GET, &path, Some(&bob), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{body}"
    );
    for (method, path, body) in [
        (Method::POST, format!("/orders/{alices_order}/cancel"), None),
        (Method::POST, format!("/orders/{alices_order}/place"), None),
        (
            Method::POST,
            format!("/orders/{alices_order}/lines"),
            Some(json!({"sku": "MUG", "quantity": 1})),
        ),
        (
            Method::DELETE,
            format!("/orders/{alices_order}/lines/MUG"),
            None,
        ),
    ] {
        let (status, _, answer) = svc
            .request_as(method.clone(), &path, Some(&bob), body)
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} as bob: {answer}"
        );
    }
    assert_eq!(
        svc.counts(TABLES).await,
        before,
        "bob's requests changed nothing"
    );

    // Bob's list holds his orders only, and he may not ask for Alice's.
    let bobs_order = {
        let (status, _, body) = svc
            .request_as(
                Method::POST,
                "/orders",
                Some(&bob),
                Some(json!({"customer_id": bob_id.to_string()})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["order_id"].as_str().unwrap().to_string()
    };
    let (status, _, page) = svc
        .request_as(Method::GET, "/orders", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![bobs_order.as_str()]);
    let (status, _, body) = svc
        .request_as(
            Method::GET,
            &format!("/orders?customer_id={alice_id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("customer_id")),
        "{body}"
    );
    // Nor create a draft in Alice's name: the token's customer id decides.
    let (status, _, body) = svc
        .request_as(
            Method::POST,
            "/orders",
            Some(&bob),
            Some(json!({"customer_id": alice_id.to_string()})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );

    // Alice cancels her own order.
    let (status, _, body) = svc
        .request_as(
            Method::POST,
            &format!("/orders/{alices_order}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANCELLED");
    svc.finish().await;
}

#[tokio::test]
async fn a_carrier_or_an_unlinked_customer_has_no_orders() {
    let svc = start().await;
    let (_, order) = draft_with_lines(&svc).await;
    let carrier = svc.identity.carrier().await;
    let unlinked = svc.identity.unlinked_customer().await;
    for token in [&carrier, &unlinked] {
        for (method, path) in [
            (Method::GET, format!("/orders/{order}")),
            (Method::GET, "/orders".to_string()),
            (Method::POST, format!("/orders/{order}/cancel")),
        ] {
            let (status, _, body) = svc
                .request_as(method.clone(), &path, Some(token), None)
                .await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::FORBIDDEN, Some("forbidden")),
                "{method} {path}: {body}"
            );
        }
    }
    svc.finish().await;
}

#[tokio::test]
async fn no_token_a_forged_token_or_an_expired_one_is_401() {
    let svc = start().await;
    let (_, order) = draft_with_lines(&svc).await;
    let path = format!("/orders/{order}");
    let admin = svc.identity.admin().await;
    let (status, _, body) = svc.request_as(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "the genuine token works: {body}");

    let refused = |what: &'static str, token: Option<String>| {
        let svc = &svc;
        let path = path.clone();
        async move {
            let (status, headers, body) = svc
                .request_as(
                    Method::POST,
                    &format!("{path}/cancel"),
                    token.as_deref(),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            let challenge = headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
            assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
            assert!(
                body["error"].is_string() && body["message"].is_string(),
                "{what}: {body}"
            );
            challenge.to_string()
        }
    };
    let challenge = refused("no token", None).await;
    assert!(!challenge.contains("error="), "no token: {challenge}");
    let challenge = refused("garbage", Some("not-a-jwt".into())).await;
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    // The admin's own claims and Keycloak's key id, signed with a key of ours.
    let challenge = refused("forged", Some(forged(&admin, json!({})))).await;
    assert!(challenge.contains("signature"), "{challenge}");
    // A genuine token of the realm, but issued to a client whose tokens are not for the orderflow
    // APIs (Keycloak's own admin-cli: no orderflow-api audience, no subject).
    let challenge = refused("another client's", Some(admin_cli_token().await)).await;
    assert!(challenge.contains("claim"), "{challenge}");

    // A genuine token, used after it expired (2 s lifetime, plus the service's 5 s leeway).
    let (short, lifetime) = svc.identity.short_lived().await;
    let (status, _, body) = svc.request_as(Method::GET, &path, Some(&short), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the short-lived token works at first: {body}"
    );
    tokio::time::sleep(lifetime + std::time::Duration::from_secs(6)).await;
    let challenge = refused("expired", Some(short)).await;
    assert!(challenge.contains("expired"), "{challenge}");

    // Nothing was cancelled.
    let (_, body) = svc.get(&path).await;
    assert_eq!(body["status"], "DRAFT");
    svc.finish().await;
}

#[tokio::test]
async fn health_and_the_api_document_need_no_token() {
    let svc = start().await;
    for path in ["/health/live", "/health/ready", "/openapi.json"] {
        let (status, _, body) = svc.request_as(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    svc.finish().await;
}

/// A password-grant token of the demo user carl through Keycloak's public `admin-cli` client.
async fn admin_cli_token() -> String {
    let provider = orderflow_service_kit::identity::Provider::from_env().unwrap();
    let password: String =
        orderflow_platform::config::setting("ORDERFLOW_IDENTITY_DEMO_PASSWORD").unwrap();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(provider.token_endpoint())
        .form(&[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "carl"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .expect("the identity provider answers")
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token from admin-cli: {answer}"))
        .to_string()
}
