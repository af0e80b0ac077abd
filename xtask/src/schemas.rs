//! `cargo xtask schemas`: writes the JSON Schema of every event's `detail`
//! to `events/schemas/`, generated from the contracts.
//!
//! The committed schemas are the released contract, so it refuses to
//! write a schema that breaks the one already there, and names each
//! breaking change: the fix is a new `schema_version`. A schema that was
//! never released can be deleted by hand and written afresh.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use orderflow_contracts::EventKind;
use orderflow_contracts::schema::{
    breaking_changes, detail_schema, detail_schema_text, file_name, versions,
};
use serde_json::Value;

use crate::project_root;

/// `cargo xtask schemas`: [`write`], saying what it wrote.
pub fn main() -> Result<()> {
    for name in write(&project_root())? {
        println!("wrote events/schemas/{name}");
    }
    Ok(())
}

/// Writes every schema file under `root`, or none if any would break its
/// released schema; returns the files' names.
pub fn write(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("events/schemas");
    fs::create_dir_all(&dir)?;
    let mut refused = Vec::new();
    for kind in EventKind::ALL {
        for version in versions(kind) {
            refused.extend(breaks(kind, version, &dir.join(file_name(kind, version)))?);
        }
    }
    if !refused.is_empty() {
        bail!(
            "refusing to rewrite events/schemas/: the contracts break the released schemas\n  {}\n\
             A breaking change needs a new schema_version; a schema never released may be \
             deleted and written afresh",
            refused.join("\n  ")
        );
    }
    let mut written = Vec::new();
    for kind in EventKind::ALL {
        for version in versions(kind) {
            let name = file_name(kind, version);
            let path = dir.join(&name);
            fs::write(&path, detail_schema_text(kind, version))
                .with_context(|| path.display().to_string())?;
            written.push(name);
        }
    }
    Ok(written)
}

/// What the code's schema of `version` of `kind` breaks in the released one
/// at `path`, each line naming the event; nothing when there is no
/// released schema.
fn breaks(kind: EventKind, version: u32, path: &Path) -> Result<Vec<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    let released: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(
        breaking_changes(&released, &detail_schema(kind, version).to_value())
            .iter()
            .map(|change| format!("{} version {version}: {change}", kind.detail_type()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_schema_that_the_code_breaks_is_named() {
        let dir = std::env::temp_dir().join(format!("orderflow-schemas-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("OrderPlaced.v2.json");
        let mut released = detail_schema(EventKind::OrderPlaced, 2).to_value();
        released["$defs"]["OrderPlaced"]["properties"]["gift_note"] = serde_json::json!({});
        fs::write(&path, released.to_string()).unwrap();
        let found = breaks(EventKind::OrderPlaced, 2, &path).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            ["OrderPlaced version 2: data.gift_note: removed (a rename is a removal too)"]
        );
        assert_eq!(
            breaks(EventKind::OrderPlaced, 2, &dir.join("none.json")).unwrap(),
            Vec::<String>::new()
        );
    }
}
