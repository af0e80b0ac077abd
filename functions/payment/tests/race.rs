//! A shortage that commits while an authorization is in flight: the race
//! that used to leave a hold open at the provider.
//!
//! Two processors share one store and one ledger, as two execution
//! environments share a table and a provider. The first handles the order;
//! while its provider call is out, the second commits the shortage for the
//! same order. The first one's commit then conflicts and it decides again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use orderflow_contracts::Message;
use orderflow_runtime::publish::MemoryPublisher;
use orderflow_runtime::store::MemoryStore;
use orderflow_runtime::testing::read_sample;
use orderflow_runtime::{Processed, Processor, RecordError};
use payment::gateway::{GatewayCall, GatewayResult, PaymentGateway};
use payment::{HoldStatus, MemoryLedger, Payment, Simulator};

type Interlude = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The simulator, with something that happens while its first
/// authorization is out.
struct Racing {
    provider: Simulator<Arc<MemoryLedger>>,
    during_first_authorization: Mutex<Option<Interlude>>,
}

impl PaymentGateway for Racing {
    async fn call(&self, call: &GatewayCall) -> Result<GatewayResult, RecordError> {
        let answer = self.provider.call(call).await;
        if matches!(call, GatewayCall::Authorize { .. }) {
            let interlude = self
                .during_first_authorization
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(interlude) = interlude {
                interlude.await;
            }
        }
        answer
    }
}

fn message(sample: &str) -> Message {
    let text = read_sample(sample).unwrap_or_else(|e| panic!("{e}"));
    Message::from_bus_json(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_shortage_committed_during_the_authorization_voids_the_hold_it_made() {
    let store = Arc::new(MemoryStore::new());
    let ledger = Arc::new(MemoryLedger::new());
    let limit = Simulator::<MemoryLedger>::DEFAULT_LIMIT_MINOR;

    let other = Arc::new(Processor::new(
        Payment::new(Simulator::new(limit, Arc::clone(&ledger))),
        Arc::clone(&store),
        MemoryPublisher::new(),
        3600,
    ));
    let shortage = message("payment/stock-unavailable.eventbridge.json");
    let interlude: Interlude = {
        let other = Arc::clone(&other);
        Box::pin(async move {
            let done = other.process(&shortage).await;
            assert!(
                matches!(done, Ok(Processed::Applied { published: 0 })),
                "the shortage commits while the authorization is out: {done:?}"
            );
        })
    };
    let first = Processor::new(
        Payment::new(Racing {
            provider: Simulator::new(limit, Arc::clone(&ledger)),
            during_first_authorization: Mutex::new(Some(interlude)),
        }),
        Arc::clone(&store),
        MemoryPublisher::new(),
        3600,
    );

    let order = message("payment/order-placed.eventbridge.json");
    let done = first.process(&order).await.unwrap();
    assert_eq!(done, Processed::Applied { published: 2 });

    let holds: Vec<HoldStatus> = ledger.holds().into_iter().map(|h| h.status).collect();
    assert_eq!(holds, [HoldStatus::Voided], "no hold left open");
    let kinds: Vec<String> = first
        .publisher()
        .published()
        .into_iter()
        .map(|e| e.detail_type)
        .collect();
    assert_eq!(kinds, ["PaymentAuthorized", "PaymentVoided"]);
}
