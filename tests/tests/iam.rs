//! IAM on the cloud that enforces it (ministack with `AUTH=true`), after
//! the whole-flow run: least privilege proven both ways, and the operator's
//! permissions that the README lists.
//!
//! ministack evaluates every call a function makes with its execution
//! role's session credentials, and orderflow's launcher appends each
//! decision to the file `ORDERFLOW_AUTHZ_LOG` names (principal, action,
//! resource, decision). `cargo xtask test` runs these right after the
//! whole-flow and operations tests on ministack, so the log holds every
//! call those made. `#[ignore]`d like the whole-flow tests.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_config::SdkConfig;
use chrono::{TimeDelta, Utc};
use orderflow::order::{new_order_id, new_sku};
use orderflow::{Flow, OrderSpec, Outcome};
use orderflow_flow::harness::run;
use orderflow_flow::tamper::Tamper;
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(90);

/// The functions, by the logical id prefix of their resources in
/// `infra/template.yaml` (`PaymentRole`, `PaymentFunction`, …).
const FUNCTIONS: [&str; 3] = ["Payment", "Inventory", "Shipping"];

/// Actions a role grants that the whole-flow run does not call, each with
/// the reason it is granted, for every function (`*`) or for one. Anything
/// else granted and not called fails
/// `every_action_a_function_role_grants_was_used`.
const GRANTED_FOR_A_REASON: [(&str, &str, &str); 10] = [
    (
        "*",
        "sqs:ReceiveMessage",
        "Lambda's SQS event source mapping polls the queue with the execution role \
         (AWS Lambda developer guide, SQS execution role permissions); the local clouds poll \
         without IAM",
    ),
    (
        "*",
        "sqs:DeleteMessage",
        "the event source mapping deletes the records a batch did not report as failed",
    ),
    (
        "*",
        "sqs:GetQueueAttributes",
        "the event source mapping reads the queue's attributes",
    ),
    (
        "*",
        "logs:CreateLogStream",
        "Lambda writes the function's stdout to its log group with the execution role",
    ),
    ("*", "logs:PutLogEvents", "as logs:CreateLogStream"),
    (
        "Payment",
        "dynamodb:GetItem",
        "payment's DynamoLedger reads an authorization back when a failed conditional \
         write does not return the item (ReturnValuesOnConditionCheckFailure); AWS and \
         ministack return it, moto may not",
    ),
    (
        "Inventory",
        "sqs:ChangeMessageVisibility",
        "the runtime's retry path sets the visibility of a record that failed \
         transiently (its backoff); the run fails payment records (tok_flaky) on \
         purpose, and inventory's only if a flash sale's conflicts outlast five attempts",
    ),
    (
        "Inventory",
        "sqs:GetQueueUrl",
        "the retry path finds the record's source queue, as for ChangeMessageVisibility",
    ),
    (
        "Shipping",
        "sqs:ChangeMessageVisibility",
        "the runtime's retry path sets the visibility of a record that failed \
         transiently (its backoff); the run fails payment records (tok_flaky), never \
         shipping ones",
    ),
    (
        "Shipping",
        "sqs:GetQueueUrl",
        "the retry path finds the record's source queue, as for ChangeMessageVisibility",
    ),
];

/// The reason `action` is granted to `function` though not called, if any.
fn reason_for(function: &str, action: &str) -> Option<&'static str> {
    GRANTED_FOR_A_REASON
        .iter()
        .find(|(who, what, _)| (*who == "*" || *who == function) && *what == action)
        .map(|(_, _, why)| *why)
}

/// One IAM decision from the authorization log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Decision {
    principal: String,
    action: String,
    resource: String,
    decision: String,
}

fn decisions() -> Result<Vec<Decision>> {
    let path = std::env::var("ORDERFLOW_AUTHZ_LOG")
        .context("ORDERFLOW_AUTHZ_LOG is not set: run these through `cargo xtask test`")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("{path}: not a decision: {line}"))?;
            let field = |name: &str| -> Result<String> {
                value[name]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("{path}: no `{name}` in {line}"))
            };
            Ok(Decision {
                principal: field("principal")?,
                action: field("action")?,
                resource: field("resource")?,
                decision: field("decision")?,
            })
        })
        .collect()
}

/// The role name in an assumed-role session ARN
/// (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
fn role_of(principal: &str) -> Option<&str> {
    principal.split_once(":assumed-role/")?.1.split('/').next()
}

/// The decisions made on the sessions of role `name`.
fn of_role<'a>(log: &'a [Decision], name: &'a str) -> impl Iterator<Item = &'a Decision> {
    log.iter()
        .filter(move |d| role_of(&d.principal) == Some(name))
}

