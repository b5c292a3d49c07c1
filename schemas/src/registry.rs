//! Confluent-framed Avro through the schema registry (magic byte 0, 4-byte big-endian schema id,
//! Avro body): thin helpers around `schema_registry_converter` that encode a typed event under
//! TopicRecordNameStrategy (subject `<topic>-<full record name>`, the schema registered from this
//! crate's `.avsc` on first use) and decode framed bytes back into a typed event.
//!
//! The bytes [`EventCodec::encode`] returns are what a service stores in its outbox `payload`
//! column; [`EventCodec::decode`] is what a worker applies to a Kafka message value.

use std::time::Duration;

use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::catalog::{AnyEvent, event_schemas};
use crate::error::SchemaError;
use crate::event::{Event, EventSchema};

/// How long one HTTP call to the registry may take before it fails (retriably).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong encoding or decoding through the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry call failed or refused (unreachable, schema unknown, incompatible schema,
    /// malformed framing...). See [`RegistryError::is_retriable`].
    #[error("schema registry at {url}: {source}")]
    Registry {
        /// Base URL of the registry.
        url: String,
        /// What `schema_registry_converter` reported.
        #[source]
        source: SRCError,
    },
    /// The framed bytes decoded to something that is not an Avro record, so it has no event name.
    #[error("the message does not hold an Avro record (its schema has no record name)")]
    NotARecord,
    /// The event could not be converted to or from its schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl RegistryError {
    /// Whether trying again later may succeed: the registry was unreachable, or answered 429, 500,
    /// 502, 503 or 504. `schema_registry_converter` itself marks only 502 and 503 retriable; the
    /// other statuses are read from its message ("... failed with status 500 ..."). Everything else
    /// is permanent: a consumer sends such a message to its dead-letter topic.
    pub fn is_retriable(&self) -> bool {
        match self {
            RegistryError::Registry { source, .. } => {
                source.retriable
                    || matches!(
                        http_status(&source.error),
                        Some(429 | 500 | 502 | 503 | 504)
                    )
            }
            _ => false,
        }
    }
}

/// The HTTP status in a `schema_registry_converter` error message, if it names one.
fn http_status(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once("failed with status ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod status_tests {
    use super::*;

    fn answered(status: &str) -> RegistryError {
        RegistryError::Registry {
            url: "http://registry".into(),
            source: SRCError::non_retryable_without_cause(&format!(
                "HTTP request to schema registry failed with status {status}"
            )),
        }
    }

    #[test]
    fn overload_and_server_errors_are_retriable_refusals_are_not() {
        for status in [
            "429 Too Many Requests",
            "500 Internal Server Error",
            "502 Bad Gateway",
            "503 Service Unavailable",
            "504 Gateway Timeout",
        ] {
            assert!(answered(status).is_retriable(), "{status}");
        }
        for status in [
            "401 Unauthorized",
            "404 Not Found",
            "409 Conflict",
            "422 Unprocessable Entity",
        ] {
            assert!(!answered(status).is_retriable(), "{status}");
        }
        assert!(!RegistryError::NotARecord.is_retriable());
    }
}

/// The subject name strategy for an event: TopicRecordNameStrategy with this crate's schema, so
/// the registry gets the schema registered under `<topic>-<full record name>` on first use (and
/// refuses it if it is not compatible with what is registered there).
pub fn subject_strategy(entry: &EventSchema) -> SubjectNameStrategy {
    SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        entry.topic.to_owned(),
        SuppliedSchema::new(
            Some(entry.name.to_owned()),
            SchemaType::Avro,
            entry.json.to_owned(),
        ),
    )
}

/// [`subject_strategy`] of event type `E`.
pub fn subject_strategy_for<E: Event>() -> SubjectNameStrategy {
    subject_strategy(&EventSchema::of::<E>())
}

/// A schema registered by [`EventCodec::register_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The subject, `<topic>-<full record name>`.
    pub subject: String,
    /// The id the registry gave the schema.
    pub id: u32,
}

/// Encodes typed events into Confluent-framed Avro and decodes them back, with the registry at
/// one URL. Cheap to share (`Arc`) across tasks; schemas and ids are cached after first use.
#[derive(Debug)]
pub struct EventCodec {
    url: String,
    settings: SrSettings,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
}

