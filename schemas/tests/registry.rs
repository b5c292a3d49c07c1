//! The registry codec against the real schema registry of the stack (Apicurio's
//! Confluent-compatible API at `ORDERFLOW_REGISTRY_URL`, read from `stack.env` and the environment
//! by `orderflow_platform::StackConfig`, BACKWARD compatibility enforced globally):
//!
//! - every event schema registers under its TopicRecordNameStrategy subject
//!   (`<topic>-<full record name>`), idempotently;
//! - every event encodes to Confluent framing (magic byte 0, big-endian schema id, bare Avro
//!   datum) and decodes back by its writer schema, also by a fresh codec that must fetch the
//!   schema by id, typed or dispatched on the record name;
//! - data written with an older writer schema is read with the current one;
//! - which failures are retriable (registry unreachable) and which are permanent (unknown
//!   schema id, bytes that are not Confluent-framed Avro of the schema they name);
//! - a schema change that breaks BACKWARD compatibility is refused by the registry, a compatible
//!   one is accepted.
//!
//! Tests that need their own subjects register them under a topic named with a fresh UUID
//! (`schemas-test-<uuid>.events`), so reruns never collide and the real event subjects never get
//! test versions; those subjects are deleted at the end of the test.
//!
//! Needs the registry running (`scripts/stack up registry`); without it every test fails, naming
//! the registry, its URL and how to start it. Nothing is skipped.

use std::time::Duration;

use apache_avro::types::Value;
use orderflow_platform::StackConfig;
use orderflow_schemas::customers::CustomerDeactivated;
use orderflow_schemas::orders::OrderPlaced;
use orderflow_schemas::registry::{EventCodec, RegistryError};
use orderflow_schemas::{
    AnyEvent, Event, EventSchema, OrdersEvent, SchemaError, event_schemas, samples, subject,
};
use schema_registry_converter::async_impl::avro::AvroEncoder;
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::{Value as Json, json};

/// A URL where nothing listens (TCP port 1 on the loopback interface).
const UNREACHABLE_URL: &str = "http://127.0.0.1:1/apis/ccompat/v7";

/// The stack's schema registry, checked to answer, with a plain HTTP client for the calls the
/// codec does not make (listing subjects and versions, compatibility checks, deleting subjects).
struct Registry {
    url: String,
    http: reqwest::Client,
}

