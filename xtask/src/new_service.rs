//! `cargo xtask new-service NAME --consumes A,B`: a new function in the
//! standard shape, without touching the others.
//!
//! It writes:
//! - `functions/NAME/`: the crate (`Cargo.toml`, `src/lib.rs` with its
//!   [`Service`](orderflow_runtime::Service), `src/decide.rs` with a
//!   `decide` stub and its tests, `src/main.rs`, `tests/handler.rs` over
//!   its samples);
//! - `events/NAME/`: a sample of each kind it consumes, in both delivery
//!   shapes, copied from the samples the project already has, and the poison
//!   samples every function answers the same way;
//! - with `--emits`, each new kind in `orderflow-contracts`: a line in the
//!   `kinds!` table of `events.rs` (emitted from `orderflow.NAME`) and its
//!   payload struct, with no fields yet;
//! - its entry at the end of `infra/services.yaml`, then every generated
//!   file ([`crate::generate`]): the template's service blocks, the diagram
//!   in the README, the AsyncAPI document and, for new kinds, their schemas;
//! - `functions/NAME` among the workspace's members.
//!
//! Nothing of another service is read for writing: their folders, samples
//! and template blocks stay byte-identical, which the tests check.
//!
//! The kinds it consumes must be the contracts' already; the kinds it emits
//! must be new.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use orderflow_contracts::EventKind;

use crate::project_root;
use crate::services::{self, SERVICES};

const USAGE: &str = "usage: cargo xtask new-service NAME --consumes KIND[,KIND...] \
     [--emits KIND[,KIND...]] [--description TEXT]";

/// Where the contracts' kinds are declared.
const EVENTS_RS: &str = "shared/contracts/src/events.rs";

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The function's name: lowercase letters and digits.
    pub name: String,
    /// The detail-types it consumes.
    pub consumes: Vec<EventKind>,
    /// The new kinds it emits, to be declared in the contracts.
    pub emits: Vec<String>,
    /// The function's description.
    pub description: String,
}

/// `cargo xtask new-service …`.
pub fn main(args: &[String]) -> Result<()> {
    let spec = parse(args)?;
    let root = project_root();
    let written = create(&root, &spec, None)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "\nnext: cargo test -p {name}; cargo xtask deploy --local; then write its rules in \
         functions/{name}/src/decide.rs",
        name = spec.name
    );
    Ok(())
}

/// Reads the arguments.
pub fn parse(args: &[String]) -> Result<Spec> {
    let mut name = None;
    let mut consumes = None;
    let mut emits = None;
    let mut description = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--consumes" => consumes = Some(value()?),
            "--emits" => emits = Some(value()?),
            "--description" => description = Some(value()?),
            flag if flag.starts_with('-') => bail!("unknown flag `{flag}`\n{USAGE}"),
            _ if name.is_none() => name = Some(arg.clone()),
            extra => bail!("unexpected argument `{extra}`\n{USAGE}"),
        }
    }
    let name = name.with_context(|| format!("no NAME\n{USAGE}"))?;
    services::check_name(&name)?;
    let consumes = consumes.with_context(|| format!("no --consumes\n{USAGE}"))?;
    let mut kinds = Vec::new();
    for kind in consumes.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let kind = EventKind::from_detail_type(kind).map_err(|_| {
            anyhow::anyhow!(
                "`{kind}` is no event of the contracts (they define {}); a new kind is added \
                 to orderflow-contracts first",
                EventKind::ALL.map(EventKind::detail_type).join(", ")
            )
        })?;
        ensure!(
            !kinds.contains(&kind),
            "--consumes names {} twice",
            kind.detail_type()
        );
        kinds.push(kind);
    }
    ensure!(!kinds.is_empty(), "--consumes names no kind\n{USAGE}");
    let emits = match emits {
        Some(list) => new_kinds(&list)?,
        None => Vec::new(),
    };
    let description = description.unwrap_or_else(|| {
        let consumes = kinds.iter().map(|k| k.detail_type()).collect::<Vec<_>>();
        match emits.as_slice() {
            [] => format!("Consumes {}.", consumes.join(", ")),
            emits => format!(
                "Consumes {}; emits {}.",
                consumes.join(", "),
                emits.join(", ")
            ),
        }
    });
    Ok(Spec {
        name,
        consumes: kinds,
        emits,
        description,
    })
}

