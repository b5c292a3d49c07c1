//! The registry helpers against a minimal in-process stand-in for the Confluent-compatible API
//! (register a schema under a subject, fetch a schema by id): Confluent framing, subject naming
//! (TopicRecordNameStrategy), decoding by writer schema, reading data of an older writer
//! schema, and which failures are retriable. The real registry is exercised by the
//! end-to-end tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use apache_avro::schema::Schema;
use apache_avro::types::Value;
use orderflow_schemas::customers::CustomerDeactivated;
use orderflow_schemas::orders::OrderPlaced;
use orderflow_schemas::registry::{EventCodec, RegistryError};
use orderflow_schemas::{AnyEvent, Event, SchemaError, samples};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct State {
    /// Schema text by id (ids start at 1).
    schemas: Vec<String>,
    /// Subject -> ids registered under it.
    subjects: BTreeMap<String, Vec<u32>>,
}

impl State {
    fn register(&mut self, subject: &str, schema: &str) -> u32 {
        let id = match self.schemas.iter().position(|s| s == schema) {
            Some(i) => i as u32 + 1,
            None => {
                self.schemas.push(schema.to_owned());
                self.schemas.len() as u32
            }
        };
        let ids = self.subjects.entry(subject.to_owned()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
        id
    }
}

struct FakeRegistry {
    url: String,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    async fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/apis/ccompat/v7", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FakeRegistry { url, state }
    }

