//! The scheduled jobs: what a `ScheduledRun` fired by the scheduler's leader does.
//!
//! A run is delivered at least once, so every job is safe to repeat: the audit only reads, and
//! everything the others enqueue carries an idempotency key (a withdrawal or payment job keyed
//! by the run id, a notice keyed by its period, a report keyed by the run), so a repeated run
//! enqueues nothing new.

use obentchi_core::job_reports::{self, JobReports};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use apalis_redis_streams::Queue;
use obentchi_core::cryptopay::{CryptoPay, DepositError, DepositInvoices, Invoice};
use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::ledger::Ledger;
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::ids::{ProviderId, UserId};
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentError, PaymentJob, Payments, RefundAnswer, RefundOutcome, TELEGRAM_STARS};
use obentchi_core::scheduled::{ScheduledJob, ScheduledRun};
use obentchi_core::stats;
use obentchi_core::subscriptions::{Notice, Subscriptions};
use obentchi_core::users::{Notification, Users};
use obentchi_core::withdrawals::{WithdrawalJob, WithdrawalStatus, Withdrawals};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduledJobsConfig {
    /// A withdrawal or payment untouched this long while it should be moving is re-driven.
    pub stuck_after_ms: u64,
    /// The most withdrawals or payments one reconciler run re-drives.
    pub reconcile_batch: u32,
    /// A withdrawal in `processing` this long without a definitive answer from the provider is
    /// counted in `withdrawals_stuck` (alerted on, listed by `/admin/withdrawals/stuck`).
    pub withdrawal_alert_after_ms: u64,
    /// The Stars and Crypto Pay reconcilers leave payments younger than this to the webhook
    /// path (whose update may still be on its way), and read them on a later run.
    pub stars_grace_ms: u64,
    /// Users audited at once by the ledger audit.
    pub audit_concurrency: usize,
    /// How long before a subscription ends its subscriber is reminded.
    pub remind_before_hours: u32,
    /// How long after a subscription ended the "ended" notice is still sent (a longer outage
    /// skips it rather than sending stale news).
    pub ended_notice_within_hours: u32,
    /// Dead letters older than this are deleted.
    pub dead_letter_retention_days: u32,
    /// Consumers idle this long and holding nothing are removed from their groups.
    pub consumer_idle_prune_ms: u64,
    /// Telegram chats that get the daily report and dead-letter notices of the money queues.
    pub admin_chat_ids: Vec<i64>,
}

impl Default for ScheduledJobsConfig {
    fn default() -> Self {
        ScheduledJobsConfig {
            stuck_after_ms: 5 * 60_000,
            reconcile_batch: 500,
            withdrawal_alert_after_ms: 3_600_000,
            stars_grace_ms: 60_000,
            audit_concurrency: 8,
            remind_before_hours: 24,
            ended_notice_within_hours: 24,
            dead_letter_retention_days: 14,
            consumer_idle_prune_ms: 3_600_000,
            admin_chat_ids: Vec::new(),
        }
    }
}

/// Everything the scheduled jobs touch.
#[derive(Clone)]
pub struct ScheduledJobs {
    pub config: ScheduledJobsConfig,
    pub ledger: Ledger,
    pub users: Users,
    pub payments: Payments,
    pub withdrawals: Withdrawals,
    pub subscriptions: Subscriptions,
    pub payment_jobs: Queue,
    pub withdrawal_jobs: Queue,
    pub outbound: Queue,
    /// Every queue of the platform, for upkeep.
    pub all_queues: Vec<Queue>,
    /// The Bot API, for the Stars reconciler's `getStarTransactions`.
    pub bot: teloxide::Bot,
    /// Crypto Pay and our deposit invoices, when Crypto Pay is configured.
    pub crypto_pay: Option<(CryptoPay, DepositInvoices)>,
    /// Where the audit's and the stuck-withdrawal count's figures go (exported by the API).
    pub job_reports: JobReports,
}

