//! Headless Chromium (Debian's `chromium`, which `scripts/lib.sh` installs) driven over the
//! DevTools protocol: open a page, evaluate script in it, wait for a condition, take a
//! screenshot. For the dashboard's and the simulator's browser tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    devtools_port: u16,
}

impl Chromium {
    pub fn start() -> Chromium {
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
pub struct Page {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

impl Page {
    pub async fn open(chromium: &Chromium) -> Page {
        let targets: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{}/json/list", chromium.devtools_port)).await.unwrap().json().await.unwrap();
        let page = targets.iter().find(|t| t["type"] == "page").expect("a page target");
        let (socket, _) = tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
        Page { socket, next_id: 1 }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true })).await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true (the page loads and refreshes asynchronously).
    pub async fn wait_for(&mut self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(expression).await != json!(true) {
            assert!(Instant::now() < deadline, "page never satisfied {expression}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens `url` in the page.
    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Saves a PNG of the whole page at `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());
    }
}
