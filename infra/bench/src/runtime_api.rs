//! A minimal Lambda Runtime API (the HTTP interface a function's runtime
//! polls): it hands out one invocation and records when, and with what, the
//! function answers. One emulator per cold start, so the long poll a killed
//! process left behind can never take the next run's event.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use tokio::sync::oneshot;

pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bench";

/// What the function sent back. `polled` is when it first asked for work:
/// the end of its init phase.
pub enum Answer {
    Response {
        polled: Instant,
        at: Instant,
        body: Bytes,
    },
    Error(String),
}

struct Shared {
    /// The one invocation to hand out: (request id, event).
    event: Mutex<Option<(String, String)>>,
    polled: Mutex<Option<Instant>>,
    /// The invocation's time limit, as Lambda's deadline header gives it.
    limit: Duration,
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
}

impl Shared {
    fn reply(&self, a: Answer) {
        if let Some(tx) = self.answer.lock().unwrap().take() {
            let _ = tx.send(a);
        }
    }
}

pub struct Emulator {
    pub addr: SocketAddr,
    answer: oneshot::Receiver<Answer>,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Serves on a free 127.0.0.1 port, with `event` as its one invocation.
    pub async fn start(event: String) -> Self {
        Self::with_limit(event, Duration::from_secs(30)).await
    }

    /// As [`Emulator::start`], with the invocation's time limit.
    pub async fn with_limit(event: String, limit: Duration) -> Self {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            event: Mutex::new(Some((uuid::Uuid::new_v4().to_string(), event))),
            polled: Mutex::new(None),
            limit,
            answer: Mutex::new(Some(tx)),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            answer: rx,
            server,
        }
    }

    /// Waits for the function's answer to the invocation.
    pub async fn answer(&mut self) -> Option<Answer> {
        (&mut self.answer).await.ok()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The invocation on the first poll; later polls wait forever, as they do
/// on Lambda between invocations.
async fn next(State(s): State<Arc<Shared>>) -> Response {
    s.polled.lock().unwrap().get_or_insert_with(Instant::now);
    let Some((id, event)) = s.event.lock().unwrap().take() else {
        return std::future::pending().await;
    };
    let deadline = SystemTime::now() + s.limit;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    (
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into()),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            ),
            ("content-type", "application/json".into()),
        ],
        event,
    )
        .into_response()
}

async fn response(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let polled = s.polled.lock().unwrap().unwrap_or(at);
    s.reply(Answer::Response { polled, at, body });
    StatusCode::ACCEPTED
}

async fn error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    s.reply(Answer::Error(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
