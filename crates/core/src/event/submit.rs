//! A manual submit: `jobrunner submit JOB` puts this document on the launcher's queue, and the
//! launcher starts the run as it starts any other (the cap, the ledger), with trigger `manual`.
//!
//! `{"source": "jobrunner.submit", "job", "submitted_by", "submitted_at", "object"?: {"bucket",
//! "key", "size", "etag"?, "version_id"?}, "schedule"?: {"name", "scheduled_time"},
//! "environment"?: {NAME: value}}`. The run's identity is the job, who submitted it and when
//! (the CLI's clock, to the nanosecond): a redelivered message is the same run, the same command
//! run again is a new one.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ObjectCreated, typed};
use crate::error::Error;
use crate::job_env;

/// The `source` of a submit.
pub const SOURCE: &str = "jobrunner.submit";

/// Most environment overrides one submit carries.
pub const MAX_ENVIRONMENT: usize = 100;

/// A run asked for by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub job: String,
    /// The caller's ARN (STS GetCallerIdentity).
    pub submitted_by: String,
    pub submitted_at: DateTime<Utc>,
    /// The object to process (`{bucket}`, `{key}`, … and `JOB_BUCKET`, … as for an upload).
    pub object: Option<ObjectCreated>,
    /// Run as this schedule's tick at this time (the schedule's command and environment).
    pub schedule: Option<(String, DateTime<Utc>)>,
    /// Extra environment for the job's container (after the job's own; same names win).
    pub environment: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[allow(dead_code)]
    source: String,
    job: String,
    submitted_by: String,
    submitted_at: DateTime<Utc>,
    object: Option<ObjectDoc>,
    schedule: Option<ScheduleDoc>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectDoc {
    bucket: String,
    key: String,
    size: u64,
    etag: Option<String>,
    version_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleDoc {
    name: String,
    scheduled_time: DateTime<Utc>,
}

pub(super) fn decode(value: &Value) -> Result<Submit, Error> {
    let doc: Document = typed(value, "jobrunner submit")?;
    let bad = |reason: String| Error::MalformedEvent(format!("jobrunner submit: {reason}"));
    if doc.job.is_empty() || doc.submitted_by.is_empty() {
        return Err(bad("job and submitted_by must not be empty".into()));
    }
    if doc.object.is_some() && doc.schedule.is_some() {
        return Err(bad("an object or a schedule, not both".into()));
    }
    check_environment(&doc.environment).map_err(bad)?;
    let object = match doc.object {
        None => None,
        Some(o) => {
            // Through the S3 decoder's own checks (key length, control characters, `..`).
            let document = json!({"version": "0", "detail-type": "Object Created",
                "source": "aws.s3", "time": doc.submitted_at,
                "detail": {"bucket": {"name": o.bucket}, "object": {"key": o.key, "size": o.size,
                    "etag": o.etag, "version-id": o.version_id}}});
            match super::decode_event(&document)?.pop() {
                Some(super::Event::ObjectCreated(object)) => Some(object),
                _ => return Err(bad("object is not an S3 object".into())),
            }
        }
    };
    Ok(Submit {
        job: doc.job,
        submitted_by: doc.submitted_by,
        submitted_at: doc.submitted_at,
        object,
        schedule: doc.schedule.map(|s| (s.name, s.scheduled_time)),
        environment: doc.environment,
    })
}

/// Environment names as config `environment` takes them: letters, digits and `_`, not
/// starting with a digit, not `JOB_*`; at most [`MAX_ENVIRONMENT`]. (Sizes are checked by the
/// plan: the container overrides' 8,192 characters.)
pub fn check_environment(environment: &BTreeMap<String, String>) -> Result<(), String> {
    if environment.len() > MAX_ENVIRONMENT {
        return Err(format!(
            "{} environment overrides; at most {MAX_ENVIRONMENT}",
            environment.len()
        ));
    }
    for name in environment.keys() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "environment name '{name}': letters, digits and '_', not starting with a digit"
            ));
        }
        if name.starts_with(job_env::RESERVED_PREFIX) {
            return Err(format!(
                "environment name '{name}': names starting with JOB_ are reserved for the variables jobrunner sets"
            ));
        }
    }
    Ok(())
}

