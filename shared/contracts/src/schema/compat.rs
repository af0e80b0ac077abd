//! Whether a schema can replace a released one without a new
//! `schema_version`.
//!
//! An event on the bus outlives the code that wrote it: it waits in a queue,
//! a DLQ or an archive, and is read again after a deploy. So a change to an
//! event's schema is safe only when
//! - every event valid under the released schema is valid under the new
//!   one (nothing narrowed, no new required field), and
//! - every field a reader of the released schema finds is still there (no
//!   removed or renamed field; a rename is a removal and an addition).
//!
//! [`breaking_changes`] compares two schemas as `schemars` writes them and
//! names each change that breaks either rule. It errs on the side of
//! breaking: a new or changed `pattern` or `format` counts as narrowing,
//! since no regex can be proven to accept what another did, and a change to
//! a keyword it does not know counts as breaking, so nothing passes unread.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// Keywords that say what a value means to a person, not which values are
/// valid.
const ANNOTATIONS: [&str; 7] = [
    "description",
    "title",
    "$schema",
    "$comment",
    "default",
    "examples",
    "deprecated",
];

/// Lower bounds: a larger value, or one where there was none, narrows.
const LOWER_BOUNDS: [&str; 5] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];

/// Upper bounds: a smaller value, or one where there was none, narrows.
const UPPER_BOUNDS: [&str; 5] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// Keywords whose any change narrows, or may: no checker can tell whether
/// one regex or format accepts everything another did.
const EXACT: [&str; 4] = ["pattern", "format", "const", "uniqueItems"];

/// `$ref`s followed on one path before the schema is taken as recursive
/// and the comparison stops there.
const MAX_DEPTH: usize = 64;

/// One change that breaks the released contract.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakingChange {
    /// Where in the `detail`, as `data.items[].sku`; `(detail)` is the root.
    pub path: String,
    /// What changed there.
    pub change: Change,
}

/// What a [`BreakingChange`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A field readers of the released schema may rely on is gone (or was
    /// renamed).
    Removed,
    /// A field is required that events written under the released schema
    /// may lack.
    NowRequired,
    /// The value may no longer be of every type it could be.
    TypeNarrowed {
        /// The released types.
        released: Vec<String>,
        /// The types now.
        now: Vec<String>,
    },
    /// A constraint accepts less than it did, or may.
    Narrowed {
        /// The keyword, such as `maximum` or `pattern`.
        keyword: String,
        /// Its released value (`None`: it was not there).
        released: Option<Value>,
        /// Its value now (`None`: it is gone).
        now: Option<Value>,
    },
    /// One of the alternatives (`anyOf`/`oneOf`) a released event may take
    /// has no counterpart that accepts it.
    AlternativeRemoved {
        /// Its position among the released alternatives.
        index: usize,
        /// The alternative, as released.
        released: Value,
    },
    /// A `$ref` that does not resolve in its own schema's `$defs`.
    UnresolvedRef(String),
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path)?;
        match &self.change {
            Change::Removed => f.write_str("removed (a rename is a removal too)"),
            Change::NowRequired => f.write_str("now required; released events may lack it"),
            Change::TypeNarrowed { released, now } => write!(
                f,
                "type narrowed from {} to {}",
                released.join("|"),
                now.join("|")
            ),
            Change::Narrowed {
                keyword,
                released,
                now,
            } => write!(
                f,
                "`{keyword}` narrowed from {} to {}",
                shown(released.as_ref()),
                shown(now.as_ref())
            ),
            Change::AlternativeRemoved { index, released } => write!(
                f,
                "released alternative {index}, {released}, is no longer accepted"
            ),
            Change::UnresolvedRef(target) => write!(f, "`$ref` {target} does not resolve"),
        }
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "(none)".to_owned(), Value::to_string)
}

/// Every change from `released` to `now` that breaks the released contract;
/// empty when `now` may replace it under the same `schema_version`.
pub fn breaking_changes(released: &Value, now: &Value) -> Vec<BreakingChange> {
    let mut walk = Walk {
        released_root: released,
        now_root: now,
        found: Vec::new(),
    };
    walk.compare("(detail)", released, now, 0);
    // By path: `serde_json`'s maps are sorted or in insertion order
    // depending on which crates a build unifies its features with.
    let mut found = walk.found;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// One comparison: the two roots, which `$ref`s resolve against, and what
/// it found so far.
struct Walk<'a> {
    released_root: &'a Value,
    now_root: &'a Value,
    found: Vec<BreakingChange>,
}

impl<'a> Walk<'a> {
    fn report(&mut self, path: &str, change: Change) {
        self.found.push(BreakingChange {
            path: path.to_owned(),
            change,
        });
    }

