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
pub fn decide(state: InventoryState, event: &Event, stock: &[Option<i64>]) -> Decision<InventoryState> {
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
                let event = Event::StockUnavailable(StockUnavailable { short: short.clone() });
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
            let event = Event::StockReleased(StockReleased { lines: lines.clone() });
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
    Decision { state, counters, emit }
}