impl Submit {
    /// The submit as the document [`super::decode_event`] reads.
    pub fn to_document(&self) -> Value {
        let mut doc = json!({
            "source": SOURCE,
            "job": self.job,
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
        });
        if let Some(o) = &self.object {
            let mut object = json!({"bucket": o.bucket, "key": o.key, "size": o.size});
            if let Some(etag) = &o.etag {
                object["etag"] = json!(etag);
            }
            if let Some(version) = &o.version_id {
                object["version_id"] = json!(version);
            }
            doc["object"] = object;
        }
        if let Some((name, at)) = &self.schedule {
            doc["schedule"] = json!({"name": name, "scheduled_time": at.to_rfc3339_opts(SecondsFormat::Secs, true)});
        }
        if !self.environment.is_empty() {
            doc["environment"] = json!(self.environment);
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Event, decode_event};
    use super::*;

    fn submit() -> Submit {
        Submit {
            job: "report".into(),
            submitted_by: "arn:aws:iam::123456789012:user/ana".into(),
            submitted_at: "2026-11-25T10:00:00.123456789Z".parse().unwrap(),
            object: None,
            schedule: None,
            environment: BTreeMap::from([("MODE".into(), "full".into())]),
        }
    }

    fn decoded(document: &Value) -> Result<Submit, Error> {
        match decode_event(document)?.pop() {
            Some(Event::Submit(submit)) => Ok(submit),
            other => panic!("not a submit: {other:?}"),
        }
    }

    #[test]
    fn a_submit_round_trips_to_the_nanosecond() {
        let mut with_object = submit();
        with_object.object = Some(ObjectCreated {
            bucket: "uploads".into(),
            key: "in/a b+c.jpg".into(),
            size: 42,
            etag: Some("abc".into()),
            version_id: Some("v1".into()),
            sequencer: None,
            event_time: with_object.submitted_at,
        });
        for s in [submit(), with_object] {
            assert_eq!(decoded(&s.to_document()).unwrap(), s);
        }
        let mut scheduled = submit();
        scheduled.schedule = Some(("nightly".into(), "2026-11-25T02:00:00Z".parse().unwrap()));
        assert_eq!(decoded(&scheduled.to_document()).unwrap(), scheduled);
    }

    #[test]
    fn bad_submits_are_refused_with_the_reason() {
        let error = |doc: Value| decode_event(&doc).unwrap_err().to_string();
        let mut doc = submit().to_document();
        doc["environment"] = json!({"JOB_NAME": "x"});
        assert!(error(doc.clone()).contains("reserved"), "{}", error(doc));
        let mut doc = submit().to_document();
        doc["environment"] = json!({"1X": "x"});
        assert!(error(doc).contains("'1X'"));
        let mut doc = submit().to_document();
        doc["object"] = json!({"bucket": "b", "key": "a/../b", "size": 1});
        assert!(error(doc).contains(".."));
        let mut doc = submit().to_document();
        doc["object"] = json!({"bucket": "b", "key": "k", "size": 1});
        doc["schedule"] = json!({"name": "n", "scheduled_time": "2026-11-25T02:00:00Z"});
        assert!(error(doc).contains("not both"));
        let mut doc = submit().to_document();
        doc["priority"] = json!(1);
        assert!(error(doc).contains("priority"));
        let many: BTreeMap<String, String> = (0..=MAX_ENVIRONMENT)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        assert!(
            check_environment(&many)
                .unwrap_err()
                .contains("at most 100")
        );
        let most: BTreeMap<String, String> = many.into_iter().take(MAX_ENVIRONMENT).collect();
        assert_eq!(
            check_environment(&most),
            Ok(()),
            "the limit itself is allowed"
        );
        // Either name missing is enough to refuse.
        for field in ["job", "submitted_by"] {
            let mut doc = submit().to_document();
            doc[field] = json!("");
            assert!(error(doc).contains("must not be empty"), "{field}");
        }
    }
}