/// The actions of a policy document's `Allow` statements.
fn allowed_actions(document: &Value) -> BTreeSet<String> {
    let statements = match &document["Statement"] {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(list) => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// A function's deployed role: its name, and the actions its inline
/// policies allow (read back from IAM, not from the template: what is
/// deployed is what is enforced).
struct FunctionRole {
    function: &'static str,
    name: String,
    granted: BTreeSet<String>,
}

async fn function_roles(flow: &Flow, config: &SdkConfig) -> Result<Vec<FunctionRole>> {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let iam = aws_sdk_iam::Client::new(config);
    let mut roles = Vec::new();
    for function in FUNCTIONS {
        let logical = format!("{function}Role");
        let resource = cfn
            .describe_stack_resource()
            .stack_name(&flow.stack.name)
            .logical_resource_id(&logical)
            .send()
            .await
            .with_context(|| format!("no {logical} in stack {}", flow.stack.name))?;
        let name = resource
            .stack_resource_detail()
            .and_then(|d| d.physical_resource_id())
            .with_context(|| format!("{logical} has no physical id"))?
            .to_owned();
        let mut granted = BTreeSet::new();
        let policies = iam.list_role_policies().role_name(&name).send().await?;
        for policy in policies.policy_names() {
            let document = iam
                .get_role_policy()
                .role_name(&name)
                .policy_name(policy)
                .send()
                .await?;
            let text = policy_text(document.policy_document());
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{name}/{policy}: not a policy document: {text}"))?;
            granted.extend(allowed_actions(&value));
        }
        ensure!(!granted.is_empty(), "role {name} grants nothing");
        roles.push(FunctionRole {
            function,
            name,
            granted,
        });
    }
    Ok(roles)
}

/// IAM returns policy documents URL-encoded (RFC 3986); some emulators
/// return them as they are. Plain JSON passes through.
fn policy_text(document: &str) -> String {
    if document.trim_start().starts_with('{') {
        return document.to_owned();
    }
    percent_encoding::percent_decode_str(document)
        .decode_utf8_lossy()
        .into_owned()
}

/// The root caller's configuration, from the environment that `cargo xtask
/// test` sets (AWS_ENDPOINT_URL and the `test` keys).
async fn root_config() -> Result<SdkConfig> {
    Ok(orderflow::tools_loader()?.load().await)
}

#[test]
#[ignore = "IAM: needs the whole-flow run on ministack first (cargo xtask test)"]
fn every_action_a_function_asked_for_was_allowed() -> Result<()> {
    run(|flow| async move {
        let roles = function_roles(flow, &root_config().await?).await?;
        let log = decisions()?;
        let mut refused = BTreeSet::new();
        for role in &roles {
            let asked: Vec<&Decision> = of_role(&log, &role.name).collect();
            ensure!(
                !asked.is_empty(),
                "no decision on role {} ({}) in the log: did the whole-flow run happen on this \
                 cloud, with IAM enforced?",
                role.name,
                role.function
            );
            for d in asked.into_iter().filter(|d| d.decision != "Allow") {
                refused.insert(format!(
                    "{}: {} on {} ({})",
                    role.function, d.action, d.resource, d.decision
                ));
            }
        }
        ensure!(
            refused.is_empty(),
            "calls the functions made that their roles do not allow:\n  {}",
            refused.into_iter().collect::<Vec<_>>().join("\n  ")
        );
        Ok(())
    })
}

#[test]
#[ignore = "IAM: needs the whole-flow run on ministack first (cargo xtask test)"]
fn every_action_a_function_role_grants_was_used() -> Result<()> {
    run(|flow| async move {
        let roles = function_roles(flow, &root_config().await?).await?;
        let log = decisions()?;
        let mut unused = Vec::new();
        for role in &roles {
            let used: BTreeSet<&str> = of_role(&log, &role.name)
                .filter(|d| d.decision == "Allow")
                .map(|d| d.action.as_str())
                .collect();
            println!(
                "{}: granted {:?}; called {:?}",
                role.function, role.granted, used
            );
            for action in &role.granted {
                if !used.contains(action.as_str()) && reason_for(role.function, action).is_none() {
                    unused.push(format!("{}: {action}", role.function));
                }
            }
        }
        ensure!(
            unused.is_empty(),
            "granted, never called in the whole-flow run, and no written reason (remove them \
             from infra/template.yaml, or add the reason to GRANTED_FOR_A_REASON):\n  {}",
            unused.join("\n  ")
        );
        Ok(())
    })
}

/// The operator policy the README gives, between its
/// `<!-- operator-policy:start -->` and `<!-- operator-policy:end -->`
/// markers, as a fenced JSON block.
fn readme_operator_policy() -> Result<Value> {
    let readme = include_str!("../../README.md");
    let (_, rest) = readme
        .split_once("<!-- operator-policy:start -->")
        .context("README.md has no <!-- operator-policy:start --> marker")?;
    let (block, _) = rest
        .split_once("<!-- operator-policy:end -->")
        .context("README.md has no <!-- operator-policy:end --> marker")?;
    let json = block
        .trim()
        .strip_prefix("```json")
        .and_then(|b| b.strip_suffix("```"))
        .context("the README's operator policy is not one ```json block")?;
    serde_json::from_str(json).context("the README's operator policy is not JSON")
}

/// A role holding exactly `policy`, assumed: the SDK configuration of its
/// session, and its name.
async fn assumed_role(root: &SdkConfig, policy: &Value) -> Result<(SdkConfig, String)> {
    let iam = aws_sdk_iam::Client::new(root);
    let sts = aws_sdk_sts::Client::new(root);
    let name = format!("orderflow-operator-{}", uuid_suffix());
    let account = sts
        .get_caller_identity()
        .send()
        .await?
        .account()
        .unwrap_or("000000000000")
        .to_owned();
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": "sts:AssumeRole",
        }],
    });
    let role = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .context("CreateRole failed")?;
    let arn = role
        .role()
        .map(|r| r.arn().to_owned())
        .context("CreateRole returned no role")?;
    iam.put_role_policy()
        .role_name(&name)
        .policy_name("operator")
        .policy_document(policy.to_string())
        .send()
        .await
        .context("PutRolePolicy failed")?;
    let assumed = sts
        .assume_role()
        .role_arn(&arn)
        .role_session_name("operator")
        .send()
        .await
        .context("AssumeRole failed")?;
    let credentials = assumed
        .credentials()
        .context("AssumeRole returned no credentials")?;
    let provider = aws_sdk_sts::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        None,
        "operator",
    );
    let config = root
        .to_builder()
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
            provider,
        ))
        .build();
    Ok((config, name))
}

