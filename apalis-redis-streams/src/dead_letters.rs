//! Jobs that used up their attempts: listed, put back with fresh attempts, discarded, trimmed.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::wake;
use crate::{now_ms, Envelope, Queue, QueueError};

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetter {
    /// `<partition>-<stream entry id>`: what retry and discard take.
    pub id: String,
    pub job_id: String,
    pub key: Option<String>,
    pub error: String,
    pub died_at_ms: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Box<RawValue>,
}

impl DeadLetter {
    /// The job's payload cut to `chars` characters, with `…` if it was longer: for a table cell
    /// or a notice.
    pub fn payload_preview(&self, chars: usize) -> String {
        let payload = self.payload.get();
        let mut shown: String = payload.chars().take(chars).collect();
        if payload.chars().nth(chars).is_some() {
            shown.push('…');
        }
        shown
    }
}

impl Queue {
    /// The oldest dead letters, up to `limit` per partition.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        self.dead_letters_since(0, limit).await
    }

    /// The oldest dead letters buried at or after `since_ms` (Redis's clock), up to `limit` per
    /// partition.
    pub async fn dead_letters_since(&self, since_ms: u64, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut letters = Vec::new();
        for partition in self.partitions() {
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(self.dead_key(partition))
                .arg(since_ms)
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut self.redis.clone())
                .await?;
            for (entry_id, fields) in entries {
                letters.push(dead_letter(partition, entry_id, fields)?);
            }
        }
        Ok(letters)
    }

    fn parse_dead_id(&self, id: &str) -> Option<(u16, String)> {
        let (partition, entry) = id.split_once('-')?;
        let partition: u16 = partition.parse().ok()?;
        (partition < self.config.partitions).then(|| (partition, entry.to_owned()))
    }

    /// Puts a dead letter back on the queue with fresh attempts. `false` if it no longer exists.
    pub async fn retry_dead(&self, id: &str) -> Result<bool, QueueError> {
        let Some((partition, entry_id)) = self.parse_dead_id(id) else { return Ok(false) };
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.dead_key(partition))
            .arg(&entry_id)
            .arg(&entry_id)
            .query_async(&mut self.redis.clone())
            .await?;
        let Some((_, fields)) = entries.into_iter().next() else { return Ok(false) };
        let letter = dead_letter(partition, entry_id.clone(), fields)?;
        let envelope = Envelope {
            id: letter.job_id,
            key: letter.key,
            attempts: 0,
            enqueued_at_ms: now_ms(),
            payload: letter.payload,
        };
        self.revive(partition, &entry_id, &envelope.encode()).await
    }

    /// Deletes a dead letter for good. `false` if it no longer exists.
    pub async fn discard_dead(&self, id: &str) -> Result<bool, QueueError> {
        let Some((partition, entry_id)) = self.parse_dead_id(id) else { return Ok(false) };
        self.revive(partition, &entry_id, "").await
    }

    /// Deletes dead letters older than `age` (they were reported by the dead-letter alert and
    /// left alone); returns how many went.
    pub async fn trim_dead_letters(&self, age: Duration) -> Result<u64, QueueError> {
        let min_id = now_ms().saturating_sub(age.as_millis() as u64);
        let mut trimmed = 0;
        for partition in self.partitions() {
            let n: u64 = redis::cmd("XTRIM")
                .arg(self.dead_key(partition))
                .arg("MINID")
                .arg(min_id)
                .query_async(&mut self.redis.clone())
                .await?;
            trimmed += n;
        }
        Ok(trimmed)
    }

    /// Removes consumers (from processes that exited) that hold no jobs and were idle longer

    async fn revive(&self, partition: u16, entry_id: &str, envelope: &str) -> Result<bool, QueueError> {
        let revived: i64 = self
            .scripts
            .revive
            .key(self.dead_key(partition))
            .key(self.stream_key(partition))
            .key(self.sleeping_key(partition))
            .arg(entry_id)
            .arg(envelope)
            .arg(wake::channel(&self.name))
            .arg(partition)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(revived == 1)
    }
}

fn dead_letter(partition: u16, entry_id: String, fields: Vec<(String, String)>) -> Result<DeadLetter, QueueError> {
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let envelope: Envelope = serde_json::from_str(field("j").ok_or_else(|| QueueError::Reply("dead letter without job".into()))?)?;
    Ok(DeadLetter {
        id: format!("{partition}-{entry_id}"),
        job_id: envelope.id,
        key: envelope.key,
        error: field("e").unwrap_or_default().to_owned(),
        died_at_ms: field("t").and_then(|t| t.parse().ok()).unwrap_or_default(),
        payload: envelope.payload,
    })
}
