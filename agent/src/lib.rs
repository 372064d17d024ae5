//! haloyd, the Haloy agent on each server, as a library so tests can run it
//! in-process: its settings, its set-up, and (to come) the API, deploy engine,
//! Docker runtime, HAProxy driver, certificates and state store.

pub mod config;
pub mod setup;
