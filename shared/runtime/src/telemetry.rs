//! Structured JSON logs through `tracing`.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs a JSON log subscriber writing to stdout, once, at cold start.
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced
/// logging controls) or `RUST_LOG`, and defaults to `info`. See
/// [`json_subscriber`] for what a line holds.
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout));
}

/// The subscriber [`init`] installs, writing to `writer`: tests give it a
/// buffer.
///
/// Each line is one JSON object, which suits Lambda's JSON log format:
/// `timestamp`, `level` and `message` at the top, beside the event's own
/// fields (flattened, so a query reads `order_id`, not `fields.order_id`),
/// and the runtime's `span` with the `requestId`.
///
/// Each record gets exactly one line, its outcome line, logged by the
/// [batch loop](crate::batch): `function`, `message_id`, `order_id`,
/// `event_id`, `causation_id` (absent when none), `detail_type`, `outcome`,
/// `duration_ms`, `published` when it succeeded, and `error_kind` and
/// `error` when it failed.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        .finish()
}
