//! `cargo xtask template`: the services' blocks of `infra/template.yaml`,
//! written from `infra/services.yaml`.
//!
//! Every service is the same nine resources (queue, DLQ, queue policy,
//! rule, table, log group, role, function, DLQ alarm) and four outputs;
//! only its name, what it consumes and its own extras differ. So a service
//! is one entry in `infra/services.yaml`, and this writes its block, in the
//! entry's order, between the template's `generated` markers. The rest of
//! the template (parameters, the bus, the audit queue, the label bucket) is
//! written by hand.
//!
//! The template stays one plain file that `sam build` and both local clouds
//! deploy as they always did: no nested stacks (an application per service
//! would be a second stack to deploy and delete on each cloud), and no
//! macro that only AWS would expand. `--check` (run by the xtask unit
//! tests) fails when the template differs from what the entries give.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use orderflow::stack::logical_prefix;
use orderflow_contracts::EventKind;
use serde::Deserialize;
use serde_norway::Mapping;

use crate::graph::TEMPLATE;
use crate::project_root;

/// Where the services are listed.
pub const SERVICES: &str = "infra/services.yaml";

/// The markers around each generated region of the template.
const BEGIN: &str = "# generated from infra/services.yaml by `cargo xtask template --write`: ";
const END: &str = "# end of the generated ";

/// `cargo xtask template [--write | --check]`.
pub fn main(args: &[String]) -> Result<()> {
    let root = project_root();
    let template = fs::read_to_string(root.join(TEMPLATE))
        .with_context(|| format!("could not read {TEMPLATE}"))?;
    let services = fs::read_to_string(root.join(SERVICES))
        .with_context(|| format!("could not read {SERVICES}"))?;
    let written = render(&template, &services)?;
    match args {
        [] => print!("{written}"),
        [flag] if flag == "--write" => {
            fs::write(root.join(TEMPLATE), &written)
                .with_context(|| format!("could not write {TEMPLATE}"))?;
            println!("wrote {TEMPLATE}");
        }
        [flag] if flag == "--check" => ensure!(
            template == written,
            "{TEMPLATE} is stale: run `cargo xtask template --write` and commit it"
        ),
        _ => bail!("usage: cargo xtask template [--write | --check]"),
    }
    Ok(())
}

/// The services' names, in `infra/services.yaml`'s order: the functions
/// every project command builds, invokes and measures.
pub fn names(root: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(root.join(SERVICES))
        .with_context(|| format!("could not read {SERVICES}"))?;
    let services: Services =
        serde_norway::from_str(&text).with_context(|| format!("in {SERVICES}"))?;
    Ok(services.services.into_iter().map(|s| s.name).collect())
}

/// Rewrites the template at `root` from its services.
pub fn write(root: &Path) -> Result<()> {
    let template = fs::read_to_string(root.join(TEMPLATE))
        .with_context(|| format!("could not read {TEMPLATE}"))?;
    let services = fs::read_to_string(root.join(SERVICES))
        .with_context(|| format!("could not read {SERVICES}"))?;
    fs::write(root.join(TEMPLATE), render(&template, &services)?)
        .with_context(|| format!("could not write {TEMPLATE}"))
}

/// `infra/services.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Services {
    services: Vec<Service>,
}

/// One service's entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    name: String,
    description: String,
    consumes: Vec<String>,
    #[serde(default)]
    counters: bool,
    #[serde(default)]
    environment: Mapping,
    #[serde(default)]
    resources: String,
    #[serde(default)]
    statements: String,
    #[serde(default)]
    outputs: Mapping,
}

impl Service {
    /// Checks the entry: a lowercase name, known kinds, text values.
    fn check(&self) -> Result<()> {
        check_name(&self.name)?;
        ensure!(!self.consumes.is_empty(), "{}: consumes nothing", self.name);
        for kind in &self.consumes {
            EventKind::from_detail_type(kind).map_err(|_| {
                anyhow::anyhow!(
                    "{}: consumes `{kind}`, which is no detail-type of the contracts",
                    self.name
                )
            })?;
        }
        for (key, value) in self.environment.iter().chain(&self.outputs) {
            ensure!(
                key.as_str().is_some() && value.as_str().is_some(),
                "{}: environment and outputs map names to template text, as strings",
                self.name
            );
        }
        Ok(())
    }
}

