//! The environment, read once at cold start into a typed struct.

use std::collections::BTreeMap;
use std::{env, fs};

use thiserror::Error;

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
    /// [`MEMORY_STOCK`]: the stock, by sku, that the in-memory store starts
    /// with, read from the JSON file the variable names. Memory adapters
    /// only; `None` when unset.
    pub memory_stock: Option<BTreeMap<String, i64>>,
}

/// The variable naming the stock file of memory mode: a JSON object of sku
/// to quantity, like `events/stock.json`.
///
/// In memory mode the store starts empty, and inventory refuses an order
/// whose sku has no stock record; this is how local runs get stock. Only a
/// function that keeps stock uses it, but every one checks it: one
/// `cargo lambda watch` gives all three the same environment.
pub const MEMORY_STOCK: &str = "ORDERFLOW_MEMORY_STOCK";

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
            memory_stock: memory_stock(adapters, lookup(MEMORY_STOCK))?,
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

/// Reads the stock file [`MEMORY_STOCK`] names, if it names one (a blank
/// value counts as unset, as for the required variables).
fn memory_stock(
    adapters: Adapters,
    path: Option<String>,
) -> Result<Option<BTreeMap<String, i64>>, ConfigError> {
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        name: MEMORY_STOCK,
        reason,
    };
    if adapters != Adapters::Memory {
        // Ignoring it would leave whoever set it wondering why the cloud
        // table does not hold that stock.
        return Err(invalid(
            "it seeds the in-memory store, so it applies only with ORDERFLOW_ADAPTERS=memory"
                .into(),
        ));
    }
    let text =
        fs::read_to_string(&path).map_err(|e| invalid(format!("cannot read `{path}`: {e}")))?;
    let stock: BTreeMap<String, i64> = serde_json::from_str(&text).map_err(|e| {
        invalid(format!(
            "`{path}` is not a JSON object of sku to quantity: {e}"
        ))
    })?;
    if let Some((sku, quantity)) = stock.iter().find(|(_, quantity)| **quantity < 0) {
        return Err(invalid(format!(
            "`{path}` gives {sku} a quantity of {quantity}; quantities are 0 or more"
        )));
    }
    Ok(Some(stock))
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
    fn memory_adapters_need_no_cloud_names() {
        let config = Config::from_lookup("payment", env_of(&[("ORDERFLOW_ADAPTERS", "memory")]));
        assert_eq!(config.map(|c| c.adapters), Ok(Adapters::Memory));
    }

    /// The configuration with these adapters and the stock file at `path`.
    fn with_stock(adapters: Option<&'static str>, path: &str) -> Result<Config, ConfigError> {
        let path = path.to_owned();
        Config::from_lookup("inventory", move |name| match name {
            "ORDERFLOW_ADAPTERS" => adapters.map(str::to_owned),
            MEMORY_STOCK => Some(path.clone()),
            "ORDERFLOW_TABLE" | "ORDERFLOW_BUS" | "ORDERFLOW_DLQ_URL" => Some("x".to_owned()),
            _ => None,
        })
    }

    /// A file holding `text`, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> Self {
            let path = env::temp_dir().join(format!(
                "orderflow-config-{}-{name}.json",
                std::process::id()
            ));
            fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Self(path)
        }

        fn path(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    fn assert_invalid_stock(config: Result<Config, ConfigError>, says: &str) {
        match config {
            Err(ConfigError::Invalid { name, reason }) => {
                assert_eq!(name, MEMORY_STOCK);
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_stock_reads_the_sample_stock_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/stock.json");
        let stock = with_stock(Some("memory"), path)
            .map(|c| c.memory_stock)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_default();
        assert_eq!(stock.get("SKU-RED-MUG"), Some(&100));
        assert_eq!(stock.get("SKU-GOLD-KETTLE"), Some(&0));
    }

    #[test]
    fn memory_stock_unset_or_blank_seeds_nothing() {
        let config = with_stock(Some("memory"), " ").map(|c| c.memory_stock);
        assert_eq!(config, Ok(None));
    }

    #[test]
    fn memory_stock_that_is_not_json_is_a_startup_error() {
        let file = TempFile::new("not-json", "{ SKU-RED-MUG: 1 ");
        assert_invalid_stock(
            with_stock(Some("memory"), &file.path()),
            "is not a JSON object of sku to quantity",
        );
    }

    #[test]
    fn memory_stock_with_a_negative_or_fractional_quantity_is_a_startup_error() {
        let file = TempFile::new("negative", r#"{"SKU-RED-MUG": -1}"#);
        assert_invalid_stock(
            with_stock(Some("memory"), &file.path()),
            "gives SKU-RED-MUG a quantity of -1",
        );
        let file = TempFile::new("fraction", r#"{"SKU-RED-MUG": 1.5}"#);
        assert_invalid_stock(with_stock(Some("memory"), &file.path()), "floating point");
    }

    #[test]
    fn memory_stock_at_a_missing_path_is_a_startup_error() {
        assert_invalid_stock(
            with_stock(Some("memory"), "/nonexistent/orderflow/stock.json"),
            "cannot read `/nonexistent/orderflow/stock.json`",
        );
    }

    #[test]
    fn memory_stock_with_aws_adapters_is_refused_not_ignored() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/stock.json");
        for adapters in [Some("aws"), None] {
            assert_invalid_stock(
                with_stock(adapters, path),
                "applies only with ORDERFLOW_ADAPTERS=memory",
            );
        }
    }
}
