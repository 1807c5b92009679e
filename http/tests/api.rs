//! The admin API as a black box: the real binary's application on a free port, real Redis and
//! MongoDB. Every endpoint: no token → 401, wrong scope → 403, bad input → 4xx with a code.

mod support;

use std::time::Duration;

use apalis_redis_streams::Queue;
use obentchi_core::queues::QueuesConfig;
use obentchi_core::admin_audit::AdminAudit;
use obentchi_core::ids::{IdempotencyKey, ProviderId, UserId};
use obentchi_core::ledger::{Ledger, Posting};
use obentchi_core::money::{Currency, Money};
use obentchi_core::payments::{PaymentJob, PaymentStatus, Payments, TELEGRAM_STARS};
use obentchi_core::payout::HttpPayoutProvider;
use obentchi_core::users::{Registration, Sender, Users};
use obentchi_core::withdrawals::{AddressFormat, NewWithdrawal, PayoutAddress, WithdrawalJob, WithdrawalStatus, Withdrawals};
use obentchi_http::callbacks::{sign, SIGNATURE_HEADER};
use obentchi_testkit::{FakePayoutProvider, PayoutMode};
use serde_json::{json, Value};
use support::{error_code, money_limits, spawn_app, TestApp, GATEWAY_SECRET, GENEROUS};

const READS: [&str; 15] = [
    "/admin/users",
    "/admin/users/1",
    "/admin/withdrawals",
    "/admin/withdrawals/stuck",
    "/admin/broadcasts/b1",
    "/admin/queues",
    "/admin/queues/payments/dead-letters",
    "/admin/stats",
    "/admin/dashboard/panel",
    "/admin/postings",
    "/admin/audit",
    "/admin/referrers/top",
    "/admin/support/threads",
    "/admin/support/threads/1",
    "/admin/settings",
];
const WRITES: [&str; 8] = [
    "/admin/users/1/ban",
    "/admin/users/1/unban",
    "/admin/broadcasts",
    "/admin/broadcasts/b1/cancel",
    "/admin/queues/payments/dead-letters/0-1/retry",
    "/admin/queues/payments/dead-letters/0-1/discard",
    "/admin/support/threads/1/messages",
    "/admin/support/threads/1/close",
];
/// Routes that move money: the `money` scope, which `write` does not include.
const MONEY: [&str; 3] = ["/admin/withdrawals/1:w/approve", "/admin/withdrawals/1:w/reject", "/admin/withdrawals/1:w/retry"];

fn xtr(minor: i64) -> Money {
    Money::from_minor(Currency::Xtr, minor)
}

async fn queue(app: &TestApp, name: &str) -> Queue {
    let redis = app.redis_conn_config().connect().await.unwrap();
    QueuesConfig::default().open(name, &redis).unwrap()
}

async fn queued<T: serde::de::DeserializeOwned>(queue: &Queue) -> Vec<T> {
    let mut jobs = Vec::new();
    for partition in queue.partitions() {
        queue.ensure_groups().await.unwrap();
        let deliveries = queue.fetch(partition, "test", 1_000).await.unwrap().deliveries;
        let ids: Vec<String> = deliveries.iter().map(|d| d.entry_id.clone()).collect();
        jobs.extend(deliveries.iter().map(|d| d.envelope.decode_payload::<T>().unwrap()));
        queue.ack(partition, &ids).await.unwrap();
    }
    jobs
}