/// The new kinds `--emits` names: each a PascalCase name (the Rust type
/// and the detail-type) that is no kind yet.
fn new_kinds(list: &str) -> Result<Vec<String>> {
    let mut kinds: Vec<String> = Vec::new();
    for kind in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let pascal = kind.len() <= 64
            && kind.starts_with(|c: char| c.is_ascii_uppercase())
            && kind.chars().all(|c| c.is_ascii_alphanumeric());
        ensure!(
            pascal,
            "`{kind}` is no name for a new kind: it is a Rust type and a detail-type, so \
             PascalCase ASCII letters and digits, at most 64 (NotificationSent)"
        );
        if let Ok(existing) = EventKind::from_detail_type(kind) {
            bail!(
                "`{kind}` is a kind of the contracts already, emitted from {}; --emits names \
                 new kinds, which orderflow.NAME emits",
                existing.source()
            );
        }
        ensure!(
            !kinds.iter().any(|k| k == kind),
            "--emits names {kind} twice"
        );
        kinds.push(kind.to_owned());
    }
    ensure!(!kinds.is_empty(), "--emits names no kind\n{USAGE}");
    Ok(kinds)
}

/// Creates the service in the repository at `root`; returns what it wrote.
/// Every file's text is made before the first is written, so a refusal
/// leaves the tree as it was. New kinds are written out by a new build of
/// xtask, in `target_dir` if given.
pub fn create(root: &Path, spec: &Spec, target_dir: Option<&Path>) -> Result<Vec<PathBuf>> {
    let name = &spec.name;
    let existing = services::names(root)?;
    ensure!(
        !existing.contains(name),
        "`{name}` is a service already ({SERVICES})"
    );
    for dir in [format!("functions/{name}"), format!("events/{name}")] {
        ensure!(!root.join(&dir).exists(), "{dir} exists already");
    }
    let files = files(root, spec, &existing)?;
    let mut written = Vec::new();
    for (relative, text) in &files {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("could not create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("could not write {relative}"))?;
        written.push(PathBuf::from(relative));
    }
    // The Rust files are written from text; rustfmt gives them the layout
    // `cargo fmt --check` wants (one kind or several in `consumes`).
    crate::run_cmd(
        std::process::Command::new("rustfmt")
            .args(["--edition", "2024"])
            .args(
                written
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                    .map(|p| root.join(p)),
            ),
    )
    .context("rustfmt on the written Rust files")?;

    let generated = if spec.emits.is_empty() {
        crate::generate::write(root)?
    } else {
        eprintln!(
            "new-service: building xtask with {} in the contracts, to write the generated files",
            spec.emits.join(", ")
        );
        crate::generate::in_new_build(root, target_dir)?
    };
    written.extend(generated);
    Ok(written)
}

/// Every file the service adds or changes, as (path under `root`, text):
/// its crate, its samples, its entry in `infra/services.yaml`, its kinds in
/// the contracts and the workspace's member list.
fn files(root: &Path, spec: &Spec, existing: &[String]) -> Result<Vec<(String, String)>> {
    let read = |relative: &str| {
        fs::read_to_string(root.join(relative))
            .with_context(|| format!("could not read {relative}"))
    };
    let crate_dir = format!("functions/{}", spec.name);
    let mut files: Vec<(String, String)> = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("src/decide.rs", DECIDE_RS),
        ("src/main.rs", MAIN_RS),
        ("tests/handler.rs", HANDLER_RS),
    ]
    .into_iter()
    .map(|(file, template)| (format!("{crate_dir}/{file}"), fill(template, spec)))
    .collect();
    files.extend(samples(root, spec, existing)?);

    let mut entries = read(SERVICES)?;
    if !entries.ends_with('\n') {
        entries.push('\n');
    }
    entries.push_str(&format!(
        "\n  - name: {}\n    description: {}\n    consumes: [{}]\n",
        spec.name,
        spec.description,
        detail_types(spec).join(", ")
    ));
    files.push((SERVICES.to_owned(), entries));
    if !spec.emits.is_empty() {
        let events = with_kinds(&read(EVENTS_RS)?, &spec.name, &spec.emits)?;
        files.push((EVENTS_RS.to_owned(), events));
    }
    let manifest = with_member(&read("Cargo.toml")?, &crate_dir)?;
    files.push(("Cargo.toml".to_owned(), manifest));
    Ok(files)
}

