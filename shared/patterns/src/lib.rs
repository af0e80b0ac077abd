//! EventBridge event patterns, evaluated against orderflow's event kinds.
//!
//! A rule's `EventPattern` decides which events reach its target. The
//! project's tools read the template's rules with this crate: `cargo xtask
//! graph` to draw the routing, `cargo xtask asyncapi` to say which events
//! each queue carries. It evaluates what orderflow's rules use, and
//! refuses the rest by name rather than guess:
//! - the `source` and `detail-type` fields, since those are what tell the
//!   contracts' kinds apart;
//! - exact values, and the `prefix`, `suffix`, `equals-ignore-case`,
//!   `wildcard` and `anything-but` matchers;
//! - `$or`.
//!
//! A pattern that names a source or detail-type the contracts do not
//! define, or an `$or` branch that matches no kind, is an error: a typo in
//! a rule would otherwise route nothing, silently. `cargo xtask fuzz`
//! fuzzes [`Pattern::read`] and the matchers (the `event_pattern` target).

use anyhow::{Context, Result, bail, ensure};
use orderflow_contracts::EventKind;
use serde_norway::{Mapping, Value};

/// An EventBridge event pattern, as far as graph can evaluate it: `source`
/// and `detail-type` with exact values, `prefix`, `suffix`, `anything-but`,
/// `equals-ignore-case` and `wildcard` matchers, and `$or`.
pub struct Pattern(Mapping);

impl Pattern {
    /// Reads an `EventPattern` property: a mapping or a JSON string.
    pub fn read(value: &Value, what: &str) -> Result<Self> {
        let mapping = match value {
            Value::Mapping(map) => map.clone(),
            Value::String(json) => serde_norway::from_str(json)
                .with_context(|| format!("{what}: EventPattern is a string but not JSON"))?,
            other => bail!(
                "{what}: EventPattern must be a mapping, found {}",
                short(other)
            ),
        };
        let pattern = Self(mapping);
        pattern.check(&pattern.0, what)?;
        Ok(pattern)
    }

    /// Rejects what graph cannot evaluate, names that the contracts do not
    /// define, and `$or` branches that match nothing.
    fn check(&self, map: &Mapping, what: &str) -> Result<()> {
        for (key, value) in map {
            let key = key.as_str().unwrap_or_default();
            match key {
                "$or" => {
                    let branches = value
                        .as_sequence()
                        .with_context(|| format!("{what}: `$or` must be a list of patterns"))?;
                    for branch in branches {
                        let branch = branch.as_mapping().with_context(|| {
                            format!("{what}: each `$or` branch must be a mapping")
                        })?;
                        self.check(branch, what)?;
                        let mut hits = false;
                        for kind in EventKind::ALL {
                            hits |= matches(branch, kind)?;
                        }
                        ensure!(
                            hits,
                            "{what}: the EventPattern branch {} matches no event of orderflow-contracts",
                            short(&Value::Mapping(branch.clone()))
                        );
                    }
                }
                "source" | "detail-type" => {
                    let matchers = value.as_sequence().with_context(|| {
                        format!("{what}: `{key}` must be a list, found {}", short(value))
                    })?;
                    for matcher in matchers {
                        if let Some(exact) = matcher.as_str() {
                            let known = EventKind::ALL.iter().any(|k| field(*k, key) == exact);
                            ensure!(
                                known,
                                "{what}: the EventPattern names {key} `{exact}`, which \
                                 orderflow-contracts does not define"
                            );
                        }
                    }
                }
                other => bail!(
                    "{what}: graph cannot evaluate the EventPattern field `{other}` \
                     (it reads source, detail-type and $or)"
                ),
            }
        }
        Ok(())
    }

    /// Whether this pattern matches events of `kind`.
    pub fn matches(&self, kind: EventKind) -> Result<bool> {
        matches(&self.0, kind)
    }

    /// The kinds this pattern matches, in the contracts' order.
    pub fn kinds(&self) -> Result<Vec<EventKind>> {
        let mut out = Vec::new();
        for kind in EventKind::ALL {
            if self.matches(kind)? {
                out.push(kind);
            }
        }
        Ok(out)
    }

    /// Whether the pattern, or one of its `$or` branches, names a
    /// `detail-type`.
    pub fn names_detail_type(&self) -> bool {
        names_detail_type(&self.0)
    }

    /// The pattern in words: `source prefix orderflow.`.
    pub fn describe(&self) -> String {
        describe(&self.0)
    }
}

fn field(kind: EventKind, name: &str) -> &'static str {
    if name == "source" {
        kind.source()
    } else {
        kind.detail_type()
    }
}

