use super::*;

fn load(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn objects(events: Vec<Event>) -> Vec<ObjectCreated> {
    events
        .into_iter()
        .map(|e| match e {
            Event::ObjectCreated(o) => o,
            other => panic!("expected an object, got {other:?}"),
        })
        .collect()
}

fn direct(value: &Value) -> Result<Vec<Event>, Error> {
    match decode_invocation(value).unwrap() {
        Invocation::Direct(events) => events,
        Invocation::SqsBatch(_) => panic!("expected a direct delivery"),
    }
}

#[test]
fn eventbridge_object_created_keeps_the_raw_key() {
    let object = objects(direct(&load("s3-object-created.json")).unwrap()).remove(0);
    assert_eq!(object.bucket, "uploads");
    assert_eq!(object.key, "images/cat.jpg");
    assert_eq!(object.size, 5_242_880);
    assert_eq!(
        object.version_id.as_deref(),
        Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
    );
    assert_eq!(object.sequencer.as_deref(), Some("00617F08299329D189"));
    assert_eq!(object.event_time.to_rfc3339(), "2026-11-22T05:00:00+00:00");
}

#[test]
fn eventbridge_keys_are_never_url_decoded() {
    let object = objects(direct(&load("s3-object-created-unicode-key.json")).unwrap()).remove(0);
    assert_eq!(object.key, "images/summer trip/Ünïcödé café + friends.jpg");
    assert_eq!(object.version_id, None);
}

#[test]
fn classic_notification_keys_are_decoded() {
    let object = objects(direct(&load("s3-notification.json")).unwrap()).remove(0);
    assert_eq!(object.key, "images/holiday photos/café & bar.jpg");
    assert_eq!(object.size, 1_048_576);
}

#[test]
fn sqs_batch_decodes_each_message_on_its_own() {
    let Invocation::SqsBatch(messages) = decode_invocation(&load("sqs-batch-s3.json")).unwrap()
    else {
        panic!("batch")
    };
    assert_eq!(messages.len(), 3);
    assert!(messages[0].events.is_ok());
    assert_eq!(
        messages[1].message_id,
        "2e1424d4-f796-459a-8184-9c92662be6da"
    );
    assert!(
        matches!(&messages[1].events, Err(Error::UnsupportedEvent(reason)) if reason.starts_with("not JSON"))
    );
    assert_eq!(
        objects(messages[2].events.clone().unwrap())[0].key,
        "images/dog.jpg"
    );
}

#[test]
fn classic_notification_inside_sqs() {
    let Invocation::SqsBatch(messages) =
        decode_invocation(&load("sqs-s3-notification.json")).unwrap()
    else {
        panic!("batch")
    };
    assert_eq!(
        objects(messages[0].events.clone().unwrap())[0].key,
        "images/holiday photos/café & bar.jpg"
    );
}

#[test]
fn s3_test_event_is_ignored() {
    let value = serde_json::json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-22T05:00:00Z", "Bucket": "uploads"});
    assert!(matches!(direct(&value).unwrap()[0], Event::Ignored(_)));
}

#[test]
fn scheduled_rule_event_names_the_rule() {
    let value = serde_json::json!({
        "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "account": "1",
        "time": "2026-11-22T06:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/jobrunner-hourly-report"], "detail": {}
    });
    let Event::ScheduleTick(tick) = direct(&value).unwrap().remove(0) else {
        panic!("tick")
    };
    assert_eq!(tick.name, "jobrunner-hourly-report");
    assert_eq!(
        tick.scheduled_time.to_rfc3339(),
        "2026-11-22T06:00:00+00:00"
    );
}

#[test]
fn scheduler_input_is_decoded() {
    let value = serde_json::json!({"source": "jobrunner.scheduler", "schedule": "hourly-report", "scheduled_time": "2026-11-22T06:00:00Z"});
    let Event::ScheduleTick(tick) = direct(&value).unwrap().remove(0) else {
        panic!("tick")
    };
    assert_eq!(tick.name, "hourly-report");
    assert!(matches!(tick.source, TickSource::Scheduler { arn: None }));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let cases = [
        (serde_json::json!([1, 2]), "expected a JSON object"),
        (
            serde_json::json!({"hello": "world"}),
            "not an EventBridge event",
        ),
        (
            serde_json::json!({"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-22T05:00:00Z", "detail": {"bucket": {"name": "b"}}}),
            "object",
        ),
        (
            serde_json::json!({"detail-type": "Object Created", "source": "aws.s3", "time": "yesterday", "detail": {}}),
            "time",
        ),
        (
            serde_json::json!({"detail-type": "Something", "source": "custom.app", "time": "2026-11-22T05:00:00Z"}),
            "'Something' from 'custom.app'",
        ),
        (
            serde_json::json!({"source": "jobrunner.scheduler", "schedule": "s", "scheduled_time": "<aws.scheduler.scheduled-time>"}),
            "RFC 3339",
        ),
    ];
    for (value, expected) in cases {
        let err = direct(&value).unwrap_err().to_string();
        assert!(err.contains(expected), "{value}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

fn object_event(key: &str) -> Value {
    serde_json::json!({"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-22T05:00:00Z",
        "detail": {"bucket": {"name": "uploads"}, "object": {"key": key, "size": 1, "sequencer": "01"}}})
}

#[test]
fn hostile_keys_are_rejected() {
    for key in [
        "",
        "a/../b",
        "..",
        "line\nbreak",
        "bell\u{7}",
        &"k".repeat(1025),
    ] {
        let err = direct(&object_event(key)).unwrap_err();
        assert!(matches!(err, Error::MalformedEvent(_)), "{key:?}: {err}");
    }
    assert!(
        direct(&object_event("a/..b/c")).is_ok(),
        "'..b' is an ordinary segment"
    );
}

#[test]
fn deep_nesting_is_rejected_before_decoding() {
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(
        parse_json(&deep)
            .unwrap_err()
            .to_string()
            .contains("nested deeper")
    );
    assert!(
        parse_json("\"[[[[\"").is_ok(),
        "brackets in strings do not count"
    );
}
