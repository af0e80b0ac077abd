//! `cargo xtask asyncapi`: an AsyncAPI 3.0 document of the bus, derived
//! from `infra/template.yaml` and the contracts, in `events/asyncapi.yaml`.
//!
//! - Channels: the bus, which carries every event, and each queue a rule
//!   routes into, with the events its rules' patterns match.
//! - Operations: each function receives from its queues and sends the
//!   kinds whose `source` it owns onto the bus; the sources no function
//!   owns are producers outside the stack that send onto the bus.
//! - Messages: one per event kind, named by its `detail-type`, whose
//!   payload is the EventBridge `detail`, by reference to its schema in
//!   `events/schemas/`: one of its versions' schemas, when it has several.
//!
//! Routing is read from the template exactly as `cargo xtask graph` reads
//! it (`crate::graph`), so the document and the diagram cannot disagree.
//! `--write` rewrites the file; `--check` (run by the xtask unit tests)
//! fails if it is stale.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use orderflow_contracts::EventKind;
use orderflow_contracts::schema::{file_name, versions};
use orderflow_patterns::Pattern;
use serde_norway::Value;

use crate::graph::{
    BUS, FUNCTION, QUEUE, RULE, TEMPLATE, Template, function_name, property, source_owner,
};
use crate::project_root;

/// Where the document lives.
pub const DOCUMENT: &str = "events/asyncapi.yaml";

/// The document the template at `root` gives.
fn rendered(root: &Path) -> Result<String> {
    let template = fs::read_to_string(root.join(TEMPLATE))
        .with_context(|| format!("could not read {TEMPLATE}"))?;
    render(&template).with_context(|| format!("in {TEMPLATE}"))
}

/// Rewrites the document at `root` from its template.
pub fn write(root: &Path) -> Result<()> {
    fs::write(root.join(DOCUMENT), rendered(root)?)
        .with_context(|| format!("could not write {DOCUMENT}"))
}

/// `cargo xtask asyncapi [--write | --check]`.
pub fn main(args: &[String]) -> Result<()> {
    let root = project_root();
    let document = rendered(&root)?;
    let path = root.join(DOCUMENT);
    match args {
        [] => print!("{document}"),
        [flag] if flag == "--write" => {
            fs::write(&path, &document).with_context(|| format!("could not write {DOCUMENT}"))?;
            println!("wrote {DOCUMENT}");
        }
        [flag] if flag == "--check" => {
            let committed = fs::read_to_string(&path).unwrap_or_default();
            ensure!(
                committed == document,
                "{DOCUMENT} is stale: run `cargo xtask asyncapi --write` and commit it"
            );
        }
        _ => bail!("usage: cargo xtask asyncapi [--write | --check]"),
    }
    Ok(())
}

/// The bus as the template routes it.
#[derive(Debug, Default, PartialEq)]
struct Routes {
    /// The bus's logical id.
    bus: String,
    /// Each queue a rule routes into: the kinds routed there.
    queues: BTreeMap<String, BTreeSet<EventKind>>,
    /// Each function by name: the queues it consumes.
    consumers: BTreeMap<String, Vec<String>>,
    /// Each sender by name (a function, or a source's owner outside the
    /// stack): the kinds it sends.
    senders: BTreeMap<String, Vec<EventKind>>,
}

/// The document for the template `template_yaml`.
pub fn render(template_yaml: &str) -> Result<String> {
    let root: Value = serde_norway::from_str(template_yaml).context("not YAML")?;
    let template = Template::parse(&root)?;
    Ok(document(&routes(&template)?))
}

