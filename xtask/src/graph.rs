//! `cargo xtask graph`: the event flow as a Mermaid diagram, derived from
//! `infra/template.yaml` and the contracts.
//!
//! The bus, its archive and its rules (each with the detail-types its
//! pattern matches), the queues the rules target and their dead-letter
//! queues, the functions that consume the queues, and the events each
//! function emits back onto the bus. Nothing here knows which rule routes
//! what: that is read from the template, and who emits what from
//! [`EventKind`]. A function emits the kinds whose `source` ends in its name
//! (`payment` emits the `orderflow.payment` kinds); the sources that no
//! function owns are drawn as producers outside the stack.
//!
//! `cargo xtask graph` prints the diagram, `--write` rewrites the block of
//! `README.md` between the graph markers, `--check` fails if that block is
//! stale.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use orderflow_contracts::EventKind;
use orderflow_patterns::{Pattern, short};
use serde_norway::Value;

use crate::project_root;

pub(crate) const TEMPLATE: &str = "infra/template.yaml";
pub(crate) const README: &str = "README.md";
/// The line that opens the generated block in `README.md`.
const START: &str = "<!-- graph:start (cargo xtask graph --write) -->";
const START_PREFIX: &str = "<!-- graph:start";
/// The line that closes it.
const END: &str = "<!-- graph:end -->";

pub(crate) const BUS: &str = "AWS::Events::EventBus";
const ARCHIVE: &str = "AWS::Events::Archive";
pub(crate) const RULE: &str = "AWS::Events::Rule";
pub(crate) const QUEUE: &str = "AWS::SQS::Queue";
pub(crate) const FUNCTION: &str = "AWS::Serverless::Function";
/// The node id of the account's default bus, for a rule without `EventBusName`.
const DEFAULT_BUS: &str = "default_bus";

/// `cargo xtask graph [--write | --check]`.
pub fn main(args: &[String]) -> Result<()> {
    let root = project_root();
    let diagram = diagram_at(&root)?;
    match args {
        [] => {
            print!("{diagram}");
            Ok(())
        }
        [flag] if flag == "--write" || flag == "--check" => {
            let readme_path = root.join(README);
            let readme = fs::read_to_string(&readme_path)
                .with_context(|| format!("could not read {}", readme_path.display()))?;
            if flag == "--check" {
                return check_readme(&readme, &diagram).map_err(anyhow::Error::msg);
            }
            let updated = replace_block(&readme, &diagram).map_err(anyhow::Error::msg)?;
            if updated == readme {
                println!("{README}: the diagram is up to date");
            } else {
                fs::write(&readme_path, updated)
                    .with_context(|| format!("could not write {}", readme_path.display()))?;
                println!("{README}: rewrote the diagram");
            }
            Ok(())
        }
        _ => bail!("usage: cargo xtask graph [--write | --check]"),
    }
}

/// The diagram the template at `root` gives.
fn diagram_at(root: &Path) -> Result<String> {
    let template = fs::read_to_string(root.join(TEMPLATE))
        .with_context(|| format!("could not read {TEMPLATE}"))?;
    render(&template).with_context(|| format!("in {TEMPLATE}"))
}

/// Rewrites the diagram in the README at `root` from its template.
pub fn write(root: &Path) -> Result<()> {
    let diagram = diagram_at(root)?;
    let readme = fs::read_to_string(root.join(README))
        .with_context(|| format!("could not read {README}"))?;
    let updated = replace_block(&readme, &diagram).map_err(anyhow::Error::msg)?;
    fs::write(root.join(README), updated).with_context(|| format!("could not write {README}"))
}

/// The Mermaid source of the diagram (`flowchart LR ...`, no code fence).
pub fn render(template_yaml: &str) -> Result<String> {
    let root: Value = serde_norway::from_str(template_yaml).context("the template is not YAML")?;
    let template = Template::parse(&root)?;
    let graph = Graph::build(&template)?;
    Ok(graph.mermaid())
}

