//! The Cloudbeds API v1.2 client: the domain's `CrmClient` over HTTPS.
//!
//! Shapes follow Cloudbeds' published OpenAPI (`pms-v1.2`): `x-api-key`
//! header, GET parameters in the query, POST/PUT bodies form-urlencoded
//! (arrays as `name[i][field]`), answers `{"success": bool, "data": ..}`.
//!
//! Every request of one client goes through its property's rate limiter
//! (never more than `rate_per_second` in any second as Cloudbeds counts
//! arrivals, retries included; see [`RateLimiter`]) and,
//! when it may be retried, through exponential backoff with jitter on 429,
//! 5xx, timeouts and connection errors. Non-idempotent calls (posting a
//! note or a custom field) are retried only when the request provably did
//! not run (429, connection refused); otherwise the caller gets
//! `CrmError::Ambiguous` and re-reads before trying again. The API key is
//! never logged: its `Debug` is masked and its header marked sensitive.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::guest::ports::{
    CrmClient, CrmError, DateKind, FilteredGuest, GuestFilter, GuestPage, GuestUpdate,
    RemoteCustomField, RemoteGuest, RemoteNote, RemoteReservation, RemoteRevenue, ReservationDates,
    ReservationGuest, ReservationPage,
};
use domain::guest::{Address, CrmConnection, Document};
use http::{HeaderValue, Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// An API key: never printed.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[derive(Debug, Clone)]
pub struct CloudbedsConfig {
    /// `https://api.cloudbeds.com/api/v1.2` (no trailing method).
    pub base_url: String,
    /// Cloudbeds' `propertyID`.
    pub property_id: String,
    pub api_key: ApiKey,
    /// Cloudbeds allows 5 requests/s per property; exceeding it risks
    /// suspension. Tests raise it to run fast.
    pub rate_per_second: f64,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    /// When cancelled, a call in progress (waiting for its turn, its
    /// backoff or its answer) ends as `Unavailable` at once.
    pub stop: Option<crate::jobs::Stop>,
}

impl CloudbedsConfig {
    pub fn new(base_url: &str, property_id: &str, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            property_id: property_id.to_owned(),
            api_key,
            rate_per_second: 5.0,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(20),
            timeout: Duration::from_secs(20),
            stop: None,
        }
    }
}

/// Keeps request starts within the limit as the server counts them: at
/// most `rate` starts in any window of one second plus `margin`, and
/// consecutive starts at least `window / rate` apart, each start delayed
/// by a small random jitter. Every attempt goes through it, retries
/// included. The margin absorbs network latency varying between requests:
/// two starts more than `1 s + margin` apart cannot arrive less than one
/// second apart while the latency varies by less than the margin.
#[derive(Debug)]
pub struct RateLimiter {
    per_window: usize,
    window: Duration,
    spacing: Duration,
    jitter: Duration,
    /// The actual start times of the last `per_window` requests.
    starts: Mutex<std::collections::VecDeque<Instant>>,
}

/// How much more or less time one request may take to reach Cloudbeds
/// than another, allowed for by [`RateLimiter`].
pub const LATENCY_MARGIN: Duration = Duration::from_millis(150);
/// The largest random delay added to each request start.
pub const START_JITTER: Duration = Duration::from_millis(20);

