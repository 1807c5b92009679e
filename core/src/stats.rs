//! Platform figures for admins: the `/admin/stats` endpoint and the daily report. All of them
//! look across every user (fan-out queries served by the stats indexes).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::ledger::{Account, DayTotal, Ledger, LedgerError, PlatformAccount, PostingKind, UserAccount};
use crate::subscriptions::{SubscriptionError, Subscriptions};
use crate::users::Users;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlatformStats {
    pub users: u64,
    pub active_subscriptions: u64,
    /// From the start of this UTC day, `days - 1` days back.
    pub since: DateTime<Utc>,
    /// What users deposited, per day and currency.
    pub deposits: Vec<DayTotal>,
    /// What was paid out to users, per day and currency.
    pub withdrawals: Vec<DayTotal>,
    /// Subscriptions sold (the platform's revenue), per day and currency.
    pub revenue: Vec<DayTotal>,
    /// Referral commissions credited to referrers, per day and currency.
    pub commissions: Vec<DayTotal>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Subscriptions(#[from] SubscriptionError),
    #[error("users storage: {0}")]
    Storage(#[from] mongodb::error::Error),
}

/// The start of the last `days` UTC days before `now` (today included; at least today).
pub fn days_back(days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    today - Duration::days(i64::from(days.max(1)) - 1)
}

/// The figures for the last `days` UTC days (today included).
pub async fn collect(ledger: &Ledger, users: &Users, subscriptions: &Subscriptions, days: u32, now: DateTime<Utc>) -> Result<PlatformStats, StatsError> {
    let since = days_back(days, now);
    let deposits = ledger.totals_by_day(PostingKind::Deposit, &Account::User(UserAccount::Available), since);
    let withdrawals = ledger.totals_by_day(PostingKind::PayoutSettle, &Account::Platform(PlatformAccount::PayoutClearing), since);
    let revenue = ledger.totals_by_day(PostingKind::SubscriptionPurchase, &Account::Platform(PlatformAccount::Revenue), since);
    let commissions = ledger.totals_by_day(PostingKind::ReferralCommission, &Account::User(UserAccount::Available), since);
    let (users, active_subscriptions, deposits, withdrawals, revenue, commissions) = tokio::try_join!(
        async { Ok::<_, StatsError>(users.count().await?) },
        async { Ok(subscriptions.active_count(now).await?) },
        async { Ok(deposits.await?) },
        async { Ok(withdrawals.await?) },
        async { Ok(revenue.await?) },
        async { Ok(commissions.await?) },
    )?;
    Ok(PlatformStats { users, active_subscriptions, since, deposits, withdrawals, revenue, commissions })
}
