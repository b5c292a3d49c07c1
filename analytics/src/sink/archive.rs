//! The archive: every record the sink consumes, kept in object storage as Avro object container
//! files (deflate codec) of `orderflow.archive.ArchivedRecord` (`avro/ArchivedRecord.avsc`), readable
//! by any standard Avro reader.
//!
//! Object names derive only from topic, partition and the first offset of the object's offset
//! window (see `window`), plus the date of the window's first record:
//!
//! `<prefix>/date=YYYY-MM-DD/topic=<topic>/partition=<p>/offset=<first offset, 12 digits>.avro`
//!
//! so writing the same window again (a replay, or the window growing) writes the same object.
//!
//! An object is never replaced by one with fewer records. Every write is conditional: the first
//! write of a window only creates (`If-None-Match: *`), a later one only replaces the version this
//! sink wrote last (`If-Match: <its ETag>`). When the condition fails, someone else wrote the object
//! meanwhile (an earlier run of the sink that crashed before committing, or a sink that stalled past
//! `max.poll.interval.ms` and woke up after its partition had moved on): the sink reads what is
//! there and replaces it only if its own window holds more records; otherwise it keeps it (see
//! [`put_window`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Reader, Schema, Writer};
use chrono::DateTime;
use object_store::aws::AmazonS3Builder;
use object_store::aws::S3ConditionalPut;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion};
use orderflow_platform::config::{ExposeSecret, S3Config};

/// The archive record schema's text.
pub const SCHEMA_JSON: &str = include_str!("../../avro/ArchivedRecord.avsc");

/// The parsed archive record schema.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse_str(SCHEMA_JSON).expect("avro/ArchivedRecord.avsc parses"))
}

/// One consumed Kafka record, as archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub schema_id: Option<i32>,
    /// The value exactly as it was on the topic.
    pub payload: Option<Vec<u8>>,
}

/// The registry schema id of a Confluent-framed value (magic byte 0, 4-byte big-endian id).
pub fn confluent_schema_id(payload: Option<&[u8]>) -> Option<i32> {
    match payload {
        Some([0, a, b, c, d, ..]) => Some(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

fn optional<T>(value: Option<T>, wrap: impl FnOnce(T) -> Value) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(wrap(v))),
    }
}

impl ArchivedRecord {
    /// The record as an Avro value of the archive schema.
    pub fn to_value(&self) -> Value {
        let headers = self
            .headers
            .iter()
            .map(|(key, value)| {
                Value::Record(vec![
                    ("key".into(), Value::String(key.clone())),
                    ("value".into(), optional(value.clone(), Value::Bytes)),
                ])
            })
            .collect();
        Value::Record(vec![
            ("topic".into(), Value::String(self.topic.clone())),
            ("partition".into(), Value::Int(self.partition)),
            ("offset".into(), Value::Long(self.offset)),
            (
                "timestamp".into(),
                optional(self.timestamp, Value::TimestampMillis),
            ),
            ("key".into(), optional(self.key.clone(), Value::Bytes)),
            ("headers".into(), Value::Array(headers)),
            (
                "event_type".into(),
                optional(self.event_type.clone(), Value::String),
            ),
            (
                "event_id".into(),
                optional(self.event_id.clone(), Value::String),
            ),
            ("schema_id".into(), optional(self.schema_id, Value::Int)),
            (
                "payload".into(),
                optional(self.payload.clone(), Value::Bytes),
            ),
        ])
    }

    /// Reads a record back from an Avro value of the archive schema.
    pub fn from_value(value: &Value) -> anyhow::Result<ArchivedRecord> {
        let Value::Record(fields) = value else {
            anyhow::bail!("not a record: {value:?}");
        };
        let field = |name: &str| -> anyhow::Result<&Value> {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| unwrap_union(v))
                .ok_or_else(|| anyhow::anyhow!("no field {name}"))
        };
        let string = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        };
        let bytes = |v: &Value| match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        };
        let long = |v: &Value| match v {
            Value::Long(n) | Value::TimestampMillis(n) => Some(*n),
            _ => None,
        };
        let int = |v: &Value| match v {
            Value::Int(n) => Some(*n),
            _ => None,
        };
        let headers = match field("headers")? {
            Value::Array(items) => items
                .iter()
                .map(|h| {
                    let Value::Record(hf) = h else {
                        anyhow::bail!("header is not a record");
                    };
                    let key = hf
                        .iter()
                        .find(|(n, _)| n == "key")
                        .and_then(|(_, v)| string(v))
                        .unwrap_or_default();
                    let value = hf
                        .iter()
                        .find(|(n, _)| n == "value")
                        .and_then(|(_, v)| bytes(unwrap_union(v)));
                    Ok((key, value))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            other => anyhow::bail!("headers is not an array: {other:?}"),
        };
        Ok(ArchivedRecord {
            topic: string(field("topic")?).unwrap_or_default(),
            partition: int(field("partition")?).unwrap_or_default(),
            offset: long(field("offset")?).unwrap_or_default(),
            timestamp: long(field("timestamp")?),
            key: bytes(field("key")?),
            headers,
            event_type: string(field("event_type")?),
            event_id: string(field("event_id")?),
            schema_id: int(field("schema_id")?),
            payload: bytes(field("payload")?),
        })
    }
}

