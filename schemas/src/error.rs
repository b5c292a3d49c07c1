//! The errors of this crate: a value that breaks a domain rule ([`InvalidValue`]) and an event that
//! cannot be converted to or from its Avro schema ([`SchemaError`]).

use std::fmt;

/// A value that breaks a rule of its domain type: a lowercase currency, a zero quantity, a
/// malformed UUID, and so on. Returned by the `new`/`FromStr`/`TryFrom` constructors of the value
/// types, and the reason deserializing an event containing such a value fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct InvalidValue {
    /// What kind of value it was meant to be ("currency", "quantity", ...).
    pub kind: &'static str,
    /// The offending input, as text.
    pub value: String,
    /// The rule it breaks, in words.
    pub rule: &'static str,
}

impl InvalidValue {
    pub(crate) fn new(kind: &'static str, value: impl fmt::Display, rule: &'static str) -> Self {
        InvalidValue {
            kind,
            value: value.to_string(),
            rule,
        }
    }
}

/// An event could not be converted to or from Avro.
///
/// Every variant is permanent: the same input fails the same way again, so a consumer should send
/// the message to its dead-letter topic rather than retry it.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The typed event could not be turned into a datum of its schema (a Rust value the schema cannot hold).
    #[error("cannot encode {event} with its Avro schema: {source}")]
    Encode {
        /// Full record name of the event.
        event: &'static str,
        /// What apache-avro reported.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// An Avro value or datum is not a valid instance of the event (wrong shape, or a field that
    /// breaks a domain rule such as a negative amount).
    #[error("cannot decode {event} from Avro: {source}")]
    Decode {
        /// Full record name of the event.
        event: &'static str,
        /// What apache-avro reported.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// A datum was read completely but bytes were left over: it was not written with this schema.
    #[error("cannot decode {event} from Avro: {count} bytes left over after the datum")]
    TrailingBytes {
        /// Full record name of the event.
        event: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// No event of this crate has this full record name.
    #[error("unknown event type {name:?}: no orderflow schema has this full record name")]
    UnknownEvent {
        /// The full record name that was looked up.
        name: String,
    },
    /// The value is a known event, but not the one (or not on the topic) the caller asked for.
    #[error("expected {expected}, got the event {found:?}")]
    UnexpectedEvent {
        /// What the caller asked for (an event name or a topic).
        expected: &'static str,
        /// The full record name that was found.
        found: String,
    },
}
