//! Errors, typed by what the caller must do about them.

use std::error::Error as StdError;

use orderflow_contracts::{ContractError, EventKind};
use thiserror::Error;

/// A boxed error source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure that may pass if tried again: throttling, a timeout, a
/// conflicting write, a dependency that is briefly down.
#[derive(Debug, Error)]
#[error("{what}")]
pub struct Transient {
    what: String,
    #[source]
    source: Option<BoxError>,
}

impl Transient {
    /// A transient failure described by `what`.
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }

    /// A transient failure caused by `source`.
    pub fn caused_by(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// Why one record could not be processed.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The event could not be read. Permanent.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The event is valid but this function does not consume it. Permanent.
    #[error("{function} does not consume {kind} events")]
    Unexpected {
        /// The function.
        function: &'static str,
        /// The event's kind.
        kind: EventKind,
    },
    /// The function refuses the event for a business reason that no retry
    /// can change. Permanent.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Worth retrying.
    #[error("transient: {0}")]
    Transient(#[from] Transient),
}

impl RecordError {
    /// Whether retrying can never help, so the record belongs in the DLQ.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Transient(_))
    }

    /// A short, stable name for the kind of error (DLQ attribute, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Contract(e) => e.kind(),
            Self::Unexpected { .. } => "unexpected_event",
            Self::Rejected(_) => "rejected",
            Self::Transient(_) => "transient",
        }
    }
}

/// Formats an error with its whole `source` chain, for logs and DLQ reasons.
pub fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
