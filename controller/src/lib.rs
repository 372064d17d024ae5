//! The workstation side of Haloy: reading and checking configuration, resolving
//! secrets, and knowing which servers to talk to.

pub mod client;
pub mod config;
pub mod env;
pub mod error;
pub mod fanout;
pub mod hooks;
pub mod secrets;
pub mod servers;
pub mod suggest;

pub use config::{ConfigFile, TargetSelection};
pub use error::{ConfigError, Issue};
