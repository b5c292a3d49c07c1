//! The saga end to end, on the real stack: requests go to the services' HTTP APIs, every event travels
//! outbox → Debezium → Kafka → `orderflow worker`, and the tests look only at what the services answer
//! and hold. Each test uses its own customers and products, so they run side by side.

#[path = "../support/mod.rs"]
mod support;

mod deadlines;
mod delivery;
mod flows;
mod reports;
mod shop;