/// Checks that `readme`'s generated block holds `diagram`; the error says
/// how to fix it.
pub fn check_readme(readme: &str, diagram: &str) -> Result<(), String> {
    let updated = replace_block(readme, diagram)?;
    if updated == readme {
        return Ok(());
    }
    let first_difference = readme
        .lines()
        .zip(updated.lines())
        .find(|(old, new)| old != new)
        .map(|(old, new)| format!("\n  README:    {old}\n  generated: {new}"))
        .unwrap_or_default();
    Err(format!(
        "the diagram in {README} is stale: run `cargo xtask graph --write`{first_difference}"
    ))
}

/// `readme` with the block between the graph markers replaced by `diagram`
/// in a `mermaid` code fence.
pub fn replace_block(readme: &str, diagram: &str) -> Result<String, String> {
    let missing = || {
        format!(
            "{README} has no generated diagram block: add the lines `{START}` and `{END}` \
             where it goes, then run `cargo xtask graph --write`"
        )
    };
    let start = readme.find(START_PREFIX).ok_or_else(missing)?;
    if readme[start + 1..].contains(START_PREFIX) {
        return Err(format!(
            "{README} has more than one `{START_PREFIX}` marker"
        ));
    }
    let body = readme[start..]
        .find('\n')
        .map(|n| start + n + 1)
        .ok_or_else(missing)?;
    let end = readme[body..]
        .find(END)
        .map(|n| body + n)
        .ok_or_else(missing)?;
    let diagram = diagram.trim_end();
    Ok(format!(
        "{}{START}\n```mermaid\n{diagram}\n```\n{}",
        &readme[..start],
        &readme[end..]
    ))
}

/// The resources of a template, by logical id.
pub(crate) struct Template<'a> {
    resources: BTreeMap<&'a str, Resource<'a>>,
}

pub(crate) struct Resource<'a> {
    ty: &'a str,
    properties: Option<&'a Value>,
    metadata: Option<&'a Value>,
}

impl<'a> Template<'a> {
    pub(crate) fn parse(root: &'a Value) -> Result<Self> {
        let resources = root
            .get("Resources")
            .and_then(Value::as_mapping)
            .context("the template has no Resources mapping")?;
        let mut out = BTreeMap::new();
        for (id, resource) in resources {
            let id = id
                .as_str()
                .context("a resource's logical id is not a string")?;
            let ty = resource
                .get("Type")
                .and_then(Value::as_str)
                .with_context(|| format!("resource `{id}` has no Type"))?;
            out.insert(
                id,
                Resource {
                    ty,
                    properties: resource.get("Properties"),
                    metadata: resource.get("Metadata"),
                },
            );
        }
        Ok(Self { resources: out })
    }

    /// The resources of one type, sorted by logical id.
    pub(crate) fn of_type(&self, ty: &str) -> impl Iterator<Item = (&'a str, &Resource<'a>)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r.ty == ty)
            .map(|(id, r)| (*id, r))
    }

    /// The resources that `value` (an intrinsic reference) names, each of
    /// one of the types `want`. `what` says where the reference is, for the
    /// error messages.
    pub(crate) fn targets(&self, value: &Value, want: &[&str], what: &str) -> Result<Vec<&'a str>> {
        let ids = refs(value).with_context(|| format!("{what}: cannot read the reference"))?;
        ensure!(
            !ids.is_empty(),
            "{what} ({}) names no resource of this template",
            short(value)
        );
        let mut out = Vec::new();
        for id in ids {
            let Some((&id, resource)) = self.resources.get_key_value(id.as_str()) else {
                bail!(
                    "{what} points at `{id}`, which is not a resource in the template \
                     (expected {})",
                    want.join(" or ")
                );
            };
            ensure!(
                want.contains(&resource.ty),
                "{what} points at `{id}`, a {}; expected {}",
                resource.ty,
                want.join(" or ")
            );
            out.push(id);
        }
        Ok(out)
    }
}

