//! The inventory rules, pure: no SDK, no async runtime, no JSON.
//!
//! - `OrderPlaced` reserves every line if all are in stock, and otherwise
//!   reserves nothing and names the short skus.
//! - `PaymentDeclined` releases a reservation. If it arrives before the
//!   order, it is remembered so that the order is never reserved.
//! - A second `OrderPlaced` for an order already decided changes nothing,
//!   and a release happens at most once.

use orderflow_contracts::{
    Event, ReservedLine, ShortLine, StockReleased, StockReserved, StockUnavailable,
};
use orderflow_runtime::Decision;
use orderflow_runtime::store::CounterChange;
use serde::{Deserialize, Serialize};

use crate::stock_key;

/// What inventory knows about one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryState {
    /// Where the reservation stands.
    pub status: Status,
    /// Payment was declined (possibly before the order arrived).
    pub payment_declined: bool,
}

/// Where an order's reservation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// No order seen yet.
    #[default]
    Pending,
    /// Every line is reserved.
    Reserved {
        /// The reserved lines.
        lines: Vec<ReservedLine>,
    },
    /// Some lines were short; nothing was reserved.
    Unavailable {
        /// The short lines.
        short: Vec<ShortLine>,
    },
    /// Reserved, then released.
    Released {
        /// The released lines.
        lines: Vec<ReservedLine>,
    },
    /// The order arrived after its payment was declined: not reserved.
    NotReserved,
}

/// Decides what `event` does. `stock` holds the current level of each
/// line's sku for an `OrderPlaced` (in line order; `None` if the sku has no
/// stock record).
pub fn decide(
    state: InventoryState,
    event: &Event,
    stock: &[Option<i64>],
) -> Decision<InventoryState> {
    match (event, &state.status) {
        (Event::OrderPlaced(_), Status::Pending) if state.payment_declined => decision(
            InventoryState {
                status: Status::NotReserved,
                ..state
            },
            Vec::new(),
            Vec::new(),
        ),
        (Event::OrderPlaced(order), Status::Pending) => {
            let short: Vec<ShortLine> = order
                .items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let available = stock.get(i).copied().flatten().unwrap_or(0).max(0);
                    (available < i64::from(item.quantity.get())).then(|| ShortLine {
                        sku: item.sku.clone(),
                        requested: item.quantity.get(),
                        available: available as u64,
                    })
                })
                .collect();
            if !short.is_empty() {
                let event = Event::StockUnavailable(StockUnavailable {
                    short: short.clone(),
                });
                return decision(
                    InventoryState {
                        status: Status::Unavailable { short },
                        ..state
                    },
                    Vec::new(),
                    vec![event],
                );
            }
            let lines: Vec<ReservedLine> = order
                .items
                .iter()
                .map(|item| ReservedLine {
                    sku: item.sku.clone(),
                    quantity: item.quantity,
                })
                .collect();
            let counters = changes(&lines, -1);
            let event = Event::StockReserved(StockReserved {
                lines: lines.clone(),
                ship_to: order.shipping_address.clone(),
            });
            decision(
                InventoryState {
                    status: Status::Reserved { lines },
                    ..state
                },
                counters,
                vec![event],
            )
        }
        (Event::PaymentDeclined(_), Status::Reserved { lines }) => {
            let lines = lines.clone();
            let counters = changes(&lines, 1);
            let event = Event::StockReleased(StockReleased {
                lines: lines.clone(),
            });
            decision(
                InventoryState {
                    status: Status::Released { lines },
                    payment_declined: true,
                },
                counters,
                vec![event],
            )
        }
        (Event::PaymentDeclined(_), _) => decision(
            InventoryState {
                payment_declined: true,
                ..state
            },
            Vec::new(),
            Vec::new(),
        ),
        _ => decision(state, Vec::new(), Vec::new()),
    }
}

fn changes(lines: &[ReservedLine], sign: i64) -> Vec<CounterChange> {
    lines
        .iter()
        .map(|line| CounterChange {
            key: stock_key(&line.sku),
            delta: sign * i64::from(line.quantity.get()),
        })
        .collect()
}

