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
            "\"Something\" from \"custom.app\"",
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
fn rule_ticks_need_a_rule_name_of_at_most_64_characters() {
    let tick = |name: &str| {
        serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-22T05:00:00Z", "detail": {},
            "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{name}")]})
    };
    let longest = "r".repeat(64);
    assert!(
        matches!(&direct(&tick(&longest)).unwrap()[..], [Event::ScheduleTick(t)] if t.name == longest)
    );
    for name in ["", &"r".repeat(65), "bad name"] {
        assert!(
            error_of(&tick(name)).contains("does not end in a rule name"),
            "{name:?}"
        );
    }
}

#[test]
fn unversioned_objects_have_no_version() {
    // S3 reports "null" for objects of unversioned buckets; neither it nor "" is a version.
    for (reported, kept) in [("null", None), ("", None), ("v1", Some("v1"))] {
        let mut event = object_event("images/cat.jpg");
        event["detail"]["object"]["version-id"] = reported.into();
        let object = objects(direct(&event).unwrap()).remove(0);
        assert_eq!(object.version_id.as_deref(), kept, "{reported:?}");
    }
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
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(
        parse_json(&nested(MAX_DEPTH)).is_ok(),
        "the limit itself is allowed"
    );
    assert!(parse_json(&nested(MAX_DEPTH + 1)).is_err());
}

