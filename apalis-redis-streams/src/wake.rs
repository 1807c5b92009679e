//! Waking idle readers instead of polling them.
//!
//! A fetch that finds a partition empty marks it `sleeping` (a key in the partition's slot,
//! set by the same script, so no write can slip between the read and the mark). A write that
//! gives the partition work — an enqueue, a retry moved to the delayed set, a released or
//! revived job — deletes the mark in the same script (for plain commands, a small script in the
//! same pipeline) and, when there was one, publishes the partition's number on the queue's wake
//! channel. Every process subscribes to
//! the wake channels of the queues it reads (`Doorbell`, one connection per process; on a Redis
//! Cluster a classic PUBLISH reaches subscribers on every node) and rings the matching bells.
//!
//! So an idle reader costs Redis nothing until work arrives, or until its longest sleep
//! (`QueueConfig::idle_wait_max_ms`) or a delayed job's due time. Under load nobody sleeps, so
//! writers pay only for deleting a key that is not there. While the subscription is down, readers
//! poll every `idle_poll_ms` as before; after it comes back, every bell rings once, since a wake
//! may have been missed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, Notify};

/// The channel a queue's wakes go to; the message is the partition's number.
pub(crate) fn channel(queue: &str) -> String {
    format!("{CHANNEL_PREFIX}{queue}")
}

const CHANNEL_PREFIX: &str = "queue-wake:";

/// The subscription is pinged every this many seconds; one that does not answer within 5 s is
/// dropped and opened again (readers poll meanwhile).
const PING_EVERY_TICKS: u32 = 10;

/// A process's subscription to the wakes of the queues it reads, and the bells of the readers
/// waiting here.
pub struct Doorbell {
    live: AtomicBool,
    /// Every reader's bell, by queue; dropped bells are pruned as wakes come.
    bells: Mutex<HashMap<String, Vec<Weak<Bell>>>>,
    /// Queues read here for the first time, to subscribe to.
    new_queues: mpsc::UnboundedSender<String>,
}

/// One reader's bell: which of its partitions were rung since it last looked, and a permit to
/// wake it (kept if it is not waiting yet).
#[derive(Default)]
pub struct Bell {
    /// The partition a reader of one partition reads; `None`: every partition.
    partition: Option<u16>,
    notify: Notify,
    rung: Mutex<Rung>,
}

#[derive(Default)]
struct Rung {
    /// Everything may have work (the subscription came back; wakes may have been missed).
    all: bool,
    partitions: BTreeSet<u16>,
}

/// What woke a reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// Wakes for these partitions.
    Partitions(BTreeSet<u16>),
    /// A timeout, a due delayed job, or a wake that may have been missed: look at everything.
    Everything,
}

impl Bell {
    fn ring(&self, partition: Option<u16>) {
        if self.partition.is_some() && partition.is_some() && self.partition != partition {
            return;
        }
        {
            let mut rung = self.rung.lock().expect("bell lock");
            match partition {
                Some(partition) => {
                    rung.partitions.insert(partition);
                }
                None => rung.all = true,
            }
        }
        self.notify.notify_one();
    }

    /// Waits for a ring; what it rang for.
    pub(crate) async fn rung(&self) -> Woken {
        self.notify.notified().await;
        self.take().unwrap_or(Woken::Everything)
    }

    /// What rang since the last look, if anything.
    pub(crate) fn take(&self) -> Option<Woken> {
        let mut rung = self.rung.lock().expect("bell lock");
        if std::mem::take(&mut rung.all) {
            rung.partitions.clear();
            return Some(Woken::Everything);
        }
        let partitions = std::mem::take(&mut rung.partitions);
        (!partitions.is_empty()).then_some(Woken::Partitions(partitions))
    }
}

impl Doorbell {
    /// Subscribes through one of `urls` (in turn, reconnecting with backoff) until the doorbell
    /// is dropped.
    pub(crate) fn start(urls: Vec<String>) -> Arc<Doorbell> {
        let (new_queues, queues) = mpsc::unbounded_channel();
        let doorbell = Arc::new(Doorbell { live: AtomicBool::new(false), bells: Mutex::default(), new_queues });
        tokio::spawn(subscribe(Arc::downgrade(&doorbell), urls, queues));
        doorbell
    }

