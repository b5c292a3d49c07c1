//! The [`Event`] trait every typed event implements (topic, record name, embedded schema,
//! conversion to and from Avro values and datums), the [`EventSchema`] catalogue entry, and the
//! macros the aggregate modules use to declare their events and per-topic enums.

use std::fmt::Debug;
use std::io::Read;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::SchemaError;
use crate::ids::EventId;
use crate::time::Timestamp;

/// One event type of the saga, bound to its `.avsc` file.
///
/// Implemented by every struct in [`orders`](crate::orders), [`inventory`](crate::inventory),
/// [`payments`](crate::payments), [`shipping`](crate::shipping) and [`customers`](crate::customers).
/// The provided methods always go through the event's own schema, so a value that is not a valid
/// instance of it is refused on the way out as well as on the way in.
pub trait Event:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// Kafka topic the event is published on: `<aggregate>.events`.
    const TOPIC: &'static str;
    /// Full Avro record name, e.g. `orderflow.orders.OrderPlaced`; also the event-type header.
    const NAME: &'static str;
    /// Path of the schema file, relative to the crate root, e.g. `avro/orders/OrderPlaced.avsc`.
    const FILE: &'static str;
    /// The schema file's text, embedded at compile time.
    const SCHEMA_JSON: &'static str;

    /// The parsed schema (parsed once, on first use).
    fn schema() -> &'static Schema;

    /// Id of this event occurrence (the outbox row id and the event-id header).
    fn event_id(&self) -> EventId;

    /// When the recorded change happened.
    fn occurred_at(&self) -> Timestamp;

    /// The Kafka key (the outbox aggregate id): the order id for saga events, the SKU for catalogue
    /// events, the customer id for customer events.
    fn key(&self) -> String;

    /// This event as an Avro value of its schema (logical types applied, validated).
    fn to_value(&self) -> Result<Value, SchemaError> {
        to_value(self, Self::schema(), Self::NAME)
    }

    /// Reads the event from an Avro value. The value is first resolved against this event's
    /// schema, so a value written with an older, compatible schema (missing fields that have
    /// defaults) is accepted; domain rules (non-negative money, positive quantities, ...) are
    /// enforced.
    fn from_value(value: Value) -> Result<Self, SchemaError> {
        from_value(value, Self::schema(), Self::NAME)
    }

    /// The event as a bare Avro datum (binary encoding, no framing, no schema id).
    fn to_datum(&self) -> Result<Vec<u8>, SchemaError> {
        let value = self.to_value()?;
        write_datum(Self::schema(), value, Self::NAME)
    }

    /// Reads the event from a bare Avro datum written with this event's schema; trailing bytes are an error.
    fn from_datum(bytes: &[u8]) -> Result<Self, SchemaError> {
        let value = read_datum(Self::schema(), bytes, Self::NAME)?;
        Self::from_value(value)
    }
}

/// A catalogue entry: one event schema, as a later step needs it to register it in the registry.
#[derive(Debug, Clone, Copy)]
pub struct EventSchema {
    /// Kafka topic, e.g. `orders.events`.
    pub topic: &'static str,
    /// Full record name, e.g. `orderflow.orders.OrderPlaced`.
    pub name: &'static str,
    /// Path of the `.avsc` file relative to the crate root.
    pub file: &'static str,
    /// The `.avsc` text.
    pub json: &'static str,
    parsed: fn() -> &'static Schema,
}

impl EventSchema {
    /// The entry of event type `E`.
    pub const fn of<E: Event>() -> EventSchema {
        EventSchema {
            topic: E::TOPIC,
            name: E::NAME,
            file: E::FILE,
            json: E::SCHEMA_JSON,
            parsed: E::schema,
        }
    }

    /// The parsed schema.
    pub fn schema(&self) -> &'static Schema {
        (self.parsed)()
    }

    /// The registry subject under TopicRecordNameStrategy: `<topic>-<full record name>`,
    /// e.g. `orders.events-orderflow.orders.OrderPlaced`.
    pub fn subject(&self) -> String {
        subject(self.topic, self.name)
    }
}