/// Refuses a service name that is not lowercase letters and digits,
/// starting with a letter: it names a crate, a binary and, capitalized, the
/// template's logical ids.
pub fn check_name(name: &str) -> Result<()> {
    ensure!(
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "`{name}`: a service's name is lowercase letters and digits, starting with a letter"
    );
    Ok(())
}

/// `template` with its generated regions written from `services`.
fn render(template: &str, services: &str) -> Result<String> {
    let services: Services =
        serde_norway::from_str(services).with_context(|| format!("in {SERVICES}"))?;
    let mut names = std::collections::BTreeSet::new();
    for service in &services.services {
        service.check().with_context(|| format!("in {SERVICES}"))?;
        ensure!(
            names.insert(&service.name),
            "{SERVICES}: `{}` twice",
            service.name
        );
    }
    let resources: String = services.services.iter().map(block).collect();
    let outputs: String = services.services.iter().map(outputs).collect();
    let template = replace_region(template, "resources", &resources)?;
    replace_region(&template, "outputs", &outputs)
}

/// `template` with the lines between the markers of `region` replaced.
fn replace_region(template: &str, region: &str, body: &str) -> Result<String> {
    let begin = format!("{BEGIN}{region}\n");
    let end = format!("{END}{region}\n");
    let (Some(b), Some(e)) = (template.find(&begin), template.find(&end)) else {
        bail!(
            "{TEMPLATE} has no `{}` and `{}` lines",
            begin.trim(),
            end.trim()
        );
    };
    ensure!(b < e, "{TEMPLATE}: the `{region}` markers are out of order");
    let start = b + begin.len();
    // The end marker is indented like the begin marker: keep its indent.
    let indent_start = template[..e].rfind('\n').map_or(0, |i| i + 1);
    Ok(format!(
        "{}{body}{}",
        &template[..start],
        &template[indent_start..]
    ))
}

/// Everything below indented by `by` spaces, blank lines kept blank.
fn indented(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_owned()
            } else {
                format!("{pad}{line}\n")
            }
        })
        .collect()
}

/// The rule's `EventPattern`: the consumed kinds grouped by source, in
/// the entry's order; one source needs no `$or`.
fn event_pattern(service: &Service) -> String {
    let mut groups: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for name in &service.consumes {
        let Ok(kind) = EventKind::from_detail_type(name) else {
            continue; // refused by Service::check
        };
        match groups
            .iter_mut()
            .find(|(source, _)| *source == kind.source())
        {
            Some((_, types)) => types.push(kind.detail_type()),
            None => groups.push((kind.source(), vec![kind.detail_type()])),
        }
    }
    let mut out = String::new();
    if let [(source, types)] = groups.as_slice() {
        let _ = writeln!(out, "        source: [{source}]");
        let _ = writeln!(out, "        detail-type: [{}]", types.join(", "));
        return out;
    }
    out.push_str("        $or:\n");
    for (source, types) in &groups {
        if let [only] = types.as_slice() {
            let _ = writeln!(
                out,
                "          - {{ source: [{source}], detail-type: [{only}] }}"
            );
        } else {
            let _ = writeln!(out, "          - source: [{source}]");
            let _ = writeln!(out, "            detail-type: [{}]", types.join(", "));
        }
    }
    out
}

