//! Instants on the wire: [`Timestamp`], a UTC instant with millisecond precision that travels as
//! Avro `long` with logical type `timestamp-millis` (milliseconds since the Unix epoch).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InvalidValue;

/// A UTC instant, truncated to whole milliseconds so that it survives the wire unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Now, truncated to the millisecond.
    pub fn now() -> Timestamp {
        Timestamp::from(Utc::now())
    }

    /// The instant `millis` milliseconds after the Unix epoch (negative: before it); fails
    /// outside the range chrono can represent.
    pub fn from_millis(millis: i64) -> Result<Timestamp, InvalidValue> {
        DateTime::from_timestamp_millis(millis)
            .map(Timestamp)
            .ok_or_else(|| {
                InvalidValue::new(
                    "timestamp",
                    millis,
                    "milliseconds out of the supported range",
                )
            })
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// As a chrono date-time.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    /// Truncates to the millisecond.
    fn from(t: DateTime<Utc>) -> Timestamp {
        let millis = t.timestamp_millis();
        Timestamp(
            DateTime::from_timestamp_millis(millis).expect("a truncated DateTime is in range"),
        )
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> DateTime<Utc> {
        t.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 with milliseconds, e.g. `2026-03-01T10:15:00.123Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.as_millis())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let millis = i64::deserialize(deserializer)?;
        Timestamp::from_millis(millis).map_err(serde::de::Error::custom)
    }
}
