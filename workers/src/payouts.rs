//! Which payout rail a withdrawal goes by: Crypto Pay `transfer` when its address is a Telegram
//! user id and its currency one of Crypto Pay's assets, the HTTP payout adapter for on-chain
//! addresses.

use obentchi_core::cryptopay::CryptoPay;
use obentchi_core::payout::{HttpPayoutProvider, LookupOutcome, PayoutProvider, PayoutRequest, SendOutcome};

#[derive(Clone)]
pub struct Payouts {
    pub http: HttpPayoutProvider,
    pub crypto_pay: Option<CryptoPay>,
}

impl Payouts {
    /// Crypto Pay for a transfer (its asset, to a Telegram id), the HTTP adapter for on-chain
    /// addresses. Decided by the withdrawal itself, not by today's configuration alone, so a
    /// lookup goes the way its send went even if Crypto Pay was enabled in between.
    fn crypto_pay_for(&self, request: &PayoutRequest) -> Option<&CryptoPay> {
        let to_telegram_account = request.address.parse::<i64>().is_ok();
        self.crypto_pay.as_ref().filter(|c| to_telegram_account && c.assets().contains(&request.currency))
    }
}

impl PayoutProvider for Payouts {
    async fn send(&self, request: &PayoutRequest) -> SendOutcome {
        match self.crypto_pay_for(request) {
            Some(crypto_pay) => crypto_pay.send(request).await,
            None => self.http.send(request).await,
        }
    }

    async fn lookup(&self, request: &PayoutRequest) -> Result<LookupOutcome, String> {
        match self.crypto_pay_for(request) {
            Some(crypto_pay) => crypto_pay.lookup(request).await,
            None => self.http.lookup(request).await,
        }
    }
}
