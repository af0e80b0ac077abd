//! AWS limits the template must respect that neither local cloud checks:
//! each is a documented quota, checked here against `infra/template.yaml`
//! by `cargo test`.
//!
//! - **SQS message size** (`MaximumMessageSize`, 1 KiB to 1 MiB; SQS counts
//!   the message attributes in it). Every queue with a redrive policy says
//!   its size, and its dead-letter queue takes at least as much, since a
//!   redrive moves a message as it is. Where a function reads the queue,
//!   the runtime dead-letters a record itself, adding its reason as
//!   attributes, so the DLQ must take
//!   [`orderflow_runtime::dlq::ATTRIBUTE_BYTES_MAX`] more: otherwise the
//!   largest bodies fail to be dead-lettered, are retried until the redrive
//!   policy moves them, and arrive without their reason.

use anyhow::{Context, Result, ensure};
use orderflow_runtime::dlq::ATTRIBUTE_BYTES_MAX;
use serde_norway::Value;

use crate::graph::{FUNCTION, QUEUE, Template, property};

/// Fails, naming the queue, where the template breaks a limit above.
pub fn check(template_yaml: &str) -> Result<()> {
    let root: Value = serde_norway::from_str(template_yaml).context("the template is not YAML")?;
    let template = Template::parse(&root)?;
    let mut consumed = Vec::new();
    for (id, function) in template.of_type(FUNCTION) {
        consumed.extend(template.consumed_queues(id, function)?);
    }
    for (id, queue) in template.of_type(QUEUE) {
        let Some((dlqs, _)) = template.dead_letter_queues(id, queue)? else {
            continue;
        };
        let size = maximum_message_size(&template, id)?;
        for dlq in dlqs {
            let needed = if consumed.contains(&id) {
                size + ATTRIBUTE_BYTES_MAX as u64
            } else {
                size
            };
            let dlq_size = maximum_message_size(&template, dlq)?;
            ensure!(
                dlq_size >= needed,
                "`{dlq}` takes messages of {dlq_size} bytes, but `{id}` sends it messages of up \
                 to {needed} ({size}{})",
                if needed > size {
                    " plus the dead letter's reason attributes"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// Queue `id`'s `MaximumMessageSize`, which must be given: SQS's default
/// has changed before, and a limit the template relies on is written down.
fn maximum_message_size(template: &Template<'_>, id: &str) -> Result<u64> {
    let queue = template
        .resource(id)
        .with_context(|| format!("no queue `{id}`"))?;
    let size = property(queue, "MaximumMessageSize")
        .and_then(Value::as_u64)
        .with_context(|| format!("queue `{id}` does not set MaximumMessageSize"))?;
    ensure!(
        (1024..=1_048_576).contains(&size),
        "queue `{id}`'s MaximumMessageSize {size} is outside SQS's 1 KiB to 1 MiB"
    );
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> String {
        std::fs::read_to_string(crate::project_root().join(crate::graph::TEMPLATE)).unwrap()
    }

    #[test]
    fn the_committed_template_respects_the_limits() {
        check(&committed()).unwrap();
    }

    #[test]
    fn a_dlq_no_larger_than_its_consumed_queue_is_refused() {
        let shrunk = committed().replacen(
            "MaximumMessageSize: 1048576",
            "MaximumMessageSize: 262144",
            1,
        );
        let err = check(&shrunk).unwrap_err().to_string();
        assert!(err.contains("reason attributes"), "{err}");
    }

    #[test]
    fn a_queue_that_does_not_say_its_size_is_refused() {
        let unsaid = committed().replacen("      MaximumMessageSize: 262144\n", "", 1);
        let err = check(&unsaid).unwrap_err().to_string();
        assert!(err.contains("does not set MaximumMessageSize"), "{err}");
    }
}
