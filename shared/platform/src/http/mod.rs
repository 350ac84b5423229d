//! HTTP plumbing shared by every HTTP function: errors, extractors,
//! idempotency and the middleware stack. The same `Router` runs under
//! `lambda_http` and on a local socket.

pub mod caller;
pub mod docs;
pub mod error;
pub mod idempotent;
pub mod json;
pub mod octo;
pub mod query;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use caller::{Caller, RequiredScope, scoped};
pub use error::ApiError;
pub use idempotent::{Idempotent, Outcome};
pub use json::ApiJson;
pub use query::ApiQuery;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `X-Request-Id` kept as sent.
pub const MAX_REQUEST_ID: usize = 64;

/// 404 for routes that do not exist, in the error shape.
pub async fn no_route() -> ApiError {
    ApiError::not_found("route_not_found", "no such route")
}

/// 405 for a route that exists without this method, in the error shape
/// (the `Allow` header still lists the methods it takes).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method; see the Allow header",
    )
}

/// A request id kept as sent: a short token (at most 64 of
/// `[A-Za-z0-9._-]`). Anything else is replaced by a fresh UUID, so what is
/// echoed and logged is never a client's free text.
pub fn is_token_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn drop_bad_request_id(mut req: Request) -> Request {
    let ids = req.headers().get_all(REQUEST_ID);
    let mut ids = ids.iter();
    let keep = match (ids.next(), ids.next()) {
        (Some(one), None) => is_token_request_id(one),
        (None, _) => true,
        _ => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// The path, percent-decoded, as UTF-8; `None` when it is not. A `%` not
/// followed by two hex digits stays as it is (as the router reads it).
fn decoded_path_is_utf8(path: &str) -> bool {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// 400 `invalid_path` for a path whose percent-decoded bytes are not UTF-8:
/// no route or id can match it, so the answer says what is wrong with it
/// rather than "not found".
async fn refuse_non_utf8_paths(req: Request, next: Next) -> Response {
    if decoded_path_is_utf8(req.uri().path()) {
        next.run(req).await
    } else {
        ApiError::bad_request(
            "invalid_path",
            "the path is not valid UTF-8 once percent-decoded",
        )
        .into_response()
    }
}

/// A request body that notes when it has been read to its end, and leaves
/// what is unread behind in `left` when the handler drops it.
struct Tracked {
    inner: Body,
    done: Arc<AtomicBool>,
    left: Arc<std::sync::Mutex<Option<Body>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.done.load(Ordering::Acquire)
            && let Ok(mut left) = self.left.lock()
        {
            *left = Some(std::mem::take(&mut self.inner));
        }
    }
}

/// The most of an unread body the server reads (and drops) after an early
/// answer, and how long it waits for it, to keep the connection.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_WAIT: Duration = Duration::from_millis(50);

/// Reads what is left of a body if it is small and already on its way.
async fn drain(mut body: Body) -> bool {
    use http_body_util::BodyExt;
    let mut read = 0usize;
    let all = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > DRAIN_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_WAIT, all).await.unwrap_or(false)
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// For a server on a socket: an answer sent before the request's body was
/// read to its end (a 401, 403 or 404 from the `Caller` extractor, a 413)
/// reads the rest if it is small and already arriving (at most 64 KiB
/// within 50 ms), so the connection stays usable; otherwise it carries
/// `Connection: close`: the server cannot reuse a connection with an unread
/// body on it, and a client that is told so opens a new one for its next
/// request instead of failing on a closed one.
pub async fn close_if_body_unread(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let done = Arc::new(AtomicBool::new(body.is_end_stream()));
    let left = Arc::new(std::sync::Mutex::new(None));
    let body = Body::new(Tracked {
        inner: body,
        done: done.clone(),
        left: left.clone(),
    });
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    let unread = left.lock().ok().and_then(|mut l| l.take());
    let drained = match unread {
        Some(body) => drain(body).await,
        None => done.load(Ordering::Acquire),
    };
    if !drained {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("handler panicked").into_response()
}

/// Wraps a function's router: request ids (API Gateway's or the client's
/// when token-like, else a new UUID), one span per request carrying the
/// route template (never the raw URI, which holds codes and emails), the
/// body limit, JSON 404/405 answers, 400 for non-UTF-8 paths, and
/// panic → 500.
pub fn serve_layers(router: Router, max_body_bytes: usize) -> Router {
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(refuse_non_utf8_paths))
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
        .layer(MapRequestLayer::new(drop_bad_request_id))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_tokens() {
        let ok = |s: &str| is_token_request_id(&HeaderValue::from_str(s).unwrap());
        assert!(ok("abc-123_X.y"));
        assert!(ok(&"a".repeat(64)));
        assert!(!ok(&"a".repeat(65)));
        assert!(!ok("ana@example.com"));
        assert!(!ok("a b"));
        assert!(!ok(""));
    }

    #[test]
    fn paths_decode_to_utf8_or_not() {
        assert!(decoded_path_is_utf8(
            "/v1/properties/castle/vouchers/%F0%9F%A6%80"
        ));
        assert!(decoded_path_is_utf8("/a/%zz/%"));
        assert!(!decoded_path_is_utf8("/v1/properties/%FF/vouchers"));
        assert!(!decoded_path_is_utf8("/a/%C3%28"));
        assert!(!decoded_path_is_utf8("/a/%E2%82"));
    }
}
