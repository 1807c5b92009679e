//! `/healthz`, `/readyz` and `/metrics` against real MongoDB and Redis servers.

use std::net::SocketAddr;

use obentchi_core::config;
use obentchi_core::service::{self, BaseConfig, Connections};
use obentchi_testkit::{MongoServer, RedisServer};

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    // A bare HTTP/1.1 request keeps the test free of an HTTP client dependency.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_dependencies() {
    let mongo = MongoServer::start();
    let mut redis = RedisServer::start();
    let toml = format!(
        "[mongodb]\nuri = \"{}\"\nserver_selection_timeout_ms = 500\n[redis]\nurls = [\"{}\"]\nresponse_timeout_ms = 300\nconnect_timeout_ms = 300\n",
        mongo.uri(),
        redis.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.toml");
    std::fs::write(&file, toml).unwrap();
    let config: BaseConfig = config::load(&[file]).unwrap();

    let connections = Connections::open(&config.mongodb, &config.redis, obentchi_core::telemetry::Emitter::Scheduler).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(service::serve_on(listener, connections.ops_router()));
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    assert_eq!(get(addr, "/healthz").await, (200, "ok".to_owned()));
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(addr, "/metrics").await.0, 200);

    redis.kill();
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("\"redis\":\"unavailable\"") && body.contains("\"mongodb\":\"ok\""), "{body}");
    assert_eq!(get(addr, "/healthz").await.0, 200, "liveness does not depend on Redis");

    redis.restart();
    let mut ready = false;
    for _ in 0..50 {
        if get(addr, "/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once Redis is back");
}
