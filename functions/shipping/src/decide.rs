//! The shipping rules, pure: no SDK, no async runtime, no JSON.
//!
//! - `PaymentAuthorized` and `StockReserved` are remembered; once both are
//!   in, in either order, the order ships: one label, one pickup.
//! - Any negative event (`PaymentDeclined`, `PaymentVoided`,
//!   `StockUnavailable`, `StockReleased`) cancels the order for shipping: it
//!   never ships after that.
//! - The tracking number derives from the order id, and the pickup window
//!   from the time of the event that completed the order, so a retry
//!   produces the same shipment.

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};
use orderflow_contracts::{
    Event, LabelLocation, Message, PickupWindow, ShipmentScheduled, StockReserved, TrackingNumber,
};
use serde::{Deserialize, Serialize};

/// Nominal parcel weight per unit, until the catalogue carries weights.
pub const GRAMS_PER_UNIT: u32 = 500;

/// What shipping knows about one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingState {
    /// Payment was authorized.
    pub payment_authorized: bool,
    /// Stock was reserved: the lines and the address.
    pub reserved: Option<StockReserved>,
    /// The negative event that cancelled shipping, if any.
    pub cancelled_by: Option<String>,
    /// The scheduled shipment, once there is one.
    pub shipment: Option<ShipmentScheduled>,
}

/// A shipment to make: print and store a label, then record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// The state to record the shipment in.
    pub state: ShippingState,
    /// The tracking number.
    pub tracking_number: TrackingNumber,
    /// The pickup window.
    pub pickup: PickupWindow,
    /// Where the label goes in the label store.
    pub label_key: String,
}

/// What to do with an event: apply a decision, or print and store a label
/// ([`Effect`]) and then [`settle`] with where it is stored.
pub type Plan = orderflow_runtime::Plan<ShippingState, Effect>;

/// Decides what `message` does to an order; the pickup follows the time it
/// happened. Shipping reads no counters.
pub fn decide(mut state: ShippingState, message: &Message, _counters: &[Option<i64>]) -> Plan {
    let event = &message.event;
    match event {
        Event::PaymentAuthorized(_) => state.payment_authorized = true,
        Event::StockReserved(reserved) if state.reserved.is_none() => {
            state.reserved = Some(reserved.clone());
        }
        Event::PaymentDeclined(_)
        | Event::PaymentVoided(_)
        | Event::StockUnavailable(_)
        | Event::StockReleased(_)
            if state.cancelled_by.is_none() =>
        {
            state.cancelled_by = Some(event.kind().detail_type().to_owned());
        }
        // A second reservation or cancellation changes nothing; no other
        // kind is consumed (`Shipping::consumes`), so none reaches here, a
        // kind added to the contracts later neither.
        _ => {}
    }
    let ready = state.payment_authorized
        && state.reserved.is_some()
        && state.cancelled_by.is_none()
        && state.shipment.is_none();
    if !ready {
        return Plan::unchanged(state);
    }
    let order_id = &message.meta.order_id;
    Plan::Effect(Effect {
        tracking_number: TrackingNumber::derive(order_id.as_str()),
        pickup: pickup_window(message.meta.occurred_at),
        label_key: format!("labels/{order_id}.pdf"),
        state,
    })
}

/// Records a shipment whose label is stored at `label`.
pub fn settle(effect: Effect, label: LabelLocation) -> Plan {
    let Effect {
        mut state,
        tracking_number,
        pickup,
        ..
    } = effect;
    let shipment = ShipmentScheduled {
        tracking_number,
        label,
        pickup,
    };
    state.shipment = Some(shipment.clone());
    Plan::emit(state, vec![Event::ShipmentScheduled(shipment)])
}

