//! The HTTP request and response bodies, with their OpenAPI schemas. Requests are parsed straight into
//! domain types (a bad SKU, quantity or id fails while parsing, naming the field); responses are plain
//! JSON built from the domain [`Order`].

use chrono::{DateTime, Utc};
use orderflow_schemas::orders::OrderStatus;
use orderflow_schemas::{Address, Currency, CustomerId, Money, Sku, Timestamp};
use orderflow_service_kit::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::listing::OrderSummary;
use crate::order::{CancelDetail, LineQuantity, Order};
use crate::status::{reason_name, status_name};

/// `POST /orders`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// A registered, active customer.
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    /// ISO 4217 code every line must be priced in; defaults to the service's configured currency
    /// (`ORDERFLOW_ORDERS_CURRENCY`, EUR unless set).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

/// `POST /orders/{order_id}/lines`. Adding a SKU the order already has increases that line's quantity
/// (at the unit price captured when the line was first added); a line holds at most 1000 units.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLineRequest {
    /// A product known to the orders service, priced in the order's currency.
    #[schema(value_type = String, example = "TSHIRT-RED-M")]
    pub sku: Sku,
    /// Units to add: 1 to 1000.
    #[schema(value_type = i32, minimum = 1, maximum = 1000)]
    pub quantity: LineQuantity,
}

/// `POST /orders/{order_id}/cancel` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, in the customer's words (at most 500 characters).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reason_detail: Option<CancelDetail>,
}

/// `GET /orders` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status: DRAFT, PLACED, CONFIRMED, SHIPPED, COMPLETED, CANCELLED.
    #[param(value_type = Option<String>, example = "PLACED", pattern = "^(DRAFT|PLACED|CONFIRMED|SHIPPED|COMPLETED|CANCELLED)$")]
    pub status: Option<OrderStatus>,
    /// Only this customer's orders.
    #[param(value_type = Option<String>, format = Uuid)]
    pub customer_id: Option<CustomerId>,
    /// Only orders created at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime, min_length = 1)]
    pub from: Option<DateTime<Utc>>,
    /// Only orders created before this instant (RFC 3339); not before `from`.
    #[param(value_type = Option<String>, format = DateTime, min_length = 1)]
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// An amount in minor units of a currency (1999 EUR is 19.99 EUR).
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyBody {
    pub amount_minor: i64,
    pub currency: String,
}

impl From<Money> for MoneyBody {
    fn from(m: Money) -> Self {
        MoneyBody {
            amount_minor: m.amount_minor(),
            currency: m.currency().to_string(),
        }
    }
}

/// A postal address.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressBody {
    pub recipient: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl From<&Address> for AddressBody {
    fn from(a: &Address) -> Self {
        AddressBody {
            recipient: a.recipient.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.to_string(),
        }
    }
}

/// One line of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineBody {
    pub sku: String,
    pub product_name: String,
    pub quantity: u32,
    /// Captured from the catalogue when the line was first added.
    pub unit_price: MoneyBody,
    /// quantity × unit_price
    pub line_total: MoneyBody,
}

/// When the order entered each state; null for states it never reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineBody {
    pub created_at: DateTime<Utc>,
    pub placed_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<&orderflow_schemas::orders::OrderTimeline> for TimelineBody {
    fn from(t: &orderflow_schemas::orders::OrderTimeline) -> Self {
        let at = |t: Option<Timestamp>| t.map(|t| t.as_datetime());
        TimelineBody {
            created_at: t.created_at.as_datetime(),
            placed_at: at(t.placed_at),
            confirmed_at: at(t.confirmed_at),
            shipped_at: at(t.shipped_at),
            completed_at: at(t.completed_at),
            cancelled_at: at(t.cancelled_at),
        }
    }
}

/// Why and from where a cancelled order was cancelled.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationBody {
    /// OUT_OF_STOCK, PAYMENT_DECLINED, CUSTOMER_REQUEST, CUSTOMER_DEACTIVATED, TIMEOUT or OTHER.
    pub reason: String,
    /// Free text; may be empty.
    pub detail: String,
    /// DRAFT, PLACED or CONFIRMED.
    pub cancelled_from: String,
}

