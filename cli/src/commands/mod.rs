//! One module per `haloy` command.

pub mod canary;
pub mod completion;
pub mod deploy;
pub mod history;
pub mod logs;
pub mod prune_images;
pub mod rollback;
pub mod rollback_targets;
pub mod server;
pub mod status;
pub mod stop;
pub mod validate_config;
