//! S3's `PutObject`, the one S3 call shipping makes, sent through the SDK's
//! own orchestrator, signer, retries and HTTP client, without the SDK's S3
//! client.
//!
//! The S3 client was most of what made shipping's bootstrap larger than
//! the others': its endpoint rules, its many operations' shared code, and
//! the flexible checksums it links, whose CRC crate carries lookup tables
//! for some forty CRC variants (about 0.6 MB of the zip). A label needs
//! none of it: one `PUT` of a small document, whose SHA-256 the signature
//! covers (`x-amz-content-sha256`), which S3 checks on receipt.
//!
//! What this module owns, then, is what the S3 client did for that one
//! call:
//!
//! - **The endpoint** ([`S3Endpoint`]): an `AWS_ENDPOINT_URL_S3` or
//!   `AWS_ENDPOINT_URL` override, addressed path-style, as local clouds
//!   take it; otherwise the regional endpoint of the `aws`, `aws-cn` or
//!   `aws-us-gov` partition, with FIPS and dual stack as configured, the
//!   bucket in the host name when it can be (virtual-hosted), in the path
//!   when not. A region of any other partition is refused at cold start,
//!   naming the override that would serve it.
//! - **The request**: the key percent-encoded once, as S3 signs it; the
//!   body with its length and media type.
//! - **The signature**: the SDK's SigV4 signer, with S3's settings (the
//!   path encoded once and not normalized, the payload's SHA-256 in a
//!   header). A test checks them against AWS's own worked example.
//! - **Errors**: S3's XML error code and message, kept in [`S3Error`];
//!   5xx answers, transport errors, throttling (`SlowDown`) and timeouts
//!   (`RequestTimeout`) retried by the SDK's standard strategy and
//!   classifiers, as configured by `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE`
//!   (adaptive included).

use std::fmt;

use aws_runtime::auth::sigv4::{SCHEME_ID, SigV4AuthScheme};
use aws_runtime::auth::{SigV4OperationSigningConfig, SigningOptions};
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime::client::retries::classifiers::{
    HttpStatusCodeClassifier, TransientErrorClassifier,
};
use aws_smithy_runtime_api::client::auth::AuthSchemeOptionResolverParams;
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_runtime_api::client::runtime_plugin::StaticRuntimePlugin;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::Layer;
use aws_smithy_types::error::metadata::{ErrorMetadata, ProvideErrorMetadata};
use aws_smithy_types::retry::RetryConfig;
use aws_types::SdkConfig;
use aws_types::region::SigningRegion;
use aws_types::service_config::ServiceConfigKey;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a key keeps unencoded in the path: S3's unreserved characters and
/// the `/` between a key's parts.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Why S3 labels cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    /// The configuration has no region.
    #[error("S3 needs a region (AWS_REGION)")]
    NoRegion,
    /// The region is in a partition this module does not address.
    #[error(
        "S3: region `{0}` is not in the aws, aws-cn or aws-us-gov partition, whose endpoints \
         this function knows; set AWS_ENDPOINT_URL_S3 to the region's S3 endpoint"
    )]
    Partition(String),
    /// FIPS endpoints are asked for where S3 has none.
    #[error("S3 has no FIPS endpoints in region `{0}` (AWS_USE_FIPS_ENDPOINT)")]
    NoFips(String),
    /// The configuration has no credentials provider.
    #[error("S3 needs credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")]
    NoCredentials,
    /// The configuration has no HTTP client.
    #[error("S3 needs the SDK configuration's HTTP client")]
    NoHttpClient,
}

/// Where a bucket's objects are addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// The scheme and host (and any path) every request goes to.
    pub url: String,
    /// What comes before the key in the path: `/` for a virtual-hosted
    /// bucket, `/<bucket>/` for path-style.
    pub prefix: String,
}

