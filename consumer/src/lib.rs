//! The consumer runtime every Kafka consumer of orderflow runs on: the saga's consumers and the
//! analytics sink alike.
//!
//! A consumer is a [`Handler`] (what to do with a batch of records of one partition) plus a
//! [`Spec`] (its group name and topics). The saga's handlers are [`Transactional`] [`Reactions`]:
//! plain functions of an event and a database transaction. The [`Runtime`] owns everything else,
//! once: filtering on the `event_type` header before decoding, decoding through the registry,
//! concurrency across partitions and key lanes with per-key order, batching, the inbox, retries
//! with backoff, dead letters, back-pressure, offsets, and the metrics of all of it.
//!
//! | module | what it is |
//! |---|---|
//! | [`runtime`] | the polling thread, the key lanes, batches, pause/resume, commits, rebalances |
//! | [`handler`] | the `Handler` trait, `Record`, `Batch` and how a batch can fail |
//! | [`reactions`] | `Reactions` (one event, one transaction) and `Transactional`, the saga's handler |
//! | [`tracker`] | per partition: up to which offset everything is finished |
//! | [`classify`] | which failures are transient and which permanent |
//! | [`inbox`] | the record of applied events that makes each effect happen once |
//! | [`dead_letter`] | `<consumer>.dlq`: send, list, redrive (murmur2, headers kept) |
//! | [`parking`] | sequenced dead letters: the events of a key parked behind its dead letter |
//! | [`backoff`] | capped exponential backoff with jitter |
//! | [`settings`] | batch size, lanes, in-flight bounds, fetch and commit timing, from the environment |
//! | [`health`] | `/health/*` and `/metrics` of a process running consumers, and the lag gauge |

pub mod backoff;
pub mod classify;
pub mod dead_letter;
pub mod handler;
pub mod health;
pub mod inbox;
pub mod parking;
pub mod reactions;
pub mod runtime;
pub mod settings;
pub mod tracker;

pub use handler::{Applied, Batch, BatchError, BatchFuture, Handler, Interest, ParkFuture, Record};
pub use reactions::{Effects, ReactionError, ReactionFuture, Reactions, Transactional};
pub use runtime::{AbortOnDrop, KafkaConsumer, Runtime, Spec};
pub use settings::Settings;
