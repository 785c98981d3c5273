//! A queue message's id, receive count and attributes as `jobrunner-worker` turns them into
//! the command's environment: every name a valid variable name (`JOB_ATTR_` plus ASCII
//! letters, digits and `_`), no name twice, no NUL anywhere (a command could not start).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use jobrunner_worker::command::message_env;
use jobrunner_worker::queue::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, u32, BTreeMap<String, String>)| {
    let (id, receive_count, attributes) = input;
    let message = Message { id, receipt_handle: String::new(), body: String::new(), receive_count, attributes };
    let env = message_env(&message);
    let mut names = BTreeSet::new();
    for (name, value) in &env {
        assert!(name.starts_with("JOB_"), "{name:?}");
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{name:?}");
        assert!(names.insert(name.clone()), "{name:?} twice");
        assert!(!value.contains('\0'), "a NUL in {name}");
    }
    assert!(env.iter().any(|(n, _)| n == "JOB_MESSAGE_ID"));
});
