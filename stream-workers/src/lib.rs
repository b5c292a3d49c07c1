//! The stream workers: the consumer runtime and the saga reactions it runs.
//!
//! A reaction is a plain async function from an event and a database transaction to effects (business
//! rows and outbox events). Everything else belongs to the runtime (`runtime`): decoding through the
//! registry, the inbox that makes each effect happen once, retries with backoff for transient failures,
//! the dead-letter topic for permanent ones, offsets committed only after the effect is committed,
//! metrics and health. `consumers` lists every consumer of the saga as data.

pub mod consumers;
pub mod reactions;
pub mod runtime;

pub use runtime::reaction::{Effects, ReactionError, ReactionFuture, Reactions};
pub use runtime::{ConsumerSpec, Worker};
