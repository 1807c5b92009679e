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

/// A tool scripts/lib.sh installs (its path in `var`). A check whose tool is missing fails: a
/// check that did not run must never count as passed.
fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| panic!("{var} is not set: run the tests through scripts/test.sh, which installs the tool and sets it"));
    assert!(path.exists(), "{var}={} does not exist", path.display());
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
    // As written, but for `resolve` if the nginx here predates it (see nginx_conf_for_local_nginx).
    let conf = std::fs::read_to_string(repo().join("nginx.conf")).unwrap();
    std::fs::write(dir.path().join("nginx.conf"), obentchi_deploy_checks::nginx_conf_for_local_nginx(&conf)).unwrap();
    let script = format!(
        "mkdir -p {d}/etc/tls && cp {d}/tls.crt {d}/tls.key {d}/etc/tls/ && mount --bind {d}/hosts /etc/hosts \
         && mount --bind {d}/etc /etc/nginx && nginx -t -c {d}/nginx.conf -e stderr"
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
    let validator = tool("KUBERNETES_VALIDATE_BIN");
    let output = run(Command::new(validator).args(["--strict", "--kubernetes-version", "1.30"]).args(manifests()));
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    // KEDA's ScaledObject is a custom resource without a bundled schema; the test below checks it.
    for line in report.lines().filter(|l| !l.starts_with("INFO")) {
        assert!(line.contains("kind ScaledObject"), "{line}");
    }
}

/// Runs a Python helper of this crate with the validator's virtualenv (it has PyYAML).
fn helper(script: &str, input: &Path) -> Value {
    let validator = tool("KUBERNETES_VALIDATE_BIN");
    let python = validator.with_file_name("python");
    let output = run(Command::new(python).arg(repo().join("deploy-checks").join(script)).arg(input));
    serde_json::from_slice(&output.stdout).unwrap()
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
    let workloads = helper("k8s_containers.py", &repo().join("kubernetes"));
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

/// Issue 13: a Secret applied from the template without filling it in does not start: every
/// binary refuses its placeholders, and says so without echoing any value.
#[test]
fn the_secret_templates_placeholders_are_refused_at_start_without_echoing_them() {
    let facts = helper("k8s_containers.py", &repo().join("kubernetes"));
    // Every template's values at once: each binary finds all it requires, unfilled.
    let template: Vec<(String, String)> = facts["secret_templates"]
        .as_object()
        .expect("kubernetes/02-secret.example.yaml")
        .values()
        .flat_map(|secret| secret.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())))
        .collect();
    assert!(template.len() >= 7, "{template:?}");
    for binary in ["obentchi-bot", "obentchi-workers", "obentchi-http"] {
        let output = Command::new(workspace_binary(binary)).env_clear().envs(template.clone()).arg("--print-config").output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{binary} started with the template's placeholders: {said}");
        assert!(said.contains("placeholder"), "{binary}: {said}");
        assert!(!said.contains("CHANGE_ME"), "{binary} echoed a value: {said}");
    }
}

