//! orderflow's shipping function.
//!
//! Consumes `PaymentAuthorized`, `StockReserved` and the negative events
//! (`PaymentDeclined`, `PaymentVoided`, `StockUnavailable`,
//! `StockReleased`); emits `ShipmentScheduled`.
//!
//! Once both positives are in, in either order, it prints a label (a 4×6 in
//! PDF with a Code 128 barcode), stores it, and schedules a pickup. After any
//! negative event the order never ships.
//!
//! Layout:
//! - [`decide`]: the rules, pure, over [`ShippingState`].
//! - [`label_pdf`]: the label document: what a shipment's label prints,
//!   and the PDF it renders to.
//! - [`label_store`]: where labels are kept: the
//!   [`label_store::LabelStore`] port, with S3 and in-memory adapters.
//! - [`Shipping`]: the [`Service`] for the shared runtime.

pub mod decide;
pub mod label_pdf;
pub mod label_store;
pub mod s3;

use orderflow_contracts::{EventKind, Message};
use orderflow_runtime::{Decision, Input, RecordError, Service};

pub use decide::{Plan, ShippingState};
pub use label_store::{LabelStore, Labels};

/// The shipping [`Service`].
#[derive(Debug)]
pub struct Shipping<L> {
    labels: L,
}

impl<L: LabelStore> Shipping<L> {
    /// A shipping service that stores labels in `labels`.
    pub fn new(labels: L) -> Self {
        Self { labels }
    }

    /// The label store.
    pub fn labels(&self) -> &L {
        &self.labels
    }
}

impl<L: LabelStore> Service for Shipping<L> {
    type State = ShippingState;
    type Contract = Message;
    const FUNCTION: &'static str = "shipping";

    fn consumes(&self, kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::PaymentAuthorized
                | EventKind::StockReserved
                | EventKind::PaymentDeclined
                | EventKind::PaymentVoided
                | EventKind::StockUnavailable
                | EventKind::StockReleased
        )
    }

    async fn handle(
        &self,
        input: Input<'_, ShippingState>,
    ) -> Result<Decision<ShippingState>, RecordError> {
        let message = input.message;
        decide::decide(input.state, message, &input.counters)
            .carry_out(|effect| async move {
                let pdf = label_pdf::render(&effect, &message.meta.order_id);
                // The key and the document are deterministic, so a retried
                // put overwrites the label with the same bytes.
                let location = self.labels.put(&effect.label_key, pdf).await?;
                Ok(decide::settle(effect, location))
            })
            .await
    }
}
