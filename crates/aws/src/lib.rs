//! jobrunner's AWS adapters: the official `aws-sdk-*` clients behind narrow, testable types.
//!
//! Clients are built once per cold start from one [`aws_config::SdkConfig`] with explicit
//! timeouts and retry settings ([`client::load`]). Errors are classified into retryable and
//! permanent ([`Error`]) so the functions can decide between "try again" and "dead-letter".

pub mod client;
pub mod ecs;
pub mod ecs_service;
pub mod error;
pub mod lambda_init;
pub mod sns;
pub mod sqs_queue;
pub mod state_store;
pub mod task_definitions;

pub use error::Error;
