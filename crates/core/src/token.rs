//! Deterministic RunTask `clientToken`s, so that a redelivered event can never start a second
//! task: ECS remembers a token for 24 hours per cluster and returns the original task for it.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::event::ObjectCreated;

/// ECS accepts up to 64 characters of ASCII 33–126.
pub const MAX_LEN: usize = 64;
const PREFIX: &str = "jr1-";

/// The token for launching `job` for one object event. Identity is what both a live S3 event
/// and a bucket listing (`jobrunner backfill`) know of one object state: the version when the
/// bucket is versioned, else the ETag (quotes trimmed, as listings quote it and events do not).
/// So a backfill racing live uploads, or run twice, starts nothing twice; the price is that
/// identical bytes uploaded again under the same key are the same run (within ECS's 24-hour
/// token memory and while the ledger keeps the run; `jobrunner run rerun` starts another).
/// Without either (an event that lacks both), the sequencer and then the event time stand in.
pub fn for_object(job: &str, object: &ObjectCreated) -> String {
    digest(&[
        "s3",
        job,
        &object.bucket,
        &object.key,
        &object_identity(object),
    ])
}

/// The part of an object's token that tells its states apart (see [`for_object`]).
pub fn object_identity(object: &ObjectCreated) -> String {
    let etag = object
        .etag
        .as_deref()
        .map(|e| e.trim_matches('"'))
        .filter(|e| !e.is_empty());
    match (&object.version_id, etag, &object.sequencer) {
        (Some(version), _, _) => format!("v:{version}"),
        (None, Some(etag), _) => format!("e:{etag}"),
        (None, None, Some(sequencer)) => format!("s:{sequencer}"),
        (None, None, None) => format!("t:{}", object.event_time.to_rfc3339()),
    }
}

/// The token of a manual submit: its job, who submitted it and when (to the nanosecond, the
/// CLI's clock). Every delivery of one submit shares it; submitting again makes another.
pub fn for_submit(submit: &crate::event::Submit) -> String {
    digest(&[
        "submit",
        &submit.job,
        &submit.submitted_by,
        &submit
            .submitted_at
            .to_rfc3339_opts(SecondsFormat::Nanos, true),
    ])
}

/// The token for one tick of a schedule: the same for every delivery and retry of the tick.
pub fn for_tick(schedule: &str, scheduled_time: DateTime<Utc>) -> String {
    digest(&[
        "schedule",
        schedule,
        &scheduled_time.to_rfc3339_opts(SecondsFormat::Secs, true),
    ])
}

/// The token of a fallback attempt on another capacity provider: a different request needs a
/// different token, and the same fallback after a redelivery gets the same one.
pub fn for_attempt(base: &str, capacity_provider: &str) -> String {
    digest(&["attempt", base, capacity_provider])
}

/// The token of retry attempt `attempt` of the run whose first token was `base`: the same for
/// every redelivery of the stop that decided it, so one attempt never starts two tasks.
pub fn for_retry(base: &str, attempt: u32) -> String {
    digest(&["retry", base, &attempt.to_string()])
}

/// Characters of a run id.
pub const RUN_ID_LEN: usize = 20;

