//! Building the shared AWS SDK configuration once per cold start.
//!
//! Explicit timeouts keep a stuck call from eating the Lambda's whole budget; the SDK's
//! adaptive retry mode (exponential backoff with jitter, plus a client-side rate limiter that
//! slows down after throttling) handles transient errors before they reach jobrunner's own
//! error classification. Standard mode gives up on sustained throttling within a second and
//! spends its retry quota over a long burst: the burst test saw good events reach the DLQ. `AWS_ENDPOINT_URL` (the local
//! emulator) is honoured by the SDK itself. The HTTPS client trusts the roots [`crate::tls`]
//! chooses: by default only those AWS endpoints chain to, so a cold start reads no CA files.
//!
//! Lambda puts the function's region and credentials in its environment. When they are there,
//! they are given to the loader directly (`FromEnvironment`): the default chains would pick
//! the same values first, but building them creates an STS client (web identity) and IMDS
//! clients that a function never calls: most of what loading the SDK config cost at init, in
//! a profile of the tracker (bench/README.md).

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

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
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(tls::http_client(roots)?)
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    let found = FromEnvironment::read(|name| std::env::var(name).ok());
    if let Some(region) = found.region {
        loader = loader.region(region);
    }
    if found.credentials {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    Ok(loader.load().await)
}

/// What the environment settings of the SDK's default chains hold, when they hold it: the
/// chains look there first, so taking it here gives the same region and credentials.
#[derive(Debug, PartialEq, Eq)]
struct FromEnvironment {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION` (the region chain's order).
    region: Option<Region>,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are both set, so the credentials chain
    /// would stop at its first provider, the environment's.
    credentials: bool,
}

impl FromEnvironment {
    /// Reads the variables through `var` (empty counts as unset, as in the chains).
    fn read(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        Self {
            region: set("AWS_REGION")
                .or_else(|| set("AWS_DEFAULT_REGION"))
                .map(Region::new),
            credentials: set("AWS_ACCESS_KEY_ID").is_some()
                && set("AWS_SECRET_ACCESS_KEY").is_some(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> FromEnvironment {
        FromEnvironment::read(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn lambdas_environment_gives_region_and_credentials() {
        let found = read(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
        assert_eq!(found.region, Some(Region::new("eu-west-1")));
        assert!(found.credentials);
    }

    #[test]
    fn the_region_chains_order_and_empty_values() {
        let region = |pairs: &[(&str, &str)]| read(pairs).region;
        assert_eq!(
            region(&[
                ("AWS_REGION", "us-west-2"),
                ("AWS_DEFAULT_REGION", "eu-central-1")
            ]),
            Some(Region::new("us-west-2"))
        );
        assert_eq!(
            region(&[("AWS_REGION", " "), ("AWS_DEFAULT_REGION", "eu-central-1")]),
            Some(Region::new("eu-central-1"))
        );
        assert_eq!(region(&[]), None);
    }

    #[test]
    fn without_both_keys_the_default_chain_decides() {
        // A profile, web identity (EKS, CodeBuild) or the instance role: the chain finds them.
        assert!(!read(&[("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")]).credentials);
        assert!(!read(&[("AWS_SECRET_ACCESS_KEY", "secret")]).credentials);
        assert!(
            !read(&[
                ("AWS_ACCESS_KEY_ID", ""),
                ("AWS_SECRET_ACCESS_KEY", "secret")
            ])
            .credentials
        );
        assert!(
            !read(&[
                ("AWS_PROFILE", "dev"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")
            ])
            .credentials
        );
    }
}