fn uuid_suffix() -> String {
    orderflow::order::new_event_id().to_string()[..12].to_owned()
}

#[test]
#[ignore = "IAM: needs a deployed stack on ministack (cargo xtask test)"]
fn an_operator_holding_exactly_the_readme_permissions_runs_the_ops_commands() -> Result<()> {
    run(|flow| async move {
        let policy = readme_operator_policy()?;
        let listed = allowed_actions(&policy);
        let root = root_config().await?;

        // Something to look at: a shipped order in the archive, and a
        // poison event in the payment DLQ.
        let sku = new_sku("OPERATOR")?;
        flow.set_stock(&sku, 5).await?;
        let order = OrderSpec::new(new_order_id("operator")?, "tok_visa_4242").line(&sku, 1, 500);
        let started = Utc::now() - TimeDelta::seconds(5);
        flow.place(&order.message()?).await?;
        let poison = new_order_id("operator-poison")?;
        flow.put_malformed_order(poison.as_str()).await?;
        let outcome = flow.settle(order.order_id(), SETTLE).await?;
        ensure!(outcome == Outcome::Shipped, "outcome {outcome}");
        let letter = flow
            .wait_dead_letter(&flow.stack.payment, poison.as_str(), SETTLE)
            .await?;

        let (config, role) = assumed_role(&root, &policy).await?;
        let operator = Flow::connect_with(&config, &flow.stack.name)
            .await
            .context("the operator cannot find the stack")?;
        // ops dlq list
        let depths = operator
            .dead_letter_depths()
            .await
            .context("ops dlq list")?;
        ensure!(depths.len() == 4, "dlq list shows {} queues", depths.len());
        // ops dlq show payment
        let payment = operator.dead_letter_queue("payment")?;
        let shown = operator
            .peek_dead_letters(&payment)
            .await
            .context("ops dlq show payment")?;
        ensure!(
            shown.iter().any(|l| l.message_id == letter.message_id),
            "dlq show does not list the poison event"
        );
        // ops dlq redrive payment --id <id>, then --all (the poison event
        // goes back to the DLQ each time)
        let redriven = operator
            .redrive("payment", std::slice::from_ref(&letter.message_id), false)
            .await
            .context("ops dlq redrive payment --id")?;
        ensure!(
            redriven.moved == [letter.message_id.clone()],
            "redrive moved {:?}",
            redriven.moved
        );
        flow.wait_dead_letter(&flow.stack.payment, poison.as_str(), SETTLE)
            .await?;
        let all = operator
            .redrive("payment", &[], false)
            .await
            .context("ops dlq redrive payment --all")?;
        ensure!(
            all.task_status
                .as_deref()
                .is_some_and(|s| s.starts_with("COMPLETED")),
            "redrive --all ended {:?}",
            all.task_status
        );
        // ops trace <order>
        let trace = operator
            .trace(order.order_id(), started, Utc::now(), |_| {})
            .await
            .context("ops trace")?;
        ensure!(
            trace.events.len() >= 4,
            "trace found {} event(s): {}",
            trace.events.len(),
            trace.render()
        );

        // What the operator's session was refused, and which listed
        // permissions it never needed.
        let log = decisions()?;
        let mine: Vec<&Decision> = of_role(&log, &role).collect();
        let refused: BTreeSet<String> = mine
            .iter()
            .filter(|d| d.decision != "Allow")
            .map(|d| format!("{} on {}", d.action, d.resource))
            .collect();
        if !refused.is_empty() {
            bail!(
                "the operator was refused (the README's list is short of these):\n  {}",
                refused.into_iter().collect::<Vec<_>>().join("\n  ")
            );
        }
        let used: BTreeSet<String> = mine.iter().map(|d| d.action.clone()).collect();
        let unused: Vec<&String> = listed.difference(&used).collect();
        ensure!(
            unused.is_empty(),
            "the README lists permissions the ops commands never used: {unused:?}"
        );
        Ok(())
    })
}
