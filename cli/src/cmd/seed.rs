//! `orderflow seed`: the stock of every sku in a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use orderflow_contracts::Sku;

use crate::flow::Flow;

/// The stock file the demo and `seed` use, from the repository's root.
pub const STOCK_FILE: &str = "events/stock.json";

/// Which stock to set.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Seed {
    /// The stock, as `{"SKU": quantity}`.
    #[arg(long, value_name = "PATH", default_value = STOCK_FILE)]
    pub file: PathBuf,
}

impl Seed {
    /// Sets the stock of every sku in the file.
    pub async fn run(&self, flow: &Flow) -> Result<()> {
        seed_file(flow, &self.file).await
    }
}

/// Sets the stock of every sku in the file at `path`, in sku order, and
/// prints each.
pub async fn seed_file(flow: &Flow, path: &Path) -> Result<()> {
    let name = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?;
    let stock: HashMap<String, u64> = serde_json::from_str(&text)
        .with_context(|| format!("{name}: want {{\"SKU\": quantity}}"))?;
    let mut skus: Vec<_> = stock.into_iter().collect();
    skus.sort();
    for (sku, quantity) in skus {
        let sku = Sku::new(sku.as_str()).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        flow.set_stock(&sku, quantity).await?;
        println!("  {:<20} {quantity:>5} in stock", sku.as_str());
    }
    Ok(())
}
