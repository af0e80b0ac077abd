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
    Address, Event, LabelLocation, OrderId, PickupWindow, ShipmentScheduled,
    StockReserved, TrackingNumber,
};
use orderflow_runtime::Decision;
use serde::{Deserialize, Serialize};

use crate::label::{self, Label};

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
pub struct ShipRequest {
    /// The state to record the shipment in.
    pub state: ShippingState,
    /// The tracking number.
    pub tracking_number: TrackingNumber,
    /// The pickup window.
    pub pickup: PickupWindow,
    /// Where the label goes in the label store.
    pub label_key: String,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Apply this decision.
    Apply(Decision<ShippingState>),
    /// Store a label, then apply [`shipped`].
    Ship(Box<ShipRequest>),
}

/// Decides what `event`, which happened at `at`, does to an order.
pub fn decide(mut state: ShippingState, order_id: &OrderId, event: &Event, at: DateTime<Utc>) -> Plan {
    match event {
        Event::PaymentAuthorized(_) => state.payment_authorized = true,
        Event::StockReserved(reserved) => {
            if state.reserved.is_none() {
                state.reserved = Some(reserved.clone());
            }
        }
        Event::PaymentDeclined(_)
        | Event::PaymentVoided(_)
        | Event::StockUnavailable(_)
        | Event::StockReleased(_) => {
            if state.cancelled_by.is_none() {
                state.cancelled_by = Some(event.kind().detail_type().to_owned());
            }
        }
        Event::OrderPlaced(_) | Event::ShipmentScheduled(_) => {}
    }
    let ready = state.payment_authorized
        && state.reserved.is_some()
        && state.cancelled_by.is_none()
        && state.shipment.is_none();
    if !ready {
        return Plan::Apply(Decision {
            state,
            counters: Vec::new(),
            emit: Vec::new(),
        });
    }
    Plan::Ship(Box::new(ShipRequest {
        tracking_number: TrackingNumber::derive(order_id.as_str()),
        pickup: pickup_window(at),
        label_key: format!("labels/{order_id}.pdf"),
        state,
    }))
}

/// Records a shipment whose label is stored at `label`.
pub fn shipped(request: Box<ShipRequest>, label: LabelLocation) -> Decision<ShippingState> {
    let ShipRequest {
        mut state,
        tracking_number,
        pickup,
        ..
    } = *request;
    let shipment = ShipmentScheduled {
        tracking_number,
        label,
        pickup,
    };
    state.shipment = Some(shipment.clone());
    Decision {
        state,
        counters: Vec::new(),
        emit: vec![Event::ShipmentScheduled(shipment)],
    }
}

/// The label document for a shipment.
pub fn render(request: &ShipRequest, order_id: &OrderId) -> Vec<u8> {
    let (to, units) = request.state.reserved.as_ref().map_or((Vec::new(), 0), |r| {
        (address_lines(&r.ship_to), r.lines.iter().map(|l| l.quantity.get()).sum())
    });
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let pickup = format!(
        "{} {}-{} UTC",
        request.pickup.from.format("%Y-%m-%d"),
        request.pickup.from.format("%H:%M"),
        request.pickup.to.format("%H:%M")
    );
    label::render_pdf(&Label {
        tracking_number: request.tracking_number.as_str(),
        order_id: order_id.as_str(),
        service: "GROUND",
        ship_from: &["orderflow fulfilment", "1 Warehouse Way", "Springfield"],
        ship_to: &to,
        pickup: &pickup,
        weight_grams: units.saturating_mul(GRAMS_PER_UNIT),
    })
}

fn address_lines(address: &Address) -> Vec<String> {
    let mut lines = vec![address.name.clone(), address.line1.clone()];
    lines.extend(address.line2.clone());
    lines.push(format!("{} {}", address.postal_code, address.city));
    lines.push(address.country.clone());
    lines
}

/// The pickup window: 09:00 to 12:00 UTC on the day after `at`.
pub fn pickup_window(at: DateTime<Utc>) -> PickupWindow {
    let day = at.date_naive().checked_add_days(Days::new(1)).unwrap_or(at.date_naive());
    let from = day.and_time(NaiveTime::MIN).and_utc() + Duration::hours(9);
    PickupWindow {
        from,
        to: from + Duration::hours(3),
    }
}
