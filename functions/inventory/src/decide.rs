//! The inventory rules, pure: no SDK, no async runtime, no JSON.
//!
//! - `OrderPlaced` reserves every line if all are in stock, and otherwise
//!   reserves nothing and names the short skus. A stock record of zero or
//!   less is out of stock.
//! - `OrderPlaced` naming a sku with no stock record at all is refused
//!   ([`UnknownSkus`]) rather than answered: that is a gap in the catalog or
//!   the seeding, which an operator can fix by loading the stock and
//!   redriving the order, whereas `StockUnavailable` would void the payment
//!   and end the order for good.
//! - `PaymentDeclined` releases a reservation. If it arrives before the
//!   order, it is remembered so that the order is never reserved (whatever
//!   its skus), and the order then says so: `StockNotReserved`.
//! - A second `OrderPlaced` for an order already decided changes nothing,
//!   and a release happens at most once.

use std::fmt;

use orderflow_contracts::{
    Event, LineItem, Message, NotReservedReason, OrderPlaced, ReservedLine, ShortLine, Sku,
    StockNotReserved, StockReleased, StockReserved, StockUnavailable,
};
use orderflow_runtime::store::CounterChange;
use orderflow_runtime::{Decision, Refusal};
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

/// An order names skus that have no stock record, listed once each in line
/// order. No retry can change that; loading their stock and redriving the
/// order can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSkus(pub Vec<Sku>);

impl UnknownSkus {
    /// The error kind its dead letter carries.
    pub const KIND: &'static str = "unknown_sku";
}

