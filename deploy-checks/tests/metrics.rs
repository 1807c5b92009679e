//! Issue 13: every metric the alerts, the Grafana dashboard and the KEDA triggers read is
//! emitted by our code and is on `/metrics` as soon as its service starts, or its absence is
//! itself alerted on (`absent(...)` in alerts.yml). A metric renamed in code but not in an
//! alert, or registered only at its first failure, would leave that alert silent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use obentchi_testkit::FakeBotApi;
use obentchi_testkit::processes::{spawn, wait_healthy, workspace_binary};
use obentchi_testkit::{free_port, MongoServer, RedisServer};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A YAML file as JSON, through the deployment tools' Python (it has PyYAML).
fn yaml(path: &Path) -> Value {
    let validator = PathBuf::from(std::env::var_os("KUBERNETES_VALIDATE_BIN").expect("KUBERNETES_VALIDATE_BIN is set by scripts/test.sh"));
    let output = Command::new(validator.with_file_name("python")).arg(repo().join("deploy-checks/yaml_json.py")).arg(path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The metric names a PromQL expression reads: identifiers that are not functions (followed by
/// `(`), keywords, label names (inside `{}` or after `by`/`without`) or durations (`[5m]`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Keywords, and aggregations (which may be followed by `by (...)` before their parenthesis).
    const KEYWORDS: &[&str] = &[
        "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "sum", "min", "max", "avg",
        "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    ];
    let mut cleaned = String::new();
    let mut depth = 0;
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            _ if quoted || depth > 0 => {}
            c => cleaned.push(c),
        }
    }
    let mut names = BTreeSet::new();
    // Inside `by (...)` and the like: label names, not metrics.
    let mut grouping = false;
    let chars: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_number = i > 0 && (chars[i - 1].is_ascii_digit() || chars[i - 1] == '.');
        if (c.is_ascii_alphabetic() || c == '_') && !after_number {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let is_function = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
            if ["by", "without", "on", "ignoring"].contains(&word.as_str()) {
                grouping = true;
            } else if !grouping && !is_function && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            if c == ')' {
                grouping = false;
            }
            i += 1;
        }
    }
    names
}

/// What monitoring/ and the KEDA triggers read, by series name (a histogram's `_bucket` series
/// as such: it exists only if the histogram has buckets), and the names alerts.yml wraps in
/// `absent()`.
fn referenced_metrics() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut expressions = Vec::new();
    let alerts = yaml(&repo().join("monitoring/alerts.yml"));
    for group in alerts["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            expressions.push(rule["expr"].as_str().unwrap().to_owned());
        }
    }
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("monitoring/grafana/obentchi.json")).unwrap()).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            expressions.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for manifest in std::fs::read_dir(repo().join("kubernetes")).unwrap() {
        let text = std::fs::read_to_string(manifest.unwrap().path()).unwrap();
        expressions.extend(text.lines().filter_map(|l| l.trim().strip_prefix("query: ")).map(str::to_owned));
    }
    let mut names: BTreeSet<String> = expressions.iter().flat_map(|e| metric_names(e)).collect();
    // Prometheus makes `up` itself.
    names.remove("up");
    let absent = expressions
        .iter()
        .flat_map(|e| e.match_indices("absent(").map(|(at, _)| e[at + 7..].split(|c: char| c == ')' || c == '{').next().unwrap().trim().to_owned()).collect::<Vec<_>>())
        .collect();
    (names, absent)
}

#[test]
fn the_expression_parser_finds_metric_names_only() {
    let names = metric_names(r#"sum by (queue, le) (rate(webhook_rejected_total{reason=~"a|b"}[5m])) / clamp_min(sum(x_total) + y, 1e-9) > 0.05 or absent(z_seconds)"#);
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["webhook_rejected_total", "x_total", "y", "z_seconds"]);
}

/// Every `*.rs` file of our crates' `src/` folders.
fn sources() -> String {
    let mut text = String::new();
    let mut dirs: Vec<PathBuf> = ["core", "bot", "workers", "scheduler", "http", "apalis-redis-streams"].iter().map(|c| repo().join(c).join("src")).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    text
}

/// The series names on a `/metrics` page, and a histogram's or summary's own name too.
fn scraped_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for name in page.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(|l| l.split(['{', ' ']).next().unwrap()) {
        names.insert(name.to_owned());
        if let Some(base) = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)) {
            names.insert(base.to_owned());
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monitored_metric_is_emitted_by_our_code_and_on_metrics_from_the_start() {
    let (referenced, absent_alerted) = referenced_metrics();
    assert!(referenced.len() >= 15, "{referenced:?}");

    let code = sources();
    for name in &referenced {
        let emitted = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(code.contains(&format!("\"{emitted}\"")), "{name} is read by monitoring but no code emits it");
    }

    // Every service, started as deployed (the API samples at once), against real servers.
    let redis = RedisServer::start();
    let mongo = MongoServer::start();
    let bot_api = FakeBotApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("services.toml");
    std::fs::write(
        &config,
        format!(
            "history_sample_ms = 200\n[telemetry]\nlog_filter = \"warn\"\n[mongodb]\nuri = \"{}\"\n[redis]\nurls = [\"{}\"]\n\
             [telegram]\nbot_token = \"7000000001:test\"\napi_url = \"{}\"\n[webhook]\nsecret = \"metrics-check-webhook-secret-of-32-bytes-or-more\"\n\
             [payout]\nbase_url = \"http://127.0.0.1:9\"\napi_token = \"unused\"\n",
            mongo.uri(),
            redis.url(),
            bot_api.url()
        ),
    )
    .unwrap();
    let migrated = Command::new(workspace_binary("obentchi-http")).arg("--config").arg(&config).arg("migrate").output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let client = reqwest::Client::new();
    let services = [
        ("obentchi-bot", &[][..]),
        ("obentchi-bot", &["consume"][..]),
        ("obentchi-workers", &[][..]),
        ("obentchi-scheduler", &[][..]),
        ("obentchi-http", &[][..]),
    ];
    let mut processes = Vec::new();
    let mut ports = Vec::new();
    for (i, (binary, args)) in services.iter().enumerate() {
        let port = free_port(false);
        processes.push(spawn(&workspace_binary(binary), &config, args, port, &dir.path().join(format!("{i}.log"))));
        ports.push(port);
    }
    for port in &ports {
        wait_healthy(&client, *port).await;
    }
    // Per-request metrics have a series per route and status, which exist from each one's first
    // request (no route's series can be made up front): one API request makes them.
    const PER_REQUEST: &[&str] = &["http_requests_total", "http_request_duration_seconds_bucket"];
    let api = ports[4];
    client.get(format!("http://127.0.0.1:{api}/openapi.json")).send().await.unwrap();
    // What must be there: the referenced metrics, except those whose absence alerts.
    let expected: BTreeSet<&String> = referenced.iter().filter(|n| !absent_alerted.contains(*n)).collect();
    assert!(PER_REQUEST.iter().all(|n| expected.iter().any(|e| e == n)), "the per-request exception is still needed");
    // Generous: five services start at once on a machine the other tests also load.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let mut scraped = BTreeSet::new();
        for port in &ports {
            let page = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
            scraped.extend(scraped_names(&page));
        }
        let missing: Vec<&&String> = expected.iter().filter(|n| !scraped.contains(n.as_str())).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not on /metrics after start (register them at start, or alert on their absence): {missing:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(processes);
}
