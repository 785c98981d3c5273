//! The ECS API limits every request jobrunner builds must respect (ECS API Reference:
//! RunTask, StopTask, DescribeTasks).

/// RunTask `overrides`: at most this many characters of JSON.
pub const MAX_OVERRIDES_CHARS: usize = 8192;
/// RunTask `startedBy`: at most this many characters.
pub const MAX_STARTED_BY_CHARS: usize = 128;
/// StopTask `reason`: at most this many characters.
pub const MAX_STOP_REASON_CHARS: usize = 255;
/// DescribeTasks: at most this many tasks per call.
pub const MAX_DESCRIBE_TASKS: usize = 100;
