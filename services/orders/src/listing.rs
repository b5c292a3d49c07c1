//! Listing orders: filters (status, customer, creation-time range), newest first, with keyset
//! pagination. A [`Cursor`] names the last order of a page (its creation time and id), so the next
//! page starts right after it however many orders are created meanwhile.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use orderflow_schemas::orders::{OrderStatus, OrderTimeline};
use orderflow_schemas::{CustomerId, Money, OrderId, Timestamp};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use crate::status::status_name;
use crate::store::order_from_row;

/// Which orders to list. `from` is inclusive, `to` exclusive, both on the creation time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<CustomerId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Where a page ends: `<created_at millis>_<order id>`. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Timestamp,
    pub order_id: OrderId,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.created_at.as_millis(), self.order_id)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a cursor returned by this endpoint");
        let (millis, id) = s.split_once('_').ok_or_else(bad)?;
        Ok(Cursor {
            created_at: millis
                .parse::<i64>()
                .ok()
                .and_then(|m| Timestamp::from_millis(m).ok())
                .ok_or_else(bad)?,
            order_id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// One order in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub total: Money,
    pub line_count: i64,
    pub timeline: OrderTimeline,
}

/// Up to `limit` orders matching `filter` after `after`, newest first, and the cursor of the next page
/// if there is one.
pub async fn list_orders(
    conn: &mut PgConnection,
    filter: &ListFilter,
    limit: u32,
    after: Option<Cursor>,
) -> sqlx::Result<(Vec<OrderSummary>, Option<Cursor>)> {
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT o.*, (SELECT count(*) FROM order_lines l WHERE l.order_id = o.order_id) AS line_count
         FROM orders o WHERE true",
    );
    if let Some(status) = filter.status {
        query
            .push(" AND o.status = ")
            .push_bind(status_name(status));
    }
    if let Some(customer_id) = filter.customer_id {
        query
            .push(" AND o.customer_id = ")
            .push_bind(customer_id.as_uuid());
    }
    if let Some(from) = filter.from {
        query.push(" AND o.created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND o.created_at < ").push_bind(to);
    }
    if let Some(cursor) = after {
        query
            .push(" AND (o.created_at, o.order_id) < (")
            .push_bind(cursor.created_at.as_datetime())
            .push(", ")
            .push_bind(cursor.order_id.as_uuid())
            .push(")");
    }
    query
        .push(" ORDER BY o.created_at DESC, o.order_id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = query.build().fetch_all(conn).await?;
    let more = rows.len() > limit as usize;
    let mut summaries = Vec::with_capacity(limit as usize);
    for row in rows.iter().take(limit as usize) {
        let order = order_from_row(row, Vec::new())?;
        summaries.push(OrderSummary {
            order_id: order.order_id,
            customer_id: order.customer_id,
            status: order.status,
            total: order.total,
            line_count: row.try_get("line_count")?,
            timeline: order.timeline,
        });
    }
    let next = if more {
        summaries.last().map(|last| Cursor {
            created_at: last.timeline.created_at,
            order_id: last.order_id,
        })
    } else {
        None
    };
    Ok((summaries, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            created_at: Timestamp::from_millis(1_772_442_000_123).unwrap(),
            order_id: OrderId::from_uuid(Uuid::nil()),
        };
        let text = cursor.to_string();
        assert_eq!(text, "1772442000123_00000000-0000-0000-0000-000000000000");
        assert_eq!(text.parse::<Cursor>(), Ok(cursor));
        for bad in [
            "",
            "abc",
            "12_nope",
            "x_00000000-0000-0000-0000-000000000000",
            "99999999999999999999_00000000-0000-0000-0000-000000000000",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
