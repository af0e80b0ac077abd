//! The AWS SDK configuration every function starts with, built for a short
//! cold start.
//!
//! The SDK's defaults cost most of a function's cold init, so two of them
//! are replaced:
//! - **Trust anchors.** The default HTTPS client reads the system's CA
//!   bundle and then every file of its certificates directory (about 150
//!   files here) before the first event, and parses them all. On AWS the
//!   functions talk only to AWS service endpoints, whose certificates all
//!   chain to Amazon Trust Services: the client trusts those five roots
//!   (Amazon Root CA 1–4 and the Starfield root that cross-signs them),
//!   compiled in. With an endpoint override (`AWS_ENDPOINT_URL…`, a local
//!   cloud or a proxy), it trusts Mozilla's whole root program as rustls
//!   ships it (`webpki-root-certs`), since such an endpoint may be signed by
//!   any public CA. Either way a cold start opens no file for it.
//! - **Crypto.** TLS runs on rustls with *ring* rather than aws-lc: a smaller
//!   bootstrap, and no aws-lc entropy setup on the first handshake.
//!
//! `ORDERFLOW_TLS_ROOTS=public` trusts Mozilla's roots on AWS too, and
//! `native` the system's store, as the SDK's default client does.
//!
//! Credentials come from the environment when it has them, which is how
//! Lambda passes the function role's; otherwise the SDK's default chain
//! (profiles, SSO, IMDS, …) looks for them, as it does on a developer's
//! machine.

use std::env;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::HttpClientError;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use rustls_pki_types::CertificateDer;

use crate::config::ConfigError;

/// Loads the AWS SDK configuration from the environment (which honours
/// `AWS_ENDPOINT_URL`, the local cloud), with [`https_client`] as its HTTP
/// client.
pub async fn sdk_config() -> Result<SdkConfig, lambda_runtime::Error> {
    let endpoint_override = env::vars_os().any(|(name, _)| {
        name.to_str()
            .is_some_and(|name| name.starts_with("AWS_ENDPOINT_URL"))
    });
    let trust = Trust::from_env(env::var(TLS_ROOTS).ok().as_deref(), endpoint_override)?;
    let mut loader = loader(trust)?;
    if env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        // The default chain starts with the environment too, but builds
        // every other provider first.
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    Ok(loader.load().await)
}

/// The SDK's configuration loader with [`https_client`] as its HTTP
/// client: what every SDK configuration in the project starts from, the
/// tools' included, so that no crate of the workspace enables the SDK's
/// default (aws-lc) client.
pub fn loader(trust: Trust) -> Result<ConfigLoader, HttpClientError> {
    Ok(aws_config::defaults(BehaviorVersion::latest()).http_client(https_client(trust)?))
}

/// Chooses the trusted roots: `aws`, `public` or `native`. Unset, it is
/// `aws`, or `public` when an `AWS_ENDPOINT_URL…` variable points the SDK
/// elsewhere.
pub const TLS_ROOTS: &str = "ORDERFLOW_TLS_ROOTS";

/// Which roots an HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Amazon Trust Services' roots: every AWS service endpoint.
    AwsRoots,
    /// Mozilla's root program, as rustls ships it.
    PublicRoots,
    /// The system's certificate store, read when the client first connects:
    /// for the project's tools on a developer's machine, which may sit
    /// behind a proxy with its own CA.
    Native,
}

impl Trust {
    /// The trust [`TLS_ROOTS`] asks for (`value`), given whether an
    /// endpoint override is set.
    pub fn from_env(value: Option<&str>, endpoint_override: bool) -> Result<Self, ConfigError> {
        match value {
            Some("aws") => Ok(Self::AwsRoots),
            Some("public") => Ok(Self::PublicRoots),
            Some("native") => Ok(Self::Native),
            Some(other) => Err(ConfigError::Invalid {
                name: TLS_ROOTS,
                reason: format!("{other:?} is not `aws`, `public` or `native`"),
            }),
            None if endpoint_override => Ok(Self::PublicRoots),
            None => Ok(Self::AwsRoots),
        }
    }
}

/// The roots every AWS service endpoint chains to, from Mozilla's program:
/// Amazon Root CA 1–4 and Starfield Services Root Certificate Authority -
/// G2. A test checks that this file is exactly those roots of
/// `webpki-root-certs`, and writes it anew with `ORDERFLOW_UPDATE_ROOTS=1`.
const AWS_ROOTS_PEM: &[u8] = include_bytes!("aws-roots.pem");

/// The common names of the compiled-in AWS roots (`src/aws-roots.pem`).
pub const AWS_ROOT_NAMES: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

/// An HTTPS client on rustls and *ring*, trusting `trust`.
///
/// With compiled-in roots, the client builds its connector (and parses the
/// roots) at its first request only. The SDK's client builds one more,
/// and throws it away, each time an SDK client is created, "so that native
/// certs load at client initialization time": with nothing to load, that
/// was a quarter of a function's cold init (four connectors for shipping's
/// four clients, each parsing the roots), so it is skipped. Native roots
/// keep it.
pub fn https_client(trust: Trust) -> Result<SharedHttpClient, HttpClientError> {
    let store = match trust {
        Trust::AwsRoots => TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM),
        Trust::PublicRoots => TrustStore::empty()
            .with_pem_certificate(pem_of(webpki_root_certs::TLS_SERVER_ROOT_CERTS)),
        Trust::Native => TrustStore::empty().with_native_roots(true),
    };
    let tls = TlsContext::builder().with_trust_store(store).build()?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https();
    Ok(match trust {
        Trust::Native => client,
        Trust::AwsRoots | Trust::PublicRoots => SharedHttpClient::new(AtFirstRequest(client)),
    })
}

