//! The workstation side of Haloy: reading and checking configuration, resolving
//! secrets, knowing which servers to talk to, and shipping images to them.

pub mod archive;
pub mod client;
pub mod config;
pub mod env;
pub mod error;
pub mod secrets;
pub mod servers;
pub mod suggest;
pub mod upload;

pub use config::{ConfigFile, TargetSelection};
pub use error::{ConfigError, Issue};
