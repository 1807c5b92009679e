//! The queue dashboard for ops: `/admin/dashboard` is a static page (no data, no auth) whose
//! script takes the token from the URL fragment (never sent to the server) or asks for it, and
//! loads `/admin/dashboard/panel` with it as a bearer token: charts of each queue's depth and
//! oldest age over the last hour (SVG drawn on the server with plotters), the worker pools, and
//! dead letters with retry buttons (which call the admin API, so they need `write`).

use apalis_redis_streams::now_ms;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use plotters::prelude::*;

use crate::admin::queues::queue_views;
use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody};
use crate::history::{Sample, WINDOW_MS};
use crate::limits::{enforce, Class, Limiters};
use crate::AppState;

const PAGE: &str = include_str!("dashboard.html");
const SCRIPT: &str = include_str!("dashboard.js");
/// Scripts and styles only from here; the charts are inline SVG.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

pub fn router(limits: &Limiters) -> Router<AppState> {
    let page = || [(header::CONTENT_SECURITY_POLICY, PAGE_CSP)];
    Router::new()
        .route("/admin/dashboard", get(move || async move { (page(), Html(PAGE)) }))
        .route(
            "/admin/dashboard.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
        .route("/admin/dashboard/panel", get(panel))
        .route_layer(from_fn_with_state(limits.limiter(Class::Read), enforce))
}

fn escape(text: &str) -> String {
    text.chars().fold(String::with_capacity(text.len()), |mut out, c| {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
        out
    })
}

/// One line chart: `values` against minutes before now, over the last hour.
fn chart(title: &str, samples: &[Sample], now_ms: u64, value: impl Fn(&Sample) -> u64) -> String {
    let mut svg = String::new();
    let points: Vec<(i64, u64)> =
        samples.iter().map(|s| ((s.at_ms as i64 - now_ms as i64) / 60_000, value(s))).collect();
    let top = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) * 11 / 10 + 1;
    {
        let root = SVGBackend::with_string(&mut svg, (420, 180)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(48)
                .build_cartesian_2d(-(WINDOW_MS as i64 / 60_000)..0i64, 0..top)?;
            chart.configure_mesh().x_desc("minutes ago").light_line_style(WHITE).label_style(("sans-serif", 11)).draw()?;
            chart.draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)))?;
            root.present()?;
            Ok(())
        })();
        if let Err(err) = drawn {
            tracing::warn!(%err, title, "chart not drawn");
        }
    }
    svg
}

/// The dashboard's content (an HTML fragment): charts, queues, pools, dead letters.
#[utoipa::path(get, path = "/admin/dashboard/panel", security(("bearer" = ["read"])),
    responses((status = 200, description = "HTML fragment", content_type = "text/html"), (status = 401, body = ErrorBody)))]
pub async fn panel(_: Reader, State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let queues = queue_views(&state).await?;
    let pools = state.pools.view(now).await?;
    let mut html = String::new();

    html.push_str("<h2>Queues</h2><table id=\"queues\"><tr><th>queue</th><th>depth</th><th>in flight</th><th>delayed</th><th>dead</th><th>oldest age (s)</th></tr>");
    for q in queues.iter() {
        let _ = write!(
            html,
            "<tr data-queue=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td class=\"dead\">{4}</td><td>{5}</td></tr>",
            escape(&q.name), q.stats.depth, q.stats.in_flight, q.stats.delayed, q.stats.dead, q.stats.oldest_age_ms / 1000
        );
    }
    html.push_str("</table><h2>Last hour</h2><div class=\"charts\">");
    for q in queues.iter() {
        let samples = state.history.read(&q.name, now).await?;
        html.push_str("<div class=\"chart\">");
        html.push_str(&chart(&format!("{}: depth", q.name), &samples, now, |s| s.depth));
        html.push_str(&chart(&format!("{}: oldest age (s)", q.name), &samples, now, |s| s.oldest_age_ms / 1000));
        html.push_str("</div>");
    }
    html.push_str("</div><h2>Worker pools</h2><table id=\"pools\"><tr><th>pool</th><th>concurrency</th><th>instances</th><th>last decision</th></tr>");
    for p in &pools {
        let last = p.recent_decisions.first().map_or(String::from("none"), |d| format!("{} → {} ({})", d.from, d.to, d.reason));
        let _ = write!(html, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", escape(&p.pool), p.concurrency, p.instances.len(), escape(&last));
    }
    html.push_str("</table><h2>Dead letters</h2><table id=\"dead-letters\"><tr><th>queue</th><th>job</th><th>error</th><th></th></tr>");
    for q in queues.iter().filter(|q| q.stats.dead > 0) {
        let queue = crate::admin::queues::queue(&state, &q.name)?;
        for letter in queue.dead_letters(20).await? {
            let _ = write!(
                html,
                "<tr><td>{0}</td><td>{1}</td><td>{2}</td><td><button class=\"retry\" data-queue=\"{0}\" data-id=\"{3}\">retry</button></td></tr>",
                escape(&q.name), escape(&letter.job_id), escape(&letter.error), escape(&letter.id)
            );
        }
    }
    html.push_str("</table>");
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html))
}
