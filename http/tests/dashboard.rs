//! The queue dashboard in headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol: the page loads with the token from its URL fragment, shows the queues and the
//! charts, a click on "retry" moves a dead letter back onto its queue, and a screenshot is saved.

mod support;

use obentchi_core::queues::QueuesConfig;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::spawn_app;
use tokio_tungstenite::tungstenite::Message;

struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    devtools_port: u16,
}

impl Chromium {
    fn start() -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0", "--window-size=1280,1400"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium is installed (scripts/lib.sh installs it)");
        // "DevTools listening on ws://127.0.0.1:<port>/devtools/browser/<id>"
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut port = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                port = rest.split('/').next().and_then(|p| p.parse().ok());
                break;
            }
        }
        Chromium { child, _profile: profile, devtools_port: port.expect("chromium printed its DevTools address") }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DevTools session with one page.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

impl Page {
    async fn open(chromium: &Chromium) -> Page {
        let targets: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{}/json/list", chromium.devtools_port)).await.unwrap().json().await.unwrap();
        let page = targets.iter().find(|t| t["type"] == "page").expect("a page target");
        let (socket, _) = tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
        Page { socket, next_id: 1 }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(request)).await.unwrap();
        while let Some(message) = self.socket.next().await {
            let Message::Text(text) = message.unwrap() else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
        panic!("DevTools closed during {method}");
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true })).await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true (the page loads and refreshes asynchronously).
    async fn wait_for(&mut self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(expression).await != json!(true) {
            assert!(Instant::now() < deadline, "page never satisfied {expression}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_queues_and_its_retry_button_revives_a_dead_letter() {
    let app = spawn_app("").await;
    let redis = app.config.redis.connect().await.unwrap();
    let payments = QueuesConfig::default().open("payments", &redis).unwrap();
    payments.ensure_groups().await.unwrap();
    payments.enqueue(&json!({ "poison": true }), None).await.unwrap();
    for partition in payments.partitions() {
        for delivery in payments.fetch(partition, "test", 10).await.unwrap().deliveries {
            payments.bury(&delivery, "provider said no").await.unwrap();
        }
    }
    // Let the sampler record a few points for the charts.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let chromium = Chromium::start();
    let mut page = Page::open(&chromium).await;
    let url = format!("{}/admin/dashboard#token={}", app.base, app.write_token);
    page.call("Page.navigate", json!({ "url": url })).await;
    page.wait_for("document.body.dataset.loaded === 'yes'").await;
    let queues = page.eval("document.querySelector('#queues').innerText").await;
    for name in ["updates", "payments", "withdrawals", "outbound", "broadcasts", "scheduled"] {
        assert!(queues.as_str().unwrap().contains(name), "{name} missing from {queues}");
    }
    assert_eq!(page.eval("document.querySelectorAll('#panel svg').length").await, json!(12), "two charts per queue");
    assert_eq!(page.eval("location.hash").await, json!(""), "the token leaves the address bar");
    assert_eq!(page.eval("document.querySelectorAll('button.retry').length").await, json!(1));

    let shot = page.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
    let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("dashboard screenshot: {} ({} bytes)", path.display(), png.len());

    page.eval("document.querySelector('button.retry').click()").await;
    page.wait_for("document.querySelectorAll('button.retry').length === 0").await;
    let stats = payments.stats().await.unwrap();
    assert_eq!((stats.dead, stats.ready), (0, 1), "the dead letter is back on its queue");
}
