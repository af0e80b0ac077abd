//! A deployed stack, found by name through its CloudFormation outputs.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};

/// The default stack name (`cargo xtask deploy --stack-name` changes it).
pub const DEFAULT_STACK: &str = "orderflow";

/// The resources of one function.
#[derive(Debug, Clone)]
pub struct ServiceResources {
    /// `payment`, `inventory` or `shipping`.
    pub name: &'static str,
    /// The queue its rule feeds.
    pub queue_url: String,
    /// The queue's dead-letter queue.
    pub dlq_url: String,
    /// Its DynamoDB table.
    pub table: String,
    /// Its Lambda function.
    pub function: String,
}

/// What `infra/template.yaml` creates, by output.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack name.
    pub name: String,
    /// The EventBridge bus.
    pub bus: String,
    /// The bus's ARN.
    pub bus_arn: String,
    /// The bus archive.
    pub archive: String,
    /// The archive's ARN.
    pub archive_arn: String,
    /// The queue that receives every orderflow event.
    pub audit_queue_url: String,
    /// The audit queue's dead-letter queue.
    pub audit_dlq_url: String,
    /// The bucket that holds shipping labels.
    pub label_bucket: String,
    /// The simulated payment provider's ledger (a DynamoDB table).
    pub provider_ledger: String,
    /// payment.
    pub payment: ServiceResources,
    /// inventory.
    pub inventory: ServiceResources,
    /// shipping.
    pub shipping: ServiceResources,
    /// Every output, by key: what the fields above do not name, such as a
    /// service added with `cargo xtask new-service` ([`Stack::service`]).
    pub outputs: HashMap<String, String>,
}

impl Stack {
    /// Reads the outputs of stack `name`.
    pub async fn describe(cfn: &aws_sdk_cloudformation::Client, name: &str) -> Result<Self> {
        let described = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .with_context(|| {
                format!("stack `{name}` not found: deploy it first (cargo xtask deploy --local)")
            })?;
        let Some(stack) = described.stacks().first() else {
            bail!("stack `{name}` not found: deploy it first (cargo xtask deploy --local)");
        };
        let status = stack
            .stack_status()
            .map(|s| s.as_str())
            .unwrap_or("UNKNOWN");
        if !matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
            bail!("stack `{name}` is {status}, not CREATE_COMPLETE or UPDATE_COMPLETE");
        }
        let outputs: HashMap<&str, &str> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
            .collect();
        Self::from_outputs(name, &outputs)
    }

    /// Builds the stack from its output map.
    pub fn from_outputs(name: &str, outputs: &HashMap<&str, &str>) -> Result<Self> {
        let outputs: HashMap<String, String> = outputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let get = |key: &str| output(name, &outputs, key);
        let service = |service: &'static str| service_from(name, &outputs, service);
        Ok(Self {
            name: name.to_owned(),
            bus: get("BusName")?,
            bus_arn: get("BusArn")?,
            archive: get("ArchiveName")?,
            archive_arn: get("ArchiveArn")?,
            audit_queue_url: get("AuditQueueUrl")?,
            audit_dlq_url: get("AuditDeadLetterQueueUrl")?,
            label_bucket: get("LabelBucketName")?,
            provider_ledger: get("ProviderLedgerTableName")?,
            payment: service("payment")?,
            inventory: service("inventory")?,
            shipping: service("shipping")?,
            outputs,
        })
    }

    /// The resources of the service named `name` (lowercase, as in
    /// `infra/services.yaml`), from its outputs.
    pub fn service(&self, name: &'static str) -> Result<ServiceResources> {
        service_from(&self.name, &self.outputs, name)
    }

    /// The three functions' resources.
    pub fn services(&self) -> [&ServiceResources; 3] {
        [&self.payment, &self.inventory, &self.shipping]
    }
}

/// The prefix of a service's logical ids and outputs in the template: its
/// name with the first letter in capitals (`payment`: `PaymentQueueUrl`).
/// `cargo xtask template` writes them by the same rule.
pub fn logical_prefix(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Output `key` of stack `stack`.
fn output(stack: &str, outputs: &HashMap<String, String>, key: &str) -> Result<String> {
    outputs
        .get(key)
        .cloned()
        .with_context(|| format!("stack `{stack}` has no output `{key}`"))
}

/// A service's resources from its four outputs (see [`logical_prefix`]).
fn service_from(
    stack: &str,
    outputs: &HashMap<String, String>,
    name: &'static str,
) -> Result<ServiceResources> {
    let prefix = logical_prefix(name);
    let get = |suffix: &str| output(stack, outputs, &format!("{prefix}{suffix}"));
    Ok(ServiceResources {
        name,
        queue_url: get("QueueUrl")?,
        dlq_url: get("DeadLetterQueueUrl")?,
        table: get("TableName")?,
        function: get("FunctionName")?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::Stack;

    const KEYS: [&str; 20] = [
        "BusName",
        "BusArn",
        "ArchiveName",
        "ArchiveArn",
        "AuditQueueUrl",
        "AuditDeadLetterQueueUrl",
        "LabelBucketName",
        "ProviderLedgerTableName",
        "PaymentQueueUrl",
        "PaymentDeadLetterQueueUrl",
        "PaymentTableName",
        "PaymentFunctionName",
        "InventoryQueueUrl",
        "InventoryDeadLetterQueueUrl",
        "InventoryTableName",
        "InventoryFunctionName",
        "ShippingQueueUrl",
        "ShippingDeadLetterQueueUrl",
        "ShippingTableName",
        "ShippingFunctionName",
    ];

    #[test]
    fn every_output_is_read_and_a_missing_one_is_named() {
        let outputs: HashMap<&str, &str> = KEYS.iter().map(|k| (*k, *k)).collect();
        let stack = Stack::from_outputs("s", &outputs).unwrap();
        assert_eq!(stack.inventory.dlq_url, "InventoryDeadLetterQueueUrl");
        assert_eq!(
            stack.services().map(|s| s.name),
            ["payment", "inventory", "shipping"]
        );

        let mut missing = outputs.clone();
        missing.remove("ShippingTableName");
        let err = Stack::from_outputs("s", &missing)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("stack `s` has no output `ShippingTableName`")
        );
    }
}
