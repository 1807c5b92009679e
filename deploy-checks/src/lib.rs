//! Nothing to build: this crate's tests check the deployment files at the repository root
//! (`nginx.conf`, `monitoring/`, `kubernetes/`, `Dockerfile.*`, `docker-compose*.yml`,
//! `scripts/init-redis-cluster.sh`) with the tools that read them.

use std::process::Command;

/// The first nginx release whose open-source upstream servers take `resolve` (re-resolving
/// their names while running).
pub const NGINX_RESOLVE_SINCE: (u32, u32, u32) = (1, 27, 3);

/// The version of the nginx on this machine (`nginx -v`).
pub fn local_nginx_version() -> (u32, u32, u32) {
    let bin = if std::path::Path::new("/usr/sbin/nginx").exists() { "/usr/sbin/nginx" } else { "nginx" };
    let output = Command::new(bin).arg("-v").output().expect("nginx is installed (scripts/lib.sh)");
    let said = String::from_utf8_lossy(&output.stderr);
    let version = said.split("nginx/").nth(1).expect("nginx -v names its version").split_whitespace().next().unwrap();
    parse_version(version)
}

/// `1.27.5` → (1, 27, 5).
pub fn parse_version(version: &str) -> (u32, u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// nginx.conf as the nginx on this machine can read it. The edge runs an nginx that re-resolves
/// upstream names (docker-compose.production.yml pins one, and a check holds it there); an
/// older one here (Debian 12 has 1.22) refuses that single parameter, so it alone is dropped.
pub fn nginx_conf_for_local_nginx(conf: &str) -> String {
    if local_nginx_version() >= NGINX_RESOLVE_SINCE {
        return conf.to_owned();
    }
    conf.lines().map(|line| line.replace(" resolve;", ";").replace(" resolve ", " ")).collect::<Vec<_>>().join("\n")
}
