//! Group commit: keyed enqueues made at the same time share round trips.
//!
//! Every keyed enqueue of a `Queue` (and its clones) goes to one task. The task takes whatever
//! is waiting — nothing is held back to gather more, so a lone enqueue goes out at once — and
//! sends it as one pipeline: one enqueue script call per partition, carrying every job waiting
//! for that partition in order. While that round trip is under way, new enqueues gather for the
//! next one. Under load a round trip carries many jobs, which is where Redis and the callers
//! spend less per job; idle, an enqueue costs one hop through a channel more than before.

use std::collections::BTreeMap;

use redis::{RedisError, Value};
use tokio::sync::{mpsc, oneshot};

use crate::{Enqueued, Envelope, Queue, QueueError};

/// The most jobs one script call carries.
const MAX_JOBS_PER_CALL: usize = 256;

/// Jobs for one partition, and where their outcome goes.
pub(crate) struct Request {
    pub partition: u16,
    pub jobs: Vec<(Envelope, String)>,
    pub answer: oneshot::Sender<Result<Vec<Enqueued>, QueueError>>,
}

/// Starts the committing task of `queue` (a handle without a committer of its own, so the task
/// ends once every clone of the queue is gone).
pub(crate) fn start(queue: Queue) -> mpsc::UnboundedSender<Request> {
    let (requests, receiver) = mpsc::unbounded_channel();
    tokio::spawn(commit(queue, receiver));
    requests
}

async fn commit(queue: Queue, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut waiting = Vec::new();
    while requests.recv_many(&mut waiting, MAX_JOBS_PER_CALL).await > 0 {
        // Per partition, in arrival order: the calls of one round trip, at most
        // MAX_JOBS_PER_CALL jobs each.
        let mut calls: BTreeMap<u16, Vec<Vec<Request>>> = BTreeMap::new();
        for request in waiting.drain(..) {
            let partition_calls = calls.entry(request.partition).or_default();
            let room = partition_calls.last().is_some_and(|c| c.iter().map(|r| r.jobs.len()).sum::<usize>() + request.jobs.len() <= MAX_JOBS_PER_CALL);
            if !room {
                partition_calls.push(Vec::new());
            }
            partition_calls.last_mut().expect("pushed above").push(request);
        }
        let calls: Vec<(u16, Vec<Request>)> = calls.into_iter().flat_map(|(p, calls)| calls.into_iter().map(move |c| (p, c))).collect();
        let replies = round_trip(&queue, &calls).await;
        for ((_, call), reply) in calls.into_iter().zip(replies) {
            answer(&queue, call, reply);
        }
    }
}

/// Sends every call in one pipeline; one reply per call. A script the server does not know yet
/// (first use, or after a restart) is loaded by sending each call on its own.
async fn round_trip(queue: &Queue, calls: &[(u16, Vec<Request>)]) -> Vec<Result<Value, RedisError>> {
    let invocations: Vec<_> = calls
        .iter()
        .map(|(partition, call)| queue.enqueue_invocation(*partition, call.iter().flat_map(|r| r.jobs.iter().map(|(e, k)| (e, k.as_str())))))
        .collect();
    let mut pipe = redis::pipe();
    for invocation in &invocations {
        pipe.invoke_script(invocation);
    }
    match pipe.query_async::<Vec<Value>>(&mut queue.redis.clone()).await {
        Ok(values) => values.into_iter().map(Ok).collect(),
        Err(err) if err.code() == Some("NOSCRIPT") => {
            let mut replies = Vec::with_capacity(invocations.len());
            for invocation in &invocations {
                replies.push(invocation.invoke_async(&mut queue.redis.clone()).await);
            }
            replies
        }
        Err(err) => calls.iter().map(|_| Err(err.clone())).collect(),
    }
}

/// Hands each request of a call its jobs' outcomes.
fn answer(queue: &Queue, call: Vec<Request>, reply: Result<Value, RedisError>) {
    let value = match reply {
        Ok(value) => value,
        Err(err) => {
            for request in call {
                let _ = request.answer.send(Err(QueueError::Redis(err.clone())));
            }
            return;
        }
    };
    match queue.enqueued(value) {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for request in call {
                let mine: Vec<Enqueued> = outcomes.by_ref().take(request.jobs.len()).collect();
                // The caller may have given up waiting; its jobs are enqueued all the same.
                let _ = request.answer.send(Ok(mine));
            }
        }
        Err(err) => {
            let message = err.to_string();
            for request in call {
                let _ = request.answer.send(Err(QueueError::Reply(message.clone())));
            }
        }
    }
}
