//! The AWS SDK configuration every function starts with, built for a short
//! cold start.
//!
//! The SDK's defaults cost most of a function's cold init and much of its
//! zip, so three of them are replaced:
//! - **Trust anchors.** The default HTTPS client reads the system's CA
//!   bundle and then every file of its certificates directory (about 150
//!   files here) before the first event, and parses them all. On AWS the
//!   functions talk only to AWS service endpoints, whose certificates all
//!   chain to Amazon Trust Services: the client trusts those five roots
//!   (Amazon Root CA 1–4 and the Starfield root that cross-signs them),
//!   compiled in, and opens no file for them. A local cloud's endpoint
//!   (`AWS_ENDPOINT_URL…`) is plain HTTP and needs no roots; an `https://`
//!   one (a proxy, say) may be signed by any CA, and is trusted through the
//!   system's store ([`Trust`]).
//! - **Crypto.** TLS runs on rustls with *ring* rather than aws-lc: a smaller
//!   bootstrap, and no aws-lc entropy setup on the first handshake.
//! - **The loader.** A function's configuration ([`sdk_config`]) is read
//!   from the variables Lambda sets, not through `aws-config`'s loader,
//!   whose providers (profile files, SSO, IMDS, STS, a credential process)
//!   a function on Lambda never reaches but would link: 0.38 MB of each zip.
//!   The project's tools start from [`loader`], with the whole default
//!   chain.
//!
//! `ORDERFLOW_TLS_ROOTS=native` trusts the system's store on AWS too, as the
//! SDK's default client does.

use std::collections::BTreeMap;
use std::env;

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_credential_types::Credentials;
use aws_credential_types::attributes::AccountId;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::HttpClientError;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::{RetryConfig, RetryMode};
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::config::ConfigError;

/// The AWS SDK configuration of a function, from the process environment
/// (see [`sdk_config_from`]).
pub fn sdk_config() -> Result<SdkConfig, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in env::vars_os() {
        let Some(name) = name
            .to_str()
            .filter(|n| n.starts_with("AWS_") || *n == TLS_ROOTS)
        else {
            continue;
        };
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(value) => {
                let known = READ
                    .iter()
                    .chain(&NOT_READ)
                    .chain(&NOT_CONSULTED)
                    .find(|known| **known == name);
                let reason = format!("{name}={value:?} is not UTF-8");
                match known {
                    Some(name) => return Err(ConfigError::Invalid { name, reason }),
                    None if name.starts_with(ENDPOINT_URL) => {
                        return Err(ConfigError::Invalid {
                            name: ENDPOINT_URL,
                            reason,
                        });
                    }
                    None => {}
                }
            }
        }
    }
    sdk_config_from(vars)
}

