use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use obentchi_core::ids::UserId;
use obentchi_core::ledger::PostingRecord;
use obentchi_core::money::Money;
use obentchi_core::users::{UserFilter, UserSummary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{audit, next_cursor, page_size, user_id};
use crate::auth::{Reader, Writer};
use crate::error::{ApiError, ErrorBody, Path, Query};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub user_id: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub banned: bool,
    pub blocked_bot: bool,
    pub referrer_id: Option<i64>,
    pub referrals: i64,
    pub created_at: Option<DateTime<Utc>>,
}

impl From<UserSummary> for UserView {
    fn from(u: UserSummary) -> UserView {
        UserView {
            user_id: u.user_id.get(),
            username: u.username,
            first_name: u.first_name,
            last_name: u.last_name,
            banned: u.banned,
            blocked_bot: u.blocked_bot,
            referrer_id: u.referrer.map(UserId::get),
            referrals: u.referrals,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
pub struct UserQuery {
    /// A user id, or the start of a @username.
    pub q: Option<String>,
    /// The last user id of the previous page.
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

/// List or search users, in id order.
#[utoipa::path(get, path = "/admin/users", params(UserQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(_: Reader, State(state): State<AppState>, Query(query): Query<UserQuery>) -> Result<Json<UserPage>, ApiError> {
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let filter = match q {
        None => UserFilter::All,
        Some(q) => match q.parse::<i64>() {
            Ok(id) => UserFilter::Id(user_id(id)?),
            Err(_) => UserFilter::UsernamePrefix(q.trim_start_matches('@')),
        },
    };
    let after = query.after.map(user_id).transpose()?;
    let limit = page_size(query.limit);
    let users: Vec<UserView> = state.users.search(filter, after, limit).await?.into_iter().map(UserView::from).collect();
    let next_after = next_cursor(&users, limit, |u| u.user_id);
    Ok(Json(UserPage { users, next_after }))
}

#[derive(Serialize, ToSchema)]
pub struct BalanceView {
    /// `user:available` or `user:withdrawal_hold`.
    pub account: String,
    pub amount: Money,
}

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub account: String,
    pub amount: Money,
}

#[derive(Serialize, ToSchema)]
pub struct PostingView {
    pub user_id: i64,
    pub key: String,
    /// `deposit`, `subscription_purchase`, `referral_commission`, `withdrawal_hold`, …
    pub kind: String,
    pub reason: String,
    pub entries: Vec<EntryView>,
    pub created_at: DateTime<Utc>,
}

impl From<PostingRecord> for PostingView {
    fn from(p: PostingRecord) -> PostingView {
        let kind = serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        PostingView {
            user_id: p.user_id.get(),
            key: p.key,
            kind,
            reason: p.reason,
            entries: p.entries.into_iter().map(|e| EntryView { account: e.account.to_string(), amount: e.amount }).collect(),
            created_at: p.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    pub user: UserView,
    pub balances: Vec<BalanceView>,
    /// When the user's subscription ends (or ended), if they ever had one.
    pub subscription_until: Option<DateTime<Utc>>,
    /// Newest first, `offset`/`limit` paged.
    pub postings: Vec<PostingView>,
}

#[derive(Deserialize, IntoParams)]
pub struct DetailQuery {
    pub offset: Option<u64>,
    pub limit: Option<u32>,
}

/// A user with balances, subscription and ledger entries.
#[utoipa::path(get, path = "/admin/users/{id}", params(("id" = i64, Path), DetailQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)))]
pub async fn detail(
    _: Reader,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<DetailQuery>,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(id)?;
    let user = state.users.summary(id).await?.ok_or_else(|| ApiError::NotFound(format!("user {id}")))?;
    let limit = page_size(query.limit).min(100);
    let (balances, until, postings) = tokio::try_join!(
        async { Ok::<_, ApiError>(state.ledger.balances(id).await?) },
        async { Ok(state.subscriptions.active_until(id).await?) },
        async { Ok(state.ledger.history(id, query.offset.unwrap_or(0), limit).await?) },
    )?;
    Ok(Json(UserDetail {
        user: user.into(),
        balances: balances
            .into_iter()
            .map(|b| BalanceView { account: b.account.code().to_owned(), amount: b.amount })
            .collect(),
        subscription_until: until,
        postings: postings.into_iter().map(PostingView::from).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct BanState {
    pub user_id: i64,
    pub banned: bool,
}

async fn set_banned(state: AppState, writer: Writer, id: i64, banned: bool) -> Result<Json<BanState>, ApiError> {
    let id = user_id(id)?;
    state.users.summary(id).await?.ok_or_else(|| ApiError::NotFound(format!("user {id}")))?;
    state.users.set_banned(id, banned).await?;
    let action = if banned { "user.ban" } else { "user.unban" };
    audit(&state, &writer.0, action, &id.to_string(), if banned { "banned" } else { "unbanned" }).await;
    Ok(Json(BanState { user_id: id.get(), banned }))
}

/// Ban a user: the bot answers them with a refusal and nothing else. Idempotent.
#[utoipa::path(post, path = "/admin/users/{id}/ban", params(("id" = i64, Path)), security(("bearer" = ["write"])),
    responses((status = 200, body = BanState), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ban(writer: Writer, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<BanState>, ApiError> {
    set_banned(state, writer, id, true).await
}

/// Lift a ban. Idempotent.
#[utoipa::path(post, path = "/admin/users/{id}/unban", params(("id" = i64, Path)), security(("bearer" = ["write"])),
    responses((status = 200, body = BanState), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unban(writer: Writer, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<BanState>, ApiError> {
    set_banned(state, writer, id, false).await
}
