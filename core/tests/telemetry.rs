//! Every log line a request causes carries the request's id.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use obentchi_core::config::LogFormat;
use obentchi_core::telemetry::{self, format_layer, REQUEST_ID_HEADER};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn handler() -> &'static str {
    tracing::info!("looking things up");
    async { tracing::warn!("something odd") }.await;
    "done"
}

#[tokio::test]
async fn request_and_job_ids_appear_in_every_log_line() {
    let buffer = Buffer::default();
    let subscriber = Registry::default().with(format_layer(LogFormat::Json, buffer.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = telemetry::with_request_ids(Router::new().route("/work", get(handler)));

    let given = app
        .clone()
        .oneshot(Request::get("/work").header(REQUEST_ID_HEADER, "req-from-nginx").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(given.headers()[REQUEST_ID_HEADER], "req-from-nginx");
    let generated = app.oneshot(Request::get("/work").body(Body::empty()).unwrap()).await.unwrap();
    let generated_id = generated.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
    assert_eq!(generated_id.len(), 36, "a UUID: {generated_id}");

    apalis_redis_streams::job_span("payments", "job-42").in_scope(|| tracing::info!("crediting"));

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Every line logged inside a request span (the handler's and the trace layer's) names it.
    let in_requests: Vec<_> = lines.iter().filter(|l| l["span"]["name"] == "request").collect();
    assert!(in_requests.len() >= 4, "{text}");
    for line in &in_requests {
        let id = line["span"]["request_id"].as_str().unwrap_or_default();
        assert!(id == "req-from-nginx" || id == generated_id, "line without its request id: {line}");
    }
    for id in ["req-from-nginx", generated_id.as_str()] {
        for message in ["looking things up", "something odd"] {
            assert!(
                in_requests.iter().any(|l| l["message"] == message && l["span"]["request_id"] == id),
                "{message} for {id}: {text}"
            );
        }
    }
    let job_line = lines.iter().find(|l| l["message"] == "crediting").expect("job line");
    assert_eq!(job_line["span"]["job_id"], "job-42", "{job_line}");
}
