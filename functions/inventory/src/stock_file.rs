//! Memory mode's stock: the file [`MEMORY_STOCK`] names, read at cold start.
//!
//! In memory mode (`ORDERFLOW_ADAPTERS=memory`, as `cargo lambda watch`
//! runs the functions) the store starts empty, and inventory refuses an
//! order whose sku has no stock record; this file is how local runs get
//! stock.

use std::collections::BTreeMap;
use std::fs;

use orderflow_contracts::Sku;
use orderflow_runtime::config::{Adapters, ConfigError};

use crate::stock_key;

/// The variable naming the stock file: a JSON object of sku to quantity,
/// like `events/stock.json`.
pub const MEMORY_STOCK: &str = "ORDERFLOW_MEMORY_STOCK";

/// The stock counters memory mode starts with, as `(key, quantity)`: each
/// sku of the file [`MEMORY_STOCK`] names (read through `lookup`), or none
/// when it is unset or blank.
///
/// A startup error naming the variable when it is set with AWS adapters
/// (ignoring it would leave whoever set it wondering why the cloud table
/// does not hold that stock), or when the file cannot be read, is not a
/// JSON object of sku to quantity, gives a negative quantity or names a
/// malformed sku.
pub fn memory_stock(
    adapters: Adapters,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, i64)>, ConfigError> {
    let Some(path) = lookup(MEMORY_STOCK).filter(|p| !p.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    if adapters != Adapters::Memory {
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
    stock
        .into_iter()
        .map(|(sku, quantity)| {
            if quantity < 0 {
                return Err(invalid(format!(
                    "`{path}` gives {sku} a quantity of {quantity}; quantities are 0 or more"
                )));
            }
            let sku =
                Sku::new(sku.as_str()).map_err(|e| invalid(format!("`{path}`: `{sku}`: {e}")))?;
            Ok((stock_key(&sku), quantity))
        })
        .collect()
}

fn invalid(reason: String) -> ConfigError {
    ConfigError::Invalid {
        name: MEMORY_STOCK,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/stock.json");

    fn read(adapters: Adapters, path: &str) -> Result<Vec<(String, i64)>, ConfigError> {
        memory_stock(adapters, |name| {
            (name == MEMORY_STOCK).then(|| path.to_owned())
        })
    }

    /// A file holding `text`, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "orderflow-stock-{}-{name}.json",
                std::process::id()
            ));
            fs::write(&path, text).unwrap();
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

    fn assert_invalid(result: Result<Vec<(String, i64)>, ConfigError>, says: &str) {
        match result {
            Err(ConfigError::Invalid { name, reason }) => {
                assert_eq!(name, MEMORY_STOCK);
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_the_sample_stock_file_into_counters() {
        let stock = read(Adapters::Memory, SAMPLE).unwrap();
        assert!(stock.contains(&("STOCK#SKU-RED-MUG".to_owned(), 100)));
        assert!(stock.contains(&("STOCK#SKU-GOLD-KETTLE".to_owned(), 0)));
    }

    #[test]
    fn unset_or_blank_seeds_nothing() {
        assert_eq!(read(Adapters::Memory, " "), Ok(Vec::new()));
        assert_eq!(memory_stock(Adapters::Memory, |_| None), Ok(Vec::new()));
        assert_eq!(memory_stock(Adapters::Aws, |_| None), Ok(Vec::new()));
    }

    #[test]
    fn a_file_that_is_not_json_is_a_startup_error() {
        let file = TempFile::new("not-json", "{ SKU-RED-MUG: 1 ");
        assert_invalid(
            read(Adapters::Memory, &file.path()),
            "is not a JSON object of sku to quantity",
        );
    }

    #[test]
    fn a_negative_or_fractional_quantity_is_a_startup_error() {
        let file = TempFile::new("negative", r#"{"SKU-RED-MUG": -1}"#);
        assert_invalid(
            read(Adapters::Memory, &file.path()),
            "gives SKU-RED-MUG a quantity of -1",
        );
        let file = TempFile::new("fraction", r#"{"SKU-RED-MUG": 1.5}"#);
        assert_invalid(read(Adapters::Memory, &file.path()), "floating point");
    }

    #[test]
    fn a_malformed_sku_is_a_startup_error() {
        let file = TempFile::new("lower-case", r#"{"SKU-RED-MUG": 1, "red-mug": 2}"#);
        assert_invalid(read(Adapters::Memory, &file.path()), "`red-mug`");
    }

    #[test]
    fn a_missing_path_is_a_startup_error() {
        assert_invalid(
            read(Adapters::Memory, "/nonexistent/orderflow/stock.json"),
            "cannot read `/nonexistent/orderflow/stock.json`",
        );
    }

    #[test]
    fn with_aws_adapters_it_is_refused_not_ignored() {
        assert_invalid(
            read(Adapters::Aws, SAMPLE),
            "applies only with ORDERFLOW_ADAPTERS=memory",
        );
    }
}
