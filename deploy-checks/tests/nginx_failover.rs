//! nginx.conf in front of two webhook receivers and two API processes, all on loopback: one of
//! each is SIGKILLed mid-load and no request fails; every webhook update nginx acknowledged is in
//! the updates queue. And the webhook's own guards at the edge. The configuration is the
//! repository's nginx.conf with only the lines marked `# upstream:`, `# listen:` and `# tls:`
//! (and the pid and temp paths, and the optional source allowlist) pointed at the test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obentchi_core::queues::QueuesConfig;
use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_testkit::processes::{spawn, wait_healthy, workspace_binary, Process};
use obentchi_testkit::{free_port, MongoServer, RedisServer};

const SECRET: &str = "failover-webhook-secret-of-at-least-32-bytes";

/// nginx's master, stopped with SIGTERM so it takes its workers along (SIGKILL would orphan them).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// nginx.conf with the marked lines rewritten for this test; `sources`: the webhook source
/// allowlist file to include (none if `None`).
fn render(conf: &str, dir: &Path, receivers: [u16; 2], apis: [u16; 2], http_port: u16, https_port: u16, sources: Option<&Path>) -> String {
    let d = dir.display();
    conf.lines()
        .map(|line| {
            let servers = |ports: [u16; 2]| {
                let template = line.split('#').next().unwrap();
                let host = template.split_whitespace().nth(1).unwrap();
                ports.iter().map(|p| template.replace(host, &format!("127.0.0.1:{p}"))).collect::<Vec<_>>().join("\n")
            };
            if line.contains("# upstream: receivers") {
                servers(receivers)
            } else if line.contains("# upstream: api") {
                servers(apis)
            } else if line.contains("# listen: https") {
                format!("        listen 127.0.0.1:{https_port} ssl http2;")
            } else if line.contains("# listen: http") {
                format!("        listen 127.0.0.1:{http_port};")
            } else if line.contains("# tls: certificate") {
                format!("        ssl_certificate {d}/tls.crt;")
            } else if line.contains("# tls: key") {
                format!("        ssl_certificate_key {d}/tls.key;")
            } else if line.contains("include /etc/nginx/webhook-sources") {
                sources.map_or(String::new(), |path| format!("            include {};", path.display()))
            } else {
                line.replace("/tmp/nginx", &format!("{d}/nginx"))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts the repository's nginx.conf rendered for this test in `d`; waits until it answers.
/// Returns nginx and its HTTPS base URL.
async fn start_nginx(client: &reqwest::Client, d: &Path, receivers: [u16; 2], apis: [u16; 2], sources: Option<&Path>) -> (Nginx, String) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(d.join("tls.key"))
        .arg("-out")
        .arg(d.join("tls.crt"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let (http_port, https_port) = (free_port(false), free_port(false));
    let conf = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../nginx.conf")).unwrap();
    let conf = obentchi_deploy_checks::nginx_conf_for_local_nginx(&conf);
    std::fs::write(d.join("nginx.conf"), render(&conf, d, receivers, apis, http_port, https_port, sources)).unwrap();
    let nginx_bin = if Path::new("/usr/sbin/nginx").exists() { "/usr/sbin/nginx" } else { "nginx" };
    let nginx = Nginx(
        Command::new(nginx_bin)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("nginx.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let edge = format!("https://127.0.0.1:{https_port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while client.get(format!("{edge}/")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "nginx did not serve: {}", std::fs::read_to_string(d.join("nginx.log")).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (nginx, edge)
}

/// Issue 13: the webhook is guarded by its secret and, when the allowlist is mounted, by
/// Telegram's source ranges, at the edge, before any receiver is asked. No backend runs here:
/// anything nginx passed on would be a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refuses_a_webhook_without_a_secret_or_from_outside_telegrams_ranges() {
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let nobody = [free_port(false), free_port(false)];
    let post = |edge: &str, secret: Option<&str>| {
        let mut request = client.post(format!("{edge}/telegram/webhook")).header("content-type", "application/json").body(r#"{"update_id":1}"#);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };
    let open = tempfile::tempdir().unwrap();
    let (nginx, edge) = start_nginx(&client, open.path(), nobody, nobody, None).await;
    assert_eq!(post(&edge, None).await.unwrap().status().as_u16(), 401, "no secret: refused at the edge");
    assert_eq!(post(&edge, Some(SECRET)).await.unwrap().status().as_u16(), 502, "with one: passed on (to no receiver here)");
    drop(nginx);

    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/webhook-sources.conf");
    let guarded = tempfile::tempdir().unwrap();
    let (_nginx, edge) = start_nginx(&client, guarded.path(), nobody, nobody, Some(&sources)).await;
    // Loopback is not one of Telegram's ranges.
    assert_eq!(post(&edge, Some(SECRET)).await.unwrap().status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_receiver_and_an_api_process_mid_load_fails_no_request() {
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("services.toml");
    std::fs::write(
        &config,
        format!(
            "[telemetry]\nlog_filter = \"warn\"\n[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n[telegram]\nbot_token = \"7000000001:test\"\n\
             [webhook]\nsecret = \"{SECRET}\"\n",
            mongo.uri(),
            redis.url()
        ),
    )
    .unwrap();
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let ports: Vec<u16> = (0..4).map(|_| free_port(false)).collect();
    let (receivers, apis) = ([ports[0], ports[1]], [ports[2], ports[3]]);
    let bot = workspace_binary("obentchi-bot");
    let http = workspace_binary("obentchi-http");
    let mut receiver_processes: Vec<Process> =
        receivers.iter().enumerate().map(|(i, p)| spawn(&bot, &config, &[], *p, &d.join(format!("receiver-{i}.log")))).collect();
    let mut api_processes: Vec<Process> =
        apis.iter().enumerate().map(|(i, p)| spawn(&http, &config, &[], *p, &d.join(format!("http-{i}.log")))).collect();
    for port in receivers.iter().chain(&apis) {
        wait_healthy(&client, *port).await;
    }

    let (_nginx, edge) = start_nginx(&client, d, receivers, apis, None).await;

    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let next_update = Arc::new(AtomicU64::new(1));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let (accepted, after_kill) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (client, edge, stop, killed) = (client.clone(), edge.clone(), stop.clone(), killed.clone());
        let (next_update, failures, accepted, after_kill) = (next_update.clone(), failures.clone(), accepted.clone(), after_kill.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let id = next_update.fetch_add(1, Ordering::SeqCst);
                let update = format!(
                    r#"{{"update_id":{id},"message":{{"message_id":{id},"date":1700000000,"chat":{{"id":{chat},"type":"private"}},"from":{{"id":{chat},"is_bot":false,"first_name":"L"}},"text":"hi"}}}}"#,
                    chat = 1000 + id % 50
                );
                let answer = client
                    .post(format!("{edge}/telegram/webhook"))
                    .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                    .header("content-type", "application/json")
                    .body(update)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 200 => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        if killed.load(Ordering::SeqCst) {
                            after_kill.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok(r) => failures.lock().unwrap().push(format!("webhook {id}: {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("webhook {id}: {e}")),
                }
                // Stays under the edge's webhook limit (5,000/s per secret).
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let api_calls = Arc::new(AtomicU64::new(0));
    {
        let (client, edge, stop, failures, api_calls) = (client.clone(), edge.clone(), stop.clone(), failures.clone(), api_calls.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match client.get(format!("{edge}/healthz")).send().await {
                    Ok(r) if r.status() == 200 => {
                        api_calls.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failures.lock().unwrap().push(format!("api: {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("api: {e}")),
                }
                // Under the edge's per-IP API limit (20/s).
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver_processes[0].kill();
    api_processes[0].kill();
    killed.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} failed requests: {:?}\nnginx: {}", failures.len(), &failures[..failures.len().min(10)], std::fs::read_to_string(d.join("nginx.log")).unwrap_or_default());
    let accepted = accepted.load(Ordering::SeqCst);
    assert!(after_kill.load(Ordering::SeqCst) > 0 && api_calls.load(Ordering::SeqCst) > 0, "load continued after the kills");
    eprintln!("{accepted} updates and {} API calls through the edge, none failed", api_calls.load(Ordering::SeqCst));

    // Acknowledged means queued: every update nginx answered 200 for is in the queue once.
    let conn = RedisConfig::from_urls(RedisMode::Single, [redis.url()]).unwrap().connect().await.unwrap();
    let updates = QueuesConfig::default().open("updates", &conn).unwrap();
    updates.ensure_groups().await.unwrap();
    assert_eq!(updates.stats().await.unwrap().depth, accepted);
    drop(receiver_processes);
    drop(api_processes);
}