fn unwrap_union(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

/// An object container file of `records` (deflate), with the given sync marker.
pub fn encode(records: &[ArchivedRecord], marker: [u8; 16]) -> anyhow::Result<Vec<u8>> {
    let mut writer = Writer::builder()
        .schema(schema())
        .writer(Vec::new())
        .codec(Codec::Deflate(DeflateSettings::default()))
        .marker(marker)
        .build()?;
    for record in records {
        writer.append_value(record.to_value())?;
    }
    Ok(writer.into_inner()?)
}

/// Every record of an object container file written by [`encode`].
pub fn decode(bytes: &[u8]) -> anyhow::Result<Vec<ArchivedRecord>> {
    let reader = Reader::new(bytes)?;
    reader
        .map(|value| ArchivedRecord::from_value(&value?))
        .collect()
}

/// A sync marker that depends only on the object's coordinates (FNV-1a, 128 bits), so rewriting a
/// window keeps its marker.
pub fn marker(topic: &str, partition: i32, first_offset: i64) -> [u8; 16] {
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    let prime: u128 = 0x0000000001000000000000000000013B;
    for byte in topic
        .bytes()
        .chain(partition.to_be_bytes())
        .chain(first_offset.to_be_bytes())
    {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(prime);
    }
    hash.to_be_bytes()
}

/// The object name of the window starting at `first_offset`, dated by `first_timestamp` (the
/// timestamp of the window's first record, UTC; 1970-01-01 when the record has none).
pub fn object_path(
    prefix: &str,
    topic: &str,
    partition: i32,
    first_offset: i64,
    first_timestamp: Option<i64>,
) -> Path {
    let date = first_timestamp
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
        .format("%Y-%m-%d");
    let prefix = prefix.trim_matches('/');
    let name =
        format!("date={date}/topic={topic}/partition={partition}/offset={first_offset:012}.avro");
    if prefix.is_empty() {
        Path::from(name)
    } else {
        Path::from(format!("{prefix}/{name}"))
    }
}

/// The S3 store of the archive bucket. object_store's own retries are kept short: the sink retries
/// the whole write with its own backoff, logging and counting each failure.
pub fn store(s3: &S3Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let retry = RetryConfig {
        max_retries: 1,
        retry_timeout: Duration::from_secs(10),
        ..RetryConfig::default()
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_region(&s3.region)
        .with_bucket_name(&s3.bucket)
        .with_access_key_id(&s3.access_key)
        .with_secret_access_key(s3.secret_key.expose_secret())
        .with_allow_http(s3.endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .with_retry(retry)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()?;
    Ok(Arc::new(store))
}

/// What a conditional write of a window ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowWrite {
    /// The object now holds this window; its ETag, for the next write of the same window.
    Written { e_tag: Option<String> },
    /// The object already held as many records as this window, or more (written by another run or
    /// another sink): it was kept as it is.
    KeptExisting {
        records: usize,
        e_tag: Option<String>,
    },
}

/// Write a window of `records` records (encoded as `bytes`) at `path`, never replacing an object
/// that holds as many records or more. `e_tag` is the version this sink wrote last (`None`: it has
/// not written this window yet, or forgot it in a rebalance).
pub async fn put_window(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Vec<u8>,
    records: usize,
    mut e_tag: Option<String>,
) -> anyhow::Result<WindowWrite> {
    let payload = PutPayload::from(bytes);
    loop {
        let mode = match &e_tag {
            None => PutMode::Create,
            Some(tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(tag.clone()),
                version: None,
            }),
        };
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match store.put_opts(path, payload.clone(), options).await {
            Ok(result) => {
                return Ok(WindowWrite::Written {
                    e_tag: result.e_tag,
                });
            }
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Someone else wrote it since: look at what is there.
                match store.get(path).await {
                    Ok(got) => {
                        let Some(there_tag) = got.meta.e_tag.clone() else {
                            anyhow::bail!("{path} has no ETag: conditional writes need one");
                        };
                        let there = got
                            .bytes()
                            .await
                            .map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
                        let there_records = decode(&there)
                            .map_err(|e| e.context(format!("decoding {path}")))?
                            .len();
                        if there_records >= records {
                            return Ok(WindowWrite::KeptExisting {
                                records: there_records,
                                e_tag: Some(there_tag),
                            });
                        }
                        tracing::info!(%path, there_records, records, "the archive object holds fewer records than this window: replacing it");
                        e_tag = Some(there_tag);
                    }
                    // Deleted in between: create it.
                    Err(object_store::Error::NotFound { .. }) => e_tag = None,
                    Err(e) => anyhow::bail!("reading {path}: {e}"),
                }
            }
            Err(e) => anyhow::bail!("putting {path}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, payload: Option<&[u8]>) -> ArchivedRecord {
        ArchivedRecord {
            topic: "orders.events".into(),
            partition: 2,
            offset,
            timestamp: Some(1_772_442_000_123),
            key: Some(b"order-1".to_vec()),
            headers: vec![
                ("event_type".into(), Some(b"x".to_vec())),
                ("empty".into(), None),
            ],
            event_type: payload.map(|_| "orderflow.orders.OrderPlaced".into()),
            event_id: None,
            schema_id: confluent_schema_id(payload),
            payload: payload.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn records_survive_an_object_container_file() {
        let records = vec![
            record(100, Some(&[0, 0, 0, 0, 7, 1, 2, 3])),
            record(101, None),
        ];
        let bytes = encode(&records, marker("orders.events", 2, 100)).unwrap();
        assert_eq!(&bytes[..4], b"Obj\x01");
        assert_eq!(decode(&bytes).unwrap(), records);
        assert_eq!(records[0].schema_id, Some(7));
    }

    #[test]
    fn object_names_come_from_topic_partition_first_offset_and_date() {
        let path = object_path("archive/", "orders.events", 0, 123, Some(1_772_442_000_123));
        assert_eq!(
            path.as_ref(),
            "archive/date=2026-03-02/topic=orders.events/partition=0/offset=000000000123.avro"
        );
    }
}
