//! orderflow's inventory function.
//!
//! Consumes `OrderPlaced` and `PaymentDeclined`; emits `StockReserved`,
//! `StockUnavailable`, `StockReleased` and `StockNotReserved`: every order's
//! end in inventory is an event on the bus.
//!
//! Stock lives in the function's table as one counter per sku
//! (`STOCK#<sku>`). A reservation takes every line or none: the decrements
//! are committed in one transaction, each conditioned on the counter staying
//! at or above zero, so stock never goes negative whatever the order or the
//! number of deliveries.
//!
//! An order naming a sku that has no counter at all is not out of stock but
//! unknown to the warehouse, a gap in the catalog or the seeding: it goes
//! to the DLQ with the error kind `unknown_sku` and a message naming the
//! skus. Once their stock is loaded, redriving the message (`orderflow dlq
//! redrive inventory --id <message-id>`) decides the order afresh. A counter
//! at zero or below is out of stock: `StockUnavailable`, which voids the
//! payment and ends the order for good.
//!
//! In memory mode (`ORDERFLOW_ADAPTERS=memory`) the counters start from the
//! file `ORDERFLOW_MEMORY_STOCK` names, such as `events/stock.json`.
//!
//! Layout:
//! - [`decide`]: the rules, pure, over [`InventoryState`] and stock levels.
//! - [`stock_file`]: memory mode's stock, read at cold start.
//! - [`Inventory`]: the [`Service`] for the shared runtime.

pub mod decide;
pub mod stock_file;

use orderflow_contracts::{Event, EventKind, Message, Sku};
use orderflow_runtime::config::{Adapters, Config, ConfigError};
use orderflow_runtime::{Decision, Input, RecordError, Service};

pub use decide::{InventoryState, Plan, UnknownSkus};

/// The counter key of a sku's stock.
pub fn stock_key(sku: &Sku) -> String {
    format!("STOCK#{sku}")
}

/// The inventory [`Service`].
#[derive(Debug, Default)]
pub struct Inventory {
    /// The stock counters memory mode's store starts with.
    memory_stock: Vec<(String, i64)>,
}

impl Inventory {
    /// Inventory as `config` and the process environment configure it: in
    /// memory mode, with the stock of [`stock_file::MEMORY_STOCK`].
    pub fn from_env(config: &Config) -> Result<Self, ConfigError> {
        Self::from_lookup(config.adapters, |name| std::env::var(name).ok())
    }

    /// [`Inventory::from_env`], reading the variables through `lookup`.
    pub fn from_lookup(
        adapters: Adapters,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            memory_stock: stock_file::memory_stock(adapters, lookup)?,
        })
    }
}

impl Service for Inventory {
    type State = InventoryState;
    type Contract = Message;
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

    fn memory_counters(&self) -> Vec<(String, i64)> {
        self.memory_stock.clone()
    }

    async fn handle(
        &self,
        input: Input<'_, InventoryState>,
    ) -> Result<Decision<InventoryState>, RecordError> {
        decide::decide(input.state, input.message, &input.counters).into_decision()
    }
}
