//! The Elasticsearch document of a finished order, built from its terminal event alone
//! (`OrderCompleted` or `OrderCancelled` carry the full `OrderSnapshot`), and its version.
//!
//! The document id is the order id. The version is the event's `occurred_at` in milliseconds and is
//! indexed with `version_type=external`: Elasticsearch keeps a document unless the new version is
//! strictly higher, so a replayed event (same version) or an older one (lower version) is refused
//! with a version conflict, which the sink counts as success. All events of one order come from the
//! orders service's clock, so their `occurred_at` order is the order of the changes.

use chrono::{DateTime, Utc};
use orderflow_schemas::orders::{OrderCancelled, OrderCompleted, OrderSnapshot, OrderStatus};
use orderflow_schemas::{Event, OrdersEvent, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One finished order, as indexed (field types in `elasticsearch/orders-template.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderDocument {
    /// The order (also the document id).
    #[schema(value_type = String, format = Uuid)]
    pub order_id: String,
    /// `COMPLETED` or `CANCELLED`.
    pub status: String,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: String,
    /// ISO 4217 code of every amount of the order.
    pub currency: String,
    /// Sum of the line totals, in minor units of `currency`.
    pub total_minor: i64,
    /// Units over all lines.
    pub units: i64,
    /// Number of lines (one per SKU).
    pub line_count: i64,
    pub lines: Vec<LineDocument>,
    pub created_at: DateTime<Utc>,
    pub placed_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When the order finished: `completed_at` or `cancelled_at`. Every report dates an order by it.
    pub closed_at: DateTime<Utc>,
    /// For a cancelled order: `OUT_OF_STOCK`, `PAYMENT_DECLINED`, `CUSTOMER_REQUEST`,
    /// `CUSTOMER_DEACTIVATED`, `TIMEOUT` or `OTHER`.
    pub cancellation_reason: Option<String>,
    pub cancellation_detail: Option<String>,
    /// For a cancelled order: the status it was cancelled from.
    pub cancelled_from: Option<String>,
    pub payment_id: Option<String>,
    pub shipment_id: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// ISO 3166-1 alpha-2 country of the shipping address (the address itself is not copied).
    pub shipping_country: Option<String>,
    /// The terminal event this document was built from.
    #[schema(value_type = String, format = Uuid)]
    pub event_id: String,
    /// Its full record name, e.g. `orderflow.orders.OrderCompleted`.
    pub event_type: String,
    /// Its `occurred_at`; in milliseconds, the document's external version.
    pub event_occurred_at: DateTime<Utc>,
}

/// One order line, a nested document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineDocument {
    pub sku: String,
    pub quantity: i64,
    /// Price of one unit, in minor units of `currency`.
    pub unit_price_minor: i64,
    /// `quantity` times `unit_price_minor`.
    pub line_total_minor: i64,
    /// The order's currency, repeated so that line aggregations need no reverse_nested.
    pub currency: String,
}

/// Why a terminal event could not become a document (a permanent failure: dead-lettered).
#[derive(Debug, thiserror::Error)]
#[error("order {order_id}: {problem}")]
pub struct DocumentError {
    pub order_id: String,
    pub problem: String,
}

impl OrderDocument {
    /// The document of a terminal event; `None` for every other event of the topic.
    pub fn from_event(event: &OrdersEvent) -> Option<Result<OrderDocument, DocumentError>> {
        match event {
            OrdersEvent::OrderCompleted(e) => Some(Self::completed(e)),
            OrdersEvent::OrderCancelled(e) => Some(Self::cancelled(e)),
            _ => None,
        }
    }

    fn completed(event: &OrderCompleted) -> Result<OrderDocument, DocumentError> {
        let closed = event
            .order
            .timeline
            .completed_at
            .unwrap_or(event.occurred_at);
        Self::build(event, &event.order, OrderStatus::Completed, closed)
    }

    fn cancelled(event: &OrderCancelled) -> Result<OrderDocument, DocumentError> {
        let closed = event
            .order
            .timeline
            .cancelled_at
            .unwrap_or(event.occurred_at);
        let mut document = Self::build(event, &event.order, OrderStatus::Cancelled, closed)?;
        document.cancellation_reason = Some(enum_name(&event.reason));
        document.cancellation_detail = Some(event.detail.clone());
        document.cancelled_from = Some(enum_name(&event.cancelled_from));
        Ok(document)
    }

    fn build<E: Event>(
        event: &E,
        order: &OrderSnapshot,
        status: OrderStatus,
        closed_at: Timestamp,
    ) -> Result<OrderDocument, DocumentError> {
        let currency = order.total.currency().as_str().to_string();
        let problem = |problem: String| DocumentError {
            order_id: order.order_id.to_string(),
            problem,
        };
        let mut lines = Vec::with_capacity(order.lines.len());
        let mut units: i64 = 0;
        for line in &order.lines {
            let quantity = i64::from(line.quantity.get());
            let unit_price_minor = line.unit_price.amount_minor();
            let line_total_minor = unit_price_minor
                .checked_mul(quantity)
                .ok_or_else(|| problem(format!("line {} overflows i64", line.sku)))?;
            if line.unit_price.currency() != order.total.currency() {
                return Err(problem(format!(
                    "line {} is priced in {}, the order in {}",
                    line.sku,
                    line.unit_price.currency(),
                    currency
                )));
            }
            units += quantity;
            lines.push(LineDocument {
                sku: line.sku.as_str().to_string(),
                quantity,
                unit_price_minor,
                line_total_minor,
                currency: currency.clone(),
            });
        }
        let timeline = &order.timeline;
        let at = |t: Option<Timestamp>| t.map(|t| t.as_datetime());
        Ok(OrderDocument {
            order_id: order.order_id.to_string(),
            status: enum_name(&status),
            customer_id: order.customer_id.to_string(),
            currency,
            total_minor: order.total.amount_minor(),
            units,
            line_count: lines.len() as i64,
            lines,
            created_at: timeline.created_at.as_datetime(),
            placed_at: at(timeline.placed_at),
            confirmed_at: at(timeline.confirmed_at),
            shipped_at: at(timeline.shipped_at),
            completed_at: at(timeline.completed_at),
            cancelled_at: at(timeline.cancelled_at),
            closed_at: closed_at.as_datetime(),
            cancellation_reason: None,
            cancellation_detail: None,
            cancelled_from: None,
            payment_id: order.payment_id.map(|id| id.to_string()),
            shipment_id: order.shipment_id.map(|id| id.to_string()),
            carrier: order.carrier.clone(),
            tracking_number: order.tracking_number.clone(),
            shipping_country: order
                .shipping_address
                .as_ref()
                .map(|a| a.country.as_str().to_string()),
            event_id: event.event_id().to_string(),
            event_type: E::NAME.to_string(),
            event_occurred_at: event.occurred_at().as_datetime(),
        })
    }

    /// The external version: `event_occurred_at` in milliseconds (at least 1).
    pub fn version(&self) -> i64 {
        self.event_occurred_at.timestamp_millis().max(1)
    }
}

/// The wire name of a schema enum (`OUT_OF_STOCK`), from its serde form.
fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_schemas::samples;

    #[test]
    fn a_completed_order_becomes_one_document() {
        let event = samples::order_completed();
        let doc = OrderDocument::from_event(&OrdersEvent::OrderCompleted(event.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(doc.order_id, event.order.order_id.to_string());
        assert_eq!(doc.status, "COMPLETED");
        assert_eq!(doc.currency, "EUR");
        assert_eq!(doc.total_minor, 2 * 1_999 + 1_250);
        assert_eq!(doc.units, 3);
        assert_eq!(doc.line_count, 2);
        assert_eq!(doc.lines[0].line_total_minor, 2 * 1_999);
        assert_eq!(Some(doc.closed_at), doc.completed_at);
        assert_eq!(doc.cancellation_reason, None);
        assert_eq!(doc.event_type, "orderflow.orders.OrderCompleted");
        assert_eq!(doc.version(), event.occurred_at.as_millis());
    }

    #[test]
    fn a_cancelled_order_carries_its_reason() {
        let event = samples::order_cancelled();
        let doc = OrderDocument::from_event(&OrdersEvent::OrderCancelled(event.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(doc.status, "CANCELLED");
        assert_eq!(
            doc.cancellation_reason.as_deref(),
            Some(enum_name(&event.reason).as_str())
        );
        assert_eq!(
            doc.cancelled_from.as_deref(),
            Some(enum_name(&event.cancelled_from).as_str())
        );
        assert_eq!(Some(doc.closed_at), doc.cancelled_at);
    }

    #[test]
    fn other_events_make_no_document() {
        let placed = OrdersEvent::OrderPlaced(samples::order_placed());
        assert!(OrderDocument::from_event(&placed).is_none());
    }

    #[test]
    fn the_document_has_exactly_the_template_fields() {
        let doc =
            OrderDocument::from_event(&OrdersEvent::OrderCancelled(samples::order_cancelled()))
                .unwrap()
                .unwrap();
        let value = serde_json::to_value(&doc).unwrap();
        let mut doc_fields: Vec<String> = Vec::new();
        for (k, v) in value.as_object().unwrap() {
            doc_fields.push(k.clone());
            if k == "lines" {
                for lk in v[0].as_object().unwrap().keys() {
                    doc_fields.push(format!("lines.{lk}"));
                }
            }
        }
        doc_fields.sort();
        let mut template: Vec<String> = crate::elastic::field_types()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        template.sort();
        assert_eq!(doc_fields, template);
    }
}
