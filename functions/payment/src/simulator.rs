//! A deterministic stand-in for a payment provider, honest about what it
//! did: every answer goes into its [`Ledger`] first.
//!
//! Its rules:
//! - a token starting with `tok_decline` is declined (`card_declined`);
//! - an amount over `limit_minor` is declined (`over_limit`);
//! - a token `tok_flaky_<n>` fails transiently `n` times per idempotency key
//!   before anything happens, then authorizes;
//! - a token `tok_timeout_<n>` authorizes, then answers with a timeout `n`
//!   times per idempotency key: the hold is real, the caller does not know
//!   it;
//! - those `n` failures are counted in the ledger, so they are `n` in all
//!   wherever the retries land (a cloud may run each in a new
//!   environment);
//! - anything else is authorized, under an id derived from the idempotency
//!   key;
//! - the same idempotency key always gets the answer the ledger holds for
//!   it, wherever the call lands;
//! - a void or a capture closes an open hold, repeats as a no-op, and is
//!   refused (permanently) on a hold closed the other way or unknown.

use orderflow_contracts::{AuthorizationId, DeclineReason};
use orderflow_runtime::{RecordError, Transient};

use crate::gateway::{GatewayCall, GatewayResult, PaymentGateway};
use crate::ledger::{Closed, Hold, HoldStatus, Ledger, authorization_id};

/// The simulated provider.
#[derive(Debug)]
pub struct Simulator<L> {
    limit_minor: u64,
    ledger: L,
}

impl<L: Ledger> Simulator<L> {
    /// The default limit: 1,000,000 minor units.
    pub const DEFAULT_LIMIT_MINOR: u64 = 1_000_000;

