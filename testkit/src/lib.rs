//! Real servers for tests, each started by the test on a free loopback port in a fresh directory
//! and stopped by its PID when the handle drops. No test depends on a server already running.
//!
//! Servers are children of the test process and get `PR_SET_PDEATHSIG`, so even a test process
//! killed with SIGKILL takes its servers with it.

mod bot_api;
pub mod browser;
mod command_recorder;
mod crypto_pay;
mod payout_provider;
mod simulator;
pub mod measure;
pub mod processes;
pub mod updates;

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use bot_api::{BotCall, FakeBotApi};
pub use command_recorder::{CommandRecorder, Violation};
pub use crypto_pay::{CryptoPayFaults, FakeCryptoPay};
pub use payout_provider::{Executed, FakePayoutProvider, PayoutFaults, PayoutMode};
pub use simulator::TelegramSimulator;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `app` on `addr` (port 0: a free one) in a task; the fakes of external systems use it.
async fn serve_http(addr: &str, app: axum::Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let bound = listener.local_addr().expect("local addr");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("fake server serves");
    });
    (bound, server)
}

/// The MongoDB-wire server binary: `$SECANTUSD_BIN`, or where `scripts/lib.sh` installs it.
pub fn secantusd_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SECANTUSD_BIN") {
        return PathBuf::from(bin);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    // Keep in step with SECANTUS_VERSION in scripts/lib.sh.
    Path::new(&home).join(".cache/obentchi/secantus-0.5.3-beta.196/bin/secantusd-rs")
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    let out = fs::File::create(log).expect("create server log");
    let err = out.try_clone().expect("clone log handle");
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()))
}

/// Stops a child by its PID with `signal`, waiting for it to exit (SIGKILL after 10 s).
fn stop(child: &mut Child, signal: i32) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(child.id() as i32, signal) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A TCP port nobody listens on right now. `with_bus` also keeps `port + 10000` free, which a
/// Redis Cluster node uses for its bus.
pub fn free_port(with_bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        if !with_bus {
            return port;
        }
        if port < 55_535 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// One `redis-server`, no persistence.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    cluster: bool,
    dir: TempDir,
    /// The master's port, for a replica.
    replica_of: Option<u16>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_node(false)
    }

    fn start_node(cluster: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer { child: None, port: free_port(cluster), cluster, dir, replica_of: None };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .current_dir(self.dir.path())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        if self.cluster {
            command.args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]);
        }
        if let Some(master) = self.replica_of {
            command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
        }
        let log = self.dir.path().join("redis.log");
        self.child = Some(spawn(&mut command, &log));
        let deadline = Instant::now() + START_TIMEOUT;
        while !redis_ping(self.port) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited with {status}: {}", fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING", self.port);
            sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL by PID), as a crash or a lost node would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child, libc::SIGKILL);
        }
    }

    /// Starts the server again on the same port (empty: it keeps no data).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }

    /// Suspends the server (SIGSTOP): it keeps its connections but answers nothing, as an
    /// unreachable node does, until `thaw`.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's PID.
            unsafe { libc::kill(pid as i32, signal) };
        }
    }

    /// A second server replicating this one (`replicaof`), started once it is in sync.
    pub fn start_replica(&self) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut replica = RedisServer { child: None, port: free_port(false), cluster: false, dir, replica_of: Some(self.port) };
        replica.launch();
        let deadline = Instant::now() + START_TIMEOUT;
        while !replica.cli(&["info", "replication"]).contains("master_link_status:up") {
            assert!(Instant::now() < deadline, "the replica never synced with its master");
            sleep(Duration::from_millis(20));
        }
        replica
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A 6-node Redis Cluster: 3 masters with one replica each.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..6).map(|_| RedisServer::start_node(true)).collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(output.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&output.stdout));
        let cluster = RedisCluster { nodes };
        cluster.wait_until(|c| c.all_nodes_report_ok() && c.replicas_in_sync(), "cluster_state:ok with replicas in sync");
        cluster
    }

    fn wait_until(&self, ready: impl Fn(&RedisCluster) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            assert!(Instant::now() < deadline, "Redis Cluster never reached {what}");
            sleep(Duration::from_millis(100));
        }
    }

    fn live_nodes(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    fn all_nodes_report_ok(&self) -> bool {
        self.live_nodes().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))
    }

    fn replicas_in_sync(&self) -> bool {
        self.live_nodes().all(|n| {
            let info = n.cli(&["info", "replication"]);
            info.contains("role:master") || info.contains("master_link_status:up")
        })
    }

    /// Seed URLs for a cluster client (every node).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Index of the node that currently is the master of `slot`.
    pub fn master_of_slot(&self, slot: u16) -> usize {
        self.slot_master(slot).unwrap_or_else(|| panic!("no live master owns slot {slot}"))
    }

    /// The node a live node's `CLUSTER NODES` names as the healthy master of `slot`, if any.
    fn slot_master(&self, slot: u16) -> Option<usize> {
        let nodes = self.live_nodes().next()?.cli(&["cluster", "nodes"]);
        let line = nodes.lines().find(|l| l.contains("master") && !l.contains("fail") && owns_slot(l, slot))?;
        // Second field: `127.0.0.1:PORT@BUSPORT`.
        let address = line.split_whitespace().nth(1)?;
        let port: u16 = address.split(['@', ':']).nth(1).and_then(|p| p.parse().ok())?;
        self.nodes.iter().position(|n| n.port == port)
    }

    /// The first slot node `index` serves as a master.
    fn first_slot_of(&self, index: usize) -> Option<u16> {
        let nodes = self.nodes[index].cli(&["cluster", "nodes"]);
        let line = nodes.lines().find(|l| l.contains("myself"))?;
        let range = line.split_whitespace().nth(8)?;
        range.split('-').next()?.parse().ok()
    }

    /// Starts a killed node again over its directory: it rejoins the cluster (as a replica of
    /// whoever took its slots) from its `nodes.conf`. Returns once it is in sync.
    pub fn restart_node(&mut self, index: usize) {
        self.nodes[index].kill();
        self.nodes[index].launch();
        self.wait_until(|c| c.all_nodes_report_ok() && c.replicas_in_sync(), "the restarted node in sync");
    }

    /// Suspends node `index` (SIGSTOP) for `pause`, then lets it go on: a node unreachable for a
    /// while, shorter than the failover timeout.
    pub fn freeze_node(&self, index: usize, pause: Duration) {
        self.nodes[index].freeze();
        sleep(pause);
        self.nodes[index].thaw();
    }

    /// Kills node `index` with SIGKILL and waits until the cluster is healthy again. For a
    /// master that means a replica was promoted in its place: the cluster notices the death
    /// only after the node timeout, so "every node says ok" right after the kill proves
    /// nothing, and restarting the (empty) master before the promotion would wipe its replica.
    pub fn kill_node_and_wait_for_failover(&mut self, index: usize) {
        let slot = self.first_slot_of(index);
        self.nodes[index].kill();
        if let Some(slot) = slot {
            self.wait_until(|c| c.slot_master(slot).is_some_and(|m| m != index), "a replica promoted in the killed master's place");
        }
        self.wait_until(RedisCluster::all_nodes_report_ok, "cluster_state:ok after a failover");
    }
}

