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
        (
            Event::StockUnavailable(_),
            Status::Authorized {
                authorization_id, ..
            },
        ) => Plan::Call(GatewayCall::Void {
            idempotency_key: format!("void-{order_id}"),
            authorization_id: authorization_id.clone(),
        }),
        (Event::StockUnavailable(_), Status::Pending) => Plan::Apply(unchanged(PaymentState {
            stock_unavailable: true,
            ..state.clone()
        })),
        // Already decided, already voided, or not ours: nothing changes.
        _ => Plan::Apply(unchanged(state.clone())),
    }
}

/// Applies the provider's answer to a [`GatewayCall`] made for `state`.
pub fn settle(
    state: PaymentState,
    call: &GatewayCall,
    result: GatewayResult,
) -> Decision<PaymentState> {
    match (call, result, &state.status) {
        (
            GatewayCall::Authorize {
                amount_minor,
                currency,
                ..
            },
            GatewayResult::Authorized(id),
            _,
        ) => {
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
        (GatewayCall::Authorize { .. }, GatewayResult::Declined(reason), _) => {
            declined(state, reason)
        }
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

#[cfg(test)]
mod tests {
    use orderflow_contracts::{ShortLine, Sku, StockUnavailable};
    use orderflow_runtime::testing::fixtures::order_placed;

    use super::*;

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn order_id() -> OrderId {
        ok(OrderId::new("ord-1"))
    }

    fn placed(token: &str) -> Event {
        order_placed(&[("SKU-A", 2, 500)], token)
    }

    fn unavailable() -> Event {
        Event::StockUnavailable(StockUnavailable {
            short: vec![ShortLine {
                sku: ok(Sku::new("SKU-A")),
                requested: 2,
                available: 0,
            }],
        })
    }

    fn auth() -> AuthorizationId {
        ok(AuthorizationId::new("auth_1"))
    }

    fn authorized() -> PaymentState {
        PaymentState {
            status: Status::Authorized {
                authorization_id: auth(),
                amount_minor: MinorUnits(1000),
                currency: ok(Currency::new("EUR")),
            },
            stock_unavailable: false,
        }
    }

    /// The provider call a fresh order asks for.
    fn authorize_call() -> GatewayCall {
        match decide(&PaymentState::default(), &order_id(), &placed("tok_ok")) {
            Plan::Call(call) => call,
            other => panic!("{other:?}"),
        }
    }

    fn applied(plan: Plan) -> Decision<PaymentState> {
        match plan {
            Plan::Apply(d) => d,
            Plan::Call(call) => panic!("expected no provider call, got {call:?}"),
        }
    }

    fn kinds(d: &Decision<PaymentState>) -> Vec<&'static str> {
        d.emit.iter().map(|e| e.kind().detail_type()).collect()
    }

    #[test]
    fn an_order_asks_the_provider_to_authorize_its_total_with_an_idempotency_key() {
        match decide(&PaymentState::default(), &order_id(), &placed("tok_ok")) {
            Plan::Call(GatewayCall::Authorize {
                idempotency_key,
                amount_minor,
                ..
            }) => {
                assert_eq!(idempotency_key, "authorize-ord-1");
                assert_eq!(amount_minor, MinorUnits(1000));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_authorization_emits_payment_authorized() {
        let call = authorize_call();
        let d = settle(
            PaymentState::default(),
            &call,
            GatewayResult::Authorized(auth()),
        );
        assert_eq!(kinds(&d), ["PaymentAuthorized"]);
        assert_eq!(d.state, authorized());
    }

    #[test]
    fn a_decline_emits_payment_declined_with_the_reason() {
        let call = authorize_call();
        let d = settle(
            PaymentState::default(),
            &call,
            GatewayResult::Declined(DeclineReason::OverLimit),
        );
        assert_eq!(
            d.emit,
            [Event::PaymentDeclined(PaymentDeclined {
                reason: DeclineReason::OverLimit
            })]
        );
        assert_eq!(
            d.state.status,
            Status::Declined {
                reason: DeclineReason::OverLimit
            }
        );
    }

    #[test]
    fn stock_unavailable_voids_an_authorized_payment() {
        match decide(&authorized(), &order_id(), &unavailable()) {
            Plan::Call(GatewayCall::Void {
                authorization_id,
                idempotency_key,
            }) => {
                assert_eq!(authorization_id, auth());
                assert_eq!(idempotency_key, "void-ord-1");
                let call = GatewayCall::Void {
                    authorization_id,
                    idempotency_key,
                };
                let d = settle(authorized(), &call, GatewayResult::Voided);
                assert_eq!(kinds(&d), ["PaymentVoided"]);
                assert_eq!(
                    d.state.status,
                    Status::Voided {
                        authorization_id: auth()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stock_unavailable_before_the_order_declines_the_order_without_charging() {
        let d = applied(decide(
            &PaymentState::default(),
            &order_id(),
            &unavailable(),
        ));
        assert!(d.emit.is_empty());
        assert!(d.state.stock_unavailable);
        let d = applied(decide(&d.state, &order_id(), &placed("tok_ok")));
        assert_eq!(
            d.emit,
            [Event::PaymentDeclined(PaymentDeclined {
                reason: DeclineReason::StockUnavailable
            })]
        );
    }

    #[test]
    fn a_second_order_for_a_decided_payment_changes_nothing() {
        for state in [
            authorized(),
            PaymentState {
                status: Status::Declined {
                    reason: DeclineReason::CardDeclined,
                },
                stock_unavailable: false,
            },
            PaymentState {
                status: Status::Voided {
                    authorization_id: auth(),
                },
                stock_unavailable: true,
            },
        ] {
            let d = applied(decide(&state, &order_id(), &placed("tok_ok")));
            assert!(d.emit.is_empty());
            assert_eq!(d.state, state);
        }
    }

    #[test]
    fn stock_unavailable_twice_voids_once() {
        let voided = PaymentState {
            status: Status::Voided {
                authorization_id: auth(),
            },
            stock_unavailable: true,
        };
        let d = applied(decide(&voided, &order_id(), &unavailable()));
        assert!(d.emit.is_empty());
        let declined = PaymentState {
            status: Status::Declined {
                reason: DeclineReason::CardDeclined,
            },
            stock_unavailable: false,
        };
        let d = applied(decide(&declined, &order_id(), &unavailable()));
        assert!(d.emit.is_empty(), "a declined payment has nothing to void");
    }

    #[test]
    fn state_round_trips_through_json() {
        let json = ok(serde_json::to_string(&authorized()));
        assert_eq!(
            ok(serde_json::from_str::<PaymentState>(&json)),
            authorized()
        );
    }
}
