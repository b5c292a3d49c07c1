//! Counts of product units: [`Quantity`] (at least one, for lines and movements) and
//! [`StockLevel`] (zero or more, for what is on hand or available). Both travel as Avro `int`.

use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::error::InvalidValue;

const INT_MAX: u32 = i32::MAX as u32;

/// A number of units that is at least 1 and fits an Avro `int`: what an order line asks for, or
/// what is reserved, released, committed or restocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct Quantity(NonZeroU32);

impl Quantity {
    /// `n` units; fails for 0 and for more than `i32::MAX`.
    pub fn new(n: u32) -> Result<Quantity, InvalidValue> {
        match NonZeroU32::new(n) {
            Some(q) if n <= INT_MAX => Ok(Quantity(q)),
            _ => Err(InvalidValue::new(
                "quantity",
                n,
                "a quantity is at least 1 and at most 2147483647",
            )),
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl TryFrom<i32> for Quantity {
    type Error = InvalidValue;

    fn try_from(n: i32) -> Result<Self, Self::Error> {
        u32::try_from(n)
            .map_err(|_| InvalidValue::new("quantity", n, "a quantity is at least 1"))
            .and_then(Quantity::new)
    }
}

impl From<Quantity> for i32 {
    fn from(q: Quantity) -> i32 {
        // `new` keeps it at most i32::MAX.
        q.get() as i32
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A number of units that is zero or more and fits an Avro `int`: stock on hand, or units available.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "i32", into = "i32")]
pub struct StockLevel(u32);

impl StockLevel {
    /// No units.
    pub const ZERO: StockLevel = StockLevel(0);

    /// `n` units; fails for more than `i32::MAX`.
    pub fn new(n: u32) -> Result<StockLevel, InvalidValue> {
        if n <= INT_MAX {
            Ok(StockLevel(n))
        } else {
            Err(InvalidValue::new(
                "stock level",
                n,
                "a stock level is at most 2147483647",
            ))
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i32> for StockLevel {
    type Error = InvalidValue;

    fn try_from(n: i32) -> Result<Self, Self::Error> {
        u32::try_from(n)
            .map(StockLevel)
            .map_err(|_| InvalidValue::new("stock level", n, "a stock level is never negative"))
    }
}

impl From<StockLevel> for i32 {
    fn from(s: StockLevel) -> i32 {
        // `new` keeps it at most i32::MAX.
        s.0 as i32
    }
}

impl fmt::Display for StockLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
