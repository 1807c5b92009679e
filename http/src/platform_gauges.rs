//! What the API replicas export on every sample besides the queues' stats: the periodic
//! checks' latest figures (`job_reports`), how long the oldest withdrawal has waited for review,
//! whether MongoDB and Redis answer, and how many updates Telegram holds for our webhook. Every
//! replica reads the same sources, so `max()` over replicas is one figure; a replica that
//! stops sampling stops exporting, and its gauges go (the recorder's gauge idle timeout).

use apalis_redis_streams::RedisConn;
use obentchi_core::job_reports::JobReports;
use obentchi_core::storage::Store;
use obentchi_core::withdrawals::Withdrawals;
use teloxide::prelude::Requester;

pub struct PlatformGauges {
    pub store: Store,
    pub redis: RedisConn,
    pub job_reports: JobReports,
    pub withdrawals: Withdrawals,
    /// The Bot API, when the bot token is configured here (for `getWebhookInfo`).
    pub bot: Option<teloxide::Bot>,
}

impl PlatformGauges {
    /// Reads and exports each figure; one that cannot be read is left out (and goes stale,
    /// then absent), with a warning.
    pub async fn export(&self) {
        let (mongo_up, _) = obentchi_core::ops::check_dependencies(Some(&self.store), &self.redis).await;
        if let Some(bot) = &self.bot {
            match bot.get_webhook_info().await {
                Ok(info) => metrics::gauge!("telegram_webhook_pending_updates").set(f64::from(info.pending_update_count)),
                Err(err) => tracing::warn!(%err, "getWebhookInfo failed"),
            }
        }
        // MongoDB down: its figures go stale and then absent, and DependencyDown says why.
        if mongo_up == Some(false) {
            return;
        }
        match self.job_reports.all().await {
            Ok(reports) => {
                for (name, value) in reports.iter().flat_map(|r| &r.figures) {
                    metrics::gauge!(name.clone()).set(*value as f64);
                }
            }
            Err(err) => tracing::warn!(%err, "periodic checks' figures not read"),
        }
        match self.withdrawals.oldest_awaiting_review().await {
            Ok(oldest) => {
                let waited = oldest.map_or(0, |at| (chrono::Utc::now() - at).num_seconds().max(0));
                metrics::gauge!("withdrawals_awaiting_review_oldest_age_seconds").set(waited as f64);
            }
            Err(err) => tracing::warn!(%err, "withdrawals awaiting review not read"),
        }
    }
}