/// Star transactions the Stars reconciler reads again before where the last run stopped: cheap
/// insurance against a cursor saved ahead of a crash.
const STARS_OVERLAP: u64 = 100;
/// Pages (of 100) one run reads at most; the next run goes on from there.
const STARS_PAGES_PER_RUN: u32 = 100;
/// How far back upkeep looks for dead letters on the money queues to announce (upkeep runs every
/// 5 minutes; a few missed runs still find them).
const DEAD_LETTER_NOTICE_WINDOW: Duration = Duration::from_secs(3_600);
/// Withdrawals awaiting review the daily report lists at most (the admin API lists them all).
const REPORTED_REVIEWS: u32 = 20;

impl ScheduledJobs {
    pub async fn run(&self, run: &ScheduledRun) -> anyhow::Result<()> {
        let run_id = run.run_id();
        match run.job {
            ScheduledJob::LedgerAudit => self.ledger_audit().await,
            ScheduledJob::ReconcileWithdrawals => self.reconcile_withdrawals(&run_id).await,
            ScheduledJob::ReconcilePayments => self.reconcile_payments(&run_id).await,
            ScheduledJob::ReconcileStars => self.reconcile_stars().await,
            ScheduledJob::ReconcileCryptoPay => self.reconcile_crypto_pay().await,
            ScheduledJob::SubscriptionNotices => self.subscription_notices().await,
            ScheduledJob::QueueMaintenance => self.queue_maintenance().await,
            ScheduledJob::DailyReport => self.daily_report(&run_id).await,
        }
        .with_context(|| format!("scheduled run {run_id}"))
    }

    /// Recomputes every balance from its entries and records the figures (`job_reports`), which
    /// the API replicas export as `ledger_audit_mismatches`, what the "ledger audit mismatch"
    /// alert watches.
    async fn ledger_audit(&self) -> anyhow::Result<()> {
        let report = self.ledger.audit_all(self.config.audit_concurrency).await?;
        let figures = [
            ("ledger_audit_mismatches", report.mismatches.len() as i64),
            ("ledger_audit_users", report.users as i64),
            ("ledger_audit_last_run_timestamp_seconds", Utc::now().timestamp()),
        ];
        for mismatch in &report.mismatches {
            tracing::error!(?mismatch, "ledger audit: balance differs from its entries");
        }
        tracing::info!(users = report.users, mismatches = report.mismatches.len(), "ledger audit done");
        // Failing here fails the run, which is retried: the figures must reach the alert.
        self.job_reports.record(job_reports::LEDGER_AUDIT, &figures).await?;
        Ok(())
    }

    fn stuck_cutoff(&self) -> chrono::DateTime<Utc> {
        Utc::now() - chrono::Duration::milliseconds(self.config.stuck_after_ms as i64)
    }

    /// Enqueues a job for every withdrawal stuck mid-way. The key includes the run id: the job
    /// that vanished may still hold its own key in Redis, and this run must not be deduplicated
    /// against it. Processing is a compare-and-set, so a second job for one withdrawal is harmless.
    async fn reconcile_withdrawals(&self, run_id: &str) -> anyhow::Result<()> {
        let alert_cutoff = Utc::now() - chrono::Duration::milliseconds(self.config.withdrawal_alert_after_ms as i64);
        let unresolved = self.withdrawals.count_stuck_processing(alert_cutoff).await?;
        if unresolved > 0 {
            tracing::error!(unresolved, "withdrawals in processing without a definitive provider answer: see /admin/withdrawals/stuck");
        }
        let stuck = self.withdrawals.stuck(self.stuck_cutoff(), self.config.reconcile_batch).await?;
        // Re-driving comes first: a failed write of the figure must not hold money back.
        requeue(&self.withdrawal_jobs, &stuck, WithdrawalJob::job_key, run_id, "withdrawal").await?;
        self.job_reports.record(job_reports::WITHDRAWALS_STUCK, &[("withdrawals_stuck", unresolved as i64)]).await?;
        Ok(())
    }

