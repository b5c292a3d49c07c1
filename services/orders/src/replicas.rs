//! The orders service's local copies of what it needs from other services, because it never calls
//! them: customers (may they order, where do their parcels go) from `customers.events`, and products
//! (name and list price) from `inventory.events`. The upserts are what the stream-worker reactions
//! call, in their own transaction; an event older than what a row already holds changes nothing, so a
//! replayed or late event cannot roll a replica back.

use orderflow_schemas::customers::{CustomerDeactivated, CustomerRegistered};
use orderflow_schemas::inventory::ProductCreated;
use orderflow_schemas::{Address, Currency, CustomerId, Money, Sku, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

/// A customer as orders knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub customer_id: CustomerId,
    /// Deactivated customers may not create or place orders.
    pub active: bool,
    /// Where their orders are shipped.
    pub shipping_address: Address,
}

impl From<&CustomerRegistered> for Customer {
    fn from(event: &CustomerRegistered) -> Self {
        Customer {
            customer_id: event.customer_id,
            active: true,
            shipping_address: event.shipping_address.clone(),
        }
    }
}

/// A product as orders knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    /// List price of one unit; a new line captures it.
    pub unit_price: Money,
}

impl From<&ProductCreated> for Product {
    fn from(event: &ProductCreated) -> Self {
        Product {
            sku: event.sku.clone(),
            name: event.name.clone(),
            unit_price: event.unit_price,
        }
    }
}

/// Insert or replace a customer, as of `as_of` (the occurred_at of the event it comes from).
/// Returns false if the replica already held a newer state (nothing changed).
pub async fn upsert_customer(
    conn: &mut PgConnection,
    customer: &Customer,
    as_of: Timestamp,
) -> sqlx::Result<bool> {
    let a = &customer.shipping_address;
    let done = sqlx::query(
        "INSERT INTO customer_replica (customer_id, active, ship_recipient, ship_line1, ship_line2,
             ship_city, ship_region, ship_postal_code, ship_country, as_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (customer_id) DO UPDATE SET
             active = EXCLUDED.active, ship_recipient = EXCLUDED.ship_recipient,
             ship_line1 = EXCLUDED.ship_line1, ship_line2 = EXCLUDED.ship_line2,
             ship_city = EXCLUDED.ship_city, ship_region = EXCLUDED.ship_region,
             ship_postal_code = EXCLUDED.ship_postal_code, ship_country = EXCLUDED.ship_country,
             as_of = EXCLUDED.as_of
         WHERE customer_replica.as_of <= EXCLUDED.as_of",
    )
    .bind(customer.customer_id.as_uuid())
    .bind(customer.active)
    .bind(&a.recipient)
    .bind(&a.line1)
    .bind(&a.line2)
    .bind(&a.city)
    .bind(&a.region)
    .bind(&a.postal_code)
    .bind(a.country.as_str())
    .bind(as_of.as_datetime())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Apply `CustomerRegistered`.
pub async fn apply_customer_registered(
    conn: &mut PgConnection,
    event: &CustomerRegistered,
) -> sqlx::Result<bool> {
    upsert_customer(conn, &Customer::from(event), event.occurred_at).await
}

/// Mark a customer deactivated, as of `as_of`. Returns false if the customer is unknown or the
/// replica already held a newer state.
pub async fn deactivate_customer(
    conn: &mut PgConnection,
    customer_id: CustomerId,
    as_of: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE customer_replica SET active = false, as_of = $2
         WHERE customer_id = $1 AND as_of <= $2",
    )
    .bind(customer_id.as_uuid())
    .bind(as_of.as_datetime())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Apply `CustomerDeactivated`.
pub async fn apply_customer_deactivated(
    conn: &mut PgConnection,
    event: &CustomerDeactivated,
) -> sqlx::Result<bool> {
    deactivate_customer(conn, event.customer_id, event.occurred_at).await
}

/// Insert or replace a product, as of `as_of`. Returns false if the replica already held a newer state.
pub async fn upsert_product(
    conn: &mut PgConnection,
    product: &Product,
    as_of: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO product_replica (sku, name, unit_price_minor, currency, as_of)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sku) DO UPDATE SET
             name = EXCLUDED.name, unit_price_minor = EXCLUDED.unit_price_minor,
             currency = EXCLUDED.currency, as_of = EXCLUDED.as_of
         WHERE product_replica.as_of <= EXCLUDED.as_of",
    )
    .bind(product.sku.as_str())
    .bind(&product.name)
    .bind(product.unit_price.amount_minor())
    .bind(product.unit_price.currency().as_str())
    .bind(as_of.as_datetime())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Apply `ProductCreated`.
pub async fn apply_product_created(
    conn: &mut PgConnection,
    event: &ProductCreated,
) -> sqlx::Result<bool> {
    upsert_product(conn, &Product::from(event), event.occurred_at).await
}

/// The customer, locked against a concurrent deactivation until the caller's transaction ends.
pub async fn find_customer(
    conn: &mut PgConnection,
    customer_id: CustomerId,
) -> sqlx::Result<Option<Customer>> {
    let row = sqlx::query("SELECT * FROM customer_replica WHERE customer_id = $1 FOR SHARE")
        .bind(customer_id.as_uuid())
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(Customer {
            customer_id,
            active: row.try_get("active")?,
            shipping_address: address_from_row(&row, "ship_")?
                .ok_or_else(|| decode_error("customer_replica without an address"))?,
        })
    })
    .transpose()
}

/// The product.
pub async fn find_product(conn: &mut PgConnection, sku: &Sku) -> sqlx::Result<Option<Product>> {
    let row = sqlx::query("SELECT * FROM product_replica WHERE sku = $1")
        .bind(sku.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(Product {
            sku: sku.clone(),
            name: row.try_get("name")?,
            unit_price: money_from_row(&row, "unit_price_minor", "currency")?,
        })
    })
    .transpose()
}

/// An address stored as `<prefix>recipient`, `<prefix>line1`, ...; `None` when the recipient is NULL.
pub(crate) fn address_from_row(row: &PgRow, prefix: &str) -> sqlx::Result<Option<Address>> {
    let col = |name: &str| format!("{prefix}{name}");
    let recipient: Option<String> = row.try_get(col("recipient").as_str())?;
    let Some(recipient) = recipient else {
        return Ok(None);
    };
    let country: String = row.try_get(col("country").as_str())?;
    Ok(Some(Address {
        recipient,
        line1: row.try_get(col("line1").as_str())?,
        line2: row.try_get(col("line2").as_str())?,
        city: row.try_get(col("city").as_str())?,
        region: row.try_get(col("region").as_str())?,
        postal_code: row.try_get(col("postal_code").as_str())?,
        country: country.parse().map_err(decode_error)?,
    }))
}

/// Money stored as an amount column and a currency column.
pub(crate) fn money_from_row(
    row: &PgRow,
    amount_column: &str,
    currency_column: &str,
) -> sqlx::Result<Money> {
    let amount: i64 = row.try_get(amount_column)?;
    let currency: String = row.try_get(currency_column)?;
    let currency: Currency = currency.parse().map_err(decode_error)?;
    Money::new(amount, currency).map_err(decode_error)
}

/// A stored value the domain refuses: the CHECK constraints should have made this impossible.
pub(crate) fn decode_error(error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(error.to_string().into())
}
