//! orderflow's payment function.
//!
//! Consumes `OrderPlaced` and `StockUnavailable`; emits `PaymentAuthorized`,
//! `PaymentDeclined` and `PaymentVoided`.
//!
//! Layout:
//! - [`decide`]: the rules, as pure functions over [`PaymentState`].
//! - [`gateway`]: the [`gateway::PaymentGateway`] port and its simulator.
//! - [`Payment`]: the [`Service`] that wires the two together for the
//!   shared runtime.

pub mod decide;
pub mod gateway;

use orderflow_contracts::EventKind;
use orderflow_runtime::{Decision, Input, RecordError, Service};

pub use decide::{PaymentState, Plan};
pub use gateway::{GatewayCall, PaymentGateway, Simulator};

/// The payment [`Service`].
#[derive(Debug)]
pub struct Payment<G> {
    gateway: G,
}

impl<G: PaymentGateway> Payment<G> {
    /// A payment service that authorizes through `gateway`.
    pub fn new(gateway: G) -> Self {
        Self { gateway }
    }
}

impl<G: PaymentGateway> Service for Payment<G> {
    type State = PaymentState;
    const FUNCTION: &'static str = "payment";

    fn consumes(&self, kind: EventKind) -> bool {
        matches!(kind, EventKind::OrderPlaced | EventKind::StockUnavailable)
    }

    async fn handle(
        &self,
        input: Input<'_, PaymentState>,
    ) -> Result<Decision<PaymentState>, RecordError> {
        match decide::decide(
            &input.state,
            &input.message.meta.order_id,
            &input.message.event,
        ) {
            Plan::Apply(decision) => Ok(decision),
            Plan::Call(call) => {
                let result = self.gateway.call(&call).await?;
                Ok(decide::settle(input.state, &call, result))
            }
        }
    }
}
