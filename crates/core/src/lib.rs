//! jobrunner's pure core: everything that decides, nothing that calls AWS.
//!
//! Config parsing and validation, event decoding, routing, templating, idempotency tokens,
//! launch planning, scaling decisions and alert rendering, plus each function's whole
//! decision path ([`launch::handle`], [`alert::handle`], [`scaling::driver`]) written against
//! narrow [`ports`]. The Lambda functions drive those paths with the AWS adapters; `jobrunner
//! plan` drives the very same code with the [`dryrun`] world and prints every call the
//! [`recording::Recorder`] saw. Time is always an argument (or the [`ports::Clock`]).
//!
//! # Layout
//!
//! Modules, lowest first; each imports only from modules above it in this list:
//!
//! | module | what it is |
//! |---|---|
//! | [`error`] | the one error type, retryable vs permanent ([`ports::CallError`] inside) |
//! | [`job_env`] | the `JOB_*` variable names tasks receive |
//! | [`config`] | the user's config file as types, parsed and validated once |
//! | [`template`], [`token`], [`fargate`] | placeholders, deterministic clientTokens, Fargate sizes |
//! | [`event`] | every delivery shape decoded into [`event::Event`]s (S3, schedules, task state changes) |
//! | [`routing`], [`schedule`] | which job an object or a tick starts |
//! | [`plan`] | job + event → the exact RunTask request |
//! | [`scaling`] | scaling decisions (pure) |
//! | [`alert`] | classification, context, digests, rendering (pure) |
//! | [`ports`] | the traits the drivers call (ECS, SNS, DynamoDB, SQS, clock) |
//! | [`action`], [`recording`] | one AWS call as data; a port wrapper that records calls |
//! | [`handled`] | what an invocation did → Lambda's answer (partial batch failures) |
//! | [`launch`], [`alert::handle`], [`scaling::driver`] | the three functions' decision paths |
//! | [`dryrun`] | the world `jobrunner plan` answers reads from |
//!
//! The drivers sit above everything they use; nothing below imports a driver.

pub mod action;
pub mod alert;
pub mod class;
pub mod config;
pub mod dryrun;
pub mod error;
pub mod event;
pub mod fargate;
pub mod handled;
pub mod job_env;
pub mod launch;
pub mod plan;
pub mod ports;
pub mod recording;
pub mod routing;
pub mod scaling;
pub mod schedule;
pub mod template;
pub mod token;

pub use config::Config;
pub use error::Error;
