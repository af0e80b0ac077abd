//! The payment rules, pure: no SDK, no async runtime, no JSON.
//!
//! - `OrderPlaced` asks the provider to authorize the total, unless stock
//!   was already reported unavailable for the order: then it is declined
//!   without charging.
//! - `StockUnavailable` voids an authorized payment. If it arrives before
//!   the order, it is remembered so that the order is never charged.
//! - A second `OrderPlaced` for an order already decided changes nothing.

use orderflow_contracts::{
    AuthorizationId, Currency, DeclineReason, Event, MinorUnits, OrderId, PaymentAuthorized,
    PaymentDeclined, PaymentVoided,
};
use orderflow_runtime::Decision;
use serde::{Deserialize, Serialize};

use crate::gateway::{GatewayCall, GatewayResult};

/// What payment knows about one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    /// Where the payment stands.
    pub status: Status,
    /// Stock was reported unavailable (possibly before the order arrived).
    pub stock_unavailable: bool,
}

/// Where an order's payment stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// No order seen yet.
    #[default]
    Pending,
    /// Authorized and not voided.
    Authorized {
        /// The provider's authorization.
        authorization_id: AuthorizationId,
        /// The amount.
        amount_minor: MinorUnits,
        /// Its currency.
        currency: Currency,
    },
    /// Declined; never charged.
    Declined {
        /// Why.
        reason: DeclineReason,
    },
    /// Authorized, then voided.
    Voided {
        /// The voided authorization.
        authorization_id: AuthorizationId,
    },
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Apply this decision; no provider call is needed.
    Apply(Decision<PaymentState>),
    /// Call the provider, then [`settle`] with its answer.
    Call(GatewayCall),
}

/// Decides what `event` does to an order's payment.
pub fn decide(state: &PaymentState, order_id: &OrderId, event: &Event) -> Plan {
    match (event, &state.status) {
        (Event::OrderPlaced(_), Status::Pending) if state.stock_unavailable => {
            Plan::Apply(declined(state.clone(), DeclineReason::StockUnavailable))
        }
        (Event::OrderPlaced(order), Status::Pending) => Plan::Call(GatewayCall::Authorize {
            idempotency_key: format!("authorize-{order_id}"),
            order_id: order_id.clone(),
            amount_minor: order.total_minor,
            currency: order.currency,
            token: order.payment_token.clone(),
        }),
        (Event::StockUnavailable(_), Status::Authorized { authorization_id, .. }) => {
            Plan::Call(GatewayCall::Void {
                idempotency_key: format!("void-{order_id}"),
                authorization_id: authorization_id.clone(),
            })
        }
        (Event::StockUnavailable(_), Status::Pending) => Plan::Apply(unchanged(PaymentState {
            stock_unavailable: true,
            ..state.clone()
        })),
        // Already decided, already voided, or not ours: nothing changes.
        _ => Plan::Apply(unchanged(state.clone())),
    }
}

/// Applies the provider's answer to a [`GatewayCall`] made for `state`.
pub fn settle(state: PaymentState, call: &GatewayCall, result: GatewayResult) -> Decision<PaymentState> {
    match (call, result, &state.status) {
        (GatewayCall::Authorize { amount_minor, currency, .. }, GatewayResult::Authorized(id), _) => {
            let event = PaymentAuthorized {
                authorization_id: id.clone(),
                amount_minor: *amount_minor,
                currency: *currency,
            };
            Decision {
                state: PaymentState {
                    status: Status::Authorized {
                        authorization_id: id,
                        amount_minor: *amount_minor,
                        currency: *currency,
                    },
                    ..state
                },
                counters: Vec::new(),
                emit: vec![Event::PaymentAuthorized(event)],
            }
        }
        (GatewayCall::Authorize { .. }, GatewayResult::Declined(reason), _) => declined(state, reason),
        (
            GatewayCall::Void { .. },
            GatewayResult::Voided,
            Status::Authorized {
                authorization_id,
                amount_minor,
                currency,
            },
        ) => {
            let event = PaymentVoided {
                authorization_id: authorization_id.clone(),
                amount_minor: *amount_minor,
                currency: *currency,
            };
            Decision {
                state: PaymentState {
                    status: Status::Voided {
                        authorization_id: authorization_id.clone(),
                    },
                    stock_unavailable: true,
                },
                counters: Vec::new(),
                emit: vec![Event::PaymentVoided(event)],
            }
        }
        // An answer that does not fit the call or the state changes nothing.
        _ => unchanged(state),
    }
}

fn declined(state: PaymentState, reason: DeclineReason) -> Decision<PaymentState> {
    Decision {
        state: PaymentState {
            status: Status::Declined { reason },
            ..state
        },
        counters: Vec::new(),
        emit: vec![Event::PaymentDeclined(PaymentDeclined { reason })],
    }
}

fn unchanged(state: PaymentState) -> Decision<PaymentState> {
    Decision {
        state,
        counters: Vec::new(),
        emit: Vec::new(),
    }
}
