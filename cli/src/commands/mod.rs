//! One module per `haloy` command.

pub mod completion;
pub mod server;
pub mod validate_config;
