//! Money on the wire: an integer amount of minor units plus an ISO 4217 currency code
//! (`orderflow.common.Money`), never a float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InvalidValue;
use crate::quantity::Quantity;

/// An ISO 4217 alphabetic currency code: exactly three uppercase ASCII letters (`EUR`, `USD`).
///
/// Only the shape is checked, not membership in the current ISO list, so a newly introduced
/// currency needs no release of this crate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// US dollar.
    pub const USD: Currency = Currency(*b"USD");
    /// Pound sterling.
    pub const GBP: Currency = Currency(*b"GBP");
    /// Swiss franc.
    pub const CHF: Currency = Currency(*b"CHF");
    /// Japanese yen (no minor unit: amounts are whole yen).
    pub const JPY: Currency = Currency(*b"JPY");

    /// The code, e.g. `"EUR"`.
    pub fn as_str(&self) -> &str {
        // Only uppercase ASCII letters are ever stored.
        std::str::from_utf8(&self.0).expect("a currency code is ASCII")
    }
}

impl FromStr for Currency {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(InvalidValue::new(
                "currency",
                s,
                "an ISO 4217 code is exactly three uppercase ASCII letters",
            )),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount of money: a non-negative integer number of minor units of one currency
/// (1999 with EUR is 19.99 EUR). Amounts in orderflow events are never negative: the event type
/// tells the direction (a refund carries a positive amount).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRecord", into = "MoneyRecord")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// `amount_minor` minor units of `currency`; fails if the amount is negative.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Money, InvalidValue> {
        if amount_minor < 0 {
            return Err(InvalidValue::new(
                "money amount",
                amount_minor,
                "amounts are never negative",
            ));
        }
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money {
            amount_minor: 0,
            currency,
        }
    }

    /// The amount in minor units (never negative).
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The sum, or `None` if the currencies differ or the sum overflows.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            amount_minor: self.amount_minor.checked_add(other.amount_minor)?,
            currency: self.currency,
        })
    }

    /// The amount times a quantity (a line total), or `None` on overflow.
    pub fn checked_mul(self, quantity: Quantity) -> Option<Money> {
        Some(Money {
            amount_minor: self.amount_minor.checked_mul(i64::from(quantity.get()))?,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Money {
    /// Minor units and code, e.g. `1999 EUR` (no decimal point: the exponent depends on the currency).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_minor, self.currency)
    }
}

/// The wire shape of [`Money`], before the non-negative rule is applied.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Money")]
struct MoneyRecord {
    amount_minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyRecord> for Money {
    type Error = InvalidValue;

    fn try_from(record: MoneyRecord) -> Result<Self, Self::Error> {
        Money::new(record.amount_minor, record.currency)
    }
}

impl From<Money> for MoneyRecord {
    fn from(money: Money) -> Self {
        MoneyRecord {
            amount_minor: money.amount_minor,
            currency: money.currency,
        }
    }
}