/// `A`, `A and B`, `A, B and C`.
fn listed(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A `name: value` line per entry of `map`, indented by `by`.
fn pairs(map: &Mapping, by: usize) -> String {
    let pad = " ".repeat(by);
    map.iter()
        .filter_map(|(k, v)| Some(format!("{pad}{}: {}\n", k.as_str()?, v.as_str()?)))
        .collect()
}

/// The service's nine resources, and its own extras.
fn block(service: &Service) -> String {
    let name = &service.name;
    let title = logical_prefix(name);
    let dashes = "-".repeat(73usize.saturating_sub(5 + name.len()));
    let (state_comment, state_actions) = if service.counters {
        (
            "",
            "dynamodb:BatchGetItem, dynamodb:PutItem, dynamodb:UpdateItem",
        )
    } else {
        (
            "                # No UpdateItem: only a service with counters updates items.\n",
            "dynamodb:BatchGetItem, dynamodb:PutItem",
        )
    };
    let extra_resources = if service.resources.is_empty() {
        String::new()
    } else {
        indented(&service.resources, 2) + "\n"
    };
    BLOCK
        .replace("{dashes}", &dashes)
        .replace("{rule_description}", &listed(&service.consumes))
        .replace("{event_pattern}", &event_pattern(service))
        .replace("{extra_resources}", &extra_resources)
        .replace("{state_comment}", state_comment)
        .replace("{state_actions}", state_actions)
        .replace("{extra_statements}", &indented(&service.statements, 14))
        .replace("{description}", &service.description)
        .replace("{extra_environment}", &pairs(&service.environment, 10))
        .replace("{Name}", &title)
        .replace("{name}", name)
}

/// The service's outputs.
fn outputs(service: &Service) -> String {
    let title = logical_prefix(&service.name);
    let mut out = String::new();
    for (output, value) in [
        ("QueueUrl", "Queue"),
        ("DeadLetterQueueUrl", "DeadLetterQueue"),
        ("TableName", "Table"),
        ("FunctionName", "Function"),
    ] {
        let _ = write!(out, "  {title}{output}:\n    Value: !Ref {title}{value}\n");
    }
    for (k, v) in service.outputs.iter() {
        if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
            let _ = write!(out, "  {k}:\n    Value: {v}\n");
        }
    }
    out
}

/// One service's resources; `{…}` are filled in by [`block`].
const BLOCK: &str = r#"  # {dashes} {name}
  {Name}Queue:
    Type: AWS::SQS::Queue
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_27
            comment: Encrypted with SSE-SQS; EventBridge cannot deliver to a queue under the AWS-managed KMS key.
    Properties:
      SqsManagedSseEnabled: true
      # EventBridge's own limit: no event on the bus is larger.
      MaximumMessageSize: 262144
      VisibilityTimeout: !Ref QueueVisibilityTimeout
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt {Name}DeadLetterQueue.Arn
        # The runtime retries a failed record after 2, 4, 8, ... 60 s
        # (ChangeMessageVisibility): ten receives span about five minutes.
        maxReceiveCount: 10

  {Name}DeadLetterQueue:
    Type: AWS::SQS::Queue
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_27
            comment: Encrypted with SSE-SQS; EventBridge cannot deliver to a queue under the AWS-managed KMS key.
    Properties:
      SqsManagedSseEnabled: true
      # The largest body the source queue takes, plus the reason attributes
      # the runtime adds (SQS counts them in the size): 1 MiB, SQS's maximum.
      MaximumMessageSize: 1048576
      MessageRetentionPeriod: 1209600

  {Name}QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref {Name}Queue, !Ref {Name}DeadLetterQueue]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Sid: OnlyThe{Name}Rule
            Effect: Allow
            Principal: { Service: events.amazonaws.com }
            Action: sqs:SendMessage
            Resource: [!GetAtt {Name}Queue.Arn, !GetAtt {Name}DeadLetterQueue.Arn]
            Condition:
              ArnEquals: { aws:SourceArn: !GetAtt {Name}Rule.Arn }

  {Name}Rule:
    Type: AWS::Events::Rule
    Properties:
      Description: {rule_description} to the {name} queue.
      EventBusName: !Ref Bus
      EventPattern:
{event_pattern}      Targets:
        - Id: {name}
          Arn: !GetAtt {Name}Queue.Arn
          RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 }
          DeadLetterConfig: { Arn: !GetAtt {Name}DeadLetterQueue.Arn }

  {Name}Table:
    Type: AWS::DynamoDB::Table
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_119
            comment: Encrypted with the AWS-managed key; only the function's own role reads it, so a customer key adds upkeep and no control.
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{ AttributeName: pk, AttributeType: S }]
      KeySchema: [{ AttributeName: pk, KeyType: HASH }]
      SSESpecification: { SSEEnabled: true }
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true }
      TimeToLiveSpecification: { AttributeName: expires_at, Enabled: true }

