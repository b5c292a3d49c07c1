//! Smoke tests of the stack: each proves that one server `scripts/stack up` started is the real thing,
//! through the same client crate the platform uses for it. A server that is down fails its test with a
//! message naming it.

#[path = "../support/mod.rs"]
mod support;

mod connect;
mod elasticsearch;
mod identity;
mod kafka;
mod postgres;
mod registry;
mod roles;
mod s3;
