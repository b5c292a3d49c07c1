//! The orders service (being written).
