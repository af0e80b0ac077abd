//! The payment rules, pure: no SDK, no async runtime, no JSON.
//!
//! - `OrderPlaced` asks the provider to authorize the total, unless stock
//!   was already reported unavailable for the order: then it is declined
//!   without charging. Before the call the order is written ahead as
//!   `Authorizing`, so that whoever decides next knows a hold may exist.
//! - An order found `Authorizing` (the delivery that asked crashed, timed
//!   out or lost a write conflict) asks again under the same idempotency
//!   key, and so learns what the first call did.
//! - `StockUnavailable` voids an authorized payment. If it arrives before
//!   the order, or while the authorization is in flight, it is remembered:
//!   the order is then never charged, and a hold the flight produced is
//!   voided as soon as it is known.
//! - `ShipmentScheduled` captures the authorization: a hold expires if
//!   nobody captures it.
//! - A second `OrderPlaced` for an order already decided changes nothing,
//!   and every close (void, capture) happens at most once.

use orderflow_contracts::{
    AuthorizationId, Currency, DeclineReason, Event, Message, MinorUnits, OrderId,
    PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided,
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
    /// An authorization was asked for; its answer is not recorded yet.
    Authorizing {
        /// The amount.
        amount_minor: MinorUnits,
        /// Its currency.
        currency: Currency,
    },
    /// Authorized: a hold, not yet captured or voided.
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
    /// Authorized, then captured: the order shipped and was charged.
    Captured {
        /// The captured authorization.
        authorization_id: AuthorizationId,
        /// The amount charged.
        amount_minor: MinorUnits,
        /// Its currency.
        currency: Currency,
    },
}

/// What to do with an event: apply a decision, or call the provider
/// ([`Effect`]) and then [`settle`] with its answer.
pub type Plan = orderflow_runtime::Plan<PaymentState, Effect>;

/// A provider call still to make, and what to settle its answer against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// The state the answer applies to.
    pub state: PaymentState,
    /// The call.
    pub call: GatewayCall,
    /// Write `state` ahead of the call: the call opens something (a hold)
    /// that a decision from the current state would not know about.
    pub write_ahead: bool,
    /// Events already decided on the way here, emitted with the rest.
    pub emitted: Vec<Event>,
}

impl Effect {
    fn plan(state: PaymentState, call: GatewayCall) -> Plan {
        Plan::Effect(Self {
            state,
            call,
            write_ahead: false,
            emitted: Vec::new(),
        })
    }
}

/// Decides what `message` does to an order's payment. Payment reads no
/// counters.
pub fn decide(state: PaymentState, message: &Message, _counters: &[Option<i64>]) -> Plan {
    let order_id = &message.meta.order_id;
    match (&message.event, &state.status) {
        (Event::OrderPlaced(_), Status::Pending) if state.stock_unavailable => {
            Plan::Apply(declined(state, DeclineReason::StockUnavailable, Vec::new()))
        }
        (Event::OrderPlaced(order), Status::Pending | Status::Authorizing { .. }) => {
            let call = GatewayCall::authorize(
                order_id,
                order.total_minor,
                order.currency,
                order.payment_token.clone(),
            );
            let write_ahead = state.status == Status::Pending;
            Plan::Effect(Effect {
                state: PaymentState {
                    status: Status::Authorizing {
                        amount_minor: order.total_minor,
                        currency: order.currency,
                    },
                    ..state
                },
                call,
                write_ahead,
                emitted: Vec::new(),
            })
        }
        (Event::StockUnavailable(_), Status::Authorized { .. }) => void(state, order_id),
        (Event::StockUnavailable(_), Status::Pending | Status::Authorizing { .. }) => {
            Plan::unchanged(PaymentState {
                stock_unavailable: true,
                ..state
            })
        }
        (
            Event::ShipmentScheduled(_),
            Status::Authorized {
                authorization_id,
                amount_minor,
                ..
            },
        ) => {
            let call = GatewayCall::Capture {
                idempotency_key: format!("capture-{order_id}"),
                authorization_id: authorization_id.clone(),
                amount_minor: *amount_minor,
            };
            Effect::plan(state, call)
        }
        // Already decided, already closed, or not ours: nothing changes.
        _ => Plan::unchanged(state),
    }
}

