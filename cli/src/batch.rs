//! Many orders at once: placed on the bus (all together or at a steady
//! rate), followed until each settles, checked against the provider's
//! ledger, and summed up as throughput and settle times. The load tests
//! and `cargo xtask bench flow` are built on it.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use orderflow_contracts::Sku;

use crate::order::new_order_id;
use crate::{Flow, OrderSpec, Outcome};

/// `n` orders of one unit at 10.00 in the load test's mix: every fifth
/// paid with a card the provider declines, every fifth (offset one) for
/// `scarce`, the rest for `plenty`.
pub fn mixed_orders(label: &str, n: usize, plenty: &Sku, scarce: &Sku) -> Result<Vec<OrderSpec>> {
    (0..n)
        .map(|i| {
            let id = new_order_id(&format!("{label}{i}"))?;
            Ok(match i % 5 {
                0 => OrderSpec::new(id, "tok_decline_card").line(plenty, 1, 1000),
                1 => OrderSpec::new(id, "tok_visa_4242").line(scarce, 1, 1000),
                _ => OrderSpec::new(id, "tok_visa_4242").line(plenty, 1, 1000),
            })
        })
        .collect()
}

/// How [`mixed_orders`]`(n)` must end when `scarce` holds `scarce_stock`
/// units: outcome → orders, and the units each sku must lose.
pub fn mixed_outcomes(n: usize, scarce_stock: usize) -> (BTreeMap<String, usize>, usize, usize) {
    let declined = n.div_ceil(5);
    let for_scarce = (n + 3) / 5;
    let scarce_shipped = for_scarce.min(scarce_stock);
    let plenty_shipped = n - declined - for_scarce;
    let outcomes = [
        (Outcome::Shipped, plenty_shipped + scarce_shipped),
        (Outcome::Declined, declined),
        (Outcome::OutOfStock, for_scarce - scarce_shipped),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .map(|(outcome, count)| (outcome.to_string(), count))
    .collect();
    (outcomes, plenty_shipped, scarce_shipped)
}

/// How a batch is placed.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Every order must settle within this of the first put.
    pub within: Duration,
    /// Orders per second to place them at; `None` places them all at once
    /// (ten to a PutEvents call).
    pub rate: Option<f64>,
}

/// A batch that settled: how each order ended, and the figures.
#[derive(Debug)]
pub struct Batch {
    /// How many ended each way.
    pub outcomes: BTreeMap<String, usize>,
    /// From the first put to the last order's last event.
    pub settled: Duration,
    /// Each order's settle time, from its `OrderPlaced` to its last event
    /// as the audit queue delivered them, ascending.
    pub settle_times: Vec<Duration>,
}

impl Batch {
    /// Places `orders` as `plan` says, waits for each to settle, checks
    /// each against the provider's ledger, prints the figures under
    /// `name`, and fails if any hold is open or captured differs from
    /// shipped.
    pub async fn place(flow: &Flow, orders: &[OrderSpec], name: &str, plan: Plan) -> Result<Self> {
        // The audit queue's reader must run while the orders are placed:
        // each event's time is when the reader received it.
        flow.audit();
        let started = Instant::now();
        let messages = orders
            .iter()
            .map(OrderSpec::message)
            .collect::<Result<Vec<_>>>()?;
        match plan.rate {
            None => flow.place_all(&messages).await?,
            Some(rate) => {
                ensure!(rate > 0.0, "a rate of {rate} orders/s places nothing");
                for (i, message) in messages.iter().enumerate() {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    flow.place(message).await?;
                }
            }
        }
        let put = started.elapsed();

        let mut outcomes = BTreeMap::new();
        let mut settled = Duration::ZERO;
        let mut settle_times = Vec::new();
        let mut ledger = Ledger::default();
        // How often an event reached the bus more than once: the cost of
        // re-publishing a duplicate's outbox instead of marking every
        // outbox published (one more write per record).
        let (mut copies, mut distinct_ids) = (0, HashSet::new());
        for order in orders {
            let left = plan.within.saturating_sub(started.elapsed());
            let outcome = flow.settle(order.order_id(), left).await?;
            *outcomes.entry(outcome.to_string()).or_insert(0) += 1;
            ledger.add(flow, order, outcome).await?;
            let events = flow.audit().of(order.order_id());
            if let (Some(first), Some(last)) = (events.first(), events.last()) {
                settled = settled.max(last.at.saturating_duration_since(started));
                settle_times.push(last.at.saturating_duration_since(first.at));
            }
            copies += events.len();
            distinct_ids.extend(events.into_iter().filter_map(|e| e.event_id));
        }
        settle_times.sort();
        let batch = Self {
            outcomes,
            settled,
            settle_times,
        };
        let paced = plan
            .rate
            .map(|rate| format!(" at {rate} orders/s"))
            .unwrap_or_default();
        eprintln!(
            "{name}: put{paced} in {:.2}s, all settled {:.1}s after the first put; {}; outcomes {:?}",
            put.as_secs_f64(),
            settled.as_secs_f64(),
            batch.figures(),
            batch.outcomes,
        );
        eprintln!(
            "{name}: the provider's ledger {ledger:?}; {copies} events on the bus for {} \
             distinct ({} re-published copies)",
            distinct_ids.len(),
            copies - distinct_ids.len()
        );
        ledger.balances()?;
        Ok(batch)
    }

