//! Nothing to build: this crate's tests check the deployment files at the repository root
//! (`nginx.conf`, `monitoring/`, `kubernetes/`, `Dockerfile.*`, `docker-compose*.yml`,
//! `scripts/init-redis-cluster.sh`) with the tools that read them.
