//! The root CAs the SDK's HTTPS client trusts, and that client.
//!
//! By default jobrunner's functions trust only the roots AWS service endpoints chain to, compiled
//! in ([`AWS_ROOTS_PEM`]: Amazon Root CA 1–4 and the Starfield Services Root G2 cross-sign), so a
//! cold start parses five certificates instead of reading the system's CA bundle and scanning its
//! certificate directory. Certificates are verified exactly as before (rustls, aws-lc, the SDK's
//! cipher suites); only the set of trusted roots is smaller.
//!
//! The system store is used instead when [`ROOTS_ENV`] (`JOBRUNNER_TLS_ROOTS`) is `system`, and
//! when it is unset but the calls may meet a certificate from another CA: an HTTPS proxy
//! (`HTTPS_PROXY`, `ALL_PROXY`), an `https://` custom endpoint (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`) outside AWS's own domains, or a China region (`cn-*`), whose
//! endpoints are not covered here. `JOBRUNNER_TLS_ROOTS=aws` forces the compiled-in roots.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpClient};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The environment variable that chooses the trust store: `aws` or `system`.
pub const ROOTS_ENV: &str = "JOBRUNNER_TLS_ROOTS";

/// The root CAs AWS endpoints chain to, PEM, with where they come from (the file's header).
pub const AWS_ROOTS_PEM: &str = include_str!("tls/aws-roots.pem");

/// Domains of AWS's own endpoints: an `https://` custom endpoint in one of these keeps the
/// compiled-in roots (a VPC endpoint, FIPS or dual-stack name).
const AWS_DOMAINS: [&str; 2] = [".amazonaws.com", ".api.aws"];

/// Proxy variables the SDK's client reads for `https://` calls (hyper-util's matcher).
const PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// What is wrong with the TLS settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    /// `JOBRUNNER_TLS_ROOTS` holds something else than `aws` or `system`.
    #[error("{ROOTS_ENV}={0:?} is not a trust store: use \"aws\" or \"system\"")]
    InvalidRoots(String),
    /// The SDK refused the TLS settings.
    #[error("TLS settings of the HTTPS client: {0}")]
    Context(String),
}

impl From<TlsError> for jobrunner_core::Error {
    /// An init error like any other invalid setting, reported to Lambda as such.
    fn from(e: TlsError) -> Self {
        let (path, reason) = match e {
            TlsError::InvalidRoots(value) => (
                ROOTS_ENV,
                format!("{value:?} is not a trust store: use \"aws\" or \"system\""),
            ),
            TlsError::Context(reason) => ("TLS", reason),
        };
        jobrunner_core::Error::Config {
            path: path.into(),
            reason,
        }
    }
}

/// Which root CAs the HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// The compiled-in roots AWS endpoints chain to ([`AWS_ROOTS_PEM`]).
    Aws,
    /// The system's store (rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR` when set,
    /// otherwise the system's bundle and certificate directory).
    System,
}

impl TrustRoots {
    /// Chooses from the process environment (see the module documentation).
    pub fn from_env() -> Result<Self, TlsError> {
        Self::choose(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Chooses from the given environment variables (see the module documentation).
    pub fn choose(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, TlsError> {
        let mut needs_system = false;
        for (key, value) in vars {
            let value = value.trim();
            if key == ROOTS_ENV {
                match value.to_ascii_lowercase().as_str() {
                    "aws" => return Ok(Self::Aws),
                    "system" => return Ok(Self::System),
                    "" => {}
                    _ => return Err(TlsError::InvalidRoots(value.to_string())),
                }
            } else if PROXY_VARS.contains(&key.as_str()) && !value.is_empty()
                || (key == "AWS_ENDPOINT_URL" || key.starts_with("AWS_ENDPOINT_URL_"))
                    && is_foreign_https(value)
                || (key == "AWS_REGION" || key == "AWS_DEFAULT_REGION") && value.starts_with("cn-")
            {
                needs_system = true;
            }
        }
        Ok(if needs_system {
            Self::System
        } else {
            Self::Aws
        })
    }

    /// The trust store the SDK's client is given.
    fn trust_store(self) -> TrustStore {
        match self {
            Self::Aws => TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM.as_bytes()),
            Self::System => TrustStore::empty().with_native_roots(true),
        }
    }
}

/// True for an `https://` URL whose host is not one of AWS's own domains.
fn is_foreign_https(url: &str) -> bool {
    let Some(rest) = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .map(|_| &url[8..])
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(ipv6) => ipv6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    !AWS_DOMAINS.iter().any(|domain| host.ends_with(domain))
}

/// The SDK's default HTTPS client (rustls with aws-lc, the SDK's cipher suites, proxies from
/// the environment, one connection pool per timeout setting) with `roots` as its trust store.
pub fn http_client(roots: TrustRoots) -> Result<SharedHttpClient, TlsError> {
    let context = TlsContext::builder()
        .with_trust_store(roots.trust_store())
        .build()
        .map_err(|e| TlsError::Context(e.to_string()))?;
    // What aws-smithy-runtime's `default_https_client` builds for the latest behaviour version,
    // with our TLS context: `build_with_connector_fn` caches a connector per timeout setting.
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            connector(&context, settings, components)
        }),
    )
}