{extra_resources}  {Name}LogGroup:
    Type: AWS::Logs::LogGroup
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_158
            comment: Logs hold no secrets (tokens and addresses are never logged); the service key is enough.
    Properties:
      LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-{name}"
      RetentionInDays: 30

  {Name}Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
      Policies:
        - PolicyName: {name}
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Sid: Logs
                Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !GetAtt {Name}LogGroup.Arn
              - Sid: ConsumeQueue
                Effect: Allow
                Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility, sqs:GetQueueAttributes, sqs:GetQueueUrl]
                Resource: !GetAtt {Name}Queue.Arn
              - Sid: DeadLetter
                Effect: Allow
                Action: sqs:SendMessage
                Resource: !GetAtt {Name}DeadLetterQueue.Arn
              - Sid: State
                Effect: Allow
                # BatchGetItem reads an event's records: its own IAM action,
                # which GetItem does not cover (shown by tests/tests/iam.rs on
                # the cloud that enforces IAM). The commit's TransactWriteItems
                # is authorized item by item: PutItem, and UpdateItem for a
                # counter.
{state_comment}                Action: [{state_actions}]
                Resource: !GetAtt {Name}Table.Arn
              - Sid: Publish
                Effect: Allow
                Action: events:PutEvents
                Resource: !GetAtt Bus.Arn
{extra_statements}
  {Name}Function:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties: { Binary: {name} }
      checkov:
        skip:
          - id: CKV_AWS_116
            comment: Failed records go to the queue's DLQ (redrive policy and the runtime's dead letters), not a function DLQ.
          - id: CKV_AWS_117
            comment: Reaches only AWS service endpoints; a VPC would add NAT cost and cold-start time for nothing.
          - id: CKV_AWS_115
            comment: Concurrency is bounded by the event source mapping's ScalingConfig.MaximumConcurrency.
          - id: CKV_AWS_173
            comment: The environment holds resource names only, no secrets.
    Properties:
      FunctionName: !Sub "${AWS::StackName}-{name}"
      Description: {description}
      Role: !GetAtt {Name}Role.Arn
      LoggingConfig: { LogGroup: !Ref {Name}LogGroup, LogFormat: JSON }
      Environment:
        Variables:
          ORDERFLOW_TABLE: !Ref {Name}Table
          ORDERFLOW_BUS: !Ref Bus
          ORDERFLOW_FAULTS: !Ref Faults
          ORDERFLOW_FAULTS_RECORD: !Ref FaultsRecord
          ORDERFLOW_DLQ_URL: !Ref {Name}DeadLetterQueue
{extra_environment}      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt {Name}Queue.Arn
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: { MaximumConcurrency: 5 }

  {Name}DeadLetterAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: The {name} dead-letter queue is not empty (cargo xtask ops dlq show).
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{ Name: QueueName, Value: !GetAtt {Name}DeadLetterQueue.QueueName }]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]

"#;

