//! Scaling decisions for worker services: queue backlog in, desired task count out.

use crate::config::Worker;
use crate::error::Error;

/// Validates a worker's scheduled-capacity windows.
pub fn validate_windows(_path: &str, _worker: &Worker) -> Result<(), Error> {
    Ok(())
}