/// Issue 13: a compromised pod holds only its own credentials and reaches only what it uses; a
/// config edit cannot reach running pods piecemeal.
#[test]
fn credentials_go_only_where_used_configs_are_immutable_by_content_and_traffic_is_denied_by_default() {
    let facts = helper("k8s_containers.py", &repo().join("kubernetes"));
    for container in facts["containers"].as_array().unwrap() {
        let workload = container["workload"].as_str().unwrap();
        let env = container["env"].as_object().unwrap();
        let has = |key: &str| env.contains_key(key);
        if workload == "receiver" {
            for key in ["OBENTCHI_MONGODB__URI", "OBENTCHI_TELEGRAM__BOT_TOKEN", "OBENTCHI_PAYOUT__API_TOKEN"] {
                assert!(!has(key), "the receiver gets {key}");
            }
        }
        if has("OBENTCHI_WEBHOOK__SECRET") {
            assert_eq!(workload, "receiver", "only receivers get the webhook secret");
        }
        if has("OBENTCHI_PAYOUT__API_TOKEN") {
            assert_eq!(workload, "workers-withdrawals", "only withdrawal workers get the payout token");
        }
        if env.keys().any(|k| k.starts_with("OBENTCHI_PAYMENT_GATEWAYS__")) {
            assert_eq!(workload, "http", "only the API gets the gateway secrets");
        }
    }
    // Immutable, and named after the content (scripts/k8s-config-hash.py renames after an edit).
    let validator = tool("KUBERNETES_VALIDATE_BIN");
    let expected = run(Command::new(validator.with_file_name("python")).arg(repo().join("scripts/k8s-config-hash.py")).arg("--check"));
    let expected = String::from_utf8_lossy(&expected.stdout).trim().to_owned();
    let maps = facts["config_maps"].as_array().unwrap();
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0]["name"], expected.as_str(), "the ConfigMap was edited without scripts/k8s-config-hash.py");
    assert_eq!(maps[0]["immutable"], true);
    // Deny by default; the edge reaches only the services' own ports; only Prometheus's
    // namespace reaches the ops port; the receiver cannot reach MongoDB.
    let policies = facts["network_policies"].as_array().unwrap();
    let deny = policies.iter().find(|p| p["spec"]["podSelector"] == serde_json::json!({}) && p["spec"].get("ingress").is_none() && p["spec"].get("egress").is_none());
    assert!(deny.is_some_and(|p| p["spec"]["policyTypes"] == serde_json::json!(["Ingress", "Egress"])), "no default-deny policy");
    for policy in policies {
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            let from: Vec<&str> = rule["from"].as_array().unwrap().iter().map(|f| f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str().unwrap()).collect();
            for port in rule["ports"].as_array().unwrap() {
                if port["port"] == 9100 {
                    assert_eq!(from, ["monitoring"], "{policy}");
                } else {
                    assert!(from == ["ingress-nginx"] && [8080, 8081].contains(&port["port"].as_u64().unwrap()), "{policy}");
                }
            }
        }
        let reaches_mongodb = policy["spec"]["egress"].as_array().into_iter().flatten().any(|r| r["ports"].as_array().unwrap().iter().any(|p| p["port"] == 27017));
        if reaches_mongodb {
            let excluded = &policy["spec"]["podSelector"]["matchExpressions"][0];
            assert!(excluded["operator"] == "NotIn" && excluded["values"] == serde_json::json!(["receiver"]), "{policy}");
        }
    }
}

