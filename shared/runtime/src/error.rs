//! Errors, typed by what the caller must do about them.

use std::borrow::Cow;
use std::error::Error as StdError;

use orderflow_contracts::ContractError;
use thiserror::Error;

/// A boxed error source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure that may pass if tried again: throttling, a timeout, a
/// conflicting write, a dependency that is briefly down.
#[derive(Debug, Error)]
#[error("{what}")]
pub struct Transient {
    what: String,
    #[source]
    source: Option<BoxError>,
}

impl Transient {
    /// A transient failure described by `what`.
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }

    /// A transient failure caused by `source`.
    pub fn caused_by(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// Why one record could not be processed.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The event could not be read. Permanent.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The event is valid but this function does not consume it. Permanent.
    #[error("{function} does not consume {kind} events")]
    Unexpected {
        /// The function.
        function: &'static str,
        /// The event's detail-type.
        kind: &'static str,
    },
    /// The function refuses the event for a reason that no retry can
    /// change. Permanent. Made with [`RecordError::rejected`].
    // The kind is not in the text: logs and dead letters carry it beside
    // the message (`error_kind`, `orderflow.error_kind`).
    #[error("rejected: {reason}")]
    Rejected {
        /// A short, stable name for the reason, e.g. `unknown_sku`.
        kind: &'static str,
        /// What is wrong, for whoever reads the dead letter.
        reason: String,
    },
    /// Worth retrying.
    #[error("transient: {0}")]
    Transient(#[from] Transient),
}

impl RecordError {
    /// The function refuses the event for `reason`, named `kind` in logs,
    /// metrics and the dead letter: `rejected` unless the function has a
    /// more telling snake_case name for it (inventory's `unknown_sku`).
    pub fn rejected(kind: &'static str, reason: impl Into<String>) -> Self {
        Self::Rejected {
            kind,
            reason: reason.into(),
        }
    }

    /// Whether retrying can never help, so the record belongs in the DLQ.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Transient(_))
    }

    /// A short, stable name for the kind of error (DLQ attribute, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Contract(e) => e.kind(),
            Self::Unexpected { .. } => "unexpected_event",
            Self::Rejected { kind, .. } => kind,
            Self::Transient(_) => "transient",
        }
    }
}

/// Formats an error with its whole `source` chain.
///
/// The text may quote input values (serde's `invalid type: string "…"`);
/// what goes into logs and DLQ reasons is [`describe`].
pub fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // A wrapper that prints its source (`transient: {0}`) said it already.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An error with its cause chain, as logs and DLQ reasons carry it: with
/// every input value the parsers quote removed (see [`redact`]).
pub fn describe(err: &dyn StdError) -> String {
    let text = chain(err);
    match redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(redacted) => redacted,
    }
}

/// What replaces a value in a redacted error text.
pub const REDACTED: &str = "<redacted>";

/// Removes the input values an error text quotes, keeping the field paths
/// and what was expected.
///
/// A payload that fails to parse may hold a payment token or an address
/// where a number was due, and serde quotes what it found:
/// `invalid type: string "tok_…", expected u32`. A rule may quote it too
/// (`not "…"`). So every double-quoted string goes, and so does every
/// back-quoted value serde names as `integer`, `floating point`, `boolean`,
/// `character` or `unknown variant`. Field names (`` missing field `x` ``,
/// `` at `detail.data.items` ``) and the expected types stay. The body
/// itself still reaches the DLQ unchanged, for whoever may read it.
///
/// Text with no quote at all, the common case, is returned as it is.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains(['"', '`']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['"', '`']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        // Both quotes are one byte.
        let (quote, inside) = from.split_at(1);
        if quote == "\"" {
            // A Rust-escaped string: it ends at the first unescaped quote.
            out.push_str(REDACTED);
            rest = after_quoted(inside);
        } else if let Some(end) = value_end(&out, inside) {
            out.push_str(REDACTED);
            rest = &inside[end + 1..];
        } else {
            out.push('`');
            rest = inside;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// What follows a Rust-escaped string whose opening quote is gone (nothing,
/// if it never closes).
fn after_quoted(text: &str) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return &text[i + 1..],
            _ => escaped = false,
        }
    }
    ""
}

/// Where the closing back-quote is, when the back-quote just opened holds a
/// value serde echoed: after `integer ` and the like. `before` is the text
/// so far, `text` what follows the opening back-quote.
fn value_end(before: &str, text: &str) -> Option<usize> {
    const SCALARS: [&str; 4] = ["integer ", "floating point ", "boolean ", "character "];
    if SCALARS.iter().any(|s| before.ends_with(s)) {
        // A character may itself be a back-quote, so skip one first.
        let first = text.chars().next()?.len_utf8();
        return text[first..].find('`').map(|end| first + end);
    }
    if before.ends_with("unknown variant ") {
        // The variant is raw input and may hold anything, back-quotes
        // included: it ends at the last `, expected` / `, there are no`.
        return ["`, expected ", "`, there are no variants"]
            .iter()
            .filter_map(|tail| text.rfind(tail))
            .max();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_the_values_serde_and_rules_quote() {
        let cases = [
            (
                r#"malformed event at `detail.data.items[0].quantity`: invalid type: string "tok_visa_4242", expected u32 at line 1 column 9"#,
                "malformed event at `detail.data.items[0].quantity`: invalid type: string <redacted>, expected u32 at line 1 column 9",
            ),
            (
                r#"invalid type: string "a\"b, expected x\\", expected struct Address"#,
                "invalid type: string <redacted>, expected struct Address",
            ),
            (
                "invalid value: integer `4242424242424242`, expected a string",
                "invalid value: integer <redacted>, expected a string",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "invalid type: floating point <redacted>, expected u32",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "invalid type: boolean <redacted>, expected a string",
            ),
            (
                "invalid type: character ```, expected u32",
                "invalid type: character <redacted>, expected u32",
            ),
            (
                "unknown variant `x`, expected y`, expected one of `A`, `B`",
                "unknown variant <redacted>, expected one of `A`, `B`",
            ),
            (
                r#"malformed event at `detail.data.currency`: currency must be three upper-case letters (ISO 4217), not "tok_visa_4242""#,
                "malformed event at `detail.data.currency`: currency must be three upper-case letters (ISO 4217), not <redacted>",
            ),
            (
                "missing field `detail.order_id`",
                "missing field `detail.order_id`",
            ),
            (r#"unclosed "tok_visa_4242"#, "unclosed <redacted>"),
            ("unclosed integer `12", "unclosed integer `12"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(text), expected, "{text}");
        }
    }

    #[test]
    fn chain_says_each_cause_once() {
        let err = RecordError::from(Transient::caused_by(
            "DynamoDB GetItem failed",
            std::io::Error::other("connection reset"),
        ));
        assert_eq!(
            chain(&err),
            "transient: DynamoDB GetItem failed: connection reset"
        );
    }

    #[test]
    fn a_rejection_keeps_the_kind_its_function_names() {
        let err = RecordError::rejected("unknown_sku", "no stock record for SKU-A");
        assert_eq!(err.kind(), "unknown_sku");
        assert!(err.is_permanent());
        assert_eq!(err.to_string(), "rejected: no stock record for SKU-A");
    }

    #[test]
    fn redact_borrows_text_without_quotes() {
        let text = "unknown schema_version 9 (this build reads 1)";
        assert!(matches!(redact(text), Cow::Borrowed(t) if t == text));
    }
}
