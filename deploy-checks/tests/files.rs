//! Every deployment file checked by the tool that reads it: `nginx -t`, `promtool`, the
//! Kubernetes schemas (kubernetes-validate), hadolint, and the binaries themselves for the
//! settings each Kubernetes workload gives them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use obentchi_testkit::processes::workspace_binary;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A tool scripts/lib.sh installs when it can (its path in `var`); `None` (with a note) if not.
fn optional_tool(var: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from);
    if path.is_none() {
        eprintln!("{var} is not set: this check did not run (scripts/test.sh sets it when the tool installs)");
    }
    path
}

fn is_root() -> bool {
    String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

#[test]
fn nginx_conf_passes_nginx_t_as_written() {
    // nginx -t resolves the upstream hosts (compose service names) and reads the certificates:
    // in a private mount namespace, /etc/hosts maps the names to loopback and /etc/nginx/tls
    // holds a throwaway certificate. Nothing outside the namespace changes.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]).args([
        "-keyout",
        &format!("{d}/tls.key"),
        "-out",
        &format!("{d}/tls.crt"),
    ]));
    std::fs::write(dir.path().join("hosts"), "127.0.0.1 localhost receiver http\n").unwrap();
    let script = format!(
        "mkdir -p {d}/etc/tls && cp {d}/tls.crt {d}/tls.key {d}/etc/tls/ && mount --bind {d}/hosts /etc/hosts \
         && mount --bind {d}/etc /etc/nginx && nginx -t -c {} -e stderr",
        repo().join("nginx.conf").display()
    );
    let namespace: &[&str] = if is_root() { &["--mount"] } else { &["--map-root-user", "--mount"] };
    let output = run(Command::new("unshare").args(namespace).args(["sh", "-c", &script]).env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("test is successful"), "{said}");
}

#[test]
fn prometheus_config_and_alerts_pass_promtool_and_fire_as_tested() {
    let monitoring = repo().join("monitoring");
    run(Command::new("promtool").args(["check", "config"]).arg(monitoring.join("prometheus.yml")));
    run(Command::new("promtool").args(["check", "rules"]).arg(monitoring.join("alerts.yml")));
    run(Command::new("promtool").args(["test", "rules"]).arg(monitoring.join("alerts.test.yml")));
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(monitoring.join("grafana/obentchi.json")).unwrap()).unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()));
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let Some(validator) = optional_tool("KUBERNETES_VALIDATE_BIN") else { return };
    let output = run(Command::new(validator).args(["--strict", "--kubernetes-version", "1.30"]).args(manifests()));
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    // KEDA's ScaledObject is a custom resource without a bundled schema; the test below checks it.
    for line in report.lines().filter(|l| !l.starts_with("INFO")) {
        assert!(line.contains("kind ScaledObject"), "{line}");
    }
}

