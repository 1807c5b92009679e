//! scripts/init-redis-cluster.sh (what docker-compose.production.yml's redis-init runs) forms a
//! working six-node cluster on the ports it is given, and running it again changes nothing.

use std::path::Path;
use std::process::Command;

use obentchi_core::config::{RedisConfig, RedisMode};
use obentchi_testkit::free_port;

struct Nodes<'a>(&'a Path, Vec<u16>);

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        for port in &self.1 {
            if let Ok(pid) = std::fs::read_to_string(self.0.join(format!("{port}/redis.pid"))) {
                let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_script_brings_up_a_cluster_once() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..6).map(|_| free_port(true)).collect();
    let _nodes = Nodes(dir.path(), ports.clone());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/init-redis-cluster.sh");
    let port_args: Vec<String> = ports.iter().map(u16::to_string).collect();
    for run in ["forms", "finds it formed"] {
        let output = Command::new("bash").arg(&script).arg("--start").arg(dir.path()).args(&port_args).output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the script failed when it {run}:\n{said}");
        if run == "finds it formed" {
            assert!(said.contains("already formed"), "{said}");
        }
    }
    let info = Command::new("redis-cli").args(["-p", &port_args[0], "cluster", "info"]).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("cluster_state:ok") && info.contains("cluster_size:3") && info.contains("cluster_known_nodes:6"), "{info}");

    // Our own cluster client works against it, across slots.
    let urls = ports.iter().map(|p| format!("redis://127.0.0.1:{p}"));
    let mut redis = RedisConfig::from_urls(RedisMode::Cluster, urls).unwrap().connect().await.unwrap();
    for key in ["a", "b", "c", "{user}:1", "{user}:2"] {
        let _: () = redis::cmd("SET").arg(key).arg(key).query_async(&mut redis).await.unwrap();
        let value: String = redis::cmd("GET").arg(key).query_async(&mut redis).await.unwrap();
        assert_eq!(value, key);
    }
}
