//! Building the shared AWS SDK configuration once per cold start.
//!
//! Explicit timeouts keep a stuck call from eating the Lambda's whole budget; the SDK's
//! adaptive retry mode (exponential backoff with jitter, plus a client-side rate limiter that
//! slows down after throttling) handles transient errors before they reach jobrunner's own
//! error classification. Standard mode gives up on sustained throttling within a second and
//! spends its retry quota over a long burst: the burst test saw good events reach the DLQ. `AWS_ENDPOINT_URL` (the local
//! emulator) is honoured by the SDK itself. The HTTPS client trusts the roots [`crate::tls`]
//! chooses: by default only those AWS endpoints chain to, so a cold start reads no CA files.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::tls::{self, TlsError, TrustRoots};

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 4;

/// Loads region and credentials from the environment with jobrunner's retry and timeouts, and
/// the HTTPS client with the trust store the environment chooses ([`TrustRoots::from_env`]).
pub async fn load() -> Result<SdkConfig, TlsError> {
    load_with(TrustRoots::from_env()?).await
}

/// [`load`] with the given trust store.
pub async fn load_with(roots: TrustRoots) -> Result<SdkConfig, TlsError> {
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(tls::http_client(roots)?)
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await)
}

/// Adaptive retry mode: exponential backoff with jitter, and a token-bucket rate limiter that
/// throttling responses slow down, so a burst paces itself to ECS's launch rate.
pub fn retry_config() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}

/// Connect in 3 s, each attempt within 10 s, the whole call (retries included) within 25 s.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}
