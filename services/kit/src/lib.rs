//! What every orderflow service shares, so that each service crate is only its domain and its routes:
//! bearer-token authentication and roles (`auth`), the identity provider's client side (`identity`),
//! the transactional outbox (`outbox`), the database with the shared migrations (`database`), the JSON
//! error shape and the strict JSON extractor (`http`), idempotency keys stored on a write's own
//! transaction (`idempotency`), health and readiness (`health`), and serving (`server`) behind the
//! hardening every HTTP server gets (`hardening`), and what every OpenAPI document says of the kit's
//! answers (`openapi`).

pub mod auth;
pub mod database;
pub mod hardening;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod openapi;
pub mod outbox;
pub mod server;
pub mod service;
pub mod testing;
pub mod trace;

pub use http::{ApiError, ApiJson};
pub use idempotency::{Idempotency, Idempotent};
pub use outbox::Outbox;
pub use service::{ServiceContext, ServiceSpec};
pub use trace::TraceContext;