/// A customer's request to cancel a CONFIRMED order, and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationRequestBody {
    pub requested_at: DateTime<Utc>,
    /// Free text; may be empty.
    pub detail: String,
    /// PENDING (shipping has not answered yet), CANCELLED (the shipment was cancelled, and the
    /// order with it) or TOO_LATE (the shipment had been dispatched: the order ships).
    #[schema(example = "PENDING")]
    pub outcome: String,
}

/// An order, whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// DRAFT, PLACED, CONFIRMED, SHIPPED, COMPLETED or CANCELLED.
    #[schema(example = "DRAFT")]
    pub status: String,
    /// Every line and the total are in this currency.
    pub currency: String,
    pub lines: Vec<LineBody>,
    pub total: MoneyBody,
    /// Set when the order is placed.
    pub shipping_address: Option<AddressBody>,
    pub payment_id: Option<Uuid>,
    pub shipment_id: Option<Uuid>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub timeline: TimelineBody,
    /// Set when the order is cancelled.
    pub cancellation: Option<CancellationBody>,
    /// Set when the customer asked to cancel while the order was CONFIRMED.
    pub cancellation_request: Option<CancellationRequestBody>,
}

impl TryFrom<&Order> for OrderBody {
    type Error = ApiError;

    fn try_from(order: &Order) -> Result<Self, ApiError> {
        let lines = order
            .lines
            .iter()
            .map(|line| {
                let line_total = line.total().ok_or_else(|| {
                    ApiError::internal(format!(
                        "order {} line {} total overflows",
                        order.order_id, line.sku
                    ))
                })?;
                Ok(LineBody {
                    sku: line.sku.to_string(),
                    product_name: line.product_name.clone(),
                    quantity: line.quantity.get(),
                    unit_price: line.unit_price.into(),
                    line_total: line_total.into(),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(OrderBody {
            order_id: order.order_id.as_uuid(),
            customer_id: order.customer_id.as_uuid(),
            status: status_name(order.status).to_owned(),
            currency: order.currency.to_string(),
            lines,
            total: order.total.into(),
            shipping_address: order.shipping_address.as_ref().map(AddressBody::from),
            payment_id: order.payment_id.map(|id| id.as_uuid()),
            shipment_id: order.shipment_id.map(|id| id.as_uuid()),
            carrier: order.carrier.clone(),
            tracking_number: order.tracking_number.clone(),
            timeline: (&order.timeline).into(),
            cancellation: order.cancellation.as_ref().map(|c| CancellationBody {
                reason: reason_name(c.reason).to_owned(),
                detail: c.detail.clone(),
                cancelled_from: status_name(c.cancelled_from).to_owned(),
            }),
            cancellation_request: order.cancellation_request.as_ref().map(|r| {
                CancellationRequestBody {
                    requested_at: r.requested_at.as_datetime(),
                    detail: r.detail.clone(),
                    outcome: match order.status {
                        OrderStatus::Cancelled => "CANCELLED",
                        OrderStatus::Shipped | OrderStatus::Completed => "TOO_LATE",
                        _ => "PENDING",
                    }
                    .to_owned(),
                }
            }),
        })
    }
}

/// An order in a list (without its lines).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummaryBody {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    #[schema(example = "PLACED")]
    pub status: String,
    pub total: MoneyBody,
    pub line_count: i64,
    pub timeline: TimelineBody,
}

impl From<&OrderSummary> for OrderSummaryBody {
    fn from(s: &OrderSummary) -> Self {
        OrderSummaryBody {
            order_id: s.order_id.as_uuid(),
            customer_id: s.customer_id.as_uuid(),
            status: status_name(s.status).to_owned(),
            total: s.total.into(),
            line_count: s.line_count,
            timeline: (&s.timeline).into(),
        }
    }
}

/// One page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummaryBody>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The path and query of the next page (same filters and limit); null on the last page.
    pub next: Option<String>,
}