#[test]
fn nesting_is_counted_outside_strings_only() {
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let brackets = "[".repeat(MAX_DEPTH + 10);
    // Brackets inside a string, after an escaped quote too, are text.
    assert!(parse_json(&format!(r#"["{brackets}"]"#)).is_ok());
    assert!(parse_json(&format!(r#"["a\"{brackets}"]"#)).is_ok());
    assert!(parse_json(&format!(r#"["a\\", "{brackets}"]"#)).is_ok());
    // A string ends at its closing quote: nesting after it counts.
    assert!(parse_json(&format!(r#"["x", {}]"#, deep(MAX_DEPTH))).is_err());
    // Depth is the deepest point, not the number of brackets: siblings do not add up.
    let siblings = format!("[{}, {}]", deep(MAX_DEPTH - 1), deep(MAX_DEPTH - 1));
    assert!(parse_json(&siblings).is_ok());
}

#[test]
fn a_payload_that_is_not_an_object_is_named() {
    for (payload, kind) in [
        ("null", "null"),
        ("true", "a boolean"),
        ("3", "a number"),
        (r#""s3""#, "a string"),
        ("[]", "an array"),
    ] {
        let value = parse_json(payload).unwrap();
        assert_eq!(
            decode_event(&value).unwrap_err().to_string(),
            format!("unsupported event: expected a JSON object, got {kind}")
        );
    }
}

fn batch(value: &Value) -> Vec<SqsMessage> {
    match decode_invocation(value).unwrap() {
        Invocation::SqsBatch(messages) => messages,
        Invocation::Direct(_) => panic!("expected an SQS batch"),
    }
}

fn error_of(value: &Value) -> String {
    let err = direct(value).unwrap_err().to_string();
    assert!(!err.contains(['\n', '\r']), "one line: {err}");
    err
}

#[test]
fn destination_records_unwrap_to_the_original_event() {
    let original = direct(&load("schedule-scheduler-input.json")).unwrap();
    assert!(matches!(original[0], Event::ScheduleTick(_)));
    assert_eq!(
        direct(&load("lambda-destination-schedule.json")).unwrap(),
        original
    );
    // The redrive path: the dead-letter queue's message moved back to the launcher's queue.
    let messages = batch(&load("sqs-lambda-destination-schedule.json"));
    assert_eq!(messages[0].events.clone().unwrap(), original);
}

#[test]
fn destination_records_of_an_eventbridge_event_unwrap_too() {
    let event = object_event("images/cat.jpg");
    let record = serde_json::json!({"version": "1.0", "requestContext": {"condition": "EventAgeExceeded"},
        "requestPayload": event, "responseContext": {"statusCode": 200}});
    assert_eq!(direct(&record).unwrap(), direct(&event).unwrap());
}

#[test]
fn bad_destination_records_say_what_is_wrong() {
    let err = error_of(
        &serde_json::json!({"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": "x"}),
    );
    assert!(
        err.contains("requestPayload") && err.contains("RetriesExhausted"),
        "{err}"
    );
    let err = error_of(&serde_json::json!({"requestContext": 5, "requestPayload": {}}));
    assert!(
        err.contains("Lambda destination record: requestContext"),
        "{err}"
    );
    // A wrapped event that is itself bad fails as that event would.
    let err =
        error_of(&serde_json::json!({"requestContext": {}, "requestPayload": {"hello": "world"}}));
    assert!(err.contains("not an EventBridge event"), "{err}");
}

#[test]
fn errors_quoting_the_event_stay_on_one_line() {
    // Found by the decode_destination and decode_sns fuzz targets: an unknown field whose
    // name holds a line break was quoted verbatim in the error.
    let request = serde_json::json!({"source": "jobrunner.retry", "run_id": "a1", "attempt": 2,
        "not_before": "2026-11-26T01:00:00Z", "at\r\ntempt\u{2028}\u{1b}[31m": 1});
    let err = error_of(&request);
    assert!(
        err.contains(r"unknown field `at\r\ntempt\u{2028}\u{1b}[31m`"),
        "{err}"
    );
    // A value quoted by serde (an invalid time) too.
    let mut request = request;
    request
        .as_object_mut()
        .unwrap()
        .remove("at\r\ntempt\u{2028}\u{1b}[31m");
    request["not_before"] = "2026\n-11-26".into();
    assert!(error_of(&request).contains("not_before"));
}

#[test]
fn only_both_fields_make_a_destination_record() {
    // An API Gateway event has a requestContext too; neither field alone is a record.
    for value in [
        serde_json::json!({"requestContext": {"condition": "RetriesExhausted"}, "body": "{}"}),
        serde_json::json!({"requestPayload": {}, "version": "1.0"}),
    ] {
        let err = error_of(&value);
        assert!(
            !err.contains("destination record:") && err.contains("not an EventBridge event"),
            "{err}"
        );
    }
}

#[test]
fn retry_requests_need_a_plain_run_id_and_a_second_attempt_or_later() {
    let request = |run_id: &str, attempt: u32| {
        serde_json::json!({"source": "jobrunner.retry", "run_id": run_id, "attempt": attempt,
            "not_before": "2026-11-26T01:00:00Z"})
    };
    let ok = |run_id: &str, attempt: u32| match &direct(&request(run_id, attempt)) {
        Ok(events) => {
            matches!(&events[..], [Event::Retry(r)] if r.run_id == run_id && r.attempt == attempt)
        }
        Err(_) => false,
    };
    assert!(ok("a1b2c3", 2));
    assert!(ok(&"f".repeat(64), 10), "64 characters is the limit");
    for (run_id, attempt) in [
        ("a1b2c3", 1),
        ("a1b2c3", 0),
        ("", 2),
        (&"f".repeat(65) as &str, 2),
        ("a1b2/c3", 2),
        ("a1b2 c3", 2),
    ] {
        let err = error_of(&request(run_id, attempt));
        assert!(
            err.contains("jobrunner retry request: run_id"),
            "{run_id:?} {attempt}: {err}"
        );
    }
}

#[test]
fn envelopes_cannot_nest_without_bound() {
    let mut value = load("schedule-scheduler-input.json");
    for _ in 0..3 {
        value = serde_json::json!({"requestContext": {}, "requestPayload": value});
    }
    assert!(direct(&value).is_ok(), "three envelopes are fine");
    value = serde_json::json!({"requestContext": {}, "requestPayload": value});
    assert!(error_of(&value).contains("more than 3 envelopes"));
}

#[test]
fn s3_notifications_through_sns_are_decoded() {
    let expected = objects(direct(&load("s3-notification.json")).unwrap());
    assert_eq!(expected[0].key, "images/holiday photos/café & bar.jpg");
    // SNS → Lambda.
    assert_eq!(
        objects(direct(&load("sns-s3-notification.json")).unwrap()),
        expected
    );
    // SNS → SQS (raw message delivery off): the body is the SNS envelope.
    let messages = batch(&load("sqs-sns-s3-notification.json"));
    assert_eq!(objects(messages[0].events.clone().unwrap()), expected);
}

#[test]
fn sns_envelopes_without_an_event() {
    let confirmation = serde_json::json!({"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": "You have chosen to subscribe", "SubscribeURL": "https://example.invalid/"});
    let events = direct(&confirmation).unwrap();
    assert!(
        matches!(&events[0], Event::Ignored(reason) if reason.contains("SubscriptionConfirmation")),
        "{events:?}"
    );
    let test_event = serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#});
    assert!(matches!(direct(&test_event).unwrap()[0], Event::Ignored(_)));
    let no_message =
        serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t"});
    assert!(error_of(&no_message).contains("has no 'Message'"));
    let not_json = serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "hello"});
    assert!(error_of(&not_json).contains("SNS message: not JSON"));
}

#[test]
fn an_sqs_event_inside_an_sqs_message_is_named() {
    let inner = load("sqs-s3-notification.json");
    let outer = serde_json::json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs", "body": inner.to_string()}]});
    let messages = batch(&outer);
    let err = messages[0].events.clone().unwrap_err().to_string();
    assert!(err.contains("an SQS event inside an event"), "{err}");
    assert!(error_of(&serde_json::json!({"Records": []})).contains("non-empty array"));
    assert!(
        error_of(&serde_json::json!({"Records": [{"eventSource": "aws:kinesis"}]}))
            .contains("\"aws:kinesis\"")
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let text = format!(
        "\u{feff}{}",
        std::fs::read_to_string(format!(
            "{}/../../events/s3-object-created.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    );
    let Invocation::Direct(events) = decode_invocation_text(&text).unwrap() else {
        panic!("direct")
    };
    assert_eq!(objects(events.unwrap())[0].key, "images/cat.jpg");
    // Also in an SQS message body.
    let body = format!("\u{feff}{}", object_event("images/dog.jpg"));
    assert_eq!(
        objects(decode_message(&body).unwrap())[0].key,
        "images/dog.jpg"
    );
}

#[test]
fn a_created_object_without_a_size_is_malformed() {
    let mut event = object_event("images/cat.jpg");
    event["detail"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("size");
    let err = direct(&event).unwrap_err();
    assert!(matches!(err, Error::MalformedEvent(_)), "{err}");
    assert!(err.to_string().contains("object.size is missing"), "{err}");
    event["detail"]["object"]["size"] = Value::Null;
    assert!(error_of(&event).contains("object.size is missing"));
    event["detail"]["object"]["size"] = 0.into();
    assert_eq!(
        objects(direct(&event).unwrap())[0].size,
        0,
        "a real empty object"
    );

    let mut notification = load("s3-notification.json");
    notification["Records"][0]["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("size");
    let err = error_of(&notification);
    assert!(
        err.contains("Records[0].s3.object.size is missing"),
        "{err}"
    );
    // Events other than ObjectCreated carry no size and are not an error.
    notification["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
    assert!(matches!(
        direct(&notification).unwrap()[0],
        Event::Ignored(_)
    ));
}

fn notification_with_key(key: &str) -> Value {
    let mut notification = load("s3-notification.json");
    notification["Records"][0]["s3"]["object"]["key"] = key.into();
    notification
}

#[test]
fn invalid_percent_escapes_in_notification_keys_are_rejected() {
    for key in ["100%", "a%zzb", "a%2", "%%41", "x%G0"] {
        let err = error_of(&notification_with_key(key));
        assert!(err.contains("invalid %-escape"), "{key}: {err}");
    }
    for (key, decoded) in [
        ("100%25", "100%"),
        ("a%2Fb", "a/b"),
        ("caf%c3%a9", "café"),
        ("a+b%2Bc", "a b+c"),
    ] {
        let object = objects(direct(&notification_with_key(key)).unwrap()).remove(0);
        assert_eq!(object.key, decoded, "{key}");
    }
    // Escapes that decode to something a key must not hold are still refused.
    assert!(error_of(&notification_with_key("a%0Ab")).contains("control characters"));
    assert!(error_of(&notification_with_key("%FF")).contains("not valid URL-encoded UTF-8"));
}

#[test]
fn format_characters_in_keys_are_carried_as_data() {
    // Bidi overrides and zero-width characters are legal in S3 keys and in a container's argv
    // and environment: the object is launched under its exact key (alerts escape them).
    for key in [
        "images/\u{202e}gpj.exe",
        "images/zero\u{200b}width.jpg",
        "images/👨\u{200d}👩\u{200d}👧.jpg",
    ] {
        assert_eq!(objects(direct(&object_event(key)).unwrap())[0].key, key);
    }
    let encoded = notification_with_key("images/%E2%80%AEgpj.exe");
    assert_eq!(
        objects(direct(&encoded).unwrap())[0].key,
        "images/\u{202e}gpj.exe"
    );
}

#[test]
fn errors_quote_what_they_echo_on_one_line() {
    let cases = [
        serde_json::json!({"detail-type": "Line\nbreak", "source": "x\ry", "time": "2026-11-22T05:00:00Z"}),
        serde_json::json!({"source": "jobrunner.scheduler", "schedule": "s", "scheduled_time": "a\nb"}),
        serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-22T05:00:00Z",
            "resources": ["arn:aws:events:us-east-1:1:rule/\n"]}),
        serde_json::json!({"Records": [{"eventSource": "aws:\u{2028}s3x"}]}),
        notification_with_key("bad%\nkey"),
    ];
    for case in cases {
        error_of(&case);
    }
}

#[test]
fn an_sns_delivery_is_one_wrapping_in_either_shape() {
    // The SNS → Lambda sample published once more through SNS: two SNS deliveries in each shape.
    let message = load("sns-s3-notification.json").to_string();
    let envelope = serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": message});
    let record = serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": envelope}]});
    let expected = objects(direct(&load("s3-notification.json")).unwrap());
    assert_eq!(objects(direct(&envelope).unwrap()), expected);
    assert_eq!(objects(direct(&record).unwrap()), expected);
    let not_envelope =
        serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]});
    assert!(error_of(&not_envelope).contains("SNS envelope"));
}
