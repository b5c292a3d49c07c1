//! The Debezium connectors (`connectors/*.json`, set up by `scripts/setup-connectors`) against the
//! real stack: each service's write arrives on its topic with the right key, headers and value; a
//! restart of Kafka Connect mid-stream loses nothing; the setup script is idempotent, refuses a wrong
//! password with a message a person can act on, and deletes cleanly; an idle database's slot keeps up.
//!
//! The tests run in parallel in this one binary: each reads its topic from the offsets it recorded
//! before its write and picks its records by event id; throwaway connectors use throwaway databases;
//! the restart test takes Kafka Connect for itself (see `common::CONNECT`).

#[path = "../support/mod.rs"]
mod support;

mod common;
mod events;
mod restart;
mod setup;
