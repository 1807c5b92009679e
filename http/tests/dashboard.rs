//! The queue dashboard in headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol: the page loads with the token from its URL fragment and shows the queues with their
//! throughput, depth and age charts, the pools' concurrency and scaling decisions, and the dead
//! letters; the filter narrows them, "discard" deletes one and "retry" moves one back onto its
//! queue. A screenshot is saved.

mod support;

use std::time::{Duration, Instant};

use apalis_redis_streams::now_ms;
use obentchi_core::pools::{PoolInstance, PoolRegistry, ScaleDecision};
use obentchi_core::queues::QueuesConfig;
use obentchi_http::history::QueueHistory;
use obentchi_testkit::browser::{Chromium, Page};
use serde_json::json;
use support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_throughput_pools_and_dead_letters_which_it_filters_discards_and_retries() {
    let app = spawn_app("").await;
    let redis = app.config.redis.connect().await.unwrap();
    let queues = QueuesConfig::default();
    let (payments, withdrawals) = (queues.open("payments", &redis).unwrap(), queues.open("withdrawals", &redis).unwrap());
    // Payments: two jobs done, one dead. Withdrawals: one dead.
    for (queue, jobs) in [(&payments, 3), (&withdrawals, 1)] {
        queue.ensure_groups().await.unwrap();
        for n in 0..jobs {
            queue.enqueue(&json!({ "poison": queue.name(), "n": n }), None).await.unwrap();
        }
        let mut buried = false;
        for partition in queue.partitions() {
            for delivery in queue.fetch(partition, "test", 10).await.unwrap().deliveries {
                if buried {
                    queue.ack(partition, &[delivery.entry_id.clone()]).await.unwrap();
                } else {
                    queue.bury(&delivery, &format!("{} provider said no", queue.name())).await.unwrap();
                    buried = true;
                }
            }
        }
    }
    assert_eq!((payments.stats().await.unwrap().done_total, payments.stats().await.unwrap().failed_total), (2, 1));
    // A payments pool that scaled up twice.
    let pools = PoolRegistry::new(redis.clone());
    let now = now_ms();
    pools.report(&PoolInstance { pool: "payments".into(), worker: "w1".into(), concurrency: 12, min: 3, max: 50, at_ms: now }).await.unwrap();
    for (ago_ms, from, to) in [(600_000, 3, 6), (300_000, 6, 12)] {
        let decision = ScaleDecision { at_ms: now - ago_ms, worker: "w1".into(), from, to, ready: 40, in_flight: from as u64, reason: "backlog".into() };
        pools.record_decision("payments", &decision).await.unwrap();
    }
    // The charts need two samples of each queue: the API samples every 200 ms.
    let history = QueueHistory::new(redis.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while history.read("payments", now_ms()).await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the API never sampled the queues");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let chromium = Chromium::start();
    let mut page = Page::open(&chromium).await;
    page.navigate(&format!("{}/admin/dashboard#token={}", app.base, app.write_token)).await;
    page.wait_for("document.body.dataset.loaded === 'yes'").await;
    let queue_table = page.eval("document.querySelector('#queues').innerText").await;
    for name in ["updates", "payments", "withdrawals", "outbound", "broadcasts", "scheduled"] {
        assert!(queue_table.as_str().unwrap().contains(name), "{name} missing from {queue_table}");
    }
    assert_eq!(page.eval("document.querySelectorAll('.charts .chart svg').length").await, json!(18), "three charts per queue");
    assert_eq!(page.eval("document.querySelectorAll('#pool-charts svg').length").await, json!(1), "one per pool");
    assert!(page.eval("document.querySelector('[data-queue=payments] svg').textContent").await.as_str().unwrap().contains("jobs per minute"));
    let decisions = page.eval("document.querySelector('#decisions').innerText").await;
    assert!(decisions.as_str().unwrap().contains("6 → 12") && decisions.as_str().unwrap().contains("3 → 6"), "{decisions}");
    assert_eq!(page.eval("location.hash").await, json!(""), "the token leaves the address bar");
    let dead = page.eval("[...document.querySelectorAll('tr.dead-letter')].map(r => r.innerText).join('\\n')").await;
    let dead = dead.as_str().unwrap();
    assert!(dead.contains("payments provider said no") && dead.contains(r#""poison":"payments""#), "error and payload preview: {dead}");

    page.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")).await;

    // The filter leaves the withdrawals' dead letter; discard deletes it.
    page.eval("const f = document.getElementById('dead-filter'); f.value = 'withdrawals'; f.dispatchEvent(new Event('input', { bubbles: true }))").await;
    assert_eq!(page.eval("[...document.querySelectorAll('tr.dead-letter')].filter(r => !r.hidden).length").await, json!(1));
    page.eval("[...document.querySelectorAll('tr.dead-letter')].find(r => !r.hidden).querySelector('button.discard').click()").await;
    page.wait_for("document.querySelectorAll('tr.dead-letter').length === 1").await;
    assert_eq!(withdrawals.stats().await.unwrap().dead, 0, "discarded");
    assert_eq!(withdrawals.stats().await.unwrap().ready, 0, "and not put back");

    // Retry moves the payments' dead letter back onto its queue.
    page.eval("document.querySelector('button.retry').click()").await;
    page.wait_for("document.querySelectorAll('tr.dead-letter').length === 0").await;
    let stats = payments.stats().await.unwrap();
    assert_eq!((stats.dead, stats.ready), (0, 1), "the dead letter is back on its queue");
}