impl EventCodec {
    /// A codec for the Confluent-compatible API at `url` (for Apicurio:
    /// `http://host:port/apis/ccompat/v7`), bypassing any HTTP proxy, with [`DEFAULT_TIMEOUT`].
    pub fn new(url: &str) -> Result<EventCodec, RegistryError> {
        let url = url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .no_proxy()
            .set_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|source| RegistryError::Registry {
                url: url.clone(),
                source,
            })?;
        Ok(EventCodec::with_settings(url, settings))
    }

    /// A codec with fully custom settings (authentication, several URLs, ...); `url` only names
    /// the registry in error messages.
    pub fn with_settings(url: impl Into<String>, settings: SrSettings) -> EventCodec {
        EventCodec {
            url: url.into(),
            encoder: AvroEncoder::new(settings.clone()),
            decoder: AvroDecoder::new(settings.clone()),
            settings,
        }
    }

    /// Base URL of the registry.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Wraps a converter error. `schema_registry_converter` caches failed look-ups as well as good
    /// ones, so an outage would otherwise fail every later call for the same schema: failures are
    /// dropped from both caches here, and the next call asks the registry again.
    fn registry_error(&self, source: SRCError) -> RegistryError {
        self.encoder.remove_errors_from_cache();
        self.decoder.remove_errors_from_cache();
        RegistryError::Registry {
            url: self.url.clone(),
            source,
        }
    }

    /// The event as Confluent-framed Avro bytes: the outbox payload.
    pub async fn encode<E: Event>(&self, event: &E) -> Result<Vec<u8>, RegistryError> {
        let value = event.to_value()?;
        self.encoder
            .encode_value(value, &subject_strategy_for::<E>())
            .await
            .map_err(|e| self.registry_error(e))
    }

    /// Like [`EventCodec::encode`], for an event whose type is only known at run time.
    pub async fn encode_any(&self, event: &AnyEvent) -> Result<Vec<u8>, RegistryError> {
        let value = event.to_value()?;
        self.encoder
            .encode_value(value, &subject_strategy(&event.event_schema()))
            .await
            .map_err(|e| self.registry_error(e))
    }

    /// Decodes Confluent-framed bytes into whichever event they hold: the schema id in the frame
    /// gives the writer schema, whose full record name selects the event type.
    pub async fn decode(&self, bytes: &[u8]) -> Result<AnyEvent, RegistryError> {
        let (name, value) = self.decode_raw(bytes).await?;
        Ok(AnyEvent::from_value(&name, value)?)
    }

    /// Decodes Confluent-framed bytes that must hold an event of type `E`.
    pub async fn decode_as<E: Event>(&self, bytes: &[u8]) -> Result<E, RegistryError> {
        let (name, value) = self.decode_raw(bytes).await?;
        if name != E::NAME {
            return Err(SchemaError::UnexpectedEvent {
                expected: E::NAME,
                found: name,
            }
            .into());
        }
        Ok(E::from_value(value)?)
    }

    /// The full record name of the writer schema and the Avro value, undecoded.
    async fn decode_raw(
        &self,
        bytes: &[u8],
    ) -> Result<(String, apache_avro::types::Value), RegistryError> {
        let result = self
            .decoder
            .decode(Some(bytes))
            .await
            .map_err(|e| self.registry_error(e))?;
        let name = result.name.ok_or(RegistryError::NotARecord)?;
        Ok((name.fullname(None), result.value))
    }

    /// Registers every event schema of this crate under its TopicRecordNameStrategy subject
    /// (idempotent: an identical schema keeps its id) and returns the ids.
    pub async fn register_all(&self) -> Result<Vec<Registered>, RegistryError> {
        let mut registered = Vec::new();
        for entry in event_schemas() {
            let subject = entry.subject();
            let supplied = SuppliedSchema::new(
                Some(entry.name.to_owned()),
                SchemaType::Avro,
                entry.json.to_owned(),
            );
            let schema = post_schema(&self.settings, subject.clone(), supplied)
                .await
                .map_err(|e| self.registry_error(e))?;
            registered.push(Registered {
                subject,
                id: schema.id,
            });
        }
        Ok(registered)
    }
}