// The skus are not quoted: the runtime redacts double-quoted values from
// error texts, and an operator needs these.
impl fmt::Display for UnknownSkus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no stock record for ")?;
        for (i, sku) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(sku.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownSkus {}

impl From<UnknownSkus> for Refusal {
    fn from(unknown: UnknownSkus) -> Self {
        Refusal {
            kind: UnknownSkus::KIND,
            message: format!("{unknown}; load their stock, then redrive this message"),
        }
    }
}

/// What inventory's rules make of an event: a decision, or a refusal.
pub type Plan = orderflow_runtime::Plan<InventoryState>;

/// Decides what `message` does. `counters` holds the current stock level of
/// each line's sku for an `OrderPlaced` (in line order; `None` if the sku
/// has no stock record), as [`crate::Inventory`] asks for them.
///
/// Refuses only an `OrderPlaced` still to be reserved that names a sku with
/// no stock record ([`UnknownSkus`]).
pub fn decide(state: InventoryState, message: &Message, counters: &[Option<i64>]) -> Plan {
    match (&message.event, &state.status) {
        (Event::OrderPlaced(_), Status::Pending) if state.payment_declined => {
            Plan::Apply(not_reserved(state))
        }
        (Event::OrderPlaced(order), Status::Pending) => match reserve(state, order, counters) {
            Ok(decision) => Plan::Apply(decision),
            Err(unknown) => Plan::Refuse(unknown.into()),
        },
        (Event::PaymentDeclined(_), Status::Reserved { lines }) => {
            Plan::Apply(release(lines.clone()))
        }
        (Event::PaymentDeclined(_), _) => Plan::unchanged(InventoryState {
            payment_declined: true,
            ..state
        }),
        _ => Plan::unchanged(state),
    }
}

/// An order arriving after its payment was declined: nothing reserved, and
/// the order says why.
fn not_reserved(state: InventoryState) -> Decision<InventoryState> {
    Decision::emit(
        InventoryState {
            status: Status::NotReserved,
            ..state
        },
        vec![Event::StockNotReserved(StockNotReserved {
            reason: NotReservedReason::PaymentDeclined,
        })],
    )
}

/// Reserves every line of a pending order, or nothing if any line is short.
fn reserve(
    state: InventoryState,
    order: &OrderPlaced,
    stock: &[Option<i64>],
) -> Result<Decision<InventoryState>, UnknownSkus> {
    let levels = levels(&order.items, stock)?;
    let short = short_lines(&order.items, levels);
    if !short.is_empty() {
        let event = Event::StockUnavailable(StockUnavailable {
            short: short.clone(),
        });
        return Ok(Decision::emit(
            InventoryState {
                status: Status::Unavailable { short },
                ..state
            },
            vec![event],
        ));
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
    Ok(Decision::emit(
        InventoryState {
            status: Status::Reserved { lines },
            ..state
        },
        vec![event],
    )
    .counting(counters))
}

/// The lines whose sku has less stock than they ask for, in line order.
fn short_lines(items: &[LineItem], levels: Vec<i64>) -> Vec<ShortLine> {
    items
        .iter()
        .zip(levels)
        .filter_map(|(item, level)| {
            // A record below zero, which commits never leave, still
            // has nothing to take.
            let available = level.max(0);
            (available < i64::from(item.quantity.get())).then(|| ShortLine {
                sku: item.sku.clone(),
                requested: item.quantity.get(),
                available: available as u64,
            })
        })
        .collect()
}

/// Releases a reservation after the payment was declined, returning its
/// stock.
fn release(lines: Vec<ReservedLine>) -> Decision<InventoryState> {
    let counters = changes(&lines, 1);
    let event = Event::StockReleased(StockReleased {
        lines: lines.clone(),
    });
    Decision::emit(
        InventoryState {
            status: Status::Released { lines },
            payment_declined: true,
        },
        vec![event],
    )
    .counting(counters)
}

/// The stock level of each line's sku, or every sku with no stock record.
fn levels(items: &[LineItem], stock: &[Option<i64>]) -> Result<Vec<i64>, UnknownSkus> {
    let mut levels = Vec::with_capacity(items.len());
    let mut unknown: Vec<Sku> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match stock.get(i).copied().flatten() {
            Some(level) => levels.push(level),
            None if !unknown.contains(&item.sku) => unknown.push(item.sku.clone()),
            None => {}
        }
    }
    if unknown.is_empty() {
        Ok(levels)
    } else {
        Err(UnknownSkus(unknown))
    }
}

/// The counter changes that take (`sign` -1) or return (`sign` 1) `lines`.
fn changes(lines: &[ReservedLine], sign: i64) -> Vec<CounterChange> {
    lines
        .iter()
        .map(|line| CounterChange {
            key: stock_key(&line.sku),
            delta: sign * i64::from(line.quantity.get()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::{DeclineReason, PaymentDeclined};
    use orderflow_runtime::testing::fixtures::{message, order_placed, sku};

    use super::*;

    fn order() -> Event {
        order_placed(&[("SKU-A", 2, 100), ("SKU-B", 1, 50)], "tok_ok")
    }

    fn declined() -> Event {
        Event::PaymentDeclined(PaymentDeclined {
            reason: DeclineReason::CardDeclined,
        })
    }

    /// A decision that must not be refused.
    fn ok(state: InventoryState, event: &Event, stock: &[Option<i64>]) -> Decision<InventoryState> {
        match decide(state, &message(event.clone()), stock) {
            Plan::Apply(decision) => decision,
            other => panic!("{other:?}"),
        }
    }

    /// The refusal of a pending order.
    fn refused(event: &Event, stock: &[Option<i64>]) -> Refusal {
        match decide(InventoryState::default(), &message(event.clone()), stock) {
            Plan::Refuse(refusal) => refusal,
            other => panic!("{other:?}"),
        }
    }

    /// The skus a refusal names, as the operator reads them.
    fn named(refusal: &Refusal) -> &str {
        assert_eq!(refusal.kind, "unknown_sku");
        refusal
            .message
            .strip_suffix("; load their stock, then redrive this message")
            .unwrap_or_else(|| panic!("says how to fix it: {}", refusal.message))
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

    fn short_lines(d: &Decision<InventoryState>) -> Vec<(Sku, u32, u64)> {
        let Some(Event::StockUnavailable(u)) = d.emit.first() else {
            panic!("{:?}", d.emit)
        };
        u.short
            .iter()
            .map(|s| (s.sku.clone(), s.requested, s.available))
            .collect()
    }

    #[test]
    fn an_order_in_stock_reserves_every_line() {
        let d = ok(InventoryState::default(), &order(), &[Some(2), Some(9)]);
        assert_eq!(kinds(&d), ["StockReserved"]);
        assert_eq!(
            d.counters,
            [change("STOCK#SKU-A", -2), change("STOCK#SKU-B", -1)]
        );
        assert!(matches!(d.state.status, Status::Reserved { .. }));
    }

    #[test]
    fn one_short_line_reserves_nothing_and_names_only_the_short_skus() {
        let three = order_placed(
            &[("SKU-A", 2, 100), ("SKU-B", 1, 50), ("SKU-C", 1, 10)],
            "tok_ok",
        );
        let d = ok(
            InventoryState::default(),
            &three,
            &[Some(1), Some(0), Some(5)],
        );
        assert!(d.counters.is_empty(), "all or nothing");
        assert_eq!(
            short_lines(&d),
            [(sku("SKU-A"), 2, 1), (sku("SKU-B"), 1, 0)]
        );
    }

    #[test]
    fn a_known_sku_with_no_stock_is_unavailable_not_unknown() {
        let d = ok(InventoryState::default(), &order(), &[Some(0), Some(9)]);
        assert_eq!(short_lines(&d), [(sku("SKU-A"), 2, 0)]);
        assert!(matches!(d.state.status, Status::Unavailable { .. }));
    }

    #[test]
    fn negative_stock_counts_as_none_available() {
        let d = ok(InventoryState::default(), &order(), &[Some(-5), Some(9)]);
        assert_eq!(short_lines(&d), [(sku("SKU-A"), 2, 0)]);
    }

    #[test]
    fn skus_without_a_stock_record_refuse_the_order_and_are_all_named() {
        assert_eq!(
            named(&refused(&order(), &[None, None])),
            "no stock record for SKU-A, SKU-B",
            "named, and unquoted so that redaction keeps them"
        );
    }

    #[test]
    fn an_unknown_sku_refuses_the_order_even_beside_a_short_line() {
        assert_eq!(
            named(&refused(&order(), &[Some(0), None])),
            "no stock record for SKU-B"
        );
    }

    #[test]
    fn an_unknown_sku_on_two_lines_is_named_once() {
        let twice = order_placed(&[("SKU-A", 1, 100), ("SKU-A", 2, 100)], "tok_ok");
        assert_eq!(
            named(&refused(&twice, &[None, None])),
            "no stock record for SKU-A"
        );
    }

    #[test]
    fn payment_declined_releases_a_reservation_once() {
        let reserved = ok(InventoryState::default(), &order(), &[Some(5), Some(5)]).state;
        let d = ok(reserved, &declined(), &[]);
        assert_eq!(kinds(&d), ["StockReleased"]);
        assert_eq!(
            d.counters,
            [change("STOCK#SKU-A", 2), change("STOCK#SKU-B", 1)]
        );
        let again = ok(d.state, &declined(), &[]);
        assert!(
            again.emit.is_empty() && again.counters.is_empty(),
            "released once"
        );
    }

    #[test]
    fn payment_declined_first_means_the_order_is_never_reserved_and_says_so() {
        let d = ok(InventoryState::default(), &declined(), &[]);
        assert!(d.emit.is_empty());
        let d = ok(d.state, &order(), &[Some(5), Some(5)]);
        assert!(d.counters.is_empty());
        assert_eq!(
            d.emit,
            [Event::StockNotReserved(StockNotReserved {
                reason: NotReservedReason::PaymentDeclined
            })]
        );
        assert_eq!(d.state.status, Status::NotReserved);
    }

    #[test]
    fn payment_declined_first_with_unknown_skus_is_not_reserved_without_error() {
        let d = ok(InventoryState::default(), &declined(), &[]);
        let d = ok(d.state, &order(), &[None, None]);
        assert!(d.counters.is_empty());
        assert_eq!(d.emit.len(), 1);
        assert_eq!(d.state.status, Status::NotReserved);
    }

    #[test]
    fn a_second_order_for_a_decided_order_changes_nothing() {
        let reserved = ok(InventoryState::default(), &order(), &[Some(5), Some(5)]).state;
        let d = ok(reserved.clone(), &order(), &[Some(5), Some(5)]);
        assert!(d.emit.is_empty() && d.counters.is_empty());
        assert_eq!(d.state, reserved);
    }

    #[test]
    fn a_second_order_for_a_decided_order_changes_nothing_even_if_its_skus_are_gone() {
        let reserved = ok(InventoryState::default(), &order(), &[Some(5), Some(5)]).state;
        let d = ok(reserved.clone(), &order(), &[None, None]);
        assert!(d.emit.is_empty() && d.counters.is_empty());
        assert_eq!(d.state, reserved);
    }

    #[test]
    fn payment_declined_after_unavailable_releases_nothing() {
        let short = ok(InventoryState::default(), &order(), &[Some(0), Some(0)]).state;
        let d = ok(short, &declined(), &[]);
        assert!(d.emit.is_empty() && d.counters.is_empty());
    }
}