fn matches(map: &Mapping, kind: EventKind) -> Result<bool> {
    for (key, value) in map {
        let key = key.as_str().unwrap_or_default();
        let hit = if key == "$or" {
            let mut any = false;
            for branch in value.as_sequence().into_iter().flatten() {
                if let Some(branch) = branch.as_mapping() {
                    any |= matches(branch, kind)?;
                }
            }
            any
        } else {
            let actual = field(kind, key);
            let mut any = false;
            for matcher in value.as_sequence().into_iter().flatten() {
                any |= matcher_matches(matcher, actual)?;
            }
            any
        };
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

fn matcher_matches(matcher: &Value, actual: &str) -> Result<bool> {
    if let Some(exact) = matcher.as_str() {
        return Ok(exact == actual);
    }
    let Some((op, arg)) = matcher
        .as_mapping()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
        .and_then(|(k, v)| Some((k.as_str()?, v)))
    else {
        bail!("graph cannot evaluate the matcher {}", short(matcher));
    };
    let text = arg.as_str();
    Ok(match (op, text) {
        ("prefix", Some(p)) => actual.starts_with(p),
        ("suffix", Some(s)) => actual.ends_with(s),
        ("equals-ignore-case", Some(s)) => actual.eq_ignore_ascii_case(s),
        ("wildcard", Some(glob)) => wildcard(glob, actual),
        ("anything-but", Some(s)) => actual != s,
        ("anything-but", None) => match arg {
            Value::Sequence(values) => !values.iter().any(|v| v.as_str() == Some(actual)),
            Value::Mapping(_) => !matcher_matches(arg, actual)?,
            _ => bail!("graph cannot evaluate the matcher {}", short(matcher)),
        },
        _ => bail!("graph cannot evaluate the matcher {}", short(matcher)),
    })
}

/// EventBridge's `wildcard`: `*` matches any run of characters.
pub fn wildcard(glob: &str, actual: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

fn names_detail_type(map: &Mapping) -> bool {
    map.iter().any(|(key, value)| match key.as_str() {
        Some("detail-type") => true,
        Some("$or") => value
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_mapping)
            .any(names_detail_type),
        _ => false,
    })
}

/// A pattern in words: `source prefix orderflow.`.
fn describe(map: &Mapping) -> String {
    let mut parts = Vec::new();
    for (key, value) in map {
        let key = key.as_str().unwrap_or_default();
        if key == "$or" {
            let branches: Vec<String> = value
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Value::as_mapping)
                .map(describe)
                .collect();
            parts.push(format!("({})", branches.join(" or ")));
            continue;
        }
        let matchers: Vec<String> = value
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|m| match m.as_str() {
                Some(exact) => exact.to_owned(),
                None => short(m)
                    .trim_matches(|c| c == '{' || c == '}')
                    .replace(':', "")
                    .replace('-', " ")
                    .trim()
                    .to_owned(),
            })
            .collect();
        parts.push(format!("{key} {}", matchers.join(" | ")));
    }
    parts.join(", ")
}

/// A YAML value on one line, cut after 80 characters: how errors quote
/// what they refuse (here and in the project's template readers).
pub fn short(value: &Value) -> String {
    let text = serde_norway::to_string(value).unwrap_or_else(|_| format!("{value:?}"));
    let text = text.trim().replace('\n', " ");
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(json: &str) -> Result<Vec<&'static str>> {
        let pattern = Pattern::read(&Value::String(json.to_owned()), "test")?;
        Ok(pattern
            .kinds()?
            .into_iter()
            .map(EventKind::detail_type)
            .collect())
    }

    #[test]
    fn each_matcher_selects_the_kinds_it_should() {
        assert_eq!(
            kinds(r#"{"detail-type": ["OrderPlaced"]}"#).unwrap(),
            ["OrderPlaced"]
        );
        assert_eq!(
            kinds(r#"{"source": [{"prefix": "orderflow.pay"}]}"#).unwrap(),
            [
                "PaymentAuthorized",
                "PaymentDeclined",
                "PaymentVoided",
                "PaymentCaptured"
            ]
        );
        assert_eq!(
            kinds(r#"{"detail-type": [{"suffix": "Released"}]}"#).unwrap(),
            ["StockReleased"]
        );
        assert_eq!(
            kinds(r#"{"detail-type": [{"equals-ignore-case": "orderplaced"}]}"#).unwrap(),
            ["OrderPlaced"]
        );
        assert_eq!(
            kinds(r#"{"detail-type": [{"wildcard": "Stock*Re*d"}]}"#).unwrap(),
            ["StockReserved", "StockReleased", "StockNotReserved"]
        );
        assert_eq!(
            kinds(
                r#"{"source": [{"anything-but": ["orderflow.payment", "orderflow.inventory"]}]}"#
            )
            .unwrap(),
            ["OrderPlaced", "ShipmentScheduled"]
        );
        assert_eq!(
            kinds(
                r#"{"$or": [{"detail-type": ["OrderPlaced"]}, {"source": ["orderflow.shipping"]}]}"#
            )
            .unwrap(),
            ["OrderPlaced", "ShipmentScheduled"]
        );
    }

    #[test]
    fn wildcards_match_as_eventbridge_says() {
        for (glob, actual, expected) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "a", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("ab*ba", "aba", false),
            ("*ab*", "xaby", true),
            ("a**b", "ab", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
        ] {
            assert_eq!(wildcard(glob, actual), expected, "{glob} on {actual}");
        }
    }

    #[test]
    fn what_cannot_be_evaluated_or_names_no_kind_is_refused() {
        for (pattern, says) in [
            (
                r#"{"detail": {"x": [1]}}"#,
                "cannot evaluate the EventPattern field `detail`",
            ),
            (r#"{"detail-type": ["OrderPlacd"]}"#, "does not define"),
            (r#"{"source": "orderflow.orders"}"#, "must be a list"),
            (
                r#"{"source": [{"numeric": [">", 1]}]}"#,
                "cannot evaluate the matcher",
            ),
            (
                r#"{"$or": [{"detail-type": ["OrderPlaced"]}, {"source": [{"prefix": "x"}]}]}"#,
                "matches no event",
            ),
            (r#"[1]"#, "EventPattern"),
            (r#"{"#, "not JSON"),
        ] {
            let err = kinds(pattern).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{pattern}: {err:#}");
        }
    }
}
