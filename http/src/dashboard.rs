//! The queue dashboard for ops: `/admin/dashboard` is a static page (no data, no auth) whose
//! script takes the token from the URL fragment (never sent to the server) or asks for it, and
//! loads `/admin/dashboard/panel` with it as a bearer token: charts of each queue's throughput
//! (done and failed per minute), depth and oldest age over the last hour (SVG drawn on the
//! server with plotters), each worker pool's concurrency and scaling decisions, and dead letters
//! (payload preview and error, filtered in the page) with retry and discard buttons (which call
//! the admin API, so they need `write`).

use apalis_redis_streams::now_ms;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use plotters::prelude::*;

use obentchi_core::pools::{PoolInstance, PoolView, ScaleDecision};

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

/// One line of a chart: its points (minutes before now, value) and colour.
struct Series {
    label: &'static str,
    color: RGBColor,
    points: Vec<(i64, u64)>,
}

/// A line chart of `series` over the last hour (x: minutes ago).
fn chart(title: &str, series: &[Series]) -> String {
    let mut svg = String::new();
    let top = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).max().unwrap_or(0).max(1) * 11 / 10 + 1;
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
            for line in series {
                let color = line.color;
                chart
                    .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
                    .label(line.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
            }
            if series.len() > 1 {
                chart.configure_series_labels().border_style(BLACK).background_style(WHITE).label_font(("sans-serif", 11)).draw()?;
            }
            root.present()?;
            Ok(())
        })();
        if let Err(err) = drawn {
            tracing::warn!(%err, title, "chart not drawn");
        }
    }
    svg
}

fn minutes_ago(at_ms: u64, now_ms: u64) -> i64 {
    (at_ms as i64 - now_ms as i64) / 60_000
}

/// One value per sample.
fn sampled(samples: &[Sample], now_ms: u64, value: impl Fn(&Sample) -> u64) -> Vec<(i64, u64)> {
    samples.iter().map(|s| (minutes_ago(s.at_ms, now_ms), value(s))).collect()
}

/// A running total's rate per minute between consecutive samples; a total that fell (Redis
/// lost it in a failover) counts as restarted from zero.
fn per_minute(samples: &[Sample], now_ms: u64, total: impl Fn(&Sample) -> u64) -> Vec<(i64, u64)> {
    samples
        .windows(2)
        .filter(|pair| pair[1].at_ms > pair[0].at_ms)
        .map(|pair| {
            let (before, after) = (total(&pair[0]), total(&pair[1]));
            let done = if after >= before { after - before } else { after };
            (minutes_ago(pair[1].at_ms, now_ms), done * 60_000 / (pair[1].at_ms - pair[0].at_ms))
        })
        .collect()
}

/// The pool's total concurrency over the last hour, rebuilt from its live workers' scaling
/// decisions (newest first) and their concurrency now, as a step line.
fn concurrency_steps(pool: &PoolView, now_ms: u64) -> Vec<(i64, u64)> {
    let since = now_ms.saturating_sub(WINDOW_MS);
    let mut times: Vec<u64> = pool.recent_decisions.iter().map(|d| d.at_ms).filter(|t| *t >= since).collect();
    times.extend([since, now_ms]);
    times.sort_unstable();
    times.dedup();
    let value_at = |instance: &PoolInstance, t: u64| -> u64 {
        let mut own = pool.recent_decisions.iter().filter(|d| d.worker == instance.worker);
        let value = match own.clone().find(|d| d.at_ms <= t) {
            Some(decision) => decision.to,
            // Before its oldest decision kept, the worker ran at that decision's `from`.
            None => own.next_back().map_or(instance.concurrency, |oldest| oldest.from),
        };
        value as u64
    };
    let mut points: Vec<(i64, u64)> = Vec::new();
    for t in times {
        let value = pool.instances.iter().map(|i| value_at(i, t)).sum();
        if let Some(&(_, previous)) = points.last() {
            points.push((minutes_ago(t, now_ms), previous));
        }
        points.push((minutes_ago(t, now_ms), value));
    }
    points
}

/// The dashboard's content (an HTML fragment): queues, their throughput, depth and age over the
/// last hour, the worker pools' concurrency and scaling decisions, and dead letters.
#[utoipa::path(get, path = "/admin/dashboard/panel", security(("bearer" = ["read"])),
    responses((status = 200, description = "HTML fragment", content_type = "text/html"), (status = 401, body = ErrorBody)))]
