//! The payment function's Lambda binary (`bootstrap`).

use orderflow_runtime::{Config, config, lambda, telemetry};
use payment::{Payment, Simulator};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env("payment")?;
    let limit = config::number(
        &|name| std::env::var(name).ok(),
        "ORDERFLOW_PAYMENT_LIMIT_MINOR",
        Simulator::DEFAULT_LIMIT_MINOR,
        1,
        u64::MAX,
    )?;
    lambda::run(config, |_aws| Payment::new(Simulator::new(limit))).await
}
