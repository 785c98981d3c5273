//! Writing a decoded event back as an event document: how the launcher puts an event that
//! waits at its job's cap back in its queue. The document decodes to the same event, so the
//! run id, clientToken and place in line stay the same however long it waits.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::tick::SCHEDULER_SOURCE;
use super::{Event, ObjectCreated, ScheduleTick, TickSource};

/// The event as a document [`super::decode_event`] reads back to it; `None` for events the
/// launcher never holds (task state changes, ignored events).
pub fn encode(event: &Event) -> Option<Value> {
    match event {
        Event::ObjectCreated(object) => Some(object_created(object)),
        Event::ScheduleTick(tick) => Some(schedule_tick(tick)),
        Event::Retry(request) => Some(request.to_document()),
        Event::Submit(submit) => Some(submit.to_document()),
        Event::TaskStateChange(_) | Event::Ignored(_) => None,
    }
}

fn object_created(object: &ObjectCreated) -> Value {
    let mut detail_object = json!({"key": object.key, "size": object.size});
    for (name, value) in [
        ("etag", &object.etag),
        ("version-id", &object.version_id),
        ("sequencer", &object.sequencer),
    ] {
        if let Some(value) = value {
            detail_object[name] = Value::String(value.clone());
        }
    }
    json!({
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": object.event_time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "resources": [format!("arn:aws:s3:::{}", object.bucket)],
        "detail": {"version": "0", "bucket": {"name": object.bucket}, "object": detail_object},
    })
}

fn schedule_tick(tick: &ScheduleTick) -> Value {
    let time = tick
        .scheduled_time
        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
    match &tick.source {
        TickSource::Rule { arn } => json!({
            "version": "0",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": time,
            "resources": [arn],
            "detail": {},
        }),
        TickSource::Scheduler { arn } => {
            let mut input = json!({
                "source": SCHEDULER_SOURCE,
                "schedule": tick.name,
                "scheduled_time": time,
            });
            if let Some(arn) = arn {
                input["schedule_arn"] = Value::String(arn.clone());
            }
            input
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode_event;
    use super::*;

    fn round_trip(event: &Event) -> Event {
        let document = encode(event).unwrap();
        let mut events = decode_event(&document).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn objects_and_ticks_decode_back_to_themselves() {
        let object = Event::ObjectCreated(ObjectCreated {
            bucket: "uploads".into(),
            key: "images/a b+c%20é.jpg".into(),
            size: 1234,
            etag: Some("abc".into()),
            version_id: Some("v1".into()),
            sequencer: Some("0A1B".into()),
            event_time: "2026-11-25T10:00:00.123Z".parse().unwrap(),
        });
        assert_eq!(round_trip(&object), object);
        let bare = Event::ObjectCreated(ObjectCreated {
            etag: None,
            version_id: None,
            sequencer: None,
            size: 0,
            ..match &object {
                Event::ObjectCreated(o) => o.clone(),
                _ => unreachable!(),
            }
        });
        assert_eq!(round_trip(&bare), bare);
        let rule = Event::ScheduleTick(ScheduleTick {
            name: "jobrunner-hourly".into(),
            scheduled_time: "2026-11-25T10:00:00Z".parse().unwrap(),
            source: TickSource::Rule {
                arn: "arn:aws:events:us-east-1:123456789012:rule/jobrunner-hourly".into(),
            },
        });
        assert_eq!(round_trip(&rule), rule);
        for arn in [
            None,
            Some("arn:aws:scheduler:us-east-1:1:schedule/default/h".to_string()),
        ] {
            let scheduler = Event::ScheduleTick(ScheduleTick {
                name: "hourly".into(),
                scheduled_time: "2026-11-25T10:00:00Z".parse().unwrap(),
                source: TickSource::Scheduler { arn },
            });
            assert_eq!(round_trip(&scheduler), scheduler);
        }
        assert_eq!(encode(&Event::Ignored("x".into())), None);
    }
}
