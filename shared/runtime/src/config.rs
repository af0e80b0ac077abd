//! The environment, read once at cold start into a typed struct.

use std::env;

use thiserror::Error;

use crate::faults::Faults;

/// Which adapters the ports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapters {
    /// DynamoDB, EventBridge and SQS (AWS or the local cloud).
    Aws,
    /// In-process memory: for `cargo lambda invoke` without any cloud. State
    /// lives as long as the process; emitted events and dead letters are
    /// logged.
    Memory,
}

/// A function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The function's name (`payment`, `inventory`, `shipping`).
    pub function: &'static str,
    /// `ORDERFLOW_ADAPTERS`: `aws` (default) or `memory`.
    pub adapters: Adapters,
    /// `ORDERFLOW_TABLE`: the function's DynamoDB table.
    pub table: String,
    /// `ORDERFLOW_BUS`: the EventBridge bus name or ARN to publish to.
    pub bus: String,
    /// `ORDERFLOW_DLQ_URL`: the function's dead-letter queue.
    pub dlq_url: String,
    /// `ORDERFLOW_MAX_CONCURRENCY`: records of one batch processed at once.
    pub max_concurrency: usize,
    /// `ORDERFLOW_IDEMPOTENCY_TTL_SECS`: how long idempotency records live.
    pub idempotency_ttl_secs: i64,
    /// `ORDERFLOW_FAULTS` and `ORDERFLOW_FAULTS_RECORD`: crashes to inject,
    /// for the chaos suite only (none unless set).
    pub faults: Faults,
}

/// A configuration problem, reported at startup.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Reads the configuration of `function` from the process environment.
    pub fn from_env(function: &'static str) -> Result<Self, ConfigError> {
        Self::from_lookup(function, |name| env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the
    /// process environment.
    pub fn from_lookup(
        function: &'static str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let adapters = match lookup("ORDERFLOW_ADAPTERS").as_deref() {
            None | Some("aws") => Adapters::Aws,
            Some("memory") => Adapters::Memory,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "ORDERFLOW_ADAPTERS",
                    reason: format!("`{other}`; expected `aws` or `memory`"),
                });
            }
        };
        let required = |name: &'static str| required(adapters, name, lookup(name));
        Ok(Self {
            function,
            adapters,
            table: required("ORDERFLOW_TABLE")?,
            bus: required("ORDERFLOW_BUS")?,
            dlq_url: required("ORDERFLOW_DLQ_URL")?,
            max_concurrency: number(&lookup, "ORDERFLOW_MAX_CONCURRENCY", 8, 1, 100)?,
            idempotency_ttl_secs: number(
                &lookup,
                "ORDERFLOW_IDEMPOTENCY_TTL_SECS",
                7 * 24 * 3600,
                60,
                365 * 24 * 3600,
            )?,
            faults: faults(function, &lookup)?,
        })
    }
}

impl Config {
    /// A further variable the function requires, read like the others: in
    /// memory mode a missing one gets a placeholder value.
    pub fn require(&self, name: &'static str) -> Result<String, ConfigError> {
        required(self.adapters, name, env::var(name).ok())
    }
}

/// The crashes `ORDERFLOW_FAULTS` asks for; an empty value asks for none.
fn faults(
    function: &'static str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Faults, ConfigError> {
    let spec = lookup("ORDERFLOW_FAULTS").unwrap_or_default();
    let record = lookup("ORDERFLOW_FAULTS_RECORD")
        .filter(|path| !path.trim().is_empty())
        .map(Into::into);
    Faults::parse(&spec, record, function).map_err(|reason| ConfigError::Invalid {
        name: "ORDERFLOW_FAULTS",
        reason,
    })
}

/// A required variable's value. In memory mode nothing names a cloud
/// resource, so a missing one gets a placeholder.
fn required(
    adapters: Adapters,
    name: &'static str,
    value: Option<String>,
) -> Result<String, ConfigError> {
    match value {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ if adapters == Adapters::Memory => Ok(format!("memory:{name}")),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// Reads an optional integer variable within `min..=max`.
pub fn number<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = lookup(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!("`{raw}`; expected an integer from {min} to {max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn missing_variable_is_a_clear_startup_error() {
        let err = Config::from_lookup("payment", env_of(&[("ORDERFLOW_TABLE", "t")]));
        assert_eq!(err.err(), Some(ConfigError::Missing("ORDERFLOW_BUS")));
    }

    #[test]
    fn invalid_number_names_the_variable() {
        let err = Config::from_lookup(
            "payment",
            env_of(&[
                ("ORDERFLOW_TABLE", "t"),
                ("ORDERFLOW_BUS", "b"),
                ("ORDERFLOW_DLQ_URL", "q"),
                ("ORDERFLOW_MAX_CONCURRENCY", "0"),
            ]),
        );
        assert!(matches!(
            err,
            Err(ConfigError::Invalid {
                name: "ORDERFLOW_MAX_CONCURRENCY",
                ..
            })
        ));
    }

    #[test]
    fn faults_are_off_unless_asked_for_and_a_bad_spec_is_a_startup_error() {
        let with = |spec: Option<&'static str>| {
            Config::from_lookup("payment", move |name| match name {
                "ORDERFLOW_FAULTS" => spec.map(str::to_owned),
                "ORDERFLOW_TABLE" | "ORDERFLOW_BUS" | "ORDERFLOW_DLQ_URL" => Some("x".into()),
                _ => None,
            })
        };
        assert!(!with(None).unwrap().faults.any());
        assert!(!with(Some("")).unwrap().faults.any());
        assert!(with(Some("commit=0.1")).unwrap().faults.any());
        assert!(matches!(
            with(Some("commit=lots")),
            Err(ConfigError::Invalid {
                name: "ORDERFLOW_FAULTS",
                ..
            })
        ));
    }

    #[test]
    fn memory_adapters_need_no_cloud_names() {
        let config = Config::from_lookup("payment", env_of(&[("ORDERFLOW_ADAPTERS", "memory")]));
        assert_eq!(config.map(|c| c.adapters), Ok(Adapters::Memory));
    }
}