/// The contracts' `events.rs` (`text`) with each of `kinds` declared as
/// emitted by `service`: its line at the end of the `kinds!` table, and its
/// payload struct, with no fields yet, at the end of the file. A name that
/// is a type of the file already is refused.
fn with_kinds(text: &str, service: &str, kinds: &[String]) -> Result<String> {
    let table = text
        .find("\nkinds! {\n")
        .context("events.rs has no `kinds! {` table")?;
    let end = table
        + text[table + 1..]
            .find("\n}\n")
            .context("events.rs: the `kinds!` table does not end")?
        + 2;
    let mut lines = String::new();
    let mut structs = String::new();
    for kind in kinds {
        for item in ["struct", "enum", "trait", "type"] {
            ensure!(
                !text.contains(&format!("pub {item} {kind} "))
                    && !text.contains(&format!("pub {item} {kind}<")),
                "`{kind}` is a type of the contracts already ({EVENTS_RS}); name the new kind \
                 otherwise"
            );
        }
        lines.push_str(&format!(
            "    /// Emitted by the {service} function.\n    {kind} from {service};\n"
        ));
        structs.push_str(&format!(
            "\n/// Emitted by the {service} function. Its fields are the contract: add them\n\
             /// here, then run `cargo xtask schemas` (until the kind is released, delete\n\
             /// its schema file first, to write it afresh).\n\
             #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]\n\
             #[serde(remote = \"Self\")]\n\
             pub struct {kind} {{}}\n"
        ));
    }
    let mut out = format!("{}{lines}{}", &text[..end], &text[end..]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&structs);
    Ok(out)
}

/// The consumed kinds' detail-types.
fn detail_types(spec: &Spec) -> Vec<&'static str> {
    spec.consumes.iter().map(|k| k.detail_type()).collect()
}

