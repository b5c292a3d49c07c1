//! Where and how to reach a customer: the postal [`Address`] (`orderflow.common.Address`), its
//! [`CountryCode`], and the [`Email`] and [`Phone`] of a customer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InvalidValue;

/// Implements Display/Debug/Serialize/Deserialize/TryFrom<String> for a string newtype with `FromStr`.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An ISO 3166-1 alpha-2 country code: exactly two uppercase ASCII letters (`DE`, `US`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(String);

impl FromStr for CountryCode {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(CountryCode(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "country code",
                s,
                "an ISO 3166-1 alpha-2 code is exactly two uppercase ASCII letters",
            ))
        }
    }
}
string_newtype!(CountryCode);

/// An e-mail address: at most 254 characters, no whitespace, exactly one `@` with text on both
/// sides. (Deliverability is not this type's business.)
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl FromStr for Email {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() <= 254
            && !s.chars().any(char::is_whitespace)
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if ok {
            Ok(Email(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "e-mail address",
                s,
                "needs exactly one '@' with text on both sides, no whitespace, at most 254 characters",
            ))
        }
    }
}
string_newtype!(Email);

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0 (`+4930123456`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl FromStr for Phone {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = match s.strip_prefix('+') {
            Some(digits) => {
                (8..=15).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0')
            }
            None => false,
        };
        if ok {
            Ok(Phone(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "phone number",
                s,
                "E.164 form is '+' then 8 to 15 digits, the first not 0",
            ))
        }
    }
}
string_newtype!(Phone);

/// A postal address that parcels can be delivered to (`orderflow.common.Address`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename = "Address")]
pub struct Address {
    /// Name of the person or company the parcel is addressed to.
    pub recipient: String,
    /// Street and house number, or PO box.
    pub line1: String,
    /// Apartment, floor, c/o; `None` when unused.
    pub line2: Option<String>,
    /// City or locality.
    pub city: String,
    /// State, province or county, where addresses use one.
    pub region: Option<String>,
    /// Postal or ZIP code as written locally.
    pub postal_code: String,
    /// Country.
    pub country: CountryCode,
}