/// Issue 13: what a rollout, an autoscaler and a compromised pod would otherwise get wrong.
#[test]
fn autoscaled_workloads_leave_replicas_alone_and_pods_drain_spread_and_carry_no_api_token() {
    let facts = helper("k8s_containers.py", &repo().join("kubernetes"));
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

/// Issue 13: the edge reaches only the services' own ports, never limits Telegram by source,
/// needs no snippet; every pod that uses MongoDB migrates before it serves.
#[test]
fn the_edge_reaches_no_ops_port_limits_the_webhook_by_size_and_source_and_pods_migrate_first() {
    const OPS_PORT: u64 = 9100;
    let facts = helper("k8s_containers.py", &repo().join("kubernetes"));
    let ops_addr = facts["config_maps"][0]["data"]["OBENTCHI_LISTEN__OPS_ADDR"].as_str().expect("the ConfigMap sets listen.ops_addr");
    assert!(ops_addr.ends_with(&format!(":{OPS_PORT}")), "{ops_addr}");
    for workload in facts["workloads"].as_array().unwrap() {
        let name = workload["name"].as_str().unwrap();
        assert_eq!(workload["ports"]["ops"], OPS_PORT, "{name}: the ops port is named `ops`");
        assert_eq!(workload["scrape_port"], OPS_PORT.to_string(), "{name}: Prometheus scrapes the ops port");
        assert!(workload["probe_ports"].as_array().unwrap().iter().all(|p| p == "ops"), "{name}: probes use the ops port");
        // A Job with a fixed name runs once, never on the next rollout; an init container runs
        // before every new pod serves.
        assert_eq!(workload["kind"], "Deployment", "{name}");
        let migrates = workload["init"].as_array().unwrap().iter().any(|c| c["args"] == serde_json::json!(["migrate"]));
        let release = |image: &str| image.rsplit(':').next().unwrap().to_owned();
        if name == "receiver" {
            assert!(!migrates, "the receiver never uses MongoDB");
        } else {
            assert!(migrates, "{name} serves before migrations ran");
            let init = &workload["init"][0];
            assert!(init["image"].as_str().unwrap().starts_with("obentchi/http:"), "{init}");
            assert_eq!(release(init["image"].as_str().unwrap()), release(workload["images"][0].as_str().unwrap()), "{name}: another release's migrations");
        }
    }
    for service in facts["services"].as_array().unwrap() {
        assert!(!service["ports"].as_array().unwrap().contains(&OPS_PORT.into()), "{service}");
        assert!(!service["target_ports"].as_array().unwrap().contains(&"ops".into()), "{service}");
    }
    let telegram_ranges = ["149.154.160.0/20", "91.108.4.0/22"];
    let mut webhook_routed = false;
    for ingress in facts["ingresses"].as_array().unwrap() {
        let annotations = ingress["annotations"].as_object().unwrap();
        // ingress-nginx >= 1.9 refuses snippets by default (or drops them): nothing may rely on one.
        assert!(annotations.keys().all(|k| !k.contains("snippet")), "{ingress}");
        for route in ingress["routes"].as_array().unwrap() {
            assert_ne!(route["port"], OPS_PORT, "{ingress}");
            if route["path"] == "/telegram/webhook" {
                webhook_routed = true;
                assert_eq!(ingress["routes"].as_array().unwrap().len(), 1, "the webhook's Ingress carries no other route");
                // Telegram delivers from a few addresses: a per-source limit would answer it 503s.
                for limit in ["limit-rps", "limit-rpm", "limit-connections"] {
                    assert!(!annotations.contains_key(&format!("nginx.ingress.kubernetes.io/{limit}")), "{ingress}");
                }
                assert_eq!(annotations["nginx.ingress.kubernetes.io/proxy-body-size"], "1m");
                let sources = annotations["nginx.ingress.kubernetes.io/whitelist-source-range"].as_str().unwrap();
                assert_eq!(sources.split(',').collect::<Vec<_>>(), telegram_ranges);
            } else {
                assert!(annotations.contains_key("nginx.ingress.kubernetes.io/limit-rps"), "the API is limited per client: {ingress}");
            }
        }
    }
    assert!(webhook_routed);
}

#[test]
fn every_compose_service_gives_its_binary_every_setting_it_requires() {
    for (file, expected) in [
        ("docker-compose.yml", &["redis", "mongo", "migrate", "http", "receiver", "consumer", "workers", "scheduler"][..]),
        (
            "docker-compose.production.yml",
            &["redis-1", "redis-6", "redis-init", "mongo-config", "mongo-shard-1", "mongo-shard-2", "mongos", "nginx", "prometheus", "alertmanager", "grafana"][..],
        ),
    ] {
        let stack = helper("compose_services.py", &repo().join(file));
        let services = stack["services"].as_array().unwrap();
        for service in expected {
            assert!(services.iter().any(|s| s == service), "{file} lacks {service}");
        }
        assert_settings_complete(stack["containers"].as_array().unwrap());
    }
}

/// Issue 13: what `compose down`, a re-created container or a missing scrape target would
/// otherwise cost.
#[test]
fn production_compose_keeps_data_on_named_volumes_rejoins_its_redis_cluster_and_scrapes_every_service() {
    let stack = helper("compose_services.py", &repo().join("docker-compose.production.yml"));
    let services = stack["services_facts"].as_object().unwrap();
    let named: Vec<&str> = stack["volumes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let mounts_named = |service: &str, target: &str| {
        services[service]["volumes"].as_array().unwrap().iter().any(|v| {
            let v = v.as_str().unwrap();
            v.split(':').nth(1) == Some(target) && named.contains(&v.split(':').next().unwrap())
        })
    };
    for node in 1..=6 {
        let name = format!("redis-{node}");
        assert!(mounts_named(&name, "/data"), "{name} keeps nodes.conf and its AOF in a container layer");
        let command: Vec<&str> = services[&name]["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        let announced = command.windows(2).any(|w| w == ["--cluster-announce-hostname", name.as_str()]);
        assert!(announced && command.contains(&"hostname"), "{name} is known to the cluster by an address a re-creation changes: {command:?}");
    }
    for mongod in ["mongo-config", "mongo-shard-1", "mongo-shard-2"] {
        assert!(mounts_named(mongod, "/data/db"), "{mongod} loses its data on `compose down`");
    }
    for (name, service) in services {
        if service["image"].as_str().unwrap().starts_with("obentchi/") {
            let expected = if service["build"] == true { "build" } else { "never" };
            assert_eq!(service["pull_policy"], expected, "{name}: a locally built image must not be pulled from a registry");
        }
    }
    assert!(
        services["nginx"]["volumes"].as_array().unwrap().iter().any(|v| v.as_str().unwrap().contains("deploy/nginx/webhook-sources.conf:/etc/nginx/webhook-sources.conf")),
        "nginx admits the webhook from Telegram's ranges only"
    );
    // nginx re-resolves its upstreams (a re-created container has a new address): every
    // upstream server says `resolve`, and the image is one that understands it.
    let image = services["nginx"]["image"].as_str().unwrap();
    let tag = image.split(':').nth(1).unwrap().trim_end_matches("-alpine");
    assert!(tag.split('.').count() == 3, "{image}: pin the exact nginx version");
    assert!(obentchi_deploy_checks::parse_version(tag) >= obentchi_deploy_checks::NGINX_RESOLVE_SINCE, "{image} cannot re-resolve upstreams");
    let conf = std::fs::read_to_string(repo().join("nginx.conf")).unwrap();
    let servers: Vec<&str> = conf.lines().filter(|l| l.trim_start().starts_with("server ") && l.contains("# upstream:")).collect();
    assert!(!servers.is_empty() && servers.iter().all(|l| l.contains(" resolve;")), "{servers:?}");
    assert!(conf.contains("resolver 127.0.0.11"), "nginx has no resolver to re-resolve with");
    // Every long-running service of ours is scraped on its ops port; alerts reach Alertmanager.
    let prometheus = helper("yaml_json.py", &repo().join("monitoring/prometheus.yml"));
    let mut scraped: Vec<(String, u64)> = Vec::new();
    for job in prometheus["scrape_configs"].as_array().unwrap() {
        for sd in job["dns_sd_configs"].as_array().unwrap() {
            for name in sd["names"].as_array().unwrap() {
                scraped.push((name.as_str().unwrap().to_owned(), sd["port"].as_u64().unwrap()));
            }
        }
    }
    for (name, service) in services {
        let ours = service["image"].as_str().unwrap().starts_with("obentchi/");
        if ours && service["command"] != serde_json::json!(["migrate"]) {
            assert_eq!(service["environment"]["OBENTCHI_LISTEN__OPS_ADDR"], "0.0.0.0:9100", "{name}");
            assert!(scraped.contains(&(name.clone(), 9100)), "{name} is not scraped on its ops port: {scraped:?}");
        }
    }
    let alertmanagers = &prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0];
    assert_eq!(alertmanagers.as_str(), Some("alertmanager:9093"));
    assert!(services.contains_key("alertmanager"));
}

#[test]
fn secrets_stay_out_of_the_repository_and_the_build_context() {
    for secret in [".env", ".env.production", "deploy/tls/tls.key"] {
        let ignored = Command::new("git").current_dir(repo()).args(["check-ignore", "--no-index", "-q", secret]).status().unwrap();
        assert!(ignored.success(), "git would take {secret}");
    }
    let ignored = Command::new("git").current_dir(repo()).args(["check-ignore", "--no-index", "-q", ".env.example"]).status().unwrap();
    assert!(!ignored.success(), ".env.example is the template and stays tracked");
    // Docker's patterns are close enough to git's for these: each line must be there.
    let dockerignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for pattern in [".env", ".env.*", "deploy/tls/*.key"] {
        assert!(dockerignore.lines().any(|l| l.trim() == pattern), ".dockerignore lacks {pattern}");
    }
}

#[test]
fn dockerfiles_pass_hadolint() {
    let hadolint = tool("HADOLINT_BIN");
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
    // scripts/lib.sh installs node; without it this check fails rather than passing unrun.
    run(Command::new("node").arg("--check").arg(repo().join("scripts/init-mongo-sharding.js")));
}
