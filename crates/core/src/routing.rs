//! Routing an object event to a job: the first `[[triggers.s3]]` whose conditions all hold.

use crate::config::{Config, S3Trigger};
use crate::event::ObjectCreated;

/// Returns the first trigger (in config order) that matches `object`.
pub fn route<'c>(config: &'c Config, object: &ObjectCreated) -> Option<&'c S3Trigger> {
    config
        .triggers
        .s3
        .iter()
        .find(|trigger| matches(trigger, object))
}

/// Whether one trigger's bucket, prefix, suffix and size bounds all hold for `object`.
pub fn matches(trigger: &S3Trigger, object: &ObjectCreated) -> bool {
    trigger.bucket == object.bucket
        && object.key.starts_with(&trigger.prefix)
        && object.key.ends_with(&trigger.suffix)
        && trigger.min_size.is_none_or(|min| object.size >= min)
        && trigger.max_size.is_none_or(|max| object.size <= max)
}

/// Why nothing matched, for the skip log and `jobrunner plan`.
pub fn no_match_reason(config: &Config, object: &ObjectCreated) -> String {
    if !config.triggers.s3.iter().any(|t| t.bucket == object.bucket) {
        return format!("no S3 trigger for bucket '{}'", object.bucket);
    }
    format!(
        "no S3 trigger for bucket '{}' matches key {:?} ({} bytes) by prefix, suffix and size",
        object.bucket, object.key, object.size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(job: &str, prefix: &str, suffix: &str) -> S3Trigger {
        S3Trigger {
            job: job.into(),
            bucket: "uploads".into(),
            prefix: prefix.into(),
            suffix: suffix.into(),
            ..Default::default()
        }
    }

    fn object(key: &str, size: u64) -> ObjectCreated {
        ObjectCreated {
            bucket: "uploads".into(),
            key: key.into(),
            size,
            etag: None,
            version_id: None,
            sequencer: Some("1".into()),
            event_time: "2026-11-22T05:00:00Z".parse().unwrap(),
        }
    }

    fn config(triggers: Vec<S3Trigger>) -> Config {
        let mut config = Config::default();
        config.triggers.s3 = triggers;
        config
    }

    #[test]
    fn first_match_wins_in_config_order() {
        let config = config(vec![
            trigger("a", "images/", ".jpg"),
            trigger("b", "images/", ""),
        ]);
        assert_eq!(route(&config, &object("images/x.jpg", 1)).unwrap().job, "a");
        assert_eq!(route(&config, &object("images/x.png", 1)).unwrap().job, "b");
        assert!(route(&config, &object("docs/x.jpg", 1)).is_none());
    }

    #[test]
    fn size_bounds_are_inclusive() {
        let mut t = trigger("a", "", "");
        t.min_size = Some(10);
        t.max_size = Some(20);
        let config = config(vec![t]);
        assert!(route(&config, &object("k", 9)).is_none());
        assert!(route(&config, &object("k", 10)).is_some());
        assert!(route(&config, &object("k", 20)).is_some());
        assert!(route(&config, &object("k", 21)).is_none());
    }

    #[test]
    fn prefix_and_suffix_each_must_hold() {
        let config = config(vec![trigger("a", "images/", ".jpg")]);
        assert!(route(&config, &object("images/x.jpg", 1)).is_some());
        assert!(
            route(&config, &object("other/x.jpg", 1)).is_none(),
            "prefix"
        );
        assert!(
            route(&config, &object("images/x.png", 1)).is_none(),
            "suffix"
        );
        assert!(
            route(&config, &object("x/images/y.jpg", 1)).is_none(),
            "prefix is a prefix"
        );
        assert!(
            route(&config, &object("images/x.jpg.bak", 1)).is_none(),
            "suffix is a suffix"
        );
    }

    #[test]
    fn a_bucket_with_triggers_that_miss_says_why() {
        let config = config(vec![trigger("a", "images/", "")]);
        let reason = no_match_reason(&config, &object("docs/x.txt", 42));
        assert_eq!(
            reason,
            "no S3 trigger for bucket 'uploads' matches key \"docs/x.txt\" (42 bytes) by prefix, suffix and size"
        );
        // Keys are quoted with escapes: a hostile key cannot break the line.
        let reason = no_match_reason(&config, &object("docs/\n\u{202e}x", 1));
        assert!(!reason.contains(['\n', '\u{202e}']), "{reason}");
    }

    #[test]
    fn other_bucket_never_matches() {
        let config = config(vec![trigger("a", "", "")]);
        let mut other = object("k", 1);
        other.bucket = "elsewhere".into();
        assert!(route(&config, &other).is_none());
        assert!(no_match_reason(&config, &other).contains("bucket 'elsewhere'"));
    }
}
