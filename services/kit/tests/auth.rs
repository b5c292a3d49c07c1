//! The kit's `Authenticator` against a provider whose keys the test controls: a small OpenID provider
//! stand-in (a real HTTP server on loopback serving a discovery document and a JWKS of RSA keys made
//! with `openssl`), so that key rotation and the refetch rate limit can be watched, and tokens with a
//! wrong issuer, audience, algorithm or expiry can be signed with a key the provider publishes. The
//! tests against Keycloak itself are in the services' suites (`services/orders/tests/api/auth.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orderflow_service_kit::auth::{AuthConfig, AuthError, Authenticator, Role};
use serde_json::{Value, json};

/// An RSA key of the test's own: its private half for signing, its public half as a JWK.
struct Key {
    kid: String,
    private: EncodingKey,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let pem = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .expect("openssl (apt-get install openssl)")
        .stdout;
    let modulus = {
        let mut child = std::process::Command::new("openssl")
            .args(["rsa", "-noout", "-modulus"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&pem).unwrap();
        let out = child.wait_with_output().unwrap().stdout;
        let hex = String::from_utf8(out).unwrap();
        let hex = hex.trim().trim_start_matches("Modulus=");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    Key {
        kid: kid.into(),
        private: EncodingKey::from_rsa_pem(&pem).unwrap(),
        jwk: json!({
            "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(modulus), "e": "AQAB",
        }),
    }
}

#[derive(Clone)]
struct Provider {
    issuer: Arc<Mutex<String>>,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn discovery(State(p): State<Provider>) -> Json<Value> {
    let issuer = p.issuer.lock().unwrap().clone();
    Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/certs")}))
}

async fn certs(State(p): State<Provider>) -> Json<Value> {
    p.fetches.fetch_add(1, Ordering::SeqCst);
    // An encryption key beside the signing ones, as Keycloak publishes: it must be left out.
    let mut keys = p.keys.lock().unwrap().clone();
    keys.push(json!({"kid": "enc", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", "n": "AQAB", "e": "AQAB"}));
    Json(json!({"keys": keys}))
}

async fn provider(published: &[&Key]) -> Provider {
    let provider = Provider {
        issuer: Arc::default(),
        keys: Arc::new(Mutex::new(
            published.iter().map(|k| k.jwk.clone()).collect(),
        )),
        fetches: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/certs", get(certs))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    *provider.issuer.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    provider
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(key: &Key, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.private).unwrap()
}

fn claims(issuer: &str) -> Value {
    json!({
        "iss": issuer, "aud": ["orderflow-api", "account"], "sub": "user-1", "azp": "orderflow-web",
        "exp": now() + 300, "iat": now(),
        "realm_access": {"roles": ["customer", "offline_access"]},
        "customer_id": "0190c4a5-6b6e-7c6e-8f3a-1b2c3d4e5f60",
    })
}

fn authenticator(p: &Provider) -> Authenticator {
    Authenticator::new(AuthConfig {
        issuer: p.issuer.lock().unwrap().clone(),
        audience: "orderflow-api".into(),
        leeway_seconds: 0,
        min_refetch: Duration::from_millis(1500),
    })
}

fn refused(result: Result<impl std::fmt::Debug, AuthError>, containing: &str) {
    match result {
        Err(AuthError::InvalidToken(why)) => {
            assert!(
                why.contains(containing),
                "expected {containing:?} in: {why}"
            )
        }
        other => panic!("expected an invalid token ({containing}), got {other:?}"),
    }
}

#[tokio::test]
async fn rotated_keys_are_fetched_again_at_most_once_per_interval() {
    let (a, b) = (key("a"), key("b"));
    let p = provider(&[&a]).await;
    let auth = authenticator(&p);
    let issuer = p.issuer.lock().unwrap().clone();

    let principal = auth
        .verify(&sign(&a, claims(&issuer)))
        .await
        .expect("key a verifies");
    assert_eq!(principal.subject, "user-1");
    assert_eq!(principal.roles(), &[Role::Customer]);
    assert_eq!(
        principal.customer_id.unwrap().to_string(),
        "0190c4a5-6b6e-7c6e-8f3a-1b2c3d4e5f60"
    );
    auth.verify(&sign(&a, claims(&issuer))).await.unwrap();
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1, "the keys are cached");

    // The provider rotates to key b. Right after a fetch, an unknown key id fetches nothing more
    // (made-up key ids cannot make the service hammer the provider) ...
    p.keys.lock().unwrap().push(b.jwk.clone());
    refused(
        auth.verify(&sign(&b, claims(&issuer))).await,
        "does not publish",
    );
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1, "rate-limited");
    // ... and once the interval has passed, the unknown key id fetches the keys again and verifies.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    auth.verify(&sign(&b, claims(&issuer)))
        .await
        .expect("the rotated key verifies");
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2);
    // A key id the provider never published, asked twice: one more fetch at most.
    let stranger = key("stranger");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    refused(
        auth.verify(&sign(&stranger, claims(&issuer))).await,
        "does not publish",
    );
    refused(
        auth.verify(&sign(&stranger, claims(&issuer))).await,
        "does not publish",
    );
    assert_eq!(p.fetches.load(Ordering::SeqCst), 3);
    // The key a is still published and still verifies, from the cache.
    auth.verify(&sign(&a, claims(&issuer))).await.unwrap();
    assert_eq!(p.fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn issuer_audience_expiry_algorithm_and_signature_are_checked() {
    let a = key("a");
    let p = provider(&[&a]).await;
    let auth = authenticator(&p);
    let issuer = p.issuer.lock().unwrap().clone();
    let with = |changes: Value| {
        let mut c = claims(&issuer);
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    auth.verify(&sign(&a, claims(&issuer)))
        .await
        .expect("a good token");
    refused(
        auth.verify(&sign(&a, with(json!({"exp": now() - 1}))))
            .await,
        "expired",
    );
    refused(
        auth.verify(&sign(
            &a,
            with(json!({"iss": "http://elsewhere/realms/orderflow"})),
        ))
        .await,
        "issuer",
    );
    refused(
        auth.verify(&sign(&a, with(json!({"aud": "account"}))))
            .await,
        "audience",
    );
    refused(
        auth.verify(&sign(&a, with(json!({"customer_id": "12"}))))
            .await,
        "customer_id",
    );
    let mut no_sub = claims(&issuer);
    no_sub.as_object_mut().unwrap().remove("sub");
    refused(auth.verify(&sign(&a, no_sub)).await, "sub");
    // Signed by another key under a's key id.
    let forger = key("a");
    refused(
        auth.verify(&sign(&forger, claims(&issuer))).await,
        "signature",
    );
    // HS256 with a's key id (the algorithm-confusion attack): the key is for RS256 only.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("a".into());
    let hmac = jsonwebtoken::encode(
        &header,
        &claims(&issuer),
        &EncodingKey::from_secret(b"guess").unwrap(),
    )
    .unwrap();
    refused(auth.verify(&hmac).await, "HS256");
    // Not a JWT at all, and a JWT without a key id.
    refused(auth.verify("not.a.jwt").await, "not a JWT");
    let no_kid =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(&issuer), &a.private).unwrap();
    refused(auth.verify(&no_kid).await, "kid");
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_503_not_401() {
    let a = key("a");
    let auth = Authenticator::new(AuthConfig {
        issuer: "http://127.0.0.1:9/realms/orderflow".into(),
        audience: "orderflow-api".into(),
        leeway_seconds: 0,
        min_refetch: Duration::from_secs(10),
    });
    let token = sign(&a, claims("http://127.0.0.1:9/realms/orderflow"));
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::ProviderUnavailable(_))
    ));
}
