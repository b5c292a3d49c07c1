//! The customers service (being written).