impl<'a> Template<'a> {
    /// The queues and functions rule `rule` targets; `what` names the rule
    /// for the error messages.
    pub(crate) fn rule_targets(&self, rule: &Resource<'a>, what: &str) -> Result<Vec<&'a str>> {
        let targets = property(rule, "Targets")
            .and_then(Value::as_sequence)
            .with_context(|| format!("{what} has no Targets list"))?;
        let mut out = Vec::new();
        for target in targets {
            let target_id = target
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or("(no Id)");
            let what = format!("{what}, target `{target_id}`");
            let arn = target
                .get("Arn")
                .with_context(|| format!("{what} has no Arn"))?;
            out.extend(self.targets(arn, &[QUEUE, FUNCTION], &what)?);
        }
        Ok(out)
    }

    /// Queue `id`'s redrive policy: the dead-letter queues it names and its
    /// `maxReceiveCount`, or `None` if it has no policy.
    pub(crate) fn dead_letter_queues(
        &self,
        id: &str,
        queue: &Resource<'a>,
    ) -> Result<Option<(Vec<&'a str>, Option<u64>)>> {
        let Some(redrive) = property(queue, "RedrivePolicy") else {
            return Ok(None);
        };
        let what = format!("queue `{id}`'s RedrivePolicy");
        let target = redrive
            .get("deadLetterTargetArn")
            .with_context(|| format!("{what} has no deadLetterTargetArn"))?;
        let receives = redrive.get("maxReceiveCount").and_then(Value::as_u64);
        Ok(Some((self.targets(target, &[QUEUE], &what)?, receives)))
    }

    /// The resource with logical id `id`, if there is one.
    pub(crate) fn resource(&self, id: &str) -> Option<&Resource<'a>> {
        self.resources.get(id)
    }

    /// The queues function `id` reads through its SQS events.
    pub(crate) fn consumed_queues(
        &self,
        id: &str,
        function: &Resource<'a>,
    ) -> Result<Vec<&'a str>> {
        let events = property(function, "Events").and_then(Value::as_mapping);
        let mut out = Vec::new();
        for (event, spec) in events.into_iter().flatten() {
            if spec.get("Type").and_then(Value::as_str) != Some("SQS") {
                continue;
            }
            let event = event.as_str().unwrap_or_default();
            let what = format!("function `{id}`, event `{event}`");
            let queue = spec
                .get("Properties")
                .and_then(|p| p.get("Queue"))
                .with_context(|| format!("{what} has no Properties.Queue"))?;
            out.extend(self.targets(queue, &[QUEUE], &format!("{what}'s Queue"))?);
        }
        Ok(out)
    }
}

pub(crate) fn property<'a>(resource: &Resource<'a>, key: &str) -> Option<&'a Value> {
    resource.properties.and_then(|p| p.get(key))
}

/// The logical ids an intrinsic reference names (`!Ref`, `!GetAtt`, `!Sub`,
/// `!If`, short or long form); pseudo parameters (`AWS::...`) are left out,
/// and a plain string names nothing.
fn refs(value: &Value) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    collect_refs(value, &mut out)?;
    Ok(out)
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) -> Result<()> {
    match value {
        Value::String(_) => Ok(()),
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            intrinsic(tag.trim_start_matches('!'), &tagged.value, out)
        }
        Value::Mapping(map) if map.len() == 1 => {
            let Some((Some(key), arg)) = map.iter().next().map(|(k, v)| (k.as_str(), v)) else {
                bail!("expected a reference, found {}", short(value));
            };
            match key {
                "Ref" => intrinsic("Ref", arg, out),
                _ => match key.strip_prefix("Fn::") {
                    Some(name) => intrinsic(name, arg, out),
                    None => bail!("expected a reference, found {}", short(value)),
                },
            }
        }
        _ => bail!(
            "expected a reference (!Ref, !GetAtt, !Sub or !If), found {}",
            short(value)
        ),
    }
}

