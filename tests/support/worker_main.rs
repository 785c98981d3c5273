//! The worker binary as the integration tests run it: the same entry point as
//! `jobrunner-worker`, built by this package so the tests find it (`CARGO_BIN_EXE_…`).

fn main() -> std::process::ExitCode {
    jobrunner_worker::cli::main()
}
