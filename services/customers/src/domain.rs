//! The customers' rules, without a database: what a name, an address line, a postal code and a
//! deactivation reason may be (types that cannot hold bad values; e-mail, phone and country come from
//! the schemas crate), and the customer's two states with the one transition between them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Trimmed text of 1 to `MAX` characters; `kind` names it in errors.
fn bounded_text(raw: &str, kind: &str, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        Err(format!("{kind} must not be blank"))
    } else if trimmed.chars().count() > max {
        Err(format!("{kind} is at most {max} characters"))
    } else if trimmed.chars().any(char::is_control) {
        Err(format!("{kind} must not contain control characters"))
    } else {
        Ok(trimmed.to_owned())
    }
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, String> {
                bounded_text(raw, $kind, Self::MAX_CHARS).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_type!(
    /// A customer's full name: 1 to 200 characters, trimmed, no control characters.
    PersonName,
    "a name",
    200
);
text_type!(
    /// One part of a postal address (recipient, street line, city, region): 1 to 200 characters.
    AddressText,
    "an address line",
    200
);
text_type!(
    /// Why a customer was deactivated: 1 to 500 characters.
    DeactivationReason,
    "a reason",
    500
);

/// A postal code as written locally: 1 to 16 ASCII letters, digits, spaces or dashes, trimmed
/// (`10117`, `SW1A 1AA`, `1010-123`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let ok = (1..=16).contains(&trimmed.len())
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
        if ok {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err("a postal code is 1 to 16 ASCII letters, digits, spaces or dashes".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for PostalCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Where a customer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CustomerStatus {
    /// May place orders.
    Active,
    /// May not place orders any more (terminal).
    Deactivated,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Deactivated => "DEACTIVATED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "DEACTIVATED" => Some(Self::Deactivated),
            _ => None,
        }
    }

    /// The only transition: an active customer may be deactivated, once.
    pub fn deactivate(self) -> Result<Self, AlreadyDeactivated> {
        match self {
            Self::Active => Ok(Self::Deactivated),
            Self::Deactivated => Err(AlreadyDeactivated),
        }
    }
}

/// Deactivating a customer who is already deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the customer is already deactivated")]
pub struct AlreadyDeactivated;

/// serde helper: an optional text field where `null`, a missing field or blank text all mean `None`.
pub fn blank_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFromText,
{
    match Option::<String>::deserialize(deserializer)? {
        Some(raw) if !raw.trim().is_empty() => T::try_from_text(&raw)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// Text types `blank_is_none` can build.
pub trait TryFromText: Sized {
    fn try_from_text(raw: &str) -> Result<Self, String>;
}

impl TryFromText for AddressText {
    fn try_from_text(raw: &str) -> Result<Self, String> {
        Self::parse(raw)
    }
}

impl TryFromText for DeactivationReason {
    fn try_from_text(raw: &str) -> Result<Self, String> {
        Self::parse(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(PersonName::parse(" \t ").is_err());
        assert!(PersonName::parse(&"x".repeat(201)).is_err());
        assert!(PersonName::parse("Ada\u{0}").is_err());
        assert!(PersonName::parse(&"ß".repeat(200)).is_ok());
        assert!(DeactivationReason::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn postal_codes() {
        for ok in ["10117", "SW1A 1AA", "1010-123", " 75001 "] {
            assert!(PostalCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "  ", "1011/7", "12345678901234567", "1011✓"] {
            assert!(PostalCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_customer_is_deactivated_once() {
        assert_eq!(
            CustomerStatus::Active.deactivate(),
            Ok(CustomerStatus::Deactivated)
        );
        assert_eq!(
            CustomerStatus::Deactivated.deactivate(),
            Err(AlreadyDeactivated)
        );
        for s in [CustomerStatus::Active, CustomerStatus::Deactivated] {
            assert_eq!(CustomerStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(CustomerStatus::parse("active"), None);
    }

    #[test]
    fn blank_optional_text_is_none() {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "blank_is_none")]
            line2: Option<AddressText>,
        }
        let parse = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.line2);
        assert_eq!(parse("{}").unwrap(), None);
        assert_eq!(parse(r#"{"line2": null}"#).unwrap(), None);
        assert_eq!(parse(r#"{"line2": "  "}"#).unwrap(), None);
        assert_eq!(
            parse(r#"{"line2": " 3rd floor "}"#)
                .unwrap()
                .unwrap()
                .as_str(),
            "3rd floor"
        );
        assert!(parse(&format!(r#"{{"line2": "{}"}}"#, "x".repeat(201))).is_err());
        assert!(parse(r#"{"line2": 5}"#).is_err());
    }
}
