//! W3C trace context (<https://www.w3.org/TR/trace-context/>) for the tasks jobrunner starts:
//! the `TRACEPARENT` each task finds in its environment, so its own spans and logs join the
//! event that started it.
//!
//! Where it comes from ([`for_launch`]): the launcher invocation's X-Ray trace when that trace
//! is sampled (active tracing on the function, or a sampled caller upstream), converted with
//! [`TraceParent::from_xray`]; otherwise one derived from the run ([`TraceParent::for_run`]):
//! every attempt of a run shares its trace id, each attempt has its own parent id. A derived
//! one is the same on every delivery of the same event, so a redelivery sends RunTask the very
//! same overrides. A sampled X-Ray trace differs between deliveries: a redelivery then sends
//! other overrides with the same `clientToken`, which ECS answers with `ConflictException`
//! naming the task already started (the launch policy counts it as already launched), and with
//! the ledger a run that has its task is never sent to RunTask again. The trace context never
//! enters the token.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::plan::{KeyValuePair, LaunchPlan};

/// The environment variable (the name OpenTelemetry's environment carrier reads).
pub const TRACEPARENT: &str = crate::job_env::TRACEPARENT;

/// A `traceparent` (version 00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub parent_id: String,
    pub sampled: bool,
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = if self.sampled { "01" } else { "00" };
        write!(f, "00-{}-{}-{flags}", self.trace_id, self.parent_id)
    }
}

fn is_hex_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

impl TraceParent {
    /// Converts an X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;
    /// Parent=53995c3f42cd8ad8;Sampled=1`, as Lambda sets `_X_AMZN_TRACE_ID`): the root's
    /// time and random parts make the trace id. `None` when there is no root or no parent.
    pub fn from_xray(header: &str) -> Option<TraceParent> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            let (key, value) = part.trim().split_once('=')?;
            match key {
                "Root" => root = Some(value),
                "Parent" => parent = Some(value),
                "Sampled" => sampled = value == "1",
                _ => {}
            }
        }
        let mut fields = root?.split('-');
        let (Some("1"), Some(time), Some(random), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        let trace_id = format!("{time}{random}").to_ascii_lowercase();
        let parent_id = parent?.to_ascii_lowercase();
        (time.len() == 8 && is_hex_id(&trace_id, 32) && is_hex_id(&parent_id, 16)).then_some(
            TraceParent {
                trace_id,
                parent_id,
                sampled,
            },
        )
    }

    /// The trace context derived from the run: the trace id from the run id, the parent id
    /// from the run id and the attempt; sampled.
    pub fn for_run(run_id: &str, attempt: u32) -> TraceParent {
        let digest = |input: String| -> String {
            Sha256::digest(input.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let mut trace_id: String = digest(format!("jobrunner/trace/{run_id}"));
        trace_id.truncate(32);
        let mut parent_id = digest(format!("jobrunner/attempt/{run_id}/{attempt}"));
        parent_id.truncate(16);
        TraceParent {
            trace_id,
            parent_id,
            sampled: true,
        }
    }

    /// Parses a `traceparent` header value (version 00).
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut fields = value.split('-');
        let (Some("00"), Some(trace_id), Some(parent_id), Some(flags), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return None;
        };
        let flags = u8::from_str_radix(flags, 16)
            .ok()
            .filter(|_| flags.len() == 2)?;
        (is_hex_id(trace_id, 32) && is_hex_id(parent_id, 16)).then(|| TraceParent {
            trace_id: trace_id.into(),
            parent_id: parent_id.into(),
            sampled: flags & 1 == 1,
        })
    }
}

/// The trace context of a launch: the invocation's when it is sampled, else the run's.
pub fn for_launch(invocation: Option<&TraceParent>, run_id: &str, attempt: u32) -> TraceParent {
    match invocation {
        Some(trace) if trace.sampled => trace.clone(),
        _ => TraceParent::for_run(run_id, attempt),
    }
}

