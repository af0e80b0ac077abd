//! The shipping function's Lambda binary (`bootstrap`).

use orderflow_runtime::{Config, lambda, telemetry};
use shipping::Shipping;
use shipping::label_store::{Labels, MemoryLabels, S3Labels};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init()?;
    let config = Config::from_env("shipping")?;
    let bucket = config.require("ORDERFLOW_LABEL_BUCKET")?;
    lambda::run(config, |aws| {
        Ok(Shipping::new(match aws {
            Some(aws) => Labels::S3(S3Labels::new(aws, &bucket)?),
            None => Labels::Memory(MemoryLabels::default()),
        }))
    })
    .await
}
