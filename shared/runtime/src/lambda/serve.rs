//! Serving on Lambda (with the `aws` feature): the adapters the
//! configuration names, behind the Lambda runtime's loop.

use std::sync::Arc;
use std::time::SystemTime;

use aws_types::SdkConfig;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;

use super::{Handler, memory_store, plausible_deadline};
use crate::config::{Adapters, Config};
use crate::dlq::{DeadLetterSink, MemoryDeadLetters, SqsDeadLetters};
use crate::error::chain;
use crate::faults::Crashing;
use crate::processor::{Processor, Service};
use crate::publish::{Coalescing, EventBridgePublisher, EventPublisher, MemoryPublisher};
use crate::store::{DynamoStore, StateStore};

/// Builds the adapters named by `config` and serves invocations until the
/// runtime stops. `service` receives the AWS configuration when the
/// adapters are AWS ones, to build the function's own ports; an error it
/// returns stops the function at cold start.
pub async fn run<S: Service + 'static>(
    config: Config,
    service: impl FnOnce(Option<&SdkConfig>) -> Result<S, Error>,
) -> Result<(), Error> {
    let ttl = config.idempotency_ttl_secs;
    match config.adapters {
        Adapters::Aws => {
            let aws = crate::aws::sdk_config()?;
            let faults = Arc::new(config.faults);
            if faults.any() {
                tracing::warn!(faults = ?faults, "ORDERFLOW_FAULTS: this process will crash on purpose");
            }
            let processor = Processor::new(
                service(Some(&aws))?,
                Crashing::new(
                    DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table),
                    faults.clone(),
                ),
                // The records of a batch run at once: their outboxes share
                // PutEvents calls.
                Crashing::new(
                    Coalescing::new(EventBridgePublisher::new(
                        aws_sdk_eventbridge::Client::new(&aws),
                        &config.bus,
                    )),
                    faults,
                ),
                ttl,
            );
            let dlq = SqsDeadLetters::when_needed(&aws, &config.dlq_url);
            serve(Handler::new(processor, dlq, config.max_concurrency)).await
        }
        Adapters::Memory => {
            tracing::info!(
                "ORDERFLOW_ADAPTERS=memory: state, events and dead letters stay in this process"
            );
            let service = service(None)?;
            let store = memory_store(&service);
            let processor = Processor::new(service, store, MemoryPublisher::new(), ttl);
            serve(Handler::new(
                processor,
                MemoryDeadLetters::new(),
                config.max_concurrency,
            ))
            .await
        }
    }
}

async fn serve<S, St, P, D>(handler: Handler<S, St, P, D>) -> Result<(), Error>
where
    S: Service,
    St: StateStore,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            let deadline = plausible_deadline(event.context.deadline(), SystemTime::now());
            // Boxed: the nested futures of batch, processor and adapters are
            // deep enough to exceed the compiler's layout recursion limit.
            // An error is a direct invocation to retry, whose outcome line
            // is already logged.
            Box::pin(handler.handle(event.payload.get(), deadline, &event.context.request_id))
                .await
                .map_err(|err| Error::from(chain(&err)))
        },
    ))
    .await
}
