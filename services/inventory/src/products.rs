//! The product catalogue in the database: create a product, restock it, read one, list and search.
//! Each write is one transaction holding the product rows and exactly one outbox event; the caller
//! owns the transaction (begin, call, commit), so HTTP handlers and tests share one implementation.

use chrono::{DateTime, Utc};
use orderflow_schemas::inventory::{ProductCreated, ProductRestocked};
use orderflow_schemas::{Currency, EventId, Money, Quantity, Sku, StockLevel, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::{FromRow, PgConnection, PgExecutor};

use crate::domain::{Description, ProductName, Stock};
use crate::error::InventoryError;

/// A product as stored, with its stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub unit_price: Money,
    pub stock: Stock,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to add a product to the catalogue.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub sku: Sku,
    pub name: ProductName,
    pub description: Option<Description>,
    pub unit_price: Money,
    pub on_hand: StockLevel,
}

#[derive(FromRow)]
pub(crate) struct ProductRow {
    sku: String,
    name: String,
    description: Option<String>,
    unit_price_minor: i64,
    currency: String,
    on_hand: i32,
    reserved: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub(crate) const PRODUCT_COLUMNS: &str =
    "sku, name, description, unit_price_minor, currency, on_hand, reserved, created_at, updated_at";

fn corrupt(what: impl std::fmt::Display) -> InventoryError {
    InventoryError::Corrupt(what.to_string())
}

pub(crate) fn level(n: i32) -> Result<StockLevel, InventoryError> {
    StockLevel::try_from(n).map_err(corrupt)
}

impl TryFrom<ProductRow> for Product {
    type Error = InventoryError;

    fn try_from(row: ProductRow) -> Result<Self, Self::Error> {
        let currency: Currency = row.currency.trim().parse().map_err(corrupt)?;
        Ok(Product {
            sku: row.sku.parse().map_err(corrupt)?,
            name: row.name,
            description: row.description,
            unit_price: Money::new(row.unit_price_minor, currency).map_err(corrupt)?,
            stock: Stock::new(level(row.on_hand)?, level(row.reserved)?).map_err(corrupt)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Add a product and write `ProductCreated`. An existing sku is `ProductExists` and writes nothing.
pub async fn create_product(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    new: NewProduct,
) -> Result<Product, InventoryError> {
    let occurred_at = Timestamp::now();
    let row: Option<ProductRow> = sqlx::query_as(&format!(
        "INSERT INTO products (sku, name, description, unit_price_minor, currency, on_hand, reserved, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)
         ON CONFLICT (sku) DO NOTHING
         RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(new.sku.as_str())
    .bind(new.name.as_str())
    .bind(new.description.as_ref().map(Description::as_str))
    .bind(new.unit_price.amount_minor())
    .bind(new.unit_price.currency().as_str())
    .bind(i32::from(new.on_hand))
    .bind(occurred_at.as_datetime())
    .fetch_optional(&mut *conn)
    .await?;
    let product =
        Product::try_from(row.ok_or_else(|| InventoryError::ProductExists(new.sku.clone()))?)?;
    let event = ProductCreated {
        event_id: EventId::new_v7(),
        occurred_at,
        sku: product.sku.clone(),
        name: product.name.clone(),
        description: product.description.clone(),
        unit_price: product.unit_price,
        on_hand: product.stock.on_hand(),
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(InventoryError::Outbox)?;
    Ok(product)
}

/// Add `quantity` units to a product's stock on hand and write `ProductRestocked`.
pub async fn restock(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    sku: &Sku,
    quantity: Quantity,
) -> Result<Product, InventoryError> {
    let current = lock_product(&mut *conn, sku)
        .await?
        .ok_or_else(|| InventoryError::ProductNotFound(sku.clone()))?;
    let stock = current
        .stock
        .restock(quantity)
        .map_err(|error| InventoryError::Stock {
            sku: sku.clone(),
            error,
        })?;
    let occurred_at = Timestamp::now();
    let row: ProductRow = sqlx::query_as(&format!(
        "UPDATE products SET on_hand = $2, updated_at = $3 WHERE sku = $1 RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(sku.as_str())
    .bind(i32::from(stock.on_hand()))
    .bind(occurred_at.as_datetime())
    .fetch_one(&mut *conn)
    .await?;
    let product = Product::try_from(row)?;
    let event = ProductRestocked {
        event_id: EventId::new_v7(),
        occurred_at,
        sku: sku.clone(),
        quantity_added: quantity,
        on_hand_after: product.stock.on_hand(),
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(InventoryError::Outbox)?;
    Ok(product)
}

/// One product, locked for the rest of the caller's transaction.
async fn lock_product(
    conn: &mut PgConnection,
    sku: &Sku,
) -> Result<Option<Product>, InventoryError> {
    let row: Option<ProductRow> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = $1 FOR UPDATE"
    ))
    .bind(sku.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(Product::try_from).transpose()
}

/// One product, if it exists.
pub async fn get_product(
    db: impl PgExecutor<'_>,
    sku: &Sku,
) -> Result<Option<Product>, InventoryError> {
    let row: Option<ProductRow> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = $1"
    ))
    .bind(sku.as_str())
    .fetch_optional(db)
    .await?;
    row.map(Product::try_from).transpose()
}

/// Which products to list: an optional search text (a case-insensitive sku prefix or name
/// substring) and a page.
#[derive(Debug, Clone, Default)]
pub struct ProductSearch {
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One page of products, ordered by sku, and how many match in all.
pub async fn list_products(
    db: &sqlx::PgPool,
    search: &ProductSearch,
) -> Result<(Vec<Product>, i64), InventoryError> {
    const MATCHES: &str = "($1::text IS NULL
        OR starts_with(lower(sku), lower($1))
        OR strpos(lower(name), lower($1)) > 0)";
    let rows: Vec<ProductRow> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE {MATCHES} ORDER BY sku LIMIT $2 OFFSET $3"
    ))
    .bind(search.text.as_deref())
    .bind(i64::from(search.limit))
    .bind(i64::from(search.offset))
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM products WHERE {MATCHES}"))
        .bind(search.text.as_deref())
        .fetch_one(db)
        .await?;
    let products = rows
        .into_iter()
        .map(Product::try_from)
        .collect::<Result<_, _>>()?;
    Ok((products, total))
}
