//! Simulated users, only through the public edges: Telegram updates to the webhook receivers
//! (each delivered 1–3 times, some copies at once, re-sent until answered 200 as Telegram
//! does), signed gateway callbacks (replayed, and sometimes re-reported for another user), and
//! an admin approving or rejecting withdrawals over the API. What the fakes accepted is
//! recorded in the `Journal`, for the checker.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use obentchi_testkit::updates::{self, TelegramUser};
use obentchi_testkit::FakeBotApi;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::platform::{GATEWAY, GATEWAY_SECRET, PLAN_DAYS, PLAN_PRICE, WEBHOOK_SECRET};

const TON: &str = "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG";
/// How long a delivery is re-sent before the simulated Telegram gives up on it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// What happened, as the outside world saw it.
#[derive(Debug, Default)]
pub struct Journal {
    /// Money operations started, by kind.
    pub operations: BTreeMap<&'static str, u64>,
    /// Gateway payments the API accepted: id → (user, amount).
    pub gateway_accepted: BTreeMap<String, (i64, i64)>,
    /// Re-reports of an accepted gateway payment for another user: refused / accepted.
    pub stolen_refused: u64,
    pub stolen_accepted: u64,
    /// Deliveries: updates acknowledged, and updates the receivers never acknowledged.
    pub updates_acked: u64,
    pub updates_given_up: u64,
    /// Per user: every update acknowledged, in order.
    pub acked_by_user: HashMap<i64, Vec<u64>>,
    /// Per user: the last language they chose with an acknowledged press, in order sent.
    pub last_language: HashMap<i64, String>,
    /// Per user: acknowledged /help messages (each must get a reply), by update id.
    pub help_acked: HashMap<i64, Vec<u32>>,
}

impl Journal {
    pub fn count(&mut self, kind: &'static str) {
        *self.operations.entry(kind).or_default() += 1;
    }
}

#[derive(Clone)]
pub struct Traffic {
    pub client: reqwest::Client,
    pub receivers: Vec<u16>,
    pub api: u16,
    pub admin_token: String,
    pub bot_api: Arc<FakeBotApi>,
    pub journal: Arc<Mutex<Journal>>,
    next_update: Arc<AtomicU32>,
}

fn person(user: i64) -> TelegramUser {
    TelegramUser::new(user, "User", Some("en"))
}

impl Traffic {
    pub fn new(receivers: Vec<u16>, api: u16, admin_token: String, bot_api: Arc<FakeBotApi>) -> Traffic {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client");
        Traffic { client, receivers, api, admin_token, bot_api, journal: Arc::default(), next_update: Arc::new(AtomicU32::new(1)) }
    }

    fn update_id(&self) -> u32 {
        self.next_update.fetch_add(1, Ordering::Relaxed)
    }

    /// Delivers an update 1–3 times (sometimes at once), each copy until a receiver answers
    /// 200; returns whether any copy was acknowledged.
    pub async fn deliver(&self, rng: &mut StdRng, update: Value) -> bool {
        let body = update.to_string();
        let update_id = update["update_id"].as_u64().unwrap_or_default();
        let user = update["message"]["from"]["id"]
            .as_i64()
            .or(update["callback_query"]["from"]["id"].as_i64())
            .or(update["pre_checkout_query"]["from"]["id"].as_i64())
            .unwrap_or_default();
        let copies = rng.random_range(1..=3);
        let acked = if rng.random_bool(0.3) {
            let sends = (0..copies).map(|c| self.deliver_once(body.clone(), c));
            futures::future::join_all(sends).await.into_iter().any(|a| a)
        } else {
            let mut acked = false;
            for c in 0..copies {
                acked |= self.deliver_once(body.clone(), c).await;
            }
            acked
        };
        let mut journal = self.journal.lock().unwrap();
        if acked {
            journal.updates_acked += 1;
            journal.acked_by_user.entry(user).or_default().push(update_id);
        } else {
            journal.updates_given_up += 1;
        }
        acked
    }

