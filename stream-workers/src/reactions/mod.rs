//! The saga's reactions, one module per consuming service. Each is a thin `Reactions` impl that says
//! which events the service reacts to and calls the service's own function for it (the same code the
//! service's HTTP API uses), on the runtime's transaction.

pub mod inventory;
pub mod orders;
pub mod payments;
pub mod shipping;