impl S3Endpoint {
    /// The endpoint of `bucket` under `config`: see the module's doc.
    pub fn of(config: &SdkConfig, bucket: &str) -> Result<Self, S3ConfigError> {
        let configured = config
            .service_config()
            .and_then(|c| {
                let key = ServiceConfigKey::builder()
                    .service_id("S3")
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build()
                    .ok()?;
                c.load_config(key)
            })
            .or_else(|| config.endpoint_url().map(str::to_owned));
        if let Some(url) = configured {
            return Ok(Self::path_style(url.trim_end_matches('/'), bucket));
        }
        let region = config.region().ok_or(S3ConfigError::NoRegion)?.as_ref();
        let suffix = partition_suffix(region)?;
        let fips = config.use_fips().unwrap_or(false);
        let dual_stack = config.use_dual_stack().unwrap_or(false);
        if fips && suffix.ends_with(".cn") {
            return Err(S3ConfigError::NoFips(region.to_owned()));
        }
        let host = format!(
            "{}{}.{region}.{suffix}",
            if fips { "s3-fips" } else { "s3" },
            if dual_stack { ".dualstack" } else { "" },
        );
        Ok(if virtual_hostable(bucket) {
            Self {
                url: format!("https://{bucket}.{host}"),
                prefix: "/".into(),
            }
        } else {
            Self::path_style(&format!("https://{host}"), bucket)
        })
    }

    fn path_style(url: &str, bucket: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: format!("/{}/", utf8_percent_encode(bucket, KEY)),
        }
    }

    /// The path of `key`'s object, encoded once.
    pub fn path(&self, key: &str) -> String {
        format!("{}{}", self.prefix, utf8_percent_encode(key, KEY))
    }
}

/// The DNS suffix of `region`'s partition, for the partitions this module
/// addresses.
fn partition_suffix(region: &str) -> Result<&'static str, S3ConfigError> {
    let shaped = |prefix: &str| {
        region.strip_prefix(prefix).is_some_and(|rest| {
            let mut parts = rest.split('-');
            matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(area), Some(n), None)
                    if !area.is_empty()
                        && area.bytes().all(|b| b.is_ascii_lowercase())
                        && !n.is_empty()
                        && n.bytes().all(|b| b.is_ascii_digit())
            )
        })
    };
    const AWS: &[&str] = &[
        "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
    ];
    if shaped("cn-") {
        Ok("amazonaws.com.cn")
    } else if shaped("us-gov-") || AWS.iter().any(|p| shaped(p)) {
        Ok("amazonaws.com")
    } else {
        Err(S3ConfigError::Partition(region.to_owned()))
    }
}

/// Whether `bucket` can be the first label of an HTTPS host name: 3 to 63
/// lowercase letters, digits and hyphens, starting and ending with a letter
/// or digit. (A dot would break the wildcard certificate.)
fn virtual_hostable(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
}

/// S3's signing settings: the path encoded once and not normalized, the
/// payload's SHA-256 in `x-amz-content-sha256`.
pub fn signing_options() -> SigningOptions {
    let mut options = SigningOptions::default();
    options.double_uri_encode = false;
    options.normalize_uri_path = false;
    options.content_sha256_header = true;
    options
}