/// Service `name`'s block of `template`, from its header line to the end
/// of its alarm.
#[cfg(test)]
pub(crate) fn block_of(template: &str, name: &str) -> String {
    let prefix = logical_prefix(name);
    let start = template
        .find(&format!(" {name}\n  {prefix}Queue:"))
        .unwrap_or_else(|| panic!("no block of {name}"));
    let alarm = template[start..]
        .find(&format!("{prefix}DeadLetterAlarm:"))
        .unwrap_or_else(|| panic!("no alarm of {name}"))
        + start;
    let end = alarm
        + template[alarm..]
            .find("\n\n")
            .unwrap_or(template.len() - alarm);
    template[start..end].to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn read(path: &str) -> String {
        fs::read_to_string(project_root().join(path)).unwrap()
    }

    /// The line of a function's manifest that gives it the build script
    /// the functions share, which links the bootstrap position-dependent.
    pub(crate) const SHARED_BUILD: &str = "build = \"../build.rs\"";

    /// The runtime as every function takes it: DEBUG and TRACE compiled out
    /// of release builds.
    pub(crate) const LEAN_LOGS: &str =
        "orderflow-runtime = { workspace = true, features = [\"lean-logs\"] }";

    #[test]
    fn every_function_takes_the_shared_build_script_and_lean_logs() {
        let root = project_root();
        assert!(root.join("functions/build.rs").is_file());
        for name in names(&root).unwrap() {
            let manifest = read(&format!("functions/{name}/Cargo.toml"));
            assert!(
                manifest.lines().any(|line| line == SHARED_BUILD),
                "functions/{name}/Cargo.toml lacks `{SHARED_BUILD}`"
            );
            assert!(
                manifest.lines().any(|line| line == LEAN_LOGS),
                "functions/{name}/Cargo.toml lacks `{LEAN_LOGS}`"
            );
        }
    }

    #[test]
    fn the_committed_template_is_what_the_services_give() {
        let template = read(TEMPLATE);
        assert!(
            template == render(&template, &read(SERVICES)).unwrap(),
            "{TEMPLATE} is stale: run `cargo xtask template --write` and commit it"
        );
    }

    #[test]
    fn a_hand_edit_of_a_generated_block_is_stale() {
        let template = read(TEMPLATE);
        let edited = template.replacen("BatchSize: 10", "BatchSize: 9", 1);
        assert_ne!(edited, template);
        assert_eq!(render(&edited, &read(SERVICES)).unwrap(), template);
    }

    #[test]
    fn a_new_service_is_one_entry() {
        let template = read(TEMPLATE);
        let services = read(SERVICES)
            + "\n  - name: notifications\n    description: Sends a notice per shipment.\n    \
               consumes: [ShipmentScheduled]\n";
        let written = render(&template, &services).unwrap();
        // The others' blocks are unchanged, and the new one follows them.
        for name in ["payment", "inventory", "shipping"] {
            assert_eq!(block_of(&written, name), block_of(&template, name));
        }
        for line in [
            "  NotificationsQueue:\n",
            "      Description: ShipmentScheduled to the notifications queue.\n",
            "        source: [orderflow.shipping]\n        detail-type: [ShipmentScheduled]\n",
            "      FunctionName: !Sub \"${AWS::StackName}-notifications\"\n",
            "                Action: [dynamodb:BatchGetItem, dynamodb:PutItem]\n                Resource: !GetAtt NotificationsTable.Arn\n",
            "  NotificationsFunctionName:\n    Value: !Ref NotificationsFunction\n",
        ] {
            assert!(written.contains(line), "no {line:?} in\n{written}");
        }
        // And the routing tools read the new route as the others.
        let document = crate::asyncapi::render(&written).unwrap();
        assert!(document.contains("notificationsReceives"), "{document}");
        assert!(
            crate::graph::render(&written)
                .unwrap()
                .contains("notifications")
        );
    }

    #[test]
    fn a_bad_entry_is_refused_by_name() {
        let template = read(TEMPLATE);
        for (entry, message) in [
            (
                "  - name: Notify\n    description: x\n    consumes: [ShipmentScheduled]\n",
                "lowercase",
            ),
            (
                "  - name: notify\n    description: x\n    consumes: [ShipmentSent]\n",
                "`ShipmentSent`, which is no detail-type",
            ),
            (
                "  - name: notify\n    description: x\n    consumes: []\n",
                "consumes nothing",
            ),
            (
                "  - name: payment\n    description: x\n    consumes: [OrderPlaced]\n",
                "`payment` twice",
            ),
            (
                "  - name: notify\n    description: x\n    consumes: [OrderPlaced]\n    queue: fifo\n",
                "unknown field `queue`",
            ),
        ] {
            let services = read(SERVICES) + "\n" + entry;
            let err = format!("{:#}", render(&template, &services).unwrap_err());
            assert!(err.contains(message), "{entry}: {err}");
        }
    }

    #[test]
    fn a_template_without_its_markers_is_refused() {
        let err = render("Resources: {}\n", &read(SERVICES)).unwrap_err();
        assert!(err.to_string().contains("has no"), "{err}");
    }
}
