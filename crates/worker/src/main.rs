//! `jobrunner-worker`: long-polls an SQS queue and runs a command once per message
//! (see `jobrunner_worker::cli`).

fn main() -> std::process::ExitCode {
    jobrunner_worker::cli::main()
}