    /// Compares the schemas of the value at `path`.
    fn compare(&mut self, path: &str, released: &'a Value, now: &'a Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let (Some(released), Some(now)) = (
            self.resolve(path, released, Side::Released),
            self.resolve(path, now, Side::Now),
        ) else {
            return;
        };
        let (Some(released_map), Some(now_map)) = (released.as_object(), now.as_object()) else {
            // `true` and `false` schemas: only `true` accepts everything.
            if now != &Value::Bool(true) && released != now {
                self.report(
                    path,
                    Change::Narrowed {
                        keyword: "(schema)".to_owned(),
                        released: Some(released.clone()),
                        now: Some(now.clone()),
                    },
                );
            }
            return;
        };
        if alternatives(released).is_some() || alternatives(now).is_some() {
            let released = alternatives(released).unwrap_or(std::slice::from_ref(released));
            let now = alternatives(now).unwrap_or(std::slice::from_ref(now));
            return self.alternatives(path, released, now, depth);
        }
        self.types(path, released_map, now_map);
        self.bounds(path, released_map, now_map);
        self.exact(path, released_map, now_map);
        self.objects(path, released_map, now_map, depth);
        match (released.get("items"), now.get("items")) {
            (Some(r), Some(n)) => self.compare(&format!("{path}[]"), r, n, depth + 1),
            (None, None) => {}
            _ => self.narrowed(path, "items", released_map, now_map),
        }
        self.unknown(path, released_map, now_map);
    }

    /// `value`, or what its `$ref` points to in its own root's `$defs`.
    fn resolve(&mut self, path: &str, value: &'a Value, side: Side) -> Option<&'a Value> {
        let Some(target) = value.get("$ref").and_then(Value::as_str) else {
            return Some(value);
        };
        let root = match side {
            Side::Released => self.released_root,
            Side::Now => self.now_root,
        };
        let resolved = target
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name));
        if resolved.is_none() {
            self.report(path, Change::UnresolvedRef(target.to_owned()));
        }
        resolved
    }

    fn types(&mut self, path: &str, released: &Map<String, Value>, now: &Map<String, Value>) {
        let Some(now_types) = types_of(now) else {
            return;
        };
        let released_types = types_of(released);
        let kept = released_types.as_ref().is_some_and(|types| {
            types
                .iter()
                .all(|t| now_types.contains(t) || (t == "integer" && now_types.contains("number")))
        });
        if !kept {
            self.report(
                path,
                Change::TypeNarrowed {
                    released: released_types.map_or_else(
                        || vec!["(any)".to_owned()],
                        |types| types.into_iter().collect(),
                    ),
                    now: now_types.into_iter().collect(),
                },
            );
        }
    }

    fn bounds(&mut self, path: &str, released: &Map<String, Value>, now: &Map<String, Value>) {
        for (keywords, narrows) in [
            (LOWER_BOUNDS, (|r, n| n > r) as fn(f64, f64) -> bool),
            (UPPER_BOUNDS, |r, n| n < r),
        ] {
            for keyword in keywords {
                let Some(n) = now.get(keyword) else {
                    continue;
                };
                let narrower = match released.get(keyword) {
                    None => true,
                    Some(r) => match (r.as_f64(), n.as_f64()) {
                        (Some(r), Some(n)) => narrows(r, n),
                        _ => r != n,
                    },
                };
                if narrower {
                    self.narrowed(path, keyword, released, now);
                }
            }
        }
    }

    fn exact(&mut self, path: &str, released: &Map<String, Value>, now: &Map<String, Value>) {
        for keyword in EXACT {
            if now.contains_key(keyword) && released.get(keyword) != now.get(keyword) {
                self.narrowed(path, keyword, released, now);
            }
        }
        if let Some(values) = now.get("enum").and_then(Value::as_array) {
            let kept = released
                .get("enum")
                .and_then(Value::as_array)
                .is_some_and(|old| old.iter().all(|v| values.contains(v)));
            if !kept {
                self.narrowed(path, "enum", released, now);
            }
        }
    }

    fn objects(
        &mut self,
        path: &str,
        released: &'a Map<String, Value>,
        now: &'a Map<String, Value>,
        depth: usize,
    ) {
        let now_props = properties(now);
        for (name, released_field) in properties(released).into_iter().flatten() {
            let field = child(path, name);
            match now_props.and_then(|props| props.get(name)) {
                Some(now_field) => self.compare(&field, released_field, now_field, depth + 1),
                None => self.report(&field, Change::Removed),
            }
        }
        let was_required = required(released);
        for name in required(now).difference(&was_required) {
            self.report(&child(path, name), Change::NowRequired);
        }
        let closed = "additionalProperties";
        if now.get(closed) == Some(&Value::Bool(false)) && released.get(closed) != now.get(closed) {
            self.narrowed(path, closed, released, now);
        }
    }

    /// Every released alternative (`anyOf`/`oneOf`, or the schema itself
    /// where it has none) must be accepted by one alternative now. Where
    /// none accepts it, the changes against the alternative in the same
    /// place are named, or the alternative is reported gone.
    fn alternatives(&mut self, path: &str, released: &'a [Value], now: &'a [Value], depth: usize) {
        for (index, alt) in released.iter().enumerate() {
            let trial = |candidate: &'a Value| {
                let mut trial = Walk {
                    released_root: self.released_root,
                    now_root: self.now_root,
                    found: Vec::new(),
                };
                trial.compare(path, alt, candidate, depth + 1);
                trial.found
            };
            if now.iter().any(|candidate| trial(candidate).is_empty()) {
                continue;
            }
            match now.get(index) {
                Some(counterpart) => {
                    let found = trial(counterpart);
                    self.found.extend(found);
                }
                None => self.report(
                    path,
                    Change::AlternativeRemoved {
                        index,
                        released: alt.clone(),
                    },
                ),
            }
        }
    }

    /// A change to a keyword this module does not read breaks, so that
    /// nothing passes unread.
    fn unknown(&mut self, path: &str, released: &Map<String, Value>, now: &Map<String, Value>) {
        let known = |k: &str| {
            ANNOTATIONS.contains(&k)
                || LOWER_BOUNDS.contains(&k)
                || UPPER_BOUNDS.contains(&k)
                || EXACT.contains(&k)
                || [
                    "type",
                    "enum",
                    "properties",
                    "required",
                    "additionalProperties",
                    "items",
                    "anyOf",
                    "oneOf",
                    "$ref",
                    "$defs",
                ]
                .contains(&k)
        };
        let keywords: BTreeSet<&String> = released.keys().chain(now.keys()).collect();
        for keyword in keywords {
            if !known(keyword) && released.get(keyword) != now.get(keyword) {
                self.narrowed(path, keyword, released, now);
            }
        }
    }

    fn narrowed(
        &mut self,
        path: &str,
        keyword: &str,
        released: &Map<String, Value>,
        now: &Map<String, Value>,
    ) {
        self.report(
            path,
            Change::Narrowed {
                keyword: keyword.to_owned(),
                released: released.get(keyword).cloned(),
                now: now.get(keyword).cloned(),
            },
        );
    }
}