/// The connector for one timeout setting: HTTPS with `context`.
///
/// Every SDK client's construction also calls this once without settings or components, only
/// to load a system store early, and drops the result (aws-smithy-http-client's
/// `HyperClient::validate_base_client_config`). That call gets a plain-HTTP connector: building
/// TLS there would parse the roots and set up rustls once per client, at init, for nothing. The
/// connectors that carry calls always come with settings; should one ever come from this
/// branch, it refuses `https://` instead of calling without TLS.
fn connector(
    context: &TlsContext,
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> Connector {
    if settings.is_none() && components.is_none() {
        return Connector::builder().build_http();
    }
    let mut connector = Connector::builder()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context.clone());
    connector.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        connector.set_sleep_impl(components.sleep_impl());
    }
    connector.set_proxy_config(Some(ProxyConfig::from_env()));
    connector.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn compiled_in() -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(AWS_ROOTS_PEM.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the compiled-in roots are valid PEM")
    }

    /// The common name in a subject Name (DER): the string after id-at-commonName (2.5.4.3).
    fn common_name(subject: &[u8]) -> String {
        let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
        let at = subject
            .windows(oid.len())
            .rposition(|w| w == oid)
            .expect("a CN in the subject")
            + oid.len();
        let len = subject[at + 1] as usize;
        String::from_utf8(subject[at + 2..at + 2 + len].to_vec()).expect("a text CN")
    }

    #[test]
    fn the_default_store_holds_exactly_the_aws_roots() {
        // Parsed as the SDK's rustls client parses its trust store: each one a trust anchor.
        let mut store = tokio_rustls::rustls::RootCertStore::empty();
        assert_eq!(store.add_parsable_certificates(compiled_in()), (5, 0));
        let names: Vec<String> = store
            .roots
            .iter()
            .map(|anchor| common_name(anchor.subject.as_ref()))
            .collect();
        assert_eq!(
            names,
            [
                "Amazon Root CA 1",
                "Amazon Root CA 2",
                "Amazon Root CA 3",
                "Amazon Root CA 4",
                "Starfield Services Root Certificate Authority - G2",
            ]
        );
        assert!(http_client(TrustRoots::Aws).is_ok());
    }

    #[test]
    fn every_compiled_in_root_is_byte_for_byte_the_maintained_one() {
        let certs = compiled_in();
        assert_eq!(certs.len(), 5);
        for (i, cert) in certs.iter().enumerate() {
            assert!(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.contains(cert),
                "root {i} of aws-roots.pem differs from webpki-root-certs"
            );
        }
    }

    #[test]
    fn the_aws_roots_by_default_even_with_a_plain_http_local_endpoint() {
        assert_eq!(TrustRoots::choose(env(&[])), Ok(TrustRoots::Aws));
        let local = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_REGION", "us-east-1"),
        ]);
        assert_eq!(TrustRoots::choose(local), Ok(TrustRoots::Aws));
        let vpc = env(&[(
            "AWS_ENDPOINT_URL_SQS",
            "https://vpce-0123-abcd.sqs.eu-west-1.vpce.amazonaws.com",
        )]);
        assert_eq!(TrustRoots::choose(vpc), Ok(TrustRoots::Aws));
        let dualstack = env(&[("AWS_ENDPOINT_URL", "HTTPS://ecs.us-east-1.api.aws:443/")]);
        assert_eq!(TrustRoots::choose(dualstack), Ok(TrustRoots::Aws));
    }

    #[test]
    fn the_system_store_for_proxies_foreign_https_endpoints_and_china() {
        for (key, value) in [
            ("HTTPS_PROXY", "http://proxy.internal:3128"),
            ("all_proxy", "socks5://proxy:1080"),
            ("AWS_ENDPOINT_URL", "https://localstack.internal:4566"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "https://user@[::1]:8000/path"),
            ("AWS_ENDPOINT_URL", "https://amazonaws.com.evil.example"),
            ("AWS_REGION", "cn-north-1"),
        ] {
            assert_eq!(
                TrustRoots::choose(env(&[(key, value)])),
                Ok(TrustRoots::System),
                "{key}={value}"
            );
        }
        assert_eq!(
            TrustRoots::choose(env(&[("HTTPS_PROXY", " ")])),
            Ok(TrustRoots::Aws)
        );
    }

    #[test]
    fn the_variable_overrides_the_guess_either_way() {
        let proxied = env(&[("HTTPS_PROXY", "http://proxy:3128"), (ROOTS_ENV, "aws")]);
        assert_eq!(TrustRoots::choose(proxied), Ok(TrustRoots::Aws));
        let plain = env(&[(ROOTS_ENV, " System ")]);
        assert_eq!(TrustRoots::choose(plain), Ok(TrustRoots::System));
        let empty = env(&[(ROOTS_ENV, ""), ("AWS_REGION", "cn-northwest-1")]);
        assert_eq!(TrustRoots::choose(empty), Ok(TrustRoots::System));
    }

    #[test]
    fn another_value_is_a_one_line_error_naming_the_variable() {
        let err = TrustRoots::choose(env(&[(ROOTS_ENV, "webpki")])).unwrap_err();
        assert_eq!(err, TlsError::InvalidRoots("webpki".into()));
        assert_eq!(
            err.to_string(),
            "JOBRUNNER_TLS_ROOTS=\"webpki\" is not a trust store: use \"aws\" or \"system\""
        );
        assert_eq!(
            jobrunner_core::Error::from(err).to_string(),
            "invalid config: JOBRUNNER_TLS_ROOTS: \"webpki\" is not a trust store: use \"aws\" or \"system\""
        );
    }

    /// The error and its sources, one line.
    fn chain(err: &dyn std::error::Error) -> String {
        let sources = std::iter::successors(Some(err), |e| e.source());
        sources
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// What `connector` answers for an `https://` call to a closed loopback port.
    async fn https_call(
        settings: Option<&HttpConnectorSettings>,
    ) -> aws_smithy_runtime_api::client::result::ConnectorError {
        use aws_smithy_runtime_api::client::http::HttpConnector;
        let context = TlsContext::builder()
            .with_trust_store(TrustRoots::Aws.trust_store())
            .build()
            .expect("TLS context");
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let request = aws_smithy_runtime_api::http::Request::get(format!("https://{closed}/"))
            .expect("request");
        connector(&context, settings, None)
            .call(request)
            .await
            .expect_err("nothing listens there")
    }

    #[tokio::test]
    async fn the_construction_check_gets_a_connector_that_never_calls_https_without_tls() {
        let err = https_call(None).await;
        assert!(
            chain(&err).contains("scheme is not http"),
            "{}",
            chain(&err)
        );
        // With settings (every connector that carries calls) it is the TLS one: it tries to
        // connect, and only the closed port stops it.
        let settings = HttpConnectorSettings::builder().build();
        let err = https_call(Some(&settings)).await;
        assert!(err.is_io(), "{}", chain(&err));
        assert!(
            !chain(&err).contains("scheme is not http"),
            "{}",
            chain(&err)
        );
    }
}