/// The registry subject under TopicRecordNameStrategy: `<topic>-<full record name>`.
pub fn subject(topic: &str, name: &str) -> String {
    format!("{topic}-{name}")
}

/// Parses an embedded schema; the tests prove every embedded schema parses.
pub(crate) fn parse_embedded(name: &str, json: &str) -> Schema {
    Schema::parse_str(json)
        .unwrap_or_else(|e| panic!("the embedded Avro schema of {name} does not parse: {e}"))
}

pub(crate) fn to_value<T: Serialize + ?Sized>(
    event: &T,
    schema: &Schema,
    name: &'static str,
) -> Result<Value, SchemaError> {
    let encode = |source| SchemaError::Encode {
        event: name,
        source: Box::new(source),
    };
    apache_avro::to_value(event)
        .map_err(encode)?
        .resolve(schema)
        .map_err(encode)
}

pub(crate) fn from_value<T: DeserializeOwned>(
    value: Value,
    schema: &Schema,
    name: &'static str,
) -> Result<T, SchemaError> {
    let decode = |source| SchemaError::Decode {
        event: name,
        source: Box::new(source),
    };
    let value = value.resolve(schema).map_err(decode)?;
    apache_avro::from_value(&value).map_err(decode)
}

pub(crate) fn write_datum(
    schema: &Schema,
    value: Value,
    name: &'static str,
) -> Result<Vec<u8>, SchemaError> {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value_to_vec(value))
        .map_err(|source| SchemaError::Encode {
            event: name,
            source: Box::new(source),
        })
}

