//! The workstation side of Haloy: reading and checking configuration, resolving
//! secrets, knowing which servers to talk to, building images and shipping them.

pub mod address;
pub mod archive;
pub mod build;
pub mod client;
pub mod config;
pub mod deploy;
pub mod deployment;
pub mod env;
pub mod error;
pub mod fanout;
pub mod hooks;
pub mod prepare;
pub mod registry;
pub mod secrets;
pub mod servers;
pub mod suggest;
pub mod tls;
pub mod upload;

pub use config::{ConfigFile, Needs, TargetSelection};
pub use error::{ConfigError, Issue};
