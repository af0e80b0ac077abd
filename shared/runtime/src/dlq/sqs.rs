//! The SQS adapter of [`DeadLetterSink`]: dead letters sent to the DLQ with
//! their reason as message attributes, and retries made visible sooner.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue};
use aws_types::SdkConfig;

use super::{DeadLetter, DeadLetterSink, RetryLater};
use crate::error::Transient;

/// Sends dead letters to an SQS queue, and changes the visibility of
/// failed records in their source queue.
#[derive(Debug)]
pub struct SqsDeadLetters {
    client: SqsClient,
    queue_url: String,
    /// Source queue URLs by ARN, looked up once (GetQueueUrl).
    sources: Mutex<HashMap<String, String>>,
}

/// The SQS client: given, or created when a record first fails.
#[derive(Debug)]
enum SqsClient {
    Given(Client),
    WhenNeeded {
        config: Box<SdkConfig>,
        client: OnceLock<Client>,
    },
}

impl SqsDeadLetters {
    /// Dead letters to `queue_url`, through `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self::with(SqsClient::Given(client), queue_url)
    }

    /// Dead letters to `queue_url`, through an SQS client created from
    /// `aws` when a record first fails.
    ///
    /// Creating an SDK client parses its crate's endpoint partitions (a
    /// JSON table with a regular expression per partition): about a tenth
    /// of a function's cold init, per client. The SQS client sends only
    /// for a failed record (its dead letter, or its retry made visible
    /// sooner), so most processes never create it.
    pub fn when_needed(aws: &SdkConfig, queue_url: impl Into<String>) -> Self {
        let client = SqsClient::WhenNeeded {
            config: Box::new(aws.clone()),
            client: OnceLock::new(),
        };
        Self::with(client, queue_url)
    }

    fn with(client: SqsClient, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            sources: Mutex::default(),
        }
    }

    fn client(&self) -> &Client {
        match &self.client {
            SqsClient::Given(client) => client,
            SqsClient::WhenNeeded { config, client } => client.get_or_init(|| Client::new(config)),
        }
    }

    /// The URL of the queue `arn` (`arn:aws:sqs:<region>:<account>:<name>`).
    async fn source_url(&self, arn: &str) -> Result<String, Transient> {
        if let Some(url) = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(arn)
        {
            return Ok(url.clone());
        }
        let mut parts = arn.rsplitn(3, ':');
        let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
            return Err(Transient::new(format!(
                "event source {arn} is not an SQS queue ARN"
            )));
        };
        let url = self
            .client()
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| Transient::caused_by("SQS GetQueueUrl of the source queue failed", e))?
            .queue_url
            .ok_or_else(|| Transient::new("SQS GetQueueUrl returned no URL"))?;
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(arn.to_owned(), url.clone());
        Ok(url)
    }
}

impl DeadLetterSink for SqsDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), Transient> {
        let mut request = self
            .client()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&letter.body);
        for (name, value) in letter.attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type(if name.ends_with("receive_count") {
                    "Number"
                } else {
                    "String"
                })
                .string_value(value)
                .build()
                .map_err(|e| Transient::caused_by("building a DLQ message attribute", e))?;
            request = request.message_attributes(name, attribute);
        }
        request
            .send()
            .await
            .map_err(|e| Transient::caused_by("SQS SendMessage to the DLQ failed", e))?;
        Ok(())
    }

    async fn retry_later(&self, queue_arn: &str, retries: &[RetryLater]) -> Result<(), Transient> {
        if retries.is_empty() {
            return Ok(());
        }
        let url = self.source_url(queue_arn).await?;
        change_visibility(self.client(), &url, retries).await
    }
}

/// Sets when each message of the queue at `url` named by a receipt handle
/// in `retries` becomes visible again, ten to a request. A delay of zero
/// makes it visible at once.
pub async fn change_visibility(
    client: &Client,
    url: &str,
    retries: &[RetryLater],
) -> Result<(), Transient> {
    for chunk in retries.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, retry)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&retry.receipt_handle)
                    .visibility_timeout(i32::try_from(retry.delay.as_secs()).unwrap_or(i32::MAX))
                    .build()
                    .map_err(|e| Transient::caused_by("building a visibility change", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Transient::caused_by("SQS ChangeMessageVisibilityBatch failed", e))?;
        if let Some(failed) = out.failed().first() {
            return Err(Transient::new(format!(
                "SQS ChangeMessageVisibilityBatch failed for {} record(s): {}",
                out.failed().len(),
                failed.code()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::BehaviorVersion;
    use aws_sdk_sqs::config::Region;
    use aws_smithy_runtime_api::client::http::SharedHttpClient;

    use super::*;
    use crate::aws::tests::Counting;

    #[test]
    fn a_deferred_client_is_created_at_its_first_use_and_once() {
        let created = Arc::new(AtomicUsize::new(0));
        let aws = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .http_client(SharedHttpClient::new(Counting(created.clone())))
            .build();
        let sink = SqsDeadLetters::when_needed(&aws, "http://localhost/dlq");
        assert_eq!(created.load(Ordering::SeqCst), 0, "created with the sink");
        let _ = sink.client();
        assert_eq!(
            created.load(Ordering::SeqCst),
            1,
            "not created at first use"
        );
        let _ = sink.client();
        assert_eq!(created.load(Ordering::SeqCst), 1, "created again");
    }
}