/// The AWS SDK configuration of a function, from the `AWS_*` variables and
/// [`TLS_ROOTS`] of its environment (`vars`; others are ignored), with
/// [`https_client`] as its HTTP client.
///
/// Lambda hands a function everything it needs in its environment: the
/// region, the role's credentials, and on a local cloud the endpoint. This
/// reads those and nothing else, rather than through `aws-config`'s
/// loader, whose providers (profile files, SSO, IMDS, STS web identity,
/// ECS, a credential process) a function on Lambda never reaches but
/// links: 0.38 MB of each zip, and their setup at every cold start.
///
/// - **Region:** `AWS_REGION`, else `AWS_DEFAULT_REGION`; required.
/// - **Credentials:** `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
///   `AWS_SESSION_TOKEN` and `AWS_ACCOUNT_ID` (optional); the first two
///   required. To run a function on a developer's machine against AWS with
///   a profile, export the profile's credentials:
///   `eval "$(aws configure export-credentials --format env)"`.
/// - **Endpoints:** `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>` (the
///   service's id in capitals, spaces as `_`: `DYNAMODB`, `EVENTBRIDGE`,
///   `SQS`, `S3`), and `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`, as the SDK
///   reads them.
/// - **Retries and endpoints' variants:** `AWS_MAX_ATTEMPTS`,
///   `AWS_RETRY_MODE`, `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`.
///
/// A variable set to blanks is unset, as the SDK takes it. Every other
/// setting is the SDK's default. A variable of the SDK's own loader that
/// would change what the SDK does and is not read here ([`NOT_READ`]) is
/// refused, with its name, rather than ignored; one naming another source
/// of credentials, which the SDK would not consult either with the
/// environment's, is not consulted ([`NOT_CONSULTED`]): a warning names it.
pub fn sdk_config_from(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<SdkConfig, ConfigError> {
    let vars = set_vars(vars);
    let get = |name: &str| vars.get(name).map(String::as_str);
    for name in not_consulted(&vars) {
        tracing::warn!(
            variable = name,
            "set, but not consulted: a function's AWS configuration comes from the variables \
             Lambda sets only (orderflow_runtime::aws::sdk_config_from)"
        );
    }
    if let Some(name) = NOT_READ.iter().find(|name| vars.contains_key(**name)) {
        return Err(ConfigError::Invalid {
            name,
            reason: "a function reads its AWS configuration from the variables Lambda sets \
                     (orderflow_runtime::aws::sdk_config_from), and this one is not among them: \
                     unset it"
                .into(),
        });
    }
    let region = get("AWS_REGION")
        .or_else(|| get("AWS_DEFAULT_REGION"))
        .ok_or(ConfigError::Missing("AWS_REGION"))?;
    let mut credentials = Credentials::builder()
        .access_key_id(get(ACCESS_KEY_ID).ok_or_else(|| missing_credentials(ACCESS_KEY_ID, &vars))?)
        .secret_access_key(
            get(SECRET_ACCESS_KEY).ok_or_else(|| missing_credentials(SECRET_ACCESS_KEY, &vars))?,
        )
        .provider_name("environment");
    credentials.set_session_token(get("AWS_SESSION_TOKEN").map(str::to_owned));
    credentials.set_account_id(get("AWS_ACCOUNT_ID").map(AccountId::from));
    let credentials = credentials.build();
    let endpoints = endpoint_urls(&vars)?;
    let trust = trust_of(&vars, &endpoints)?;
    // Parsed as the SDK parses them: trimmed, the mode in any case.
    let mode = get("AWS_RETRY_MODE")
        .map(|mode| {
            mode.parse::<RetryMode>().map_err(|_| ConfigError::Invalid {
                name: "AWS_RETRY_MODE",
                reason: format!("{mode:?} is not `standard` or `adaptive`"),
            })
        })
        .transpose()?;
    let mut retries = match mode {
        Some(RetryMode::Adaptive) => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    if let Some(attempts) = get("AWS_MAX_ATTEMPTS") {
        let attempts = attempts
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::Invalid {
                name: "AWS_MAX_ATTEMPTS",
                reason: format!("{attempts:?} is not a whole number above 0"),
            })?;
        retries = retries.with_max_attempts(attempts);
    }
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        // One cache for every client's credentials, as aws-config's loader
        // gives them (a client without one makes its own).
        .identity_cache(IdentityCache::lazy().build())
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(retries)
        .http_client(https_client(trust).map_err(|e| ConfigError::Invalid {
            name: TLS_ROOTS,
            reason: e.to_string(),
        })?);
    config.set_use_fips(flag(&vars, "AWS_USE_FIPS_ENDPOINT")?);
    config.set_use_dual_stack(flag(&vars, "AWS_USE_DUALSTACK_ENDPOINT")?);
    config.set_endpoint_url(endpoints.get(ENDPOINT_URL).cloned());
    Ok(config.service_config(EndpointUrls(endpoints)).build())
}

/// The roots a function trusts: [`Trust::from_env`] with the endpoint URLs
/// it is pointed at ([`endpoint_urls`]).
fn trust_of(
    vars: &BTreeMap<String, String>,
    endpoints: &BTreeMap<String, String>,
) -> Result<Trust, ConfigError> {
    Trust::from_env(
        vars.get(TLS_ROOTS).map(String::as_str),
        endpoints.values().map(String::as_str),
    )
}

/// The variables set to more than blanks, by name: the SDK takes a blank
/// one as unset.
fn set_vars(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .collect()
}

/// The `AWS_ENDPOINT_URL…` variables of `vars` (set ones, [`set_vars`]),
/// or none when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true.
fn endpoint_urls(vars: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    if flag(vars, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")?.unwrap_or(false) {
        return Ok(BTreeMap::new());
    }
    Ok(vars
        .iter()
        .filter(|(name, _)| name.starts_with(ENDPOINT_URL))
        .map(|(name, url)| (name.clone(), url.clone()))
        .collect())
}

/// The variables of the SDK's own loader that [`sdk_config_from`] does
/// not read and that would change what the SDK does: set, they are refused.
pub const NOT_READ: [&str; 9] = [
    "AWS_SDK_UA_APP_ID",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_AUTH_SCHEME_PREFERENCE",
    "AWS_SIGV4A_SIGNING_REGION_SET",
    "AWS_DISABLE_REQUEST_COMPRESSION",
    "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES",
    "AWS_DISABLE_CLOCK_SKEW_CORRECTION",
];

/// The variables of the SDK's own loader that name other sources of
/// credentials and settings: profile files, a role to assume, a container's
/// credentials endpoint. With credentials in the environment, which a
/// function requires, the SDK's chain takes those first and consults none
/// of these for credentials; a function consults them for nothing, and
/// [`sdk_config_from`] warns at cold start that they are set (a developer's
/// shell, a local cloud that passes its own environment on), naming them.
pub const NOT_CONSULTED: [&str; 9] = [
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Which of [`NOT_CONSULTED`] `vars` (set ones, [`set_vars`]) sets.
fn not_consulted(vars: &BTreeMap<String, String>) -> Vec<&'static str> {
    NOT_CONSULTED
        .into_iter()
        .filter(|name| vars.contains_key(*name))
        .collect()
}

/// The variables [`sdk_config_from`] reads, but the per-service
/// `AWS_ENDPOINT_URL_<SERVICE>`.
pub const READ: [&str; 13] = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    "AWS_SESSION_TOKEN",
    "AWS_ACCOUNT_ID",
    ENDPOINT_URL,
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    TLS_ROOTS,
];

