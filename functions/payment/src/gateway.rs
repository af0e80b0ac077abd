//! The payment provider port.
//!
//! A real provider is an implementation of [`PaymentGateway`];
//! [`crate::simulator::Simulator`] is the one orderflow ships. Every call
//! carries an idempotency key derived from the order, so a call made again
//! (after a timeout, a crash or a re-decision) gets the answer the first one
//! got and never charges twice.

use std::future::Future;

use orderflow_contracts::{
    AuthorizationId, Currency, DeclineReason, MinorUnits, OrderId, PaymentToken,
};
use orderflow_runtime::RecordError;

/// A call to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayCall {
    /// Authorize an amount on a payment method: a hold on the card.
    Authorize {
        /// The provider's idempotency key: one authorization per order.
        idempotency_key: String,
        /// The order.
        order_id: OrderId,
        /// The amount.
        amount_minor: MinorUnits,
        /// Its currency.
        currency: Currency,
        /// The payment method.
        token: PaymentToken,
    },
    /// Release an authorization's hold without charging.
    Void {
        /// The provider's idempotency key: one void per order.
        idempotency_key: String,
        /// The authorization to void.
        authorization_id: AuthorizationId,
    },
    /// Turn an authorization's hold into a charge of its whole amount.
    Capture {
        /// The provider's idempotency key: one capture per order.
        idempotency_key: String,
        /// The authorization to capture.
        authorization_id: AuthorizationId,
        /// The amount, which is the authorized amount.
        amount_minor: MinorUnits,
    },
}

/// The idempotency key of `order_id`'s authorization.
pub fn authorize_key(order_id: &OrderId) -> String {
    format!("authorize-{order_id}")
}

impl GatewayCall {
    /// The call that authorizes `order_id`'s total.
    pub fn authorize(
        order_id: &OrderId,
        amount_minor: MinorUnits,
        currency: Currency,
        token: PaymentToken,
    ) -> Self {
        Self::Authorize {
            idempotency_key: authorize_key(order_id),
            order_id: order_id.clone(),
            amount_minor,
            currency,
            token,
        }
    }
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayResult {
    /// Authorized, under this id.
    Authorized(AuthorizationId),
    /// Declined, for this reason.
    Declined(DeclineReason),
    /// Voided.
    Voided,
    /// Captured.
    Captured,
}

/// A payment provider.
pub trait PaymentGateway: Send + Sync {
    /// Makes one call. A transient error means "try again with the same
    /// idempotency key": the call may or may not have happened. A permanent
    /// one is the provider refusing the call for good (voiding a captured
    /// authorization, say).
    fn call(
        &self,
        call: &GatewayCall,
    ) -> impl Future<Output = Result<GatewayResult, RecordError>> + Send;
}
