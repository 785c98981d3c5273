//! Alert classes: why a task stopped, as named in `[alerts] notify_on`, the `class` message
//! attribute and the alert's JSON document.
//!
//! Its own module (importing nothing from the crate) so that both `config` and `alert` can use
//! it without importing each other. How a stop is classified lives in `alert`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray, VariantNames};

/// Why a task stopped.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
    VariantArray,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Class {
    /// Every essential container exited 0.
    Succeeded,
    /// An essential container exited with a non-zero code.
    NonZeroExit,
    /// A container was killed for using too much memory.
    Oom,
    /// ECS could not start the task: image pull, secrets, network or volume set-up failed.
    FailedToStart,
    /// AWS reclaimed Fargate Spot capacity (or retired the task's host).
    SpotInterruption,
    /// A service's scheduler stopped the task (scale-in, deployment).
    ScaledIn,
    /// Someone (or something) called StopTask.
    UserStopped,
    /// jobrunner stopped the task for running past its timeout.
    Timeout,
    /// A service's load balancer or container health checks failed.
    Unhealthy,
    /// None of the above.
    Unknown,
    /// A run that never started: RunTask refused it for good (an inactive task definition, a
    /// permanent `failures[]`), or its event could not be planned.
    LaunchFailed,
    /// A schedule tick that produced no run within `[alerts] missed_schedule_after`.
    MissedSchedule,
}

impl Class {
    /// Every class, in declaration order.
    pub const ALL: &'static [Class] = <Class as VariantArray>::VARIANTS;
    /// Every class's name, in declaration order.
    pub const NAMES: &'static [&'static str] = <Class as VariantNames>::VARIANTS;

    /// The name used in `[alerts] notify_on`, the `class` attribute and the JSON document.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The class named `name` (as [`Class::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Class> {
        name.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_strum_and_serde() {
        assert_eq!(Class::ALL.len(), Class::NAMES.len());
        for (class, name) in Class::ALL.iter().zip(Class::NAMES) {
            assert_eq!(class.as_str(), *name);
            assert_eq!(class.to_string(), *name);
            assert_eq!(Class::from_name(name), Some(*class));
            assert_eq!(serde_json::to_value(class).unwrap(), *name);
            assert_eq!(
                serde_json::from_value::<Class>(serde_json::json!(name)).unwrap(),
                *class
            );
        }
        assert_eq!(Class::NonZeroExit.as_str(), "non_zero_exit");
        assert_eq!(Class::from_name("NonZeroExit"), None);
        assert_eq!(Class::from_name("explosion"), None);
    }
}
