//! jobrunner's pure core: everything that decides, nothing that calls AWS.
//!
//! Config parsing and validation, event decoding, routing, templating, idempotency tokens,
//! launch planning, scaling decisions and alert rendering, plus each function's whole
//! decision path ([`launcher::handle`], [`tracker::handle`], [`scaler::Scaler`]) written against
//! narrow [`ports`]. The Lambda functions drive those paths with the AWS adapters; `jobrunner
//! plan` drives the very same code with the [`dryrun`] world and prints every call the
//! [`recording::Recorder`] saw. Time is always an argument (or the [`ports::Clock`]).
//!
//! # Layout
//!
//! Modules, lowest first; each imports only from modules above it in this list (the test
//! `tests/layout.rs` fails on an import cycle):
//!
//! | module | what it is |
//! |---|---|
//! | [`error`] | the one error type, retryable vs permanent, with [`error::CallError`] for AWS calls |
//! | [`job_env`], [`ecs_limits`], [`started_by`] | the `JOB_*` names, ECS's request limits, the `startedBy` mark |
//! | [`class`], [`template`], [`fargate`], [`cost`] | alert classes, placeholders, Fargate sizes and prices |
//! | [`config`] | the user's config file as types, parsed and validated once |
//! | [`event`], [`token`] | every delivery shape decoded into [`event::Event`]s; deterministic clientTokens |
//! | [`routing`], [`schedule`] | which job an object or a tick starts |
//! | [`plan`], [`retry`] | job + event → the exact RunTask request; what follows a failed attempt |
//! | [`trace`] | the W3C `TRACEPARENT` a task gets: the invocation's sampled X-Ray trace, or the run's |
//! | [`scaling`], [`alert`] | scaling decisions; alert classification, digests and rendering (pure) |
//! | [`run`], [`deadline`] | a run's ledger record and the rules that move it forward; tasks' time limits (pure) |
//! | [`metrics`] | Embedded Metric Format documents of every function, and the invocation's metric scope |
//! | [`ports`], [`handled`] | the traits the drivers call; what an invocation did → Lambda's answer |
//! | [`action`], [`recording`] | one AWS call as data; a port wrapper that records calls |
//! | [`ledger`] | the run ledger, job slots and schedule watches in the state table |
//! | [`launcher`], [`tracker`], [`scaler`] | the three functions' decision paths over the ports |
//! | [`dryrun`] | the world `jobrunner plan` answers reads from |

pub mod action;
pub mod alert;
pub mod class;
pub mod config;
pub mod cost;
pub mod deadline;
pub mod dryrun;
pub mod ecs_limits;
pub mod error;
pub mod event;
pub mod fargate;
pub mod handled;
pub mod job_env;
pub mod launcher;
pub mod ledger;
pub mod metrics;
pub mod plan;
pub mod ports;
pub mod recording;
pub mod retry;
pub mod routing;
pub mod run;
pub mod scaler;
pub mod scaling;
pub mod schedule;
pub mod started_by;
pub mod template;
pub mod token;
pub mod trace;
pub mod tracker;

pub use config::Config;
pub use error::Error;
