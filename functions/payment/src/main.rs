//! The payment function's Lambda binary (`bootstrap`).

use orderflow_runtime::{Config, config, lambda, telemetry};
use payment::{AnyLedger, DynamoLedger, MemoryLedger, Payment, Simulator};

/// The simulated provider's ledger table (see `payment::ledger`).
const LEDGER_TABLE: &str = "ORDERFLOW_PROVIDER_LEDGER";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init()?;
    let config = Config::from_env("payment")?;
    let limit = config::number(
        &|name| std::env::var(name).ok(),
        "ORDERFLOW_PAYMENT_LIMIT_MINOR",
        Simulator::<AnyLedger>::DEFAULT_LIMIT_MINOR,
        1,
        u64::MAX,
    )?;
    let table = config.require(LEDGER_TABLE)?;
    lambda::run(config, |aws| {
        let ledger = match aws {
            Some(aws) => {
                AnyLedger::Dynamo(DynamoLedger::new(aws_sdk_dynamodb::Client::new(aws), table))
            }
            None => AnyLedger::Memory(MemoryLedger::new()),
        };
        Ok(Payment::new(Simulator::new(limit, ledger)))
    })
    .await
}
