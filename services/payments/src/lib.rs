//! The payments service (being written).