impl Registry {
    /// The registry at the URL of the project's configuration; panics, naming the registry, the
    /// URL and how to start it, when it does not answer.
    async fn require() -> Registry {
        let config = StackConfig::from_env()
            .unwrap_or_else(|e| panic!("the stack configuration is unusable: {e}"));
        let registry = Registry {
            url: config.registry_url,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        };
        match registry.http.get(registry.at("/config")).send().await {
            Ok(response) if response.status().is_success() => registry,
            Ok(response) => {
                registry.failed("answer GET /config", format!("HTTP {}", response.status()))
            }
            Err(e) => registry.down(error_chain(&e)),
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The failure of a test whose registry is not there.
    fn down(&self, error: impl std::fmt::Display) -> ! {
        panic!(
            "the schema registry is not reachable at {} (ORDERFLOW_REGISTRY_URL, see stack.env): \
             {error}\nstart it with `scripts/stack up registry` (`scripts/stack status` shows \
             what runs) and run the test again",
            self.url
        )
    }

    /// The failure of a registry call that reached the registry.
    fn failed(&self, what: &str, error: impl std::fmt::Display) -> ! {
        panic!(
            "the schema registry at {} failed to {what}: {error}",
            self.url
        )
    }

    /// The value of a codec call, or the test's failure: "down" if the registry could not be
    /// reached (a retriable error), else what the registry refused.
    fn expect<T>(&self, what: &str, result: Result<T, RegistryError>) -> T {
        match result {
            Ok(value) => value,
            Err(e) if e.is_retriable() => self.down(e),
            Err(e) => self.failed(what, e),
        }
    }

    /// Like [`Registry::expect`], for `schema_registry_converter` calls made directly.
    fn expect_sr<T>(
        &self,
        what: &str,
        result: Result<T, schema_registry_converter::error::SRCError>,
    ) -> T {
        match result {
            Ok(value) => value,
            Err(e) if e.retriable => self.down(e),
            Err(e) => self.failed(what, e),
        }
    }

    fn codec(&self) -> EventCodec {
        EventCodec::new(&self.url).expect("a codec for the registry URL")
    }

    fn settings(&self) -> SrSettings {
        SrSettings::new_builder(self.url.clone())
            .no_proxy()
            .build()
            .expect("registry settings")
    }

    /// Status and JSON body of one call to the Confluent-compatible API.
    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> (u16, Json) {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| self.down(error_chain(&e)));
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .unwrap_or_else(|e| self.failed(what, format!("HTTP {status}, body not JSON: {e}")));
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Json) {
        self.call(self.http.get(self.at(path)), &format!("GET {path}"))
            .await
    }

    async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        let request = self
            .http
            .post(self.at(path))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&body);
        self.call(request, &format!("POST {path}")).await
    }

    /// GET that must succeed.
    async fn get_ok(&self, path: &str) -> Json {
        match self.get(path).await {
            (200, body) => body,
            (status, body) => self.failed(&format!("GET {path}"), format!("HTTP {status}: {body}")),
        }
    }

    /// Registers an Avro schema under a subject through the API directly (`POST
    /// /subjects/{subject}/versions`).
    async fn register(&self, subject: &str, schema: &str) -> (u16, Json) {
        self.post(
            &format!("/subjects/{subject}/versions"),
            json!({"schemaType": "AVRO", "schema": schema}),
        )
        .await
    }

    /// Whether the registry deems `schema` compatible with the latest version of `subject`.
    async fn is_compatible(&self, subject: &str, schema: &str) -> bool {
        let path = format!("/compatibility/subjects/{subject}/versions/latest");
        match self
            .post(&path, json!({"schemaType": "AVRO", "schema": schema}))
            .await
        {
            (200, body) => body["is_compatible"]
                .as_bool()
                .unwrap_or_else(|| self.failed(&format!("POST {path}"), body)),
            (status, body) => {
                self.failed(&format!("POST {path}"), format!("HTTP {status}: {body}"))
            }
        }
    }

    /// The version numbers registered under a subject.
    async fn versions(&self, subject: &str) -> Vec<u64> {
        let body = self.get_ok(&format!("/subjects/{subject}/versions")).await;
        serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("versions {body}: {e}"))
    }

    /// Removes a test subject (soft, then permanent delete). Best effort: a leftover throwaway
    /// subject harms nothing, so a failure here only warns.
    async fn delete_subject(&self, subject: &str) {
        for query in ["", "?permanent=true"] {
            let url = self.at(&format!("/subjects/{subject}{query}"));
            match self.http.delete(&url).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    eprintln!("warning: DELETE {url}: HTTP {}", r.status());
                    return;
                }
                Err(e) => {
                    eprintln!("warning: DELETE {url}: {}", error_chain(&e));
                    return;
                }
            }
        }
    }
}

/// An error with its causes, which for connection errors hold the useful part.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A topic name no earlier run has used, for throwaway subjects.
fn unique_topic() -> String {
    format!("schemas-test-{}.events", uuid::Uuid::new_v4().simple())
}

/// The schema id of Confluent-framed bytes.
fn frame_id(bytes: &[u8]) -> u32 {
    assert!(bytes.len() >= 5, "not Confluent-framed: {bytes:?}");
    assert_eq!(bytes[0], 0, "Confluent framing starts with magic byte 0");
    u32::from_be_bytes(bytes[1..5].try_into().unwrap())
}

