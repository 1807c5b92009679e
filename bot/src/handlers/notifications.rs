//! `/notifications`: what the bot may send unasked (broadcasts, subscription reminders), each
//! turned on or off with a button.

use obentchi_core::i18n::{tr, Lang, Text};
use obentchi_core::outbound::OutboundMessage;
use obentchi_core::users::{Notification, Profile};

use super::{button, with_keyboard, Caller, Deps, HandlerResult, UpdateId};

pub(super) async fn show(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    deps.send(update, settings(caller.lang, &caller.profile, chat)).await
}

/// A button was pressed: `notif:<name>:<on|off>` sets that value (a double tap sets it twice,
/// which changes nothing), then shows the settings again.
pub(super) async fn set(deps: &Deps, caller: &Caller, chat: i64, notification: Notification, on: bool, update: UpdateId) -> HandlerResult {
    deps.users.set_notification(caller.id, notification, on).await?;
    let profile = deps.stored_profile(caller.id).await?;
    deps.send(update, settings(caller.lang, &profile, chat)).await
}

fn state(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The settings and a button per notification that flips it.
fn settings(lang: Lang, profile: &Profile, chat: i64) -> OutboundMessage {
    let on = |n: Notification| n.is_on_for(profile);
    let text = tr(
        lang,
        Text::Notifications,
        &[("broadcasts", &state(on(Notification::Broadcasts))), ("reminders", &state(on(Notification::Reminders)))],
    );
    let rows = Notification::ALL
        .iter()
        .map(|n| {
            let label = tr(lang, Text::NotificationButton, &[("kind", &n.name()), ("state", &state(on(*n)))]);
            vec![button(label, format!("notif:{}:{}", n.name(), state(!on(*n))))]
        })
        .collect();
    with_keyboard(chat, text, rows)
}
