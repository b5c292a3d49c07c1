//! Integration test against the real schema registry of the stack (Apicurio's
//! Confluent-compatible API at `$ORDERFLOW_REGISTRY_URL`): every event schema registers under its
//! TopicRecordNameStrategy subject, and every event encodes to Confluent-framed bytes and decodes
//! back, also by a fresh codec that must look the schema up by id.
//!
//! Needs the registry running (`scripts/stack up registry`); it fails, never skips, without it.

use orderflow_schemas::registry::{EventCodec, RegistryError};
use orderflow_schemas::{event_schemas, samples};

/// The registry URL the stack uses (`stack.env`), unless the environment says otherwise.
fn registry_url() -> String {
    std::env::var("ORDERFLOW_REGISTRY_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:18081/apis/ccompat/v7".to_owned())
}

fn unreachable(url: &str, err: &RegistryError) -> ! {
    panic!(
        "the schema registry at {url} (ORDERFLOW_REGISTRY_URL) is unreachable: {err}\n\
         start it with `scripts/stack up registry` and run the test again"
    )
}

#[tokio::test]
async fn every_event_round_trips_through_the_real_registry() {
    let url = registry_url();
    let codec = EventCodec::new(&url).unwrap();

    let registered = match codec.register_all().await {
        Ok(r) => r,
        Err(e) if e.is_retriable() => unreachable(&url, &e),
        Err(e) => panic!("registering the event schemas at {url} failed: {e}"),
    };
    assert_eq!(registered.len(), event_schemas().count());
    for (entry, reg) in event_schemas().zip(&registered) {
        assert_eq!(reg.subject, entry.subject());
    }
    // Registering the same schemas again keeps their ids.
    assert_eq!(codec.register_all().await.unwrap(), registered);

    let fresh = EventCodec::new(&url).unwrap();
    for event in samples::all() {
        let bytes = codec
            .encode_any(&event)
            .await
            .unwrap_or_else(|e| panic!("encoding {} through {url}: {e}", event.name()));
        assert_eq!(bytes[0], 0, "magic byte");
        let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        let subject = format!("{}-{}", event.topic(), event.name());
        let expected = registered.iter().find(|r| r.subject == subject).unwrap();
        assert_eq!(id, expected.id, "{subject}: schema id in the frame");
        assert_eq!(&bytes[5..], event.to_datum().unwrap().as_slice());

        assert_eq!(codec.decode(&bytes).await.unwrap(), event);
        let decoded = fresh
            .decode(&bytes)
            .await
            .unwrap_or_else(|e| panic!("decoding {} by schema id {id}: {e}", event.name()));
        assert_eq!(decoded, event);
    }
}
