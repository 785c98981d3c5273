//! Any payload through the whole dry run with the example config: the launcher's or the
//! tracker's decision path. A RunTask that comes out must respect ECS's limits.
#![no_main]

use std::sync::LazyLock;

use jobrunner_core::Config;
use jobrunner_core::config::Format;
use libfuzzer_sys::fuzz_target;

static CONFIG: LazyLock<Config> =
    LazyLock::new(|| Config::parse(include_str!("../../examples/jobrunner.toml"), Format::Toml).expect("example config"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(payload) = jobrunner_core::event::parse_json(text) else { return };
    let function = jobrunner_core::dryrun::Function::for_payload(&payload);
    let world = jobrunner_core::dryrun::World { running: data.len() % 3, ..jobrunner_core::dryrun::World::for_config(&CONFIG) };
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    if let Ok(dry_run) = jobrunner_core::dryrun::dry_run_now(&CONFIG, function, &payload, now, world) {
        for action in dry_run.actions.into_iter().filter(|a| a.operation == "RunTask") {
            let token = action.input["clientToken"].as_str().unwrap_or("");
            assert!(token.len() <= 64 && token.bytes().all(|b| (33..=126).contains(&b)), "bad token {token:?}");
            let overrides = action.input["overrides"].to_string();
            assert!(overrides.chars().count() <= 8192, "overrides too long");
        }
    }
});