    /// A new bell for a reader of `partition` of `queue` (every partition: `None`). Take it
    /// before the fetch that may find nothing: a wake in between is kept for the next wait.
    pub fn bell(&self, queue: &str, partition: Option<u16>) -> Arc<Bell> {
        let bell = Arc::new(Bell { partition, ..Bell::default() });
        let mut bells = self.bells.lock().expect("bells lock");
        if !bells.contains_key(queue) {
            // The subscriber is gone only with the doorbell itself.
            let _ = self.new_queues.send(queue.to_owned());
        }
        bells.entry(queue.to_owned()).or_default().push(Arc::downgrade(&bell));
        bell
    }

    /// Whether wakes arrive now; if not, readers poll.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    fn ring(&self, queue: &str, partition: Option<u16>) {
        let mut bells = self.bells.lock().expect("bells lock");
        if let Some(readers) = bells.get_mut(queue) {
            readers.retain(|bell| bell.upgrade().map(|bell| bell.ring(partition)).is_some());
        }
    }

    fn ring_all(&self) {
        let mut bells = self.bells.lock().expect("bells lock");
        for readers in bells.values_mut() {
            readers.retain(|bell| bell.upgrade().map(|bell| bell.ring(None)).is_some());
        }
    }
}

/// Subscribes to the wake channel of every queue read here, through one of `urls` (in turn,
/// reconnecting with backoff), until the doorbell is dropped.
async fn subscribe(doorbell: Weak<Doorbell>, urls: Vec<String>, mut new_queues: mpsc::UnboundedReceiver<String>) {
    let mut queues: BTreeSet<String> = BTreeSet::new();
    let mut failures = 0u32;
    for url in urls.iter().cycle() {
        // Queues that were added while disconnected.
        while let Ok(queue) = new_queues.try_recv() {
            queues.insert(queue);
        }
        let connected = async {
            let client = redis::Client::open(url.as_str())?;
            let pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
                .await
                .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
            let (mut sink, stream) = pubsub.split();
            for queue in &queues {
                sink.subscribe(channel(queue)).await?;
            }
            Ok::<_, redis::RedisError>((sink, stream))
        }
        .await;
        let (mut sink, mut messages) = match connected {
            Ok(connection) => connection,
            Err(err) => {
                let Some(_) = doorbell.upgrade() else { return };
                failures += 1;
                tracing::warn!(%err, url, failures, "cannot subscribe to queue wakes; idle readers poll");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25)))).await;
                continue;
            }
        };
        failures = 0;
        {
            let Some(doorbell) = doorbell.upgrade() else { return };
            doorbell.live.store(true, Ordering::Relaxed);
            // A wake may have been published while nobody listened.
            doorbell.ring_all();
        }
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut since_ping = 0;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let Some(doorbell) = doorbell.upgrade() else { return };
                    let Some(queue) = message.get_channel_name().strip_prefix(CHANNEL_PREFIX) else { continue };
                    let partition = message.get_payload::<u16>().ok();
                    doorbell.ring(queue, partition);
                }
                Some(queue) = new_queues.recv() => {
                    if queues.insert(queue.clone()) && sink.subscribe(channel(&queue)).await.is_err() {
                        break;
                    }
                    // Its readers may have slept before the subscription took.
                    if let Some(doorbell) = doorbell.upgrade() {
                        doorbell.ring(&queue, None);
                    }
                }
                _ = check.tick() => {
                    if doorbell.strong_count() == 0 {
                        return;
                    }
                    // A half-open connection (its node gone in a failover) would deliver
                    // nothing while looking live: ask it to answer.
                    since_ping += 1;
                    if since_ping >= PING_EVERY_TICKS {
                        since_ping = 0;
                        let answered = tokio::time::timeout(Duration::from_secs(5), sink.ping::<String>()).await;
                        if !matches!(answered, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
        }
        let Some(doorbell) = doorbell.upgrade() else { return };
        doorbell.live.store(false, Ordering::Relaxed);
        doorbell.ring_all();
        tracing::warn!(url, "queue wake subscription lost; reconnecting");
    }
}
