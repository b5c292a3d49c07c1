//! The mock payment gateway: a pure, deterministic function from a charge (order, customer, amount)
//! and the gateway's configuration to "approved, with this reference" or "declined, for this reason".
//! There is no network and no clock in it, so the same order gets the same answer on every rerun.
//!
//! The rules, checked in this order (the first that matches decides):
//!
//! 1. **Test amounts** (`ORDERFLOW_PAYMENTS_TEST_AMOUNTS`, default `true`): an amount whose minor
//!    units end in `13` (`12.13 EUR`, `1013 JPY`) is declined with `CARD_DECLINED`. Demos and tests
//!    use it to force a decline without touching the configuration.
//! 2. **Limit** (`ORDERFLOW_PAYMENTS_DECLINE_ABOVE_MINOR`, unset = no limit): an amount above this
//!    many minor units, in any currency, is declined with `AMOUNT_LIMIT_EXCEEDED`.
//! 3. **Decline rate** (`ORDERFLOW_PAYMENTS_DECLINE_RATE`, `0.0..=1.0`, default `0.0`): this fraction
//!    of orders is declined with `INSUFFICIENT_FUNDS`. Which orders is decided by hashing the seed
//!    (`ORDERFLOW_PAYMENTS_SEED`, default `0`) with the order id, not by a random source, so a rerun
//!    with the same seed declines the same orders.
//!
//! Otherwise the charge is approved. References are derived from the seed and the order id too.

use orderflow_platform::ConfigError;
use orderflow_platform::config::setting;
use orderflow_schemas::payments::DeclineReason;
use orderflow_schemas::{CustomerId, Money, OrderId, PaymentId};

/// Configuration key: decline amounts above this many minor units.
pub const DECLINE_ABOVE_MINOR_KEY: &str = "ORDERFLOW_PAYMENTS_DECLINE_ABOVE_MINOR";
/// Configuration key: the fraction of orders declined at random, `0.0..=1.0`.
pub const DECLINE_RATE_KEY: &str = "ORDERFLOW_PAYMENTS_DECLINE_RATE";
/// Configuration key: the seed of the random declines and of the references.
pub const SEED_KEY: &str = "ORDERFLOW_PAYMENTS_SEED";
/// Configuration key: whether amounts ending in 13 minor units are declined (`true`/`false`).
pub const TEST_AMOUNTS_KEY: &str = "ORDERFLOW_PAYMENTS_TEST_AMOUNTS";

/// Amounts whose minor units modulo 100 equal this are declined while test amounts are on.
pub const TEST_DECLINE_ENDING: i64 = 13;

/// A fraction of orders, `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct DeclineRate(f64);

impl DeclineRate {
    /// No order is declined at random.
    pub const NEVER: DeclineRate = DeclineRate(0.0);
    /// Every order is declined (unless an earlier rule already decided).
    pub const ALWAYS: DeclineRate = DeclineRate(1.0);

