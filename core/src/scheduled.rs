//! Runs of periodic jobs. The scheduler's leader fires each job on its cron schedule by
//! enqueueing a `ScheduledRun` whose idempotency key is the run id `<job>:<scheduled_at ms>`:
//! a leader that fires a run twice (it crashed before recording it; a new leader fires it
//! again) enqueues it once.

use std::fmt;

use serde::{Deserialize, Serialize};


/// The periodic jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledJob {
    /// Recompute balances from ledger entries; a mismatch raises a metric.
    LedgerAudit,
    /// Re-drive withdrawals stuck in `approved`, `processing` or `releasing`.
    ReconcileWithdrawals,
    /// Re-enqueue payments stuck in `received`.
    ReconcilePayments,
    /// Read Telegram's Star transactions: credit charges never recorded, reverse refunds.
    ReconcileStars,
    /// Ask Crypto Pay about our open deposit invoices: record the paid ones whose webhook
    /// never came.
    ReconcileCryptoPay,
    /// Tell subscribers their subscription ends soon, or has ended; remove from a plan's private
    /// channel those whose access ended.
    SubscriptionNotices,
    /// Queue upkeep: export every queue's stats, drop old dead letters and departed consumers.
    QueueMaintenance,
    /// The day's figures, sent to the admins' chats.
    DailyReport,
}

impl ScheduledJob {
    pub const ALL: [ScheduledJob; 8] = [
        ScheduledJob::LedgerAudit,
        ScheduledJob::ReconcileWithdrawals,
        ScheduledJob::ReconcilePayments,
        ScheduledJob::ReconcileStars,
        ScheduledJob::ReconcileCryptoPay,
        ScheduledJob::SubscriptionNotices,
        ScheduledJob::QueueMaintenance,
        ScheduledJob::DailyReport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScheduledJob::LedgerAudit => "ledger_audit",
            ScheduledJob::ReconcileWithdrawals => "reconcile_withdrawals",
            ScheduledJob::ReconcilePayments => "reconcile_payments",
            ScheduledJob::ReconcileStars => "reconcile_stars",
            ScheduledJob::ReconcileCryptoPay => "reconcile_cryptopay",
            ScheduledJob::SubscriptionNotices => "subscription_notices",
            ScheduledJob::QueueMaintenance => "queue_maintenance",
            ScheduledJob::DailyReport => "daily_report",
        }
    }
}

impl fmt::Display for ScheduledJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One firing of a job: the job queue's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRun {
    pub job: ScheduledJob,
    /// The schedule's fire time (not when it was enqueued), in Unix milliseconds.
    pub scheduled_at_ms: i64,
}

impl ScheduledRun {
    /// `<job>:<scheduled_at ms>`: the same for every leader that fires this run.
    pub fn run_id(&self) -> String {
        format!("{}:{}", self.job, self.scheduled_at_ms)
    }
}