    fn subjects(&self) -> BTreeMap<String, Vec<u32>> {
        self.state.lock().unwrap().subjects.clone()
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let content_length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < header_end + content_length {
        let n = stream.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[header_end..header_end + content_length];
    let mut request_line = head.lines().next().unwrap().split(' ');
    let (method, target) = (request_line.next().unwrap(), request_line.next().unwrap());
    let path = target.split('?').next().unwrap();
    let path = path.split("/apis/ccompat/v7").nth(1).unwrap_or(path);

    let (status, reply) = match (method, path.split('/').collect::<Vec<_>>().as_slice()) {
        ("POST", ["", "subjects", subject, "versions"]) => {
            let request: serde_json::Value = serde_json::from_slice(body).unwrap();
            let schema = request["schema"].as_str().unwrap();
            // Like a real registry, refuse what is not a valid Avro schema.
            if Schema::parse_str(schema).is_err() {
                (
                    422,
                    json!({"error_code": 42201, "message": "Invalid schema"}),
                )
            } else {
                let id = state.lock().unwrap().register(subject, schema);
                (200, json!({"id": id}))
            }
        }
        ("GET", ["", "schemas", "ids", id]) => {
            let id: usize = id.parse().unwrap();
            match state.lock().unwrap().schemas.get(id.wrapping_sub(1)) {
                Some(schema) => (200, json!({"schema": schema})),
                None => (
                    404,
                    json!({"error_code": 40403, "message": "Schema not found"}),
                ),
            }
        }
        _ => (
            404,
            json!({"error_code": 404, "message": "no such endpoint"}),
        ),
    };
    let reply = reply.to_string();
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    stream.shutdown().await.ok();
}

#[tokio::test]
async fn every_event_is_framed_registered_under_its_subject_and_decoded_back() {
    let registry = FakeRegistry::start().await;
    let codec = EventCodec::new(&registry.url).unwrap();
    for event in samples::all() {
        let bytes = codec.encode_any(&event).await.expect("encode");
        // Confluent framing: magic byte 0, schema id (big-endian u32), then the bare datum.
        assert_eq!(bytes[0], 0, "{}: magic byte", event.name());
        let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        assert_eq!(
            &bytes[5..],
            event.to_datum().unwrap().as_slice(),
            "{}",
            event.name()
        );
        let subject = format!("{}-{}", event.topic(), event.name());
        assert_eq!(
            registry.subjects().get(&subject),
            Some(&vec![id]),
            "{subject}"
        );

        let decoded = codec.decode(&bytes).await.expect("decode");
        assert_eq!(decoded, event);
    }
    assert_eq!(registry.subjects().len(), 19);
}

#[tokio::test]
async fn typed_encode_and_decode() {
    let registry = FakeRegistry::start().await;
    let codec = EventCodec::new(&format!("{}/", registry.url)).unwrap();
    let placed = samples::order_placed();
    let bytes = codec.encode(&placed).await.unwrap();
    assert_eq!(
        bytes,
        codec.encode_any(&placed.clone().into()).await.unwrap()
    );
    assert_eq!(
        codec.decode_as::<OrderPlaced>(&bytes).await.unwrap(),
        placed
    );
    match codec.decode_as::<CustomerDeactivated>(&bytes).await {
        Err(RegistryError::Schema(SchemaError::UnexpectedEvent { expected, found })) => {
            assert_eq!(expected, CustomerDeactivated::NAME);
            assert_eq!(found, OrderPlaced::NAME);
        }
        other => panic!("expected UnexpectedEvent, got {other:?}"),
    }
    match codec.decode(&bytes).await.unwrap() {
        AnyEvent::Orders(orderflow_schemas::OrdersEvent::OrderPlaced(e)) => assert_eq!(e, placed),
        other => panic!("dispatched to {other:?}"),
    }
}

#[tokio::test]
async fn register_all_registers_every_subject_once() {
    let registry = FakeRegistry::start().await;
    let codec = EventCodec::new(&registry.url).unwrap();
    let first = codec.register_all().await.unwrap();
    assert_eq!(first.len(), 19);
    assert!(
        first
            .iter()
            .any(|r| r.subject == "orders.events-orderflow.orders.OrderPlaced")
    );
    // Idempotent: the same schemas keep their ids.
    assert_eq!(codec.register_all().await.unwrap(), first);
    // And encoding afterwards uses those ids.
    let bytes = codec.encode(&samples::order_placed()).await.unwrap();
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    let registered = first
        .iter()
        .find(|r| r.subject == "orders.events-orderflow.orders.OrderPlaced")
        .unwrap();
    assert_eq!(id, registered.id);
}

#[tokio::test]
async fn data_of_an_older_writer_schema_is_read_with_the_current_one() {
    // A first version of CustomerDeactivated without the optional `reason`.
    let registry = FakeRegistry::start().await;
    let current: serde_json::Value =
        serde_json::from_str(CustomerDeactivated::SCHEMA_JSON).unwrap();
    let mut old = current.clone();
    old["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "reason");
    let old_text = old.to_string();
    let id = registry.state.lock().unwrap().register(
        "customers.events-orderflow.customers.CustomerDeactivated",
        &old_text,
    );
    let old_schema = Schema::parse_str(&old_text).unwrap();
    let event = samples::customer_deactivated();
    let Value::Record(mut fields) = event.to_value().unwrap() else {
        unreachable!()
    };
    fields.retain(|(n, _)| n != "reason");
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&old_schema)
        .build()
        .unwrap()
        .write_value_to_vec(Value::Record(fields))
        .unwrap();
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&datum);

    let codec = EventCodec::new(&registry.url).unwrap();
    let decoded = codec
        .decode_as::<CustomerDeactivated>(&bytes)
        .await
        .unwrap();
    assert_eq!(
        decoded,
        CustomerDeactivated {
            reason: None,
            ..event
        }
    );
}

#[tokio::test]
async fn permanent_and_transient_failures_are_told_apart() {
    let registry = FakeRegistry::start().await;
    let codec = EventCodec::new(&registry.url).unwrap();

    // Not Confluent-framed: permanent.
    for garbage in [&b""[..], b"\x01\x00\x00\x00\x01abc", b"{\"json\":true}"] {
        let err = codec.decode(garbage).await.unwrap_err();
        assert!(!err.is_retriable(), "{garbage:?}: {err}");
    }
    // A schema id the registry does not know: permanent.
    let err = codec.decode(&[0, 0, 0, 0x30, 0x39, 2]).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");
    assert!(err.to_string().contains(&registry.url), "{err}");

    // Right schema, body of another event: permanent.
    let mut bytes = codec.encode(&samples::shipment_delivered()).await.unwrap();
    bytes.truncate(5);
    bytes.extend_from_slice(&samples::customer_registered().to_datum().unwrap());
    let err = codec.decode(&bytes).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");

    // Nobody listening: transient, and the message names the registry.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}/apis/ccompat/v7");
    let down = EventCodec::new(&url).unwrap();
    let err = down.encode(&samples::order_placed()).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    let err = down.decode(&[0, 0, 0, 0, 1, 2]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
}
