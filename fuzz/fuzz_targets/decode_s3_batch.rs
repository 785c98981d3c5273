//! Any bytes as an S3 Batch Operations invocation: decoding (envelope, tasks, URL-encoded keys)
//! and building the answer must return Ok or Err, never panic.
#![no_main]

use jobrunner_core::event::s3_batch::{self, BatchResponse, ResultCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = jobrunner_core::event::parse_json(text) else {
        return;
    };
    if let Ok(invocation) = s3_batch::decode(&value) {
        let mut response = BatchResponse::new(&invocation);
        for task in &invocation.tasks {
            match &task.object {
                Ok(object) => response.push(&task.task_id, ResultCode::Succeeded, &object.key),
                Err(e) => {
                    response.push(&task.task_id, ResultCode::PermanentFailure, &e.to_string())
                }
            }
        }
        let _ = serde_json::to_string(&response);
    }
});
