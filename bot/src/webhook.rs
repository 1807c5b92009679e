//! `obentchi-bot webhook set | delete | info`: registering the webhook with Telegram is a
//! deploy step, run once, never at every replica's start (replicas racing `setWebhook` with
//! different settings is how webhooks get lost).

use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::types::AllowedUpdate;
use teloxide::Bot;

use crate::Config;

pub fn bot(config: &Config) -> anyhow::Result<Bot> {
    let token = config.telegram.bot_token.expose();
    Ok(Bot::new(token.as_str()).set_api_url(config.telegram.api_url.parse()?))
}

fn allowed_update(kind: &str) -> anyhow::Result<AllowedUpdate> {
    serde_json::from_value(serde_json::Value::String(kind.to_owned()))
        .map_err(|_| anyhow::anyhow!("webhook.allowed_updates: unknown update kind {kind:?}"))
}

pub async fn set(config: &Config) -> anyhow::Result<String> {
    let webhook = config
        .webhook
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("webhook: missing; `webhook set` needs webhook.secret and webhook.public_url"))?;
    let url = webhook
        .public_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("webhook.public_url: missing; `webhook set` needs the public URL"))?;
    let allowed: Vec<AllowedUpdate> = webhook.allowed_updates.iter().map(|k| allowed_update(k)).collect::<Result<_, _>>()?;
    bot(config)?
        .set_webhook(url.parse()?)
        .secret_token(webhook.secret.expose().as_str())
        .allowed_updates(allowed)
        .max_connections(webhook.max_connections)
        .await?;
    Ok(format!("webhook set to {url}"))
}

pub async fn delete(config: &Config) -> anyhow::Result<String> {
    bot(config)?.delete_webhook().await?;
    Ok("webhook deleted".into())
}

pub async fn info(config: &Config) -> anyhow::Result<String> {
    let info = bot(config)?.get_webhook_info().await?;
    Ok(serde_json::to_string_pretty(&info)?)
}