/// The SDK's HTTP client, without the connector it builds and throws away
/// each time an SDK client is created (its
/// [`HttpClient::validate_base_client_config`]; the trait's default, used
/// here, checks nothing): its connectors are built at the first request.
#[derive(Debug)]
struct AtFirstRequest(SharedHttpClient);

impl HttpClient for AtFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// `certs` as the PEM the SDK's trust store takes.
fn pem_of(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut pem = Vec::with_capacity(certs.iter().map(|c| c.len() * 4 / 3 + 64).sum());
    for cert in certs {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in base64(cert).chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[(n >> shift & 63) as usize];
        out.extend_from_slice(&[sextet(18), sextet(12)]);
        out.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;

    /// An HTTP client that counts the SDK's requests for an eager
    /// connector (one per SDK client created), and has none to give.
    #[derive(Debug)]
    pub(crate) struct Counting(pub(crate) Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            panic!("these tests send no request");
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// How many times creating an SDK client on `http` asked `http` to
    /// build its connector ahead of the first request.
    fn eager_builds_when_created(wrap: impl Fn(SharedHttpClient) -> SharedHttpClient) -> usize {
        let count = Arc::new(AtomicUsize::new(0));
        let http = wrap(SharedHttpClient::new(Counting(count.clone())));
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .http_client(http)
            .build();
        let _client = aws_sdk_sqs::Client::from_conf(config);
        count.load(Ordering::SeqCst)
    }

    /// The SDK builds a connector each time a client is created, for native
    /// roots; with the roots compiled in, a function's clients skip it.
    #[test]
    fn creating_an_sdk_client_builds_no_connector_ahead_of_its_first_request() {
        assert!(
            eager_builds_when_created(|http| http) > 0,
            "the SDK no longer asks"
        );
        assert_eq!(
            eager_builds_when_created(|http| SharedHttpClient::new(AtFirstRequest(http))),
            0
        );
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded.as_bytes(), "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), b"+/+/");
    }

    #[test]
    fn tls_roots_default_to_aws_and_to_public_behind_an_endpoint_override() {
        assert_eq!(Trust::from_env(None, false).ok(), Some(Trust::AwsRoots));
        assert_eq!(Trust::from_env(None, true).ok(), Some(Trust::PublicRoots));
        assert_eq!(
            Trust::from_env(Some("aws"), true).ok(),
            Some(Trust::AwsRoots)
        );
        assert_eq!(
            Trust::from_env(Some("public"), false).ok(),
            Some(Trust::PublicRoots)
        );
        assert_eq!(
            Trust::from_env(Some("native"), false).ok(),
            Some(Trust::Native)
        );
        let refused = Trust::from_env(Some("system"), false).map_err(|e| e.to_string());
        assert_eq!(
            refused,
            Err("environment variable ORDERFLOW_TLS_ROOTS is invalid: \"system\" is not `aws`, `public` or `native`".into())
        );
    }

    fn read_pem(pem: &[u8]) -> Vec<CertificateDer<'_>> {
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .expect("the PEM does not read back")
    }

    /// The SDK parses the trust store with `expect` when it builds its first
    /// connection: every anchor must read back as the same certificate and
    /// be accepted by rustls, or a cold start's first request would panic.
    #[test]
    fn every_compiled_in_anchor_reads_back_and_is_accepted_by_rustls() {
        let public = pem_of(webpki_root_certs::TLS_SERVER_ROOT_CERTS);
        for (pem, at_least) in [(&public[..], 100), (AWS_ROOTS_PEM, 5)] {
            let read = read_pem(pem);
            assert!(read.len() >= at_least, "only {} anchors", read.len());
            let mut roots = rustls::RootCertStore::empty();
            for cert in read {
                roots.add(cert).expect("rustls refuses an anchor");
            }
        }
        assert_eq!(read_pem(&public), webpki_root_certs::TLS_SERVER_ROOT_CERTS);
    }

    /// `aws-roots.pem` is exactly Mozilla's certificates for
    /// [`AWS_ROOT_NAMES`], one each.
    #[test]
    fn the_aws_roots_are_mozillas_amazon_trust_services_roots() {
        let names_in = |cert: &CertificateDer<'_>| -> Vec<&str> {
            AWS_ROOT_NAMES
                .into_iter()
                .filter(|name| {
                    cert.windows(name.len() + 2)
                        .any(|w| w[2..] == *name.as_bytes() && usize::from(w[1]) == name.len())
                })
                .collect()
        };
        let expected: Vec<&CertificateDer<'_>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|cert| !names_in(cert).is_empty())
            .collect();
        let mut found: Vec<&str> = expected.iter().flat_map(|c| names_in(c)).collect();
        found.sort_unstable();
        assert_eq!(
            found, AWS_ROOT_NAMES,
            "each name in exactly one certificate"
        );
        let expected_pem = pem_of(&expected.into_iter().cloned().collect::<Vec<_>>());
        if std::env::var_os("ORDERFLOW_UPDATE_ROOTS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws-roots.pem");
            std::fs::write(path, &expected_pem).expect(path);
        }
        assert!(
            AWS_ROOTS_PEM == expected_pem,
            "src/aws-roots.pem is not webpki-root-certs' {AWS_ROOT_NAMES:?}: \
             run this test with ORDERFLOW_UPDATE_ROOTS=1 to write it anew, then again to check it"
        );
    }
}
