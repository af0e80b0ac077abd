//! The inventory function's Lambda binary (`bootstrap`).

use inventory::Inventory;
use orderflow_runtime::{Config, lambda, telemetry};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init()?;
    let config = Config::from_env("inventory")?;
    let inventory = Inventory::from_env(&config)?;
    lambda::run(config, |_aws| Ok(inventory)).await
}
