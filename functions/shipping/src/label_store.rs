//! Where labels are stored: the [`LabelStore`] port, with S3 and in-memory
//! adapters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_types::SdkConfig;
use orderflow_contracts::LabelLocation;
use orderflow_runtime::Transient;

use crate::s3::{PutObject, S3ConfigError, S3Put};

/// The media type of labels.
pub const CONTENT_TYPE: &str = "application/pdf";

/// Stores label documents.
pub trait LabelStore: Send + Sync {
    /// Stores `pdf` under `key`, replacing what is there.
    fn put(
        &self,
        key: &str,
        pdf: Vec<u8>,
    ) -> impl Future<Output = Result<LabelLocation, Transient>> + Send;
}

/// Labels in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Labels {
    s3: S3Put,
    bucket: String,
}

impl S3Labels {
    /// Labels in `bucket`, with `config`'s region, endpoints, credentials
    /// and retries (see [`crate::s3`]).
    pub fn new(config: &SdkConfig, bucket: &str) -> Result<Self, S3ConfigError> {
        Ok(Self {
            s3: S3Put::new(config, bucket)?,
            bucket: bucket.to_owned(),
        })
    }
}

impl LabelStore for S3Labels {
    async fn put(&self, key: &str, pdf: Vec<u8>) -> Result<LabelLocation, Transient> {
        let put = PutObject {
            key: key.to_owned(),
            content_type: CONTENT_TYPE,
            body: pdf,
        };
        self.s3
            .put(put)
            .await
            .map_err(|e| Transient::caused_by("S3 PutObject (label) failed", e))?;
        Ok(LabelLocation {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_type: CONTENT_TYPE.to_owned(),
        })
    }
}

/// Labels in process memory (tests, local invoke).
#[derive(Debug, Default)]
pub struct MemoryLabels {
    documents: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryLabels {
    /// The document stored under `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// How many documents are stored.
    pub fn len(&self) -> usize {
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LabelStore for MemoryLabels {
    async fn put(&self, key: &str, pdf: Vec<u8>) -> Result<LabelLocation, Transient> {
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), pdf);
        Ok(LabelLocation {
            bucket: "memory".to_owned(),
            key: key.to_owned(),
            content_type: CONTENT_TYPE.to_owned(),
        })
    }
}

/// The label store a deployment uses, chosen at startup.
#[derive(Debug)]
pub enum Labels {
    /// S3.
    S3(S3Labels),
    /// Memory.
    Memory(MemoryLabels),
}

impl LabelStore for Labels {
    async fn put(&self, key: &str, pdf: Vec<u8>) -> Result<LabelLocation, Transient> {
        match self {
            Self::S3(s3) => s3.put(key, pdf).await,
            Self::Memory(memory) => memory.put(key, pdf).await,
        }
    }
}