fn intrinsic(name: &str, arg: &Value, out: &mut BTreeSet<String>) -> Result<()> {
    let mut add = |id: &str| {
        if !id.starts_with("AWS::") {
            out.insert(id.to_owned());
        }
    };
    match (name, arg) {
        ("Ref", Value::String(id)) => add(id),
        ("GetAtt", Value::String(path)) => add(path.split_once('.').map_or(path, |(id, _)| id)),
        ("GetAtt", Value::Sequence(parts)) => match parts.first().and_then(Value::as_str) {
            Some(id) => add(id),
            None => bail!("!GetAtt takes [LogicalId, Attribute]"),
        },
        ("Sub", Value::String(text)) => sub_refs(text).iter().for_each(|id| add(id)),
        ("Sub", Value::Sequence(parts)) => {
            let (Some(text), vars) = (
                parts.first().and_then(Value::as_str),
                parts.get(1).and_then(Value::as_mapping),
            ) else {
                bail!("!Sub takes a string or [String, {{Var: Value}}]");
            };
            for id in sub_refs(text) {
                match vars.and_then(|v| v.get(id.as_str())) {
                    Some(bound) => collect_refs(bound, out)?,
                    None if !id.starts_with("AWS::") => {
                        out.insert(id);
                    }
                    None => {}
                }
            }
        }
        ("If", Value::Sequence(parts)) if parts.len() == 3 => {
            collect_refs(&parts[1], out)?;
            collect_refs(&parts[2], out)?;
        }
        ("Ref" | "GetAtt" | "Sub" | "If", _) => {
            bail!("malformed !{name}: {}", short(arg))
        }
        _ => bail!("unsupported intrinsic function !{name} (graph reads !Ref, !GetAtt, !Sub, !If)"),
    }
    Ok(())
}

/// The names in the `${...}` of a `!Sub` string (`${X.Arn}` names `X`;
/// `${!literal}` names nothing).
fn sub_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("${") {
        rest = &rest[open + 2..];
        let Some(close) = rest.find('}') else { break };
        let name = &rest[..close];
        if !name.starts_with('!') {
            let id = name.split_once('.').map_or(name, |(id, _)| id);
            out.push(id.trim().to_owned());
        }
        rest = &rest[close + 1..];
    }
    out
}

/// A rule's edge label: the detail-types its pattern matches, or, for a
/// pattern on the source alone, the pattern itself.
fn label(pattern: &Pattern, what: &str) -> Result<String> {
    let kinds = pattern.kinds()?;
    ensure!(
        !kinds.is_empty(),
        "{what}: the EventPattern matches no event of orderflow-contracts"
    );
    if pattern.names_detail_type() {
        return Ok(kinds
            .iter()
            .map(|k| escape(k.detail_type()))
            .collect::<Vec<_>>()
            .join("<br/>"));
    }
    let mut label = escape(&pattern.describe());
    if kinds.len() == EventKind::ALL.len() {
        label.push_str("<br/>(every event)");
    }
    Ok(label)
}

/// Text for inside a quoted Mermaid label.
fn escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// Node shapes, in the order the diagram declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    Producer,
    Bus,
    Archive,
    Rule,
    Queue,
    Function,
    DeadLetter,
}

impl Shape {
    fn comment(self) -> &'static str {
        match self {
            Self::Producer => "producers outside the stack",
            Self::Bus => "buses",
            Self::Archive => "archives",
            Self::Rule => "rules",
            Self::Queue => "queues",
            Self::Function => "functions",
            Self::DeadLetter => "dead-letter queues",
        }
    }

    fn node(self, id: &str, label: &str) -> String {
        match self {
            Self::Producer => format!("{id}>\"{label}\"]"),
            Self::Bus => format!("{id}{{{{\"{label}\"}}}}"),
            Self::Archive | Self::DeadLetter => format!("{id}[(\"{label}\")]"),
            Self::Rule => format!("{id}[/\"{label}\"/]"),
            Self::Queue => format!("{id}[\"{label}\"]"),
            Self::Function => format!("{id}([\"{label}\"])"),
        }
    }
}

/// Edge groups, in the order the diagram lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Publish,
    Archive,
    Match,
    Target,
    Consume,
    Emit,
    Redrive,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    stage: Stage,
    from: String,
    to: String,
    label: String,
}

#[derive(Default)]
struct Graph {
    nodes: BTreeMap<(Shape, String), String>,
    edges: BTreeSet<Edge>,
}

impl Graph {
    fn node(&mut self, shape: Shape, id: &str, label: String) {
        self.nodes.insert((shape, id.to_owned()), label);
    }

    fn edge(&mut self, stage: Stage, from: &str, to: &str, label: String) {
        self.edges.insert(Edge {
            stage,
            from: from.to_owned(),
            to: to.to_owned(),
            label,
        });
    }