/// Whether a `CLUSTER NODES` line lists `slot` among its ranges (`0-5460`, `5461`, ...).
fn owns_slot(line: &str, slot: u16) -> bool {
    line.split_whitespace().skip(8).any(|range| match range.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot)),
        None => range.parse::<u16>() == Ok(slot),
    })
}

/// One MongoDB-wire server (`secantusd-rs`, a single-node replica set: transactions and change
/// streams work). Its data lives in a temporary directory removed on drop.
pub struct MongoServer {
    child: Option<Child>,
    port: u16,
    _dir: TempDir,
}

impl MongoServer {
    pub fn start() -> MongoServer {
        let bin = secantusd_bin();
        assert!(bin.is_file(), "{} is missing: run scripts/install-deps.sh (or set SECANTUSD_BIN)", bin.display());
        let mut server = MongoServer { child: None, port: 0, _dir: tempfile::tempdir().expect("temp dir") };
        server.launch();
        server
    }

    /// Starts `secantusd-rs` on `self.port` (0: a free one, read from its log) over the data
    /// directory this server keeps for its whole life.
    fn launch(&mut self) {
        let dir = self._dir.path();
        // Truncated by `spawn`: a restart's readiness is read from its own lines.
        let log = dir.join("secantusd.log");
        let mut command = Command::new(secantusd_bin());
        command
            .current_dir(dir)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--storage-path"])
            .arg(dir.join("data"))
            .args(["--cache-size", "128M", "--log-file-max", "8MB"]);
        let mut child = spawn(&mut command, &log);
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.split("listening on 127.0.0.1:").nth(1))
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("secantusd-rs exited with {status}: {text}");
            }
            assert!(Instant::now() < deadline, "secantusd-rs did not report its port: {text}");
            sleep(Duration::from_millis(10));
        };
        self.port = port;
        self.child = Some(child);
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL by PID).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child, libc::SIGKILL);
        }
    }

    /// Stops the server as an operator would (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child, libc::SIGTERM);
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same port over the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts a stopped server again on its port over its data.
    pub fn resume(&mut self) {
        if self.child.is_none() {
            self.launch();
        }
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        // Its data is thrown away with the directory, so there is nothing to flush: kill.
        self.kill();
    }
}