/// `OrderPlaced` as `order-placed`: how samples are named.
fn case(kind: EventKind) -> String {
    let mut out = String::new();
    for (i, c) in kind.detail_type().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The new service's samples, as (path, text): each consumed kind in both
/// shapes, and the poison samples, copied from the existing services'.
fn samples(root: &Path, spec: &Spec, existing: &[String]) -> Result<Vec<(String, String)>> {
    let find = |file: &str| -> Option<PathBuf> {
        existing
            .iter()
            .map(|service| root.join("events").join(service).join(file))
            .find(|path| path.is_file())
    };
    let read = |path: &Path| {
        fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
    };
    let mut out = Vec::new();
    let mut copy = |file: String| -> Result<bool> {
        let Some(from) = find(&file) else {
            return Ok(false);
        };
        out.push((format!("events/{}/{file}", spec.name), read(&from)?));
        Ok(true)
    };
    for kind in &spec.consumes {
        for shape in ["sqs", "eventbridge"] {
            let file = format!("{}.{shape}.json", case(*kind));
            ensure!(
                copy(file.clone())?,
                "no service has a sample {file} to copy; write events/{}/{file} by hand",
                spec.name
            );
        }
    }
    for poison in [
        "poison-malformed-json",
        "poison-negative-quantity",
        "poison-unknown-version",
    ] {
        copy(format!("{poison}.sqs.json"))?;
    }
    // A kind the new service does not consume, from whichever service has one.
    for service in existing {
        let path = root.join(format!(
            "events/{service}/poison-wrong-detail-type.sqs.json"
        ));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let consumed = spec
            .consumes
            .iter()
            .any(|k| text.contains(&format!("\\\"detail-type\\\": \\\"{}\\\"", k.detail_type())));
        if !consumed {
            out.push((
                format!("events/{}/poison-wrong-detail-type.sqs.json", spec.name),
                text,
            ));
            break;
        }
    }
    Ok(out)
}

/// `manifest` with `member` added after the last `functions/` member.
fn with_member(manifest: &str, member: &str) -> Result<String> {
    let line = |m: &str| format!("    \"{m}\",\n");
    let last = manifest
        .match_indices("    \"functions/")
        .last()
        .map(|(i, _)| i)
        .context("Cargo.toml lists no functions/ member")?;
    let end = last
        + manifest[last..]
            .find('\n')
            .context("Cargo.toml ends mid-line")?
        + 1;
    Ok(format!(
        "{}{}{}",
        &manifest[..end],
        line(member),
        &manifest[end..]
    ))
}

/// `template` with the spec's names in place of `{name}`, `{Name}`,
/// `{description}`, `{kinds}` (`EventKind::A | EventKind::B`),
/// `{kind_list}`, `{expected}` (the handler test's table), and what the
/// stub emits: `{emits_doc}`, `{emits_use}`, `{decision}`, `{emits_test}`
/// and `{emitted}`.
fn fill(template: &str, spec: &Spec) -> String {
    let title = orderflow::stack::logical_prefix(&spec.name);
    let kinds = joined(&spec.consumes, "\n                | ", |k| {
        format!("EventKind::{}", k.detail_type())
    });
    let emitted = joined(&spec.emits, ", ", |k| format!("\"{k}\""));
    let expected: String = spec
        .consumes
        .iter()
        .map(|k| format!("    (\"{}\", Expect::Emits(&[{emitted}])),\n", case(*k)))
        .collect();
    let (emits_doc, emits_use, decision, emits_test) = if spec.emits.is_empty() {
        (
            "emits nothing yet".to_owned(),
            String::new(),
            "Plan::unchanged(state)".to_owned(),
            "nothing_is_emitted",
        )
    } else {
        let events = joined(&spec.emits, ", ", |k| format!("Event::{k}({k} {{}})"));
        (
            format!("emits {}", spec.emits.join(", ")),
            format!(
                "use orderflow_contracts::Event;\nuse orderflow_contracts::events::{{{}}};\n",
                spec.emits.join(", ")
            ),
            format!("Plan::emit(state, vec![{events}])"),
            "its_kinds_are_emitted",
        )
    };
    template
        .replace("{emits_doc}", &emits_doc)
        .replace("{emits_use}", &emits_use)
        .replace("{decision}", &decision)
        .replace("{emits_test}", emits_test)
        .replace("{emitted}", &emitted)
        .replace("{kinds}", &kinds)
        .replace("{kind_list}", &detail_types(spec).join(", "))
        .replace("{expected}", &expected)
        .replace(
            "{first_envelope}",
            &format!("{}/{}.eventbridge.json", spec.name, case(spec.consumes[0])),
        )
        .replace(
            "{first_sample}",
            &format!("{}/{}.sqs.json", spec.name, case(spec.consumes[0])),
        )
        .replace("{description}", &spec.description)
        .replace("{Name}", &title)
        .replace("{name}", &spec.name)
}

/// Each of `items` written by `each`, joined by `separator`.
fn joined<T>(items: &[T], separator: &str, each: impl Fn(&T) -> String) -> String {
    items.iter().map(each).collect::<Vec<_>>().join(separator)
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
description = "orderflow's {name} function."
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true
# Links the bootstrap position-dependent: see the script.
build = "../build.rs"

[lib]
name = "{name}"
path = "src/lib.rs"
bench = false

[[bin]]
name = "{name}"
path = "src/main.rs"
test = false
bench = false

[dependencies]
orderflow-contracts.workspace = true
# No DEBUG or TRACE in release builds: see the feature.
orderflow-runtime = { workspace = true, features = ["lean-logs"] }
lambda_runtime.workspace = true
serde.workspace = true
tokio.workspace = true

[dev-dependencies]
orderflow-runtime = { workspace = true, features = ["testing"] }
tokio = { workspace = true, features = ["rt-multi-thread"] }

[lints]
workspace = true
"#;

const LIB_RS: &str = r#"//! orderflow's {name} function.
//!
//! Consumes {kind_list}; {emits_doc}.
//!
//! Layout:
//! - [`decide`]: the rules, pure, over [`{Name}State`].
//! - [`{Name}`]: the [`Service`] for the shared runtime.

pub mod decide;

use orderflow_contracts::{EventKind, Message};
use orderflow_runtime::{Decision, Input, RecordError, Service};

pub use decide::{Name}State;

/// The {name} [`Service`].
#[derive(Debug, Default)]
pub struct {Name};

impl Service for {Name} {
    type State = {Name}State;
    type Contract = Message;
    const FUNCTION: &'static str = "{name}";

    fn consumes(&self, kind: EventKind) -> bool {
        matches!(
            kind,
            {kinds}
        )
    }

    async fn handle(
        &self,
        input: Input<'_, {Name}State>,
    ) -> Result<Decision<{Name}State>, RecordError> {
        decide::decide(input.state, input.message, &input.counters).into_decision()
    }
}
"#;

const DECIDE_RS: &str = r#"//! {name}'s rules: pure, over [`{Name}State`].

use orderflow_contracts::Message;
{emits_use}use serde::{Deserialize, Serialize};

/// What {name} keeps per order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct {Name}State {
    /// The detail-types of the order's events seen so far, in order.
    pub seen: Vec<String>,
}

/// What {name}'s rules make of an event: a decision, or a refusal.
pub type Plan = orderflow_runtime::Plan<{Name}State>;

/// What `message` does to the order's `state`; `counters` holds the
/// counters the service asks for (`Service::counters`; none yet). This stub
/// records the event's kind and {emits_doc}: the service's rules go here,
/// returning `Plan::emit(state, events)` to publish.
pub fn decide(mut state: {Name}State, message: &Message, _counters: &[Option<i64>]) -> Plan {
    state.seen.push(message.kind().detail_type().to_owned());
    {decision}
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_runtime::testing::read_sample;

    /// The first sample, as EventBridge delivers it.
    fn sample() -> Message {
        let envelope = read_sample("{first_envelope}").unwrap();
        Message::from_bus_json(&envelope).unwrap()
    }

    #[test]
    fn an_event_is_recorded_and_{emits_test}() {
        let message = sample();
        let Plan::Apply(decision) = decide({Name}State::default(), &message, &[]) else {
            panic!("the stub decides every event");
        };
        assert_eq!(decision.state.seen, [message.kind().detail_type()]);
        let emitted: Vec<&str> = decision.emit.iter().map(|e| e.kind().detail_type()).collect();
        let expected: &[&str] = &[{emitted}];
        assert_eq!(emitted, expected);
        assert!(decision.counters.is_empty());
    }
}
"#;

const MAIN_RS: &str = r#"//! The {name} function's Lambda binary (`bootstrap`).

use orderflow_runtime::{Config, lambda, telemetry};
use {name}::{Name};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init()?;
    let config = Config::from_env("{name}")?;
    lambda::run(config, |_aws| Ok({Name})).await
}
"#;