/// The pickup window: 09:00 to 12:00 UTC on the day after `at`.
pub fn pickup_window(at: DateTime<Utc>) -> PickupWindow {
    let day = at
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap_or(at.date_naive());
    let from = day.and_time(NaiveTime::MIN).and_utc() + Duration::hours(9);
    PickupWindow {
        from,
        to: from + Duration::hours(3),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use orderflow_contracts::{
        AuthorizationId, Currency, DeclineReason, MinorUnits, PaymentAuthorized, PaymentDeclined,
    };
    use orderflow_runtime::testing::fixtures::{message, order_id, stock_reserved};

    use super::*;
    use crate::label_pdf::render;

    fn authorized() -> Event {
        Event::PaymentAuthorized(PaymentAuthorized {
            authorization_id: AuthorizationId::new("auth_1").unwrap(),
            amount_minor: MinorUnits(100),
            currency: Currency::new("EUR").unwrap(),
        })
    }

    fn reserved() -> Event {
        stock_reserved(&[("SKU-A", 2)])
    }

    fn negatives() -> Vec<Event> {
        use orderflow_contracts::{PaymentVoided, StockReleased, StockUnavailable};
        let Event::StockReserved(r) = reserved() else {
            unreachable!()
        };
        vec![
            Event::PaymentDeclined(PaymentDeclined {
                reason: DeclineReason::CardDeclined,
            }),
            Event::PaymentVoided(PaymentVoided {
                authorization_id: AuthorizationId::new("auth_1").unwrap(),
                amount_minor: MinorUnits(100),
                currency: Currency::new("EUR").unwrap(),
            }),
            Event::StockUnavailable(StockUnavailable { short: Vec::new() }),
            Event::StockReleased(StockReleased { lines: r.lines }),
        ]
    }

    fn run(events: &[Event]) -> (ShippingState, Vec<Effect>) {
        let mut state = ShippingState::default();
        let mut ships = Vec::new();
        for event in events {
            let mut plan = decide(state, &message(event.clone()), &[]);
            if let Plan::Effect(effect) = plan {
                let location = LabelLocation {
                    bucket: "b".into(),
                    key: effect.label_key.clone(),
                    content_type: "application/pdf".into(),
                };
                ships.push(effect.clone());
                plan = settle(effect, location);
            }
            let Plan::Apply(decision) = plan else {
                panic!("{plan:?}");
            };
            state = decision.state;
        }
        (state, ships)
    }

    #[test]
    fn both_positives_ship_in_either_order() {
        for events in [[authorized(), reserved()], [reserved(), authorized()]] {
            let (state, ships) = run(&events);
            assert_eq!(ships.len(), 1);
            assert!(state.shipment.is_some());
            assert_eq!(ships[0].label_key, "labels/ord-1.pdf");
        }
    }

    #[test]
    fn one_positive_alone_waits() {
        assert!(run(&[authorized()]).1.is_empty());
        assert!(run(&[reserved()]).1.is_empty());
    }

    #[test]
    fn duplicates_ship_once() {
        let (_, ships) = run(&[authorized(), reserved(), reserved(), authorized()]);
        assert_eq!(ships.len(), 1);
    }

    #[test]
    fn any_negative_before_the_second_positive_stops_the_shipment() {
        for negative in negatives() {
            for events in [
                vec![negative.clone(), authorized(), reserved()],
                vec![authorized(), negative.clone(), reserved()],
                vec![reserved(), negative.clone(), authorized()],
            ] {
                let (state, ships) = run(&events);
                assert!(ships.is_empty(), "{events:?}");
                assert_eq!(
                    state.cancelled_by.as_deref(),
                    Some(negative.kind().detail_type())
                );
            }
        }
    }

    #[test]
    fn pickup_is_the_next_morning_utc_and_tracking_is_stable() {
        let (_, ships) = run(&[authorized(), reserved()]);
        let pickup = ships[0].pickup;
        assert_eq!(
            pickup.from,
            Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
                .single()
                .unwrap_or_default()
        );
        assert_eq!(pickup.to - pickup.from, Duration::hours(3));
        assert_eq!(ships[0].tracking_number, TrackingNumber::derive("ord-1"));
        assert_eq!(ships[0].tracking_number.as_str().len(), 20);
    }

    #[test]
    fn the_label_is_a_pdf_naming_the_addressee() {
        let (_, ships) = run(&[authorized(), reserved()]);
        let pdf = render(&ships[0], &order_id());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(String::from_utf8_lossy(&pdf).contains("Ada Lovelace"));
    }
}