/// The void of `state`'s authorization.
fn void(state: PaymentState, order_id: &OrderId) -> Plan {
    match &state.status {
        Status::Authorized {
            authorization_id, ..
        } => Effect::plan(
            state.clone(),
            GatewayCall::Void {
                idempotency_key: format!("void-{order_id}"),
                authorization_id: authorization_id.clone(),
            },
        ),
        _ => Plan::Apply(Decision::unchanged(state)),
    }
}

/// Applies the provider's answer to an [`Effect`]; the result may be another
/// call (a hold that turns out to need voiding at once).
pub fn settle(effect: Effect, order_id: &OrderId, result: GatewayResult) -> Plan {
    let Effect {
        state,
        call,
        emitted,
        ..
    } = effect;
    match (&call, result, &state.status) {
        (
            GatewayCall::Authorize {
                amount_minor,
                currency,
                ..
            },
            GatewayResult::Authorized(id),
            _,
        ) => authorized(state, order_id, id, *amount_minor, *currency, emitted),
        (GatewayCall::Authorize { .. }, GatewayResult::Declined(reason), _) => {
            Plan::Apply(declined(state, reason, emitted))
        }
        (
            GatewayCall::Void { .. },
            GatewayResult::Voided,
            Status::Authorized {
                authorization_id,
                amount_minor,
                currency,
            },
        ) => Plan::Apply(voided(
            authorization_id.clone(),
            *amount_minor,
            *currency,
            emitted,
        )),
        (
            GatewayCall::Capture { .. },
            GatewayResult::Captured,
            Status::Authorized {
                authorization_id,
                amount_minor,
                currency,
            },
        ) => Plan::Apply(captured(
            authorization_id.clone(),
            *amount_minor,
            *currency,
            state,
            emitted,
        )),
        // An answer that does not fit the call or the state changes nothing.
        _ => Plan::emit(state, emitted),
    }
}

/// Records a granted authorization, and voids it at once if stock was
/// reported short while it was in flight.
fn authorized(
    state: PaymentState,
    order_id: &OrderId,
    authorization_id: AuthorizationId,
    amount_minor: MinorUnits,
    currency: Currency,
    mut emitted: Vec<Event>,
) -> Plan {
    emitted.push(Event::PaymentAuthorized(PaymentAuthorized {
        authorization_id: authorization_id.clone(),
        amount_minor,
        currency,
    }));
    let state = PaymentState {
        status: Status::Authorized {
            authorization_id,
            amount_minor,
            currency,
        },
        ..state
    };
    if state.stock_unavailable {
        // Stock was reported short while the authorization was in
        // flight: the hold it made is released at once.
        return match void(state, order_id) {
            Plan::Effect(mut next) => {
                next.emitted = emitted;
                Plan::Effect(next)
            }
            apply => apply,
        };
    }
    Plan::emit(state, emitted)
}

/// Records a voided authorization; voids only follow short stock, hence
/// `stock_unavailable`.
fn voided(
    authorization_id: AuthorizationId,
    amount_minor: MinorUnits,
    currency: Currency,
    mut emitted: Vec<Event>,
) -> Decision<PaymentState> {
    emitted.push(Event::PaymentVoided(PaymentVoided {
        authorization_id: authorization_id.clone(),
        amount_minor,
        currency,
    }));
    let state = PaymentState {
        status: Status::Voided { authorization_id },
        stock_unavailable: true,
    };
    Decision::emit(state, emitted)
}

/// Records a captured authorization: the order shipped and was charged.
fn captured(
    authorization_id: AuthorizationId,
    amount_minor: MinorUnits,
    currency: Currency,
    state: PaymentState,
    mut emitted: Vec<Event>,
) -> Decision<PaymentState> {
    emitted.push(Event::PaymentCaptured(PaymentCaptured {
        authorization_id: authorization_id.clone(),
        amount_minor,
        currency,
    }));
    let state = PaymentState {
        status: Status::Captured {
            authorization_id,
            amount_minor,
            currency,
        },
        ..state
    };
    Decision::emit(state, emitted)
}

