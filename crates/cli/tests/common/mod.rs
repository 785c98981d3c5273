//! What every CLI test needs: paths in the repository and the `jobrunner` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `path` in the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Runs `jobrunner args…` to completion.
pub fn jobrunner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobrunner"))
        .args(args)
        .output()
        .expect("run jobrunner")
}