fn avro(schema: &str) -> SuppliedSchema {
    let name = serde_json::from_str::<Json>(schema).unwrap();
    let name = format!(
        "{}.{}",
        name["namespace"].as_str().unwrap(),
        name["name"].as_str().unwrap()
    );
    SuppliedSchema::new(Some(name), SchemaType::Avro, schema.to_owned())
}

/// `schema` (JSON text of a record) with its field list changed by `edit`.
fn edited(schema: &str, edit: impl FnOnce(&mut Vec<Json>)) -> String {
    let mut json: Json = serde_json::from_str(schema).unwrap();
    edit(json["fields"].as_array_mut().unwrap());
    json.to_string()
}

#[tokio::test]
async fn every_event_registers_under_its_subject_and_round_trips_in_confluent_framing() {
    let registry = Registry::require().await;
    let codec = registry.codec();

    let registered = registry.expect("register the event schemas", codec.register_all().await);
    assert_eq!(registered.len(), 24);
    assert_eq!(registered.len(), event_schemas().count());
    for (entry, reg) in event_schemas().zip(&registered) {
        // TopicRecordNameStrategy: `<topic>-<full record name>`.
        assert_eq!(reg.subject, format!("{}-{}", entry.topic, entry.name));
        assert_eq!(reg.subject, entry.subject());
    }
    assert!(
        registered
            .iter()
            .any(|r| r.subject == "orders.events-orderflow.orders.OrderPlaced")
    );
    // Registering the same schemas again keeps their ids.
    assert_eq!(
        registry.expect(
            "register the event schemas again",
            codec.register_all().await
        ),
        registered
    );

    // The registry itself lists every subject and holds each schema under it with that id.
    let subjects = registry.get_ok("/subjects").await;
    for (entry, reg) in event_schemas().zip(&registered) {
        assert!(
            subjects
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == reg.subject.as_str()),
            "{} missing from {subjects}",
            reg.subject
        );
        let (status, found) = registry
            .post(
                &format!("/subjects/{}", reg.subject),
                json!({"schemaType": "AVRO", "schema": entry.json}),
            )
            .await;
        assert_eq!(status, 200, "{}: {found}", reg.subject);
        assert_eq!(found["subject"], reg.subject.as_str());
        assert_eq!(found["id"].as_u64(), Some(u64::from(reg.id)), "{found}");
    }

    // A fresh codec has nothing cached: it must fetch each writer schema by the id in the frame.
    let fresh = registry.codec();
    for event in samples::all() {
        let bytes = registry.expect(
            &format!("encode {}", event.name()),
            codec.encode_any(&event).await,
        );
        let id = frame_id(&bytes);
        let subject = format!("{}-{}", event.topic(), event.name());
        let expected = registered.iter().find(|r| r.subject == subject).unwrap();
        assert_eq!(id, expected.id, "{subject}: schema id in the frame");
        assert_eq!(
            &bytes[5..],
            event.to_datum().unwrap().as_slice(),
            "{}: the frame's body is the bare Avro datum",
            event.name()
        );

        assert_eq!(codec.decode(&bytes).await.unwrap(), event);
        let decoded = registry.expect(
            &format!("decode {} by schema id {id}", event.name()),
            fresh.decode(&bytes).await,
        );
        assert_eq!(decoded, event);
    }
}

#[tokio::test]
async fn typed_encode_and_decode() {
    let registry = Registry::require().await;
    // A trailing slash on the URL is fine.
    let codec = EventCodec::new(&format!("{}/", registry.url)).unwrap();
    assert_eq!(codec.url(), registry.url);
    let placed = samples::order_placed();
    let bytes = registry.expect("encode OrderPlaced", codec.encode(&placed).await);
    assert_eq!(
        bytes,
        codec.encode_any(&placed.clone().into()).await.unwrap()
    );
    let fresh = registry.codec();
    assert_eq!(
        fresh.decode_as::<OrderPlaced>(&bytes).await.unwrap(),
        placed
    );
    match fresh.decode_as::<CustomerDeactivated>(&bytes).await {
        Err(e @ RegistryError::Schema(SchemaError::UnexpectedEvent { .. })) => {
            assert!(!e.is_retriable(), "{e}");
            let RegistryError::Schema(SchemaError::UnexpectedEvent { expected, found }) = e else {
                unreachable!()
            };
            assert_eq!(expected, CustomerDeactivated::NAME);
            assert_eq!(found, OrderPlaced::NAME);
        }
        other => panic!("expected UnexpectedEvent, got {other:?}"),
    }
    match fresh.decode(&bytes).await.unwrap() {
        AnyEvent::Orders(OrdersEvent::OrderPlaced(e)) => assert_eq!(e, placed),
        other => panic!("dispatched to {other:?}"),
    }
}

