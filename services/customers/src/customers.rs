//! Customers in the database: register, deactivate, get one, list. Each write is one transaction
//! holding the customer row and exactly one outbox event (`CustomerRegistered`, `CustomerDeactivated`,
//! which orders replicates); the caller owns the transaction.

use chrono::{DateTime, Utc};
use orderflow_schemas::customers::{CustomerDeactivated, CustomerRegistered};
use orderflow_schemas::{Address, CustomerId, Email, EventId, Phone, Timestamp};
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};

use crate::domain::{CustomerStatus, DeactivationReason, PersonName};
use crate::error::CustomersError;

/// A customer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub email: Email,
    pub phone: Option<Phone>,
    pub shipping_address: Address,
    pub status: CustomerStatus,
    pub deactivation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// What it takes to register a customer (every part already valid).
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub name: PersonName,
    pub email: Email,
    pub phone: Option<Phone>,
    pub shipping_address: Address,
}

#[derive(FromRow)]
struct CustomerRow {
    id: uuid::Uuid,
    name: String,
    email: String,
    phone: Option<String>,
    ship_recipient: String,
    ship_line1: String,
    ship_line2: Option<String>,
    ship_city: String,
    ship_region: Option<String>,
    ship_postal_code: String,
    ship_country: String,
    status: String,
    deactivation_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deactivated_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, email, phone, ship_recipient, ship_line1, ship_line2, ship_city, \
    ship_region, ship_postal_code, ship_country, status, deactivation_reason, created_at, updated_at, \
    deactivated_at";

fn corrupt(what: impl std::fmt::Display) -> CustomersError {
    CustomersError::Corrupt(what.to_string())
}

impl TryFrom<CustomerRow> for Customer {
    type Error = CustomersError;

    fn try_from(row: CustomerRow) -> Result<Self, Self::Error> {
        Ok(Customer {
            id: CustomerId::from_uuid(row.id),
            name: row.name,
            email: row.email.parse().map_err(corrupt)?,
            phone: row.phone.map(|p| p.parse()).transpose().map_err(corrupt)?,
            shipping_address: Address {
                recipient: row.ship_recipient,
                line1: row.ship_line1,
                line2: row.ship_line2,
                city: row.ship_city,
                region: row.ship_region,
                postal_code: row.ship_postal_code,
                country: row.ship_country.trim().parse().map_err(corrupt)?,
            },
            status: CustomerStatus::parse(&row.status)
                .ok_or_else(|| corrupt(format!("customer status {:?}", row.status)))?,
            deactivation_reason: row.deactivation_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deactivated_at: row.deactivated_at,
        })
    }
}

/// Register a customer and write `CustomerRegistered`. An e-mail already registered (in any letter
/// case) is `EmailTaken` and writes nothing.
pub async fn register(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    new: NewCustomer,
) -> Result<Customer, CustomersError> {
    let occurred_at = Timestamp::now();
    let id = CustomerId::new_v7();
    let address = &new.shipping_address;
    let row: Option<CustomerRow> = sqlx::query_as(&format!(
        "INSERT INTO customers (id, name, email, phone, ship_recipient, ship_line1, ship_line2, ship_city,
             ship_region, ship_postal_code, ship_country, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'ACTIVE', $12, $12)
         ON CONFLICT DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(new.name.as_str())
    .bind(new.email.as_str())
    .bind(new.phone.as_ref().map(Phone::as_str))
    .bind(&address.recipient)
    .bind(&address.line1)
    .bind(&address.line2)
    .bind(&address.city)
    .bind(&address.region)
    .bind(&address.postal_code)
    .bind(address.country.as_str())
    .bind(occurred_at.as_datetime())
    .fetch_optional(&mut *conn)
    .await?;
    let customer = Customer::try_from(row.ok_or_else(|| CustomersError::EmailTaken(new.email))?)?;
    let event = CustomerRegistered {
        event_id: EventId::new_v7(),
        occurred_at,
        customer_id: customer.id,
        name: customer.name.clone(),
        email: customer.email.clone(),
        phone: customer.phone.clone(),
        shipping_address: customer.shipping_address.clone(),
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(CustomersError::Outbox)?;
    Ok(customer)
}

/// Deactivate an active customer and write `CustomerDeactivated`; an unknown customer is `NotFound`,
/// one already deactivated is `AlreadyDeactivated`, and neither writes anything.
pub async fn deactivate(
    conn: &mut PgConnection,
    outbox: &Outbox,
    trace: &TraceContext,
    id: CustomerId,
    reason: Option<DeactivationReason>,
) -> Result<Customer, CustomersError> {
    let current: CustomerRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CustomersError::NotFound(id))?;
    let status = Customer::try_from(current)?
        .status
        .deactivate()
        .map_err(|_| CustomersError::AlreadyDeactivated(id))?;
    let occurred_at = Timestamp::now();
    let row: CustomerRow = sqlx::query_as(&format!(
        "UPDATE customers SET status = $2, deactivation_reason = $3, deactivated_at = $4, updated_at = $4
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(status.as_str())
    .bind(reason.as_ref().map(DeactivationReason::as_str))
    .bind(occurred_at.as_datetime())
    .fetch_one(&mut *conn)
    .await?;
    let customer = Customer::try_from(row)?;
    let event = CustomerDeactivated {
        event_id: EventId::new_v7(),
        occurred_at,
        customer_id: id,
        reason: customer.deactivation_reason.clone(),
    };
    outbox
        .append(conn, &event, trace)
        .await
        .map_err(CustomersError::Outbox)?;
    Ok(customer)
}

/// One customer, if registered.
pub async fn get_customer(
    db: impl PgExecutor<'_>,
    id: CustomerId,
) -> Result<Option<Customer>, CustomersError> {
    let row: Option<CustomerRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM customers WHERE id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(db)
            .await?;
    row.map(Customer::try_from).transpose()
}

/// Which customers to list: optionally one status and a search text (a case-insensitive substring of
/// the name or the e-mail), and a page.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub status: Option<CustomerStatus>,
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One page of customers, oldest registration first, and how many match in all.
pub async fn list_customers(
    db: &PgPool,
    filter: &CustomerFilter,
) -> Result<(Vec<Customer>, i64), CustomersError> {
    const MATCHES: &str = "($1::text IS NULL OR status = $1)
        AND ($2::text IS NULL
             OR strpos(lower(name), lower($2)) > 0
             OR strpos(lower(email), lower($2)) > 0)";
    let status = filter.status.map(CustomerStatus::as_str);
    let rows: Vec<CustomerRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE {MATCHES} ORDER BY created_at, id LIMIT $3 OFFSET $4"
    ))
    .bind(status)
    .bind(filter.text.as_deref())
    .bind(i64::from(filter.limit))
    .bind(i64::from(filter.offset))
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM customers WHERE {MATCHES}"))
        .bind(status)
        .bind(filter.text.as_deref())
        .fetch_one(db)
        .await?;
    let customers = rows
        .into_iter()
        .map(Customer::try_from)
        .collect::<Result<_, _>>()?;
    Ok((customers, total))
}
