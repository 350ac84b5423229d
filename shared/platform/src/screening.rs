//! The HTTP screening provider: a background-check service behind the
//! `ScreeningProvider` port, and the signature both directions use.
//!
//! Request: `POST <url>` with JSON `{check_id, property, subject: {email,
//! first_name, last_name, birth_date, document_number}, callback_path}`,
//! signed: `X-GuestHub-Timestamp: <unix seconds>` and
//! `X-GuestHub-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! Answer: `200 {"status": "passed"|"flagged"|"error", "reason"?}` (decided
//! now) or `202` / `{"status": "pending"}` (the outcome comes later, by a
//! callback to `callback_path` signed the same way). 429, 5xx, timeouts
//! and network errors are retried with backoff and jitter; after the last
//! attempt the check is `error`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::guest::ScreeningStatus;
use domain::guest::screening::{
    ScreeningError, ScreeningOutcome, ScreeningProvider, ScreeningSubject,
};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;

/// The headers of a signed request.
pub const TIMESTAMP_HEADER: &str = "x-guesthub-timestamp";
pub const SIGNATURE_HEADER: &str = "x-guesthub-signature";
/// How far a signed request's timestamp may be from now.
pub const TOLERANCE: chrono::Duration = chrono::Duration::seconds(300);

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<sha2_hmac::Sha256> {
    let mut m = <Hmac<sha2_hmac::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// `sha256=<hex>` over `"<timestamp>.<body>"`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature or timestamp header is missing")]
    Missing,
    #[error("the timestamp is too far from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks a signed request (constant-time comparison).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let at = ts
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .ok_or(SignatureError::Missing)?;
    if (now - at).abs() > TOLERANCE {
        return Err(SignatureError::Stale);
    }
    let given = sig
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    mac(secret, ts.trim(), body)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// A provider's decided answer (or `pending`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Echoed in callbacks: the check the answer is for.
    #[serde(default)]
    pub check_id: Option<String>,
}

impl Verdict {
    /// The outcome; `InProgress` for `pending`. Reasons are kept short and
    /// on one line (they are written back to Cloudbeds).
    pub fn outcome(&self) -> Option<ScreeningOutcome> {
        let status = match self.status.as_str() {
            "passed" => ScreeningStatus::Passed,
            "flagged" => ScreeningStatus::Flagged,
            "error" => ScreeningStatus::Error,
            "pending" => ScreeningStatus::InProgress,
            _ => return None,
        };
        let reason = self
            .reason
            .as_deref()
            .map(|r| {
                r.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|r| !r.trim().is_empty());
        Some(ScreeningOutcome { status, reason })
    }
}

/// The HTTP provider of one connection.
pub struct HttpScreening {
    pub url: String,
    pub secret: String,
    pub property: String,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    http: reqwest::Client,
}

impl HttpScreening {
    pub fn new(url: &str, secret: String, property: &str) -> Result<Self, ScreeningError> {
        let timeout = Duration::from_secs(10);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ScreeningError::Unavailable(format!("http client: {e}")))?;
        Ok(Self {
            url: url.to_owned(),
            secret,
            property: property.to_owned(),
            timeout,
            max_attempts: 4,
            backoff_base: Duration::from_millis(500),
            http,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(1u32 << attempt.min(10));
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Where a provider answers a check later.
pub fn callback_path(property: &str, check_id: &str) -> String {
    format!("/v1/screening-callbacks/{property}/{check_id}")
}

#[async_trait]
impl ScreeningProvider for HttpScreening {
    async fn screen(
        &self,
        check_id: &str,
        s: &ScreeningSubject,
    ) -> Result<ScreeningOutcome, ScreeningError> {
        let body = json!({
            "check_id": check_id,
            "property": self.property,
            "subject": {
                "email": s.email.as_ref().map(|e| e.as_str()),
                "first_name": s.first_name,
                "last_name": s.last_name,
                "birth_date": s.birth_date.map(|d| d.to_string()),
                "document_number": s.document_number,
            },
            "callback_path": callback_path(&self.property, check_id),
        })
        .to_string();
        let mut last = String::new();
        for attempt in 0..self.max_attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            // Signed per attempt: a retry carries a fresh timestamp.
            let ts = Utc::now().timestamp().to_string();
            let sent = self
                .http
                .post(&self.url)
                .timeout(self.timeout)
                .header("content-type", "application/json")
                .header(TIMESTAMP_HEADER, &ts)
                .header(SIGNATURE_HEADER, sign(&self.secret, &ts, body.as_bytes()))
                .body(body.clone())
                .send()
                .await;
            let r = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = if e.is_timeout() {
                        "timeout".into()
                    } else {
                        "network error".into()
                    };
                    continue;
                }
            };
            let status = r.status();
            if status.as_u16() == 429 || status.is_server_error() {
                last = format!("HTTP {}", status.as_u16());
                continue;
            }
            if status.as_u16() == 202 {
                return Ok(ScreeningOutcome {
                    status: ScreeningStatus::InProgress,
                    reason: None,
                });
            }
            if !status.is_success() {
                return Err(ScreeningError::Unavailable(format!(
                    "the provider refused the check: HTTP {}",
                    status.as_u16()
                )));
            }
            let text = match r.text().await {
                Ok(t) => t,
                Err(_) => {
                    last = "answer cut short".into();
                    continue;
                }
            };
            return serde_json::from_str::<Verdict>(&text)
                .ok()
                .and_then(|v| v.outcome())
                .ok_or_else(|| {
                    ScreeningError::Unavailable("the provider answered an unexpected shape".into())
                });
        }
        Err(ScreeningError::Unavailable(format!(
            "no answer after {} attempts: {last}",
            self.max_attempts.max(1)
        )))
    }
}
