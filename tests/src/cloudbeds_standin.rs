//! A stateful stand-in for the Cloudbeds API v1.2, on 127.0.0.1:0.
//!
//! Follows the published shapes: `x-api-key`, GET parameters in the query,
//! POST/PUT bodies form-urlencoded (arrays as `name[i][field]`), answers
//! `{"success": bool, "data": ..}`, `pageNumber`/`pageSize` ≤ 100 with
//! `count`/`total`; `getReservations` filters by modification time,
//! check-in/out dates and status, and `getGuestsByFilter` answers guests
//! by status, name, email, dates and modification time. Faults can be queued per method (429, 500, a timeout
//! before or after applying), and a reservation can be modified while a
//! window is being paged; each request can be delayed a random latency
//! before it arrives. It measures what the tests assert: arrival times,
//! requests in any second above the rate limit, and duplicate posts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone, Default)]
pub struct SGuest {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub birth_date: Option<NaiveDate>,
    pub document_number: String,
    pub custom: BTreeMap<String, String>,
    pub opt_in: bool,
    /// Address and document fields (`getGuest` / `putGuest` names, e.g.
    /// `city`, `documentType`), "" when unset.
    pub details: BTreeMap<String, String>,
    /// Set when the guest record itself changed (putGuest, or a test);
    /// `getGuestsByFilter` reports the later of it and its reservations'.
    pub modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct SReservation {
    pub id: String,
    pub guest_id: String,
    pub status: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub modified: DateTime<Utc>,
    /// `balanceDetailed.subTotal` / `additionalItems` of getReservation.
    pub sub_total: String,
    pub additional_items: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    /// Sleep this long before doing anything (the client times out).
    DelayBefore(Duration),
    /// Apply the request, then sleep (the client times out; it ran).
    DelayAfter(Duration),
}

#[derive(Default)]
pub struct StandinState {
    pub api_key: String,
    pub property_id: String,
    pub rate_limit: u32,
    pub guests: BTreeMap<String, SGuest>,
    pub reservations: Vec<SReservation>,
    /// guest id → (note id, text)
    pub notes: BTreeMap<String, Vec<(String, String)>>,
    /// (name, shortcode)
    pub custom_fields: Vec<(String, String)>,
    pub faults: Vec<(String, Fault)>,
    /// After serving this page of getReservations, modify the first
    /// reservation of the window (it leaves the window; pages shift).
    pub shift_after_page: Option<u32>,
    /// Every request's arrival, after its simulated network latency.
    pub arrivals: Vec<Instant>,
    /// Each request is held a random 0..latency_max before it "arrives"
    /// (network latency varying between requests).
    pub latency_max: Duration,
    pub rate_violations: u32,
    pub calls: BTreeMap<String, u32>,
    pub duplicate_note_posts: u32,
    pub duplicate_field_posts: u32,
    pub unauthorized: u32,
    /// putGuest bodies received, as (guestID, all pairs).
    pub puts: Vec<(String, Vec<(String, String)>)>,
    /// When each guest note was stored: (guestID, text, instant) — what
    /// the webhook-to-note latency is measured against.
    pub note_posted_at: Vec<(String, String, Instant)>,
    next_id: u64,
}

impl StandinState {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", 1000 + self.next_id)
    }
}

pub type Shared = Arc<Mutex<StandinState>>;

pub struct Standin {
    pub base_url: String,
    pub state: Shared,
}

