//! One classification of failures for every consumer: what goes away by itself (retried with
//! backoff, never dead-lettered) and what never will (dead-lettered with its reason).
//!
//! Transient: I/O and connection errors, pool timeouts, the registry unreachable or answering 429
//! or 5xx (`RegistryError::is_retriable`), and
//! the PostgreSQL SQLSTATEs of class 08 (connection), 40 (serialization failure, deadlock), 53
//! (insufficient resources), 57 (operator intervention: shutdown, statement timeout), 55P03 (lock not
//! available) and 25006 (read-only transaction, e.g. during a failover). Everything else, such as a
//! constraint violation or a refused state transition, is permanent.

/// Whether an error (anywhere in its chain) is one that goes away by itself.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
            return sqlx_is_transient(db);
        }
        if let Some(registry) = cause.downcast_ref::<orderflow_schemas::registry::RegistryError>() {
            return registry.is_retriable();
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

/// Whether a PostgreSQL error is transient.
pub fn sqlx_is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| sqlstate_is_transient(&code)),
        _ => false,
    }
}

/// Whether a SQLSTATE names a condition that passes.
pub fn sqlstate_is_transient(code: &str) -> bool {
    ["08", "40", "53", "57"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "55P03"
        || code == "25006"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_and_contention_are_transient_logic_is_not() {
        let io = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("reserving stock");
        assert!(is_transient(&io));
        assert!(!is_transient(&anyhow::anyhow!(
            "order 1 is CANCELLED; it cannot be confirmed"
        )));
        for code in [
            "08006", "40001", "40P01", "53300", "57014", "57P01", "55P03", "25006",
        ] {
            assert!(sqlstate_is_transient(code), "{code}");
        }
        for code in ["23505", "23503", "22P02", "42P01", "55000"] {
            assert!(!sqlstate_is_transient(code), "{code}");
        }
    }
}
