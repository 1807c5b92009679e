//! `/language`: one button per language; the choice is stored on the user.

use obentchi_core::i18n::{tr, Lang, Text};

use super::{button, with_keyboard, Caller, Deps, HandlerResult, UpdateId};

pub(super) async fn choose(deps: &Deps, caller: &Caller, chat: i64, update: UpdateId) -> HandlerResult {
    // Three a row: seven names side by side do not fit a phone's width.
    let rows = Lang::ALL.chunks(3).map(|row| row.iter().map(|l| button(l.name(), format!("lang:{}", l.code()))).collect()).collect();
    deps.send(update, with_keyboard(chat, tr(caller.lang, Text::ChooseLanguage, &[]), rows)).await
}

/// A language button was pressed: stored, and confirmed in the new language.
pub(super) async fn chosen(deps: &Deps, caller: &Caller, chat: i64, chosen: Lang, update: UpdateId) -> HandlerResult {
    deps.users.set_language(caller.id, chosen.code()).await?;
    deps.reply(update, chat, tr(chosen, Text::LanguageChosen, &[])).await
}