fn routes(t: &Template<'_>) -> Result<Routes> {
    let buses: Vec<&str> = t.of_type(BUS).map(|(id, _)| id).collect();
    let [bus] = buses[..] else {
        bail!(
            "the document describes one bus; the template has {}",
            buses.len()
        );
    };
    let mut routes = Routes {
        bus: bus.to_owned(),
        ..Routes::default()
    };
    for (id, rule) in t.of_type(RULE) {
        let what = format!("rule `{id}`");
        let pattern = property(rule, "EventPattern")
            .with_context(|| format!("{what} has no EventPattern"))?;
        let kinds = Pattern::read(pattern, &what)?.kinds()?;
        for to in t.rule_targets(rule, &what)? {
            if t.of_type(QUEUE).any(|(queue, _)| queue == to) {
                let routed = routes.queues.entry(to.to_owned()).or_default();
                routed.extend(kinds.iter().copied());
            }
        }
    }
    for (id, function) in t.of_type(FUNCTION) {
        let name = function_name(id, function);
        let consumed = t.consumed_queues(id, function)?;
        for queue in &consumed {
            ensure!(
                routes.queues.contains_key(*queue),
                "function `{id}` consumes `{queue}`, which no rule routes into"
            );
        }
        routes
            .consumers
            .insert(name, consumed.into_iter().map(str::to_owned).collect());
    }
    for kind in EventKind::ALL {
        let owner = source_owner(kind.source()).to_owned();
        routes.senders.entry(owner).or_default().push(kind);
    }
    Ok(routes)
}

/// The AsyncAPI 3.0 document, as YAML. Written by hand rather than
/// serialized, so that its order and quoting never depend on a library.
fn document(r: &Routes) -> String {
    let mut out = String::new();
    header(&mut out);
    channels(&mut out, r);
    operations(&mut out, r);
    messages(&mut out);
    out
}

/// The comment that marks the file generated, `info` and the content type.
fn header(w: &mut String) {
    line(
        w,
        "# Generated by `cargo xtask asyncapi --write` from infra/template.yaml",
    );
    line(
        w,
        "# and the contracts; the xtask tests fail when it is stale.",
    );
    line(w, "asyncapi: 3.0.0");
    line(w, "info:");
    line(w, "  title: orderflow");
    line(w, &format!("  version: '{}'", orderflow_contracts::VERSION));
    line(w, "  description: >-");
    line(
        w,
        "    Order events on an EventBridge bus. Each message is the `detail` of an",
    );
    line(
        w,
        "    EventBridge event whose `source` and `detail-type` it names; rules route",
    );
    line(w, "    them into one SQS queue per consuming function.");
    line(w, "defaultContentType: application/json");
}

/// The bus, which carries every kind, and each queue with what it is sent.
fn channels(w: &mut String, r: &Routes) {
    line(w, "channels:");
    channel(
        w,
        &r.bus,
        "The EventBridge bus: every event goes through it.",
        EventKind::ALL.iter(),
    );
    for (queue, kinds) in &r.queues {
        let description = "An SQS queue the bus's rules route these events into; each \
             record's body is the whole EventBridge event.";
        channel(w, queue, description, kinds.iter());
    }
}

/// Each function receiving from its queues, then each sender publishing to
/// the bus (a function, or a producer outside the stack).
fn operations(w: &mut String, r: &Routes) {
    line(w, "operations:");
    for (function, queues) in &r.consumers {
        for queue in queues {
            let kinds = &r.queues[queue];
            let id = format!(
                "{function}Receives{}",
                if queues.len() > 1 { queue } else { "" }
            );
            operation(
                w,
                &id,
                "receive",
                queue,
                kinds.iter(),
                &format!("{function} consumes its queue."),
            );
        }
    }
    for (sender, kinds) in &r.senders {
        let who = if r.consumers.contains_key(sender) {
            format!("{sender} publishes its outcomes.")
        } else {
            format!(
                "A producer outside the stack publishes as `{}`.",
                kinds[0].source()
            )
        };
        operation(
            w,
            &format!("{sender}Sends"),
            "send",
            &r.bus,
            kinds.iter(),
            &who,
        );
    }
}