/// Records a decline: the order is never charged.
fn declined(
    state: PaymentState,
    reason: DeclineReason,
    mut emitted: Vec<Event>,
) -> Decision<PaymentState> {
    emitted.push(Event::PaymentDeclined(PaymentDeclined { reason }));
    Decision::emit(
        PaymentState {
            status: Status::Declined { reason },
            ..state
        },
        emitted,
    )
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::{
        LabelLocation, PickupWindow, ShipmentScheduled, ShortLine, Sku, StockUnavailable,
        TrackingNumber,
    };
    use orderflow_runtime::testing::fixtures::{message, order_placed};

    use super::*;

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        r.unwrap()
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

    fn shipped() -> Event {
        let at = chrono::DateTime::UNIX_EPOCH;
        Event::ShipmentScheduled(ShipmentScheduled {
            tracking_number: TrackingNumber::derive("ord-1"),
            label: LabelLocation {
                bucket: "labels".into(),
                key: "labels/ord-1.pdf".into(),
                content_type: "application/pdf".into(),
            },
            pickup: PickupWindow {
                from: at,
                to: at + chrono::Duration::hours(4),
            },
        })
    }

    fn auth() -> AuthorizationId {
        ok(AuthorizationId::new("auth_1"))
    }

    fn eur() -> Currency {
        ok(Currency::new("EUR"))
    }

    fn authorized() -> PaymentState {
        PaymentState {
            status: Status::Authorized {
                authorization_id: auth(),
                amount_minor: MinorUnits(1000),
                currency: eur(),
            },
            stock_unavailable: false,
        }
    }

    fn authorizing(stock_unavailable: bool) -> PaymentState {
        PaymentState {
            status: Status::Authorizing {
                amount_minor: MinorUnits(1000),
                currency: eur(),
            },
            stock_unavailable,
        }
    }

    fn call(plan: Plan) -> Effect {
        match plan {
            Plan::Effect(call) => call,
            other => panic!("expected a provider call, got {other:?}"),
        }
    }

    fn applied(plan: Plan) -> Decision<PaymentState> {
        match plan {
            Plan::Apply(d) => d,
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    fn kinds(d: &Decision<PaymentState>) -> Vec<&'static str> {
        d.emit.iter().map(|e| e.kind().detail_type()).collect()
    }

    #[test]
    fn an_order_writes_ahead_then_asks_to_authorize_its_total_with_an_idempotency_key() {
        let c = call(decide(
            PaymentState::default(),
            &message(placed("tok_ok")),
            &[],
        ));
        assert!(c.write_ahead, "the hold must be known before it exists");
        assert_eq!(c.state, authorizing(false));
        match c.call {
            GatewayCall::Authorize {
                idempotency_key,
                amount_minor,
                ..
            } => {
                assert_eq!(idempotency_key, "authorize-ord-1");
                assert_eq!(amount_minor, MinorUnits(1000));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_authorization_emits_payment_authorized() {
        let c = call(decide(
            PaymentState::default(),
            &message(placed("tok_ok")),
            &[],
        ));
        let d = applied(settle(c, &order_id(), GatewayResult::Authorized(auth())));
        assert_eq!(kinds(&d), ["PaymentAuthorized"]);
        assert_eq!(d.state, authorized());
    }

    #[test]
    fn a_decline_emits_payment_declined_with_the_reason() {
        let c = call(decide(
            PaymentState::default(),
            &message(placed("tok_ok")),
            &[],
        ));
        let d = applied(settle(
            c,
            &order_id(),
            GatewayResult::Declined(DeclineReason::OverLimit),
        ));
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
        let c = call(decide(authorized(), &message(unavailable()), &[]));
        assert_eq!(
            c.call,
            GatewayCall::Void {
                authorization_id: auth(),
                idempotency_key: "void-ord-1".into()
            }
        );
        let d = applied(settle(c, &order_id(), GatewayResult::Voided));
        assert_eq!(kinds(&d), ["PaymentVoided"]);
        assert_eq!(
            d.state.status,
            Status::Voided {
                authorization_id: auth()
            }
        );
    }

    #[test]
    fn stock_unavailable_before_the_order_declines_the_order_without_charging() {
        let d = applied(decide(
            PaymentState::default(),
            &message(unavailable()),
            &[],
        ));
        assert!(d.emit.is_empty());
        assert!(d.state.stock_unavailable);
        let d = applied(decide(d.state.clone(), &message(placed("tok_ok")), &[]));
        assert_eq!(
            d.emit,
            [Event::PaymentDeclined(PaymentDeclined {
                reason: DeclineReason::StockUnavailable
            })]
        );
    }

    #[test]
    fn an_order_found_authorizing_asks_again_under_the_same_key_without_writing_ahead() {
        let c = call(decide(authorizing(false), &message(placed("tok_ok")), &[]));
        assert!(!c.write_ahead);
        assert!(matches!(
            c.call,
            GatewayCall::Authorize { ref idempotency_key, .. } if idempotency_key == "authorize-ord-1"
        ));
    }

    #[test]
    fn stock_unavailable_during_an_authorization_is_remembered_and_the_hold_voided_once_known() {
        // The shortage lands while the authorization is in flight.
        let d = applied(decide(authorizing(false), &message(unavailable()), &[]));
        assert!(d.emit.is_empty());
        assert_eq!(d.state, authorizing(true));
        // The order's next decision asks again, learns of the hold, and
        // voids it in the same delivery.
        let c = call(decide(d.state.clone(), &message(placed("tok_ok")), &[]));
        let void = call(settle(c, &order_id(), GatewayResult::Authorized(auth())));
        assert!(matches!(void.call, GatewayCall::Void { .. }));
        let d = applied(settle(void, &order_id(), GatewayResult::Voided));
        assert_eq!(kinds(&d), ["PaymentAuthorized", "PaymentVoided"]);
        assert_eq!(
            d.state.status,
            Status::Voided {
                authorization_id: auth()
            }
        );
    }

    #[test]
    fn a_shipment_captures_the_authorization_once() {
        let c = call(decide(authorized(), &message(shipped()), &[]));
        assert_eq!(
            c.call,
            GatewayCall::Capture {
                idempotency_key: "capture-ord-1".into(),
                authorization_id: auth(),
                amount_minor: MinorUnits(1000),
            }
        );
        let d = applied(settle(c, &order_id(), GatewayResult::Captured));
        assert_eq!(
            d.emit,
            [Event::PaymentCaptured(PaymentCaptured {
                authorization_id: auth(),
                amount_minor: MinorUnits(1000),
                currency: eur(),
            })]
        );
        let again = applied(decide(d.state.clone(), &message(shipped()), &[]));
        assert!(again.emit.is_empty(), "captured once");
        let void = applied(decide(d.state.clone(), &message(unavailable()), &[]));
        assert!(void.emit.is_empty(), "a captured payment is never voided");
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
            let d = applied(decide(state.clone(), &message(placed("tok_ok")), &[]));
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
        let d = applied(decide(voided.clone(), &message(unavailable()), &[]));
        assert!(d.emit.is_empty());
        let declined = PaymentState {
            status: Status::Declined {
                reason: DeclineReason::CardDeclined,
            },
            stock_unavailable: false,
        };
        let d = applied(decide(declined.clone(), &message(unavailable()), &[]));
        assert!(d.emit.is_empty(), "a declined payment has nothing to void");
    }

    #[test]
    fn state_round_trips_through_json() {
        for state in [authorized(), authorizing(true)] {
            let json = ok(serde_json::to_string(&state));
            assert_eq!(ok(serde_json::from_str::<PaymentState>(&json)), state);
        }
    }
}