    /// Enqueues a job for every payment recorded but not credited (its job lost or dead).
    async fn reconcile_payments(&self, run_id: &str) -> anyhow::Result<()> {
        let stuck = self.payments.stuck(self.stuck_cutoff(), self.config.reconcile_batch).await?;
        requeue(&self.payment_jobs, &stuck, PaymentJob::job_key, run_id, "payment").await
    }

    /// Telegram's own list of Star transactions, read from where the last run stopped: every
    /// charge we never recorded (its `successful_payment` update was lost to a Redis failover, or
    /// dead-lettered) is recorded and credited, and every refund reverses its deposit. Keyed by
    /// `telegram_payment_charge_id`, as the webhook path is, so the two never credit twice.
    /// Asks Crypto Pay about every deposit invoice still open that is older than the grace
    /// period (its webhook may be on its way): a paid one is recorded and its payment job
    /// enqueued, exactly as the webhook would have; an expired one is closed.
    async fn reconcile_crypto_pay(&self) -> anyhow::Result<()> {
        let Some((api, invoices)) = &self.crypto_pay else { return Ok(()) };
        let before = Utc::now() - chrono::Duration::milliseconds(self.config.stars_grace_ms as i64);
        let open = invoices.still_open(before, 1_000).await?;
        if open.is_empty() {
            return Ok(());
        }
        let answered = api.invoices(&open).await.context("getInvoices")?;
        for missing in open.iter().filter(|id| !answered.iter().any(|i| i.invoice_id == **id)) {
            invoices.vanished(*missing).await?;
        }
        // One invoice that cannot be handled is reported and closed; the others go on.
        for invoice in answered {
            if let Err(err) = self.reconcile_invoice(invoices, &invoice).await {
                metrics::counter!("cryptopay_reconciler_total", "outcome" => "error").increment(1);
                tracing::error!(invoice = invoice.invoice_id, %err, "a Crypto Pay invoice could not be reconciled");
            }
        }
        Ok(())
    }

    async fn reconcile_invoice(&self, invoices: &DepositInvoices, invoice: &Invoice) -> anyhow::Result<()> {
        match invoice.status.as_str() {
            "paid" => {
                let payment = match invoices.payment_for(invoice).await {
                    Ok(payment) => payment,
                    Err(DepositError::Storage(err)) => return Err(err.into()),
                    Err(err) => {
                        invoices.mismatched(invoice).await?;
                        return Err(err.into());
                    }
                };
                self.payments.record(&payment).await?;
                self.payment_jobs.enqueue(&payment, Some(&payment.job_key())).await?;
                invoices.recorded(&payment).await?;
                metrics::counter!("cryptopay_reconciler_total", "outcome" => "recorded").increment(1);
                tracing::warn!(invoice = invoice.invoice_id, "recorded a paid Crypto Pay invoice whose webhook never came");
            }
            "expired" => invoices.expired(invoice).await?,
            _ => {}
        }
        Ok(())
    }