/// One message per kind, its payload the committed schema of each version.
fn messages(w: &mut String) {
    line(w, "components:");
    line(w, "  messages:");
    for kind in EventKind::ALL {
        let name = kind.detail_type();
        line(w, &format!("    {name}:"));
        line(w, &format!("      name: {name}"));
        line(
            w,
            &format!(
                "      summary: 'EventBridge source {}, detail-type {name}'",
                kind.source()
            ),
        );
        line(w, "      contentType: application/json");
        line(w, "      payload:");
        let files: Vec<String> = versions(kind).map(|v| file_name(kind, v)).collect();
        if let [only] = files.as_slice() {
            line(w, &format!("        $ref: './schemas/{only}'"));
        } else {
            line(w, "        oneOf:");
            for file in &files {
                line(w, &format!("          - $ref: './schemas/{file}'"));
            }
        }
    }
}

/// `text` as a single-quoted YAML scalar.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn line(out: &mut String, text: &str) {
    let _ = writeln!(out, "{text}");
}

fn channel<'a>(
    out: &mut String,
    id: &str,
    description: &str,
    kinds: impl Iterator<Item = &'a EventKind>,
) {
    line(out, &format!("  {id}:"));
    line(out, &format!("    address: {id}"));
    line(out, &format!("    description: {}", quoted(description)));
    line(out, "    messages:");
    for kind in kinds {
        let name = kind.detail_type();
        line(out, &format!("      {name}:"));
        line(
            out,
            &format!("        $ref: '#/components/messages/{name}'"),
        );
    }
}

fn operation<'a>(
    out: &mut String,
    id: &str,
    action: &str,
    channel: &str,
    kinds: impl Iterator<Item = &'a EventKind>,
    summary: &str,
) {
    line(out, &format!("  {id}:"));
    line(out, &format!("    action: {action}"));
    line(out, &format!("    summary: {}", quoted(summary)));
    line(out, "    channel:");
    line(out, &format!("      $ref: '#/channels/{channel}'"));
    line(out, "    messages:");
    for kind in kinds {
        line(
            out,
            &format!(
                "      - $ref: '#/channels/{channel}/messages/{}'",
                kind.detail_type()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_matches_the_template() {
        let root = project_root();
        let template = fs::read_to_string(root.join(TEMPLATE)).unwrap();
        let committed = fs::read_to_string(root.join(DOCUMENT)).unwrap_or_default();
        assert!(
            committed == render(&template).unwrap(),
            "{DOCUMENT} is stale: run `cargo xtask asyncapi --write` and commit it"
        );
    }

    #[test]
    fn routing_is_read_from_the_rules_and_the_functions() {
        let template = r#"
Resources:
  Bus:
    Type: AWS::Events::EventBus
  PayQueue:
    Type: AWS::SQS::Queue
  PayRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { source: [orderflow.orders], detail-type: [OrderPlaced] }
      Targets: [{ Id: pay, Arn: !GetAtt PayQueue.Arn }]
  Pay:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: payment } }
    Properties:
      Events: { Queue: { Type: SQS, Properties: { Queue: !GetAtt PayQueue.Arn } } }
"#;
        let root: Value = serde_norway::from_str(template).unwrap();
        let routes = routes_of(&root).unwrap();
        assert_eq!(routes.bus, "Bus");
        assert_eq!(
            routes.queues["PayQueue"],
            BTreeSet::from([EventKind::OrderPlaced])
        );
        assert_eq!(routes.consumers["payment"], ["PayQueue"]);
        assert_eq!(routes.senders["orders"], [EventKind::OrderPlaced]);
        assert!(routes.senders["payment"].contains(&EventKind::PaymentAuthorized));
        let unrouted = template.replace(
            "Targets: [{ Id: pay, Arn: !GetAtt PayQueue.Arn }]",
            "Targets: []",
        );
        let root: Value = serde_norway::from_str(&unrouted).unwrap();
        let err = routes_of(&root).unwrap_err().to_string();
        assert!(err.contains("which no rule routes into"), "{err}");
    }

    fn routes_of(root: &Value) -> Result<Routes> {
        routes(&Template::parse(root)?)
    }
}