#[tokio::test]
async fn data_of_an_older_writer_schema_is_read_with_the_current_one() {
    let registry = Registry::require().await;
    // An earlier CustomerDeactivated: without the optional `reason` (added since, with a default)
    // and with a `channel` field (dropped since). Registered under a throwaway topic, like the
    // producer of that time would have, with the encoder the codec uses.
    let topic = unique_topic();
    let subject = subject(&topic, CustomerDeactivated::NAME);
    let old = edited(CustomerDeactivated::SCHEMA_JSON, |fields| {
        fields.retain(|f| f["name"] != "reason");
        fields.push(json!({"name": "channel", "type": "string", "doc": "Where it was asked."}));
    });
    let event = samples::customer_deactivated();
    let Value::Record(mut fields) = event.to_value().unwrap() else {
        unreachable!()
    };
    fields.retain(|(name, _)| name != "reason");
    fields.push(("channel".into(), Value::String("support desk".into())));
    let encoder = AvroEncoder::new(registry.settings());
    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(topic, avro(&old));
    let bytes = registry.expect_sr(
        "register the old schema and encode with it",
        encoder.encode_value(Value::Record(fields), &strategy).await,
    );
    let old_id = frame_id(&bytes);
    let latest = registry
        .get_ok(&format!("/subjects/{subject}/versions/latest"))
        .await;
    assert_eq!(latest["id"].as_u64(), Some(u64::from(old_id)), "{latest}");
    let current_id = frame_id(&registry.expect(
        "encode CustomerDeactivated",
        registry.codec().encode(&event).await,
    ));
    assert_ne!(old_id, current_id, "the old schema has its own id");

    // A fresh codec fetches the old writer schema by id and reads the data with the current
    // schema: the dropped field is ignored, the added one takes its default.
    let expected = CustomerDeactivated {
        reason: None,
        ..event
    };
    let fresh = registry.codec();
    let decoded = registry.expect(
        "decode data of the old schema",
        fresh.decode_as::<CustomerDeactivated>(&bytes).await,
    );
    assert_eq!(decoded, expected);
    assert_eq!(fresh.decode(&bytes).await.unwrap(), expected.into());

    // And the current schema is a BACKWARD-compatible successor of the old one.
    let next = registry.expect_sr(
        "accept the current schema after the old one",
        post_schema(
            &registry.settings(),
            subject.clone(),
            avro(CustomerDeactivated::SCHEMA_JSON),
        )
        .await,
    );
    assert_ne!(next.id, old_id);
    assert_eq!(registry.versions(&subject).await, [1, 2]);

    registry.delete_subject(&subject).await;
}