async fn deposit(app: &TestApp, user: i64, amount: Money) {
    let user = UserId::new(user).unwrap();
    let key = IdempotencyKey::new(format!("seed:{user}:{}", amount.minor())).unwrap();
    let posting = Posting::deposit(user, key, ProviderId::new(TELEGRAM_STARS).unwrap(), amount, "seed").unwrap();
    Ledger::new(app.store.clone()).post(&posting).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_endpoint_wants_a_token_with_the_right_scope() {
    let app = spawn_app(GENEROUS).await;
    for path in READS {
        assert_eq!(error_code(app.get(path, None).await).await, (401, "unauthenticated".into()), "GET {path}");
        assert_eq!(error_code(app.get(path, Some("obt_nope")).await).await, (401, "unauthenticated".into()), "GET {path}");
        let forged = format!("obt_{}_{}", "0".repeat(16), "1".repeat(64));
        assert_eq!(error_code(app.get(path, Some(&forged)).await).await, (401, "unauthenticated".into()), "GET {path}");
        let status = app.get(path, Some(&app.read_token)).await.status().as_u16();
        assert!(status == 200 || status == 404, "GET {path} with a read token: {status}");
    }
    for path in WRITES {
        let body = Some(json!({ "text": "hi", "reason": "test" }));
        assert_eq!(error_code(app.post(path, None, body.clone()).await).await, (401, "unauthenticated".into()), "POST {path}");
        assert_eq!(error_code(app.post(path, Some(&app.read_token), body.clone()).await).await, (403, "forbidden".into()), "POST {path}");
        let status = app.post(path, Some(&app.write_token), body).await.status().as_u16();
        assert!(status < 500, "POST {path} with a write token: {status}");
    }
    for path in MONEY {
        let body = Some(json!({ "reason": "test" }));
        assert_eq!(error_code(app.post(path, None, body.clone()).await).await, (401, "unauthenticated".into()), "POST {path}");
        assert_eq!(error_code(app.post(path, Some(&app.write_token), body.clone()).await).await, (403, "forbidden".into()), "POST {path}");
        let status = app.post(path, Some(&app.money_token), body).await.status().as_u16();
        assert!(status < 500, "POST {path} with a money token: {status}");
    }
    // Identity comes from the Authorization header only: a token in the query or body is ignored.
    let in_query = app.get(&format!("/admin/users?token={}", app.read_token), None).await;
    assert_eq!(error_code(in_query).await.0, 401);
    let basic = app.client.get(app.url("/admin/users")).basic_auth("admin", Some(&app.read_token)).send().await.unwrap();
    assert_eq!(error_code(basic).await.0, 401);
    // A revoked token stops working once the verifier's cache expires (immediately for a token
    // never used).
    let tokens = obentchi_core::api_tokens::ApiTokens::new(&app.store);
    let (token, secret) = tokens.create("short-lived", &[obentchi_core::api_tokens::Scope::Read]).await.unwrap();
    assert!(tokens.revoke(&token.id).await.unwrap());
    assert_eq!(error_code(app.get("/admin/users", Some(&secret)).await).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_code_and_never_a_5xx() {
    let app = spawn_app(GENEROUS).await;
    let r = Some(app.read_token.as_str());
    let gets = [
        ("/admin/users/0", 400, "bad_request"),
        ("/admin/users/abc", 400, "bad_request"),
        ("/admin/users/99", 404, "not_found"),
        ("/admin/users?after=-5", 400, "bad_request"),
        ("/admin/users?limit=many", 400, "bad_request"),
        ("/admin/withdrawals?status=lost", 400, "bad_request"),
        ("/admin/withdrawals?before=yesterday", 400, "bad_request"),
        ("/admin/queues/nope/dead-letters", 404, "not_found"),
        ("/admin/stats?days=0", 400, "bad_request"),
        ("/admin/stats?days=1000", 400, "bad_request"),
        ("/admin/broadcasts/none", 404, "not_found"),
    ];
    for (path, status, code) in gets {
        assert_eq!(error_code(app.get(path, r).await).await, (status, code.into()), "GET {path}");
    }
    let posts = [
        ("/admin/withdrawals/garbage/approve", None, 400, "bad_request"),
        ("/admin/withdrawals/1:/approve", None, 400, "bad_request"),
        ("/admin/withdrawals/5:none/approve", None, 404, "not_found"),
        ("/admin/withdrawals/5:none/reject", Some(json!({})), 400, "bad_request"),
        ("/admin/withdrawals/5:none/reject", Some(json!({ "reason": "" })), 400, "bad_request"),
        ("/admin/broadcasts", Some(json!({ "text": "" })), 400, "bad_request"),
        ("/admin/broadcasts", Some(json!({ "text": 5 })), 400, "bad_request"),
        ("/admin/broadcasts", None, 400, "bad_request"),
        ("/admin/queues/payments/dead-letters/zz/retry", None, 404, "not_found"),
        ("/admin/queues/payments/dead-letters/99-0-1/retry", None, 404, "not_found"),
        ("/admin/users/99/ban", None, 404, "not_found"),
    ];
    // A money token: the withdrawal routes need `money`, which includes `write`.
    for (path, body, status, code) in posts {
        assert_eq!(error_code(app.post(path, Some(&app.money_token), body).await).await, (status, code.into()), "POST {path}");
    }
    // Not JSON at all, and a body over the cap.
    let raw = app.client.post(app.url("/admin/broadcasts")).bearer_auth(&app.write_token).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(error_code(raw).await, (400, "bad_request".into()));
    let huge = json!({ "text": "x".repeat(100_000) });
    assert_eq!(error_code(app.post("/admin/broadcasts", Some(&app.write_token), Some(huge)).await).await, (413, "payload_too_large".into()));
    let bad_key = app.client.post(app.url("/admin/broadcasts")).bearer_auth(&app.write_token).header("idempotency-key", "no spaces").json(&json!({"text": "x"})).send().await.unwrap();
    assert_eq!(error_code(bad_key).await, (400, "bad_request".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_listed_searched_detailed_and_banned_with_an_audit_trail() {
    let app = spawn_app(GENEROUS).await;
    let users = Users::new(&app.store);
    for (id, name) in [(11, "alice"), (12, "alfred"), (13, "bob")] {
        let registration = Registration { sender: Sender { username: Some(name), ..Default::default() }, ..Default::default() };
        users.register(UserId::new(id).unwrap(), registration).await.unwrap();
    }
    deposit(&app, 11, xtr(500)).await;
    let r = Some(app.read_token.as_str());

    let page: Value = app.get("/admin/users?limit=2", r).await.json().await.unwrap();
    assert_eq!(page["users"].as_array().unwrap().iter().map(|u| u["user_id"].as_i64().unwrap()).collect::<Vec<_>>(), vec![11, 12]);
    assert_eq!(page["next_after"], 12);
    let rest: Value = app.get("/admin/users?limit=2&after=12", r).await.json().await.unwrap();
    assert_eq!(rest["users"][0]["username"], "bob");
    assert_eq!(rest["next_after"], Value::Null);
    let found: Value = app.get("/admin/users?q=@AL", r).await.json().await.unwrap();
    assert_eq!(found["users"].as_array().unwrap().len(), 2, "{found}");
    let by_id: Value = app.get("/admin/users?q=13", r).await.json().await.unwrap();
    assert_eq!(by_id["users"][0]["username"], "bob");
    let regex: Value = app.get("/admin/users?q=.*", r).await.json().await.unwrap();
    assert!(regex["users"].as_array().unwrap().is_empty(), "user text is not a regex: {regex}");

    let detail: Value = app.get("/admin/users/11", r).await.json().await.unwrap();
    assert_eq!(detail["balances"][0], json!({ "account": "user:available", "amount": { "currency": "XTR", "minor": 500 } }));
    assert_eq!(detail["postings"][0]["kind"], "deposit");

    let w = Some(app.write_token.as_str());
    for _ in 0..2 {
        let banned: Value = app.post("/admin/users/12/ban", w, None).await.json().await.unwrap();
        assert_eq!(banned, json!({ "user_id": 12, "banned": true }));
    }
    assert!(users.profile(UserId::new(12).unwrap()).await.unwrap().unwrap().banned);
    app.post("/admin/users/12/unban", w, None).await.error_for_status().unwrap();
    assert!(!users.profile(UserId::new(12).unwrap()).await.unwrap().unwrap().banned);
    let trail = AdminAudit::new(&app.store).for_target("12").await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["user.ban", "user.ban", "user.unban"]);
    assert!(trail.iter().all(|e| e.token_name == "writer"));
}

/// Issue 15 (admin reads): the ledger of every user and the audit log, filtered, newest first,
/// paged by cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_ledger_and_the_audit_log_are_read_by_filter_and_cursor() {
    let app = spawn_app(GENEROUS).await;
    Users::new(&app.store).register(UserId::new(31).unwrap(), Registration::default()).await.unwrap();
    for user in 31..=35 {
        deposit(&app, user, xtr(100 * user)).await;
    }
    deposit(&app, 36, Money::from_minor(Currency::Usdt, 2_500_000)).await;
    let r = Some(app.read_token.as_str());

    // Every deposit, two per page, following `next`.
    let mut seen = Vec::new();
    let mut path = "/admin/postings?kind=deposit&limit=2".to_owned();
    loop {
        let page: Value = app.get(&path, r).await.json().await.unwrap();
        seen.extend(page["postings"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/admin/postings?kind=deposit&limit=2&after={next}"),
            None => break,
        }
    }
    let users: std::collections::BTreeSet<i64> = seen.iter().map(|p| p["user_id"].as_i64().unwrap()).collect();
    assert_eq!(users.into_iter().collect::<Vec<_>>(), (31..=36).collect::<Vec<_>>(), "each once: {seen:?}");
    assert_eq!(seen.len(), 6);
    let times: Vec<&str> = seen.iter().map(|p| p["created_at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    let usdt: Value = app.get("/admin/postings?currency=USDT", r).await.json().await.unwrap();
    assert_eq!(usdt["postings"].as_array().unwrap().iter().map(|p| p["user_id"].as_i64().unwrap()).collect::<Vec<_>>(), [36]);
    let future: Value = app.get("/admin/postings?from=2100-01-01T00:00:00Z", r).await.json().await.unwrap();
    assert!(future["postings"].as_array().unwrap().is_empty());
    assert_eq!(error_code(app.get("/admin/postings?kind=gift", r).await).await.0, 400);
    assert_eq!(error_code(app.get("/admin/postings?after=nonsense", r).await).await.0, 400);

    // Two bans and an unban: the log names them, newest first, one per page.
    let w = Some(app.write_token.as_str());
    for path in ["/admin/users/31/ban", "/admin/users/31/ban", "/admin/users/31/unban"] {
        app.post(path, w, None).await.error_for_status().unwrap();
    }
    let all: Value = app.get("/admin/audit?target=31", r).await.json().await.unwrap();
    let actions: Vec<&str> = all["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user.unban", "user.ban", "user.ban"]);
    assert!(all["entries"].as_array().unwrap().iter().all(|e| e["token_name"] == "writer"));
    let first: Value = app.get("/admin/audit?action=user.ban&limit=1", r).await.json().await.unwrap();
    let next = first["next"].as_str().unwrap().to_owned();
    let second: Value = app.get(&format!("/admin/audit?action=user.ban&limit=1&before={next}"), r).await.json().await.unwrap();
    assert_eq!(second["entries"].as_array().unwrap().len(), 1);
    assert_ne!(second["entries"][0]["id"], first["entries"][0]["id"]);
    let third: Value = app.get(&format!("/admin/audit?action=user.ban&limit=1&before={}", second["next"].as_str().unwrap()), r).await.json().await.unwrap();
    assert!(third["entries"].as_array().unwrap().is_empty() && third["next"].is_null(), "{third}");
    assert_eq!(error_code(app.get("/admin/audit?before=nonsense", r).await).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_twice_pays_out_once_and_every_action_is_audited() {
    let app = spawn_app(GENEROUS).await;
    let user = UserId::new(21).unwrap();
    deposit(&app, 21, xtr(5_000)).await;
    let ledger = Ledger::new(app.store.clone());
    let withdrawals = Withdrawals::new(&app.store, ledger.clone());
    let address = PayoutAddress::parse(AddressFormat::Ton, "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG").unwrap();
    for request in ["big-1", "big-2"] {
        let new = NewWithdrawal { user_id: user, request_id: IdempotencyKey::new(request).unwrap(), amount: xtr(2_000), fee: xtr(0), address: address.clone() };
        // Above the auto-approval limit: waits for an admin.
        assert_eq!(withdrawals.request(new, xtr(1_000)).await.unwrap().status, WithdrawalStatus::Requested);
    }
    let (r, w) = (Some(app.read_token.as_str()), Some(app.money_token.as_str()));
    let waiting: Value = app.get("/admin/withdrawals?status=requested", r).await.json().await.unwrap();
    assert_eq!(waiting["withdrawals"].as_array().unwrap().len(), 2);

    // Two admins click approve at once, and one clicks again.
    let approve = "/admin/withdrawals/21:big-1/approve";
    let (a, b) = tokio::join!(app.post(approve, w, None), app.post(approve, w, None));
    for answer in [a, b, app.post(approve, w, None).await] {
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["status"], "approved", "{body}");
    }
    let provider = FakePayoutProvider::start(PayoutMode::Succeed).await;
    let provider_config = serde_json::from_value(json!({ "base_url": provider.base_url(), "api_token": "t", "timeout_ms": 1000 })).unwrap();
    let payout = HttpPayoutProvider::new(&provider_config).unwrap();
    let jobs: Vec<WithdrawalJob> = queued(&queue(&app, "withdrawals").await).await;
    assert_eq!(jobs.len(), 1, "one payout job however often it was approved: {jobs:?}");
    // Retrying a withdrawal in flight adds a job; two jobs still pay once.
    app.post("/admin/withdrawals/21:big-1/retry", w, None).await.error_for_status().unwrap();
    let retried: Vec<WithdrawalJob> = queued(&queue(&app, "withdrawals").await).await;
    for job in jobs.iter().chain(&retried) {
        let _ = withdrawals.process(job, &payout).await;
    }
    assert_eq!(provider.executions("21:big-1"), 1);
    assert_eq!(withdrawals.get(user, "big-1").await.unwrap().status, WithdrawalStatus::Sent);

    // A sent withdrawal cannot be rejected; retrying it changes nothing.
    let refused = app.post("/admin/withdrawals/21:big-1/reject", w, Some(json!({ "reason": "late" }))).await;
    assert_eq!(error_code(refused).await, (409, "conflict".into()));
    let unchanged: Value = app.post("/admin/withdrawals/21:big-1/retry", w, None).await.json().await.unwrap();
    assert_eq!(unchanged["status"], "sent");
    assert!(queued::<WithdrawalJob>(&queue(&app, "withdrawals").await).await.is_empty());

    // Rejecting the other returns its hold; twice is the same.
    for _ in 0..2 {
        let rejected: Value = app.post("/admin/withdrawals/21:big-2/reject", w, Some(json!({ "reason": "KYC" }))).await.json().await.unwrap();
        assert_eq!(rejected["status"], "released", "{rejected}");
    }
    let notices: Vec<obentchi_core::outbound::OutboundMessage> = queued(&queue(&app, "outbound").await).await;
    assert_eq!(notices.len(), 1, "the user is told once that the money came back: {notices:?}");
    assert_eq!(notices[0].chat_id, 21);
    let available = ledger.balance(user, obentchi_core::ledger::UserAccount::Available, Currency::Xtr).await.unwrap();
    assert_eq!(available, xtr(3_000), "5,000 − 2,000 paid; the rejected 2,000 came back");
    let audit = AdminAudit::new(&app.store);
    let approvals = audit.for_target("21:big-1").await.unwrap();
    let actions: Vec<&str> = approvals.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "withdrawal.approve").count(), 3);
    assert!(actions.contains(&"withdrawal.reject") && actions.contains(&"withdrawal.retry"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_start_once_per_key_report_progress_and_cancel() {
    let app = spawn_app(GENEROUS).await;
    let (r, w) = (Some(app.read_token.as_str()), Some(app.write_token.as_str()));
    let create = || {
        app.client
            .post(app.url("/admin/broadcasts"))
            .bearer_auth(&app.write_token)
            .header("idempotency-key", "promo-1")
            .json(&json!({ "text": "Hello all" }))
            .send()
    };
    let first: Value = create().await.unwrap().json().await.unwrap();
    let second: Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["status"], "running");
    let id = first["id"].as_str().unwrap();
    let steps: Vec<Value> = queued(&queue(&app, "broadcasts").await).await;
    assert_eq!(steps.len(), 1, "one first step: {steps:?}");
    let progress: Value = app.get(&format!("/admin/broadcasts/{id}"), r).await.json().await.unwrap();
    assert_eq!(progress["text"], "Hello all");
    let cancelled: Value = app.post(&format!("/admin/broadcasts/{id}/cancel"), w, None).await.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_threads_are_listed_answered_once_per_key_and_closed_with_the_user_told() {
    let app = spawn_app(GENEROUS).await;
    let (r, w) = (Some(app.read_token.as_str()), Some(app.write_token.as_str()));
    let threads = obentchi_core::support::SupportThreads::new(&app.store);
    let users = Users::new(&app.store);
    let (amina, omar) = (UserId::new(581_234_567).unwrap(), UserId::new(402_118_833).unwrap());
    let french = Sender { telegram_language: Some("fr"), in_private: true, ..Default::default() };
    users.register(amina, Registration { referrer: None, sender: french }).await.unwrap();
    for (user, key, text) in [(amina, "tg:1", "Where is my deposit?"), (omar, "tg:2", "Hello")] {
        threads.open(user, obentchi_core::support::Topic::General, chrono::Utc::now()).await.unwrap();
        let message = obentchi_core::support::SupportMessage {
            key: key.into(),
            from: obentchi_core::support::Author::User,
            admin: None,
            text: text.into(),
            at: chrono::Utc::now(),
        };
        threads.add(user, &message).await.unwrap();
    }

    // Listed most recently active first, one per page with a cursor.
    let page: Value = app.get("/admin/support/threads?status=open&limit=1", r).await.json().await.unwrap();
    assert_eq!(page["threads"][0]["_id"], 402_118_833);
    let next = page["next"].as_str().unwrap();
    let page: Value = app.get(&format!("/admin/support/threads?status=open&limit=1&after={next}"), r).await.json().await.unwrap();
    assert_eq!(page["threads"][0]["_id"], 581_234_567);
    assert_eq!(error_code(app.get("/admin/support/threads?after=nonsense", r).await).await, (400, "bad_request".into()));

    // An answer, sent twice with one key: one entry, one message, in the user's language.
    let answer = || {
        app.client
            .post(app.url("/admin/support/threads/581234567/messages"))
            .bearer_auth(&app.write_token)
            .header("idempotency-key", "answer-1")
            .json(&json!({ "text": "It is credited now." }))
            .send()
    };
    let first: Value = answer().await.unwrap().json().await.unwrap();
    let second: Value = answer().await.unwrap().json().await.unwrap();
    assert_eq!(first["messages"].as_array().unwrap().len(), 2);
    assert_eq!(second["messages"], first["messages"]);
    assert_eq!(first["messages"][1]["from"], "admin");
    let outbound: Vec<obentchi_core::outbound::OutboundMessage> = queued(&queue(&app, "outbound").await).await;
    assert_eq!(outbound.len(), 1, "{outbound:?}");
    assert_eq!(outbound[0].chat_id, 581_234_567);
    assert_eq!(outbound[0].text, "Support : It is credited now.", "in her language");
    let empty = app.post("/admin/support/threads/581234567/messages", w, Some(json!({ "text": "  " }))).await;
    assert_eq!(error_code(empty).await.0, 400);
    let nobody = app.post("/admin/support/threads/111/messages", w, Some(json!({ "text": "hi" }))).await;
    assert_eq!(error_code(nobody).await.0, 404);

    // Closing tells the user once; closing again changes nothing.
    let closed: Value = app.post("/admin/support/threads/581234567/close", w, None).await.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    app.post("/admin/support/threads/581234567/close", w, None).await;
    let outbound: Vec<obentchi_core::outbound::OutboundMessage> = queued(&queue(&app, "outbound").await).await;
    assert_eq!(outbound.len(), 1, "{outbound:?}");
    assert!(outbound[0].text.contains("/support"), "{}", outbound[0].text);
    let audit = AdminAudit::new(&app.store).for_target("581234567").await.unwrap();
    let actions: Vec<(&str, &str)> = audit.iter().map(|e| (e.action.as_str(), e.outcome.as_str())).collect();
    assert_eq!(actions, [("support.answer", "sent"), ("support.answer", "unchanged"), ("support.close", "closed"), ("support.close", "unchanged")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_settings_change_with_the_money_scope_by_version_checked_and_audited() {
    let app = spawn_app(GENEROUS).await;
    let put = |token: &str, body: Value| app.client.put(app.url("/admin/settings")).bearer_auth(token).json(&body).send();
    let current: Value = app.get("/admin/settings", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(current["version"], 0, "the configuration's");
    assert_eq!(current["settings"]["subscriptions"]["plans"][0]["price"], "100 XTR");
    let mut settings = current["settings"].clone();
    settings["subscriptions"]["plans"][0]["price"] = "120 XTR".into();
    settings["withdrawals"][0]["auto_approve_up_to"] = "500 XTR".into();

    // `write` is not enough: this moves money.
    let denied = put(&app.write_token, json!({ "version": 0, "settings": settings })).await.unwrap();
    assert_eq!(error_code(denied).await, (403, "forbidden".into()));
    // Checked as the configuration is; nothing written when refused.
    let mut free = settings.clone();
    free["subscriptions"]["plans"][0]["price"] = "0 XTR".into();
    let refused = put(&app.money_token, json!({ "version": 0, "settings": free })).await.unwrap();
    assert_eq!(error_code(refused).await.0, 400);
    let mut backwards = settings.clone();
    backwards["withdrawals"][0]["min"] = "999999 XTR".into();
    assert_eq!(error_code(put(&app.money_token, json!({ "version": 0, "settings": backwards })).await.unwrap()).await.0, 400);

    let mut twice = settings.clone();
    let plan = twice["subscriptions"]["plans"][0].clone();
    twice["subscriptions"]["plans"].as_array_mut().unwrap().push(plan);
    assert_eq!(error_code(put(&app.money_token, json!({ "version": 0, "settings": twice })).await.unwrap()).await.0, 400, "two plans, one id");
    let mut typo = settings.clone();
    typo["subscriptions"]["plans"][0]["chanel"] = json!(-1001);
    assert_eq!(error_code(put(&app.money_token, json!({ "version": 0, "settings": typo })).await.unwrap()).await.0, 400, "an unknown field");
    let mut partial = settings.clone();
    partial["subscriptions"].as_object_mut().unwrap().remove("referral_commission_bps");
    assert_eq!(error_code(put(&app.money_token, json!({ "version": 0, "settings": partial })).await.unwrap()).await.0, 400, "a field left out");

    let changed: Value = put(&app.money_token, json!({ "version": 0, "settings": settings })).await.unwrap().json().await.unwrap();
    assert_eq!(changed["version"], 1);
    let now: Value = app.get("/admin/settings", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(now["settings"]["subscriptions"]["plans"][0]["price"], "120 XTR");
    assert_eq!(now["settings"]["withdrawals"][0]["auto_approve_up_to"], "500 XTR");
    // A second admin still holding version 0 is refused, and the first change stands.
    let stale = put(&app.money_token, json!({ "version": 0, "settings": current["settings"] })).await.unwrap();
    assert_eq!(error_code(stale).await.0, 409);
    let now: Value = app.get("/admin/settings", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(now["version"], 1);
    let audit = AdminAudit::new(&app.store).for_target("settings:0").await.unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|e| e.outcome.as_str()).filter(|o| *o != "attempted").collect();
    assert_eq!(outcomes, ["replaced", "refused"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_show_stats_and_dead_letters_can_be_retried_once_or_discarded() {
    let app = spawn_app(GENEROUS).await;
    let payments = queue(&app, "payments").await;
    payments.ensure_groups().await.unwrap();
    for n in 0..2 {
        payments.enqueue(&json!({ "poison": n }), None).await.unwrap();
    }
    for partition in payments.partitions() {
        for delivery in payments.fetch(partition, "test", 10).await.unwrap().deliveries {
            payments.bury(&delivery, "boom").await.unwrap();
        }
    }
    let (r, w) = (Some(app.read_token.as_str()), Some(app.write_token.as_str()));
    let overview: Value = app.get("/admin/queues", r).await.json().await.unwrap();
    let names: Vec<&str> = overview["queues"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["broadcasts", "outbound", "payments", "scheduled", "updates", "withdrawals"]);
    let payments_view = overview["queues"].as_array().unwrap().iter().find(|q| q["name"] == "payments").unwrap();
    assert_eq!(payments_view["dead"], 2);

    let letters: Vec<Value> = app.get("/admin/queues/payments/dead-letters", r).await.json().await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0]["error"], "boom");
    let (retry_id, discard_id) = (letters[0]["id"].as_str().unwrap(), letters[1]["id"].as_str().unwrap());
    let retried: Value = app.post(&format!("/admin/queues/payments/dead-letters/{retry_id}/retry"), w, None).await.json().await.unwrap();
    assert_eq!(retried["outcome"], "retried");
    let again = app.post(&format!("/admin/queues/payments/dead-letters/{retry_id}/retry"), w, None).await;
    assert_eq!(error_code(again).await, (404, "not_found".into()), "a retried letter is gone; it is not retried twice");
    app.post(&format!("/admin/queues/payments/dead-letters/{discard_id}/discard"), w, None).await.error_for_status().unwrap();
    let revived: Vec<Value> = queued(&payments).await;
    assert_eq!(revived.len(), 1);
    assert_eq!(payments.stats().await.unwrap().dead, 0);
}

/// A dead-letter retry needs only Redis, so it would succeed with MongoDB down; its audit entry
/// cannot be written then, so it must not happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_audit_entry_cannot_be_written_is_not_made() {
    let mut app = spawn_app(GENEROUS).await;
    let payments = queue(&app, "payments").await;
    payments.ensure_groups().await.unwrap();
    payments.enqueue(&json!({ "poison": 1 }), None).await.unwrap();
    for partition in payments.partitions() {
        for delivery in payments.fetch(partition, "test", 10).await.unwrap().deliveries {
            payments.bury(&delivery, "boom").await.unwrap();
        }
    }
    let w = Some(app.write_token.as_str());
    let letters: Vec<Value> = app.get("/admin/queues/payments/dead-letters", w).await.json().await.unwrap();
    let id = letters[0]["id"].as_str().unwrap().to_owned();
    // The write token is verified and cached now; MongoDB goes away.
    app.mongo.kill();
    let path = format!("/admin/queues/payments/dead-letters/{id}/retry");
    let retry = app.post(&path, Some(&app.write_token), None);
    let answer = tokio::time::timeout(Duration::from_secs(90), retry).await.unwrap();
    assert_eq!(error_code(answer).await, (503, "unavailable".into()));
    assert_eq!(payments.dead_letters(10).await.unwrap().len(), 1, "the dead letter was not retried");
    assert!(queued::<Value>(&payments).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_users_and_deposits_per_day() {
    let app = spawn_app(GENEROUS).await;
    let users = Users::new(&app.store);
    for id in [31, 32] {
        users.register(UserId::new(id).unwrap(), Default::default()).await.unwrap();
    }
    deposit(&app, 31, xtr(120)).await;
    deposit(&app, 32, xtr(30)).await;
    let stats: Value = app.get("/admin/stats?days=3", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(stats["users"], 2);
    assert_eq!(stats["active_subscriptions"], 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(stats["deposits"], json!([{ "day": today, "amount": { "currency": "XTR", "minor": 150 } }]));
    assert_eq!(stats["withdrawals"], json!([]));

    // Issue 15: revenue and commissions per day, and the top referrers.
    let ledger = Ledger::new(app.store.clone());
    let key = |k: &str| IdempotencyKey::new(k).unwrap();
    ledger.post(&Posting::subscription_purchase(UserId::new(31).unwrap(), key("buy-1"), xtr(100), "month").unwrap()).await.unwrap();
    ledger.post(&Posting::referral_commission(UserId::new(32).unwrap(), key("commission-1"), xtr(10), "for 31").unwrap()).await.unwrap();
    ledger.post(&Posting::referral_commission(UserId::new(31).unwrap(), key("commission-2"), xtr(5), "for 33").unwrap()).await.unwrap();
    let stats: Value = app.get("/admin/stats?days=1", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(stats["revenue"], json!([{ "day": today, "amount": { "currency": "XTR", "minor": 100 } }]));
    assert_eq!(stats["commissions"], json!([{ "day": today, "amount": { "currency": "XTR", "minor": 15 } }]));
    let top: Value = app.get("/admin/referrers/top?currency=XTR&days=7", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(
        top["referrers"],
        json!([
            { "user_id": 32, "commission": { "currency": "XTR", "minor": 10 }, "commissions": 1 },
            { "user_id": 31, "commission": { "currency": "XTR", "minor": 5 }, "commissions": 1 },
        ])
    );
    let none: Value = app.get("/admin/referrers/top?currency=USDT", Some(&app.read_token)).await.json().await.unwrap();
    assert_eq!(none["referrers"], json!([]));
    assert_eq!(error_code(app.get("/admin/referrers/top?days=0", Some(&app.read_token)).await).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_callbacks_are_signed_recorded_enqueued_and_credited_once() {
    let app = spawn_app(GENEROUS).await;
    let body = json!({ "payment_id": "tx-77", "user_id": 41, "amount": { "currency": "USDT", "minor": 12_500_000 }, "status": "paid" }).to_string();
    let send = |provider: &str, signature: Option<String>, body: String| {
        let mut request = app.client.post(app.url(&format!("/payments/callback/{provider}"))).header("content-type", "application/json").body(body);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send()
    };
    let good = sign(GATEWAY_SECRET.as_bytes(), body.as_bytes());
    assert_eq!(error_code(send("unknown", Some(good.clone()), body.clone()).await.unwrap()).await, (401, "bad_signature".into()));
    assert_eq!(error_code(send("cryptopay", None, body.clone()).await.unwrap()).await, (401, "bad_signature".into()));
    let wrong = sign(b"another key", body.as_bytes());
    assert_eq!(error_code(send("cryptopay", Some(wrong), body.clone()).await.unwrap()).await, (401, "bad_signature".into()));
    let tampered = body.replace("12500000", "99500000");
    assert_eq!(error_code(send("cryptopay", Some(good.clone()), tampered).await.unwrap()).await, (401, "bad_signature".into()));
    let not_json = "{oops";
    let signed = sign(GATEWAY_SECRET.as_bytes(), not_json.as_bytes());
    assert_eq!(error_code(send("cryptopay", Some(signed), not_json.into()).await.unwrap()).await, (400, "bad_request".into()));

    for _ in 0..3 {
        let answer: Value = send("cryptopay", Some(good.clone()), body.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(answer["status"], "accepted");
    }
    let pending = body.replace("\"paid\"", "\"pending\"").replace("tx-77", "tx-78");
    let answer: Value = send("cryptopay", Some(sign(GATEWAY_SECRET.as_bytes(), pending.as_bytes())), pending).await.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "ignored");

    let jobs: Vec<PaymentJob> = queued(&queue(&app, "payments").await).await;
    assert_eq!(jobs.len(), 1, "three deliveries, one job");
    let payments = Payments::new(&app.store, Ledger::new(app.store.clone()));
    for job in jobs.iter().chain(jobs.iter()) {
        payments.credit(job).await.unwrap();
    }
    assert_eq!(payments.status(&jobs[0]).await.unwrap(), Some(PaymentStatus::Credited));
    let balance = Ledger::new(app.store.clone())
        .balance(UserId::new(41).unwrap(), obentchi_core::ledger::UserAccount::Available, Currency::Usdt)
        .await
        .unwrap();
    assert_eq!(balance.minor(), 12_500_000);

    // The same gateway payment reported for another user is refused, not credited twice.
    let other = body.replace("\"user_id\":41", "\"user_id\":42");
    assert_ne!(other, body);
    let response = send("cryptopay", Some(sign(GATEWAY_SECRET.as_bytes(), other.as_bytes())), other).await.unwrap();
    assert_eq!(error_code(response).await.0, 409);
    let jobs: Vec<PaymentJob> = queued(&queue(&app, "payments").await).await;
    assert!(jobs.is_empty(), "nothing enqueued for the second user: {jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_routes_are_limited_hardest_and_answer_429_with_retry_after() {
    let strict = "{ per_minute = 1, burst = 2 }";
    let app = spawn_app(&money_limits(strict, strict)).await;
    let w = Some(app.money_token.as_str());
    for _ in 0..2 {
        assert_eq!(app.post("/admin/withdrawals/1:x/approve", w, None).await.status().as_u16(), 404);
    }
    let limited = app.post("/admin/withdrawals/1:x/approve", w, None).await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));
    // Other classes keep their own budget.
    assert_eq!(app.get("/admin/queues", Some(&app.read_token)).await.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_token_carrying_a_real_id_cannot_spend_that_tokens_budget() {
    let app = spawn_app(&money_limits("{ per_minute = 6000, burst = 100 }", "{ per_minute = 1, burst = 2 }")).await;
    // A token's id is not secret: it shows in `token list` and in the audit log.
    let id = obentchi_core::api_tokens::token_id(&app.money_token).unwrap();
    let forged = format!("obt_{id}_{}", "0".repeat(64));
    for _ in 0..5 {
        let answer = app.post("/admin/withdrawals/1:x/approve", Some(&forged), None).await;
        assert_eq!(error_code(answer).await, (401, "unauthenticated".into()));
    }
    // The real token still has its whole budget, and the budget still holds.
    for _ in 0..2 {
        assert_eq!(app.post("/admin/withdrawals/1:x/approve", Some(&app.money_token), None).await.status().as_u16(), 404);
    }
    let limited = app.post("/admin/withdrawals/1:x/approve", Some(&app.money_token), None).await;
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_headers_cors_and_openapi() {
    let app = spawn_app(GENEROUS).await;
    assert_eq!(app.ops_get("/healthz").await.status().as_u16(), 200);
    assert_eq!(app.ops_get("/readyz").await.status().as_u16(), 200);
    // The ops routes answer only on the ops port, which no Ingress or edge routes to.
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(app.get(path, None).await.status().as_u16(), 404, "{path} on the API port");
    }
    let answer = app.get("/admin/queues", Some(&app.read_token)).await;
    for header in ["x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy", "strict-transport-security"] {
        assert!(answer.headers().contains_key(header), "{header}");
    }
    // Made-up methods from an anonymous caller add no label values: each would be a series kept
    // forever.
    for made_up in ["BREW", "XYZZY1", "XYZZY2"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        app.client.request(method, app.url("/admin/queues")).send().await.unwrap();
    }
    let metrics = app.ops_get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total{method=\"GET\",route=\"/admin/queues\",status=\"200\"}"), "{metrics}");
    assert!(metrics.contains("http_requests_total{method=\"other\""), "{metrics}");
    assert!(!metrics.contains("XYZZY") && !metrics.contains("BREW"), "{metrics}");

    // CORS is closed: a preflight from another origin gets no allow-origin.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/admin/queues"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(!preflight.headers().contains_key("access-control-allow-origin"));

    let document: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    let expected = [
        "/admin/users", "/admin/users/{id}", "/admin/users/{id}/ban", "/admin/users/{id}/unban", "/admin/postings", "/admin/audit", "/admin/referrers/top",
        "/admin/withdrawals", "/admin/withdrawals/stuck", "/admin/withdrawals/{id}/approve", "/admin/withdrawals/{id}/reject", "/admin/withdrawals/{id}/retry",
        "/admin/broadcasts", "/admin/broadcasts/{id}", "/admin/broadcasts/{id}/cancel",
        "/admin/queues", "/admin/queues/{queue}/dead-letters", "/admin/queues/{queue}/dead-letters/{id}/retry",
        "/admin/queues/{queue}/dead-letters/{id}/discard", "/admin/stats", "/payments/callback/{provider}", "/admin/dashboard/panel",
        "/payments/cryptopay", "/admin/payments/stars/{charge_id}/refund", "/admin/users/{id}/adjustments", "/admin/adjustments/{id}/approve",
        "/admin/support/threads", "/admin/support/threads/{user}", "/admin/support/threads/{user}/messages", "/admin/support/threads/{user}/close",
        "/admin/settings",
    ];
    for path in expected {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
    let ui = app.get("/admin/docs/", None).await;
    assert_eq!(ui.status().as_u16(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_or_mongodb_is_a_503_with_a_code() {
    let mut app = spawn_app(GENEROUS).await;
    app.redis.kill();
    let answer = app.get("/admin/queues", Some(&app.read_token)).await;
    assert_eq!(error_code(answer).await, (503, "unavailable".into()));
    assert_eq!(app.ops_get("/readyz").await.status().as_u16(), 503);
    app.mongo.kill();
    // The token is cached; the user lookup needs MongoDB.
    let answer = tokio::time::timeout(Duration::from_secs(60), app.get("/admin/users/5", Some(&app.read_token))).await.unwrap();
    assert_eq!(error_code(answer).await, (503, "unavailable".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let limits = money_limits("{ per_minute = 1, burst = 1 }", "{ per_minute = 6000, burst = 100 }");
    let app = spawn_app(&format!("trusted_proxies = [\"127.0.0.0/8\"]\n{limits}")).await;
    let approve = |client_ip: &'static str| {
        app.client
            .post(app.url("/admin/withdrawals/1:x/approve"))
            .bearer_auth(&app.money_token)
            // nginx appends the peer it saw; a client-sent value before it is not believed.
            .header("x-forwarded-for", format!("198.51.100.7, {client_ip}"))
            .send()
    };
    assert_eq!(approve("203.0.113.1").await.unwrap().status().as_u16(), 404);
    assert_eq!(approve("203.0.113.1").await.unwrap().status().as_u16(), 429, "the same client, over its budget");
    assert_eq!(approve("203.0.113.2").await.unwrap().status().as_u16(), 404, "another client behind the same proxy");
}
