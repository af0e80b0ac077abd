//! The payment provider port, and a deterministic simulator.
//!
//! A real provider is another implementation of [`PaymentGateway`]. Every
//! call carries an idempotency key derived from the order, so a retried call
//! can never charge twice.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use orderflow_contracts::{
    AuthorizationId, Currency, DeclineReason, MinorUnits, OrderId, PaymentToken,
};
use orderflow_runtime::Transient;

/// A call to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayCall {
    /// Authorize an amount on a payment method.
    Authorize {
        /// The provider's idempotency key: one authorization per order.
        idempotency_key: String,
        /// The order.
        order_id: OrderId,
        /// The amount.
        amount_minor: MinorUnits,
        /// Its currency.
        currency: Currency,
        /// The payment method.
        token: PaymentToken,
    },
    /// Void an earlier authorization.
    Void {
        /// The provider's idempotency key: one void per order.
        idempotency_key: String,
        /// The authorization to void.
        authorization_id: AuthorizationId,
    },
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayResult {
    /// Authorized, under this id.
    Authorized(AuthorizationId),
    /// Declined, for this reason.
    Declined(DeclineReason),
    /// Voided.
    Voided,
}

/// A payment provider.
pub trait PaymentGateway: Send + Sync {
    /// Makes one call. A transient error means "try again with the same
    /// idempotency key".
    fn call(
        &self,
        call: &GatewayCall,
    ) -> impl Future<Output = Result<GatewayResult, Transient>> + Send;
}

/// A deterministic stand-in for a payment provider. Its rules:
/// - a token starting with `tok_decline` is declined (`card_declined`);
/// - an amount over `limit_minor` is declined (`over_limit`);
/// - a token `tok_flaky_<n>` fails transiently `n` times per idempotency key
///   in this process, then authorizes;
/// - anything else is authorized, with an authorization id derived from the
///   idempotency key (the same key always gets the same id);
/// - a void always succeeds.
#[derive(Debug, Default)]
pub struct Simulator {
    limit_minor: u64,
    failures: Mutex<HashMap<String, u32>>,
}

impl Simulator {
    /// The default limit: 1,000,000 minor units.
    pub const DEFAULT_LIMIT_MINOR: u64 = 1_000_000;

    /// A simulator declining amounts over `limit_minor`.
    pub fn new(limit_minor: u64) -> Self {
        Self {
            limit_minor,
            failures: Mutex::default(),
        }
    }

    fn authorization_id(key: &str) -> Result<AuthorizationId, Transient> {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        AuthorizationId::new(format!("auth_{hash:016x}")).map_err(Transient::new)
    }
}

impl PaymentGateway for Simulator {
    async fn call(&self, call: &GatewayCall) -> Result<GatewayResult, Transient> {
        match call {
            GatewayCall::Void { .. } => Ok(GatewayResult::Voided),
            GatewayCall::Authorize {
                idempotency_key,
                amount_minor,
                token,
                ..
            } => {
                let token = token.as_str();
                if token.starts_with("tok_decline") {
                    return Ok(GatewayResult::Declined(DeclineReason::CardDeclined));
                }
                if amount_minor.0 > self.limit_minor {
                    return Ok(GatewayResult::Declined(DeclineReason::OverLimit));
                }
                if let Some(n) = token
                    .strip_prefix("tok_flaky_")
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
                    let seen = failures.entry(idempotency_key.clone()).or_insert(0);
                    if *seen < n {
                        *seen += 1;
                        return Err(Transient::new(format!(
                            "payment provider timed out (simulated failure {} of {n})",
                            *seen
                        )));
                    }
                }
                Ok(GatewayResult::Authorized(Self::authorization_id(
                    idempotency_key,
                )?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorize(token: &str, amount: u64) -> GatewayCall {
        GatewayCall::Authorize {
            idempotency_key: "authorize-ord-1".into(),
            order_id: OrderId::new("ord-1").unwrap_or_else(|e| panic!("{e}")),
            amount_minor: MinorUnits(amount),
            currency: Currency::new("EUR").unwrap_or_else(|e| panic!("{e}")),
            token: PaymentToken::new(token).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[tokio::test]
    async fn simulator_rules() {
        let sim = Simulator::new(1000);
        assert!(matches!(
            sim.call(&authorize("tok_ok", 1000)).await,
            Ok(GatewayResult::Authorized(_))
        ));
        assert_eq!(
            sim.call(&authorize("tok_decline_x", 10)).await.ok(),
            Some(GatewayResult::Declined(DeclineReason::CardDeclined))
        );
        assert_eq!(
            sim.call(&authorize("tok_ok", 1001)).await.ok(),
            Some(GatewayResult::Declined(DeclineReason::OverLimit))
        );
    }

    #[tokio::test]
    async fn a_flaky_token_fails_n_times_then_authorizes_with_a_stable_id() {
        let sim = Simulator::new(1000);
        let call = authorize("tok_flaky_2", 10);
        assert!(sim.call(&call).await.is_err());
        assert!(sim.call(&call).await.is_err());
        let first = sim.call(&call).await.ok();
        assert!(matches!(first, Some(GatewayResult::Authorized(_))));
        assert_eq!(
            sim.call(&call).await.ok(),
            first,
            "same key, same authorization"
        );
    }
}
