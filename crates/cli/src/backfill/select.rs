//! Which listed objects a backfill launches, and the tally of what it did: pure, so the
//! command's arguments and the routing are tested without S3.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use jobrunner_aws::s3::ListedObject;
use jobrunner_core::event::ObjectCreated;
use jobrunner_core::{Config, routing};
use serde::Serialize;

/// `s3://bucket/prefix` split; the prefix may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

impl Location {
    pub fn parse(text: &str) -> Result<Location, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| "expected s3://bucket/prefix".to_string())?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("no bucket name after s3://".into());
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(format!("'{bucket}' is not an S3 bucket name"));
        }
        Ok(Location {
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }
}

/// Why a listed object starts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// No `[[triggers.s3]]` matches it (bucket, prefix, suffix, size).
    NoTrigger,
    /// A trigger routes it to a job other than `--job`.
    OtherJob,
    /// Last modified before `--since`.
    BeforeSince,
    /// Last modified at or after `--until`.
    AfterUntil,
    /// The launcher refuses it as an event (e.g. a key with a `..` segment).
    Refused,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NoTrigger => "no trigger matches",
            SkipReason::OtherJob => "routed to another job",
            SkipReason::BeforeSince => "modified before --since",
            SkipReason::AfterUntil => "modified at or after --until",
            SkipReason::Refused => "not a valid object event",
        })
    }
}

/// What to launch: a job (or any routed job) and a window of modification times.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub job: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One object's fate.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// The event the live upload would have sent, and the job it routes to.
    Launch {
        job: String,
        object: ObjectCreated,
    },
    Skip(SkipReason),
}