/// An error answer from S3: its HTTP status, and the code and message of
/// its XML error document when it has one.
#[derive(Debug)]
pub struct S3Error {
    /// The HTTP status.
    pub status: u16,
    meta: ErrorMetadata,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = self.code() {
            write!(f, " {code}")?;
        }
        if let Some(message) = self.message() {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for S3Error {}

/// S3's error code (`AccessDenied`, `NoSuchBucket`, `SlowDown`, …) and
/// message, which the SDK's classifier reads to retry throttling
/// (`SlowDown`) and timeouts (`RequestTimeout`, a 400) as the S3 client
/// did.
impl ProvideErrorMetadata for S3Error {
    fn meta(&self) -> &ErrorMetadata {
        &self.meta
    }
}

impl S3Error {
    fn of(response: &HttpResponse) -> Self {
        let body = response
            .body()
            .bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = element(&body, "Code") {
            meta = meta.code(code);
        }
        if let Some(message) = element(&body, "Message") {
            meta = meta.message(message);
        }
        Self {
            status: response.status().as_u16(),
            meta: meta.build(),
        }
    }
}

/// The text of the first `<name>` element of an S3 error document (flat,
/// and written by S3: no attributes, no nesting within these two).
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml.get(start..)?.find("</")?;
    Some(xml.get(start..end)?.to_owned())
}

/// One object to put.
#[derive(Debug)]
pub struct PutObject {
    /// Its key.
    pub key: String,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// `PutObject` into one bucket.
#[derive(Debug, Clone)]
pub struct S3Put {
    operation: Operation<PutObject, (), S3Error>,
}

impl S3Put {
    /// Puts into `bucket`, with `config`'s region, endpoints, credentials,
    /// HTTP client and retries.
    pub fn new(config: &SdkConfig, bucket: &str) -> Result<Self, S3ConfigError> {
        Self::at(config, S3Endpoint::of(config, bucket)?, None)
    }

    /// Puts at `endpoint`, with `interceptor` too if given (tests).
    fn at(
        config: &SdkConfig,
        endpoint: S3Endpoint,
        interceptor: Option<SharedInterceptor>,
    ) -> Result<Self, S3ConfigError> {
        let region = config.region().ok_or(S3ConfigError::NoRegion)?.clone();
        let credentials = config
            .credentials_provider()
            .ok_or(S3ConfigError::NoCredentials)?;
        let http = config.http_client().ok_or(S3ConfigError::NoHttpClient)?;

        let signing = SigV4OperationSigningConfig {
            region: Some(SigningRegion::from(region)),
            name: Some(aws_types::SigningName::from_static("s3")),
            signing_options: signing_options(),
            ..Default::default()
        };
        let mut layer = Layer::new("orderflow.s3");
        layer.store_put(signing);
        layer.store_put(AuthSchemeOptionResolverParams::new(()));
        let mut components = RuntimeComponentsBuilder::new("orderflow.s3")
            .with_auth_scheme_option_resolver(Some(StaticAuthSchemeOptionResolver::new(vec![
                SCHEME_ID,
            ])))
            .with_auth_scheme(SigV4AuthScheme::new())
            .with_identity_resolver(SCHEME_ID, credentials);
        if let Some(cache) = config.identity_cache() {
            components = components.with_identity_cache(Some(cache));
        }
        let auth = StaticRuntimePlugin::new()
            .with_config(layer.freeze())
            .with_runtime_components(components);

        let retry = config
            .retry_config()
            .cloned()
            .unwrap_or_else(RetryConfig::standard);
        let mut builder = Operation::builder()
            .service_name("s3")
            .operation_name("PutObject")
            .http_client(http)
            .endpoint_url(&endpoint.url)
            .standard_retry(&retry)
            .retry_classifier(HttpStatusCodeClassifier::default())
            .retry_classifier(TransientErrorClassifier::<S3Error>::new())
            .retry_classifier(AwsErrorCodeClassifier::<S3Error>::new())
            .runtime_plugin(auth);
        if let Some(version) = config.behavior_version() {
            builder = builder.behavior_version(version);
        }
        if let Some(timeouts) = config.timeout_config() {
            builder = builder.timeout_config(timeouts.clone());
        }
        if let Some(sleep) = config.sleep_impl() {
            builder = builder.sleep_impl(sleep);
        }
        if let Some(time) = config.time_source() {
            builder = builder.time_source(time);
        }
        if let Some(interceptor) = interceptor {
            builder = builder.interceptor(interceptor);
        }
        let operation = builder
            .serializer(move |put: PutObject| {
                let request = http::Request::builder()
                    .method("PUT")
                    .uri(endpoint.path(&put.key))
                    .header("content-type", put.content_type)
                    .header("content-length", put.body.len())
                    .body(SdkBody::from(put.body))?;
                Ok(HttpRequest::try_from(request)?)
            })
            .deserializer(|response: &HttpResponse| {
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(OrchestratorError::operation(S3Error::of(response)))
                }
            })
            .build();
        Ok(Self { operation })
    }

