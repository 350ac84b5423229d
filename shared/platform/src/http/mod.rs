//! HTTP plumbing shared by every HTTP function: errors, extractors,
//! idempotency and the middleware stack. The same `Router` runs under
//! `lambda_http` and on a local socket.

pub mod caller;
pub mod error;
pub mod idempotent;
pub mod json;
pub mod query;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use caller::{Caller, RequiredScope, scoped};
pub use error::ApiError;
pub use idempotent::{Idempotent, Outcome};
pub use json::ApiJson;
pub use query::ApiQuery;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// 404 for routes that do not exist, in the error shape.
pub async fn no_route() -> ApiError {
    ApiError::not_found("route_not_found", "no such route")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("handler panicked").into_response()
}

/// Wraps a function's router: request ids (API Gateway's, or a new UUID),
/// one span per request carrying the route template (never the raw URI,
/// which holds codes and emails), the body limit, and panic → 500.
pub fn serve_layers(router: Router, max_body_bytes: usize) -> Router {
    router
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_else(|| "unmatched".into());
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    tracing::info_span!("request", method = %req.method(), route, request_id = id)
                })
                .on_response(|resp: &Response, latency: Duration, _: &tracing::Span| {
                    tracing::info!(
                        status = resp.status().as_u16(),
                        ms = latency.as_millis() as u64,
                        "answered"
                    );
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `GET /health`.
pub async fn health() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"status":"ok"}"#,
    )
}
