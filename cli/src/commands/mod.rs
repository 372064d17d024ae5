//! One module per `haloy` command.

pub mod canary;
pub mod completion;
pub mod deploy;
pub mod exec;
pub mod history;
pub mod init;
pub mod logs;
pub mod maintenance;
pub mod prune_images;
pub mod rollback;
pub mod rollback_targets;
pub mod schema;
pub mod server;
pub mod status;
pub mod stop;
pub mod tunnel;
pub mod validate_config;