const HANDLER_RS: &str = r#"//! The {name} handler over the samples in `events/{name}/`, through the
//! real handler with in-memory ports.

use orderflow_runtime::lambda::Response;
use orderflow_runtime::testing::{Expect, check_samples, memory_handler, read_sample};
use {name}::{Name};

/// What each sample must do to a fresh function (besides the shared
/// `POISON` expectations).
const EXPECTED: &[(&str, Expect)] = &[
{expected}];

#[tokio::test]
async fn every_sample_has_its_expected_outcome() {
    let checked = check_samples("{name}", || memory_handler({Name}), EXPECTED)
        .await
        .unwrap();
    assert!(checked >= EXPECTED.len() * 2, "only {checked} samples");
}

#[tokio::test]
async fn a_duplicate_delivery_is_applied_once() {
    let handler = memory_handler({Name});
    let payload = read_sample("{first_sample}").unwrap();
    for _ in 0..2 {
        let Ok(Response::Batch(answer)) = handler.invoke(&payload).await else {
            panic!("an SQS batch gets a batch answer");
        };
        assert!(answer.batch_item_failures.is_empty());
    }
    assert!(handler.letters().is_empty());
}
"#;

/// Where a copy of the repository builds: apart from `target/`, whose
/// binaries and libraries have the same names and hashes (cargo hashes a
/// workspace member by its path within the workspace), so that the copy's
/// builds never stand in for the project's own. The dependencies the
/// project has built are lent to it first ([`crate::build_cache`]).
fn copy_target(root: &Path) -> PathBuf {
    root.join("target/new-service")
}

/// `cargo xtask test`'s step: a `notifications` service generated in a
/// copy of the repository, then the format and tests of its crate and of
/// the contracts with the kind it emits, and clippy on every crate.
pub fn check(root: &Path) -> Result<()> {
    let copy = copy_with_notifications(root)?;
    let cargo = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.current_dir(&copy)
            .env("CARGO_TARGET_DIR", copy_target(root))
            .args(args);
        crate::run_cmd(&mut cmd)
    };
    let crates = ["-p", "notifications", "-p", "orderflow-contracts"];
    cargo(&[&["fmt"], &crates[..], &["--check"]].concat())?;
    // Every crate: a new kind must not break another service's build.
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[&["test"], &crates[..]].concat())?;
    fs::remove_dir_all(&copy).with_context(|| format!("could not remove {}", copy.display()))?;
    eprintln!(
        "a generated notifications service, and the contracts with its NotificationSent, build, \
         are clean and pass their tests"
    );
    Ok(())
}

