//! haloyd, the Haloy agent on each server, as a library so tests can run it
//! in-process: its settings and set-up, the deploy engine, the container runtime and
//! proxy seams, and the state store.

pub mod api;
pub mod certs;
pub mod config;
pub mod daemon;
pub mod durable;
pub mod engine;
pub mod metrics;
pub use haloy_api::ids;
pub mod net;
pub mod probe;
pub mod process;
pub mod protection;
pub mod proxy;
pub mod registry;
pub mod runtime;
pub mod setup;
pub mod store;
