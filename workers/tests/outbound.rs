//! Outbound messages through the workers binary and a fake Bot API: Telegram's 429 is honoured
//! without using up attempts, a user who blocked the bot is marked and not retried, and every
//! message is delivered once.

mod support;

use std::time::Duration;

use obentchi_core::broadcasts::BroadcastMessage;
use obentchi_core::ids::UserId;
use obentchi_core::outbound::{OutboundMessage, StarsInvoice};
use serde_json::json;
use support::Platform;

fn message(chat_id: i64, text: &str) -> OutboundMessage {
    OutboundMessage::text(chat_id, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_delivered_once_within_telegrams_limits() {
    let mut platform = Platform::start().await;
    platform.bot_api.rate_limit_next(1, 1);
    platform.bot_api.block(2002);

    let mut jobs = vec![
        message(1001, "hello 1"),
        message(1001, "hello 2"),
        message(1001, "hello 3"),
        message(2002, "you blocked me"),
    ];
    let keyboard = json!({ "inline_keyboard": [[{ "text": "Next", "callback_data": "history:2" }]] });
    jobs.push(OutboundMessage { reply_markup: Some(keyboard.clone()), ..message(1003, "page 1") });
    let invoice = StarsInvoice { title: "Deposit 250 XTR".into(), payload: "deposit:1004:77".into(), stars: 250 };
    jobs.push(OutboundMessage { invoice: Some(invoice), ..message(1004, "Adds 250 XTR to your balance.") });
    for (i, job) in jobs.iter().enumerate() {
        platform.outbound_queue.enqueue(job, Some(&format!("msg-{i}"))).await.unwrap();
    }
    let worker = platform.spawn_worker();

    let mut done = false;
    for _ in 0..300 {
        let blocked = platform.users.has_blocked_bot(UserId::new(2002).unwrap()).await.unwrap();
        let all_there = platform.bot_api.delivered_to(1001).len() == 3
            && platform.bot_api.delivered_to(1003).len() == 1
            && platform.bot_api.calls_to(1004).iter().any(|c| c.status == 200);
        if all_there && blocked {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "calls: {:#?}\n{}", platform.bot_api.calls(), platform.worker_log(worker));

    let mut texts = platform.bot_api.delivered_to(1001);
    texts.sort();
    assert_eq!(texts, ["hello 1", "hello 2", "hello 3"], "each delivered once");
    let page = platform.bot_api.calls_to(1003).into_iter().find(|c| c.status == 200).unwrap();
    assert_eq!(page.body["reply_markup"], keyboard);
    let sent_invoice = platform.bot_api.calls_to(1004).into_iter().find(|c| c.status == 200).unwrap();
    assert!(sent_invoice.method.eq_ignore_ascii_case("sendinvoice"), "{sent_invoice:?}");
    assert_eq!(sent_invoice.body["currency"], "XTR");
    assert_eq!(sent_invoice.body["payload"], "deposit:1004:77");
    assert_eq!(sent_invoice.body["prices"][0]["amount"], 250);
    let statuses: Vec<u16> = platform.bot_api.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");
    let to_blocked: Vec<u16> = platform.bot_api.calls_to(2002).iter().map(|c| c.status).collect();
    assert_eq!(to_blocked.last(), Some(&403), "{to_blocked:?}");
    assert_eq!(to_blocked.iter().filter(|s| **s == 403).count(), 1, "a blocked user is not retried: {to_blocked:?}");

    let stats = Platform::settled(&platform.outbound_queue).await;
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0), "the 429 postponed a job without using its only attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_user_once_and_a_cancelled_one_nobody() {
    let mut platform = Platform::start().await;
    for id in 3001..=3025 {
        platform.users.register(UserId::new(id).unwrap(), Default::default()).await.unwrap();
    }
    for blocked in [3005, 3010] {
        platform.users.mark_blocked(UserId::new(blocked).unwrap()).await.unwrap();
    }
    // Issue 15: banned users get no broadcast either.
    platform.users.set_banned(UserId::new(3015).unwrap(), true).await.unwrap();
    let everyone = BroadcastMessage::to_everyone("Hello everyone");
    platform.broadcasts.start("bc-1", &everyone).await.unwrap();
    platform.broadcasts.start("bc-1", &everyone).await.unwrap();
    platform.broadcasts.start("bc-2", &BroadcastMessage::to_everyone("Never sent")).await.unwrap();
    platform.broadcasts.cancel("bc-2").await.unwrap();
    let worker = platform.spawn_worker();

    let mut progress = None;
    for _ in 0..300 {
        let broadcast = platform.broadcasts.get("bc-1").await.unwrap();
        if broadcast.status == obentchi_core::broadcasts::BroadcastStatus::Done && broadcast.sent == 22 {
            progress = Some(broadcast);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let broadcast = progress.unwrap_or_else(|| panic!("{:?}\n{}", platform.bot_api.calls(), platform.worker_log(worker)));
    assert_eq!(broadcast.enqueued, 22, "25 users, 2 of whom blocked the bot and 1 banned");
    for id in 3001..=3025 {
        let expected: &[&str] = if [3005, 3010, 3015].contains(&id) { &[] } else { &["Hello everyone"] };
        assert_eq!(platform.bot_api.delivered_to(id), expected, "user {id}");
    }
    let cancelled = platform.broadcasts.get("bc-2").await.unwrap();
    assert_eq!((cancelled.status, cancelled.enqueued), (obentchi_core::broadcasts::BroadcastStatus::Cancelled, 0));
    assert!(platform.bot_api.calls().iter().all(|c| c.body["text"] != "Never sent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chats_replies_arrive_in_order_through_flood_waits_and_a_429_and_other_chats_are_not_held_back() {
    use obentchi_core::outbound::ReplyOrder;
    const CHAT: i64 = 5005;
    const OTHER: i64 = 6006;
    let mut platform = Platform::start().await;
    // What the bot does for each reply: register its place, then enqueue it. Ten replies to one
    // chat, produced faster than its limit of one per second, then one to another chat.
    let order = ReplyOrder::new(platform.outbound_queue.redis().clone(), "123456");
    let produce = async |chat: i64, update: u32, text: String| {
        let place = ReplyOrder::place(update);
        order.register(&[(chat, place.as_str())], apalis_redis_streams::now_ms()).await.unwrap();
        let reply = OutboundMessage { order: Some(place), ..message(chat, &text) };
        platform.outbound_queue.enqueue(&reply, Some(&format!("reply-{update}"))).await.unwrap();
    };
    for i in 1..=10 {
        produce(CHAT, 1_000 + i, format!("reply {i}")).await;
    }
    produce(OTHER, 2_000, "other chat".into()).await;
    let worker = platform.spawn_worker();

    let delivered = async |count: usize| {
        for _ in 0..600 {
            if platform.bot_api.delivered_to(CHAT).len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{count} replies not delivered: {:#?}\n{}", platform.bot_api.calls(), platform.worker_log(worker));
    };
    delivered(4).await;
    // Telegram answers the next call with 429 retry_after 1.
    platform.bot_api.rate_limit_next(1, 1);
    delivered(10).await;

    let expected: Vec<String> = (1..=10).map(|i| format!("reply {i}")).collect();
    assert_eq!(platform.bot_api.delivered_to(CHAT), expected, "in the order produced");
    let calls = platform.bot_api.calls();
    assert!(calls.iter().any(|c| c.status == 429), "the 429 happened");
    let position = |text: &str| calls.iter().position(|c| c.status == 200 && c.body["text"] == text).unwrap();
    assert!(position("other chat") < position("reply 3"), "the other chat waited only for its own limit");
    let stats = Platform::settled(&platform.outbound_queue).await;
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
}