pub async fn panel(_: Reader, State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let queues = queue_views(&state).await?;
    let pools = state.pools.view(now).await?;
    let mut html = String::new();

    html.push_str("<h2>Queues</h2><table id=\"queues\"><tr><th>queue</th><th>depth</th><th>in flight</th><th>delayed</th><th>dead</th><th>oldest age (s)</th><th>done</th><th>failed attempts</th></tr>");
    for q in queues.iter() {
        let _ = write!(
            html,
            "<tr data-queue=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td class=\"dead\">{4}</td><td>{5}</td><td>{6}</td><td>{7}</td></tr>",
            escape(&q.name), q.stats.depth, q.stats.in_flight, q.stats.delayed, q.stats.dead, q.stats.oldest_age_ms / 1000,
            q.stats.done_total, q.stats.failed_total
        );
    }
    html.push_str("</table><h2>Last hour</h2><div class=\"charts\">");
    for q in queues.iter() {
        let samples = state.history.read(&q.name, now).await?;
        let throughput = [
            Series { label: "done", color: BLUE, points: per_minute(&samples, now, |s| s.done_total) },
            Series { label: "failed", color: RED, points: per_minute(&samples, now, |s| s.failed_total) },
        ];
        let _ = write!(html, "<div class=\"chart\" data-queue=\"{}\">", escape(&q.name));
        html.push_str(&chart(&format!("{}: jobs per minute", q.name), &throughput));
        html.push_str(&chart(&format!("{}: depth", q.name), &[Series { label: "depth", color: BLUE, points: sampled(&samples, now, |s| s.depth) }]));
        let age = sampled(&samples, now, |s| s.oldest_age_ms / 1000);
        html.push_str(&chart(&format!("{}: oldest age (s)", q.name), &[Series { label: "age", color: BLUE, points: age }]));
        html.push_str("</div>");
    }
    html.push_str("</div><h2>Worker pools</h2><table id=\"pools\"><tr><th>pool</th><th>concurrency</th><th>instances</th><th>last decision</th></tr>");
    for p in &pools {
        let last = p.recent_decisions.first().map_or(String::from("none"), |d| format!("{} → {} ({})", d.from, d.to, d.reason));
        let _ = write!(html, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", escape(&p.pool), p.concurrency, p.instances.len(), escape(&last));
    }
    html.push_str("</table><div class=\"charts\" id=\"pool-charts\">");
    for p in &pools {
        let steps = [Series { label: "concurrency", color: BLUE, points: concurrency_steps(p, now) }];
        html.push_str(&chart(&format!("{}: concurrency", p.pool), &steps));
    }
    html.push_str("</div><h3>Scaling decisions</h3><table id=\"decisions\"><tr><th>when</th><th>pool</th><th>worker</th><th>from → to</th><th>ready</th><th>in flight</th><th>why</th></tr>");
    let mut decisions: Vec<(&str, &ScaleDecision)> = pools.iter().flat_map(|p| p.recent_decisions.iter().map(|d| (p.pool.as_str(), d))).collect();
    decisions.sort_by_key(|(_, d)| std::cmp::Reverse(d.at_ms));
    for (pool, d) in decisions.iter().take(20) {
        let when = chrono::DateTime::from_timestamp_millis(d.at_ms as i64).map_or_else(String::new, |t| t.format("%H:%M:%S").to_string());
        let _ = write!(
            html,
            "<tr><td>{when}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(pool), escape(&d.worker), d.from, d.to, d.ready, d.in_flight, escape(&d.reason)
        );
    }
    html.push_str("</table><h2>Dead letters</h2><p><label>Filter <input id=\"dead-filter\" type=\"search\" placeholder=\"queue, error or job text\"></label></p>");
    html.push_str("<table id=\"dead-letters\"><tr><th>queue</th><th>died</th><th>error</th><th>job</th><th></th></tr>");
    for q in queues.iter().filter(|q| q.stats.dead > 0) {
        let queue = crate::admin::queues::queue(&state, &q.name)?;
        for letter in queue.dead_letters(20).await? {
            let died = chrono::DateTime::from_timestamp_millis(letter.died_at_ms as i64).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
            let _ = write!(
                html,
                "<tr class=\"dead-letter\"><td>{0}</td><td>{1}</td><td>{2}</td><td><code>{3}</code></td><td>\
                 <button class=\"retry\" data-queue=\"{0}\" data-id=\"{4}\">retry</button> \
                 <button class=\"discard\" data-queue=\"{0}\" data-id=\"{4}\">discard</button></td></tr>",
                escape(&q.name), died, escape(&letter.error), escape(&letter.payload_preview(160)), escape(&letter.id)
            );
        }
    }
    html.push_str("</table>");
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html))
}
