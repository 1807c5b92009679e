//! Which payout rail a withdrawal goes by: Crypto Pay `transfer` for the currencies Crypto Pay
//! is configured for (the address is the user's Telegram id), the HTTP payout adapter for the
//! rest (on-chain addresses).

use obentchi_core::cryptopay::CryptoPay;
use obentchi_core::payout::{HttpPayoutProvider, LookupOutcome, PayoutProvider, PayoutRequest, SendOutcome};

#[derive(Clone)]
pub struct Payouts {
    pub http: HttpPayoutProvider,
    pub crypto_pay: Option<CryptoPay>,
}

impl Payouts {
    /// Crypto Pay for its assets, the HTTP adapter for the rest; lookups go the way sends went.
    fn crypto_pay_for(&self, currency: obentchi_core::money::Currency) -> Option<&CryptoPay> {
        self.crypto_pay.as_ref().filter(|c| c.assets().contains(&currency))
    }
}

impl PayoutProvider for Payouts {
    async fn send(&self, request: &PayoutRequest) -> SendOutcome {
        match self.crypto_pay_for(request.currency) {
            Some(crypto_pay) => crypto_pay.send(request).await,
            None => self.http.send(request).await,
        }
    }

    async fn lookup(&self, request: &PayoutRequest) -> Result<LookupOutcome, String> {
        match self.crypto_pay_for(request.currency) {
            Some(crypto_pay) => crypto_pay.lookup(request).await,
            None => self.http.lookup(request).await,
        }
    }
}