/// The stack [`prove_on_local_cloud`] deploys.
pub const PROOF_STACK: &str = "orderflow-new-service";

/// `cargo xtask test`'s step on LocalStack: a `notifications` service
/// generated in a copy of the repository, built and deployed from there as
/// a stack of its own, then an order placed on that stack's bus. It fails
/// unless the order ships, the new function has recorded the order's
/// `ShipmentScheduled` in its table, and its `NotificationSent` for the
/// order reached the bus: the rule, queue, role, function and new kind it
/// was given work. The copy is built with `root`'s tools, in
/// [`copy_target`].
pub fn prove_on_local_cloud(root: &Path) -> Result<()> {
    let copy = copy_with_notifications(root)?;
    let started = std::time::Instant::now();
    let target_dir = copy_target(root);
    let tree = crate::deploy::Tree {
        root: &copy,
        target_dir: Some(&target_dir),
    };
    crate::deploy::deploy_local_from(tree, PROOF_STACK, crate::cloud::Cloud::LocalStack)
        .context("deploying the copy with the new service")?;
    eprintln!(
        "new-service: the copy with notifications deployed as `{PROOF_STACK}` in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let target = orderflow::Target {
        stack: PROOF_STACK.to_owned(),
        ..orderflow::Target::local(crate::cloud::Cloud::LocalStack)
    };
    let (runtime, flow) = crate::target::connect(&target)?;
    let seen = runtime.block_on(order_seen_by_notifications(&flow))?;
    eprintln!("new-service: notifications recorded {seen} for the order");
    fs::remove_dir_all(&copy).with_context(|| format!("could not remove {}", copy.display()))?;
    Ok(())
}

