//! How an order ends, read from its events.

use std::fmt;

use orderflow_contracts::EventKind;

use crate::audit::Seen;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still moving.
    Pending,
    /// Paid, reserved, and the pickup is scheduled.
    Shipped,
    /// The payment was declined; any reservation was released.
    Declined,
    /// Stock was short; any authorization was voided (or the payment
    /// declined, when the shortage reached payment first).
    OutOfStock,
}

impl Outcome {
    /// The outcome the events show.
    pub fn of(events: &[Seen]) -> Self {
        let has = |kind: EventKind| events.iter().any(|s| s.kind() == Some(kind));
        if has(EventKind::ShipmentScheduled) {
            Self::Shipped
        } else if has(EventKind::StockUnavailable)
            && (has(EventKind::PaymentVoided) || has(EventKind::PaymentDeclined))
        {
            Self::OutOfStock
        } else if has(EventKind::PaymentDeclined) && has(EventKind::StockReleased) {
            Self::Declined
        } else {
            Self::Pending
        }
    }
}

/// The payment was declined and inventory said nothing: either it is still
/// on its way, or the decline reached inventory before the order did (then
/// it never reserves and emits nothing; only its state tells).
pub fn declined_without_stock_event(events: &[Seen]) -> bool {
    let has = |kind: EventKind| events.iter().any(|s| s.kind() == Some(kind));
    has(EventKind::PaymentDeclined)
        && !has(EventKind::StockReserved)
        && !has(EventKind::StockUnavailable)
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Shipped => "shipped",
            Self::Declined => "declined",
            Self::OutOfStock => "out of stock",
        })
    }
}
