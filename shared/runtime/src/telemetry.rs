//! Structured JSON logs through `tracing`.

use tracing_subscriber::EnvFilter;

/// Installs a JSON log subscriber, once, at cold start.
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced
/// logging controls) or `RUST_LOG`, and defaults to `info`. Each line is one
/// JSON object, which suits Lambda's JSON log format. Records are logged
/// inside a span carrying `order_id` and `event_id`.
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