const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// The error for a credential variable `name` that is not set, naming
/// the other sources `vars` sets, which a function does not consult.
fn missing_credentials(name: &'static str, vars: &BTreeMap<String, String>) -> ConfigError {
    let others = match not_consulted(vars).as_slice() {
        [] => String::new(),
        names => format!(" ({} set, but not consulted)", names.join(", ")),
    };
    ConfigError::Invalid {
        name,
        reason: format!(
            "not set: a function takes its credentials from the environment only, where Lambda \
             puts its role's{others}; on a developer's machine, export a profile's with \
             `eval \"$(aws configure export-credentials --format env)\"`"
        ),
    }
}

/// The boolean variable `name`: `true` or `false` in any case, or unset.
fn flag(vars: &BTreeMap<String, String>, name: &'static str) -> Result<Option<bool>, ConfigError> {
    vars.get(name)
        .map(|value| match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                reason: format!("{value:?} is not `true` or `false`"),
            }),
        })
        .transpose()
}

/// The `AWS_ENDPOINT_URL…` variables, as each SDK client asks for its
/// own: `AWS_ENDPOINT_URL_<SERVICE>` first, then `AWS_ENDPOINT_URL`.
#[derive(Debug)]
struct EndpointUrls(BTreeMap<String, String>);

impl LoadServiceConfig for EndpointUrls {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        self.0
            .get(&format!("{}_{service}", key.env()))
            .or_else(|| self.0.get(key.env()))
            .cloned()
    }
}

/// The SDK's configuration loader with [`https_client`] as its HTTP
/// client: what the project's tools start from (profiles, SSO and the rest
/// of the SDK's default chain), so that no crate of the workspace enables
/// the SDK's default (aws-lc) client. A function's bootstrap never calls
/// it, and so links none of `aws-config`'s providers ([`sdk_config_from`]).
pub fn loader(trust: Trust) -> Result<ConfigLoader, HttpClientError> {
    Ok(aws_config::defaults(BehaviorVersion::latest()).http_client(https_client(trust)?))
}

