//! Any JSON as the `requestPayload` of a Lambda on-failure destination record, delivered
//! directly and as an SQS message body (the redrive path): decoding never panics, errors are
//! one line, and the record decodes exactly as its payload does on its own.
#![no_main]

use jobrunner_core::event::{Invocation, decode_event, decode_invocation, parse_json};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(payload) = parse_json(text) else { return };
    let record = json!({"version": "1.0", "timestamp": "2026-11-22T06:03:12.412Z",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": payload, "responseContext": {"statusCode": 200}});
    let direct = decode_event(&payload);
    let unwrapped = decode_event(&record);
    if let Err(e) = &unwrapped {
        assert!(!e.to_string().contains(['\n', '\r']), "not one line: {e}");
    }
    if payload.is_object() {
        // One envelope more than the payload has: the same events, or both fail.
        match (&direct, &unwrapped) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => {
                // Only the wrapping limit may tell them apart.
                let limit = format!("{a:?}{b:?}").contains("more than 3 envelopes");
                assert!(limit, "payload {a:?} but record {b:?}");
            }
        }
    }
    let batch = json!({"Records": [{"messageId": "m", "eventSource": "aws:sqs", "body": record.to_string()}]});
    match decode_invocation(&batch) {
        Ok(Invocation::SqsBatch(messages)) => assert_eq!(messages.len(), 1),
        other => panic!("an SQS batch decodes as one: {other:?}"),
    }
});
