//! Any text as a config, in both formats: parsing and validation must never panic.
#![no_main]

use jobrunner_core::Config;
use jobrunner_core::config::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, Format::Toml);
        let _ = Config::parse(text, Format::Json);
    }
});
