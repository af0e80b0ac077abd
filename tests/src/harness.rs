//! What the whole-flow test binaries share: one runtime and one connection
//! to the stack (so one reader of the audit queue) for all their tests.

use std::future::Future;
use std::sync::{LazyLock, OnceLock};

use anyhow::{Result, anyhow};
use tokio::runtime::Runtime;

use orderflow::{DEFAULT_STACK, Flow};

static RUNTIME: LazyLock<Result<Runtime, String>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("no Tokio runtime: {e}"))
});
static FLOW: OnceLock<Result<Flow, String>> = OnceLock::new();

/// Runs one test body on the shared runtime, against the stack named by
/// `ORDERFLOW_STACK` (default `orderflow`), reached through the default
/// AWS configuration (`AWS_ENDPOINT_URL` for the local cloud).
pub fn run<F: Future<Output = Result<()>>>(test: impl FnOnce(&'static Flow) -> F) -> Result<()> {
    let runtime = RUNTIME.as_ref().map_err(|e| anyhow!("{e}"))?;
    let flow = FLOW.get_or_init(|| {
        let stack = std::env::var("ORDERFLOW_STACK").unwrap_or_else(|_| DEFAULT_STACK.to_owned());
        runtime
            .block_on(Flow::connect(&stack))
            .map_err(|e| format!("{e:#}"))
    });
    let flow = flow.as_ref().map_err(|e| anyhow!("{e}"))?;
    runtime.block_on(test(flow))
}