/// Places one order that ships, and waits until the notifications
/// function's state for it holds `ShipmentScheduled` and the audit queue
/// has its `NotificationSent`; says what it saw.
async fn order_seen_by_notifications(flow: &orderflow::Flow) -> Result<String> {
    use orderflow::order::{OrderSpec, new_order_id, new_sku};
    use orderflow::outcome::Outcome;
    use std::time::{Duration, Instant};

    let notifications = flow.stack.service("notifications")?;
    let sku = new_sku("notify")?;
    flow.set_stock(&sku, 5).await?;
    let order = OrderSpec::new(new_order_id("notify")?, "tok_visa_4242").line(&sku, 1, 1250);
    flow.place(&order.message()?).await?;
    let outcome = flow
        .settle(order.order_id(), Duration::from_secs(90))
        .await?;
    ensure!(
        outcome == Outcome::Shipped,
        "the order ended {outcome}, not shipped"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = flow.state(&notifications, order.order_id()).await?;
        if let Some(state) = state.filter(|s| s["seen"] == serde_json::json!(["ShipmentScheduled"]))
        {
            flow.audit()
                .wait_for(order.order_id(), Duration::from_secs(60), |events| {
                    events.iter().any(|e| {
                        e.detail_type == "NotificationSent" && e.source == "orderflow.notifications"
                    })
                })
                .await
                .context("notifications' NotificationSent on the bus")?;
            return Ok(format!("{state}, and its NotificationSent reached the bus"));
        }
        ensure!(
            Instant::now() < deadline,
            "notifications has no state holding ShipmentScheduled for {} after 60 s; its DLQ \
             holds {:?}",
            order.order_id(),
            flow.dead_letters(&notifications).await?
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A copy of the repository at `root` with a `notifications` service,
/// consuming ShipmentScheduled and emitting a new NotificationSent,
/// generated in it (xtask rebuilt in [`copy_target`]): what `cargo xtask
/// test` checks the generator with.
fn copy_with_notifications(root: &Path) -> Result<PathBuf> {
    let copy = copy_of(root)?;
    let started = std::time::Instant::now();
    let target_dir = copy_target(root);
    let seeded = crate::build_cache::seed(root, &root.join("target"), &target_dir)?;
    eprintln!(
        "new-service: {} built dependency units ({:.2} GB) lent from target/ to {} in {:.1} s",
        seeded.units,
        seeded.bytes as f64 / 1e9,
        target_dir.display(),
        started.elapsed().as_secs_f64()
    );
    let spec = parse(
        &[
            "notifications",
            "--consumes",
            "ShipmentScheduled",
            "--emits",
            "NotificationSent",
        ]
        .map(String::from),
    )?;
    create(&copy, &spec, Some(&target_dir))?;
    Ok(copy)
}

/// A copy of the repository at `root` (its files that git tracks or would
/// track, but the fuzz corpus) in a new temporary directory, for
/// generating a service without touching the working tree.
pub fn copy_of(root: &Path) -> Result<PathBuf> {
    let out = crate::cmd_stdout(std::process::Command::new("git").current_dir(root).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let copy = std::env::temp_dir().join(format!(
        "orderflow-new-service-{}-{nanos}",
        std::process::id()
    ));
    for file in out.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file);
        if file.starts_with("fuzz/corpus/") || !root.join(&*file).is_file() {
            continue;
        }
        let to = copy.join(&*file);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(root.join(&*file), &to).with_context(|| format!("could not copy {file}"))?;
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    /// Every file under `dir`, by path, with its bytes.
    fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.insert(
                        path.strip_prefix(dir).unwrap().to_path_buf(),
                        fs::read(&path).unwrap(),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn arguments_are_read_and_refused_by_name() {
        let spec = parse(&args(
            "notifications --consumes ShipmentScheduled,PaymentVoided",
        ))
        .unwrap();
        assert_eq!(spec.name, "notifications");
        assert_eq!(
            spec.consumes,
            [EventKind::ShipmentScheduled, EventKind::PaymentVoided]
        );
        assert_eq!(
            spec.description,
            "Consumes ShipmentScheduled, PaymentVoided."
        );
        assert!(spec.emits.is_empty());
        let spec = parse(&args(
            "notifications --emits NotificationSent,ReminderSent --consumes ShipmentScheduled",
        ))
        .unwrap();
        assert_eq!(spec.emits, ["NotificationSent", "ReminderSent"]);
        assert_eq!(
            spec.description,
            "Consumes ShipmentScheduled; emits NotificationSent, ReminderSent."
        );
        for (line, message) in [
            ("Notify --consumes ShipmentScheduled", "lowercase"),
            (
                "notify --consumes ShipmentSent",
                "`ShipmentSent` is no event of the contracts",
            ),
            (
                "notify --consumes ShipmentScheduled,ShipmentScheduled",
                "twice",
            ),
            ("notify", "no --consumes"),
            ("notify --consumes", "--consumes needs a value"),
            (
                "notify --emits ShipmentScheduled --consumes ShipmentScheduled",
                "`ShipmentScheduled` is a kind of the contracts already, emitted from \
                 orderflow.shipping",
            ),
            (
                "notify --consumes ShipmentScheduled --emits notificationSent",
                "`notificationSent` is no name for a new kind",
            ),
            (
                "notify --consumes ShipmentScheduled --emits Notification-Sent",
                "PascalCase",
            ),
            (
                "notify --consumes ShipmentScheduled --emits Sent,Sent",
                "--emits names Sent twice",
            ),
            (
                "notify --consumes ShipmentScheduled --emits ,",
                "--emits names no kind",
            ),
            (
                "notify --consumes ShipmentScheduled --sends X",
                "unknown flag `--sends`",
            ),
            (
                "notify other --consumes ShipmentScheduled",
                "unexpected argument `other`",
            ),
        ] {
            let err = parse(&args(line)).unwrap_err().to_string();
            assert!(err.contains(message), "{line}: {err}");
        }
    }

    #[test]
    fn a_new_service_leaves_the_others_byte_identical() {
        let copy = copy_of(&project_root()).unwrap();
        let template_before = fs::read_to_string(copy.join(crate::graph::TEMPLATE)).unwrap();
        let services_before = fs::read_to_string(copy.join(SERVICES)).unwrap();
        let others = ["payment", "inventory", "shipping"];
        let before: Vec<_> = others
            .iter()
            .flat_map(|s| [copy.join("functions").join(s), copy.join("events").join(s)])
            .map(|dir| files_under(&dir))
            .collect();

        let spec = parse(&args("notifications --consumes ShipmentScheduled")).unwrap();
        let written = create(&copy, &spec, None).unwrap();
        assert!(written.contains(&PathBuf::from("functions/notifications/src/decide.rs")));

        let after: Vec<_> = others
            .iter()
            .flat_map(|s| [copy.join("functions").join(s), copy.join("events").join(s)])
            .map(|dir| files_under(&dir))
            .collect();
        assert!(before == after, "another service's folder changed");
        let template = fs::read_to_string(copy.join(crate::graph::TEMPLATE)).unwrap();
        for name in others {
            assert_eq!(
                services::block_of(&template, name),
                services::block_of(&template_before, name),
                "{name}"
            );
        }
        let services = fs::read_to_string(copy.join(SERVICES)).unwrap();
        assert!(
            services.starts_with(&services_before),
            "the entries before changed"
        );
        assert!(template.contains("  NotificationsFunction:\n"));
        assert!(template.contains(
            "        source: [orderflow.shipping]\n        detail-type: [ShipmentScheduled]\n"
        ));

        let samples = files_under(&copy.join("events/notifications"));
        let names: Vec<_> = samples.keys().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "poison-malformed-json.sqs.json",
                "poison-negative-quantity.sqs.json",
                "poison-unknown-version.sqs.json",
                "poison-wrong-detail-type.sqs.json",
                "shipment-scheduled.eventbridge.json",
                "shipment-scheduled.sqs.json",
            ]
        );
        let wrong =
            String::from_utf8_lossy(&samples[Path::new("poison-wrong-detail-type.sqs.json")])
                .into_owned();
        assert!(
            !wrong.contains("\\\"detail-type\\\": \\\"ShipmentScheduled\\\""),
            "{wrong}"
        );

        let manifest = fs::read_to_string(copy.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("    \"functions/shipping\",\n    \"functions/notifications\",\n")
        );
        let own = fs::read_to_string(copy.join("functions/notifications/Cargo.toml")).unwrap();
        assert!(
            own.lines()
                .any(|line| line == services::tests::SHARED_BUILD),
            "{own}"
        );
        assert!(
            own.lines().any(|line| line == services::tests::LEAN_LOGS),
            "{own}"
        );
        let readme = fs::read_to_string(copy.join("README.md")).unwrap();
        assert!(
            crate::graph::check_readme(&readme, &crate::graph::render(&template).unwrap()).is_ok()
        );
        let document = fs::read_to_string(copy.join(crate::asyncapi::DOCUMENT)).unwrap();
        assert!(document.contains("notificationsReceives"));

        // A second time, it refuses: the service exists.
        let err = create(&copy, &spec, None).unwrap_err().to_string();
        assert!(err.contains("is a service already"), "{err}");
        fs::remove_dir_all(&copy).unwrap();
    }

    #[test]
    fn a_new_kind_is_one_line_of_the_kinds_table_and_its_payload() {
        let text = fs::read_to_string(project_root().join(EVENTS_RS)).unwrap();
        let kinds = ["NotificationSent".to_owned()];
        let out = with_kinds(&text, "notifications", &kinds).unwrap();
        let last = "    ShipmentScheduled from shipping;\n";
        let at = text.find(last).unwrap() + last.len();
        assert!(text[at..].starts_with("}\n"), "the table's last line moved");
        let expected = format!(
            "{}    /// Emitted by the notifications function.\n    NotificationSent from \
             notifications;\n{}\n/// Emitted by the notifications function. Its fields are the \
             contract: add them\n/// here, then run `cargo xtask schemas` (until the kind is released, \
             delete\n/// its schema file first, to write it afresh).\n\
             #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]\n\
             #[serde(remote = \"Self\")]\npub struct NotificationSent {{}}\n",
            &text[..at],
            &text[at..]
        );
        assert_eq!(out, expected);

        for taken in ["Address", "LineItem", "DeclineReason"] {
            let err = with_kinds(&text, "notifications", &[taken.to_owned()])
                .unwrap_err()
                .to_string();
            assert!(err.contains("is a type of the contracts already"), "{err}");
        }
    }

    #[test]
    fn a_kind_no_service_has_a_sample_of_is_refused() {
        let copy = copy_of(&project_root()).unwrap();
        let spec = parse(&args("ledger --consumes PaymentCaptured")).unwrap();
        let err = create(&copy, &spec, None).unwrap_err().to_string();
        assert!(
            err.contains("no service has a sample payment-captured.sqs.json"),
            "{err}"
        );
        assert!(!copy.join("functions/ledger").exists());
        fs::remove_dir_all(&copy).unwrap();
    }
}
