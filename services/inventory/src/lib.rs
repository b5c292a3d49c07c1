//! The inventory service (being written).