    /// Reads the diagram from the template and the contracts.
    fn build(t: &Template<'_>) -> Result<Self> {
        let mut g = Self::default();
        let buses: Vec<&str> = t.of_type(BUS).map(|(id, _)| id).collect();
        for bus in &buses {
            g.node(
                Shape::Bus,
                bus,
                format!("{}<br/>EventBridge bus", escape(bus)),
            );
        }
        g.add_archives(t)?;
        g.add_queues(t)?;
        g.add_rules(t)?;
        let owned_sources = g.add_functions(t, &buses)?;
        g.add_producers(&buses, &owned_sources)?;
        Ok(g)
    }

    /// Adds each archive, fed by its bus with what its pattern keeps.
    fn add_archives(&mut self, t: &Template<'_>) -> Result<()> {
        for (id, archive) in t.of_type(ARCHIVE) {
            let what = format!("archive `{id}`");
            let source = property(archive, "SourceArn")
                .with_context(|| format!("{what} has no SourceArn"))?;
            let label = match property(archive, "EventPattern") {
                Some(p) => label(&Pattern::read(p, &what)?, &what)?,
                None => "every event".to_owned(),
            };
            let days = property(archive, "RetentionDays").and_then(Value::as_u64);
            let kept = days.map_or("kept forever".to_owned(), |d| format!("{d} days"));
            self.node(
                Shape::Archive,
                id,
                format!("{}<br/>archive, {kept}", escape(id)),
            );
            for bus in t.targets(source, &[BUS], &format!("{what}'s SourceArn"))? {
                self.edge(Stage::Archive, bus, id, label.clone());
            }
        }
        Ok(())
    }

    /// Adds each queue, drawn as a dead-letter queue if some queue's redrive
    /// policy names it, and the redrive edges.
    fn add_queues(&mut self, t: &Template<'_>) -> Result<()> {
        let mut dead_letters = BTreeSet::new();
        for (id, queue) in t.of_type(QUEUE) {
            let Some((dlqs, receives)) = t.dead_letter_queues(id, queue)? else {
                continue;
            };
            let label = match receives {
                Some(n) => format!("after {n} receives"),
                None => "redrive".to_owned(),
            };
            for dlq in dlqs {
                dead_letters.insert(dlq);
                self.edge(Stage::Redrive, id, dlq, label.clone());
            }
        }
        for (id, _) in t.of_type(QUEUE) {
            let shape = if dead_letters.contains(id) {
                Shape::DeadLetter
            } else {
                Shape::Queue
            };
            self.node(shape, id, escape(id));
        }
        Ok(())
    }

    /// Adds each rule, matched on its bus (the default bus if it names
    /// none) with what its pattern matches, and its targets.
    fn add_rules(&mut self, t: &Template<'_>) -> Result<()> {
        for (id, rule) in t.of_type(RULE) {
            let what = format!("rule `{id}`");
            self.node(Shape::Rule, id, escape(id));
            let pattern = property(rule, "EventPattern")
                .with_context(|| format!("{what} has no EventPattern"))?;
            let label = label(&Pattern::read(pattern, &what)?, &what)?;
            let rule_buses = match property(rule, "EventBusName") {
                Some(name) => t.targets(name, &[BUS], &format!("{what}'s EventBusName"))?,
                None => {
                    self.node(
                        Shape::Bus,
                        DEFAULT_BUS,
                        "default<br/>EventBridge bus".to_owned(),
                    );
                    vec![DEFAULT_BUS]
                }
            };
            for bus in rule_buses {
                self.edge(Stage::Match, bus, id, label.clone());
            }
            self.add_rule_targets(t, id, rule, &what)?;
        }
        Ok(())
    }

    /// Adds an edge from rule `id` to each queue or function it targets.
    fn add_rule_targets(
        &mut self,
        t: &Template<'_>,
        id: &str,
        rule: &Resource<'_>,
        what: &str,
    ) -> Result<()> {
        for to in t.rule_targets(rule, what)? {
            self.edge(Stage::Target, id, to, String::new());
        }
        Ok(())
    }

