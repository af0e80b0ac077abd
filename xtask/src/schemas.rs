//! `cargo xtask schemas`: writes the JSON Schema of every event's `detail`
//! to `events/schemas/`, generated from the contracts.

use std::fs;

use anyhow::{Context, Result};
use orderflow_contracts::EventKind;
use orderflow_contracts::schema::detail_schema_text;

use crate::project_root;

/// Writes every schema file.
pub fn main() -> Result<()> {
    let dir = project_root().join("events/schemas");
    fs::create_dir_all(&dir)?;
    for kind in EventKind::ALL {
        let path = dir.join(format!("{}.json", kind.detail_type()));
        fs::write(&path, detail_schema_text(kind)).with_context(|| path.display().to_string())?;
        println!(
            "wrote {}",
            path.strip_prefix(project_root()).unwrap_or(&path).display()
        );
    }
    Ok(())
}
