//! The commands, one file per group: each is a clap type and an async
//! `run` against the connected stack, printing its results on stdout.

pub mod dlq;
pub mod place_order;
pub mod replay;
pub mod seed;
pub mod trace;

use chrono::{DateTime, SecondsFormat, Utc};

/// A time as the commands print it: RFC 3339, in milliseconds, UTC.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