    /// Orders settled per second, from the first put to the last settle.
    pub fn orders_per_second(&self) -> f64 {
        self.settle_times.len() as f64 / self.settled.as_secs_f64().max(0.001)
    }

    /// Throughput and settle-time percentiles, for a line of output.
    pub fn figures(&self) -> String {
        format!(
            "{:.1} orders/s; settle p50 {:.2} s, p90 {:.2} s, p99 {:.2} s, max {:.2} s",
            self.orders_per_second(),
            self.percentile(50).as_secs_f64(),
            self.percentile(90).as_secs_f64(),
            self.percentile(99).as_secs_f64(),
            self.percentile(100).as_secs_f64(),
        )
    }

    /// The `p`th percentile (nearest rank) of the settle times.
    pub fn percentile(&self, p: usize) -> Duration {
        let n = self.settle_times.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = (n * p).div_ceil(100).clamp(1, n);
        self.settle_times[rank - 1]
    }
}

/// The provider's ledger over many orders, checked order by order.
#[derive(Debug, Default)]
struct Ledger {
    /// Captured, in minor units.
    captured: u64,
    /// The totals of the orders that shipped.
    shipped: u64,
    /// Holds by status.
    holds: BTreeMap<String, usize>,
}

impl Ledger {
    /// Checks `order`'s hold against its outcome and counts it.
    async fn add(&mut self, flow: &Flow, order: &OrderSpec, outcome: Outcome) -> Result<()> {
        let hold = flow
            .check_ledger(order.order_id(), outcome, order.total_minor())
            .await?;
        let status = hold
            .as_ref()
            .map_or("none".to_owned(), |h| h.status.to_string());
        *self.holds.entry(status).or_insert(0) += 1;
        if let Some(hold) = hold.filter(|h| h.status == payment::HoldStatus::Captured) {
            self.captured += hold.amount_minor.0;
        }
        if outcome == Outcome::Shipped {
            self.shipped += order.total_minor();
        }
        Ok(())
    }

    /// No hold open, and captured equals shipped.
    fn balances(&self) -> Result<()> {
        ensure!(!self.holds.contains_key("open"), "open holds: {self:?}");
        ensure!(
            self.captured == self.shipped,
            "captured {} but shipped orders total {}",
            self.captured,
            self.shipped
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_and_its_outcomes_agree_for_the_load_tests_two_hundred() {
        let (outcomes, plenty, scarce) = mixed_outcomes(200, 10);
        assert_eq!(outcomes["shipped"], 130);
        assert_eq!(outcomes["declined"], 40);
        assert_eq!(outcomes["out of stock"], 30);
        assert_eq!((plenty, scarce), (120, 10));
    }

    #[test]
    fn the_outcomes_count_the_mix_for_any_size() {
        let plenty = Sku::new("SKU-P").unwrap();
        let scarce = Sku::new("SKU-S").unwrap();
        for n in [1, 2, 4, 5, 6, 7, 999, 1000] {
            let orders = mixed_orders("t", n, &plenty, &scarce).unwrap();
            let declined = orders
                .iter()
                .filter(|o| o.message().unwrap().detail_json().contains("tok_decline"))
                .count();
            let for_scarce = orders
                .iter()
                .filter(|o| o.message().unwrap().detail_json().contains("SKU-S"))
                .count();
            let (outcomes, plenty_shipped, scarce_shipped) = mixed_outcomes(n, 10);
            assert_eq!(outcomes.values().sum::<usize>(), n, "n={n}");
            assert_eq!(outcomes.get("declined").copied().unwrap_or(0), declined);
            assert_eq!(scarce_shipped, for_scarce.min(10), "n={n}");
            assert_eq!(plenty_shipped, n - declined - for_scarce, "n={n}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let batch = Batch {
            outcomes: BTreeMap::new(),
            settled: Duration::from_secs(10),
            settle_times: (1..=100).map(Duration::from_secs).collect(),
        };
        assert_eq!(batch.percentile(50), Duration::from_secs(50));
        assert_eq!(batch.percentile(99), Duration::from_secs(99));
        assert_eq!(batch.percentile(100), Duration::from_secs(100));
        assert_eq!(batch.percentile(0), Duration::from_secs(1));
        assert!((batch.orders_per_second() - 10.0).abs() < 1e-9);
    }
}
