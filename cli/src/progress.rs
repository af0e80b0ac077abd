//! Spinners for the long waits (a replay, an order settling). They draw on
//! stderr, and indicatif hides them when stderr is not a terminal, so that
//! stdout carries only the results and a log of a run stays clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner showing `message` and the time spent, ticking on its own.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::new_spinner()
        .with_style(style)
        .with_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
