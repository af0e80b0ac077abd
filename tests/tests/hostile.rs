//! The hostile corpus (`orderflow_flow::hostile`) through a deployed stack:
//! every body into every function's queue, as the bus would deliver it.
//! Each must be dead-lettered by each function on its first receive, with
//! its error kind and a reason; the bodies SQS must refuse are refused (or,
//! where an emulator lets one through, dead-lettered all the same); valid
//! orders placed among them ship. Nothing is retried, nothing panics,
//! nothing is lost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use orderflow::order::{new_order_id, new_sku};
use orderflow::{DeadLetter, Flow, OrderSpec, Outcome, ServiceResources};
use orderflow_flow::harness::run;
use orderflow_flow::hostile::{self, Hostile};
use orderflow_flow::tamper::Tamper;

/// How long every dead letter may take to appear.
const WITHIN: Duration = Duration::from_secs(120);

/// A body sent, and where.
struct Sent {
    service: &'static str,
    hostile: Hostile,
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn every_hostile_body_is_dead_lettered_with_its_reason_and_valid_orders_ship() -> Result<()> {
    run(|flow| async move {
        let sku = new_sku("HOSTILE")?;
        flow.set_stock(&sku, 3).await?;
        let valid: Vec<OrderSpec> = (0..3)
            .map(|i| {
                Ok(
                    OrderSpec::new(new_order_id(&format!("among{i}"))?, "tok_visa_4242")
                        .line(&sku, 1, 500),
                )
            })
            .collect::<Result<_>>()?;
        let mut sent: HashMap<String, Sent> = HashMap::new();
        let mut refused = Vec::new();
        let corpus = hostile::corpus();
        for (i, hostile) in corpus.iter().chain(&hostile::refused()).enumerate() {
            if let Some(order) = valid.get(i / 20)
                && i % 20 == 0
            {
                flow.place(&order.message()?).await?;
            }
            for service in flow.stack.services() {
                match flow.send_raw(service, &hostile.body).await {
                    Ok(id) => {
                        let hostile = hostile.clone();
                        sent.insert(
                            id,
                            Sent {
                                service: service.name,
                                hostile,
                            },
                        );
                    }
                    Err(e) if hostile.sqs_refuses => {
                        refused.push(format!("{}: {e:#}", hostile.name))
                    }
                    Err(e) => return Err(e.context(format!("sending `{}`", hostile.name))),
                }
            }
        }
        eprintln!(
            "hostile: {} bodies sent to 3 queues ({} messages); SQS refused {} sends: {refused:#?}",
            corpus.len(),
            sent.len(),
            refused.len()
        );
        let letters = wait_for_letters(flow, &sent).await?;
        let mut wrong = Vec::new();
        for (id, Sent { service, hostile }) in &sent {
            let letter = &letters[id];
            let says = |name: &str| letter.attribute(name).to_owned();
            if says("orderflow.error_kind") != hostile.kind
                || says("orderflow.function") != *service
                || says("orderflow.receive_count") != "1"
                || says("orderflow.error_message").is_empty()
                || letter.body != hostile.body
            {
                wrong.push(format!(
                    "{service} `{}`:\n{}",
                    hostile.name,
                    letter.describe()
                ));
            }
        }
        ensure!(
            wrong.is_empty(),
            "{} dead letters are not as they must be:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        for order in &valid {
            let outcome = flow.settle(order.order_id(), WITHIN).await?;
            ensure!(
                outcome == Outcome::Shipped,
                "{} among the hostile: {outcome}",
                order.order_id()
            );
        }
        ensure!(
            flow.stock(&sku).await? == Some(0),
            "the valid orders took all 3 units"
        );
        flow.none_dead_lettered(&valid).await
    })
}

/// Waits until every message of `sent` is in its function's DLQ; returns
/// each dead letter by the SQS message id it arrived with.
async fn wait_for_letters(
    flow: &Flow,
    sent: &HashMap<String, Sent>,
) -> Result<HashMap<String, DeadLetter>> {
    let started = Instant::now();
    loop {
        let mut found = HashMap::new();
        for service in flow.stack.services() {
            found.extend(ours(flow, service, sent).await?);
        }
        if found.len() == sent.len() {
            return Ok(found);
        }
        if started.elapsed() > WITHIN {
            let missing: Vec<String> = sent
                .iter()
                .filter(|(id, _)| !found.contains_key(*id))
                .map(|(_, s)| format!("{} `{}`", s.service, s.hostile.name))
                .collect();
            bail!(
                "{} hostile messages not dead-lettered within {WITHIN:?}: {missing:?}",
                missing.len()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The dead letters in `service`'s DLQ of messages in `sent`.
async fn ours(
    flow: &Flow,
    service: &ServiceResources,
    sent: &HashMap<String, Sent>,
) -> Result<Vec<(String, DeadLetter)>> {
    Ok(flow
        .dead_letters(service)
        .await?
        .into_iter()
        .filter_map(|letter| {
            let id = letter.attribute("orderflow.original_message_id").to_owned();
            sent.contains_key(&id).then_some((id, letter))
        })
        .collect())
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn the_bus_refuses_a_detail_that_is_no_event_with_a_clear_error() -> Result<()> {
    run(|flow| async move {
        let order = new_order_id("refused")?;
        let big = format!(
            r#"{{"order_id":"{order}","pad":"{}"}}"#,
            "x".repeat(300_000)
        );
        let mut wrong = Vec::new();
        for (name, detail, says) in [
            ("not JSON", "{", "MalformedDetail"),
            ("an array", "[1]", "MalformedDetail"),
            ("a JSON string", r#""OrderPlaced""#, "MalformedDetail"),
            // EventBridge's 256 KB: the whole PutEvents call is refused.
            ("over 256 KB", big.as_str(), "ValidationException"),
        ] {
            match flow
                .put_raw("orderflow.orders", "OrderPlaced", detail)
                .await
            {
                Ok(()) => wrong.push(format!("{name}: accepted")),
                Err(e) if format!("{e:#}").contains(says) => {}
                Err(e) => wrong.push(format!("{name}: refused without `{says}`: {e:#}")),
            }
        }
        ensure!(wrong.is_empty(), "{wrong:#?}");
        Ok(())
    })
}