    async fn deliver_once(&self, body: String, copy: usize) -> bool {
        let deadline = Instant::now() + GIVE_UP_AFTER;
        let mut pause = Duration::from_millis(50);
        let mut attempt = copy;
        loop {
            let port = self.receivers[attempt % self.receivers.len()];
            attempt += 1;
            let sent = self
                .client
                .post(format!("http://127.0.0.1:{port}/telegram/webhook"))
                .header("x-telegram-bot-api-secret-token", WEBHOOK_SECRET)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent.map(|r| r.status().as_u16()) {
                Ok(200) => return true,
                Ok(400 | 401 | 413) => return false,
                _ => {}
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    async fn message(&self, rng: &mut StdRng, user: i64, text: &str) -> (u32, bool) {
        let id = self.update_id();
        let acked = self.deliver(rng, updates::message(id, id, &person(user), updates::text(text))).await;
        (id, acked)
    }

    async fn press(&self, rng: &mut StdRng, user: i64, data: &str) -> bool {
        let id = self.update_id();
        self.deliver(rng, updates::callback_query(id, &person(user), 1, data)).await
    }

    /// `/start`, with a referral deep link when given.
    pub async fn start(&self, rng: &mut StdRng, user: i64, referrer: Option<i64>) -> bool {
        let text = referrer.map_or("/start".to_owned(), |r| format!("/start ref_{r}"));
        self.message(rng, user, &text).await.1
    }

    /// A Stars deposit as Telegram plays it: `/deposit` (the invoice), the pre-checkout query,
    /// then Telegram takes the Stars (its own books) and reports `successful_payment`.
    async fn stars_deposit(&self, rng: &mut StdRng, user: i64, n: usize) {
        let stars: u32 = rng.random_range(50..=400);
        let (invoice_update, _) = self.message(rng, user, &format!("/deposit {stars}")).await;
        let payload = format!("deposit:{user}:{invoice_update}");
        let query = self.update_id();
        self.deliver(rng, updates::pre_checkout_query(query, &format!("pcq-{query}"), &person(user), stars, &payload)).await;
        let charge = format!("stx-{user}-{n}");
        self.bot_api.record_star_payment(&charge, user, stars, &payload);
        let id = self.update_id();
        self.deliver(rng, updates::message(id, id, &person(user), updates::successful_payment(stars, &payload, &charge))).await;
    }

    /// A gateway reporting a paid deposit, with its retries; sometimes the same payment id is
    /// then reported for another user, which must be refused.
    async fn gateway_deposit(&self, rng: &mut StdRng, user: i64, n: usize) {
        let amount: i64 = rng.random_range(50..=400);
        let payment_id = format!("gw-{user}-{n}");
        let deliveries = rng.random_range(1..=3);
        let mut accepted = false;
        for _ in 0..deliveries {
            accepted |= self.callback(&payment_id, user, amount).await == Some(200);
        }
        if accepted {
            self.journal.lock().unwrap().gateway_accepted.insert(payment_id.clone(), (user, amount));
            if rng.random_bool(0.1) {
                let status = self.callback(&payment_id, user + 1, amount).await;
                let mut journal = self.journal.lock().unwrap();
                match status {
                    Some(200) => journal.stolen_accepted += 1,
                    _ => journal.stolen_refused += 1,
                }
            }
        }
    }

    /// POSTs a signed callback until the API answers something other than 5xx or a dropped
    /// connection (it may be restarting); returns the final status.
    async fn callback(&self, payment_id: &str, user: i64, amount: i64) -> Option<u16> {
        let body = json!({ "payment_id": payment_id, "user_id": user, "amount": { "currency": "XTR", "minor": amount }, "status": "paid" })
            .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(GATEWAY_SECRET.as_bytes()).expect("any key length");
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let deadline = Instant::now() + GIVE_UP_AFTER;
        loop {
            let sent = self
                .client
                .post(format!("http://127.0.0.1:{}/payments/callback/{GATEWAY}", self.api))
                .header("x-signature", &signature)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent.map(|r| r.status().as_u16()) {
                Ok(status) if status < 500 && status != 429 => return Some(status),
                _ if Instant::now() > deadline => return None,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn withdraw(&self, rng: &mut StdRng, user: i64) {
        let amount: i64 = if rng.random_bool(0.7) { rng.random_range(5..=100) } else { rng.random_range(101..=300) };
        let (started_by, _) = self.message(rng, user, "/withdraw").await;
        self.message(rng, user, &amount.to_string()).await;
        self.message(rng, user, TON).await;
        self.press(rng, user, &format!("wd:ok:{started_by}")).await;
    }

    /// One user's session: how they arrive, then `operations` money operations and a few
    /// others, in order (each update only after the previous was answered, as Telegram does).
    pub async fn session(&self, user: i64, referrers: &[i64], operations: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed ^ (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        match rng.random_range(0..10) {
            0..=4 => {
                let referrer = referrers[rng.random_range(0..referrers.len())];
                self.start(&mut rng, user, Some(referrer)).await;
            }
            5..=7 => {
                self.start(&mut rng, user, None).await;
            }
            // Arrives from a group: pays and buys before any /start (a late /start with a
            // referral link comes among the operations below).
            _ => {}
        }
        let mut confirms: Vec<u32> = Vec::new();
        let mut n = 0;
        while n < operations {
            match rng.random_range(0..100) {
                0..=29 => {
                    self.journal.lock().unwrap().count("stars_deposit");
                    self.stars_deposit(&mut rng, user, n).await;
                    n += 1;
                }
                30..=44 => {
                    self.journal.lock().unwrap().count("gateway_deposit");
                    self.gateway_deposit(&mut rng, user, n).await;
                    n += 1;
                }
                45..=69 => {
                    self.journal.lock().unwrap().count("subscription");
                    let shown_by = self.update_id();
                    self.press(&mut rng, user, &format!("subok:month:{shown_by}:{PLAN_PRICE}XTR:{PLAN_DAYS}")).await;
                    confirms.push(shown_by);
                    n += 1;
                    // An old confirm button pressed again: a replay, never a second purchase.
                    if rng.random_bool(0.3) {
                        let old = confirms[rng.random_range(0..confirms.len())];
                        self.press(&mut rng, user, &format!("subok:month:{old}:{PLAN_PRICE}XTR:{PLAN_DAYS}")).await;
                    }
                }
                70..=89 => {
                    self.journal.lock().unwrap().count("withdrawal");
                    self.withdraw(&mut rng, user).await;
                    n += 1;
                }
                90..=93 => {
                    let referrer = referrers[rng.random_range(0..referrers.len())];
                    self.start(&mut rng, user, Some(referrer)).await;
                }
                94..=96 => {
                    let language = ["ar", "en", "ru"][rng.random_range(0..3)];
                    if self.press(&mut rng, user, &format!("lang:{language}")).await {
                        self.journal.lock().unwrap().last_language.insert(user, language.to_owned());
                    }
                }
                _ => {
                    if let (id, true) = self.message(&mut rng, user, "/help").await {
                        self.journal.lock().unwrap().help_acked.entry(user).or_default().push(id);
                    }
                }
            }
        }
    }

    /// The admin: approves (about 70 %) or rejects every withdrawal waiting for review, until
    /// `stop`. Each decision is a money operation.
    pub async fn admin(&self, seed: u64, stop: Arc<std::sync::atomic::AtomicBool>) {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xAD);
        while !stop.load(Ordering::Relaxed) {
            let listed = self
                .client
                .get(format!("http://127.0.0.1:{}/admin/withdrawals?status=requested&limit=200", self.api))
                .bearer_auth(&self.admin_token)
                .send()
                .await;
            let page: Option<Value> = match listed {
                Ok(response) if response.status().is_success() => response.json().await.ok(),
                _ => None,
            };
            let ids: Vec<String> = page
                .as_ref()
                .and_then(|p| p["withdrawals"].as_array())
                .map(|ws| ws.iter().filter_map(|w| w["id"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            for id in ids {
                let approve = rng.random_bool(0.7);
                let url = format!("http://127.0.0.1:{}/admin/withdrawals/{id}/{}", self.api, if approve { "approve" } else { "reject" });
                let mut request = self.client.post(url).bearer_auth(&self.admin_token);
                if !approve {
                    request = request.json(&json!({ "reason": "chaos review" }));
                }
                if let Ok(response) = request.send().await {
                    if response.status().is_success() {
                        self.journal.lock().unwrap().count(if approve { "admin_approve" } else { "admin_reject" });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