    /// Adds each function, the queues it consumes and the events it emits;
    /// returns the event sources the functions own.
    fn add_functions(
        &mut self,
        t: &Template<'_>,
        buses: &[&str],
    ) -> Result<BTreeSet<&'static str>> {
        let mut owned_sources = BTreeSet::new();
        for (id, function) in t.of_type(FUNCTION) {
            let name = function_name(id, function);
            self.node(
                Shape::Function,
                id,
                format!("{}<br/>lambda: {}", escape(id), escape(&name)),
            );
            self.add_consumed_queues(t, id, function)?;
            self.add_emits(id, function, &name, buses, &mut owned_sources)?;
        }
        Ok(owned_sources)
    }

    /// Adds an edge to function `id` from each queue its SQS events read.
    fn add_consumed_queues(
        &mut self,
        t: &Template<'_>,
        id: &str,
        function: &Resource<'_>,
    ) -> Result<()> {
        for queue in t.consumed_queues(id, function)? {
            self.edge(Stage::Consume, queue, id, String::new());
        }
        Ok(())
    }

    /// Adds an edge from function `id` (named `name`) to each bus it emits
    /// its kinds onto, if it emits any, and records their source as owned.
    fn add_emits(
        &mut self,
        id: &str,
        function: &Resource<'_>,
        name: &str,
        buses: &[&str],
        owned_sources: &mut BTreeSet<&'static str>,
    ) -> Result<()> {
        let emits: Vec<EventKind> = EventKind::ALL
            .into_iter()
            .filter(|k| source_owner(k.source()) == name)
            .collect();
        if emits.is_empty() {
            return Ok(());
        }
        owned_sources.extend(emits.iter().map(|k| k.source()));
        let label = emits
            .iter()
            .map(|k| escape(k.detail_type()))
            .collect::<Vec<_>>()
            .join("<br/>");
        for bus in function_buses(function, buses)
            .with_context(|| format!("function `{id}` emits {}", emits[0].source()))?
        {
            self.edge(Stage::Emit, id, bus, label.clone());
        }
        Ok(())
    }

    /// Adds a producer outside the stack for each source no function owns,
    /// publishing onto the template's one bus.
    fn add_producers(&mut self, buses: &[&str], owned_sources: &BTreeSet<&str>) -> Result<()> {
        let mut producers: BTreeMap<&str, Vec<EventKind>> = BTreeMap::new();
        for kind in EventKind::ALL {
            if !owned_sources.contains(kind.source()) {
                producers.entry(kind.source()).or_default().push(kind);
            }
        }
        for (source, kinds) in producers {
            let [bus] = buses else {
                bail!(
                    "no function emits the {source} events, so they come from outside the \
                     stack, but the template has {} buses for them to come in on",
                    buses.len()
                );
            };
            let id = format!("src_{}", source_owner(source));
            self.node(Shape::Producer, &id, escape(source));
            let label = kinds
                .iter()
                .map(|k| escape(k.detail_type()))
                .collect::<Vec<_>>()
                .join("<br/>");
            self.edge(Stage::Publish, &id, bus, label);
        }
        Ok(())
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        out.push_str(
            "    %% Generated by `cargo xtask graph` from infra/template.yaml and \
             orderflow-contracts; do not edit.\n",
        );
        let mut shape = None;
        for ((s, id), label) in &self.nodes {
            if shape != Some(*s) {
                shape = Some(*s);
                let _ = writeln!(out, "    %% {}", s.comment());
            }
            let _ = writeln!(out, "    {}", s.node(id, label));
        }
        out.push_str("    %% flow\n");
        for edge in &self.edges {
            let arrow = if edge.stage == Stage::Redrive {
                "-.->"
            } else {
                "-->"
            };
            let label = if edge.label.is_empty() {
                String::new()
            } else {
                format!("|\"{}\"|", edge.label)
            };
            let _ = writeln!(out, "    {} {arrow}{label} {}", edge.from, edge.to);
        }
        out
    }
}