impl Standin {
    /// Starts a stand-in for `property_id` accepting `api_key`, measuring
    /// against `rate_limit` requests per second.
    pub async fn start(api_key: &str, property_id: &str, rate_limit: u32) -> Self {
        let state: Shared = Arc::new(Mutex::new(StandinState {
            api_key: api_key.into(),
            property_id: property_id.into(),
            rate_limit,
            ..Default::default()
        }));
        let app = Router::new()
            .route("/api/v1.2/{method}", any(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/api/v1.2"),
            state,
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut StandinState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a guest with one reservation modified at `modified`.
    pub fn add_guest_with_stay(
        &self,
        n: usize,
        custom: &[(&str, &str)],
        status: &str,
        modified: DateTime<Utc>,
    ) -> (String, String) {
        self.with(|s| {
            let gid = format!("G{n:04}");
            let rid = format!("R{n:04}");
            s.guests.insert(
                gid.clone(),
                SGuest {
                    first_name: format!("First{n}"),
                    last_name: format!("Last{n}"),
                    email: format!("guest{n}@example.com"),
                    phone: format!("+4312345{n:03}"),
                    birth_date: NaiveDate::from_ymd_opt(1980, 1, 1 + (n % 28) as u32),
                    document_number: format!("DOC{n:05}"),
                    custom: custom
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    opt_in: n.is_multiple_of(2),
                    ..Default::default()
                },
            );
            s.reservations.push(SReservation {
                id: rid.clone(),
                guest_id: gid.clone(),
                status: status.into(),
                start: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
                end: NaiveDate::from_ymd_opt(2025, 6, 4).unwrap(),
                modified,
                sub_total: format!("{}.50", 300 + n),
                additional_items: "45.25".into(),
            });
            (gid, rid)
        })
    }

    pub fn fault(&self, method: &str, f: Fault) {
        self.with(|s| s.faults.push((method.into(), f)));
    }

    /// The most requests that arrived within any one second.
    pub fn max_in_any_second(&self) -> usize {
        self.with(|s| {
            let mut a = s.arrivals.clone();
            a.sort();
            (0..a.len())
                .map(|i| {
                    a[i..]
                        .iter()
                        .take_while(|t| t.duration_since(a[i]) < Duration::from_secs(1))
                        .count()
                })
                .max()
                .unwrap_or(0)
        })
    }

    pub fn calls(&self, method: &str) -> u32 {
        self.with(|s| s.calls.get(method).copied().unwrap_or(0))
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"success": true, "data": data})).into_response()
}

fn fail(status: StatusCode, msg: &str) -> Response {
    (
        status,
        axum::Json(json!({"success": false, "message": msg})),
    )
        .into_response()
}

fn parse_pairs(raw: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw).unwrap_or_default()
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn ts(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

async fn handle(
    State(state): State<Shared>,
    Path(method_name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let latency = state.lock().unwrap().latency_max;
    if !latency.is_zero() {
        tokio::time::sleep(latency.mul_f64(rand::random::<f64>())).await;
    }
    let fault = {
        let mut s = state.lock().unwrap();
        let now = Instant::now();
        s.arrivals.push(now);
        let window = s
            .arrivals
            .iter()
            .filter(|t| now.duration_since(**t) < Duration::from_millis(1000))
            .count();
        if window as u32 > s.rate_limit {
            s.rate_violations += 1;
        }
        *s.calls.entry(method_name.clone()).or_default() += 1;
        if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(s.api_key.as_str()) {
            s.unauthorized += 1;
            return fail(StatusCode::UNAUTHORIZED, "Invalid API key");
        }
        let at = s.faults.iter().position(|(m, _)| *m == method_name);
        at.map(|i| s.faults.remove(i).1)
    };
    match fault {
        Some(Fault::Status(code)) => {
            let code = StatusCode::from_u16(code).unwrap();
            return fail(code, "injected");
        }
        Some(Fault::DelayBefore(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let form = match method {
        Method::GET => parse_pairs(query.as_deref().unwrap_or("")),
        _ => {
            let ct = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ct.starts_with("application/x-www-form-urlencoded") {
                return fail(StatusCode::BAD_REQUEST, "form body expected");
            }
            parse_pairs(std::str::from_utf8(&body).unwrap_or(""))
        }
    };
    let resp = {
        let mut s = state.lock().unwrap();
        if get(&form, "propertyID") != Some(s.property_id.as_str()) {
            fail(StatusCode::OK, "Invalid propertyID")
        } else {
            route(&mut s, &method, &method_name, &form)
        }
    };
    if let Some(Fault::DelayAfter(d)) = fault {
        tokio::time::sleep(d).await;
    }
    resp
}

fn route(s: &mut StandinState, method: &Method, name: &str, f: &[(String, String)]) -> Response {
    match (method.as_str(), name) {
        ("GET", "getCustomFields") => ok(Value::Array(
            s.custom_fields
                .iter()
                .map(|(n, c)| json!({"propertyID": s.property_id, "name": n, "shortcode": c, "applyTo": "guest", "required": false, "isPersonal": true, "maxCharacters": 255, "type": "input", "displayed": ["reservation"]}))
                .collect(),
        )),
        ("POST", "postCustomField") => {
            let (Some(n), Some(c)) = (get(f, "name"), get(f, "shortcode")) else {
                return fail(StatusCode::OK, "name and shortcode are required");
            };
            if s.custom_fields.iter().any(|(_, sc)| sc == c) {
                s.duplicate_field_posts += 1;
                return fail(StatusCode::OK, "shortcode exists");
            }
            s.custom_fields.push((n.into(), c.into()));
            let id = s.id("F");
            ok(json!({"fieldID": id, "name": n, "shortcode": c}))
        }
        ("GET", "getReservations") => reservations(s, f),
        ("GET", "getGuestsByFilter") => guests_by_filter(s, f),
        ("GET", "getReservation") => {
            let Some(r) = get(f, "reservationID")
                .and_then(|id| s.reservations.iter().find(|r| r.id == id))
            else {
                return fail(StatusCode::OK, "reservation not found");
            };
            let sub: f64 = r.sub_total.parse().unwrap_or(0.0);
            let add: f64 = r.additional_items.parse().unwrap_or(0.0);
            ok(json!({
                "propertyID": s.property_id, "reservationID": r.id, "status": r.status,
                "guestID": r.guest_id, "startDate": r.start.to_string(), "endDate": r.end.to_string(),
                "dateModified": r.modified.format("%Y-%m-%d %H:%M:%S").to_string(),
                "guestList": { r.guest_id.clone(): {"guestID": r.guest_id, "isMainGuest": true} },
                "total": sub + add, "balance": 0,
                "balanceDetailed": {"suggestedDeposit": "0.00", "subTotal": sub, "additionalItems": add,
                                    "taxesFees": 0, "grandTotal": sub + add, "paid": sub + add}
            }))
        }
        ("GET", "getGuest") => {
            let Some(g) = get(f, "guestID").and_then(|id| s.guests.get(id)) else {
                return fail(StatusCode::OK, "guest not found");
            };
            ok(json!({
                "firstName": g.first_name, "lastName": g.last_name, "email": g.email,
                "phone": g.phone, "cellPhone": "", "birthDate": g.birth_date.map(|d| d.to_string()),
                "documentNumber": g.document_number,
                "address1": g.details.get("address1").cloned().unwrap_or_default(),
                "address2": g.details.get("address2").cloned().unwrap_or_default(),
                "city": g.details.get("city").cloned().unwrap_or_default(),
                "state": g.details.get("state").cloned().unwrap_or_default(),
                "zip": g.details.get("zip").cloned().unwrap_or_default(),
                "country": g.details.get("country").cloned().unwrap_or_default(),
                "documentType": g.details.get("documentType").cloned().unwrap_or_else(|| "na".into()),
                "documentIssuingCountry": g.details.get("documentIssuingCountry").cloned().unwrap_or_default(),
                "documentIssueDate": g.details.get("documentIssueDate").cloned(),
                "documentExpirationDate": g.details.get("documentExpirationDate").cloned(),
                "customFields": g.custom.iter().map(|(k, v)| json!({"customFieldName": k, "customFieldValue": v})).collect::<Vec<_>>(),
                "isAnonymized": false, "guestOptIn": g.opt_in, "isMerged": false, "newGuestID": ""
            }))
        }
        ("GET", "getGuestNotes") => {
            let Some(gid) = get(f, "guestID") else {
                return fail(StatusCode::OK, "guestID is required");
            };
            let notes = s.notes.get(gid).cloned().unwrap_or_default();
            ok(Value::Array(
                notes
                    .iter()
                    .map(|(id, t)| json!({"guestNoteID": id, "userName": "api", "dateCreated": "2025-01-01 00:00:00", "dateModified": "2025-01-01 00:00:00", "guestNote": t}))
                    .collect(),
            ))
        }
        ("POST", "postGuestNote") => {
            let (Some(gid), Some(text)) = (get(f, "guestID"), get(f, "guestNote")) else {
                return fail(StatusCode::OK, "guestID and guestNote are required");
            };
            if !s.guests.contains_key(gid) {
                return fail(StatusCode::OK, "guest not found");
            }
            let gid = gid.to_owned();
            let text = text.to_owned();
            let list = s.notes.entry(gid.clone()).or_default();
            if list.iter().any(|(_, t)| *t == text) {
                s.duplicate_note_posts += 1;
            }
            let id = s.id("N");
            s.note_posted_at
                .push((gid.clone(), text.clone(), Instant::now()));
            s.notes.entry(gid).or_default().push((id.clone(), text));
            axum::Json(json!({"success": true, "guestNoteID": id})).into_response()
        }
        ("PUT", "putGuest") => {
            let Some(gid) = get(f, "guestID").map(str::to_owned) else {
                return fail(StatusCode::OK, "guestID is required");
            };
            let Some(g) = s.guests.get_mut(&gid) else {
                return fail(StatusCode::OK, "guest not found");
            };
            for (k, v) in f {
                match k.as_str() {
                    "guestFirstName" => g.first_name = v.clone(),
                    "guestLastName" => g.last_name = v.clone(),
                    "guestEmail" => g.email = v.clone(),
                    "guestPhone" => g.phone = v.clone(),
                    "guestBirthDate" => g.birth_date = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok(),
                    "guestDocumentNumber" => g.document_number = v.clone(),
                    other => {
                        if let Some(field) = put_detail(other) {
                            g.details.insert(field.to_owned(), v.clone());
                        }
                    }
                }
            }
            for i in 0.. {
                let name = get(f, &format!("guestCustomFields[{i}][customFieldName]"));
                let value = get(f, &format!("guestCustomFields[{i}][customFieldValue]"));
                match (name, value) {
                    (Some(n), Some(v)) => {
                        g.custom.insert(n.to_owned(), v.to_owned());
                    }
                    _ => break,
                }
            }
            // Cloudbeds stamps the reservations' modification time.
            let now = Utc::now();
            g.modified = Some(now);
            for r in s.reservations.iter_mut().filter(|r| r.guest_id == gid) {
                r.modified = now;
            }
            s.puts.push((gid, f.to_vec()));
            axum::Json(json!({"success": true})).into_response()
        }
        _ => fail(StatusCode::NOT_FOUND, "unknown method"),
    }
}

fn reservations(s: &mut StandinState, f: &[(String, String)]) -> Response {
    let page: usize = get(f, "pageNumber")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let size: usize = get(f, "pageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if size == 0 || size > 100 || page == 0 {
        return fail(StatusCode::OK, "pageSize must be 1-100");
    }
    let from = get(f, "modifiedFrom").and_then(ts);
    let to = get(f, "modifiedTo").and_then(ts);
    let Ok(dates) = DateFilter::of(f) else {
        return fail(StatusCode::OK, "dates are YYYY-MM-DD");
    };
    let status = get(f, "status");
    let mut hits: Vec<&SReservation> = s
        .reservations
        .iter()
        .filter(|r| {
            // Cloudbeds keeps whole seconds.
            let m = r.modified.with_nanosecond(0).unwrap_or(r.modified);
            from.is_none_or(|t| m >= t)
                && to.is_none_or(|t| m <= t)
                && dates.admits(r)
                && status.is_none_or(|st| st == r.status)
        })
        .collect();
    hits.sort_by(|a, b| a.id.cmp(&b.id));
    let total = hits.len();
    let data: Vec<Value> = hits
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            let g = s.guests.get(&r.guest_id);
            json!({
                "propertyID": s.property_id, "reservationID": r.id, "status": r.status,
                "dateCreated": "2025-01-01 00:00:00",
                "dateModified": r.modified.format("%Y-%m-%d %H:%M:%S").to_string(),
                "guestID": r.guest_id, "guestName": g.map(|g| format!("{} {}", g.first_name, g.last_name)),
                "startDate": r.start.to_string(), "endDate": r.end.to_string(),
                "guestList": { r.guest_id.clone(): {"guestID": r.guest_id, "guestFirstName": g.map(|g| g.first_name.clone()),
                    "guestLastName": g.map(|g| g.last_name.clone()), "guestEmail": g.map(|g| g.email.clone()), "isMainGuest": true} }
            })
        })
        .collect();
    let count = data.len();
    let first_in_window = hits.first().map(|r| r.id.clone());
    if s.shift_after_page == Some(page as u32) {
        s.shift_after_page = None;
        if let Some(id) = first_in_window
            && let Some(r) = s.reservations.iter_mut().find(|r| r.id == id)
        {
            r.modified = Utc::now() + chrono::Duration::hours(1);
        }
    }
    axum::Json(json!({"success": true, "data": data, "count": count, "total": total}))
        .into_response()
}

/// `putGuest`'s address and document parameters → `getGuest`'s names.
fn put_detail(param: &str) -> Option<&'static str> {
    Some(match param {
        "guestAddress1" => "address1",
        "guestAddress2" => "address2",
        "guestCity" => "city",
        "guestState" => "state",
        "guestZip" => "zip",
        "guestCountry" => "country",
        "guestDocumentType" => "documentType",
        "guestDocumentIssuingCountry" => "documentIssuingCountry",
        "guestDocumentIssueDate" => "documentIssueDate",
        "guestDocumentExpirationDate" => "documentExpirationDate",
        _ => return None,
    })
}

/// `checkInFrom/checkInTo` and `checkOutFrom/checkOutTo` (inclusive dates).
struct DateFilter {
    check_in: (Option<NaiveDate>, Option<NaiveDate>),
    check_out: (Option<NaiveDate>, Option<NaiveDate>),
}

impl DateFilter {
    fn of(f: &[(String, String)]) -> Result<Self, ()> {
        let d = |k: &str| -> Result<Option<NaiveDate>, ()> {
            match get(f, k) {
                None | Some("") => Ok(None),
                Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| ()),
            }
        };
        Ok(Self {
            check_in: (d("checkInFrom")?, d("checkInTo")?),
            check_out: (d("checkOutFrom")?, d("checkOutTo")?),
        })
    }

    fn admits(&self, r: &SReservation) -> bool {
        let within = |(from, to): (Option<NaiveDate>, Option<NaiveDate>), d: NaiveDate| {
            from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
        };
        within(self.check_in, r.start) && within(self.check_out, r.end)
    }
}

/// A reservation's status as `getGuestsByFilter` names its guests'.
fn guest_status(reservation_status: &str) -> &'static str {
    match reservation_status {
        "checked_in" => "in_house",
        "checked_out" => "checked_out",
        "canceled" | "no_show" => "cancelled",
        _ => "not_checked_in",
    }
}

/// `getGuestsByFilter`: `status` required (not_checked_in, in_house,
/// checked_out, cancelled), optional `propertyIDs`, `guestName` (part of
/// "first last", case-insensitive), `guestEmail`, `reservationID`,
/// check-in/out dates, `resultsFrom`/`resultsTo` (modification time),
/// `pageNumber`/`pageSize` (≤ 100). One row per guest and reservation,
/// ordered by modification time; `count` and `total` as getReservations.
fn guests_by_filter(s: &mut StandinState, f: &[(String, String)]) -> Response {
    let Some(status) = get(f, "status") else {
        return fail(StatusCode::OK, "status is required");
    };
    if !["not_checked_in", "in_house", "checked_out", "cancelled"].contains(&status) {
        return fail(StatusCode::OK, "invalid status");
    }
    if let Some(ids) = get(f, "propertyIDs")
        && !ids.split(',').any(|i| i.trim() == s.property_id)
    {
        return fail(StatusCode::OK, "Invalid propertyIDs");
    }
    let page: usize = get(f, "pageNumber")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let size: usize = get(f, "pageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if size == 0 || size > 100 || page == 0 {
        return fail(StatusCode::OK, "pageSize must be 1-100");
    }
    let Ok(dates) = DateFilter::of(f) else {
        return fail(StatusCode::OK, "dates are YYYY-MM-DD");
    };
    let from = get(f, "resultsFrom").and_then(ts);
    let to = get(f, "resultsTo").and_then(ts);
    let name = get(f, "guestName").map(str::to_lowercase);
    let email = get(f, "guestEmail").map(str::to_lowercase);
    let reservation = get(f, "reservationID");
    let mut rows: Vec<(DateTime<Utc>, Value)> = Vec::new();
    for r in &s.reservations {
        let Some(g) = s.guests.get(&r.guest_id) else {
            continue;
        };
        let modified = g.modified.map_or(r.modified, |m| m.max(r.modified));
        let m = modified.with_nanosecond(0).unwrap_or(modified);
        let full = format!("{} {}", g.first_name, g.last_name);
        let keep = guest_status(&r.status) == status
            && dates.admits(r)
            && from.is_none_or(|t| m >= t)
            && to.is_none_or(|t| m <= t)
            && name
                .as_ref()
                .is_none_or(|n| full.to_lowercase().contains(n))
            && email.as_ref().is_none_or(|e| g.email.to_lowercase() == *e)
            && reservation.is_none_or(|id| id == r.id);
        if keep {
            rows.push((
                m,
                json!({
                    "propertyID": s.property_id, "reservationID": r.id, "guestID": r.guest_id,
                    "guestName": full, "guestEmail": g.email, "isMainGuest": true,
                    "dateCreated": "2025-01-01 00:00:00",
                    "dateModified": m.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "status": status, "startDate": r.start.to_string(), "endDate": r.end.to_string(),
                }),
            ));
        }
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1["guestID"].as_str().cmp(&b.1["guestID"].as_str()))
    });
    let total = rows.len();
    let data: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|(_, v)| v)
        .collect();
    let count = data.len();
    axum::Json(json!({"success": true, "data": data, "count": count, "total": total}))
        .into_response()
}
