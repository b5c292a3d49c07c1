//! What a reaction is to the runtime. A consumer's `Reactions` says which events it handles and
//! applies one event's effects on the transaction it is given; it never commits, retries or produces
//! to Kafka itself. Its errors say what the runtime should do next: retry (`Transient`) or dead-letter
//! (`Refused`).

use std::future::Future;
use std::pin::Pin;

use orderflow_schemas::AnyEvent;
use orderflow_schemas::registry::RegistryError;
use orderflow_service_kit::{Outbox, TraceContext};
use sqlx::PgConnection;

/// What a reaction may touch: its service's database, on the runtime's transaction, and the outbox.
pub struct Effects<'a> {
    pub tx: &'a mut PgConnection,
    pub outbox: &'a Outbox,
    /// The trace context of the event being handled; events the reaction writes continue it.
    pub trace: &'a TraceContext,
}

pub type ReactionFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ReactionError>> + Send + 'a>>;

/// The reactions of one consumer.
pub trait Reactions: Send + Sync + 'static {
    /// Whether this consumer reacts to `event` at all. Events it does not handle are skipped without
    /// touching the database.
    fn handles(&self, event: &AnyEvent) -> bool;

    /// Apply `event`'s effects. Called only for events `handles` accepted.
    fn react<'a>(&'a self, event: &'a AnyEvent, effects: Effects<'a>) -> ReactionFuture<'a>;
}

#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The event cannot be applied, now or ever (the state machine refuses it, it contradicts what the
    /// database holds): it goes to the dead-letter topic with this reason.
    #[error("refused: {0}")]
    Refused(String),
    /// Something outside the event failed (database or registry unavailable, a serialization
    /// conflict): the runtime rolls back and tries again after a backoff, never skipping the event.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
}

impl ReactionError {
    /// Classify any error by its cause: database connectivity, serialization conflicts and an
    /// unreachable registry are transient; everything else is a refusal.
    pub fn classify(error: anyhow::Error) -> Self {
        if is_transient(&error) {
            ReactionError::Transient(error)
        } else {
            ReactionError::Refused(format!("{error:#}"))
        }
    }
}

impl From<sqlx::Error> for ReactionError {
    fn from(error: sqlx::Error) -> Self {
        ReactionError::classify(error.into())
    }
}

impl From<anyhow::Error> for ReactionError {
    fn from(error: anyhow::Error) -> Self {
        ReactionError::classify(error)
    }
}

/// Whether an error (anywhere in its chain) is one that goes away by itself.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
            return sqlx_is_transient(db);
        }
        if let Some(registry) = cause.downcast_ref::<RegistryError>() {
            return registry.is_retriable();
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

fn sqlx_is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exceptions; 40001/40P01: serialization failure, deadlock;
            // 53: insufficient resources; 57P0x: the server is shutting down or starting up.
            code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("53")
                || code.starts_with("57P0")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_is_transient_and_logic_is_refused() {
        let io = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("reserving stock");
        assert!(matches!(
            ReactionError::classify(io),
            ReactionError::Transient(_)
        ));
        let refused = anyhow::anyhow!("order 1 is CANCELLED; it cannot be confirmed");
        match ReactionError::classify(refused) {
            ReactionError::Refused(reason) => assert!(reason.contains("cannot be confirmed")),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