    /// `fraction`, if it is a finite number in `0.0..=1.0`.
    pub fn new(fraction: f64) -> Result<Self, String> {
        if fraction.is_finite() && (0.0..=1.0).contains(&fraction) {
            Ok(DeclineRate(fraction))
        } else {
            Err(format!(
                "a decline rate is a fraction between 0.0 and 1.0, not {fraction}"
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl std::str::FromStr for DeclineRate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fraction: f64 = s
            .trim()
            .parse()
            .map_err(|e| format!("expected a number between 0.0 and 1.0: {e}"))?;
        DeclineRate::new(fraction)
    }
}

/// The mock gateway's rules (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Amounts above this many minor units are declined; `None`: no limit.
    pub decline_above_minor: Option<i64>,
    /// The fraction of orders declined at random.
    pub decline_rate: DeclineRate,
    /// Makes the random declines and the references reproducible.
    pub seed: u64,
    /// Whether amounts ending in 13 minor units are declined.
    pub test_amounts: bool,
}

impl Default for GatewayConfig {
    /// Approve everything except test amounts.
    fn default() -> Self {
        Self {
            decline_above_minor: None,
            decline_rate: DeclineRate::NEVER,
            seed: 0,
            test_amounts: true,
        }
    }
}

impl GatewayConfig {
    /// Read the rules from the environment (after `stack.env`); an unset key takes its default.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| match setting::<String>(key) {
            Ok(value) => Ok(Some(value)),
            Err(ConfigError::Missing { .. }) => Ok(None),
            Err(other) => Err(other),
        })
    }

    /// Read the rules through any lookup (`Ok(None)`: not set); errors name the key and the problem.
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        fn parse<T>(
            key: &'static str,
            value: Option<String>,
            read: impl FnOnce(&str) -> Result<T, String>,
        ) -> Result<Option<T>, ConfigError> {
            match value {
                None => Ok(None),
                Some(raw) if raw.trim().is_empty() => Ok(None),
                Some(raw) => read(raw.trim())
                    .map(Some)
                    .map_err(|problem| ConfigError::Invalid {
                        key,
                        value: raw,
                        problem,
                    }),
            }
        }
        let defaults = Self::default();
        let decline_above_minor = parse(
            DECLINE_ABOVE_MINOR_KEY,
            lookup(DECLINE_ABOVE_MINOR_KEY)?,
            |s| match s.parse::<i64>() {
                Ok(limit) if limit >= 0 => Ok(limit),
                Ok(_) => Err("a limit is a non-negative number of minor units".into()),
                Err(e) => Err(format!("expected a whole number of minor units: {e}")),
            },
        )?;
        let decline_rate = parse(DECLINE_RATE_KEY, lookup(DECLINE_RATE_KEY)?, str::parse)?
            .unwrap_or(defaults.decline_rate);
        let seed = parse(SEED_KEY, lookup(SEED_KEY)?, |s| {
            s.parse::<u64>()
                .map_err(|e| format!("expected a non-negative whole number: {e}"))
        })?
        .unwrap_or(defaults.seed);
        let test_amounts = parse(TEST_AMOUNTS_KEY, lookup(TEST_AMOUNTS_KEY)?, |s| {
            s.parse::<bool>()
                .map_err(|_| "expected true or false".to_string())
        })?
        .unwrap_or(defaults.test_amounts);
        Ok(Self {
            decline_above_minor,
            decline_rate,
            seed,
            test_amounts,
        })
    }

    /// What the gateway answers to charging `amount` for `order_id` on behalf of `customer_id`.
    pub fn decide(&self, order_id: OrderId, customer_id: CustomerId, amount: Money) -> Decision {
        let _ = customer_id; // the mock's rules do not depend on who pays
        let minor = amount.amount_minor();
        if self.test_amounts && minor % 100 == TEST_DECLINE_ENDING {
            return Decision::Declined {
                reason: DeclineReason::CardDeclined,
                detail: format!(
                    "test amount: {amount} ends in {TEST_DECLINE_ENDING} minor units ({TEST_AMOUNTS_KEY})"
                ),
            };
        }
        if let Some(limit) = self.decline_above_minor
            && minor > limit
        {
            return Decision::Declined {
                reason: DeclineReason::AmountLimitExceeded,
                detail: format!(
                    "{amount} is above the limit of {limit} minor units ({DECLINE_ABOVE_MINOR_KEY})"
                ),
            };
        }
        if self.roll(order_id) < self.decline_rate.get() {
            return Decision::Declined {
                reason: DeclineReason::InsufficientFunds,
                detail: format!(
                    "declined at random: {DECLINE_RATE_KEY}={}, {SEED_KEY}={}",
                    self.decline_rate.get(),
                    self.seed
                ),
            };
        }
        Decision::Approved {
            gateway_reference: format!("mockpay_ch_{:016x}", self.hash(order_id, 1)),
        }
    }

    /// The gateway's reference for refunding `payment_id` (the mock always refunds).
    pub fn refund_reference(payment_id: PaymentId) -> String {
        format!("mockpay_rf_{}", payment_id.as_uuid().simple())
    }

    /// A number in `0.0..1.0` that depends only on the seed and the order.
    fn roll(&self, order_id: OrderId) -> f64 {
        // the top 53 bits, as many as an f64 holds exactly
        (self.hash(order_id, 0) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// SplitMix64 over the seed, the order id and a purpose: stable across platforms and Rust
    /// versions (unlike `std`'s hashers), which reruns rely on.
    fn hash(&self, order_id: OrderId, purpose: u64) -> u64 {
        let (high, low) = order_id.as_uuid().as_u64_pair();
        [high, low, purpose]
            .into_iter()
            .fold(splitmix64(self.seed), |state, word| {
                splitmix64(state ^ word)
            })
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The gateway's answer to one charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved {
        gateway_reference: String,
    },
    Declined {
        reason: DeclineReason,
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use orderflow_schemas::Currency;
    use uuid::Uuid;

    use super::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR).unwrap()
    }

    fn order(n: u128) -> OrderId {
        OrderId::from_uuid(Uuid::from_u128(n))
    }

    fn customer() -> CustomerId {
        CustomerId::from_uuid(Uuid::from_u128(7))
    }

    fn load(vars: &[(&'static str, &str)]) -> Result<GatewayConfig, ConfigError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        GatewayConfig::from_lookup(|key| Ok(vars.get(key).cloned()))
    }

    fn reason(decision: &Decision) -> Option<DeclineReason> {
        match decision {
            Decision::Declined { reason, .. } => Some(*reason),
            Decision::Approved { .. } => None,
        }
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        assert_eq!(load(&[]).unwrap(), GatewayConfig::default());
        assert_eq!(
            load(&[(DECLINE_RATE_KEY, "  ")]).unwrap(),
            GatewayConfig::default()
        );
    }

    #[test]
    fn every_key_is_read() {
        let config = load(&[
            (DECLINE_ABOVE_MINOR_KEY, "50000"),
            (DECLINE_RATE_KEY, "0.25"),
            (SEED_KEY, "42"),
            (TEST_AMOUNTS_KEY, "false"),
        ])
        .unwrap();
        assert_eq!(
            config,
            GatewayConfig {
                decline_above_minor: Some(50_000),
                decline_rate: DeclineRate::new(0.25).unwrap(),
                seed: 42,
                test_amounts: false,
            }
        );
    }

    #[test]
    fn a_bad_value_names_its_key_and_the_problem() {
        for (key, value) in [
            (DECLINE_RATE_KEY, "1.5"),
            (DECLINE_RATE_KEY, "-0.1"),
            (DECLINE_RATE_KEY, "NaN"),
            (DECLINE_RATE_KEY, "often"),
            (DECLINE_ABOVE_MINOR_KEY, "-1"),
            (DECLINE_ABOVE_MINOR_KEY, "12.50"),
            (SEED_KEY, "-3"),
            (SEED_KEY, "abc"),
            (TEST_AMOUNTS_KEY, "yes please"),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{text}"
            );
            assert!(text.contains(key) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn the_rate_accepts_its_bounds() {
        assert_eq!(
            load(&[(DECLINE_RATE_KEY, "0")]).unwrap().decline_rate,
            DeclineRate::NEVER
        );
        assert_eq!(
            load(&[(DECLINE_RATE_KEY, "1.0")]).unwrap().decline_rate,
            DeclineRate::ALWAYS
        );
    }

    #[test]
    fn an_ordinary_charge_is_approved_with_a_stable_reference() {
        let gateway = GatewayConfig::default();
        let first = gateway.decide(order(1), customer(), eur(5_248));
        assert!(
            matches!(&first, Decision::Approved { gateway_reference } if gateway_reference.starts_with("mockpay_ch_"))
        );
        assert_eq!(gateway.decide(order(1), customer(), eur(5_248)), first);
        assert_ne!(gateway.decide(order(2), customer(), eur(5_248)), first);
    }

    #[test]
    fn amounts_ending_in_13_are_declined_while_test_amounts_are_on() {
        let gateway = GatewayConfig::default();
        for minor in [13, 113, 1_213, 99_913] {
            let decision = gateway.decide(order(1), customer(), eur(minor));
            assert_eq!(
                reason(&decision),
                Some(DeclineReason::CardDeclined),
                "{minor}"
            );
        }
        for minor in [0, 3, 31, 1_300, 1_312, 1_314] {
            assert_eq!(
                reason(&gateway.decide(order(1), customer(), eur(minor))),
                None,
                "{minor}"
            );
        }
        let off = GatewayConfig {
            test_amounts: false,
            ..GatewayConfig::default()
        };
        assert_eq!(reason(&off.decide(order(1), customer(), eur(1_213))), None);
    }

    #[test]
    fn amounts_above_the_limit_are_declined() {
        let gateway = GatewayConfig {
            decline_above_minor: Some(10_000),
            ..GatewayConfig::default()
        };
        assert_eq!(
            reason(&gateway.decide(order(1), customer(), eur(10_000))),
            None
        );
        let above = gateway.decide(order(1), customer(), eur(10_001));
        assert_eq!(reason(&above), Some(DeclineReason::AmountLimitExceeded));
        assert!(matches!(above, Decision::Declined { detail, .. } if detail.contains("10000")));
        // a test amount is declined as such even above the limit: the first matching rule decides
        assert_eq!(
            reason(&gateway.decide(order(1), customer(), eur(20_013))),
            Some(DeclineReason::CardDeclined)
        );
    }

    #[test]
    fn the_rate_declines_that_fraction_of_orders_reproducibly() {
        let gateway = |rate: f64, seed: u64| GatewayConfig {
            decline_rate: DeclineRate::new(rate).unwrap(),
            seed,
            ..GatewayConfig::default()
        };
        let declined = |g: &GatewayConfig| -> Vec<u128> {
            (0..2_000u128)
                .filter(|n| reason(&g.decide(order(*n), customer(), eur(1_000))).is_some())
                .collect()
        };
        assert!(declined(&gateway(0.0, 1)).is_empty());
        assert_eq!(declined(&gateway(1.0, 1)).len(), 2_000);
        let quarter = declined(&gateway(0.25, 1));
        assert!((400..600).contains(&quarter.len()), "{}", quarter.len());
        // the same seed declines the same orders; another seed, others
        assert_eq!(declined(&gateway(0.25, 1)), quarter);
        assert_ne!(declined(&gateway(0.25, 2)), quarter);
        assert_eq!(
            reason(&gateway(1.0, 1).decide(order(1), customer(), eur(1_000))),
            Some(DeclineReason::InsufficientFunds)
        );
    }

    #[test]
    fn refund_references_name_the_payment() {
        let payment = PaymentId::from_uuid(Uuid::from_u128(0xabc));
        assert_eq!(
            GatewayConfig::refund_reference(payment),
            "mockpay_rf_00000000000000000000000000000abc"
        );
    }
}
