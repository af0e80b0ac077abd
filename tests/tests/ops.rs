//! Operations against a deployed stack: what the `orderflow` CLI does, run
//! for real through its library (DLQ show and redrive, archive replay).
//! `#[ignore]`d like the whole-flow tests; `cargo xtask test` and `cargo
//! xtask flow` run them.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, ensure};
use chrono::Utc;
use orderflow::order::{new_order_id, new_sku};
use orderflow::{DeadLetter, Flow, OrderSpec, Outcome};
use orderflow_contracts::EventKind;
use orderflow_flow::harness::run;
use orderflow_flow::tamper::{Tamper, malformed_detail};

const SETTLE: Duration = Duration::from_secs(60);

/// Reading a queue to the end hides each message read for a moment (SQS
/// has no peek), so tests that read or move dead letters take turns: one
/// test's read must not hide what another is about to count or move.
static DLQS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn letter_about(flow: &Flow, queue: &str, order: &str) -> Result<Option<DeadLetter>> {
    let dlq = flow.dead_letter_queue(queue)?;
    Ok(flow
        .peek_dead_letters(&dlq)
        .await?
        .into_iter()
        .find(|l| l.order_id().as_deref() == Some(order)))
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn dlq_list_and_show_explain_a_poison_event() -> Result<()> {
    run(|flow| async move {
        let _dlqs = DLQS.lock().await;
        // The payment DLQ: the redrive test empties the shipping one.
        let order = new_order_id("ops-show")?;
        flow.put_malformed_order(order.as_str()).await?;
        let letter = flow
            .wait_dead_letter(&flow.stack.payment, order.as_str(), SETTLE)
            .await?;
        let shown = letter.describe();
        eprintln!("ops dlq show payment (one message):\n{shown}");
        for expected in [
            format!("message {}", letter.message_id),
            format!("OrderPlaced for order {order}"),
            "function    payment".to_owned(),
            "error kind  malformed".to_owned(),
            "detail.data".to_owned(),
            "receives    1".to_owned(),
        ] {
            ensure!(shown.contains(&expected), "`{expected}` not in:\n{shown}");
        }
        ensure!(!letter.attribute("orderflow.original_message_id").is_empty());

        let depths = flow.dead_letter_depths().await?;
        let payment = depths
            .iter()
            .find(|d| d.queue.name == "payment")
            .ok_or_else(|| anyhow!("no payment DLQ in {depths:?}"))?;
        ensure!(payment.depth >= 1, "{payment:?}");
        ensure!(payment.oldest.is_some(), "{payment:?}");
        let names: Vec<&str> = depths.iter().map(|d| d.queue.name).collect();
        ensure!(
            names == ["payment", "inventory", "shipping", "audit"],
            "{names:?}"
        );
        Ok(())
    })
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn dlq_show_lists_every_message_not_only_the_first_ten() -> Result<()> {
    run(|flow| async move {
        let _dlqs = DLQS.lock().await;
        // Twelve poison events in the payment DLQ, beside whatever earlier
        // runs left there: `show` must list all of them. (It read with a
        // zero visibility timeout once, which returns the same first ten
        // messages every time.)
        let orders = (0..12)
            .map(|_| new_order_id("ops-many"))
            .collect::<Result<Vec<_>>>()?;
        for order in &orders {
            flow.put_malformed_order(order.as_str()).await?;
        }
        let dlq = flow.dead_letter_queue("payment")?;
        let deadline = Instant::now() + SETTLE;
        loop {
            let letters = flow.peek_dead_letters(&dlq).await?;
            let missing: Vec<_> = orders
                .iter()
                .filter(|o| {
                    !letters
                        .iter()
                        .any(|l| l.order_id().as_deref() == Some(o.as_str()))
                })
                .collect();
            if missing.is_empty() {
                ensure!(letters.len() >= 12, "{}", letters.len());
                let mut ids: Vec<&str> = letters.iter().map(|l| l.message_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                ensure!(ids.len() == letters.len(), "a message listed twice");
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{} of 12 never listed (DLQ holds {} listed)",
                missing.len(),
                letters.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // The peek left them all in place, visible.
        let depths = flow.dead_letter_depths().await?;
        let payment = depths
            .iter()
            .find(|d| d.queue.name == "payment")
            .ok_or_else(|| anyhow!("no payment DLQ"))?;
        ensure!(payment.depth + payment.in_flight >= 12, "{payment:?}");
        Ok(())
    })
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn redrive_moves_messages_back_to_their_queue_and_they_are_processed_again() -> Result<()> {
    run(|flow| async move {
        let _dlqs = DLQS.lock().await;
        // A poison event is still poison after a redrive: processed again,
        // it comes back to the DLQ as a new message with its reason. That
        // is what shows that the redrive moved it and the function saw it.
        let chosen = new_order_id("ops-redrive")?;
        flow.put_raw(
            "orderflow.payment",
            "PaymentVoided",
            &malformed_detail(chosen.as_str()),
        )
        .await?;
        let first = flow
            .wait_dead_letter(&flow.stack.shipping, chosen.as_str(), SETTLE)
            .await?;

        let dry = flow
            .redrive("shipping", std::slice::from_ref(&first.message_id), true)
            .await?;
        ensure!(dry.moved == [first.message_id.clone()], "{dry:?}");
        ensure!(
            letter_about(flow, "shipping", chosen.as_str())
                .await?
                .map(|l| l.message_id)
                == Some(first.message_id.clone()),
            "a dry run moved something"
        );

        let moved = flow
            .redrive("shipping", std::slice::from_ref(&first.message_id), false)
            .await?;
        ensure!(moved.moved == [first.message_id.clone()], "{moved:?}");
        let deadline = Instant::now() + SETTLE;
        loop {
            let again = letter_about(flow, "shipping", chosen.as_str()).await?;
            if let Some(again) = again.filter(|l| l.message_id != first.message_id) {
                ensure!(
                    again.attribute("orderflow.error_kind")
                        == first.attribute("orderflow.error_kind"),
                    "{again:?}"
                );
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the redriven message never came back"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        // The whole queue, through SQS's move task: everything in the
        // shipping DLQ goes back and (all of it poison) returns.
        let all = flow.redrive("shipping", &[], false).await?;
        ensure!(!all.moved.is_empty(), "{all:?}");
        ensure!(
            all.task_status
                .as_deref()
                .is_some_and(|s| s.starts_with("COMPLETED")),
            "{all:?}"
        );
        Ok(())
    })
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn after_the_fault_is_fixed_a_redrive_completes_the_order() -> Result<()> {
    run(|flow| async move {
        let _dlqs = DLQS.lock().await;
        // A sku the warehouse has no stock record for: inventory cannot
        // decide, so the order waits in its DLQ instead of being refused.
        let sku = new_sku("UNLOADED")?;
        let order = OrderSpec::new(new_order_id("ops-fix")?, "tok_visa_4242").line(&sku, 2, 650);
        let from = Utc::now() - chrono::Duration::seconds(1);
        flow.place(&order.message()?).await?;
        let letter = flow
            .wait_dead_letter(&flow.stack.inventory, order.order_id().as_str(), SETTLE)
            .await?;
        eprintln!(
            "ops dlq show inventory (one message):\n{}",
            letter.describe()
        );
        ensure!(
            letter.attribute("orderflow.error_kind") == "unknown_sku",
            "{}",
            letter.describe()
        );
        ensure!(
            letter
                .attribute("orderflow.error_message")
                .contains(sku.as_str()),
            "{}",
            letter.describe()
        );

        // Payment went ahead; nothing is reserved or shipped, and the
        // trace shows where the order stopped.
        flow.audit()
            .wait_for(order.order_id(), SETTLE, |e| {
                e.iter()
                    .any(|s| s.kind() == Some(EventKind::PaymentAuthorized))
            })
            .await?;
        ensure!(flow.outcome(order.order_id()).await? == Outcome::Pending);
        let trace = flow
            .trace(order.order_id(), from, Utc::now(), |_| {})
            .await?;
        eprintln!("ops trace {}:\n{}", order.order_id(), trace.render());
        ensure!(
            trace
                .dead_letters
                .iter()
                .any(|(queue, l)| *queue == "inventory" && l.message_id == letter.message_id),
            "{}",
            trace.render()
        );

        // The fix: load the stock. Then redrive just this message.
        flow.set_stock(&sku, 5).await?;
        let moved = flow
            .redrive("inventory", std::slice::from_ref(&letter.message_id), false)
            .await?;
        ensure!(moved.moved == [letter.message_id.clone()], "{moved:?}");
        ensure!(flow.settle(order.order_id(), SETTLE).await? == Outcome::Shipped);
        ensure!(flow.stock(&sku).await? == Some(3), "reserved exactly once");
        // The redriven message left the DLQ. (Another test's replay of a
        // window holding this order may have put a new copy there before
        // the stock was loaded: only the redriven one counts.)
        let dlq = flow.dead_letter_queue("inventory")?;
        let still = flow
            .peek_dead_letters(&dlq)
            .await?
            .into_iter()
            .filter(|l| l.order_id().as_deref() == Some(order.order_id().as_str()))
            .collect::<Vec<_>>();
        for other in &still {
            eprintln!("also in the inventory DLQ:\n{}", other.describe());
        }
        ensure!(
            !still.iter().any(|l| l.message_id == letter.message_id),
            "the redriven message is still in the inventory DLQ"
        );
        Ok(())
    })
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn a_replay_redelivers_archived_events_and_every_effect_stays_single() -> Result<()> {
    run(|flow| async move {
        let sku = new_sku("REPLAY")?;
        flow.set_stock(&sku, 9).await?;
        let order = OrderSpec::new(new_order_id("replay")?, "tok_visa_4242").line(&sku, 2, 400);
        let from = Utc::now() - chrono::Duration::seconds(1);
        flow.place(&order.message()?).await?;
        ensure!(flow.settle(order.order_id(), SETTLE).await? == Outcome::Shipped);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let to = Utc::now();
        let placed_before = arrivals(flow, &order, EventKind::OrderPlaced);

        let replayed = flow
            .replay(from, to, Some("OrderPlaced"), |state| {
                eprintln!("replay: {state}")
            })
            .await?;
        ensure!(replayed.state == "COMPLETED", "{replayed:?}");

        // Re-delivered: the audit queue sees the OrderPlaced again.
        let deadline = Instant::now() + SETTLE;
        while arrivals(flow, &order, EventKind::OrderPlaced) <= placed_before {
            ensure!(Instant::now() < deadline, "the replay re-delivered nothing");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let events = flow.audit().of(order.order_id());
        for kind in [
            EventKind::PaymentAuthorized,
            EventKind::StockReserved,
            EventKind::ShipmentScheduled,
        ] {
            let ids: std::collections::HashSet<_> = events
                .iter()
                .filter(|s| s.kind() == Some(kind))
                .filter_map(|s| s.event_id.clone())
                .collect();
            ensure!(
                ids.len() == 1,
                "{kind}: {} distinct after the replay",
                ids.len()
            );
        }
        ensure!(flow.stock(&sku).await? == Some(7), "stock taken once");
        Ok(())
    })
}

#[test]
#[ignore = "whole-flow: needs a deployed stack (cargo xtask test deploys one)"]
fn trace_tells_an_orders_story_from_the_archive_and_leaves_nothing_behind() -> Result<()> {
    run(|flow| async move {
        let _dlqs = DLQS.lock().await;
        let sku = new_sku("TRACE")?;
        flow.set_stock(&sku, 5).await?;
        let order = OrderSpec::new(new_order_id("trace")?, "tok_visa_4242").line(&sku, 1, 700);
        let from = Utc::now() - chrono::Duration::seconds(1);
        flow.place(&order.message()?).await?;
        ensure!(flow.settle(order.order_id(), SETTLE).await? == Outcome::Shipped);
        tokio::time::sleep(Duration::from_secs(2)).await;

        let trace = flow
            .trace(order.order_id(), from, Utc::now(), |state| {
                eprintln!("trace replay: {state}")
            })
            .await?;
        eprintln!("ops trace {}:\n{}", order.order_id(), trace.render());

        // The same events the audit queue saw, each once, with their causes.
        // The audit reader may get an event late: a receive whose response
        // was lost leaves its messages invisible for the queue's visibility
        // timeout (30 s), as SQS does. So wait, within SETTLE, until it has
        // every traced event, then compare both ways.
        let mut traced_ids: Vec<String> = trace.events.iter().map(|e| e.event_id.clone()).collect();
        traced_ids.sort();
        let seen = flow
            .audit()
            .wait_for(order.order_id(), SETTLE, |events| {
                traced_ids
                    .iter()
                    .all(|id| events.iter().any(|e| e.event_id.as_ref() == Some(id)))
            })
            .await
            .unwrap_or_else(|_| flow.audit().of(order.order_id()));
        let mut seen_ids: Vec<String> = seen.iter().filter_map(|s| s.event_id.clone()).collect();
        seen_ids.sort();
        seen_ids.dedup();
        ensure!(
            traced_ids == seen_ids,
            "traced {traced_ids:?}, audit saw {seen_ids:?}"
        );
        let kinds: Vec<&str> = trace
            .events
            .iter()
            .map(|e| e.detail_type.as_str())
            .collect();
        for kind in [
            "OrderPlaced",
            "PaymentAuthorized",
            "StockReserved",
            "ShipmentScheduled",
            "PaymentCaptured",
        ] {
            ensure!(kinds.contains(&kind), "{kind} not in {kinds:?}");
        }
        ensure!(kinds.len() == 5, "{kinds:?}");
        let id_of = |kind: &str| {
            trace
                .events
                .iter()
                .find(|e| e.detail_type == kind)
                .map(|e| e.event_id.clone())
        };
        let cause_of = |kind: &str| {
            trace
                .events
                .iter()
                .find(|e| e.detail_type == kind)
                .and_then(|e| e.causation_id.clone())
        };
        ensure!(cause_of("PaymentAuthorized") == id_of("OrderPlaced"));
        ensure!(cause_of("StockReserved") == id_of("OrderPlaced"));
        let shipped_by = cause_of("ShipmentScheduled");
        ensure!(
            shipped_by == id_of("PaymentAuthorized") || shipped_by == id_of("StockReserved"),
            "ShipmentScheduled caused by {shipped_by:?}"
        );
        ensure!(cause_of("PaymentCaptured") == id_of("ShipmentScheduled"));
        let text = trace.render();
        ensure!(text.contains("└─ ShipmentScheduled"), "{text}");
        ensure!(text.contains("└─ PaymentCaptured"), "{text}");
        ensure!(trace.dead_letters.is_empty(), "{:?}", trace.dead_letters);

        // The replay went to the trace's own rule only: the audit queue
        // (like the functions' queues) got none of it. (Other tests'
        // replays may re-deliver this order's events: only ours count.)
        tokio::time::sleep(Duration::from_secs(3)).await;
        let leaked = flow
            .audit()
            .of(order.order_id())
            .iter()
            .filter(|s| s.replay_name.as_deref() == Some(trace.replay.as_str()))
            .count();
        ensure!(
            leaked == 0,
            "the trace's replay reached the audit rule {leaked} times"
        );
        let left: Vec<String> = flow
            .trace_leftovers()
            .await?
            .into_iter()
            .filter(|n| n.contains(&trace.replay))
            .collect();
        ensure!(left.is_empty(), "the trace left {left:?}");
        Ok(())
    })
}

/// How many times the audit queue delivered the order's event of `kind`.
fn arrivals(flow: &Flow, order: &OrderSpec, kind: EventKind) -> usize {
    flow.audit()
        .of(order.order_id())
        .iter()
        .filter(|s| s.kind() == Some(kind))
        .count()
}
