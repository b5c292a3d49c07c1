//! The query parameters of every report, parsed strictly with the kit's `ApiQuery` (an unknown or
//! malformed parameter answers 400 naming it) and then checked together ([`Range`]: `to` after
//! `from`; not too many buckets; pages within Elasticsearch's result window).
//!
//! Dates: `YYYY-MM-DD` is a whole UTC day, inclusive at both ends (`from=2026-03-01&to=2026-03-31`
//! is March); an RFC 3339 instant is exact, `from` inclusive and `to` exclusive.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, Utc};
use orderflow_schemas::Currency;
use orderflow_service_kit::ApiError;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A date-range bound: a UTC day or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

impl FromStr for DateBound {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(DateBound::Day(day));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| DateBound::Instant(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"))
    }
}

impl<'de> Deserialize<'de> for DateBound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl DateBound {
    /// As the inclusive start of a range: the day's first instant.
    pub fn as_from(self) -> DateTime<Utc> {
        match self {
            DateBound::Day(d) => d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc(),
            DateBound::Instant(t) => t,
        }
    }

    /// As the exclusive end of a range: the next day's first instant for a day.
    pub fn as_to(self) -> DateTime<Utc> {
        match self {
            DateBound::Day(d) => d
                .checked_add_days(Days::new(1))
                .unwrap_or(d)
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc(),
            DateBound::Instant(t) => t,
        }
    }
}

/// A resolved half-open range `[from, to)` of `closed_at` (or another date field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Range {
    /// Resolve the bounds; `to` must come after `from`.
    pub fn new(from: Option<DateBound>, to: Option<DateBound>) -> Result<Range, ApiError> {
        let range = Range {
            from: from.map(DateBound::as_from),
            to: to.map(DateBound::as_to),
        };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && t <= f
        {
            return Err(ApiError::invalid_field(
                "to",
                format!("the range is empty: `to` ({t}) must come after `from` ({f})"),
            ));
        }
        Ok(range)
    }
}

/// Bucket width of the sales report. Weeks start on Monday, months on the 1st, all in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    #[default]
    Day,
    Week,
    Month,
}

impl Interval {
    /// The `calendar_interval` of a date_histogram.
    pub fn calendar_interval(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// At least how many buckets a range of `days` days has.
    fn buckets_for_days(self, days: i64) -> i64 {
        match self {
            Interval::Day => days,
            Interval::Week => days / 7,
            Interval::Month => days / 31,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        })
    }
}

/// At most this many buckets in one sales report.
pub const MAX_BUCKETS: i64 = 3700;

/// `GET /reports/sales`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SalesQuery {
    /// First day (`YYYY-MM-DD`, inclusive) or instant (RFC 3339, inclusive).
    #[param(value_type = String, example = "2026-03-01")]
    pub from: DateBound,
    /// Last day (`YYYY-MM-DD`, inclusive) or instant (RFC 3339, exclusive).
    #[param(value_type = String, example = "2026-03-31")]
    pub to: DateBound,
    /// `day` (default), `week` (from Monday) or `month`, in UTC.
    #[param(inline)]
    #[serde(default)]
    pub interval: Interval,
    /// Only orders in this currency (ISO 4217).
    #[param(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

impl SalesQuery {
    /// The range, refusing one with more than [`MAX_BUCKETS`] buckets.
    pub fn range(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let range = Range::new(Some(self.from), Some(self.to))?;
        let (from, to) = (range.from.expect("set"), range.to.expect("set"));
        let days = (to - from).num_days();
        if self.interval.buckets_for_days(days) > MAX_BUCKETS {
            return Err(ApiError::invalid_field(
                "interval",
                format!(
                    "{days} days in {}s is more than {MAX_BUCKETS} buckets: use a coarser interval or a shorter range",
                    self.interval
                ),
            ));
        }
        Ok((from, to))
    }
}

/// `GET /reports/products`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductsQuery {
    /// Orders completed from this day or instant.
    #[param(value_type = Option<String>, example = "2026-03-01")]
    pub from: Option<DateBound>,
    /// Orders completed until this day (inclusive) or instant (exclusive).
    #[param(value_type = Option<String>, example = "2026-03-31")]
    pub to: Option<DateBound>,
    /// Only this product.
    #[param(example = "MUG-CLASSIC")]
    pub sku: Option<String>,
    /// Only orders in this currency (ISO 4217).
    #[param(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

/// `GET /reports/outcomes`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutcomesQuery {
    /// Orders finished from this day or instant.
    #[param(value_type = Option<String>, example = "2026-03-01")]
    pub from: Option<DateBound>,
    /// Orders finished until this day (inclusive) or instant (exclusive).
    #[param(value_type = Option<String>, example = "2026-03-31")]
    pub to: Option<DateBound>,
    /// Only orders in this currency (ISO 4217).
    #[param(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

/// What ranks the top customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ranking {
    /// Revenue (completed orders' totals), then number of orders.
    #[default]
    Revenue,
    /// Number of completed orders, then revenue.
    Orders,
}

/// `GET /reports/top-customers`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopCustomersQuery {
    /// Orders completed from this day or instant.
    #[param(value_type = Option<String>, example = "2026-03-01")]
    pub from: Option<DateBound>,
    /// Orders completed until this day (inclusive) or instant (exclusive).
    #[param(value_type = Option<String>, example = "2026-03-31")]
    pub to: Option<DateBound>,
    /// How many customers per currency, 1 to 100 (default 10).
    pub limit: Option<u32>,
    /// `revenue` (default) or `orders`.
    #[param(inline)]
    #[serde(default)]
    pub by: Ranking,
    /// Only orders in this currency (ISO 4217).
    #[param(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