    async fn reconcile_stars(&self) -> anyhow::Result<()> {
        use teloxide::payloads::GetStarTransactionsSetters;
        use teloxide::prelude::Requester;
        use teloxide::types::TelegramTransactionId;
        let provider = ProviderId::new(TELEGRAM_STARS)?;
        let read = self.payments.transactions_read(&provider).await?;
        let mut offset = read.saturating_sub(STARS_OVERLAP);
        let settled_before = Utc::now() - chrono::Duration::milliseconds(self.config.stars_grace_ms as i64);
        for _ in 0..STARS_PAGES_PER_RUN {
            let page = self.bot.get_star_transactions().offset(offset as u32).limit(100).await.context("getStarTransactions")?;
            // Chronological: stop at the first one still within the grace period.
            let ready = page.transactions.iter().take_while(|t| t.date <= settled_before).count();
            for transaction in &page.transactions[..ready] {
                self.reconcile_star_transaction(&provider, transaction).await?;
            }
            offset += ready as u64;
            self.payments.set_transactions_read(&provider, offset.max(read)).await?;
            if ready < 100 {
                break;
            }
        }
        // Refunds an admin asked for without a definitive answer from Telegram: ask again (a
        // refund that did happen answers CHARGE_ALREADY_REFUNDED).
        for (user, charge) in self.payments.pending_refunds(&provider, self.config.reconcile_batch).await? {
            let asked = self.bot.refund_star_payment(teloxide::types::UserId(user.get() as u64), TelegramTransactionId(charge.clone())).await;
            let answer = match &asked {
                Ok(_) => RefundAnswer::from_telegram(None),
                Err(teloxide::RequestError::Api(err)) => RefundAnswer::from_telegram(Some(&err.to_string())),
                Err(other) => RefundAnswer::NoAnswer(other.to_string()),
            };
            self.payments.settle_refund(&provider, &charge, &answer).await?;
        }
        Ok(())
    }

