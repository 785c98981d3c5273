//! Any text as the `Message` of an SNS notification, in both shapes SNS delivers (the envelope
//! as an SQS body, and `Records[].Sns` to a Lambda function): decoding never panics, errors are
//! one line, and both shapes decode as the message does on its own.
#![no_main]

use jobrunner_core::event::{Invocation, decode_event, decode_invocation, decode_message};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let envelope = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Subject": "Amazon S3 Notification", "Message": text, "Timestamp": "2026-11-22T05:02:00.512Z"});
    let lambda = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": envelope}]});
    let alone = decode_message(text);
    let via_sqs = decode_message(&envelope.to_string());
    let via_lambda = match decode_invocation(&lambda) {
        Ok(Invocation::Direct(events)) => events,
        other => panic!("an SNS event is a direct delivery: {other:?}"),
    };
    for result in [&via_sqs, &via_lambda] {
        if let Err(e) = result {
            assert!(!e.to_string().contains(['\n', '\r']), "not one line: {e}");
        }
    }
    assert_eq!(via_sqs.is_ok(), via_lambda.is_ok());
    if let (Ok(a), Ok(b)) = (&via_sqs, &via_lambda) {
        assert_eq!(a, b);
    }
    if let (Ok(a), Ok(b)) = (&alone, &via_sqs) {
        assert_eq!(a, b);
    }
    let _ = decode_event(&envelope);
});