/// The name a function emits under: its cargo-lambda binary, else its
/// `FunctionName` without the `${...}` parts, else its logical id without
/// `Function`, lower-cased.
pub(crate) fn function_name(id: &str, function: &Resource<'_>) -> String {
    let binary = function
        .metadata
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str);
    if let Some(binary) = binary {
        return binary.to_owned();
    }
    let name = match property(function, "FunctionName") {
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Tagged(tagged)) if tagged.tag == "Sub" => {
            tagged.value.as_str().map(strip_substitutions)
        }
        _ => None,
    };
    match name.filter(|n| !n.is_empty()) {
        Some(name) => name,
        None => id.trim_end_matches("Function").to_lowercase(),
    }
}

fn strip_substitutions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        rest = rest[open..]
            .find('}')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    out.push_str(rest);
    out.trim_matches(|c: char| c == '-' || c == '_' || c == '/')
        .to_owned()
}

/// The service a source belongs to: `orderflow.payment` -> `payment`.
pub(crate) fn source_owner(source: &str) -> &str {
    source.rsplit_once('.').map_or(source, |(_, owner)| owner)
}

/// The buses a function publishes to: those its environment names, else the
/// template's only bus.
fn function_buses<'a>(function: &Resource<'a>, buses: &[&'a str]) -> Result<Vec<&'a str>> {
    let variables = property(function, "Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping);
    let mut named = BTreeSet::new();
    for value in variables.into_iter().flat_map(|v| v.values()) {
        for id in refs(value).unwrap_or_default() {
            if let Some(bus) = buses.iter().find(|b| **b == id) {
                named.insert(*bus);
            }
        }
    }
    if !named.is_empty() {
        return Ok(named.into_iter().collect());
    }
    match buses {
        [bus] => Ok(vec![*bus]),
        _ => bail!(
            "but no Environment variable of it is a !Ref to a bus, and the template has {} buses",
            buses.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: { Name: !Ref AWS::StackName }
  Archive:
    Type: AWS::Events::Archive
    Properties:
      SourceArn: !GetAtt Bus.Arn
      RetentionDays: 7
      EventPattern: { source: [{ prefix: orderflow. }] }
  PayQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: { deadLetterTargetArn: !GetAtt PayDlq.Arn, maxReceiveCount: 3 }
  PayDlq:
    Type: AWS::SQS::Queue
  PayRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern:
        $or:
          - { source: [orderflow.orders], detail-type: [OrderPlaced] }
          - { source: [orderflow.inventory], detail-type: [StockUnavailable] }
      Targets:
        - Id: pay
          Arn: !Sub "${PayQueue.Arn}"
  Pay:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: payment } }
    Properties:
      Environment: { Variables: { BUS: !Ref Bus } }
      Events:
        Queue:
          Type: SQS
          Properties: { Queue: { "Fn::GetAtt": [PayQueue, Arn] } }
"#;

    fn render_ok(yaml: &str) -> String {
        render(yaml).expect("render failed")
    }

    fn render_err(yaml: &str) -> String {
        match render(yaml) {
            Ok(diagram) => panic!("expected an error, got:\n{diagram}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn readme_diagram_matches_the_template() {
        let root = project_root();
        let read = |path: &str| {
            fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let diagram = render(&read(TEMPLATE)).expect(TEMPLATE);
        if let Err(message) = check_readme(&read(README), &diagram) {
            panic!("{message}");
        }
    }

    #[test]
    fn small_template_renders_the_expected_edges() {
        let diagram = render_ok(SMALL);
        for line in [
            "flowchart LR",
            "Bus{{\"Bus<br/>EventBridge bus\"}}",
            "Archive[(\"Archive<br/>archive, 7 days\")]",
            "PayRule[/\"PayRule\"/]",
            "PayQueue[\"PayQueue\"]",
            "PayDlq[(\"PayDlq\")]",
            "Pay([\"Pay<br/>lambda: payment\"])",
            "src_orders>\"orderflow.orders\"]",
            "src_orders -->|\"OrderPlaced\"| Bus",
            "src_shipping -->|\"ShipmentScheduled\"| Bus",
            "Bus -->|\"source prefix orderflow.<br/>(every event)\"| Archive",
            "Bus -->|\"OrderPlaced<br/>StockUnavailable\"| PayRule",
            "PayRule --> PayQueue",
            "PayQueue --> Pay",
            "Pay -->|\"PaymentAuthorized<br/>PaymentDeclined<br/>PaymentVoided<br/>PaymentCaptured\"| Bus",
            "PayQueue -.->|\"after 3 receives\"| PayDlq",
        ] {
            assert!(
                diagram.lines().any(|l| l.trim() == line),
                "missing `{line}` in:\n{diagram}"
            );
        }
        assert!(
            !diagram.contains("src_payment"),
            "payment is emitted by Pay:\n{diagram}"
        );
        assert_eq!(diagram, render_ok(SMALL), "the output is not deterministic");
    }

    #[test]
    fn rule_target_missing_from_the_template_is_an_error() {
        let yaml = SMALL.replace("${PayQueue.Arn}", "${RefundQueue.Arn}");
        let err = render_err(&yaml);
        assert!(
            err.contains(
                "rule `PayRule`, target `pay` points at `RefundQueue`, which is not a resource"
            ),
            "{err}"
        );
    }

    #[test]
    fn function_queue_of_the_wrong_type_is_an_error() {
        let yaml = SMALL.replace("[PayQueue, Arn]", "[Bus, Arn]");
        let err = render_err(&yaml);
        assert!(
            err.contains(
                "function `Pay`, event `Queue`'s Queue points at `Bus`, a AWS::Events::EventBus"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_detail_type_is_an_error() {
        let yaml = SMALL.replace("detail-type: [OrderPlaced]", "detail-type: [OrderPlacd]");
        let err = render_err(&yaml);
        assert!(
            err.contains("detail-type `OrderPlacd`, which orderflow-contracts does not define"),
            "{err}"
        );
    }

    #[test]
    fn mismatched_source_and_detail_type_is_an_error() {
        let yaml = SMALL.replace("source: [orderflow.orders]", "source: [orderflow.payment]");
        let err = render_err(&yaml);
        assert!(err.contains("matches no event"), "{err}");
    }

    #[test]
    fn intrinsics_name_their_resources() {
        let refs_of = |yaml: &str| -> Vec<String> {
            let value: Value =
                serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            refs(&value)
                .unwrap_or_else(|e| panic!("{yaml}: {e:#}"))
                .into_iter()
                .collect()
        };
        assert_eq!(refs_of("!Ref Bus"), ["Bus"]);
        assert_eq!(refs_of("!Ref AWS::StackName"), Vec::<String>::new());
        assert_eq!(refs_of("!GetAtt Q.Arn"), ["Q"]);
        assert_eq!(refs_of("{ Ref: Bus }"), ["Bus"]);
        assert_eq!(refs_of("{ 'Fn::GetAtt': [Q, Arn] }"), ["Q"]);
        assert_eq!(refs_of("!Sub '${AWS::StackName}-${Q.Arn}/${!x}'"), ["Q"]);
        assert_eq!(refs_of("!Sub ['${A}', { A: !Ref B }]"), ["B"]);
        assert_eq!(refs_of("!If [C, !GetAtt A.Arn, !Ref AWS::NoValue]"), ["A"]);
        assert_eq!(refs_of("arn:aws:sqs:x"), Vec::<String>::new());
    }

    #[test]
    fn stale_or_missing_readme_block_is_reported() {
        let readme = format!("# x\n\n{START}\n```mermaid\nflowchart LR\n```\n{END}\n\nrest\n");
        let fresh = replace_block(&readme, "flowchart LR\n    a --> b\n").unwrap();
        assert!(fresh.ends_with(&format!("    a --> b\n```\n{END}\n\nrest\n")));
        assert_eq!(check_readme(&fresh, "flowchart LR\n    a --> b\n"), Ok(()));
        let err = |result: Result<(), String>| match result {
            Ok(()) => panic!("expected an error"),
            Err(e) => e,
        };
        let stale = err(check_readme(&readme, "flowchart LR\n    a --> b\n"));
        assert!(stale.contains("cargo xtask graph --write"), "{stale}");
        let missing = err(check_readme("# x\n", "flowchart LR\n"));
        assert!(missing.contains(START), "{missing}");
    }
}
