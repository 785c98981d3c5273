//! Any payload through the whole dry run with the example config: decode, route, plan. An
//! action that comes out must respect ECS's limits.
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
    if let Ok(dry_run) = jobrunner_core::dryrun::dry_run(&CONFIG, &payload) {
        for action in dry_run.actions {
            let token = action.input["clientToken"].as_str().unwrap_or("");
            assert!(token.len() <= 64 && token.bytes().all(|b| (33..=126).contains(&b)), "bad token {token:?}");
            let overrides = action.input["overrides"].to_string();
            assert!(overrides.chars().count() <= 8192, "overrides too long");
        }
    }
});
