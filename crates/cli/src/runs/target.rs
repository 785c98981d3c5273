//! What `jobrunner run view` is given: a run id, an S3 object (`s3://bucket/key`, optionally
//! `?versionId=V`; the key as stored in S3, not URL-encoded) or a schedule tick
//! (`SCHEDULE@RFC3339`), and the run ids each of them names.

use chrono::{DateTime, Utc};
use jobrunner_core::Config;
use jobrunner_core::event::ObjectCreated;
use jobrunner_core::token;

/// The forms `run view` accepts, for error messages.
pub const FORMS: &str =
    "a run id (20 hex characters), s3://bucket/key[?versionId=V] or SCHEDULE@RFC3339";

/// A parsed `run view` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    RunId(String),
    Object {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    Tick {
        schedule: String,
        time: DateTime<Utc>,
    },
}

/// Checks that `text` is a run id as the ledger makes them.
pub fn run_id(text: &str) -> Result<String, String> {
    if text.len() == token::RUN_ID_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "not a run id ({} hex characters, as `jobrunner run list` shows them)",
            token::RUN_ID_LEN
        ))
    }
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            return object(rest);
        }
        if let Some((schedule, time)) = text.rsplit_once('@') {
            if schedule.is_empty() {
                return Err("no schedule name before '@'".into());
            }
            let time = DateTime::parse_from_rfc3339(time)
                .map_err(|e| format!("'{time}' after '@' is not an RFC 3339 time ({e})"))?;
            return Ok(Target::Tick {
                schedule: schedule.to_string(),
                time: time.with_timezone(&Utc),
            });
        }
        run_id(text)
            .map(Target::RunId)
            .map_err(|_| format!("not {FORMS}"))
    }

    /// The run ids this target names, with the job each belongs to when the target is an
    /// object (one per job whose S3 trigger the object matches). An object without a version
    /// names no id by itself: its runs are found through the ledger's object pointers.
    pub fn run_ids(&self, config: &Config) -> Vec<(Option<String>, String)> {
        match self {
            Target::RunId(id) => vec![(None, id.clone())],
            Target::Tick { schedule, time } => {
                vec![(None, token::run_id(&token::for_tick(schedule, *time)))]
            }
            Target::Object {
                bucket,
                key,
                version_id: Some(version),
            } => jobs_for_object(config, bucket, key)
                .into_iter()
                .map(|job| {
                    let object = ObjectCreated {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        size: 0,
                        etag: None,
                        version_id: Some(version.clone()),
                        sequencer: None,
                        event_time: DateTime::<Utc>::UNIX_EPOCH,
                    };
                    let id = token::run_id(&token::for_object(&job, &object));
                    (Some(job), id)
                })
                .collect(),
            Target::Object {
                version_id: None, ..
            } => vec![],
        }
    }
}

/// The jobs whose `[[triggers.s3]]` take objects at `bucket`/`key` (bucket, prefix and suffix;
/// the size is not known here), each once, in config order.
pub fn jobs_for_object(config: &Config, bucket: &str, key: &str) -> Vec<String> {
    let mut jobs: Vec<String> = Vec::new();
    for trigger in &config.triggers.s3 {
        if trigger.bucket == bucket
            && key.starts_with(&trigger.prefix)
            && key.ends_with(&trigger.suffix)
            && !jobs.contains(&trigger.job)
        {
            jobs.push(trigger.job.clone());
        }
    }
    jobs
}

