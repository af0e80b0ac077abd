//! Structured JSON logs through `tracing`.

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::ConfigError;

/// Lambda's log level variable, set by its advanced logging controls.
pub const LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";

/// The usual `tracing` directives (`info`, `warn,orderflow_runtime=debug`),
/// read when [`LAMBDA_LOG_LEVEL`] is not set.
pub const RUST_LOG: &str = "RUST_LOG";

/// Installs a JSON log subscriber writing to stdout, once, at cold start,
/// filtered by [`filter`] over the process environment. See
/// [`json_subscriber`] for what a line holds.
///
/// When the filter asks for lines the build compiled out (DEBUG in a
/// release build with the `lean-logs` feature), it logs a warning saying
/// so, rather than leave the level silently ignored.
pub fn init() -> Result<(), ConfigError> {
    let filter = filter(|name| std::env::var(name).ok())?;
    let unseen = compiled_out(&filter, tracing::level_filters::STATIC_MAX_LEVEL);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout));
    if let Some(asked) = unseen {
        tracing::warn!(
            asked = %asked,
            compiled = %tracing::level_filters::STATIC_MAX_LEVEL,
            "the log level asks for {asked} lines, but this build compiles out everything \
             below {}: build without the runtime's `lean-logs` feature for them",
            tracing::level_filters::STATIC_MAX_LEVEL
        );
    }
    Ok(())
}

/// The most verbose level `filter` asks for, if `compiled` (the build's
/// static maximum) leaves it out.
pub fn compiled_out(filter: &Targets, compiled: LevelFilter) -> Option<LevelFilter> {
    let asked = filter
        .iter()
        .map(|(_, level)| level)
        .chain(filter.default_level())
        .max()?;
    (asked > compiled).then_some(asked)
}

/// Which lines are logged, read through `lookup`:
/// - [`LAMBDA_LOG_LEVEL`] when set: one of Lambda's levels, `TRACE`,
///   `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL` (which logs errors: a
///   function has no level above them);
/// - else [`RUST_LOG`]: comma-separated `level` or `target=level`
///   directives;
/// - else `info`.
///
/// A value that is neither is a startup error, not a silent default.
pub fn filter(lookup: impl Fn(&str) -> Option<String>) -> Result<Targets, ConfigError> {
    if let Some(level) = lookup(LAMBDA_LOG_LEVEL) {
        let level = match level.to_ascii_uppercase().as_str() {
            "TRACE" => LevelFilter::TRACE,
            "DEBUG" => LevelFilter::DEBUG,
            "INFO" => LevelFilter::INFO,
            "WARN" => LevelFilter::WARN,
            "ERROR" | "FATAL" => LevelFilter::ERROR,
            _ => return Err(invalid_level(LAMBDA_LOG_LEVEL, &level)),
        };
        return Ok(Targets::new().with_default(level));
    }
    match lookup(RUST_LOG) {
        Some(directives) => directives.parse().map_err(|e| ConfigError::Invalid {
            name: RUST_LOG,
            reason: format!("{directives:?} is not `level` or `target=level` directives: {e}"),
        }),
        None => Ok(Targets::new().with_default(LevelFilter::INFO)),
    }
}

fn invalid_level(name: &'static str, value: &str) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: format!("{value:?} is not TRACE, DEBUG, INFO, WARN, ERROR or FATAL"),
    }
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
pub fn json_subscriber<W>(filter: Targets, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        // Everything reaches the layer below; `filter` decides.
        .with_max_level(LevelFilter::TRACE)
        .finish()
        .with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(vars: &[(&str, &str)]) -> Result<Targets, ConfigError> {
        filter(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn default_level(vars: &[(&str, &str)]) -> Option<LevelFilter> {
        filter_of(vars).ok().and_then(|t| t.default_level())
    }

    #[test]
    fn a_level_the_build_compiled_out_is_named() {
        let debug = filter_of(&[(LAMBDA_LOG_LEVEL, "DEBUG")]).unwrap();
        assert_eq!(
            compiled_out(&debug, LevelFilter::INFO),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(compiled_out(&debug, LevelFilter::TRACE), None);
        let one_target = filter_of(&[(RUST_LOG, "warn,orderflow_runtime=trace")]).unwrap();
        assert_eq!(
            compiled_out(&one_target, LevelFilter::INFO),
            Some(LevelFilter::TRACE)
        );
        let info = filter_of(&[]).unwrap();
        assert_eq!(compiled_out(&info, LevelFilter::INFO), None);
        let errors = filter_of(&[(LAMBDA_LOG_LEVEL, "FATAL")]).unwrap();
        assert_eq!(compiled_out(&errors, LevelFilter::INFO), None);
    }

    #[test]
    fn info_unless_told_otherwise() {
        assert_eq!(default_level(&[]), Some(LevelFilter::INFO));
    }

    #[test]
    fn lambda_levels_are_read_in_any_case_and_fatal_logs_errors() {
        for (value, level) in [
            ("TRACE", LevelFilter::TRACE),
            ("debug", LevelFilter::DEBUG),
            ("Warn", LevelFilter::WARN),
            ("ERROR", LevelFilter::ERROR),
            ("FATAL", LevelFilter::ERROR),
        ] {
            assert_eq!(default_level(&[(LAMBDA_LOG_LEVEL, value)]), Some(level));
        }
    }

    #[test]
    fn lambdas_level_wins_over_rust_log() {
        let vars = [(RUST_LOG, "trace"), (LAMBDA_LOG_LEVEL, "WARN")];
        assert_eq!(default_level(&vars), Some(LevelFilter::WARN));
    }

    #[test]
    fn rust_log_takes_per_target_directives() {
        let targets = filter_of(&[(RUST_LOG, "warn,orderflow_runtime=debug")]).unwrap();
        assert_eq!(targets.default_level(), Some(LevelFilter::WARN));
        assert!(targets.would_enable("orderflow_runtime::batch", &tracing::Level::DEBUG));
        assert!(!targets.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
    }

    #[test]
    fn an_unknown_level_is_an_error_that_names_its_variable() {
        for (name, value) in [(LAMBDA_LOG_LEVEL, "LOUD"), (RUST_LOG, "loud=very")] {
            let error = filter_of(&[(name, value)]).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
            assert!(error.contains(value), "{error}");
        }
    }
}