impl TopCustomersQuery {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(10),
            Some(n @ 1..=100) => Ok(n),
            Some(n) => Err(ApiError::invalid_field(
                "limit",
                format!("{n} is out of range: 1 to 100"),
            )),
        }
    }
}

/// The final status of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum FinalStatus {
    #[serde(rename = "COMPLETED", alias = "completed")]
    Completed,
    #[serde(rename = "CANCELLED", alias = "cancelled")]
    Cancelled,
}

impl FinalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Completed => "COMPLETED",
            FinalStatus::Cancelled => "CANCELLED",
        }
    }
}

/// Which date `from` and `to` of an order search apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DateField {
    /// When the order finished (completed or cancelled).
    #[default]
    Closed,
    /// When the order was created.
    Created,
    /// When the order was placed.
    Placed,
}

impl DateField {
    pub fn field(self) -> &'static str {
        match self {
            DateField::Closed => "closed_at",
            DateField::Created => "created_at",
            DateField::Placed => "placed_at",
        }
    }
}

/// Largest page of an order search.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Elasticsearch's default `index.max_result_window`: pages must end within it.
pub const MAX_RESULT_WINDOW: u64 = 10_000;

/// `GET /reports/orders`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderSearchQuery {
    /// `COMPLETED` or `CANCELLED`.
    #[param(inline)]
    pub status: Option<FinalStatus>,
    /// Only this customer's orders.
    pub customer_id: Option<uuid::Uuid>,
    /// From this day or instant (of `date`).
    #[param(value_type = Option<String>, example = "2026-03-01")]
    pub from: Option<DateBound>,
    /// Until this day (inclusive) or instant (exclusive).
    #[param(value_type = Option<String>, example = "2026-03-31")]
    pub to: Option<DateBound>,
    /// The date `from` and `to` apply to: `closed` (default), `created` or `placed`.
    #[param(inline)]
    #[serde(default)]
    pub date: DateField,
    /// Page number from 1 (default 1).
    pub page: Option<u32>,
    /// Orders per page, 1 to 100 (default 20).
    pub page_size: Option<u32>,
}

impl OrderSearchQuery {
    /// (page, page size), both checked.
    pub fn page(&self) -> Result<(u32, u32), ApiError> {
        let size = match self.page_size {
            None => 20,
            Some(n @ 1..=MAX_PAGE_SIZE) => n,
            Some(n) => {
                return Err(ApiError::invalid_field(
                    "page_size",
                    format!("{n} is out of range: 1 to {MAX_PAGE_SIZE}"),
                ));
            }
        };
        let page = match self.page {
            None => 1,
            Some(0) => {
                return Err(ApiError::invalid_field("page", "pages are numbered from 1"));
            }
            Some(n) => n,
        };
        if u64::from(page) * u64::from(size) > MAX_RESULT_WINDOW {
            return Err(ApiError::invalid_field(
                "page",
                format!(
                    "page {page} of {size} ends beyond the first {MAX_RESULT_WINDOW} results: narrow the search"
                ),
            ));
        }
        Ok((page, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_service_kit::http::parse_query;

    #[test]
    fn days_are_inclusive_and_instants_exact() {
        let q: SalesQuery = parse_query("from=2026-03-01&to=2026-03-31").unwrap();
        let (from, to) = q.range().unwrap();
        assert_eq!(from.to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-04-01T00:00:00+00:00");
        let q: SalesQuery =
            parse_query("from=2026-03-01T10:00:00Z&to=2026-03-01T12:00:00%2B01:00").unwrap();
        let (from, to) = q.range().unwrap();
        assert_eq!((to - from).num_hours(), 1);
    }

    #[test]
    fn a_bad_parameter_is_named() {
        let field = |q: &str| {
            parse_query::<SalesQuery>(q)
                .and_then(|q| q.range().map(|_| ()))
                .unwrap_err()
                .field
                .unwrap()
        };
        assert_eq!(field("from=2026-13-01&to=2026-03-31"), "from");
        assert_eq!(field("to=2026-03-31"), "from");
        assert_eq!(
            field("from=2026-03-01&to=2026-03-31&interval=hour"),
            "interval"
        );
        assert_eq!(
            field("from=2026-03-01&to=2026-03-31&currency=euro"),
            "currency"
        );
        assert_eq!(field("from=2026-03-02&to=2026-03-01"), "to");
        assert_eq!(field("from=2000-01-01&to=2026-03-01"), "interval");
        assert_eq!(field("from=2026-03-01&to=2026-03-31&bogus=1"), "bogus");
        let search = |q: &str| {
            parse_query::<OrderSearchQuery>(q)
                .and_then(|q| q.page().map(|_| ()))
                .unwrap_err()
                .field
                .unwrap()
        };
        assert_eq!(search("status=SHIPPED"), "status");
        assert_eq!(search("customer_id=42"), "customer_id");
        assert_eq!(search("page=0"), "page");
        assert_eq!(search("page_size=101"), "page_size");
        assert_eq!(search("page=200&page_size=100"), "page");
        let top = parse_query::<TopCustomersQuery>("limit=0").unwrap();
        assert_eq!(top.limit().unwrap_err().field.as_deref(), Some("limit"));
        assert_eq!(
            parse_query::<TopCustomersQuery>("by=units")
                .unwrap_err()
                .field
                .as_deref(),
            Some("by")
        );
    }

    #[test]
    fn statuses_parse_in_either_case() {
        let q: OrderSearchQuery = parse_query("status=cancelled&page=2").unwrap();
        assert_eq!(q.status, Some(FinalStatus::Cancelled));
        assert_eq!(q.page().unwrap(), (2, 20));
    }
}
