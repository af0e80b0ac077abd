//! The whole-flow, operations and IAM tests of a deployed stack
//! (`tests/*.rs`, `#[ignore]`d: `cargo xtask test` and `cargo xtask flow`
//! deploy a stack and run them), and their harness. What they drive the
//! stack with, [`orderflow::Flow`], is the operator CLI's library.
//!
//! # Layout
//! - [`harness`]: one runtime and one connection to the stack for all the
//!   tests of a binary.
//! - [`hostile`]: the hostile corpus: bodies no orders service would send,
//!   each with the error kind it must be dead-lettered with.
//! - [`tamper`]: what only tests do to a stack: malformed events, deliveries
//!   straight into a function's queue, idempotency records changed behind a
//!   function's back.

pub mod harness;
pub mod hostile;
pub mod tamper;
