//! orderflow's payment function.
//!
//! Consumes `OrderPlaced`, `StockUnavailable` and `ShipmentScheduled`;
//! emits `PaymentAuthorized`, `PaymentDeclined`, `PaymentVoided` and
//! `PaymentCaptured`. Every order's payment ends captured (it shipped),
//! voided (stock was short) or declined.
//!
//! Layout:
//! - [`decide`]: the rules, as pure functions over [`PaymentState`].
//! - [`gateway`]: the [`gateway::PaymentGateway`] port.
//! - [`simulator`]: the provider orderflow ships, a deterministic
//!   simulator that keeps a [`ledger`].
//! - [`ledger`]: the simulator's record of every authorization, in memory
//!   or in DynamoDB.
//! - [`Payment`]: the [`Service`] that wires the rules and the provider
//!   together for the shared runtime.

pub mod decide;
pub mod gateway;
pub mod ledger;
pub mod simulator;

use orderflow_contracts::{EventKind, Message};
use orderflow_runtime::{Decision, Input, RecordError, Service};

pub use decide::{PaymentState, Plan};
pub use gateway::{GatewayCall, PaymentGateway};
pub use ledger::{AnyLedger, DynamoLedger, Hold, HoldStatus, Ledger, MemoryLedger};
pub use simulator::Simulator;

/// The payment [`Service`].
#[derive(Debug)]
pub struct Payment<G> {
    gateway: G,
}

impl<G: PaymentGateway> Payment<G> {
    /// A payment service that calls the provider through `gateway`.
    pub fn new(gateway: G) -> Self {
        Self { gateway }
    }

    /// The provider.
    pub fn gateway(&self) -> &G {
        &self.gateway
    }
}

impl<G: PaymentGateway> Service for Payment<G> {
    type State = PaymentState;
    type Contract = Message;
    const FUNCTION: &'static str = "payment";

    fn consumes(&self, kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::OrderPlaced | EventKind::StockUnavailable | EventKind::ShipmentScheduled
        )
    }

    async fn handle(
        &self,
        input: Input<'_, PaymentState>,
    ) -> Result<Decision<PaymentState>, RecordError> {
        let Input {
            message,
            state,
            counters,
            ahead,
        } = input;
        let ahead = &ahead;
        decide::decide(state, message, &counters)
            .carry_out(|effect| async move {
                if effect.write_ahead {
                    ahead.write(&effect.state).await?;
                }
                let result = self.gateway.call(&effect.call).await?;
                Ok(decide::settle(effect, &message.meta.order_id, result))
            })
            .await
    }
}