/// Runs a Python helper of this crate with the validator's virtualenv (it has PyYAML).
fn helper(script: &str, input: &Path) -> Option<Value> {
    let validator = optional_tool("KUBERNETES_VALIDATE_BIN")?;
    let python = validator.with_file_name("python");
    let output = run(Command::new(python).arg(repo().join("deploy-checks").join(script)).arg(input));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// Runs every container's binary with the environment and arguments its deployment gives it and
/// `--print-config`: the same configuration loading as at start, which exits 2 naming anything
/// missing or invalid.
fn assert_settings_complete(containers: &[Value]) {
    for container in containers {
        let image = container["image"].as_str().unwrap();
        let binary = match image.split(':').next().unwrap() {
            "obentchi/bot" => "obentchi-bot",
            "obentchi/queue" => "obentchi-workers",
            "obentchi/http" => "obentchi-http",
            "obentchi/scheduler" => "obentchi-scheduler",
            other => panic!("unknown image {other}"),
        };
        let env: Vec<(String, String)> =
            container["env"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
        let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let output = Command::new(workspace_binary(binary)).env_clear().envs(env).arg("--print-config").args(&args).output().unwrap();
        assert!(
            output.status.success(),
            "{} ({binary} {args:?}) is missing settings:\n{}",
            container["workload"],
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn every_kubernetes_workload_gives_its_binary_every_setting_it_requires() {
    let Some(workloads) = helper("k8s_containers.py", &repo().join("kubernetes")) else { return };
    let containers = workloads["containers"].as_array().unwrap();
    assert!(containers.len() >= 8, "{containers:?}");
    assert_settings_complete(containers);
    // Each ScaledObject scales a Deployment that exists, on a queue that exists.
    let deployments = workloads["deployments"].as_array().unwrap();
    let queues: Vec<&str> = obentchi_core::queues::QueuesConfig::default().all().iter().map(|(name, _)| *name).collect();
    for scaled in workloads["scaled_objects"].as_array().unwrap() {
        assert!(deployments.contains(&scaled["target"]), "{scaled}");
        for query in scaled["queries"].as_array().unwrap() {
            let query = query.as_str().unwrap();
            assert!(queues.iter().any(|q| query == format!("max(queue_depth{{queue=\"{q}\"}})")), "{query}");
        }
    }
}

/// Issue 13: what a rollout, an autoscaler and a compromised pod would otherwise get wrong.
#[test]
fn autoscaled_workloads_leave_replicas_alone_and_pods_drain_spread_and_carry_no_api_token() {
    let Some(facts) = helper("k8s_containers.py", &repo().join("kubernetes")) else { return };
    let autoscaled: Vec<&str> = facts["autoscaled"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(autoscaled.contains(&"receiver") && autoscaled.contains(&"consumer"), "{autoscaled:?}");
    for workload in facts["workloads"].as_array().unwrap() {
        let name = workload["name"].as_str().unwrap();
        // Every `kubectl apply` would reset an autoscaled count mid-peak.
        if autoscaled.contains(&name) {
            assert_eq!(workload["replicas_set"], false, "{name} sets replicas, yet an autoscaler owns them");
        }
        // Nothing here talks to the Kubernetes API: a stolen pod gets no token for it.
        assert_eq!(workload["automount_token"], false, "{name} mounts a service account token");
        if ["receiver", "http"].contains(&name) {
            // Traffic still routed to a stopping pod is answered: no 502s in a rollout.
            assert!(workload["pre_stop"].as_array().unwrap().iter().all(|p| p == true), "{name} has no preStop drain window");
            let keys: Vec<&str> = workload["spread_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            assert!(
                keys.contains(&"topology.kubernetes.io/zone") && keys.contains(&"kubernetes.io/hostname"),
                "{name} is not spread over zones and nodes: {keys:?}"
            );
        }
    }
}

#[test]
fn every_compose_service_gives_its_binary_every_setting_it_requires() {
    for (file, expected) in [
        ("docker-compose.yml", &["redis", "mongo", "migrate", "http", "receiver", "consumer", "workers", "scheduler"][..]),
        (
            "docker-compose.production.yml",
            &["redis-1", "redis-6", "redis-init", "mongo-config", "mongo-shard-1", "mongo-shard-2", "mongos", "nginx", "prometheus", "grafana"][..],
        ),
    ] {
        let Some(stack) = helper("compose_services.py", &repo().join(file)) else { return };
        let services = stack["services"].as_array().unwrap();
        for service in expected {
            assert!(services.iter().any(|s| s == service), "{file} lacks {service}");
        }
        assert_settings_complete(stack["containers"].as_array().unwrap());
    }
}

#[test]
fn dockerfiles_pass_hadolint() {
    let Some(hadolint) = optional_tool("HADOLINT_BIN") else { return };
    let dockerfiles: Vec<PathBuf> = ["bot", "queue", "http", "scheduler"].iter().map(|n| repo().join(format!("Dockerfile.{n}"))).collect();
    run(Command::new(hadolint).args(&dockerfiles));
    for dockerfile in &dockerfiles {
        let text = std::fs::read_to_string(dockerfile).unwrap();
        for required in ["USER 10001", "HEALTHCHECK", "--healthcheck", "FROM debian:bookworm-slim", "AS builder"] {
            assert!(text.contains(required), "{} lacks {required}", dockerfile.display());
        }
    }
}

#[test]
fn the_healthcheck_flag_answers_for_a_running_service_and_fails_without_one() {
    // What the images' HEALTHCHECK runs.
    let port = obentchi_testkit::free_port(false);
    let env = [
        ("OBENTCHI_MONGODB__URI", "mongodb://127.0.0.1:9".to_owned()),
        ("OBENTCHI_REDIS__URLS", "[redis://127.0.0.1:9]".to_owned()),
        ("OBENTCHI_LISTEN__ADDR", format!("127.0.0.1:{port}")),
    ];
    let scheduler = workspace_binary("obentchi-scheduler");
    let check = || Command::new(&scheduler).env_clear().envs(env.clone()).arg("--healthcheck").status().unwrap().success();
    assert!(!check(), "nothing listens yet");
    let mut service = obentchi_testkit::processes::Process(Command::new(&scheduler).env_clear().envs(env.clone()).spawn().unwrap());
    let mut healthy = false;
    for _ in 0..100 {
        healthy = check();
        if healthy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(healthy, "the running scheduler answered /healthz");
    service.kill();
}

#[test]
fn the_mongo_sharding_script_parses() {
    // mongosh runs JavaScript; there is no mongos here, so this checks syntax only.
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("node is not installed: the sharding script's syntax was not checked");
        return;
    }
    run(Command::new("node").arg("--check").arg(repo().join("scripts/init-mongo-sharding.js")));
}