fn object(rest: &str) -> Result<Target, String> {
    let (bucket, path) = rest
        .split_once('/')
        .ok_or("no key after the bucket (s3://bucket/key)")?;
    if bucket.is_empty() {
        return Err("no bucket name after s3://".into());
    }
    let (key, version_id) = match path.rsplit_once("?versionId=") {
        Some((_, "")) => return Err("empty versionId".into()),
        Some((key, version)) => (key, Some(version.to_string())),
        None => (path, None),
    };
    if key.is_empty() {
        return Err("no key after the bucket (s3://bucket/key)".into());
    }
    Ok(Target::Object {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

#[cfg(test)]
mod tests {
    use jobrunner_core::config::Format;

    use super::*;

    const CONFIG: &str = r#"
[jobs.thumbs]
task_definition = "t"
container = "app"
cluster = "jobs"
capacity = ["FARGATE"]
subnets = ["subnet-1"]

[jobs.index]
task_definition = "i"
container = "app"
cluster = "jobs"
capacity = ["FARGATE"]
subnets = ["subnet-1"]

[[triggers.s3]]
job = "thumbs"
bucket = "uploads"
prefix = "in/"
suffix = ".jpg"

[[triggers.s3]]
job = "index"
bucket = "uploads"

[[triggers.s3]]
job = "index"
bucket = "uploads"
prefix = "in/"
"#;

    fn object(bucket: &str, key: &str, version: Option<&str>) -> Target {
        Target::Object {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version.map(Into::into),
        }
    }

    #[test]
    fn keys_are_taken_as_written_in_s3() {
        assert_eq!(
            Target::parse("s3://uploads/in/a b+c%20.jpg").unwrap(),
            object("uploads", "in/a b+c%20.jpg", None)
        );
        assert_eq!(
            Target::parse("s3://uploads/in/x?y.jpg?versionId=3HL4kqtJ.lv").unwrap(),
            object("uploads", "in/x?y.jpg", Some("3HL4kqtJ.lv"))
        );
        assert_eq!(
            Target::parse("s3://b/k@2026-11-25T10:00:00Z").unwrap(),
            object("b", "k@2026-11-25T10:00:00Z", None),
            "an '@' in a key is part of the key"
        );
    }

    #[test]
    fn ticks_and_run_ids() {
        assert_eq!(
            Target::parse("hourly-report@2026-11-25T11:00:00+01:00").unwrap(),
            Target::Tick {
                schedule: "hourly-report".into(),
                time: "2026-11-25T10:00:00Z".parse().unwrap()
            }
        );
        assert_eq!(
            Target::parse("0123456789ABCDEF0123").unwrap(),
            Target::RunId("0123456789abcdef0123".into())
        );
    }

    #[test]
    fn malformed_targets_say_what_is_wrong() {
        for (text, why) in [
            ("s3://uploads", "no key"),
            ("s3://uploads/", "no key"),
            ("s3:///k", "no bucket"),
            ("s3://b/k?versionId=", "empty versionId"),
            ("@2026-11-25T10:00:00Z", "no schedule name"),
            ("hourly@yesterday", "not an RFC 3339 time"),
            ("xyz", "not a run id"),
            ("0123456789abcdef012", "not a run id"),
        ] {
            let err = Target::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_tick_names_the_run_the_launcher_makes_for_it() {
        let config = Config::parse(CONFIG, Format::Toml).unwrap();
        let time = "2026-11-25T10:00:00Z".parse().unwrap();
        let tick = Target::Tick {
            schedule: "hourly".into(),
            time,
        };
        assert_eq!(
            tick.run_ids(&config),
            vec![(None, token::run_id(&token::for_tick("hourly", time)))]
        );
    }

    #[test]
    fn a_version_names_one_run_per_job_whose_trigger_takes_the_object() {
        let config = Config::parse(CONFIG, Format::Toml).unwrap();
        assert_eq!(
            jobs_for_object(&config, "uploads", "in/cat.jpg"),
            ["thumbs", "index"]
        );
        assert_eq!(
            jobs_for_object(&config, "uploads", "out/cat.jpg"),
            ["index"]
        );
        assert!(jobs_for_object(&config, "other", "in/cat.jpg").is_empty());

        let launched = ObjectCreated {
            bucket: "uploads".into(),
            key: "in/cat.jpg".into(),
            size: 123,
            etag: Some("e".into()),
            version_id: Some("v1".into()),
            sequencer: Some("0A".into()),
            event_time: "2026-11-25T10:00:00Z".parse().unwrap(),
        };
        let ids = object("uploads", "in/cat.jpg", Some("v1")).run_ids(&config);
        assert_eq!(
            ids,
            vec![
                (
                    Some("thumbs".to_string()),
                    token::run_id(&token::for_object("thumbs", &launched))
                ),
                (
                    Some("index".to_string()),
                    token::run_id(&token::for_object("index", &launched))
                ),
            ]
        );
        assert!(
            object("uploads", "in/cat.jpg", None)
                .run_ids(&config)
                .is_empty()
        );
    }
}
