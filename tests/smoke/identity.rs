//! The identity provider: Keycloak's orderflow realm answers its OpenID discovery, and tokens it
//! issues (client credentials of the carrier client) verify through the kit's `Authenticator` (JWKS
//! signature, issuer, audience) and carry the role the realm gives that client.

use orderflow_service_kit::auth::{Authenticator, Role};
use orderflow_service_kit::identity::TokenSource;

use crate::support::{Server, stack};

#[tokio::test]
async fn the_realm_issues_tokens_the_apis_accept() {
    Server::Identity.require(&stack());
    let authenticator = Authenticator::from_env().unwrap_or_else(|e| panic!("{e}"));
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        authenticator.config().issuer
    );
    let document: serde_json::Value = reqwest::get(&discovery)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| Server::Identity.failed(&stack(), "answer its discovery document", e))
        .json()
        .await
        .unwrap();
    assert_eq!(document["issuer"], authenticator.config().issuer.as_str());

    let token =
        TokenSource::client_credentials("orderflow-carrier", "ORDERFLOW_IDENTITY_CARRIER_SECRET")
            .unwrap()
            .bearer()
            .await
            .unwrap_or_else(|e| {
                Server::Identity.failed(&stack(), "issue a token", format!("{e:#}"))
            });
    let principal = authenticator
        .verify(&token)
        .await
        .expect("the token verifies");
    assert_eq!(principal.roles(), &[Role::Carrier]);
    assert_eq!(principal.client, "orderflow-carrier");
    assert_eq!(principal.customer_id, None);
}
