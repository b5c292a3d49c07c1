//! The stream workers: the saga's reactions and its consumers, run on the consumer runtime
//! (`orderflow_consumer`).
//!
//! A reaction is a plain async function from an event and a database transaction to effects (business
//! rows and outbox events). Everything else belongs to the runtime: filtering, decoding, concurrency,
//! batching, the inbox that makes each effect happen once, retries, dead letters, offsets, metrics
//! and health. `consumers` lists every consumer of the saga as data; `reactions` has one module per
//! consuming service.

pub mod consumers;
pub mod deadlines;
pub mod reactions;

pub use consumers::{ConsumerSpec, Worker};
pub use orderflow_consumer::{Effects, ReactionError, ReactionFuture, Reactions};