/// Decides for one listed object of `bucket`, routing exactly as the launcher does.
pub fn choose(config: &Config, bucket: &str, filter: &Filter, listed: &ListedObject) -> Choice {
    let modified = listed.last_modified;
    if let (Some(since), Some(modified)) = (filter.since, modified)
        && modified < since
    {
        return Choice::Skip(SkipReason::BeforeSince);
    }
    if let (Some(until), Some(modified)) = (filter.until, modified)
        && modified >= until
    {
        return Choice::Skip(SkipReason::AfterUntil);
    }
    let object = ObjectCreated {
        bucket: bucket.into(),
        key: listed.key.clone(),
        size: listed.size,
        etag: listed.etag.clone(),
        version_id: listed.version_id.clone(),
        sequencer: None,
        event_time: modified.unwrap_or_default(),
    };
    // Through the launcher's own decoder: what it would refuse is skipped here.
    let document =
        jobrunner_core::event::encode(&jobrunner_core::event::Event::ObjectCreated(object.clone()));
    match document.map(|d| jobrunner_core::event::decode_event(&d)) {
        Some(Ok(events)) if events.len() == 1 => {}
        _ => return Choice::Skip(SkipReason::Refused),
    }
    let Some(trigger) = routing::route(config, &object) else {
        return Choice::Skip(SkipReason::NoTrigger);
    };
    if filter.job.as_ref().is_some_and(|job| *job != trigger.job) {
        return Choice::Skip(SkipReason::OtherJob);
    }
    Choice::Launch {
        job: trigger.job.clone(),
        object,
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub listed: u64,
    pub routed: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Messages the launcher's queue took (0 on a dry run).
    pub sent: u64,
    /// Routed objects per job.
    pub jobs: BTreeMap<String, u64>,
}

impl Tally {
    pub fn count(&mut self, choice: &Choice) {
        self.listed += 1;
        match choice {
            Choice::Launch { job, .. } => {
                self.routed += 1;
                *self.jobs.entry(job.clone()).or_default() += 1;
            }
            Choice::Skip(reason) => *self.skipped.entry(*reason).or_default() += 1,
        }
    }

    /// One line: `listed 2500, routed 1500 (thumbnails 1000, index 500), skipped 1000 (no
    /// trigger matches 1000), sent 1500`.
    pub fn line(&self) -> String {
        let list = |items: Vec<String>| {
            if items.is_empty() {
                String::new()
            } else {
                format!(" ({})", items.join(", "))
            }
        };
        let skipped: u64 = self.skipped.values().sum();
        format!(
            "listed {}, routed {}{}, skipped {}{}, sent {}",
            self.listed,
            self.routed,
            list(self.jobs.iter().map(|(j, n)| format!("{j} {n}")).collect()),
            skipped,
            list(
                self.skipped
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect()
            ),
            self.sent
        )
    }
}

/// The resume point: the last key whose every routed version the queue has taken. Keys come
/// in listing order; a key is complete once the next key is listed and every message queued
/// up to then is sent.
#[derive(Debug, Default)]
pub struct Resume {
    /// Keys listed in full, with the count of messages queued when they were.
    pending: std::collections::VecDeque<(String, u64)>,
    current: Option<String>,
    queued: u64,
    done: Option<String>,
}

impl Resume {
    /// Notes a listed object (whether it is sent or skipped).
    pub fn listed(&mut self, key: &str, queued: bool) {
        if self.current.as_deref() != Some(key)
            && let Some(previous) = self.current.replace(key.to_string())
        {
            self.pending.push_back((previous, self.queued));
        }
        if queued {
            self.queued += 1;
        }
    }

    /// The listing ended: the last key is complete once its messages are sent.
    pub fn finished_listing(&mut self) {
        if let Some(last) = self.current.take() {
            self.pending.push_back((last, self.queued));
        }
    }

    /// `sent` messages (in queue order) were taken by the queue.
    pub fn sent(&mut self, sent: u64) {
        while let Some((_, needed)) = self.pending.front() {
            if *needed > sent {
                break;
            }
            self.done = self.pending.pop_front().map(|(key, _)| key);
        }
    }

    /// The key to pass to `--start-after` to go on.
    pub fn point(&self) -> Option<&str> {
        self.done.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use jobrunner_core::config::Format;

    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
[jobs.index]
task_definition = "index"
container = "app"
[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"
suffix = ".jpg"
[[triggers.s3]]
job = "index"
bucket = "uploads"
prefix = "docs/"
max_size = 1000
"#,
            Format::Toml,
        )
        .unwrap()
    }

    fn listed(key: &str, size: u64, modified: &str) -> ListedObject {
        ListedObject {
            key: key.into(),
            size,
            etag: Some("abc".into()),
            version_id: None,
            last_modified: Some(modified.parse().unwrap()),
            is_latest: true,
        }
    }

    #[test]
    fn locations_need_the_scheme_and_a_bucket() {
        assert_eq!(
            Location::parse("s3://uploads/images/2026/").unwrap(),
            Location {
                bucket: "uploads".into(),
                prefix: "images/2026/".into()
            }
        );
        assert_eq!(Location::parse("s3://uploads").unwrap().prefix, "");
        assert!(
            Location::parse("uploads/images")
                .unwrap_err()
                .contains("s3://")
        );
        assert!(
            Location::parse("s3:///images")
                .unwrap_err()
                .contains("bucket")
        );
        assert!(
            Location::parse("s3://Up Loads/x")
                .unwrap_err()
                .contains("bucket name")
        );
    }

    #[test]
    fn objects_route_as_live_events_do_and_the_filters_skip_with_a_reason() {
        let config = config();
        let at = "2026-11-20T10:00:00Z";
        let all = Filter::default();
        let choice = choose(&config, "uploads", &all, &listed("images/a.jpg", 5, at));
        let Choice::Launch { job, object } = choice else {
            panic!("routed")
        };
        assert_eq!(job, "thumbnails");
        assert_eq!(object.event_time, at.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(object.sequencer, None);
        let skip = |filter: &Filter, object: ListedObject| match choose(
            &config, "uploads", filter, &object,
        ) {
            Choice::Skip(reason) => Some(reason),
            Choice::Launch { .. } => None,
        };
        assert_eq!(
            skip(&all, listed("images/a.png", 5, at)),
            Some(SkipReason::NoTrigger)
        );
        assert_eq!(
            skip(&all, listed("docs/big.pdf", 5000, at)),
            Some(SkipReason::NoTrigger)
        );
        assert_eq!(
            skip(&all, listed("docs/../x", 5, at)),
            Some(SkipReason::Refused)
        );
        let only_index = Filter {
            job: Some("index".into()),
            ..Filter::default()
        };
        assert_eq!(
            skip(&only_index, listed("images/a.jpg", 5, at)),
            Some(SkipReason::OtherJob)
        );
        assert_eq!(skip(&only_index, listed("docs/a.pdf", 5, at)), None);
        let window = Filter {
            since: Some("2026-11-20T00:00:00Z".parse().unwrap()),
            until: Some("2026-11-21T00:00:00Z".parse().unwrap()),
            ..Filter::default()
        };
        assert_eq!(
            skip(&window, listed("images/a.jpg", 5, "2026-11-19T23:59:59Z")),
            Some(SkipReason::BeforeSince)
        );
        assert_eq!(
            skip(&window, listed("images/a.jpg", 5, "2026-11-21T00:00:00Z")),
            Some(SkipReason::AfterUntil)
        );
        assert_eq!(
            skip(&window, listed("images/a.jpg", 5, "2026-11-20T00:00:00Z")),
            None
        );
    }

    #[test]
    fn the_tally_counts_by_job_and_reason() {
        let mut tally = Tally::default();
        let object = ObjectCreated {
            bucket: "b".into(),
            key: "k".into(),
            size: 1,
            etag: None,
            version_id: None,
            sequencer: None,
            event_time: Utc::now(),
        };
        tally.count(&Choice::Launch {
            job: "a".into(),
            object,
        });
        tally.count(&Choice::Skip(SkipReason::NoTrigger));
        tally.count(&Choice::Skip(SkipReason::NoTrigger));
        tally.sent = 1;
        assert_eq!(
            tally.line(),
            "listed 3, routed 1 (a 1), skipped 2 (no trigger matches 2), sent 1"
        );
    }

    #[test]
    fn the_resume_point_is_the_last_key_whose_messages_are_all_sent() {
        let mut resume = Resume::default();
        // Key a: two versions queued; b: skipped; c: one queued.
        resume.listed("a", true);
        resume.listed("a", true);
        resume.listed("b", false);
        resume.listed("c", true);
        resume.sent(1);
        assert_eq!(resume.point(), None, "a has a version unsent");
        resume.sent(2);
        // b is complete too (it needed nothing more); c is still being listed.
        assert_eq!(resume.point(), Some("b"));
        resume.finished_listing();
        assert_eq!(resume.point(), Some("b"));
        resume.sent(3);
        assert_eq!(resume.point(), Some("c"));
    }
}
