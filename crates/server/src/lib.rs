//! Rapport, the binary's library: configuration, telemetry and wiring. The only place that
//! knows both the storage backends and the HTTP layer.

pub mod admin;
pub mod config;
pub mod import_cli;
pub mod imports;
mod maintenance;
mod startup;
pub mod telemetry;
pub mod webhooks;

pub use config::{AdminCommand, Cli, Command, Config, ImportArgs};
pub use startup::{Application, open_store};
