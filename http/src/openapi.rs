//! The OpenAPI document of every endpoint (`/openapi.json`) and Swagger UI (`/admin/docs`,
//! assets vendored into the binary: nothing is fetched at build or run time).

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::{admin, callbacks, dashboard, error};

#[derive(OpenApi)]
#[openapi(
    info(title = "OBENTCHI admin API", description = "Admin and ops API. Bearer tokens with `read`, `write` or `money` scope (`obentchi-http token create`)."),
    paths(
        admin::users::list, admin::users::detail, admin::users::ban, admin::users::unban,
        admin::withdrawals::list, admin::withdrawals::stuck, admin::withdrawals::approve, admin::withdrawals::reject, admin::withdrawals::retry,
        admin::broadcasts::create, admin::broadcasts::progress, admin::broadcasts::cancel,
        admin::queues::overview, admin::queues::dead_letters, admin::queues::retry_dead_letter, admin::queues::discard_dead_letter,
        admin::stats::figures, admin::stats::top_referrers, admin::postings::list, admin::audit_log::list,
        admin::money::refund_stars, admin::money::adjust, admin::money::approve,
        admin::support::list, admin::support::detail, admin::support::answer, admin::support::close,
        admin::settings::current, admin::settings::replace,
        callbacks::callback,
        callbacks::crypto_pay_webhook,
        dashboard::panel,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub fn router() -> Router {
    SwaggerUi::new("/admin/docs").url("/openapi.json", ApiDoc::openapi()).into()
}