    async fn reconcile_star_transaction(&self, provider: &ProviderId, transaction: &teloxide::types::StarTransaction) -> anyhow::Result<()> {
        use teloxide::types::{TransactionPartner, TransactionPartnerUserKind};
        let charge = &transaction.id.0;
        let user_of = |partner: &Option<TransactionPartner>| match partner {
            Some(TransactionPartner::User(partner)) if matches!(partner.kind, TransactionPartnerUserKind::InvoicePayment(_)) => {
                UserId::new(partner.user.id.0 as i64).ok()
            }
            _ => None,
        };
        if let Some(user_id) = user_of(&transaction.source) {
            let payment = PaymentJob {
                user_id,
                provider: provider.clone(),
                external_id: charge.clone(),
                amount: Money::from_minor(Currency::Xtr, i64::from(transaction.amount)),
            };
            match self.payments.record(&payment).await {
                Ok(()) => {}
                Err(PaymentError::Conflict(id)) => {
                    metrics::counter!("stars_reconciler_total", "outcome" => "conflict").increment(1);
                    tracing::error!(payment = id, "Telegram reports a Stars charge that conflicts with the one recorded");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
            if let obentchi_core::ledger::PostOutcome::Applied(_) = self.payments.credit(&payment).await? {
                metrics::counter!("stars_reconciler_total", "outcome" => "credited").increment(1);
                tracing::warn!(charge, user = %user_id, "credited a Stars payment the webhook path had not");
            }
        } else if user_of(&transaction.receiver).is_some() {
            match self.payments.refund(provider, charge).await? {
                RefundOutcome::Reversed(obentchi_core::ledger::PostOutcome::Applied(_)) => {
                    metrics::counter!("stars_reconciler_total", "outcome" => "refunded").increment(1);
                }
                RefundOutcome::Reversed(_) => {}
                RefundOutcome::Uncovered => tracing::error!(charge, "Telegram refunded a Stars payment whose money the user had spent"),
                RefundOutcome::UnknownPayment => tracing::error!(charge, "Telegram refunded a Stars payment we never recorded"),
            }
        }
        Ok(())
    }

    /// "Ends soon" and "ended" messages, once per period and only for the period that ends the
    /// subscription (a renewed one is retired silently). The message is enqueued (keyed by the
    /// period) before the notice is recorded, so a crash in between repeats the enqueue, which
    /// the key absorbs, instead of losing the message.
    async fn subscription_notices(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        let windows = [
            (Notice::EndsSoon, self.config.remind_before_hours),
            (Notice::Ended, self.config.ended_notice_within_hours),
        ];
        for (notice, hours) in windows {
            let window = chrono::Duration::hours(i64::from(hours));
            let due = self.subscriptions.due_notices(notice, now, window, self.config.reconcile_batch).await?;
            let mut sent = 0u64;
            for period in &due {
                // Both notices are reminders: a user who turned them off (/notifications) gets
                // neither, and the notice counts as given.
                let profile = self.users.profile(period.user_id).await?.unwrap_or_default();
                if Notification::Reminders.is_on_for(&profile) && self.subscriptions.is_last(period).await? {
                    let lang = Lang::for_user(&profile, profile.telegram_language.as_deref());
                    let text = match notice {
                        Notice::EndsSoon => tr(lang, Text::SubscriptionEndsSoon, &[("date", &period.expires_at)]),
                        Notice::Ended => tr(lang, Text::SubscriptionExpired, &[]),
                    };
                    let message = OutboundMessage::text(period.user_id.get(), text);
                    self.outbound.enqueue(&message, Some(&format!("sub-notice:{}:{}", notice.name(), period.id))).await?;
                    sent += 1;
                }
                self.subscriptions.notice_given(period, notice).await?;
            }
            metrics::counter!("subscription_notices_total", "notice" => notice.name()).increment(sent);
        }
        self.settle_channel_access(now).await
    }

    /// Removes from a plan's channel each user whose period granting it ended, and tells them
    /// (whatever their /notifications say: this is not a reminder); a user whose later period
    /// grants the same channel stays. Ban then unban: out of the channel, free to come back with
    /// a new subscription. Telegram refusing (the bot lost its admin rights) leaves the period
    /// due again in an hour, logged each time until someone fixes the rights, without holding
    /// back the others.
    async fn settle_channel_access(&self, now: chrono::DateTime<Utc>) -> anyhow::Result<()> {
        use teloxide::payloads::UnbanChatMemberSetters;
        use teloxide::prelude::Requester;
        use teloxide::types::{ChatId, UserId as TelegramUserId};
        for period in self.subscriptions.due_access_removals(now, self.config.reconcile_batch).await? {
            let Some(chat) = period.channel else { continue };
            if !self.subscriptions.grants_access(period.user_id, chat, now).await? {
                let user = TelegramUserId(period.user_id.get() as u64);
                let removed = async {
                    self.bot.ban_chat_member(ChatId(chat), user).await?;
                    self.bot.unban_chat_member(ChatId(chat), user).only_if_banned(true).await
                };
                if let Err(err) = removed.await {
                    tracing::error!(%err, chat, user = %period.user_id, "could not remove a user whose access ended; trying again in an hour");
                    self.subscriptions.access_retry_after(&period, now + chrono::Duration::hours(1)).await?;
                    continue;
                }
                let lang = self.users.language(period.user_id).await?;
                let message = OutboundMessage::text(period.user_id.get(), tr(lang, Text::AccessEnded, &[]));
                self.outbound.enqueue(&message, Some(&format!("access-ended:{}", period.id))).await?;
            }
            self.subscriptions.access_settled(&period).await?;
        }
        Ok(())
    }

    /// Tells the admin chats of dead letters on the money queues, then drops old dead letters
    /// and departed consumers.
    async fn queue_maintenance(&self) -> anyhow::Result<()> {
        self.announce_money_dead_letters().await?;
        let retention = Duration::from_secs(u64::from(self.config.dead_letter_retention_days) * 86_400);
        let idle = Duration::from_millis(self.config.consumer_idle_prune_ms);
        for queue in &self.all_queues {
            let trimmed = queue.trim_dead_letters(retention).await?;
            let pruned = queue.prune_consumers(idle).await?;
            if trimmed + pruned > 0 {
                tracing::info!(queue = queue.name(), trimmed, pruned, "queue upkeep");
            }
        }
        Ok(())
    }

    /// Every dead letter buried on the payments or withdrawals queue in the last
    /// `DEAD_LETTER_NOTICE_WINDOW`, to every admin chat: what it was, why it died, how to retry
    /// or discard it. Upkeep runs every few minutes, well inside the window, and each notice is
    /// keyed by the dead letter (the outbound queue's keys outlive the window), so each is told
    /// once.
    async fn announce_money_dead_letters(&self) -> anyhow::Result<()> {
        if self.config.admin_chat_ids.is_empty() {
            return Ok(());
        }
        let since = apalis_redis_streams::now_ms().saturating_sub(DEAD_LETTER_NOTICE_WINDOW.as_millis() as u64);
        for queue in [&self.payment_jobs, &self.withdrawal_jobs] {
            for letter in queue.dead_letters_since(since, 100).await? {
                let (name, id, preview) = (queue.name(), &letter.id, letter.payload_preview(300));
                let text = format!(
                    "Dead letter on the {name} queue: {id}\nError: {error}\nJob: {preview}\nRetry: POST /admin/queues/{name}/dead-letters/{id}/retry\nDiscard: POST /admin/queues/{name}/dead-letters/{id}/discard",
                    error = letter.error,
                );
                for chat in &self.config.admin_chat_ids {
                    self.outbound.enqueue(&OutboundMessage::text(*chat, text.clone()), Some(&format!("dead-letter:{name}:{id}:{chat}"))).await?;
                }
            }
        }
        Ok(())
    }

    /// Yesterday and today in numbers, plus the queues' dead letters, to every admin chat.
    async fn daily_report(&self, run_id: &str) -> anyhow::Result<()> {
        if self.config.admin_chat_ids.is_empty() {
            return Ok(());
        }
        let figures = stats::collect(&self.ledger, &self.users, &self.subscriptions, 2, Utc::now()).await?;
        let mut text = format!(
            "Daily report ({})\nUsers: {}\nActive subscriptions: {}\n",
            Utc::now().format("%Y-%m-%d"),
            figures.users,
            figures.active_subscriptions
        );
        for (title, totals) in [("Deposits", &figures.deposits), ("Paid out", &figures.withdrawals)] {
            let lines: Vec<String> = totals.iter().map(|t| format!("{} {}", t.day, t.amount)).collect();
            text += &format!("{title}: {}\n", if lines.is_empty() { "none".to_owned() } else { lines.join(", ") });
        }
        for queue in &self.all_queues {
            let dead = queue.stats().await?.dead;
            if dead > 0 {
                text += &format!("Dead letters in {}: {dead}\n", queue.name());
            }
        }
        // What still waits for an admin (the most recently changed first; the list is capped).
        let waiting = self.withdrawals.list(Some(WithdrawalStatus::Requested), None, REPORTED_REVIEWS).await?;
        if !waiting.is_empty() {
            text += "Waiting for review (POST /admin/withdrawals/<id>/approve or /reject):\n";
            for w in &waiting {
                text += &format!("{} user {} {} since {}\n", w.id, w.user_id, w.amount, w.created_at.format("%Y-%m-%d %H:%M UTC"));
            }
        }
        for chat in &self.config.admin_chat_ids {
            self.outbound.enqueue(&OutboundMessage::text(*chat, text.clone()), Some(&format!("report:{run_id}:{chat}"))).await?;
        }
        Ok(())
    }
}

/// Enqueues `jobs` on `queue`, each keyed `<its job key>:<run id>` (see `reconcile_withdrawals`).
async fn requeue<T: Serialize>(queue: &Queue, jobs: &[T], job_key: fn(&T) -> String, run_id: &str, kind: &'static str) -> anyhow::Result<()> {
    for job in jobs {
        queue.enqueue(job, Some(&format!("{}:{run_id}", job_key(job)))).await?;
    }
    metrics::counter!("reconciler_requeued_total", "kind" => kind).increment(jobs.len() as u64);
    tracing::info!(kind, requeued = jobs.len(), "reconciled");
    Ok(())
}
