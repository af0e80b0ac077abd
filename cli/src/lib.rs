//! `orderflow`, the operator's command line for a deployed orderflow stack,
//! and the library under it: find the stack, seed stock, place orders on
//! its bus and watch them settle through the audit queue, the tables and
//! the label bucket; read and redrive its dead letters; replay and trace
//! from the bus archive. The binary (`cargo install --path cli`), `cargo
//! xtask demo | ops | seed | place-order | bench flow` and the whole-flow
//! tests (`tests/`) are built on it.
//!
//! Nothing here calls a handler: orders go in through EventBridge, and
//! everything is observed from the outside. The same calls serve a local
//! cloud and AWS.
//!
//! # Layout
//! - [`cli`]: the clap definition of the command line, and [`cli::run`],
//!   its one entry point (the binary's and xtask's).
//! - [`cmd`]: the commands, one file per group (`dlq`, `replay`, `trace`,
//!   `seed`, `place_order`), each printing its results on stdout.
//! - [`target`]: the flags that point a command at a local cloud or AWS
//!   (defined once, xtask reuses them), and the connection they make.
//! - [`flow`]: [`Flow`], a deployed stack and its clients: place orders,
//!   seed and read stock, read state, the provider's ledger and labels,
//!   peek at dead letters.
//! - [`stack`]: the stack's resources, from its CloudFormation outputs.
//! - [`audit`]: the audit queue, drained in the background: every event on
//!   the bus, in arrival order.
//! - [`outcome`]: how an order ended, from its events.
//! - [`order`]: orders to place, built from lines or read from a sample.
//! - [`follow`]: orders placed and followed live until they settle.
//! - [`batch`]: many orders at once, summed up as throughput and settle
//!   times (the load tests and `cargo xtask bench flow`).
//! - [`ops`]: the DLQs (list, show, redrive) and replays from the archive.
//! - [`trace`]: one order's story, from the archive, as a causation tree.
//! - [`progress`]: spinners for the long waits, on stderr.

pub mod audit;
pub mod batch;
pub mod cli;
pub mod cmd;
pub mod flow;
pub mod follow;
pub mod ops;
pub mod order;
pub mod outcome;
pub mod progress;
pub mod stack;
pub mod target;
pub mod trace;

pub use audit::{Audit, Seen};
pub use flow::{DeadLetter, Flow, local_config, tools_loader};
pub use order::OrderSpec;
pub use outcome::Outcome;
pub use payment::{Hold, HoldStatus};
pub use stack::{DEFAULT_STACK, ServiceResources, Stack};
pub use target::{Cloud, Target};
