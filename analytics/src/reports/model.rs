//! The reports' response bodies (and their OpenAPI schemas). Money is always an integer of minor
//! units next to its ISO 4217 currency; amounts in different currencies are never added up.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::params::{Interval, Ranking};
use crate::sink::document::OrderDocument;

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Amount {
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Minor units of `currency` (cents for EUR).
    pub amount_minor: i64,
}

/// Completed orders, units and revenue of one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SalesBucket {
    /// The period's first instant (UTC; a Monday for weeks, the 1st for months). The first and
    /// last periods may extend beyond the requested range; only orders within it are counted.
    pub start: DateTime<Utc>,
    /// Orders completed in the period.
    pub orders: u64,
    /// Units of those orders.
    pub units: i64,
    /// Their totals, per currency (ascending by code).
    pub revenue: Vec<Amount>,
}

/// The sums over the whole range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SalesTotals {
    pub orders: u64,
    pub units: i64,
    pub revenue: Vec<Amount>,
}

/// Sales over time: completed orders, dated by completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SalesReport {
    /// Inclusive start of the range.
    pub from: DateTime<Utc>,
    /// Exclusive end of the range.
    pub to: DateTime<Utc>,
    #[schema(inline)]
    pub interval: Interval,
    /// The currency filter, if one was given.
    pub currency: Option<String>,
    /// Every period of the range, empty ones included, in order.
    pub buckets: Vec<SalesBucket>,
    pub totals: SalesTotals,
}

/// Units of a product sold at one unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PricePoint {
    pub currency: String,
    /// Price of one unit, in minor units.
    pub unit_price_minor: i64,
    /// Units sold at that price.
    pub units: i64,
    /// Completed orders with the product at that price.
    pub orders: u64,
    /// `units` times `unit_price_minor`.
    pub revenue_minor: i64,
}

/// One product's sales, by unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductSales {
    pub sku: String,
    /// Units over every price.
    pub units: i64,
    /// Ascending by currency, then price.
    pub prices: Vec<PricePoint>,
}

/// For each product, the units sold (completed orders) at each unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductsReport {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Ascending by SKU.
    pub products: Vec<ProductSales>,
}

/// A number of orders for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Count {
    /// A cancellation reason (`OUT_OF_STOCK`, ...) or a status (`PLACED`, ...).
    pub key: String,
    pub orders: u64,
}

/// Completed against cancelled orders, and why orders were cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OutcomesReport {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Orders that finished in the range.
    pub orders: u64,
    pub completed: u64,
    pub cancelled: u64,
    /// Cancelled orders by reason, most frequent first (then by name).
    pub cancelled_by_reason: Vec<Count>,
    /// Cancelled orders by the status they were cancelled from, most frequent first.
    pub cancelled_from: Vec<Count>,
}

/// One customer in a ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CustomerRank {
    /// 1 for the first.
    pub rank: u32,
    pub customer_id: String,
    /// Completed orders.
    pub orders: u64,
    /// Units of those orders.
    pub units: i64,
    /// Their totals, in the ranking's currency.
    pub revenue_minor: i64,
}

/// The top customers of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CurrencyRanking {
    pub currency: String,
    pub customers: Vec<CustomerRank>,
}

/// Top customers by revenue or by orders, over completed orders, ranked within each currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TopCustomersReport {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    #[schema(inline)]
    pub by: Ranking,
    /// Ascending by currency.
    pub rankings: Vec<CurrencyRanking>,
}

/// One page of an order search, newest first (by `closed_at`, then order id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderPage {
    /// Orders matching, over all pages.
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
    pub orders: Vec<OrderDocument>,
}