    /// A simulator declining amounts over `limit_minor`, keeping `ledger`.
    pub fn new(limit_minor: u64, ledger: L) -> Self {
        Self {
            limit_minor,
            ledger,
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    /// Fails transiently while `key` has failed fewer than `n` times.
    async fn fail_first(&self, key: &str, n: u32, what: &str) -> Result<(), Transient> {
        match self.ledger.next_failure(key, n).await? {
            Some(seen) => Err(Transient::new(format!(
                "payment provider timed out {what} (simulated failure {seen} of {n})"
            ))),
            None => Ok(()),
        }
    }

    async fn close(
        &self,
        id: &AuthorizationId,
        to: HoldStatus,
        done: GatewayResult,
    ) -> Result<GatewayResult, RecordError> {
        match self.ledger.close(id, to).await? {
            Closed::Done => Ok(done),
            Closed::Refused(now) => Err(RecordError::rejected(
                "provider_refused",
                format!("authorization {id} is {now}; it cannot be {to}"),
            )),
            Closed::Missing => Err(RecordError::rejected(
                "provider_refused",
                format!("authorization {id} is unknown to the provider"),
            )),
        }
    }
}

/// `n` from a token `<prefix><n>`.
fn count(token: &str, prefix: &str) -> Option<u32> {
    token.strip_prefix(prefix).and_then(|n| n.parse().ok())
}

impl<L: Ledger> PaymentGateway for Simulator<L> {
    async fn call(&self, call: &GatewayCall) -> Result<GatewayResult, RecordError> {
        match call {
            GatewayCall::Void {
                authorization_id, ..
            } => {
                self.close(authorization_id, HoldStatus::Voided, GatewayResult::Voided)
                    .await
            }
            GatewayCall::Capture {
                authorization_id, ..
            } => {
                self.close(
                    authorization_id,
                    HoldStatus::Captured,
                    GatewayResult::Captured,
                )
                .await
            }
            GatewayCall::Authorize {
                idempotency_key,
                order_id,
                amount_minor,
                currency,
                token,
            } => {
                let token = token.as_str();
                if let Some(n) = count(token, "tok_flaky_") {
                    self.fail_first(idempotency_key, n, "before authorizing")
                        .await?;
                }
                let status = if token.starts_with("tok_decline") {
                    HoldStatus::Declined(DeclineReason::CardDeclined)
                } else if amount_minor.0 > self.limit_minor {
                    HoldStatus::Declined(DeclineReason::OverLimit)
                } else {
                    HoldStatus::Open
                };
                let recorded = self
                    .ledger
                    .record(&Hold {
                        authorization_id: authorization_id(idempotency_key)?,
                        idempotency_key: idempotency_key.clone(),
                        order_id: order_id.clone(),
                        amount_minor: *amount_minor,
                        currency: *currency,
                        status,
                    })
                    .await?;
                if let Some(n) = count(token, "tok_timeout_") {
                    self.fail_first(idempotency_key, n, "after authorizing")
                        .await?;
                }
                Ok(match recorded.status {
                    HoldStatus::Declined(reason) => GatewayResult::Declined(reason),
                    // Open, or closed since: the authorization happened.
                    _ => GatewayResult::Authorized(recorded.authorization_id),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::{Currency, MinorUnits, OrderId, PaymentToken};

    use super::*;
    use crate::ledger::MemoryLedger;

    fn authorize(token: &str, amount: u64) -> GatewayCall {
        GatewayCall::authorize(
            &OrderId::new("ord-1").unwrap(),
            MinorUnits(amount),
            Currency::new("EUR").unwrap(),
            PaymentToken::new(token).unwrap(),
        )
    }

    fn simulator() -> Simulator<MemoryLedger> {
        Simulator::new(1000, MemoryLedger::new())
    }

    fn statuses(sim: &Simulator<MemoryLedger>) -> Vec<HoldStatus> {
        sim.ledger().holds().into_iter().map(|h| h.status).collect()
    }

    #[tokio::test]
    async fn simulator_rules() {
        for (token, amount, expect) in [
            ("tok_ok", 1000, None),
            (
                "tok_decline_x",
                10,
                Some(GatewayResult::Declined(DeclineReason::CardDeclined)),
            ),
            (
                "tok_ok",
                1001,
                Some(GatewayResult::Declined(DeclineReason::OverLimit)),
            ),
        ] {
            let sim = simulator();
            let answer = sim.call(&authorize(token, amount)).await.ok();
            match expect {
                None => assert!(matches!(answer, Some(GatewayResult::Authorized(_)))),
                Some(expect) => assert_eq!(answer, Some(expect)),
            }
        }
    }

    #[tokio::test]
    async fn a_flaky_token_fails_n_times_then_authorizes_with_a_stable_id() {
        let sim = simulator();
        let call = authorize("tok_flaky_2", 10);
        assert!(sim.call(&call).await.is_err());
        assert!(sim.call(&call).await.is_err());
        assert!(sim.ledger().holds().is_empty(), "nothing happened yet");
        let first = sim.call(&call).await.ok();
        assert!(matches!(first, Some(GatewayResult::Authorized(_))));
        assert_eq!(
            sim.call(&call).await.ok(),
            first,
            "same key, same authorization"
        );
        assert_eq!(statuses(&sim), [HoldStatus::Open]);
    }

    #[tokio::test]
    async fn a_flaky_token_fails_n_times_in_all_wherever_the_calls_land() {
        let ledger = std::sync::Arc::new(MemoryLedger::new());
        let here = Simulator::new(1000, std::sync::Arc::clone(&ledger));
        let there = Simulator::new(1000, std::sync::Arc::clone(&ledger));
        let call = authorize("tok_flaky_2", 10);
        assert!(here.call(&call).await.is_err(), "failure 1 of 2");
        assert!(there.call(&call).await.is_err(), "failure 2 of 2");
        assert!(
            matches!(here.call(&call).await, Ok(GatewayResult::Authorized(_))),
            "two failures in all, then the authorization"
        );
    }

    #[tokio::test]
    async fn a_timeout_after_authorizing_leaves_a_real_hold_that_the_same_key_finds() {
        let sim = simulator();
        let call = authorize("tok_timeout_1", 10);
        assert!(sim.call(&call).await.is_err(), "the caller saw a timeout");
        assert_eq!(statuses(&sim), [HoldStatus::Open], "but the hold is real");
        let again = sim.call(&call).await.ok();
        assert!(matches!(again, Some(GatewayResult::Authorized(_))));
        assert_eq!(sim.ledger().holds().len(), 1, "one hold, not two");
    }

    #[tokio::test]
    async fn a_hold_is_voided_or_captured_once_and_never_both() {
        let sim = simulator();
        let Ok(GatewayResult::Authorized(id)) = sim.call(&authorize("tok_ok", 10)).await else {
            panic!("not authorized")
        };
        let capture = GatewayCall::Capture {
            idempotency_key: "capture-ord-1".into(),
            authorization_id: id.clone(),
            amount_minor: MinorUnits(10),
        };
        let void = GatewayCall::Void {
            idempotency_key: "void-ord-1".into(),
            authorization_id: id,
        };
        assert_eq!(sim.call(&capture).await.ok(), Some(GatewayResult::Captured));
        assert_eq!(sim.call(&capture).await.ok(), Some(GatewayResult::Captured));
        let refused = sim
            .call(&void)
            .await
            .err()
            .unwrap_or_else(|| panic!("voided a capture"));
        assert!(refused.is_permanent());
        assert_eq!(statuses(&sim), [HoldStatus::Captured]);
    }
}
