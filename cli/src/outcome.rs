//! How an order ends, read from its events.

use std::fmt;

use orderflow_contracts::EventKind;

use crate::audit::Seen;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still moving.
    Pending,
    /// Reserved, the pickup scheduled, and the payment captured.
    Shipped,
    /// The payment was declined; any reservation was released, or none
    /// was made (the decline reached inventory first).
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
            // A shipment is settled once its payment is captured: a hold
            // nobody captures expires, and the order is never paid.
            if has(EventKind::PaymentCaptured) {
                Self::Shipped
            } else {
                Self::Pending
            }
        } else if has(EventKind::StockUnavailable)
            && (has(EventKind::PaymentVoided) || has(EventKind::PaymentDeclined))
        {
            Self::OutOfStock
        } else if has(EventKind::PaymentDeclined)
            && (has(EventKind::StockReleased) || has(EventKind::StockNotReserved))
        {
            Self::Declined
        } else {
            Self::Pending
        }
    }
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use orderflow_contracts::{
        Event, EventKind, Message, NotReservedReason, PaymentCaptured, StockNotReserved,
    };
    use orderflow_runtime::testing::read_sample;

    use super::Outcome;
    use crate::audit::Seen;

    /// An event of `kind`: from the samples, or built for PaymentCaptured
    /// and StockNotReserved (which no function consumes, so they have no
    /// sample).
    fn message(kind: EventKind) -> Message {
        if kind == EventKind::PaymentCaptured {
            let mut message = message(EventKind::PaymentAuthorized);
            let Event::PaymentAuthorized(authorized) = message.event else {
                panic!("not an authorization")
            };
            message.event = Event::PaymentCaptured(PaymentCaptured {
                authorization_id: authorized.authorization_id,
                amount_minor: authorized.amount_minor,
                currency: authorized.currency,
            });
            return message;
        }
        if kind == EventKind::StockNotReserved {
            let mut message = message(EventKind::StockReserved);
            message.event = Event::StockNotReserved(StockNotReserved {
                reason: NotReservedReason::PaymentDeclined,
            });
            return message;
        }
        let mut name = String::new();
        for c in kind.detail_type().chars() {
            if c.is_ascii_uppercase() && !name.is_empty() {
                name.push('-');
            }
            name.push(c.to_ascii_lowercase());
        }
        let folder = if matches!(kind, EventKind::OrderPlaced | EventKind::ShipmentScheduled) {
            "payment"
        } else {
            "shipping"
        };
        let file = format!("{folder}/{name}.eventbridge.json");
        let json = read_sample(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        Message::from_bus_json(&json).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// What the audit queue delivers for events of these kinds.
    fn seen(kinds: &[EventKind]) -> Vec<Seen> {
        kinds
            .iter()
            .map(|kind| {
                let body = serde_json::json!({
                    "detail-type": kind.detail_type(),
                    "source": kind.source(),
                    "detail": serde_json::from_str::<serde_json::Value>(&message(*kind).detail_json())
                        .unwrap_or_default(),
                });
                let seen = Seen::parse(&body.to_string(), Instant::now());
                assert_eq!(seen.kind(), Some(*kind));
                seen
            })
            .collect()
    }

    #[test]
    fn outcomes_follow_the_events() {
        use EventKind::*;
        let cases: &[(&[EventKind], Outcome)] = &[
            (&[OrderPlaced], Outcome::Pending),
            (
                &[OrderPlaced, PaymentAuthorized, StockReserved],
                Outcome::Pending,
            ),
            (
                &[
                    OrderPlaced,
                    PaymentAuthorized,
                    StockReserved,
                    ShipmentScheduled,
                ],
                Outcome::Pending,
            ),
            (
                &[
                    OrderPlaced,
                    PaymentAuthorized,
                    StockReserved,
                    ShipmentScheduled,
                    PaymentCaptured,
                ],
                Outcome::Shipped,
            ),
            (
                &[OrderPlaced, PaymentDeclined, StockReserved],
                Outcome::Pending,
            ),
            (
                &[OrderPlaced, PaymentDeclined, StockReserved, StockReleased],
                Outcome::Declined,
            ),
            (&[OrderPlaced, PaymentDeclined], Outcome::Pending),
            (
                &[OrderPlaced, PaymentDeclined, StockNotReserved],
                Outcome::Declined,
            ),
            (
                &[OrderPlaced, PaymentAuthorized, StockUnavailable],
                Outcome::Pending,
            ),
            (
                &[
                    OrderPlaced,
                    PaymentAuthorized,
                    StockUnavailable,
                    PaymentVoided,
                ],
                Outcome::OutOfStock,
            ),
            (
                &[OrderPlaced, StockUnavailable, PaymentDeclined],
                Outcome::OutOfStock,
            ),
        ];
        for (kinds, expected) in cases {
            assert_eq!(Outcome::of(&seen(kinds)), *expected, "{kinds:?}");
        }
    }

    #[test]
    fn an_invalid_event_has_no_kind() {
        let seen = Seen::parse(
            r#"{"detail-type":"OrderPlaced","source":"orderflow.orders","detail":{"order_id":"o-1"}}"#,
            Instant::now(),
        );
        assert_eq!(seen.kind(), None);
        assert_eq!(seen.order_id.as_deref(), Some("o-1"));
    }
}
