//! orderflow's inventory function.
//!
//! Consumes `OrderPlaced` and `PaymentDeclined`; emits `StockReserved`,
//! `StockUnavailable` and `StockReleased`.
//!
//! Stock lives in the function's table as one counter per sku
//! (`STOCK#<sku>`). A reservation takes every line or none: the decrements
//! are committed in one transaction, each conditioned on the counter staying
//! at or above zero, so stock never goes negative whatever the order or the
//! number of deliveries.
//!
//! Layout:
//! - [`decide`]: the rules, pure, over [`InventoryState`] and stock levels.
//! - [`Inventory`]: the [`Service`] for the shared runtime.

pub mod decide;

use orderflow_contracts::{Event, EventKind, Message, Sku};
use orderflow_runtime::{Decision, Input, RecordError, Service};

pub use decide::InventoryState;

/// The counter key of a sku's stock.
pub fn stock_key(sku: &Sku) -> String {
    format!("STOCK#{sku}")
}

/// The inventory [`Service`].
#[derive(Debug, Default)]
pub struct Inventory;

impl Service for Inventory {
    type State = InventoryState;
    const FUNCTION: &'static str = "inventory";

    fn consumes(&self, kind: EventKind) -> bool {
        matches!(kind, EventKind::OrderPlaced | EventKind::PaymentDeclined)
    }

    fn counters(&self, message: &Message) -> Vec<String> {
        match &message.event {
            Event::OrderPlaced(order) => order.items.iter().map(|i| stock_key(&i.sku)).collect(),
            _ => Vec::new(),
        }
    }

    async fn handle(
        &self,
        input: Input<'_, InventoryState>,
    ) -> Result<Decision<InventoryState>, RecordError> {
        Ok(decide::decide(
            input.state,
            &input.message.event,
            &input.counters,
        ))
    }
}
