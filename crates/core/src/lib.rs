//! jobrunner's pure core: everything that decides, nothing that calls AWS.
//!
//! Config parsing and validation, event decoding, routing, templating, idempotency tokens,
//! launch planning, scaling decisions and alert rendering. Functions here take time as an
//! argument, so the Lambda functions, the dry-run CLI and the simulator share one code path.

pub mod alert;
pub mod class;
pub mod config;
pub mod dryrun;
pub mod error;
pub mod event;
pub mod fargate;
pub mod plan;
pub mod routing;
pub mod scaling;
pub mod schedule;
pub mod template;
pub mod token;

pub use config::Config;
pub use error::Error;
