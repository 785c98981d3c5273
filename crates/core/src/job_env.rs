//! The names of the `JOB_*` variables jobrunner puts into every task's container environment.
//! Tasks read them; the tracker and the launch policies read them back from ECS.

pub const NAME: &str = "JOB_NAME";
/// `s3` or `schedule`.
pub const TRIGGER: &str = "JOB_TRIGGER";
pub const BUCKET: &str = "JOB_BUCKET";
pub const KEY: &str = "JOB_KEY";
pub const SIZE: &str = "JOB_SIZE";
pub const ETAG: &str = "JOB_ETAG";
pub const VERSION_ID: &str = "JOB_VERSION_ID";
pub const EVENT_TIME: &str = "JOB_EVENT_TIME";
pub const SCHEDULE: &str = "JOB_SCHEDULE";
pub const SCHEDULED_TIME: &str = "JOB_SCHEDULED_TIME";
/// The run's id in the ledger (`jobrunner run view <id>`).
pub const RUN_ID: &str = "JOB_RUN_ID";
/// The attempt's number, 1-based.
pub const ATTEMPT: &str = "JOB_ATTEMPT";
/// Retries of the run so far that were for Spot interruptions (they use up no attempt); set
/// from the first such retry on.
pub const INTERRUPTIONS: &str = "JOB_INTERRUPTIONS";

/// Names a user may not set in `environment` (jobrunner owns the prefix).
pub const RESERVED_PREFIX: &str = "JOB_";

/// The W3C trace context of the launch (`00-<trace id>-<parent id>-<flags>`): the launcher
/// invocation's sampled X-Ray trace, or one derived from the run (see `crate::trace`). Not
/// under the `JOB_` prefix: it is the name OpenTelemetry SDKs read.
pub const TRACEPARENT: &str = "TRACEPARENT";
/// Characters of a `TRACEPARENT` value: `00-`, 32 hex digits, `-`, 16 hex digits, `-01`.
pub const TRACEPARENT_CHARS: usize = 55;
/// What the `TRACEPARENT` entry (`trace::apply`) adds to a container override's JSON, the comma
/// included: planning keeps this much room under ECS's 8,192 characters.
pub const TRACEPARENT_ENTRY_CHARS: usize =
    r#",{"name":"TRACEPARENT","value":""}"#.len() + TRACEPARENT_CHARS;
