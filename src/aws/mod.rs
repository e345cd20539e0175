//! AWS clients: the one place where S3, Lambda and DynamoDB clients are built, so the
//! endpoint override, the retry policy and the trimming of environment values follow
//! the same rules everywhere.
//!
//! Credentials and region come from the default AWS configuration chain. An endpoint in
//! the service's own variable (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_LAMBDA`,
//! `AWS_ENDPOINT_URL_DYNAMODB`) or in `AWS_ENDPOINT_URL` points a client at another
//! server, such as a local one; S3 is then addressed path-style. Values are trimmed, and
//! a blank value counts as unset.
//!
//! Callers that turn the SDK's retries off ([`SdkRetries::Off`]) retry with [`retry`]:
//! its policy, and the classification of a failed request of any service.

pub mod retry;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;

/// The AWS services the archiver talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3 (the archive).
    S3,
    /// AWS Lambda (replay's `Invoke`).
    Lambda,
    /// Amazon DynamoDB (restore).
    DynamoDb,
}

impl Service {
    /// The service's own endpoint variable.
    pub fn endpoint_variable(self) -> &'static str {
        match self {
            Service::S3 => "AWS_ENDPOINT_URL_S3",
            Service::Lambda => "AWS_ENDPOINT_URL_LAMBDA",
            Service::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
        }
    }
}

/// How the SDK retries a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkRetries {
    /// No SDK retries: the caller retries with its own policy (the S3 sink, restore's
    /// batch writes).
    Off,
    /// The SDK's standard retry mode, with at most this many attempts per request.
    Standard(u32),
}

/// How a client is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Retries made by the SDK.
    pub retries: SdkRetries,
    /// Longest one request attempt may take; `None` leaves the SDK's default.
    pub attempt_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retries: SdkRetries::Standard(3),
            attempt_timeout: None,
        }
    }
}

/// The endpoint override for a service: its own variable, else `AWS_ENDPOINT_URL`,
/// trimmed; blank values count as unset.
pub fn endpoint_override(service: Service) -> Option<String> {
    endpoint_from(|name| std::env::var(name).ok(), service)
}

fn endpoint_from(var: impl Fn(&str) -> Option<String>, service: Service) -> Option<String> {
    [service.endpoint_variable(), "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| var(name))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// The shared AWS configuration from the default chain.
pub async fn shared_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

fn retry_config(options: &ClientOptions) -> RetryConfig {
    match options.retries {
        SdkRetries::Off => RetryConfig::disabled(),
        SdkRetries::Standard(n) => RetryConfig::standard().with_max_attempts(n.max(1)),
    }
}

fn timeout_config(options: &ClientOptions) -> TimeoutConfig {
    let mut t = TimeoutConfig::builder().connect_timeout(Duration::from_secs(3));
    if let Some(d) = options.attempt_timeout {
        t = t.operation_attempt_timeout(d);
    }
    t.build()
}

/// An S3 client. With an endpoint override it is addressed path-style. Request
/// checksums are computed when an operation requires them (the sink sets SHA-256 on
/// its puts itself).
pub fn s3(shared: &SdkConfig, options: &ClientOptions) -> aws_sdk_s3::Client {
    s3_at(shared, options, endpoint_override(Service::S3))
}

/// An S3 client at an explicit endpoint (path-style), or AWS's when `None`.
pub fn s3_at(
    shared: &SdkConfig,
    options: &ClientOptions,
    endpoint: Option<String>,
) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(shared)
        .retry_config(retry_config(options))
        .timeout_config(timeout_config(options))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// A Lambda client.
pub fn lambda(shared: &SdkConfig, options: &ClientOptions) -> aws_sdk_lambda::Client {
    let mut config = aws_sdk_lambda::config::Builder::from(shared)
        .retry_config(retry_config(options))
        .timeout_config(timeout_config(options));
    if let Some(endpoint) = endpoint_override(Service::Lambda) {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_lambda::Client::from_conf(config.build())
}

/// A DynamoDB client.
pub fn dynamodb(shared: &SdkConfig, options: &ClientOptions) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(shared)
        .retry_config(retry_config(options))
        .timeout_config(timeout_config(options));
    if let Some(endpoint) = endpoint_override(Service::DynamoDb) {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_override_prefers_the_service_variable_and_trims() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            endpoint_from(
                env(&[
                    ("AWS_ENDPOINT_URL", "http://all"),
                    ("AWS_ENDPOINT_URL_S3", " http://s3 \n")
                ]),
                Service::S3
            ),
            Some("http://s3".to_string())
        );
        assert_eq!(
            endpoint_from(
                env(&[
                    ("AWS_ENDPOINT_URL", " http://all "),
                    ("AWS_ENDPOINT_URL_DYNAMODB", "  ")
                ]),
                Service::DynamoDb
            ),
            Some("http://all".to_string())
        );
        assert_eq!(endpoint_from(env(&[]), Service::Lambda), None);
        assert_eq!(
            endpoint_from(env(&[("AWS_ENDPOINT_URL", "")]), Service::Lambda),
            None
        );
    }
}
