//! Why an event could not be read.

use thiserror::Error;

/// A permanent problem with an event: retrying it cannot help, so it goes to
/// the dead-letter queue with this error as its reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContractError {
    /// The payload is not JSON, or not the expected JSON shape.
    #[error("malformed event at `{field}`: {reason}")]
    Malformed {
        /// Where in the payload, as a path like `detail.data.items[0].quantity`.
        field: String,
        /// What the parser said.
        reason: String,
    },
    /// A required value is absent.
    #[error("missing field `{field}`")]
    Missing {
        /// The path of the missing field.
        field: String,
    },
    /// A value is present but breaks a rule.
    #[error("invalid field `{field}`: {reason}")]
    Invalid {
        /// The path of the invalid field.
        field: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The event's `schema_version` is one this build does not know.
    #[error("unknown schema_version {found} (this build reads {})", versions(.supported))]
    UnknownVersion {
        /// The version the event carries.
        found: u64,
        /// The latest version of the event's kind; this build reads every
        /// version from 1 to it.
        supported: u32,
    },
    /// The `detail-type` names no orderflow event.
    #[error("unknown detail-type `{0}`")]
    UnknownDetailType(String),
    /// The `source` does not match the one that emits this `detail-type`.
    #[error("detail-type `{detail_type}` must come from source `{expected}`, not `{found}`")]
    WrongSource {
        /// The event's detail-type.
        detail_type: &'static str,
        /// The source that emits it.
        expected: &'static str,
        /// The source it came with.
        found: String,
    },
}

impl ContractError {
    /// A short, stable name for the kind of error, for DLQ attributes and
    /// metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::Missing { .. } => "missing_field",
            Self::Invalid { .. } => "invalid_field",
            Self::UnknownVersion { .. } => "unknown_version",
            Self::UnknownDetailType(_) => "unknown_detail_type",
            Self::WrongSource { .. } => "wrong_source",
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The versions `1..=latest`, as an error names them.
fn versions(latest: &u32) -> String {
    match *latest {
        1 => "1".to_owned(),
        _ => format!("1 to {latest}"),
    }
}