pub(crate) fn read_datum(
    schema: &Schema,
    mut bytes: &[u8],
    name: &'static str,
) -> Result<Value, SchemaError> {
    let decode = |source| SchemaError::Decode {
        event: name,
        source: Box::new(source),
    };
    let value = GenericDatumReader::builder(schema)
        .build()
        .and_then(|reader| reader.read_value(&mut bytes))
        .map_err(decode)?;
    let mut rest = Vec::new();
    // Reading from a slice cannot fail.
    let _ = bytes.read_to_end(&mut rest);
    if !rest.is_empty() {
        return Err(SchemaError::TrailingBytes {
            event: name,
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Implements [`Event`] for a struct with `event_id` and `occurred_at` fields, binding it to
/// `avro/<aggregate>/<Type>.avsc`, topic `<aggregate>.events` and record name
/// `orderflow.<aggregate>.<Type>`. The closure-like last argument gives the Kafka key.
macro_rules! impl_event {
    ($ty:ident, $aggregate:literal, key = |$e:ident| $key:expr) => {
        impl $crate::event::Event for $ty {
            const TOPIC: &'static str = concat!($aggregate, ".events");
            const NAME: &'static str = concat!("orderflow.", $aggregate, ".", stringify!($ty));
            const FILE: &'static str = concat!("avro/", $aggregate, "/", stringify!($ty), ".avsc");
            const SCHEMA_JSON: &'static str = include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/avro/",
                $aggregate,
                "/",
                stringify!($ty),
                ".avsc"
            ));

            fn schema() -> &'static ::apache_avro::schema::Schema {
                static SCHEMA: ::std::sync::OnceLock<::apache_avro::schema::Schema> =
                    ::std::sync::OnceLock::new();
                SCHEMA.get_or_init(|| {
                    $crate::event::parse_embedded(
                        <Self as $crate::event::Event>::NAME,
                        <Self as $crate::event::Event>::SCHEMA_JSON,
                    )
                })
            }

            fn event_id(&self) -> $crate::ids::EventId {
                self.event_id
            }

            fn occurred_at(&self) -> $crate::time::Timestamp {
                self.occurred_at
            }

            fn key(&self) -> String {
                let $e = self;
                $key.to_string()
            }
        }
    };
}

/// Declares the enum of every event published on one topic, with dispatch by full record name,
/// and the `From` conversions from each event into it and into [`AnyEvent`](crate::AnyEvent).
macro_rules! topic_events {
    ($(#[$doc:meta])* $enum:ident, $aggregate:literal, [$($ev:ident),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(
            clippy::large_enum_variant,
            reason = "an event is decoded, matched and moved once per message; boxing would only make matching clumsier"
        )]
        pub enum $enum {
            $(
                #[doc = concat!("`orderflow.", $aggregate, ".", stringify!($ev), "`")]
                $ev($ev),
            )+
        }

        impl $enum {
            /// The topic these events are published on.
            pub const TOPIC: &'static str = concat!($aggregate, ".events");

            /// The catalogue entries of every event on this topic.
            pub const SCHEMAS: &'static [$crate::event::EventSchema] =
                &[$($crate::event::EventSchema::of::<$ev>()),+];

            /// Whether `name` is the full record name of an event on this topic.
            pub fn knows(name: &str) -> bool {
                Self::SCHEMAS.iter().any(|s| s.name == name)
            }

            /// Reads the event whose full record name is `name` from an Avro value.
            pub fn from_value(
                name: &str,
                value: ::apache_avro::types::Value,
            ) -> Result<Self, $crate::error::SchemaError> {
                $(
                    if name == <$ev as $crate::event::Event>::NAME {
                        return <$ev as $crate::event::Event>::from_value(value).map(Self::$ev);
                    }
                )+
                if $crate::AnyEvent::knows(name) {
                    Err($crate::error::SchemaError::UnexpectedEvent {
                        expected: concat!("an event of topic ", $aggregate, ".events"),
                        found: name.to_owned(),
                    })
                } else {
                    Err($crate::error::SchemaError::UnknownEvent { name: name.to_owned() })
                }
            }

            /// Reads the event whose full record name is `name` from a bare Avro datum.
            pub fn from_datum(name: &str, bytes: &[u8]) -> Result<Self, $crate::error::SchemaError> {
                $(
                    if name == <$ev as $crate::event::Event>::NAME {
                        return <$ev as $crate::event::Event>::from_datum(bytes).map(Self::$ev);
                    }
                )+
                Self::from_value(name, ::apache_avro::types::Value::Null)
            }

            /// Full record name of the event.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$ev(_) => <$ev as $crate::event::Event>::NAME,)+
                }
            }

            /// The event's schema.
            pub fn schema(&self) -> &'static ::apache_avro::schema::Schema {
                match self {
                    $(Self::$ev(_) => <$ev as $crate::event::Event>::schema(),)+
                }
            }

            /// The event's catalogue entry.
            pub fn event_schema(&self) -> $crate::event::EventSchema {
                match self {
                    $(Self::$ev(_) => $crate::event::EventSchema::of::<$ev>(),)+
                }
            }

            /// Id of the event.
            pub fn event_id(&self) -> $crate::ids::EventId {
                match self {
                    $(Self::$ev(e) => $crate::event::Event::event_id(e),)+
                }
            }

            /// When the recorded change happened.
            pub fn occurred_at(&self) -> $crate::time::Timestamp {
                match self {
                    $(Self::$ev(e) => $crate::event::Event::occurred_at(e),)+
                }
            }

            /// The Kafka key.
            pub fn key(&self) -> String {
                match self {
                    $(Self::$ev(e) => $crate::event::Event::key(e),)+
                }
            }

            /// The event as an Avro value of its schema.
            pub fn to_value(&self) -> Result<::apache_avro::types::Value, $crate::error::SchemaError> {
                match self {
                    $(Self::$ev(e) => $crate::event::Event::to_value(e),)+
                }
            }

            /// The event as a bare Avro datum.
            pub fn to_datum(&self) -> Result<Vec<u8>, $crate::error::SchemaError> {
                match self {
                    $(Self::$ev(e) => $crate::event::Event::to_datum(e),)+
                }
            }
        }

        $(
            impl From<$ev> for $enum {
                fn from(event: $ev) -> Self {
                    $enum::$ev(event)
                }
            }

            impl From<$ev> for $crate::AnyEvent {
                fn from(event: $ev) -> Self {
                    $crate::AnyEvent::from($enum::$ev(event))
                }
            }
        )+
    };
}

pub(crate) use impl_event;
pub(crate) use topic_events;