    /// Puts `put`, replacing the object under its key.
    pub async fn put(&self, put: PutObject) -> Result<(), SdkError<S3Error, HttpResponse>> {
        self.operation.invoke(put).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, UNIX_EPOCH};

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_async::rt::sleep::TokioSleep;
    use aws_smithy_async::time::StaticTimeSource;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;
    use aws_types::region::Region;

    use super::*;

    /// A request as sent: method, URI, headers (lowercase, sorted), body.
    #[derive(Debug, Clone)]
    struct Sent {
        uri: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    /// Records each request and answers with the next of its answers
    /// (status, body), the last one again when they run out.
    #[derive(Debug, Clone)]
    struct Recording {
        sent: Arc<Mutex<Vec<Sent>>>,
        answers: Arc<Vec<(u16, &'static str)>>,
    }

    impl Recording {
        fn answering(answers: &[(u16, &'static str)]) -> Self {
            Self {
                sent: Arc::default(),
                answers: Arc::new(answers.to_vec()),
            }
        }

        fn sent(&self) -> Vec<Sent> {
            self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    impl HttpConnector for Recording {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let mut headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .collect();
            headers.sort();
            let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            sent.push(Sent {
                uri: request.uri().to_owned(),
                headers,
                body: request.body().bytes().unwrap_or_default().to_vec(),
            });
            let (status, body) = self.answers[(sent.len() - 1).min(self.answers.len() - 1)];
            let response = HttpResponse::new(
                status.try_into().unwrap_or_else(|e| panic!("{e}")),
                SdkBody::from(body),
            );
            HttpConnectorFuture::ready(Ok(response))
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

    /// AWS's example credentials, region and time (24 May 2013).
    fn config(
        http: &Recording,
        more: impl FnOnce(aws_types::sdk_config::Builder) -> aws_types::sdk_config::Builder,
    ) -> SdkConfig {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        more(
            SdkConfig::builder()
                .region(Region::new("us-east-1"))
                .credentials_provider(SharedCredentialsProvider::new(credentials))
                .http_client(SharedHttpClient::new(http.clone()))
                .sleep_impl(TokioSleep::new())
                .time_source(StaticTimeSource::new(
                    UNIX_EPOCH + Duration::from_secs(1_369_353_600),
                ))
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(Duration::from_millis(1)),
                )
                .behavior_version(
                    aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest(),
                ),
        )
        .build()
    }

    fn header<'a>(sent: &'a Sent, name: &str) -> Option<&'a str> {
        sent.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Makes a request into the one of AWS's worked example ("Example: PUT
    /// Object", in S3's "Signature Calculations for the Authorization
    /// Header: Transferring Payload in a Single Chunk"): adds its two extra
    /// headers and drops the two it does not sign.
    #[derive(Debug)]
    struct AsInTheExample;

    impl Intercept for AsInTheExample {
        fn name(&self) -> &'static str {
            "AsInTheExample"
        }

        fn modify_before_signing(
            &self,
            context: &mut BeforeTransmitInterceptorContextMut<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let headers = context.request_mut().headers_mut();
            headers.remove("content-type");
            headers.remove("content-length");
            headers.insert("date", "Fri, 24 May 2013 00:00:00 GMT");
            headers.insert("x-amz-storage-class", "REDUCED_REDUNDANCY");
            Ok(())
        }
    }

    /// The signature is S3's: through this module's operation, the request
    /// of AWS's worked example gets the example's signature, byte for byte
    /// (its `$` encoded once, the payload's SHA-256 in a header, the scope
    /// `s3`).
    #[tokio::test]
    async fn a_put_is_signed_as_in_aws_worked_example() {
        let http = Recording::answering(&[(200, "")]);
        let endpoint = S3Endpoint {
            url: "https://examplebucket.s3.amazonaws.com".into(),
            prefix: "/".into(),
        };
        let s3 = S3Put::at(
            &config(&http, |b| b),
            endpoint,
            Some(SharedInterceptor::new(AsInTheExample)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let put = PutObject {
            key: "test$file.text".into(),
            content_type: "text/plain",
            body: b"Welcome to Amazon S3.".to_vec(),
        };
        s3.put(put).await.unwrap_or_else(|e| panic!("{e:?}"));
        let sent = http.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].uri,
            "https://examplebucket.s3.amazonaws.com/test%24file.text"
        );
        assert_eq!(
            header(&sent[0], "x-amz-content-sha256"),
            Some("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        );
        assert_eq!(
            header(&sent[0], "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, \
                 Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{sent:?}"
        );
    }

    /// A label's request as it goes: the key encoded once, the media type
    /// and length, the body whole, signed with them.
    #[tokio::test]
    async fn a_label_goes_as_one_signed_put() {
        let http = Recording::answering(&[(200, "")]);
        let s3 = S3Put::new(&config(&http, |b| b), "orderflow-labels-123")
            .unwrap_or_else(|e| panic!("{e}"));
        let put = PutObject {
            key: "labels/ord 1001$é.pdf".into(),
            content_type: "application/pdf",
            body: b"%PDF-1.4".to_vec(),
        };
        s3.put(put).await.unwrap_or_else(|e| panic!("{e:?}"));
        let sent = http.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].uri,
            "https://orderflow-labels-123.s3.us-east-1.amazonaws.com/labels/ord%201001%24%C3%A9.pdf"
        );
        assert_eq!(header(&sent[0], "content-type"), Some("application/pdf"));
        assert_eq!(header(&sent[0], "content-length"), Some("8"));
        assert_eq!(sent[0].body, b"%PDF-1.4");
        let authorization = header(&sent[0], "authorization").unwrap_or_default();
        assert!(
            authorization.contains("/us-east-1/s3/aws4_request")
                && authorization.contains(
                    "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date,"
                ),
            "{authorization}"
        );
    }

    /// S3's error answers keep its code and message; a 4xx is not retried
    /// but for `RequestTimeout`, a 503 (S3's `SlowDown`) is, up to the
    /// configured attempts.
    #[tokio::test]
    async fn errors_keep_s3s_code_and_are_retried_as_the_s3_client_did() {
        const DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R</RequestId></Error>";
        const SLOW: &str = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let put = || PutObject {
            key: "k".into(),
            content_type: "application/pdf",
            body: vec![1],
        };

        let http = Recording::answering(&[(403, DENIED)]);
        let s3 = S3Put::new(&config(&http, |b| b), "b-1").unwrap_or_else(|e| panic!("{e}"));
        let error = s3.put(put()).await.expect_err("403");
        let service = error
            .as_service_error()
            .unwrap_or_else(|| panic!("{error:?}"));
        assert_eq!(service.status, 403);
        assert_eq!(service.code(), Some("AccessDenied"));
        assert_eq!(service.to_string(), "HTTP 403 AccessDenied: Access Denied");
        assert_eq!(http.sent().len(), 1);

        let http = Recording::answering(&[(503, SLOW), (200, "")]);
        let s3 = S3Put::new(&config(&http, |b| b), "b-1").unwrap_or_else(|e| panic!("{e}"));
        s3.put(put()).await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(http.sent().len(), 2);

        let http = Recording::answering(&[(503, SLOW)]);
        let s3 = S3Put::new(&config(&http, |b| b), "b-1").unwrap_or_else(|e| panic!("{e}"));
        let error = s3.put(put()).await.expect_err("503 three times");
        assert_eq!(
            error.as_service_error().and_then(|e| e.code()),
            Some("SlowDown")
        );
        assert_eq!(http.sent().len(), 3);

        // S3's RequestTimeout is a 400 the S3 client retried, and so is it
        // here.
        const TIMEOUT: &str = "<Error><Code>RequestTimeout</Code><Message>Your socket connection to the server was not read from or written to within the timeout period.</Message></Error>";
        let http = Recording::answering(&[(400, TIMEOUT), (200, "")]);
        let s3 = S3Put::new(&config(&http, |b| b), "b-1").unwrap_or_else(|e| panic!("{e}"));
        s3.put(put()).await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(http.sent().len(), 2);
    }

    fn endpoint(
        region: &str,
        bucket: &str,
        more: impl FnOnce(aws_types::sdk_config::Builder) -> aws_types::sdk_config::Builder,
    ) -> Result<S3Endpoint, String> {
        let http = Recording::answering(&[(200, "")]);
        let config = config(&http, |b| more(b.region(Region::new(region.to_owned()))));
        S3Endpoint::of(&config, bucket).map_err(|e| e.to_string())
    }

    fn at(url: &str, prefix: &str) -> Result<S3Endpoint, String> {
        Ok(S3Endpoint {
            url: url.into(),
            prefix: prefix.into(),
        })
    }

    /// The endpoints S3's rules give for these settings.
    #[test]
    fn endpoints_follow_the_partition_fips_dual_stack_and_overrides() {
        let b = |b| b;
        assert_eq!(
            endpoint("eu-west-1", "labels", b),
            at("https://labels.s3.eu-west-1.amazonaws.com", "/")
        );
        assert_eq!(
            endpoint("cn-north-1", "labels", b),
            at("https://labels.s3.cn-north-1.amazonaws.com.cn", "/")
        );
        assert_eq!(
            endpoint("us-gov-west-1", "labels", |b| b.use_fips(true)),
            at("https://labels.s3-fips.us-gov-west-1.amazonaws.com", "/")
        );
        assert_eq!(
            endpoint("us-east-2", "labels", |b| b.use_dual_stack(true)),
            at("https://labels.s3.dualstack.us-east-2.amazonaws.com", "/")
        );
        assert_eq!(
            endpoint("us-east-2", "labels", |b| b
                .use_fips(true)
                .use_dual_stack(true)),
            at(
                "https://labels.s3-fips.dualstack.us-east-2.amazonaws.com",
                "/"
            )
        );
        // Not a host name's first label: path-style.
        assert_eq!(
            endpoint("eu-west-1", "my.labels", b),
            at("https://s3.eu-west-1.amazonaws.com", "/my.labels/")
        );
        assert_eq!(
            endpoint("eu-west-1", "Labels", b),
            at("https://s3.eu-west-1.amazonaws.com", "/Labels/")
        );
        // A local cloud's endpoint, for all services: path-style.
        assert_eq!(
            endpoint("us-east-1", "labels", |b| b
                .endpoint_url("http://127.0.0.1:4566/")),
            at("http://127.0.0.1:4566", "/labels/")
        );
        for region in [
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "eusc-de-east-1",
            "mars-1",
            "us-east",
        ] {
            let refused = endpoint(region, "labels", b).expect_err(region);
            assert!(refused.contains("AWS_ENDPOINT_URL_S3"), "{refused}");
        }
        // The per-service override, as Lambda's environment gives it, wins.
        let vars = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_S3", "http://localhost:4566"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config =
            orderflow_runtime::aws::sdk_config_from(vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            S3Endpoint::of(&config, "labels").map_err(|e| e.to_string()),
            at("http://localhost:4566", "/labels/")
        );
        assert!(
            endpoint("cn-north-1", "labels", |b| b.use_fips(true))
                .expect_err("no FIPS in China")
                .contains("FIPS")
        );
    }
}