/// The run id of the run whose first attempt's token is `client_token`: the token's digest,
/// shortened (80 bits). Derived from the run's input, as the token is, so a run is found from
/// its object or tick without a lookup.
pub fn run_id(client_token: &str) -> String {
    let hex = client_token.strip_prefix(PREFIX).unwrap_or(client_token);
    hex.chars().take(RUN_ID_LEN).collect()
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed so that ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut token = String::with_capacity(MAX_LEN);
    token.push_str(PREFIX);
    token.push_str(&hex[..MAX_LEN - PREFIX.len()]);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(version: Option<&str>, sequencer: Option<&str>) -> ObjectCreated {
        ObjectCreated {
            bucket: "uploads".into(),
            key: "images/cat.jpg".into(),
            size: 10,
            etag: Some("abc".into()),
            version_id: version.map(Into::into),
            sequencer: sequencer.map(Into::into),
            event_time: "2026-11-22T05:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn run_ids_are_the_tokens_digest() {
        let token = for_tick("hourly", "2026-11-25T10:00:00Z".parse().unwrap());
        let id = run_id(&token);
        assert_eq!(id.len(), RUN_ID_LEN);
        assert!(token.starts_with(&format!("{PREFIX}{id}")));
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            id,
            run_id(&for_tick("hourly", "2026-11-25T11:00:00Z".parse().unwrap()))
        );
    }

    #[test]
    fn token_fits_ecs_rules() {
        let token = for_object("thumbnails", &object(None, Some("0A1B")));
        assert_eq!(token.len(), MAX_LEN);
        assert!(token.bytes().all(|b| (33..=126).contains(&b)));
    }

    #[test]
    fn redelivery_gives_the_same_token() {
        // What can differ between deliveries of one write (the event's time as stamped by each
        // delivery path, the ETag's quoting, the sequencer, the size as reported) must not
        // change the token.
        let first = object(None, Some("0A1B"));
        let mut again = object(None, Some("0A1C"));
        again.event_time = "2026-11-22T05:00:07Z".parse().unwrap();
        again.etag = Some("\"abc\"".into());
        again.size = 11;
        assert_eq!(for_object("t", &first), for_object("t", &again));
        let (mut versioned, mut versioned_again) = (
            object(Some("v1"), Some("0A")),
            object(Some("v1"), Some("0B")),
        );
        versioned.event_time = "2026-11-22T05:00:01Z".parse().unwrap();
        versioned_again.etag = None;
        assert_eq!(
            for_object("t", &versioned),
            for_object("t", &versioned_again)
        );
    }

    #[test]
    fn a_listing_and_a_live_event_of_one_object_state_share_the_token() {
        // A live EventBridge event: unquoted ETag, a sequencer, the upload's time.
        let live = object(None, Some("00617F08299329D189"));
        // The same object as ListObjectsV2 shows it: quoted ETag, no sequencer, LastModified.
        let mut listed = object(None, None);
        listed.etag = Some("\"abc\"".into());
        listed.event_time = "2026-11-22T05:00:00.731Z".parse().unwrap();
        assert_eq!(for_object("t", &live), for_object("t", &listed));
        assert_eq!(object_identity(&listed), "e:abc");
        // Versioned: the version alone, whatever the ETag.
        let mut listed_version = object(Some("v1"), None);
        listed_version.etag = Some("\"other\"".into());
        assert_eq!(
            for_object("t", &object(Some("v1"), Some("0A"))),
            for_object("t", &listed_version)
        );
    }

    #[test]
    fn every_part_of_the_identity_counts() {
        let base = object(None, Some("0A"));
        let token = for_object("t", &base);
        let mut other_bucket = base.clone();
        other_bucket.bucket = "archive".into();
        assert_ne!(for_object("t", &other_bucket), token, "bucket");
        let mut other_key = base.clone();
        other_key.key = "images/dog.jpg".into();
        assert_ne!(for_object("t", &other_key), token, "key");
        let mut other_etag = base.clone();
        other_etag.etag = Some("def".into());
        assert_ne!(for_object("t", &other_etag), token, "etag");
        // Parts are length-prefixed: moving a character across a boundary changes the token.
        let (mut a, mut b) = (base.clone(), base.clone());
        (a.bucket, a.key) = ("ab".into(), "c".into());
        (b.bucket, b.key) = ("a".into(), "bc".into());
        assert_ne!(for_object("t", &a), for_object("t", &b));
        assert!(token.starts_with("jr1-"));
    }

    #[test]
    fn without_version_or_etag_the_sequencer_then_the_time_identify_the_write() {
        let mut no_etag = object(None, Some("0A"));
        no_etag.etag = None;
        let mut other_sequencer = no_etag.clone();
        other_sequencer.sequencer = Some("0B".into());
        assert_ne!(for_object("t", &no_etag), for_object("t", &other_sequencer));
        assert_eq!(object_identity(&no_etag), "s:0A");
        let mut bare = no_etag.clone();
        bare.sequencer = None;
        let mut later = bare.clone();
        later.event_time = "2026-11-22T05:00:01Z".parse().unwrap();
        assert_ne!(for_object("t", &bare), for_object("t", &later), "time");
        // An empty ETag (or a pair of quotes) is no ETag.
        let mut empty = no_etag.clone();
        empty.etag = Some("\"\"".into());
        assert_eq!(for_object("t", &empty), for_object("t", &no_etag));
    }

    #[test]
    fn other_version_or_content_gives_another_token() {
        assert_ne!(
            for_object("t", &object(Some("v1"), Some("0A"))),
            for_object("t", &object(Some("v2"), Some("0A")))
        );
        // The same bytes written again (same ETag) are the same run: the documented trade-off.
        assert_eq!(
            for_object("t", &object(None, Some("0A"))),
            for_object("t", &object(None, Some("0B")))
        );
        assert_ne!(
            for_object("t", &object(None, Some("0A"))),
            for_object("u", &object(None, Some("0A")))
        );
    }

    #[test]
    fn a_submit_is_its_job_caller_and_time() {
        let submit = crate::event::Submit {
            job: "report".into(),
            submitted_by: "arn:aws:iam::1:user/ana".into(),
            submitted_at: "2026-11-25T10:00:00.000000001Z".parse().unwrap(),
            object: None,
            schedule: None,
            environment: Default::default(),
        };
        let token = for_submit(&submit);
        assert_eq!(token.len(), MAX_LEN);
        let mut redelivered = submit.clone();
        redelivered.environment.insert("A".into(), "1".into());
        assert_eq!(for_submit(&redelivered), token);
        let mut again = submit.clone();
        again.submitted_at = "2026-11-25T10:00:00.000000002Z".parse().unwrap();
        assert_ne!(
            for_submit(&again),
            token,
            "a nanosecond later is another submit"
        );
        let mut other = submit.clone();
        other.submitted_by = "arn:aws:iam::1:user/bo".into();
        assert_ne!(for_submit(&other), token);
    }

    #[test]
    fn attempts_and_ticks_differ() {
        let base = for_tick("hourly", "2026-11-22T05:00:00Z".parse().unwrap());
        assert_eq!(
            base,
            for_tick("hourly", "2026-11-22T05:00:00Z".parse().unwrap())
        );
        assert_ne!(
            base,
            for_tick("hourly", "2026-11-22T06:00:00Z".parse().unwrap())
        );
        assert_ne!(
            base,
            for_tick("daily", "2026-11-22T05:00:00Z".parse().unwrap())
        );
        assert_ne!(for_attempt(&base, "FARGATE"), base);
        assert_eq!(for_attempt(&base, "FARGATE").len(), MAX_LEN);
        assert_eq!(for_attempt(&base, "FARGATE"), for_attempt(&base, "FARGATE"));
        assert_ne!(
            for_attempt(&base, "FARGATE"),
            for_attempt(&base, "FARGATE_SPOT")
        );
        let other = for_tick("hourly", "2026-11-22T06:00:00Z".parse().unwrap());
        assert_ne!(
            for_attempt(&base, "FARGATE"),
            for_attempt(&other, "FARGATE")
        );
        // Sub-second parts of a tick's time do not make another tick.
        assert_eq!(
            base,
            for_tick("hourly", "2026-11-22T05:00:00.000Z".parse().unwrap())
        );
    }
}