/// Which of the two schemas a `$ref` belongs to.
#[derive(Clone, Copy)]
enum Side {
    Released,
    Now,
}

/// The `type` keyword as a set; `None` when any type is allowed.
fn types_of(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// The `anyOf` or `oneOf` alternatives of `schema`, if it has any.
fn alternatives(schema: &Value) -> Option<&[Value]> {
    let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf"))?;
    alternatives.as_array().map(Vec::as_slice)
}

fn properties(schema: &Map<String, Value>) -> Option<&Map<String, Value>> {
    schema.get("properties")?.as_object()
}

fn required(schema: &Map<String, Value>) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn child(path: &str, name: &str) -> String {
    if path == "(detail)" {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde_json::json;

    use super::*;
    use crate::EventKind;
    use crate::schema::{detail_schema, versions};

    fn order_placed() -> Value {
        detail_schema(EventKind::OrderPlaced, 1).to_value()
    }

    /// `order_placed()` changed by `edit`, which gets the `$defs`.
    fn edited(edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut schema = order_placed();
        let defs = schema["$defs"].as_object_mut().expect("$defs");
        edit(defs);
        schema
    }

    fn named(released: &Value, now: &Value) -> Vec<String> {
        breaking_changes(released, now)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_schema_may_replace_itself() {
        for kind in EventKind::ALL {
            for version in versions(kind) {
                let schema = detail_schema(kind, version).to_value();
                assert_eq!(breaking_changes(&schema, &schema), [], "{kind:?}");
            }
        }
    }

    #[test]
    fn order_placed_2_could_not_have_replaced_1() {
        let v2 = detail_schema(EventKind::OrderPlaced, 2).to_value();
        let changes = named(&order_placed(), &v2);
        assert!(
            changes
                .iter()
                .any(|c| c.starts_with("data.customer_id:") && c.contains("required")),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|c| c.starts_with("schema_version:")),
            "{changes:?}"
        );
    }

    #[test]
    fn a_removed_field_breaks_whether_it_was_required_or_not() {
        let now = edited(|defs| {
            let address = defs["Address"]["properties"]
                .as_object_mut()
                .expect("props");
            address.remove("line2");
            address.remove("city");
        });
        assert_eq!(
            named(&order_placed(), &now),
            [
                "data.shipping_address.city: removed (a rename is a removal too)",
                "data.shipping_address.line2: removed (a rename is a removal too)",
            ]
        );
    }

    #[test]
    fn a_new_required_field_breaks_and_a_new_optional_one_does_not() {
        let now = edited(|defs| {
            let order = defs["OrderPlaced"].as_object_mut().expect("OrderPlaced");
            order["properties"]["customer_id"] = json!({"type": "string"});
            order["properties"]["note"] = json!({"type": ["string", "null"]});
            order["required"]
                .as_array_mut()
                .expect("required")
                .push("customer_id".into());
        });
        assert_eq!(
            named(&order_placed(), &now),
            ["data.customer_id: now required; released events may lack it"]
        );
    }

    #[test]
    fn an_optional_field_made_required_breaks() {
        let now = edited(|defs| {
            let required = defs["Address"]["required"]
                .as_array_mut()
                .expect("required");
            required.push("line2".into());
        });
        assert_eq!(
            named(&order_placed(), &now),
            ["data.shipping_address.line2: now required; released events may lack it"]
        );
    }

    #[test]
    fn narrowed_types_and_bounds_break_and_widened_ones_do_not() {
        let narrowed = edited(|defs| {
            defs["Address"]["properties"]["line2"]["type"] = json!("string");
            defs["Quantity"]["maximum"] = json!(100);
            defs["MinorUnits"]["minimum"] = json!(1);
            defs["Sku"]["pattern"] = json!("^[A-Z]{1,32}$");
        });
        assert_eq!(
            named(&order_placed(), &narrowed),
            [
                "data.items[].quantity: `maximum` narrowed from 10000 to 100",
                "data.items[].sku: `pattern` narrowed from \"^[A-Z0-9_-]{1,32}$\" to \"^[A-Z]{1,32}$\"",
                "data.items[].unit_price_minor: `minimum` narrowed from 0 to 1",
                "data.shipping_address.line2: type narrowed from null|string to string",
                "data.total_minor: `minimum` narrowed from 0 to 1",
            ]
        );
        let widened = edited(|defs| {
            defs["Quantity"]["maximum"] = json!(100_000);
            defs["Quantity"]["type"] = json!("number");
            defs["Address"]["properties"]["city"]["description"] = json!("Anything else.");
            defs["Sku"].as_object_mut().expect("Sku").remove("pattern");
        });
        assert_eq!(named(&order_placed(), &widened), Vec::<String>::new());
    }

    #[test]
    fn a_keyword_it_does_not_read_breaks_when_it_changes() {
        let now = edited(|defs| {
            defs["Sku"]["contentEncoding"] = json!("base64");
        });
        assert_eq!(
            named(&order_placed(), &now),
            ["data.items[].sku: `contentEncoding` narrowed from (none) to \"base64\""]
        );
    }

    #[test]
    fn an_unresolved_ref_is_named() {
        let now = edited(|defs| {
            defs.remove("Sku");
        });
        assert_eq!(
            named(&order_placed(), &now),
            ["data.items[].sku: `$ref` #/$defs/Sku does not resolve"]
        );
    }

    /// Changes made to Rust types, read through the schemas schemars
    /// generates for them, as the committed schemas are.
    mod from_types {
        use super::*;

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Released {
            id: u32,
            note: Option<String>,
            parcel: Option<Parcel>,
            kind: Kind,
        }

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Parcel {
            grams: u32,
        }

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Letter,
            Box,
        }

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Now {
            id: u16,
            customer: String,
            parcel: Parcel,
            kind: Narrower,
        }

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        #[serde(rename_all = "snake_case")]
        enum Narrower {
            Letter,
        }

        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Wider {
            id: u64,
            note: Option<String>,
            parcel: Option<Parcel>,
            kind: Kind,
            extra: Option<bool>,
        }

        fn schema<T: JsonSchema>() -> Value {
            schemars::generate::SchemaSettings::draft2020_12()
                .into_generator()
                .into_root_schema_for::<T>()
                .to_value()
        }

        #[test]
        fn each_breaking_change_to_a_type_is_named() {
            assert_eq!(
                named(&schema::<Released>(), &schema::<Now>()),
                [
                    "customer: now required; released events may lack it",
                    "id: `maximum` narrowed from (none) to 65535",
                    "id: `format` narrowed from \"uint32\" to \"uint16\"",
                    "kind: `enum` narrowed from [\"letter\",\"box\"] to [\"letter\"]",
                    "note: removed (a rename is a removal too)",
                    "parcel: released alternative 1, {\"type\":\"null\"}, is no longer accepted",
                    "parcel: now required; released events may lack it",
                ]
            );
        }

        #[test]
        fn a_wider_type_is_no_break() {
            let found = named(&schema::<Released>(), &schema::<Wider>());
            // A wider integer has a new `format`, which is read as narrowing:
            // the checker cannot know what every format accepts.
            assert_eq!(
                found,
                ["id: `format` narrowed from \"uint32\" to \"uint64\""]
            );
        }
    }
}
