//! The client side of the identity provider, for whatever calls the APIs as a real client would (the
//! demo, the bench, the tests): tokens from the provider's token endpoint (OAuth2 client credentials for
//! a confidential client, the password grant for a user), cached until shortly before they expire; and
//! the one admin operation onboarding needs, linking a user to a customer record.
//!
//! **How a customer user is linked to a customer.** The customers service owns customer records and
//! makes their ids; the identity provider owns users. Onboarding (a back-office step, here the demo and
//! the tests) creates the customer record with an admin token, then sets the user's `customer_id`
//! attribute through Keycloak's admin API (`PUT /admin/realms/<realm>/users/<id>`, which needs the
//! `realm-management` role `manage-users`). The realm's user profile lets only admins edit that
//! attribute, so users cannot link themselves to someone else's record; a protocol mapper puts it into
//! every token as the `customer_id` claim, which is what the APIs trust.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orderflow_platform::config::setting;
use orderflow_schemas::CustomerId;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Where the provider is: `ORDERFLOW_IDENTITY_URL` and `ORDERFLOW_IDENTITY_REALM`.
#[derive(Debug, Clone)]
pub struct Provider {
    pub url: String,
    pub realm: String,
}

impl Provider {
    pub fn from_env() -> anyhow::Result<Self> {
        let url: String = setting("ORDERFLOW_IDENTITY_URL")?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            realm: setting("ORDERFLOW_IDENTITY_REALM")?,
        })
    }

    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/realms/{}/protocol/openid-connect/token",
            self.url, self.realm
        )
    }

    fn admin(&self, path: &str) -> String {
        format!("{}/admin/realms/{}{path}", self.url, self.realm)
    }
}

/// The HTTP client of this module: no idle connections kept, so a `TokenSource` can be shared by
/// tasks of several runtimes (as the tests' runtimes do), where a pooled connection would outlive its.
fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
}

/// How a token is had.
#[derive(Debug, Clone)]
enum Grant {
    ClientCredentials,
    Password { username: String, password: String },
}

/// A confidential client of the realm and the grant it uses; `bearer` answers a valid access token,
/// asking the provider again only when the cached one is about to expire.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<SourceInner>,
}

struct SourceInner {
    provider: Provider,
    client_id: String,
    client_secret: String,
    grant: Grant,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

impl TokenSource {
    /// Client credentials of `client_id`, whose secret is the setting `secret_key`.
    pub fn client_credentials(client_id: &str, secret_key: &'static str) -> anyhow::Result<Self> {
        Self::new(client_id, secret_key, Grant::ClientCredentials)
    }

    /// The password grant for a user, through the confidential client `client_id`.
    pub fn password(
        client_id: &str,
        secret_key: &'static str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        Self::new(
            client_id,
            secret_key,
            Grant::Password {
                username: username.into(),
                password: password.into(),
            },
        )
    }

    fn new(client_id: &str, secret_key: &'static str, grant: Grant) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(SourceInner {
                provider: Provider::from_env()?,
                client_id: client_id.into(),
                client_secret: setting(secret_key)?,
                grant,
                http: client()?,
                cached: Mutex::new(None),
            }),
        })
    }

    /// A fresh token from the provider, not cached (a test of expiry wants exactly that).
    pub async fn fetch(&self) -> anyhow::Result<(String, Duration)> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: String,
            expires_in: u64,
        }
        let inner = &self.inner;
        let mut form = vec![
            ("client_id", inner.client_id.as_str()),
            ("client_secret", inner.client_secret.as_str()),
        ];
        match &inner.grant {
            Grant::ClientCredentials => form.push(("grant_type", "client_credentials")),
            Grant::Password { username, password } => {
                form.extend([
                    ("grant_type", "password"),
                    ("username", username.as_str()),
                    ("password", password.as_str()),
                    ("scope", "openid"),
                ]);
            }
        }
        let endpoint = inner.provider.token_endpoint();
        let response = inner.http.post(&endpoint).form(&form).send().await.with_context(|| {
            format!(
                "the identity provider is not reachable at {endpoint}: start it with `scripts/stack up identity`"
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "the identity provider refused a token for client {} ({status}): {body}",
                inner.client_id
            );
        }
        let answer: TokenAnswer = response.json().await.context("the token answer")?;
        Ok((answer.access_token, Duration::from_secs(answer.expires_in)))
    }

    /// A valid access token: the cached one while it has more than 30 s (or a third of its life) left.
    pub async fn bearer(&self) -> anyhow::Result<String> {
        let mut cached = self.inner.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let margin = Duration::from_secs(30).min(lifetime / 3);
        *cached = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }
}

/// The admin operations of onboarding, with a token of a client whose service account may manage users.
#[derive(Clone)]
pub struct IdentityAdmin {
    provider: Provider,
    token: TokenSource,
    http: reqwest::Client,
}

impl IdentityAdmin {
    pub fn new(token: TokenSource) -> anyhow::Result<Self> {
        Ok(Self {
            provider: Provider::from_env()?,
            token,
            http: client()?,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let url = self.provider.admin(path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.token.bearer().await?);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() && status != reqwest::StatusCode::CONFLICT {
            bail!("{method} {url}: {status}: {value}");
        }
        Ok((status, value))
    }

    /// The id of the user `username`, if there is one.
    pub async fn user_id(&self, username: &str) -> anyhow::Result<Option<String>> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("username", username)
            .append_pair("exact", "true")
            .finish();
        let (_, users) = self
            .call(reqwest::Method::GET, &format!("/users?{query}"), None)
            .await?;
        Ok(users
            .as_array()
            .and_then(|users| users.first())
            .and_then(|user| user["id"].as_str())
            .map(str::to_string))
    }

    /// Set the user's `customer_id` attribute: from then on their tokens carry that customer id.
    pub async fn link_customer(&self, username: &str, customer: CustomerId) -> anyhow::Result<()> {
        let id = self
            .user_id(username)
            .await?
            .with_context(|| format!("no user {username} in the realm"))?;
        let (_, mut user) = self
            .call(reqwest::Method::GET, &format!("/users/{id}"), None)
            .await?;
        user["attributes"]["customer_id"] = json!([customer.to_string()]);
        self.call(reqwest::Method::PUT, &format!("/users/{id}"), Some(user))
            .await?;
        Ok(())
    }

    /// Create (or reuse) a user with a password and one realm role; an existing user keeps its id.
    pub async fn ensure_user(
        &self,
        username: &str,
        password: &str,
        role: &str,
    ) -> anyhow::Result<String> {
        let user = json!({
            "username": username,
            "enabled": true,
            "email": format!("{username}@orderflow.test"),
            "emailVerified": true,
            "firstName": username,
            "lastName": "Test",
            "credentials": [{"type": "password", "value": password, "temporary": false}],
        });
        self.call(reqwest::Method::POST, "/users", Some(user))
            .await?;
        let id = self
            .user_id(username)
            .await?
            .with_context(|| format!("user {username} was not created"))?;
        let (_, role) = self
            .call(reqwest::Method::GET, &format!("/roles/{role}"), None)
            .await?;
        self.call(
            reqwest::Method::POST,
            &format!("/users/{id}/role-mappings/realm"),
            Some(json!([role])),
        )
        .await?;
        Ok(id)
    }

    /// Delete a user (tests clean up after themselves).
    pub async fn delete_user(&self, username: &str) -> anyhow::Result<()> {
        if let Some(id) = self.user_id(username).await? {
            self.call(reqwest::Method::DELETE, &format!("/users/{id}"), None)
                .await?;
        }
        Ok(())
    }
}
