//! Property tests: decoding never panics, templating never interprets values, keys survive
//! classic-notification encoding, and tokens always fit ECS.

use chrono::{DateTime, TimeZone, Utc};
use jobrunner_core::event::{self, Event, ObjectCreated};
use jobrunner_core::template::{self, Vars};
use jobrunner_core::token;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;

fn object(
    bucket: &str,
    key: &str,
    version: Option<String>,
    sequencer: Option<String>,
) -> ObjectCreated {
    ObjectCreated {
        bucket: bucket.into(),
        key: key.into(),
        size: 1,
        etag: None,
        version_id: version,
        sequencer,
        event_time: Utc.timestamp_opt(1_795_000_000, 0).unwrap(),
    }
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("aws.s3"),
            Just("Object Created"),
            Just("aws:sqs"),
            Just("jobrunner.scheduler"),
            Just("Records")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("detail-type".to_string()),
                    Just("source".to_string()),
                    Just("detail".to_string()),
                    Just("Records".to_string()),
                    Just("body".to_string()),
                    Just("eventSource".to_string()),
                    Just("time".to_string()),
                    Just("s3".to_string()),
                    Just("object".to_string()),
                    Just("key".to_string()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = event::decode_invocation_text(&text);
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(value in json_value()) {
        let _ = event::decode_invocation(&value);
        let _ = event::decode_message(&value.to_string());
    }

    #[test]
    fn classic_notification_keys_round_trip(key in "[^\\x00-\\x1f\\x7f]{1,200}") {
        // S3 form-encodes keys in classic notifications: spaces as '+', the rest as %XX.
        let encoded = utf8_percent_encode(&key, NON_ALPHANUMERIC).to_string().replace("%20", "+");
        prop_assert_eq!(event::s3::decode_notification_key(&encoded).unwrap(), key);
    }

    #[test]
    fn eventbridge_keys_are_taken_verbatim(key in "[a-zA-Z0-9 +%&=?._-]{1,100}") {
        prop_assume!(key != "..", "a '..' segment is rejected on purpose");
        let value = serde_json::json!({"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-22T05:00:00Z",
            "detail": {"bucket": {"name": "b"}, "object": {"key": key.clone(), "size": 1}}});
        let events = event::decode_event(&value).unwrap();
        prop_assert!(matches!(&events[0], Event::ObjectCreated(o) if o.key == key));
    }

    #[test]
    fn placeholder_values_are_never_interpreted(value in ".{0,200}") {
        let vars = Vars::from([("key", value.clone())]);
        prop_assert_eq!(template::render("{key}", &vars).unwrap(), value.clone());
        prop_assert_eq!(template::render("pre-{key}-post", &vars).unwrap(), format!("pre-{value}-post"));
    }

    #[test]
    fn rendering_arbitrary_templates_never_panics(template in ".{0,100}") {
        let vars = Vars::from([("key", "k".to_string()), ("bucket", "b".to_string())]);
        let _ = template::render(&template, &vars);
        let _ = template::check(&template, template::S3_PLACEHOLDERS);
    }

    #[test]
    fn tokens_always_fit_ecs(job in "[a-z]{1,64}", bucket in ".{1,63}", key in ".{1,1024}", version in proptest::option::of(".{1,40}"), sequencer in proptest::option::of("[0-9A-F]{1,20}")) {
        let token = token::for_object(&job, &object(&bucket, &key, version, sequencer));
        prop_assert_eq!(token.len(), token::MAX_LEN);
        prop_assert!(token.bytes().all(|b| (33..=126).contains(&b)));
    }

    #[test]
    fn tokens_separate_distinct_objects(key_a in "[a-z/]{1,30}", key_b in "[a-z/]{1,30}", sequencer in "[0-9A-F]{4,20}") {
        let a = token::for_object("job", &object("b", &key_a, None, Some(sequencer.clone())));
        let b = token::for_object("job", &object("b", &key_b, None, Some(sequencer)));
        prop_assert_eq!(a == b, key_a == key_b);
    }

    #[test]
    fn tick_tokens_are_stable_and_distinct(schedule in "[a-z-]{1,40}", a in 0i64..4_000_000_000, b in 0i64..4_000_000_000) {
        let time = |s: i64| -> DateTime<Utc> { Utc.timestamp_opt(s, 0).unwrap() };
        prop_assert_eq!(token::for_tick(&schedule, time(a)), token::for_tick(&schedule, time(a)));
        prop_assert_eq!(token::for_tick(&schedule, time(a)) == token::for_tick(&schedule, time(b)), a == b);
    }
}
