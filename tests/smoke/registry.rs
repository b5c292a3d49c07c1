//! The schema registry: register an Avro schema through its Confluent-compatible API with
//! `schema_registry_converter`, encode a value in the Confluent framing, and decode it back.

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::support::{Server, stack, unique};

const SCHEMA: &str = r#"{
  "type": "record", "name": "Smoke", "namespace": "orderflow.smoke",
  "doc": "A throwaway record proving the registry round trip.",
  "fields": [
    {"name": "id", "type": "string", "doc": "An identifier."},
    {"name": "amount_minor", "type": "long", "doc": "An amount in minor units."}
  ]
}"#;

#[tokio::test]
async fn register_a_schema_and_round_trip_a_value() {
    let config = stack();
    Server::Registry.require(&config);
    let settings = SrSettings::new(config.registry_url.clone());
    let encoder = AvroEncoder::new(settings.clone());
    let decoder = AvroDecoder::new(settings);
    let topic = unique("smoke");
    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        topic.clone(),
        SuppliedSchema::new(
            Some("orderflow.smoke.Smoke".into()),
            SchemaType::Avro,
            SCHEMA.into(),
        ),
    );

    let bytes = encoder
        .encode(
            vec![
                ("id", Value::String("order-42".into())),
                ("amount_minor", Value::Long(12_345)),
            ],
            strategy,
        )
        .await
        .unwrap_or_else(|e| Server::Registry.failed(&config, "register the schema and encode", e));
    assert_eq!(bytes[0], 0, "Confluent framing starts with magic byte 0");
    let schema_id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());

    // The subject exists under the TopicRecordNameStrategy name, with the id in the framing.
    let subject = format!("{topic}-orderflow.smoke.Smoke");
    let url = format!("{}/subjects/{subject}/versions/latest", config.registry_url);
    let latest: serde_json::Value =
        async { reqwest::get(&url).await?.error_for_status()?.json().await }
            .await
            .unwrap_or_else(|e| Server::Registry.failed(&config, "read the registered subject", e));
    assert_eq!(
        latest["id"].as_u64(),
        Some(u64::from(schema_id)),
        "{latest}"
    );

    let decoded = decoder
        .decode(Some(&bytes))
        .await
        .unwrap_or_else(|e| Server::Registry.failed(&config, "decode", e));
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)),
        Some("orderflow.smoke.Smoke".to_string())
    );
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("id".into(), Value::String("order-42".into())),
            ("amount_minor".into(), Value::Long(12_345)),
        ])
    );
}