#[tokio::test]
async fn permanent_and_transient_failures_are_told_apart() {
    let registry = Registry::require().await;
    let codec = registry.codec();

    // Not Confluent-framed: permanent.
    for garbage in [&b""[..], b"\x01\x00\x00\x00\x01abc", b"{\"json\":true}"] {
        let err = codec.decode(garbage).await.unwrap_err();
        assert!(!err.is_retriable(), "{garbage:?}: {err}");
    }

    // A schema id the registry does not know: permanent.
    let unknown: u32 = 0x7fff_fffe;
    let (status, body) = registry.get(&format!("/schemas/ids/{unknown}")).await;
    assert_eq!(status, 404, "schema id {unknown} should be unknown: {body}");
    let mut bytes = vec![0];
    bytes.extend_from_slice(&unknown.to_be_bytes());
    bytes.push(2);
    let err = codec.decode(&bytes).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");
    assert!(err.to_string().contains(&registry.url), "{err}");

    // Right schema id, body of another event: permanent.
    let mut bytes = registry.expect(
        "encode ShipmentDelivered",
        codec.encode(&samples::shipment_delivered()).await,
    );
    bytes.truncate(5);
    bytes.extend_from_slice(&samples::customer_registered().to_datum().unwrap());
    let err = codec.decode(&bytes).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");

    // Nobody listening: transient, and the message names the registry's URL.
    let down = EventCodec::new(UNREACHABLE_URL).unwrap();
    let err = down.encode(&samples::order_placed()).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(err.to_string().contains(UNREACHABLE_URL), "{err}");
    let err = down.decode(&[0, 0, 0, 0, 1, 2]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    let err = down.register_all().await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
}

#[tokio::test]
async fn a_change_that_breaks_backward_compatibility_is_refused() {
    let registry = Registry::require().await;
    let config = registry.get_ok("/config").await;
    assert_eq!(config["compatibilityLevel"], "BACKWARD", "global config");

    // The real OrderPlaced schema, as version 1 of a throwaway subject.
    let entry = EventSchema::of::<OrderPlaced>();
    let subject = subject(&unique_topic(), entry.name);
    let settings = registry.settings();
    let v1 = registry.expect_sr(
        "register OrderPlaced under a test subject",
        post_schema(&settings, subject.clone(), avro(entry.json)).await,
    );
    let subject_config = registry.get_ok(&format!("/config/{subject}")).await;
    assert_eq!(subject_config["compatibilityLevel"], "BACKWARD");

    // A new required field (no default): the new schema cannot read data written with v1.
    let required_field = edited(entry.json, |fields| {
        fields.push(
            json!({"name": "sales_channel", "type": "string", "doc": "Where it was placed."}),
        );
    });
    assert!(!registry.is_compatible(&subject, &required_field).await);
    let (status, body) = registry.register(&subject, &required_field).await;
    assert_eq!(status, 409, "a required field without default: {body}");
    assert_eq!(body["error_code"], 409, "{body}");

    // A field's type changed (occurred_at: timestamp-millis long -> string), through the call a
    // producer's encoder makes: refused, and not worth retrying.
    let changed_type = edited(entry.json, |fields| {
        let occurred_at = fields
            .iter_mut()
            .find(|f| f["name"] == "occurred_at")
            .expect("OrderPlaced has occurred_at");
        occurred_at["type"] = json!("string");
    });
    assert!(!registry.is_compatible(&subject, &changed_type).await);
    let err = post_schema(&settings, subject.clone(), avro(&changed_type))
        .await
        .expect_err("the registry must refuse a changed field type");
    assert!(!err.retriable, "{err}");
    assert!(err.to_string().contains("409"), "{err}");

    // A new optional field with a default is a compatible change: accepted as version 2.
    let optional_field = edited(entry.json, |fields| {
        fields.push(json!({
            "name": "sales_channel",
            "type": ["null", "string"],
            "default": null,
            "doc": "Where it was placed; null when unknown."
        }));
    });
    assert!(registry.is_compatible(&subject, &optional_field).await);
    let v2 = registry.expect_sr(
        "accept a compatible change",
        post_schema(&settings, subject.clone(), avro(&optional_field)).await,
    );
    assert_ne!(v2.id, v1.id);

    // Only the accepted schemas were stored.
    assert_eq!(registry.versions(&subject).await, [1, 2]);
    let latest = registry
        .get_ok(&format!("/subjects/{subject}/versions/latest"))
        .await;
    assert_eq!(latest["id"].as_u64(), Some(u64::from(v2.id)), "{latest}");

    registry.delete_subject(&subject).await;
}
