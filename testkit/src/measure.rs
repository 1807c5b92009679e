//! Measuring a phase: wall time, CPU time of this process and of one server process, for "CPU
//! µs per operation" figures, which stay comparable when the shared machine's throughput swings.

use std::future::Future;
use std::time::{Duration, Instant};

/// The build the numbers come from; only release numbers belong in docs/BENCHMARKS.md.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) { "debug build (not for BENCHMARKS.md)" } else { "release build" }
}

/// One measured phase, printed as a Markdown table row.
pub struct Measured {
    pub label: String,
    pub ops: u64,
    pub wall: Duration,
    pub client: Duration,
    pub server: Duration,
}

impl Measured {
    /// `| label | ops | ops/s | client µs/op | server µs/op |`
    pub fn row(&self, decimals: usize) -> String {
        let n = self.ops as f64;
        let per_op = |d: Duration| d.as_micros() as f64 / n;
        format!(
            "| {} | {} | {:.0} | {:.decimals$} | {:.decimals$} |",
            self.label,
            self.ops,
            n / self.wall.as_secs_f64(),
            per_op(self.client),
            per_op(self.server),
        )
    }
}

/// Runs `work` (`ops` operations) and measures it, with `server_pid`'s CPU as the server's.
pub async fn measure(label: &str, ops: u64, server_pid: u32, work: impl Future<Output = ()>) -> Measured {
    let (client, server, start) = (own_cpu(), process_cpu(server_pid), Instant::now());
    work.await;
    Measured {
        label: label.to_owned(),
        ops,
        wall: start.elapsed(),
        client: own_cpu() - client,
        server: process_cpu(server_pid) - server,
    }
}

pub fn own_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User + system CPU time of process `pid`, from /proc.
pub fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

/// The peak resident set of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
