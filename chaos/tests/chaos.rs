//! The small chaos profile in the test suite, and the checker's own test: the same run against
//! a deliberately broken build must be reported as broken.

use std::path::PathBuf;

use obentchi_chaos::{run, Options, Profile};

fn bin_dir() -> PathBuf {
    obentchi_testkit::processes::workspace_binary("obentchi-bot").parent().expect("a directory").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_profile_keeps_every_invariant_under_every_fault() {
    let report = run(Options { profile: Profile::small(), seed: 11, bin_dir: bin_dir(), broken: None }).await.unwrap();
    let markdown = report.markdown("test", "today");
    eprintln!("{markdown}");
    assert!(report.settled, "{markdown}");
    assert_eq!(report.violations(), 0, "{markdown}");
    assert!(report.money_operations() >= 2_000, "{markdown}");
    for fault in obentchi_chaos::faults::Fault::all() {
        assert!(report.faults.contains_key(&fault.name()), "{} never injected: {markdown}", fault.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_a_build_that_refunds_on_409() {
    let profile = Profile { users: 120, operations_per_user: 8, ..Profile::small() };
    let report = run(Options { profile, seed: 12, bin_dir: bin_dir(), broken: Some("refund_on_409".into()) }).await.unwrap();
    let markdown = report.markdown("test", "today");
    eprintln!("{markdown}");
    let broken: Vec<&str> = report.checks.iter().filter(|c| !c.passed()).map(|c| c.name).collect();
    assert!(
        broken.iter().any(|name| name.starts_with("executed payouts equal withdrawals marked sent")),
        "a refund after a payout went out must be reported: {markdown}"
    );
}
