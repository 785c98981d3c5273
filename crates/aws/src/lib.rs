//! jobrunner's AWS adapters: the official `aws-sdk-*` clients behind the core's ports.
//!
//! Clients are built once per cold start from one [`aws_config::SdkConfig`] with explicit
//! timeouts and retry settings ([`client::load`]), and an HTTPS client that trusts the root CAs
//! AWS endpoints chain to ([`tls`]). Each adapter owns its client and resource
//! name and does I/O only; [`adapters::Adapters`] bundles a function's adapters into one value
//! implementing every port it uses. SDK errors become the core's retryable-or-permanent
//! [`Error`] ([`error::from_sdk`]).

pub mod adapters;
pub mod client;
pub mod ecs;
pub mod ecs_service;
pub mod error;
pub mod ledger_reader;
pub mod s3;
pub mod s3_head;
pub mod sns;
pub mod sqs_admin;
pub mod sqs_queue;
pub mod state_store;
pub mod status_reader;
pub mod task_definitions;
pub mod tls;

pub use adapters::{Adapters, SystemClock};
pub use error::Error;
