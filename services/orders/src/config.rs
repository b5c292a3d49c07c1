//! The orders service's own settings, read from the environment (after `stack.env`) with errors that
//! name the key: `ORDERFLOW_ORDERS_MAX_LINES` (lines per order, default 50) and
//! `ORDERFLOW_ORDERS_CURRENCY` (the currency of a new order when the request names none, default EUR).

use orderflow_platform::config::{ConfigError, setting_or};
use orderflow_schemas::Currency;

pub const MAX_LINES_KEY: &str = "ORDERFLOW_ORDERS_MAX_LINES";
pub const CURRENCY_KEY: &str = "ORDERFLOW_ORDERS_CURRENCY";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersConfig {
    /// The most lines one order may have (at least 1).
    pub max_lines: usize,
    /// The currency of a new order whose request names none.
    pub default_currency: Currency,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            max_lines: 50,
            default_currency: Currency::EUR,
        }
    }
}

impl OrdersConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let max_lines: usize = setting_or(MAX_LINES_KEY, defaults.max_lines)?;
        if max_lines == 0 {
            return Err(ConfigError::Invalid {
                key: MAX_LINES_KEY,
                value: "0".into(),
                problem: "an order must be allowed at least one line".into(),
            });
        }
        Ok(Self {
            max_lines,
            default_currency: setting_or(CURRENCY_KEY, defaults.default_currency)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_for_keys_that_are_not_set() {
        let config = OrdersConfig::from_env().unwrap();
        // from_env has loaded stack.env by now; a key set nowhere takes its default.
        if std::env::var_os(MAX_LINES_KEY).is_none() {
            assert_eq!(config.max_lines, 50);
        }
        if std::env::var_os(CURRENCY_KEY).is_none() {
            assert_eq!(config.default_currency, Currency::EUR);
        }
    }
}