/// Chooses the trusted roots: `aws` or `native`. Unset, it is `aws`, or
/// `native` when an `AWS_ENDPOINT_URL…` variable points the SDK at an
/// `https://` endpoint of another kind (a proxy, say).
pub const TLS_ROOTS: &str = "ORDERFLOW_TLS_ROOTS";

/// Which roots an HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Amazon Trust Services' roots, compiled in: every AWS service
    /// endpoint.
    AwsRoots,
    /// The system's certificate store, read when an SDK client is created:
    /// for an endpoint that any CA may have signed, and for the project's
    /// tools on a developer's machine, which may sit behind a proxy with
    /// its own CA.
    Native,
}

impl Trust {
    /// The trust [`TLS_ROOTS`] asks for (`value`), given the endpoint URLs
    /// the SDK is pointed at (`AWS_ENDPOINT_URL…`), if any.
    ///
    /// A local cloud's endpoint is plain HTTP, which trusts nothing: the
    /// default stays `aws`, and no store is read. An `https://` one may be
    /// signed by any CA, so the default is then the system's store. Until
    /// 2026-12 a third value, `public`, trusted Mozilla's roots compiled in
    /// (`webpki-root-certs`): 0.08 MB of every zip, and 0.7–1 ms of a
    /// function's first invocation behind a local cloud, parsing them. It
    /// is refused, naming `native`, which holds them.
    pub fn from_env<'a>(
        value: Option<&str>,
        endpoints: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: TLS_ROOTS,
            reason,
        };
        match value {
            Some("aws") => Ok(Self::AwsRoots),
            Some("native") => Ok(Self::Native),
            Some("public") => Err(invalid(
                "`public` (Mozilla's roots compiled in) is no longer built in: `native` trusts \
                 the system's store, which holds them"
                    .into(),
            )),
            Some(other) => Err(invalid(format!("{other:?} is not `aws` or `native`"))),
            None if endpoints.into_iter().any(|url| {
                url.get(..8)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
            }) =>
            {
                Ok(Self::Native)
            }
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
        Trust::Native => TrustStore::empty().with_native_roots(true),
    };
    let tls = TlsContext::builder().with_trust_store(store).build()?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https();
    Ok(match trust {
        Trust::Native => client,
        Trust::AwsRoots => SharedHttpClient::new(AtFirstRequest(client)),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use aws_credential_types::provider::ProvideCredentials;
    use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture};
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;

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
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

    /// An HTTP client that records the URI of each request and answers
    /// none: what a client built from a configuration would call.
    #[derive(Debug, Clone, Default)]
    struct Recording(Arc<Mutex<Vec<String>>>);

    impl HttpConnector for Recording {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            self.0.lock().unwrap().push(request.uri().to_owned());
            HttpConnectorFuture::ready(Err(ConnectorError::other("recorded".into(), None)))
        }
    }

    impl HttpClient for Recording {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// Lambda's environment for a function, with `more`.
    fn lambda_env(more: &[(&str, &str)]) -> Vec<(String, String)> {
        [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_LAMBDA_FUNCTION_NAME", "payment"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ]
        .iter()
        .chain(more)
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
    }

    /// The URI of the first request a DynamoDB, an SQS and an EventBridge
    /// client built from `config` send.
    async fn first_uris(config: &SdkConfig) -> [String; 3] {
        let recording = Recording::default();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .http_client(recording.clone())
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(config)
                .http_client(recording.clone())
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        let events = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(config)
                .http_client(recording.clone())
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        assert!(dynamodb.list_tables().send().await.is_err());
        assert!(sqs.list_queues().send().await.is_err());
        assert!(events.list_event_buses().send().await.is_err());
        let uris = recording.0.lock().unwrap().clone();
        uris.try_into().expect("one request each")
    }

    /// The credentials `config` gives its clients.
    async fn credentials_of(config: &SdkConfig) -> Credentials {
        config
            .credentials_provider()
            .expect("a credentials provider")
            .provide_credentials()
            .await
            .expect("credentials")
    }

    #[tokio::test]
    async fn a_function_takes_the_region_and_credentials_lambda_sets() {
        let config = sdk_config_from(lambda_env(&[])).expect("Lambda's environment");
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-1"));
        let credentials = credentials_of(&config).await;
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
        assert!(
            config.identity_cache().is_some(),
            "one cache for every client"
        );
        let retries = config.retry_config().expect("retries");
        assert_eq!(
            (retries.mode(), retries.max_attempts()),
            (RetryMode::Standard, 3)
        );
        assert_eq!(
            first_uris(&config).await,
            [
                "https://dynamodb.eu-west-1.amazonaws.com/",
                "https://sqs.eu-west-1.amazonaws.com/",
                "https://events.eu-west-1.amazonaws.com/",
            ]
        );
        let only_default = lambda_env(&[])
            .into_iter()
            .filter(|(name, _)| name != "AWS_REGION");
        let config = sdk_config_from(only_default).expect("AWS_DEFAULT_REGION alone");
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-1"));
        let config = sdk_config_from(lambda_env(&[("AWS_ACCOUNT_ID", "123456789012")]))
            .expect("with an account id");
        let credentials = credentials_of(&config).await;
        assert_eq!(
            credentials.account_id().map(AccountId::as_str),
            Some("123456789012")
        );
    }

    #[tokio::test]
    async fn endpoint_urls_are_read_per_service_then_for_all_as_the_sdk_reads_them() {
        let config = sdk_config_from(lambda_env(&[
            ("AWS_ENDPOINT_URL", "http://cloud.test:4566"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb.test:8000"),
        ]))
        .expect("endpoints");
        assert_eq!(
            first_uris(&config).await,
            [
                "http://dynamodb.test:8000/",
                "http://cloud.test:4566/",
                "http://cloud.test:4566/",
            ]
        );
        let config = sdk_config_from(lambda_env(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb.test:8000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
        ]))
        .expect("endpoints ignored");
        assert_eq!(
            first_uris(&config).await[0],
            "https://dynamodb.eu-west-1.amazonaws.com/"
        );
    }

    #[tokio::test]
    async fn fips_dual_stack_and_retries_are_read() {
        let config = sdk_config_from(lambda_env(&[
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
            ("AWS_MAX_ATTEMPTS", " 5"),
            ("AWS_RETRY_MODE", "Adaptive "),
        ]))
        .expect("settings");
        let retries = config.retry_config().expect("retries");
        assert_eq!(
            (retries.mode(), retries.max_attempts()),
            (RetryMode::Adaptive, 5)
        );
        assert_eq!(
            first_uris(&config).await[0],
            "https://dynamodb-fips.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn what_is_missing_or_unusable_is_refused_by_name() {
        let refused = |vars: Vec<(String, String)>| {
            sdk_config_from(vars)
                .map(|_| ())
                .expect_err("refused")
                .to_string()
        };
        let without = |name: &str| {
            lambda_env(&[])
                .into_iter()
                .filter(|(n, _)| n != name && n != "AWS_DEFAULT_REGION")
                .collect::<Vec<_>>()
        };
        assert_eq!(
            refused(without("AWS_REGION")),
            "environment variable AWS_REGION is required but not set"
        );
        let no_key = refused(without("AWS_ACCESS_KEY_ID"));
        assert!(
            no_key.starts_with("environment variable AWS_ACCESS_KEY_ID is invalid: not set")
                && no_key.contains("aws configure export-credentials"),
            "{no_key}"
        );
        assert!(refused(without("AWS_SECRET_ACCESS_KEY")).contains("AWS_SECRET_ACCESS_KEY"));
        for name in NOT_READ {
            let message = refused(lambda_env(&[(name, "x")]));
            assert!(
                message.starts_with(&format!("environment variable {name} is invalid"))
                    && message.contains("unset it"),
                "{message}"
            );
        }
        let cases = [
            (
                "AWS_USE_FIPS_ENDPOINT",
                "yes",
                "\"yes\" is not `true` or `false`",
            ),
            (
                "AWS_MAX_ATTEMPTS",
                "0",
                "\"0\" is not a whole number above 0",
            ),
            (
                "AWS_MAX_ATTEMPTS",
                "three",
                "\"three\" is not a whole number above 0",
            ),
            (
                "AWS_RETRY_MODE",
                "legacy",
                "\"legacy\" is not `standard` or `adaptive`",
            ),
        ];
        for (name, value, reason) in cases {
            assert_eq!(
                refused(lambda_env(&[(name, value)])),
                format!("environment variable {name} is invalid: {reason}")
            );
        }
        // Set but empty is unset, as the SDK takes it.
        assert!(sdk_config_from(lambda_env(&[("AWS_SDK_UA_APP_ID", " ")])).is_ok());
    }

    #[test]
    fn other_sources_of_credentials_are_not_consulted_and_named() {
        let shell = [
            ("AWS_PROFILE", "dev"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ];
        let vars = lambda_env(&shell);
        assert_eq!(
            not_consulted(&set_vars(vars.clone())),
            ["AWS_PROFILE", "AWS_ROLE_ARN"]
        );
        let config = sdk_config_from(vars).expect("the environment's credentials are enough");
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-1"));
        assert!(not_consulted(&set_vars(lambda_env(&[("AWS_PROFILE", "")]))).is_empty());
        let without_keys = lambda_env(&shell)
            .into_iter()
            .filter(|(name, _)| name != "AWS_ACCESS_KEY_ID");
        let message = sdk_config_from(without_keys)
            .map(|_| ())
            .expect_err("no keys")
            .to_string();
        assert!(
            message.contains("(AWS_PROFILE, AWS_ROLE_ARN set, but not consulted)"),
            "{message}"
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
    fn tls_roots_default_to_aws_and_to_the_systems_behind_an_https_endpoint() {
        let trust = |value, endpoints: &[&str]| {
            Trust::from_env(value, endpoints.iter().copied()).map_err(|e| e.to_string())
        };
        assert_eq!(trust(None, &[]), Ok(Trust::AwsRoots));
        assert_eq!(
            trust(None, &["http://localhost.localstack.cloud:4566"]),
            Ok(Trust::AwsRoots)
        );
        assert_eq!(
            trust(None, &["http://127.0.0.1:4566", "HTTPS://proxy.test"]),
            Ok(Trust::Native)
        );
        assert_eq!(
            trust(Some("aws"), &["https://proxy.test"]),
            Ok(Trust::AwsRoots)
        );
        assert_eq!(trust(Some("native"), &[]), Ok(Trust::Native));
        assert_eq!(
            trust(Some("system"), &[]),
            Err("environment variable ORDERFLOW_TLS_ROOTS is invalid: \"system\" is not `aws` or `native`".into())
        );
        let public = trust(Some("public"), &[]).expect_err("public is gone");
        assert!(public.contains("`native`"), "{public}");
    }

    #[test]
    fn a_functions_trust_follows_its_endpoints_unless_they_are_ignored() {
        let trust = |more: &[(&str, &str)], ignore: bool| {
            let ignored = [("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")];
            let ignored = if ignore { &ignored[..] } else { &[] };
            let vars = set_vars(lambda_env(&[more, ignored].concat()));
            let endpoints = endpoint_urls(&vars).expect("endpoints");
            trust_of(&vars, &endpoints).expect("trust")
        };
        assert_eq!(trust(&[], false), Trust::AwsRoots);
        let local = [("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")];
        assert_eq!(trust(&local, false), Trust::AwsRoots);
        let proxy = [("AWS_ENDPOINT_URL_S3", "https://proxy.test")];
        assert_eq!(trust(&proxy, false), Trust::Native);
        assert_eq!(trust(&proxy, true), Trust::AwsRoots);
        let asked = [
            ("AWS_ENDPOINT_URL_S3", "https://proxy.test"),
            (TLS_ROOTS, "aws"),
        ];
        assert_eq!(trust(&asked, false), Trust::AwsRoots);
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
        // Mozilla's whole program, to test `pem_of` on many certificates.
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