impl RateLimiter {
    pub fn per_second(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate >= 1.0 {
            rate
        } else {
            5.0
        };
        let window = Duration::from_secs(1) + LATENCY_MARGIN;
        Self {
            per_window: rate.floor() as usize,
            window,
            spacing: window.div_f64(rate),
            jitter: START_JITTER,
            starts: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Waits for this request's turn and records its start.
    pub async fn acquire(&self) {
        let jitter = self.jitter.mul_f64(rand::random::<f64>());
        tokio::time::sleep(jitter).await;
        loop {
            let at = {
                let mut starts = self.starts.lock().await;
                let now = Instant::now();
                let mut at = now;
                if let Some(last) = starts.back() {
                    at = at.max(*last + self.spacing);
                }
                if starts.len() >= self.per_window
                    && let Some(first) = starts.front()
                {
                    at = at.max(*first + self.window);
                }
                if at <= now {
                    // Recorded when it really starts, not when planned: a
                    // late wake-up never squeezes the next window.
                    starts.push_back(now);
                    while starts.len() > self.per_window {
                        starts.pop_front();
                    }
                    return;
                }
                at
            };
            tokio::time::sleep_until(at).await;
        }
    }
}

/// The process's one limiter per Cloudbeds property (and rate): runs that
/// follow each other closely (a webhook's run after another, after the
/// schedule's) share it, so the limit holds across runs, not only within
/// one.
fn shared_limiter(cfg: &CloudbedsConfig) -> std::sync::Arc<RateLimiter> {
    type Key = (String, String, u64);
    static LIMITERS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<Key, std::sync::Arc<RateLimiter>>>,
    > = std::sync::OnceLock::new();
    let key = (
        cfg.base_url.clone(),
        cfg.property_id.clone(),
        cfg.rate_per_second.to_bits(),
    );
    let mut all = LIMITERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    all.entry(key)
        .or_insert_with(|| std::sync::Arc::new(RateLimiter::per_second(cfg.rate_per_second)))
        .clone()
}

pub struct CloudbedsClient {
    cfg: CloudbedsConfig,
    http: reqwest::Client,
    limiter: std::sync::Arc<RateLimiter>,
}

/// Whether a call may be repeated blindly.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Unsafe,
}

enum Attempt {
    Done(Value),
    Retry(String, Option<Duration>),
    Fail(CrmError),
}

impl CloudbedsClient {
    pub fn new(cfg: CloudbedsConfig) -> Result<Self, CrmError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CrmError::Unavailable(format!("http client: {e}")))?;
        let limiter = shared_limiter(&cfg);
        Ok(Self { cfg, http, limiter })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .cfg
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cfg.backoff_max);
        // "Equal jitter": half fixed, half random, so clients spread out
        // but never retry at once.
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    async fn call(
        &self,
        method: Method,
        name: &str,
        params: Vec<(String, String)>,
        repeat: Repeat,
    ) -> Result<Value, CrmError> {
        let Some(stop) = &self.cfg.stop else {
            return self.call_unstoppable(method, name, params, repeat).await;
        };
        if stop.is_cancelled() {
            return Err(CrmError::Unavailable("stopping".into()));
        }
        // A request dropped in flight is like a timeout: writes that may
        // have run are re-read before they are ever repeated.
        tokio::select! {
            r = self.call_unstoppable(method, name, params, repeat) => r,
            () = stop.cancelled() => Err(CrmError::Unavailable("stopping".into())),
        }
    }

    async fn call_unstoppable(
        &self,
        method: Method,
        name: &str,
        mut params: Vec<(String, String)>,
        repeat: Repeat,
    ) -> Result<Value, CrmError> {
        params.insert(0, ("propertyID".into(), self.cfg.property_id.clone()));
        let url = format!("{}/{name}", self.cfg.base_url);
        let mut last = String::new();
        for attempt in 0..self.cfg.max_attempts.max(1) {
            self.limiter.acquire().await;
            match self.attempt(&method, &url, &params, repeat).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => {
                    tracing::warn!(method = name, error = %e, "cloudbeds call failed");
                    return Err(e);
                }
                Attempt::Retry(why, after) => {
                    let wait = after
                        .map(|a| a.min(self.cfg.backoff_max))
                        .unwrap_or_else(|| self.backoff(attempt));
                    tracing::info!(
                        method = name,
                        attempt,
                        why,
                        wait_ms = wait.as_millis() as u64,
                        "retrying cloudbeds call"
                    );
                    last = why;
                    if attempt + 1 < self.cfg.max_attempts {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Err(CrmError::Unavailable(format!("{name}: {last}")))
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        params: &[(String, String)],
        repeat: Repeat,
    ) -> Attempt {
        let mut key = match HeaderValue::from_str(&self.cfg.api_key.0) {
            Ok(k) => k,
            Err(_) => return Attempt::Fail(CrmError::Unauthorized),
        };
        key.set_sensitive(true);
        let req = self
            .http
            .request(method.clone(), url)
            .header("x-api-key", key);
        let req = if *method == Method::GET {
            req.query(params)
        } else {
            req.form(params)
        };
        let resp = match req.send().await {
            Ok(r) => r,
            // Never connected: nothing ran, any call may retry.
            Err(e) if e.is_connect() => return Attempt::Retry("connect".into(), None),
            Err(e) if repeat == Repeat::Unsafe => {
                return Attempt::Fail(CrmError::Ambiguous(kind_of(&e)));
            }
            Err(e) => return Attempt::Retry(kind_of(&e), None),
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Attempt::Retry("429".into(), after);
        }
        if status.is_server_error() {
            return match repeat {
                Repeat::Safe => Attempt::Retry(status.as_u16().to_string(), None),
                Repeat::Unsafe => Attempt::Fail(CrmError::Ambiguous(status.to_string())),
            };
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Attempt::Fail(CrmError::Unauthorized);
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if repeat == Repeat::Safe => return Attempt::Retry(kind_of(&e), None),
            Err(e) => return Attempt::Fail(CrmError::Ambiguous(kind_of(&e))),
        };
        if !status.is_success() {
            return Attempt::Fail(CrmError::Rejected(status.to_string()));
        }
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return Attempt::Fail(CrmError::Malformed(e.to_string())),
        };
        if v.get("success").and_then(Value::as_bool) != Some(true) {
            // Cloudbeds' messages name fields, not values; keep them short.
            let msg = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("success=false");
            return Attempt::Fail(CrmError::Rejected(msg.chars().take(200).collect()));
        }
        Attempt::Done(v)
    }
}

fn kind_of(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_request() {
        "request".into()
    } else {
        "network".into()
    }
}

/// A string field; Cloudbeds sends some ids as numbers.
fn text(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flag(v: &Value, k: &str) -> bool {
    match v.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn date(v: &Value, k: &str) -> Option<NaiveDate> {
    let s = text(v, k)?;
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Cloudbeds' timestamps: `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|n| n.and_utc())
        })
}

pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn data(v: &Value) -> &Value {
    v.get("data").unwrap_or(&Value::Null)
}

fn list(v: &Value) -> Result<&Vec<Value>, CrmError> {
    match data(v) {
        Value::Array(a) => Ok(a),
        _ => Err(CrmError::Malformed("data is not a list".into())),
    }
}

fn parse_reservation(r: &Value) -> Result<RemoteReservation, CrmError> {
    let bad = |f: &str| CrmError::Malformed(format!("reservation without {f}"));
    let mut guest_ids: Vec<String> = text(r, "guestID").into_iter().collect();
    let mut guests: Vec<ReservationGuest> = Vec::new();
    if let Some(Value::Object(m)) = r.get("guestList") {
        for (id, g) in m {
            let id = text(g, "guestID").unwrap_or_else(|| id.clone());
            let detail = ReservationGuest {
                guest_id: id.clone(),
                first_name: text(g, "guestFirstName"),
                last_name: text(g, "guestLastName"),
                email: text(g, "guestEmail"),
                main: flag(g, "isMainGuest"),
            };
            if !guest_ids.contains(&id) {
                guest_ids.push(id);
            }
            guests.push(detail);
        }
    }
    // The same order as `guest_ids` (the main guest first).
    guests.sort_by_key(|g| {
        guest_ids
            .iter()
            .position(|i| *i == g.guest_id)
            .unwrap_or(usize::MAX)
    });
    Ok(RemoteReservation {
        reservation_id: text(r, "reservationID").ok_or_else(|| bad("reservationID"))?,
        status: text(r, "status").unwrap_or_default(),
        arrival: date(r, "startDate").ok_or_else(|| bad("startDate"))?,
        departure: date(r, "endDate").ok_or_else(|| bad("endDate"))?,
        modified_at: text(r, "dateModified")
            .as_deref()
            .and_then(parse_timestamp)
            .ok_or_else(|| bad("dateModified"))?,
        guest_ids,
        guests,
    })
}

fn total_of(v: &Value, fallback: usize) -> u32 {
    v.get("total")
        .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
        .unwrap_or(fallback as u64) as u32
}

/// The address and document fields of a `getGuest` answer.
fn address_of(g: &Value) -> Address {
    Address {
        address1: text(g, "address1").or_else(|| text(g, "address")),
        address2: text(g, "address2"),
        city: text(g, "city"),
        state: text(g, "state"),
        zip: text(g, "zip"),
        country: text(g, "country"),
    }
}

fn document_of(g: &Value) -> Document {
    Document {
        // Cloudbeds answers "na" for "no document type".
        kind: text(g, "documentType").filter(|t| t != "na"),
        issuing_country: text(g, "documentIssuingCountry"),
        issue_date: date(g, "documentIssueDate"),
        expiration_date: date(g, "documentExpirationDate"),
    }
}

/// A client for one connection, its key read where the connection says
/// (`secrets::read`), with Cloudbeds' own limits. For calls made while a
/// partner waits (today's arrivals): a few attempts, short timeouts.
pub async fn client_for_connection(conn: &CrmConnection) -> Result<CloudbedsClient, CrmError> {
    let key = crate::secrets::read(
        &conn.api_key_env,
        conn.api_key_ssm_parameter.as_deref(),
        "the Cloudbeds key",
    )
    .await
    .map_err(|e| CrmError::Unavailable(format!("api key: {e}")))?;
    let mut cfg = CloudbedsConfig::new(
        &conn.base_url,
        &conn.cloudbeds_property_id,
        ApiKey::new(key.trim()),
    );
    cfg.max_attempts = 3;
    cfg.backoff_base = Duration::from_millis(200);
    cfg.backoff_max = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(8);
    CloudbedsClient::new(cfg)
}

#[async_trait]
impl CrmClient for CloudbedsClient {
    async fn custom_fields(&self) -> Result<Vec<RemoteCustomField>, CrmError> {
        let v = self
            .call(Method::GET, "getCustomFields", vec![], Repeat::Safe)
            .await?;
        Ok(list(&v)?
            .iter()
            .map(|f| RemoteCustomField {
                name: text(f, "name").unwrap_or_default(),
                shortcode: text(f, "shortcode").unwrap_or_default(),
                apply_to: text(f, "applyTo").unwrap_or_default(),
            })
            .collect())
    }

    async fn create_custom_field(&self, name: &str, shortcode: &str) -> Result<(), CrmError> {
        let form = [
            ("name", name),
            ("shortcode", shortcode),
            ("applyTo", "guest"),
            ("type", "input"),
            ("required", "false"),
            ("isPersonal", "true"),
            ("maxCharacters", "255"),
            ("displayed[]", "reservation"),
        ];
        let params = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.call(Method::POST, "postCustomField", params, Repeat::Unsafe)
            .await
            .map(|_| ())
    }

    async fn reservations(
        &self,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        page: u32,
        page_size: u32,
    ) -> Result<ReservationPage, CrmError> {
        let mut q = vec![
            ("modifiedTo".to_owned(), format_timestamp(to)),
            ("includeGuestsDetails".to_owned(), "true".to_owned()),
            ("pageNumber".to_owned(), page.max(1).to_string()),
            ("pageSize".to_owned(), page_size.clamp(1, 100).to_string()),
        ];
        if let Some(f) = from {
            q.insert(0, ("modifiedFrom".to_owned(), format_timestamp(f)));
        }
        let v = self
            .call(Method::GET, "getReservations", q, Repeat::Safe)
            .await?;
        let reservations = list(&v)?
            .iter()
            .map(parse_reservation)
            .collect::<Result<Vec<_>, _>>()?;
        let total = total_of(&v, reservations.len());
        Ok(ReservationPage {
            reservations,
            total,
        })
    }

    async fn reservations_by_dates(
        &self,
        q: &ReservationDates,
    ) -> Result<ReservationPage, CrmError> {
        let (from, to) = match q.by {
            DateKind::CheckIn => ("checkInFrom", "checkInTo"),
            DateKind::CheckOut => ("checkOutFrom", "checkOutTo"),
        };
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let mut params = vec![
            (from.to_owned(), day(q.from)),
            (to.to_owned(), day(q.to)),
            ("includeGuestsDetails".to_owned(), "true".to_owned()),
            ("pageNumber".to_owned(), q.page.max(1).to_string()),
            ("pageSize".to_owned(), q.page_size.clamp(1, 100).to_string()),
        ];
        if let Some(s) = &q.status {
            params.push(("status".to_owned(), s.clone()));
        }
        let v = self
            .call(Method::GET, "getReservations", params, Repeat::Safe)
            .await?;
        let reservations = list(&v)?
            .iter()
            .map(parse_reservation)
            .collect::<Result<Vec<_>, _>>()?;
        let total = total_of(&v, reservations.len());
        Ok(ReservationPage {
            reservations,
            total,
        })
    }

    async fn guests_by_filter(&self, f: &GuestFilter) -> Result<GuestPage, CrmError> {
        let mut params = vec![
            ("propertyIDs".to_owned(), self.cfg.property_id.clone()),
            ("status".to_owned(), f.status.as_str().to_owned()),
            ("pageNumber".to_owned(), f.page.max(1).to_string()),
            ("pageSize".to_owned(), f.page_size.clamp(1, 100).to_string()),
        ];
        if let Some(t) = f.modified_from {
            params.push(("resultsFrom".to_owned(), format_timestamp(t)));
        }
        if let Some(t) = f.modified_to {
            params.push(("resultsTo".to_owned(), format_timestamp(t)));
        }
        if let Some(n) = &f.name {
            params.push(("guestName".to_owned(), n.clone()));
        }
        if let Some(e) = &f.email {
            params.push(("guestEmail".to_owned(), e.clone()));
        }
        let v = self
            .call(Method::GET, "getGuestsByFilter", params, Repeat::Safe)
            .await?;
        let guests: Vec<FilteredGuest> = list(&v)?
            .iter()
            .filter_map(|g| {
                Some(FilteredGuest {
                    guest_id: text(g, "guestID")?,
                    reservation_id: text(g, "reservationID"),
                    modified_at: text(g, "dateModified").as_deref().and_then(parse_timestamp),
                })
            })
            .collect();
        let total = total_of(&v, guests.len());
        Ok(GuestPage { guests, total })
    }

    async fn reservation(&self, reservation_id: &str) -> Result<RemoteReservation, CrmError> {
        let q = vec![("reservationID".to_owned(), reservation_id.to_owned())];
        let v = self
            .call(Method::GET, "getReservation", q, Repeat::Safe)
            .await?;
        parse_reservation(data(&v))
    }

    async fn reservation_revenue(&self, reservation_id: &str) -> Result<RemoteRevenue, CrmError> {
        let q = vec![("reservationID".to_owned(), reservation_id.to_owned())];
        let v = self
            .call(Method::GET, "getReservation", q, Repeat::Safe)
            .await?;
        let r = data(&v);
        // Documented as an object; some answers wrap it in a list.
        let detail = match r.get("balanceDetailed") {
            Some(Value::Array(a)) => a.first(),
            other => other,
        };
        let amount = |o: Option<&Value>, k: &str| -> Option<String> {
            match o?.get(k)? {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            }
        };
        match amount(detail, "subTotal") {
            Some(room) => Ok(RemoteRevenue {
                room,
                other: amount(detail, "additionalItems").unwrap_or_else(|| "0".into()),
            }),
            None => match amount(Some(r), "total") {
                Some(total) => Ok(RemoteRevenue {
                    room: total,
                    other: "0".into(),
                }),
                None => Err(CrmError::Malformed(
                    "getReservation without balanceDetailed or total".into(),
                )),
            },
        }
    }

    async fn guest(&self, guest_id: &str) -> Result<RemoteGuest, CrmError> {
        let q = vec![("guestID".to_owned(), guest_id.to_owned())];
        let v = self.call(Method::GET, "getGuest", q, Repeat::Safe).await?;
        let g = data(&v);
        if !g.is_object() {
            return Err(CrmError::Malformed("getGuest data is not an object".into()));
        }
        let mut custom_fields = BTreeMap::new();
        if let Some(Value::Array(fs)) = g.get("customFields") {
            for f in fs {
                if let Some(name) = text(f, "customFieldName") {
                    custom_fields.insert(name, text(f, "customFieldValue").unwrap_or_default());
                }
            }
        }
        let merged_into = if flag(g, "isMerged") {
            text(g, "newGuestID")
        } else {
            None
        };
        Ok(RemoteGuest {
            guest_id: guest_id.to_owned(),
            email: text(g, "email"),
            first_name: text(g, "firstName"),
            last_name: text(g, "lastName"),
            phone: text(g, "phone").or_else(|| text(g, "cellPhone")),
            birth_date: date(g, "birthDate"),
            document_number: text(g, "documentNumber"),
            document: document_of(g),
            address: address_of(g),
            custom_fields,
            opt_in: flag(g, "guestOptIn"),
            anonymized: flag(g, "isAnonymized"),
            merged_into,
        })
    }

    async fn guest_notes(&self, guest_id: &str) -> Result<Vec<RemoteNote>, CrmError> {
        let q = vec![("guestID".to_owned(), guest_id.to_owned())];
        let v = self
            .call(Method::GET, "getGuestNotes", q, Repeat::Safe)
            .await?;
        Ok(list(&v)?
            .iter()
            .filter_map(|n| {
                Some(RemoteNote {
                    note_id: text(n, "guestNoteID")?,
                    text: text(n, "guestNote").unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn put_guest(&self, guest_id: &str, u: &GuestUpdate) -> Result<(), CrmError> {
        let mut p = vec![("guestID".to_owned(), guest_id.to_owned())];
        let fields = [
            ("guestFirstName", &u.first_name),
            ("guestLastName", &u.last_name),
            ("guestEmail", &u.email),
            ("guestPhone", &u.phone),
            ("guestDocumentNumber", &u.document_number),
            ("guestDocumentType", &u.document.kind),
            ("guestDocumentIssuingCountry", &u.document.issuing_country),
            ("guestAddress1", &u.address.address1),
            ("guestAddress2", &u.address.address2),
            ("guestCity", &u.address.city),
            ("guestState", &u.address.state),
            ("guestZip", &u.address.zip),
            ("guestCountry", &u.address.country),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                p.push((k.to_owned(), v.clone()));
            }
        }
        for (k, d) in [
            ("guestBirthDate", u.birth_date),
            ("guestDocumentIssueDate", u.document.issue_date),
            ("guestDocumentExpirationDate", u.document.expiration_date),
        ] {
            if let Some(d) = d {
                p.push((k.into(), d.format("%Y-%m-%d").to_string()));
            }
        }
        for (i, (name, value)) in u.custom_fields.iter().enumerate() {
            p.push((
                format!("guestCustomFields[{i}][customFieldName]"),
                name.clone(),
            ));
            p.push((
                format!("guestCustomFields[{i}][customFieldValue]"),
                value.clone(),
            ));
        }
        self.call(Method::PUT, "putGuest", p, Repeat::Safe)
            .await
            .map(|_| ())
    }

    async fn post_guest_note(&self, guest_id: &str, note: &str) -> Result<String, CrmError> {
        let p = vec![
            ("guestID".to_owned(), guest_id.to_owned()),
            ("guestNote".to_owned(), note.to_owned()),
        ];
        let v = self
            .call(Method::POST, "postGuestNote", p, Repeat::Unsafe)
            .await?;
        // The published shape puts the id at the top; accept it under data too.
        text(&v, "guestNoteID")
            .or_else(|| text(data(&v), "guestNoteID"))
            .ok_or_else(|| CrmError::Malformed("postGuestNote without guestNoteID".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_masked() {
        let k = ApiKey::new("cbat_secret");
        assert!(!format!("{k:?}").contains("secret"));
        let cfg = CloudbedsConfig::new("http://x/", "1", k);
        assert!(!format!("{cfg:?}").contains("secret"));
    }

    #[test]
    fn timestamps_both_ways() {
        let t = parse_timestamp("2025-03-04 05:06:07").unwrap();
        assert_eq!(format_timestamp(t), "2025-03-04 05:06:07");
        assert_eq!(parse_timestamp("2025-03-04T05:06:07Z"), Some(t));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_keeps_any_window_within_the_rate() {
        let l = RateLimiter::per_second(5.0);
        let mut starts = Vec::new();
        for _ in 0..16 {
            l.acquire().await;
            starts.push(Instant::now());
        }
        for w in starts.windows(6) {
            assert!(w[5] - w[0] >= Duration::from_secs(1) + LATENCY_MARGIN);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_requests() {
        let l = RateLimiter::per_second(5.0);
        let start = Instant::now();
        for _ in 0..6 {
            l.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(1000));
    }
}
