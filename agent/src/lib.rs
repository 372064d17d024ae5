//! haloyd, the Haloy agent on each server, as a library so tests can run it
//! in-process: its settings and set-up, the container runtime and proxy seams, and
//! (to come) the API, deploy engine and state store.

pub mod config;
pub mod proxy;
pub mod runtime;
pub mod setup;
