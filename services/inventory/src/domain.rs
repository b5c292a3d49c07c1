//! The inventory's rules, without a database: what a product name may be, how a product's stock moves
//! (restock, reserve, release, commit) without ever going negative or overselling, and how an order's
//! lines are decided all-or-none against the stock at hand.

use std::collections::BTreeMap;
use std::fmt;

use orderflow_schemas::inventory::{StockLine, StockShortage};
use orderflow_schemas::{Quantity, Sku, StockLevel};
use serde::{Deserialize, Deserializer};

/// A product's display name: 1 to 200 characters once surrounding whitespace is trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            Err("a product name must not be blank".into())
        } else if trimmed.chars().count() > Self::MAX_CHARS {
            Err(format!(
                "a product name is at most {} characters",
                Self::MAX_CHARS
            ))
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProductName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A product's optional longer description: at most 2000 characters; blank means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 2000;

    /// `None` for blank text.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            Ok(None)
        } else if trimmed.chars().count() > Self::MAX_CHARS {
            Err(format!(
                "a description is at most {} characters",
                Self::MAX_CHARS
            ))
        } else {
            Ok(Some(Self(trimmed.to_owned())))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The stock of one product. Invariant: `reserved <= on_hand`; `available = on_hand - reserved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    on_hand: StockLevel,
    reserved: StockLevel,
}

/// A stock movement that would break the invariants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("only {available} available, {requested} requested")]
    Insufficient {
        requested: Quantity,
        available: StockLevel,
    },
    #[error("on hand would exceed the largest stock level (2147483647)")]
    Overflow,
    #[error("{requested} to release or commit but only {reserved} reserved")]
    NotReserved {
        requested: Quantity,
        reserved: StockLevel,
    },
    #[error("reserved {reserved} exceeds on hand {on_hand}")]
    Inconsistent {
        on_hand: StockLevel,
        reserved: StockLevel,
    },
}

fn level(n: u64) -> Result<StockLevel, StockError> {
    u32::try_from(n)
        .ok()
        .and_then(|n| StockLevel::new(n).ok())
        .ok_or(StockError::Overflow)
}

impl Stock {
    pub fn new(on_hand: StockLevel, reserved: StockLevel) -> Result<Self, StockError> {
        if reserved > on_hand {
            return Err(StockError::Inconsistent { on_hand, reserved });
        }
        Ok(Self { on_hand, reserved })
    }

    /// A new product's stock: nothing reserved.
    pub fn fresh(on_hand: StockLevel) -> Self {
        Self {
            on_hand,
            reserved: StockLevel::ZERO,
        }
    }

    pub fn on_hand(&self) -> StockLevel {
        self.on_hand
    }

    pub fn reserved(&self) -> StockLevel {
        self.reserved
    }

    pub fn available(&self) -> StockLevel {
        StockLevel::new(self.on_hand.get() - self.reserved.get()).expect("within on hand")
    }

    /// Units arrived.
    pub fn restock(self, quantity: Quantity) -> Result<Self, StockError> {
        let on_hand = level(u64::from(self.on_hand.get()) + u64::from(quantity.get()))?;
        Ok(Self { on_hand, ..self })
    }

    /// Hold units for an order; refused when fewer are available.
    pub fn reserve(self, quantity: Quantity) -> Result<Self, StockError> {
        let available = self.available();
        if quantity.get() > available.get() {
            return Err(StockError::Insufficient {
                requested: quantity,
                available,
            });
        }
        let reserved = level(u64::from(self.reserved.get()) + u64::from(quantity.get()))?;
        Ok(Self { reserved, ..self })
    }

    /// Give held units back (the order was cancelled).
    pub fn release(self, quantity: Quantity) -> Result<Self, StockError> {
        let reserved = self.take_reserved(quantity)?;
        Ok(Self { reserved, ..self })
    }

    /// Held units left the warehouse: both on hand and reserved go down.
    pub fn commit(self, quantity: Quantity) -> Result<Self, StockError> {
        let reserved = self.take_reserved(quantity)?;
        let on_hand = StockLevel::new(self.on_hand.get() - quantity.get()).expect("smaller");
        Ok(Self { on_hand, reserved })
    }

    fn take_reserved(&self, quantity: Quantity) -> Result<StockLevel, StockError> {
        self.reserved
            .get()
            .checked_sub(quantity.get())
            .map(|n| StockLevel::new(n).expect("smaller"))
            .ok_or(StockError::NotReserved {
                requested: quantity,
                reserved: self.reserved,
            })
    }
}

/// An order's wishes per product, sorted by SKU (the order rows are locked in), one entry per SKU.
pub type Wanted = BTreeMap<Sku, Quantity>;

/// Sum an order's lines per SKU (an order normally has one line per SKU; a repeated SKU is added up).
pub fn merge_lines(lines: impl IntoIterator<Item = (Sku, Quantity)>) -> Result<Wanted, StockError> {
    let mut wanted = Wanted::new();
    for (sku, quantity) in lines {
        let total = match wanted.get(&sku) {
            Some(existing) => Quantity::new(
                existing
                    .get()
                    .checked_add(quantity.get())
                    .ok_or(StockError::Overflow)?,
            )
            .map_err(|_| StockError::Overflow)?,
            None => quantity,
        };
        wanted.insert(sku, total);
    }
    Ok(wanted)
}

/// What inventory answers to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every line can be held: these are the new stocks, and the lines reserved.
    Reserve {
        lines: Vec<StockLine>,
        stocks: Vec<(Sku, Stock)>,
    },
    /// Some line cannot: nothing is held, and these are every line that was short.
    Reject { shortages: Vec<StockShortage> },
}

/// Decide an order all-or-none against the current stocks; an SKU missing from `stocks` is an
/// unknown product, short by everything requested (available 0).
pub fn decide(wanted: &Wanted, stocks: &BTreeMap<Sku, Stock>) -> Decision {
    let mut shortages = Vec::new();
    let mut lines = Vec::new();
    let mut after = Vec::new();
    for (sku, &quantity) in wanted {
        let outcome = match stocks.get(sku) {
            Some(stock) => stock.reserve(quantity),
            None => Err(StockError::Insufficient {
                requested: quantity,
                available: StockLevel::ZERO,
            }),
        };
        match outcome {
            Ok(stock) => {
                lines.push(StockLine {
                    sku: sku.clone(),
                    quantity,
                });
                after.push((sku.clone(), stock));
            }
            Err(error) => shortages.push(StockShortage {
                sku: sku.clone(),
                requested: quantity,
                available: match error {
                    StockError::Insufficient { available, .. } => available,
                    _ => stocks.get(sku).map(Stock::available).unwrap_or_default(),
                },
            }),
        }
    }
    if shortages.is_empty() {
        Decision::Reserve {
            lines,
            stocks: after,
        }
    } else {
        Decision::Reject { shortages }
    }
}

/// Where one order line's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Held for the order.
    Reserved,
    /// Given back: the order was cancelled.
    Released,
    /// Gone with the shipment.
    Committed,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Released => "RELEASED",
            Self::Committed => "COMMITTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Reserved, Self::Released, Self::Committed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// How inventory answered an order, as stored in `stock_decisions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reserved,
    Rejected,
    /// Cancelled before inventory decided: an `OrderPlaced` coming after it reserves nothing.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RESERVED" => Some(Self::Reserved),
            "REJECTED" => Some(Self::Rejected),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(s: &str) -> Sku {
        s.parse().unwrap()
    }
    fn q(n: u32) -> Quantity {
        Quantity::new(n).unwrap()
    }
    fn l(n: u32) -> StockLevel {
        StockLevel::new(n).unwrap()
    }
    fn stock(on_hand: u32, reserved: u32) -> Stock {
        Stock::new(l(on_hand), l(reserved)).unwrap()
    }

    #[test]
    fn product_names_are_trimmed_and_bounded() {
        assert_eq!(ProductName::parse("  Mug ").unwrap().as_str(), "Mug");
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse(&"x".repeat(201)).is_err());
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(Description::parse("  ").unwrap(), None);
        assert!(Description::parse(&"x".repeat(2001)).is_err());
    }

    #[test]
    fn reserved_never_exceeds_on_hand() {
        assert!(Stock::new(l(1), l(2)).is_err());
        let s = stock(5, 3);
        assert_eq!(s.available(), l(2));
        assert_eq!(s.reserve(q(2)).unwrap().available(), l(0));
        assert_eq!(
            s.reserve(q(3)),
            Err(StockError::Insufficient {
                requested: q(3),
                available: l(2)
            })
        );
    }

    #[test]
    fn release_and_commit_arithmetic() {
        let s = stock(10, 4);
        let released = s.release(q(3)).unwrap();
        assert_eq!((released.on_hand(), released.reserved()), (l(10), l(1)));
        let committed = s.commit(q(4)).unwrap();
        assert_eq!((committed.on_hand(), committed.reserved()), (l(6), l(0)));
        assert!(matches!(
            s.release(q(5)),
            Err(StockError::NotReserved { .. })
        ));
        assert!(matches!(
            s.commit(q(5)),
            Err(StockError::NotReserved { .. })
        ));
    }

    #[test]
    fn restock_refuses_to_overflow() {
        assert_eq!(stock(1, 1).restock(q(2)).unwrap().on_hand(), l(3));
        assert_eq!(
            stock(i32::MAX as u32, 0).restock(q(1)),
            Err(StockError::Overflow)
        );
    }

    #[test]
    fn repeated_skus_are_summed_and_sorted() {
        let wanted = merge_lines([(sku("B"), q(1)), (sku("A"), q(2)), (sku("B"), q(3))]).unwrap();
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            vec![(sku("A"), q(2)), (sku("B"), q(4))]
        );
        assert!(merge_lines([(sku("A"), q(i32::MAX as u32)), (sku("A"), q(1))]).is_err());
    }

    #[test]
    fn an_order_is_reserved_in_full() {
        let wanted = merge_lines([(sku("A"), q(2)), (sku("B"), q(1))]).unwrap();
        let stocks = BTreeMap::from([(sku("A"), stock(2, 0)), (sku("B"), stock(3, 2))]);
        match decide(&wanted, &stocks) {
            Decision::Reserve { lines, stocks } => {
                assert_eq!(lines.len(), 2);
                assert_eq!(stocks[0], (sku("A"), stock(2, 2)));
                assert_eq!(stocks[1], (sku("B"), stock(3, 3)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_short_line_rejects_the_order_naming_every_shortage() {
        let wanted = merge_lines([(sku("A"), q(1)), (sku("B"), q(5)), (sku("C"), q(1))]).unwrap();
        let stocks = BTreeMap::from([(sku("A"), stock(9, 0)), (sku("B"), stock(6, 2))]);
        assert_eq!(
            decide(&wanted, &stocks),
            Decision::Reject {
                shortages: vec![
                    StockShortage {
                        sku: sku("B"),
                        requested: q(5),
                        available: l(4)
                    },
                    StockShortage {
                        sku: sku("C"),
                        requested: q(1),
                        available: l(0)
                    },
                ]
            }
        );
    }

    #[test]
    fn outcomes_round_trip() {
        for o in [Outcome::Reserved, Outcome::Rejected, Outcome::Cancelled] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("x"), None);
        for s in [
            ReservationStatus::Reserved,
            ReservationStatus::Released,
            ReservationStatus::Committed,
        ] {
            assert_eq!(ReservationStatus::parse(s.as_str()), Some(s));
        }
    }
}