fn decision(
    state: InventoryState,
    counters: Vec<CounterChange>,
    emit: Vec<Event>,
) -> Decision<InventoryState> {
    Decision {
        state,
        counters,
        emit,
    }
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::{DeclineReason, PaymentDeclined};
    use orderflow_runtime::testing::fixtures::{order_placed, sku};

    use super::*;

    fn order() -> Event {
        order_placed(&[("SKU-A", 2, 100), ("SKU-B", 1, 50)], "tok_ok")
    }

    fn declined() -> Event {
        Event::PaymentDeclined(PaymentDeclined {
            reason: DeclineReason::CardDeclined,
        })
    }

    fn kinds(d: &Decision<InventoryState>) -> Vec<&'static str> {
        d.emit.iter().map(|e| e.kind().detail_type()).collect()
    }

    fn change(key: &str, delta: i64) -> CounterChange {
        CounterChange {
            key: key.into(),
            delta,
        }
    }

    #[test]
    fn an_order_in_stock_reserves_every_line() {
        let d = decide(InventoryState::default(), &order(), &[Some(2), Some(9)]);
        assert_eq!(kinds(&d), ["StockReserved"]);
        assert_eq!(
            d.counters,
            [change("STOCK#SKU-A", -2), change("STOCK#SKU-B", -1)]
        );
        assert!(matches!(d.state.status, Status::Reserved { .. }));
    }

    #[test]
    fn one_short_line_reserves_nothing_and_names_only_the_short_skus() {
        let d = decide(InventoryState::default(), &order(), &[Some(1), None]);
        assert!(d.counters.is_empty(), "all or nothing");
        let Event::StockUnavailable(u) = &d.emit[0] else {
            panic!("{:?}", d.emit)
        };
        let short: Vec<_> = u
            .short
            .iter()
            .map(|s| (s.sku.clone(), s.requested, s.available))
            .collect();
        assert_eq!(short, [(sku("SKU-A"), 2, 1), (sku("SKU-B"), 1, 0)]);
    }

    #[test]
    fn negative_stock_counts_as_none() {
        let d = decide(InventoryState::default(), &order(), &[Some(-5), Some(9)]);
        let Event::StockUnavailable(u) = &d.emit[0] else {
            panic!("{:?}", d.emit)
        };
        assert_eq!(u.short[0].available, 0);
    }

    #[test]
    fn payment_declined_releases_a_reservation_once() {
        let reserved = decide(InventoryState::default(), &order(), &[Some(5), Some(5)]).state;
        let d = decide(reserved, &declined(), &[]);
        assert_eq!(kinds(&d), ["StockReleased"]);
        assert_eq!(
            d.counters,
            [change("STOCK#SKU-A", 2), change("STOCK#SKU-B", 1)]
        );
        let again = decide(d.state, &declined(), &[]);
        assert!(
            again.emit.is_empty() && again.counters.is_empty(),
            "released once"
        );
    }

    #[test]
    fn payment_declined_first_means_the_order_is_never_reserved() {
        let d = decide(InventoryState::default(), &declined(), &[]);
        assert!(d.emit.is_empty());
        let d = decide(d.state, &order(), &[Some(5), Some(5)]);
        assert!(d.emit.is_empty() && d.counters.is_empty());
        assert_eq!(d.state.status, Status::NotReserved);
    }

    #[test]
    fn a_second_order_for_a_decided_order_changes_nothing() {
        let reserved = decide(InventoryState::default(), &order(), &[Some(5), Some(5)]).state;
        let d = decide(reserved.clone(), &order(), &[Some(5), Some(5)]);
        assert!(d.emit.is_empty() && d.counters.is_empty());
        assert_eq!(d.state, reserved);
    }

    #[test]
    fn payment_declined_after_unavailable_releases_nothing() {
        let short = decide(InventoryState::default(), &order(), &[Some(0), Some(0)]).state;
        let d = decide(short, &declined(), &[]);
        assert!(d.emit.is_empty() && d.counters.is_empty());
    }
}