/// Sets `TRACEPARENT` in every request of `plan` (the container override that carries the
/// `JOB_*` variables), replacing one already there.
pub fn apply(plan: &mut LaunchPlan, trace: &TraceParent) {
    let value = trace.to_string();
    for input in &mut plan.attempts {
        for container in &mut input.overrides.container_overrides {
            if !container
                .environment
                .iter()
                .any(|kv| kv.name == crate::job_env::RUN_ID)
            {
                continue;
            }
            container.environment.retain(|kv| kv.name != TRACEPARENT);
            container.environment.push(KeyValuePair {
                name: TRACEPARENT.into(),
                value: value.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_of_exactly_8192_characters_with_the_traceparent_are_allowed() {
        use crate::plan::tests::{example, object};
        use crate::plan::{MAX_OVERRIDES_CHARS, plan_object};
        let with_padding = |chars: usize| {
            let mut config = example();
            let job = config.jobs.get_mut("thumbnails").unwrap();
            job.environment.insert("PADDING".into(), "p".repeat(chars));
            plan_object(&config, "thumbnails", &object("images/cat.jpg", 1, None))
        };
        // What ECS receives, the launcher's TRACEPARENT included, is what counts.
        let chars = |plan: &LaunchPlan| {
            let mut plan = plan.clone();
            let trace = TraceParent::for_run(&plan.run_id, 1);
            apply(&mut plan, &trace);
            serde_json::to_string(&plan.attempts[0].overrides)
                .unwrap()
                .chars()
                .count()
        };
        let fill = MAX_OVERRIDES_CHARS - chars(&with_padding(0).unwrap());
        assert_eq!(chars(&with_padding(fill).unwrap()), MAX_OVERRIDES_CHARS);
        let err = with_padding(fill + 1).unwrap_err();
        assert!(
            err.to_string().contains("would be 8193 characters"),
            "{err}"
        );
    }

    #[test]
    fn an_xray_header_becomes_a_traceparent() {
        let trace = TraceParent::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(
            trace.to_string(),
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        );
        let unsampled = TraceParent::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a:1",
        )
        .unwrap();
        assert_eq!(
            unsampled.to_string(),
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"
        );
        assert_eq!(TraceParent::parse(&trace.to_string()), Some(trace));
    }

    #[test]
    fn malformed_xray_headers_give_none() {
        for header in [
            "",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e98-bd862e3fe1be46a9942727931;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f",
            "garbage",
        ] {
            assert_eq!(TraceParent::from_xray(header), None, "{header}");
        }
    }

    #[test]
    fn a_derived_trace_is_stable_per_run_and_distinct_per_attempt() {
        let first = TraceParent::for_run("0123456789abcdef0123456789abcdef", 1);
        assert_eq!(
            first,
            TraceParent::for_run("0123456789abcdef0123456789abcdef", 1)
        );
        let second = TraceParent::for_run("0123456789abcdef0123456789abcdef", 2);
        assert_eq!(first.trace_id, second.trace_id);
        assert_ne!(first.parent_id, second.parent_id);
        let other = TraceParent::for_run("fedcba9876543210fedcba9876543210", 1);
        assert_ne!(first.trace_id, other.trace_id);
        assert_eq!(TraceParent::parse(&first.to_string()), Some(first.clone()));
        assert!(first.sampled);
    }

    #[test]
    fn only_a_sampled_invocation_trace_is_passed_on() {
        let sampled = TraceParent::parse("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
        let unsampled =
            TraceParent::parse("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00");
        assert_eq!(for_launch(sampled.as_ref(), "r", 1), sampled.unwrap());
        assert_eq!(
            for_launch(unsampled.as_ref(), "r", 1),
            TraceParent::for_run("r", 1)
        );
        assert_eq!(for_launch(None, "r", 1), TraceParent::for_run("r", 1));
    }

    #[test]
    fn traceparents_are_validated() {
        assert_eq!(
            TraceParent::parse("01-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
            None
        );
        assert_eq!(
            TraceParent::parse("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-1"),
            None
        );
        assert_eq!(
            TraceParent::parse("00-5759E988BD862E3FE1BE46A994272793-53995c3f42cd8ad8-01"),
            None
        );
        assert_eq!(
            TraceParent::parse("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-x"),
            None
        );
    }
}
