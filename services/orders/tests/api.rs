//! Integration tests of the orders service against the real PostgreSQL and schema registry: every
//! write endpoint's rows and single outbox event (decoded through the registry), every bad input
//! changing nothing, reads and lists, the saga operations at the database level, and who may do what
//! (bearer tokens from the real identity provider).

#[path = "api/support.rs"]
mod support;

#[path = "api/drafts.rs"]
mod drafts;

#[path = "api/bad_input.rs"]
mod bad_input;

#[path = "api/place_and_cancel.rs"]
mod place_and_cancel;

#[path = "api/reads.rs"]
mod reads;

#[path = "api/saga.rs"]
mod saga;

#[path = "api/replicas.rs"]
mod replicas;

#[path = "api/deadlines.rs"]
mod deadlines;

#[path = "api/auth.rs"]
mod auth;
