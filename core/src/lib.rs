//! Shared domain code of the OBENTCHI platform. See ARCHITECTURE.md for the code map.

pub mod adjustments;
pub mod admin_audit;
pub mod api_tokens;
pub mod broadcasts;
pub mod config;
pub mod cryptopay;
pub mod i18n;
pub mod ids;
pub mod job_reports;
pub mod ledger;
pub mod money;
pub mod ops;
pub mod outbound;
pub mod payments;
pub mod payout;
pub mod pools;
pub mod queues;
pub mod scheduled;
pub mod service;
pub mod settings;
pub mod stats;
pub mod storage;
pub mod subscriptions;
pub mod support;
pub mod telemetry;
pub mod users;
pub mod withdrawals;

/// Every service allocates through mimalloc: glibc's malloc and free were 15–17 % of the update
/// consumer's and the workers' CPU under load (perf, issue 17). Declared once here, so each
/// binary linking this crate uses it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
