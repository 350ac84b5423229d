//! Bookings: `POST /octo/{property}/bookings` (a reservation holding its
//! seats until `utcExpiresAt`), `GET …/bookings[/{uuid}]`,
//! `PATCH …/bookings/{uuid}`, `POST …/{uuid}/extend`, `…/confirm` (the
//! GuestHub order, in the same transaction as the booking) and `…/cancel`
//! (the order's cancellation once confirmed).
//!
//! A hold is an entry in the capacity counter with its expiry, written with
//! the booking under the counter's version condition; once expired it counts
//! for nothing (nobody needs to notice), so seats come back by themselves.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use checkout_api::orders::{Plan, cancel_order, plan};
use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use domain::checkout::catalogue::{Catalogue, Product, ProductKind};
use domain::checkout::membership::Contact;
use domain::checkout::order::{
    Hold, ItemRequest, MAX_DAYS_AHEAD, Order, OrderRequest, OrderStatus, PaymentRequest,
    StoredOrder,
};
use domain::checkout::payment::PaymentMode;
use domain::checkout::ports::CheckoutStore;
use domain::checkout::pricing::{Buyer, LineRequest, PricedLine, price};
use domain::idempotency::fingerprint;
use domain::octo::{
    MAX_UNITS, OctoBooking, OctoError, OctoStatus, OctoUnitItem, availability_date,
};
use domain::roster::discount::Membership as ClubMembership;
use domain::roster::service::enabled_tiers;
use domain::roster::store::RosterStore;
use domain::time::local_date;
use domain::{Email, PropertyId};
use platform::Store;
use platform::http::error::OctoApiError;
use platform::http::octo::{Capabilities, OctoCaller, OctoJson};
use platform::http::{ApiError, Caller};
use platform::store::Retry;
use platform::store::checkout_repo::OrderTx;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalogue::{check_currency, check_option, product_of};
use crate::views::{self, BookingContext, answer};

const ATTEMPTS: u32 = 40;

fn busy() -> OctoApiError {
    ApiError::unavailable("booking kept losing races; retry").into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactBody {
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub locales: Option<Vec<String>>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub allow_marketing: Option<bool>,
}

impl ContactBody {
    /// The hub's contact: names from `firstName`/`lastName`, else split
    /// from `fullName` (the last word is the last name).
    fn contact(self) -> Result<Contact, OctoApiError> {
        let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let (mut first, mut last) = (blank(self.first_name), blank(self.last_name));
        if first.is_none()
            && last.is_none()
            && let Some(full) = blank(self.full_name)
        {
            match full.trim().rsplit_once(' ') {
                Some((f, l)) => (first, last) = (Some(f.trim().to_owned()), Some(l.to_owned())),
                None => first = Some(full.trim().to_owned()),
            }
        }
        let c = Contact {
            email: blank(self.email_address),
            first_name: first,
            last_name: last,
            phone: blank(self.phone_number),
            marketing_opt_in: self.allow_marketing,
        };
        c.validate("contact")?;
        Ok(c)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitItemBody {
    #[serde(default)]
    pub uuid: Option<String>,
    pub unit_id: String,
    #[serde(default)]
    pub reseller_reference: Option<String>,
    #[serde(default)]
    pub contact: Option<ContactBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveBody {
    #[serde(default)]
    pub uuid: Option<String>,
    pub product_id: String,
    pub option_id: String,
    #[serde(default)]
    pub availability_id: Option<String>,
    #[serde(default)]
    pub expiration_minutes: Option<u32>,
    #[serde(default)]
    pub notes: Option<String>,
    pub unit_items: Vec<UnitItemBody>,
    #[serde(default)]
    pub reseller_reference: Option<String>,
    #[serde(default)]
    pub contact: Option<ContactBody>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBody {
    #[serde(default)]
    pub reseller_reference: Option<String>,
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub option_id: Option<String>,
    #[serde(default)]
    pub availability_id: Option<String>,
    #[serde(default)]
    pub expiration_minutes: Option<u32>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub email_receipt: Option<bool>,
    #[serde(default)]
    pub unit_items: Option<Vec<UnitItemBody>>,
    #[serde(default)]
    pub contact: Option<ContactBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmBody {
    #[serde(default)]
    pub email_receipt: Option<bool>,
    #[serde(default)]
    pub reseller_reference: Option<String>,
    pub contact: ContactBody,
    #[serde(default)]
    pub unit_items: Option<Vec<UnitItemBody>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendBody {
    #[serde(default)]
    pub expiration_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelBody {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub force: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    #[serde(default)]
    pub reseller_reference: Option<String>,
    #[serde(default)]
    pub supplier_reference: Option<String>,
    #[serde(default)]
    pub local_date: Option<NaiveDate>,
    #[serde(default)]
    pub local_date_start: Option<NaiveDate>,
    #[serde(default)]
    pub local_date_end: Option<NaiveDate>,
}

/// A booking uuid is also its order's id: 1-64 of A-Z, a-z, 0-9, '-'.
fn check_uuid(id: &str) -> Result<(), OctoError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(OctoError::InvalidBookingUuid(
            id.chars().take(64).collect(),
            "the uuid must be 1-64 characters of A-Z, a-z, 0-9, '-'",
        ))
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn not_found(uuid: &str) -> OctoError {
    OctoError::InvalidBookingUuid(uuid.to_owned(), "no booking with this uuid")
}

/// The local date an availability id names, open for sale, or
/// `INVALID_AVAILABILITY_ID`.
fn date_of(caller: &Caller, now: DateTime<Utc>, id: &str) -> Result<NaiveDate, OctoError> {
    let tz = caller.property.time_zone;
    let today = local_date(tz, now);
    availability_date(tz, id)
        .filter(|d| (today..=today + Days::new(MAX_DAYS_AHEAD)).contains(d))
        .ok_or_else(|| OctoError::InvalidAvailabilityId(id.to_owned()))
}

/// The booking's date: products sold per date need an availability;
/// memberships may name one (their first day).
fn booking_date(
    caller: &Caller,
    now: DateTime<Utc>,
    product: &Product,
    id: Option<&str>,
) -> Result<Option<NaiveDate>, OctoError> {
    match id {
        Some(id) => date_of(caller, now, id).map(Some),
        None if product.kind == ProductKind::Membership => Ok(None),
        None => Err(OctoError::InvalidAvailabilityId(String::new())),
    }
}

fn unit_items(
    product: &Product,
    items: Vec<UnitItemBody>,
) -> Result<Vec<OctoUnitItem>, OctoApiError> {
    if items.is_empty() || items.len() > MAX_UNITS {
        return Err(OctoError::BadRequest(format!("unitItems: 1 to {MAX_UNITS} items")).into());
    }
    items
        .into_iter()
        .map(|u| {
            if product.unit(&u.unit_id).is_none() {
                return Err(OctoError::InvalidUnitId(u.unit_id).into());
            }
            let uuid = u.uuid.unwrap_or_else(new_uuid);
            check_uuid(&uuid)?;
            Ok(OctoUnitItem {
                uuid,
                unit_id: u.unit_id,
                reseller_reference: u.reseller_reference,
                supplier_reference: None,
                contact: u
                    .contact
                    .map(ContactBody::contact)
                    .transpose()?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn check_text(field: &str, v: &Option<String>, max: usize) -> Result<(), OctoError> {
    match v {
        Some(s) if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') => {
            Err(OctoError::BadRequest(format!(
                "{field}: at most {max} characters without control characters"
            )))
        }
        _ => Ok(()),
    }
}

/// The club standing of the booking's contact (pricing's buyer).
async fn buyer(store: &Store, live: &PropertyId, contact: &Contact) -> Result<Buyer, OctoApiError> {
    let mut buyer = Buyer::default();
    if let Some(email) = contact.email.as_deref().and_then(|e| Email::parse(e).ok())
        && let Some(found) = store.lookup_member(live, &email).await?
    {
        buyer.club = ClubMembership {
            member: true,
            tiers: found.tiers.into_iter().collect(),
        };
        buyer.enabled_tiers = enabled_tiers(store, live).await?;
    }
    Ok(buyer)
}

/// The booking priced as an order of it would be (club discounts for a
/// recognised member; members-only and tier rules refuse here).
async fn quote(
    store: &Store,
    caller: &Caller,
    b: &OctoBooking,
    product: &Product,
) -> Result<Vec<PricedLine>, OctoApiError> {
    let buyer = buyer(store, &caller.live_property(), &b.contact).await?;
    let catalogue: Catalogue = [(product.id.clone(), product.clone())].into();
    let lines: Vec<LineRequest> = b
        .quantities()
        .into_iter()
        .map(|(unit_id, quantity)| LineRequest {
            product_id: product.id.clone(),
            unit_id,
            quantity,
        })
        .collect();
    Ok(price(&catalogue, &lines, &buyer, None, None)?.lines)
}

/// Where a booking's seats are held (products with capacity).
struct HoldAt {
    product: String,
    date: NaiveDate,
    capacity: u32,
    quantity: u32,
    expires_at: DateTime<Utc>,
}

fn hold_of(b: &OctoBooking, product: &Product) -> Option<HoldAt> {
    Some(HoldAt {
        product: product.id.clone(),
        date: b.date?,
        capacity: product.capacity?,
        quantity: u32::try_from(b.unit_items.len()).unwrap_or(u32::MAX),
        expires_at: b.expires_at,
    })
}

/// Moves a booking's hold into `tx`: off `old` (product, date), onto `new`
/// when it fits; each counter changed under its version condition.
async fn set_hold(
    store: &Store,
    tx: &mut OrderTx,
    caller: &Caller,
    uuid: &str,
    old: Option<(String, NaiveDate)>,
    new: Option<HoldAt>,
) -> Result<(), OctoApiError> {
    let (p, test) = (&caller.property.id, caller.test_mode);
    let now = store.clock().now();
    let same =
        matches!((&old, &new), (Some((op, od)), Some(n)) if *op == n.product && *od == n.date);
    if let Some((product, date)) = old.filter(|_| !same) {
        let (s, v) = store.seats(p, &product, date, test).await?;
        if v.is_some() {
            let mut s = s.at(now);
            s.release(uuid);
            store.put_seats(tx, p, &product, date, test, s, v);
        }
    }
    if let Some(n) = new {
        let (s, v) = store.seats(p, &n.product, n.date, test).await?;
        let mut s = s.at(now);
        s.release(uuid);
        if s.taken().saturating_add(n.quantity) > n.capacity {
            return Err(OctoError::Unprocessable(format!(
                "only {} left on {}",
                n.capacity.saturating_sub(s.taken()),
                n.date
            ))
            .into());
        }
        s.holds.push(Hold {
            booking: uuid.to_owned(),
            quantity: n.quantity,
            expires_at: n.expires_at,
        });
        store.put_seats(tx, p, &n.product, n.date, test, s, v);
    }
    Ok(())
}

/// The booking as OCTO answers it, its status read with its order's.
async fn view(
    store: &Store,
    caller: &Caller,
    b: &OctoBooking,
    caps: Capabilities,
) -> Result<Value, OctoApiError> {
    let product = store
        .product(&caller.live_property(), &b.product_id)
        .await?;
    let now = store.clock().now();
    let mut status = b.status_at(now);
    let order = match status {
        OctoStatus::Confirmed | OctoStatus::Cancelled if b.confirmed_at.is_some() => store
            .stored_order(&caller.property.id, &b.uuid)
            .await?
            .map(|(s, _)| s.order),
        _ => None,
    };
    if order
        .as_ref()
        .is_some_and(|o| o.status == OrderStatus::Cancelled)
    {
        status = OctoStatus::Cancelled;
    }
    let lines: Vec<PricedLine> = match (&order, &product) {
        (Some(o), _) => o.lines.iter().map(|l| l.priced.clone()).collect(),
        (None, Some(p)) if caps.pricing => quote(store, caller, b, p).await.unwrap_or_default(),
        _ => Vec::new(),
    };
    let cx = BookingContext {
        product: product.as_ref(),
        tz: caller.property.time_zone,
        now,
        status,
        lines: &lines,
        caps,
    };
    Ok(views::booking(b, &cx))
}

async fn answer_booking(
    store: &Store,
    caller: &Caller,
    b: &OctoBooking,
    caps: Capabilities,
) -> Result<Response, OctoApiError> {
    Ok(answer(caps, &view(store, caller, b, caps).await?))
}

async fn booking_of(
    store: &Store,
    caller: &Caller,
    uuid: &str,
) -> Result<(OctoBooking, i64), OctoApiError> {
    check_uuid(uuid)?;
    Ok(store
        .octo_booking(&caller.property.id, uuid)
        .await?
        .filter(|(b, _)| mine(caller, b))
        .ok_or_else(|| not_found(uuid))?)
}

/// A reseller sees its own bookings only.
fn mine(caller: &Caller, b: &OctoBooking) -> bool {
    b.partner == caller.partner.id.to_string()
}

/// The answer to a reservation whose uuid is taken: the same booking for
/// its reseller (OCTO's retry), refused for any other.
async fn existing(
    store: &Store,
    caller: &Caller,
    b: &OctoBooking,
    caps: Capabilities,
) -> Result<Response, OctoApiError> {
    if !mine(caller, b) {
        return Err(
            OctoError::InvalidBookingUuid(b.uuid.clone(), "this uuid is already used").into(),
        );
    }
    answer_booking(store, caller, b, caps).await
}

/// Reserves: the seats are held until `utcExpiresAt`. The same uuid again
/// answers the booking it made.
pub async fn reserve(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    OctoJson(body): OctoJson<ReserveBody>,
) -> Result<Response, OctoApiError> {
    let p = &caller.property.id;
    let uuid = body.uuid.clone().unwrap_or_else(new_uuid);
    check_uuid(&uuid)?;
    if let Some((b, _)) = store.octo_booking(p, &uuid).await? {
        return existing(&store, &caller, &b, caps).await;
    }
    let product = product_of(&store, &caller, &body.product_id).await?;
    check_option(&body.option_id)?;
    check_currency(&product, body.currency.as_deref())?;
    check_text("notes", &body.notes, 1000)?;
    check_text("resellerReference", &body.reseller_reference, 100)?;
    let now = store.clock().now();
    let date = booking_date(&caller, now, &product, body.availability_id.as_deref())?;
    let minutes = OctoBooking::hold_minutes(body.expiration_minutes)?;
    let b = OctoBooking {
        uuid: uuid.clone(),
        test_mode: caller.test_mode,
        partner: caller.partner.id.to_string(),
        product_id: product.id.clone(),
        date,
        unit_items: unit_items(&product, body.unit_items)?,
        contact: body
            .contact
            .map(ContactBody::contact)
            .transpose()?
            .unwrap_or_default(),
        notes: body.notes,
        reseller_reference: body.reseller_reference,
        status: OctoStatus::OnHold,
        created_at: now,
        updated_at: now,
        expires_at: now + Duration::minutes(i64::from(minutes)),
        confirmed_at: None,
        cancelled_at: None,
        cancel_reason: None,
    };
    // Members-only events, tiers: refused now rather than at confirmation.
    quote(&store, &caller, &b, &product).await?;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        if let Some((b, _)) = store.octo_booking(p, &uuid).await? {
            return existing(&store, &caller, &b, caps).await;
        }
        let mut tx = OrderTx::default();
        set_hold(&store, &mut tx, &caller, &uuid, None, hold_of(&b, &product)).await?;
        store.put_octo_booking(&mut tx, p, &b, None);
        if store.commit_order(tx).await? {
            tracing::info!(booking = %uuid, product = %b.product_id, "OCTO reservation held");
            return answer_booking(&store, &caller, &b, caps).await;
        }
    }
    Err(busy())
}

pub async fn get_booking(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    Path((_, uuid)): Path<(String, String)>,
) -> Result<Response, OctoApiError> {
    let (b, _) = booking_of(&store, &caller, &uuid).await?;
    answer_booking(&store, &caller, &b, caps).await
}

/// Bookings by `resellerReference`, `supplierReference`, `localDate` or
/// `localDateStart`..`localDateEnd` (one of them is required).
pub async fn list(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, OctoApiError> {
    let Query(q) = query.map_err(|e| OctoError::BadRequest(e.body_text()))?;
    let range = match (q.local_date, q.local_date_start, q.local_date_end) {
        (Some(d), _, _) => Some((d, d)),
        (None, Some(s), Some(e)) => Some((s, e)),
        (None, None, None) => None,
        _ => {
            return Err(OctoError::BadRequest(
                "localDateStart and localDateEnd go together".into(),
            )
            .into());
        }
    };
    if q.reseller_reference.is_none() && q.supplier_reference.is_none() && range.is_none() {
        return Err(OctoError::BadRequest(
            "one of resellerReference, supplierReference, localDate or localDateStart/localDateEnd is required".into(),
        )
        .into());
    }
    let partner = caller.partner.id.to_string();
    let keep = move |b: &OctoBooking| {
        b.partner == partner
            && q.reseller_reference
                .as_ref()
                .is_none_or(|r| b.reseller_reference.as_ref() == Some(r))
            && q.supplier_reference.as_ref().is_none_or(|r| {
                *r == b.uuid
                    || b.unit_items
                        .iter()
                        .any(|u| u.supplier_reference.as_ref() == Some(r))
            })
            && range.is_none_or(|(s, e)| b.date.is_some_and(|d| (s..=e).contains(&d)))
    };
    let found = store.octo_bookings(&caller.property.id, &keep).await?;
    let mut out = Vec::with_capacity(found.len());
    for b in &found {
        out.push(view(&store, &caller, b, caps).await?);
    }
    Ok(answer(caps, &json!(out)))
}

/// Changes a booking. On hold: anything (the hold moves with it); once
/// confirmed: `resellerReference` and `notes` only.
pub async fn update(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    Path((_, uuid)): Path<(String, String)>,
    OctoJson(body): OctoJson<UpdateBody>,
) -> Result<Response, OctoApiError> {
    let p = &caller.property.id;
    check_text("notes", &body.notes, 1000)?;
    check_text("resellerReference", &body.reseller_reference, 100)?;
    let mut body = body;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (old, version) = booking_of(&store, &caller, &uuid).await?;
        let now = store.clock().now();
        let mut b = old.clone();
        if let Some(r) = &body.reseller_reference {
            b.reseller_reference = Some(r.clone());
        }
        if let Some(n) = &body.notes {
            b.notes = Some(n.clone());
        }
        b.updated_at = now;
        let mut tx = OrderTx::default();
        match old.status_at(now) {
            OctoStatus::Expired => {
                return Err(
                    OctoError::InvalidBookingUuid(uuid, "the reservation has expired").into(),
                );
            }
            OctoStatus::Cancelled => {
                return Err(OctoError::Unprocessable("the booking is cancelled".into()).into());
            }
            OctoStatus::Confirmed => {
                if body.product_id.is_some()
                    || body.option_id.is_some()
                    || body.availability_id.is_some()
                    || body.unit_items.is_some()
                    || body.contact.is_some()
                    || body.expiration_minutes.is_some()
                {
                    return Err(OctoError::Unprocessable(
                        "a confirmed booking changes only its resellerReference and notes; cancel and book again for the rest".into(),
                    )
                    .into());
                }
            }
            OctoStatus::OnHold => {
                let old_product = store
                    .product(&caller.live_property(), &old.product_id)
                    .await?;
                let product = match &body.product_id {
                    Some(id) => product_of(&store, &caller, id).await?,
                    None => old_product
                        .clone()
                        .ok_or_else(|| OctoError::InvalidProductId(old.product_id.clone()))?,
                };
                if let Some(o) = &body.option_id {
                    check_option(o)?;
                }
                b.product_id = product.id.clone();
                if body.availability_id.is_some() || body.product_id.is_some() {
                    b.date = booking_date(&caller, now, &product, body.availability_id.as_deref())?;
                }
                if let Some(items) = body.unit_items.take() {
                    b.unit_items = unit_items(&product, items)?;
                } else if body.product_id.is_some() {
                    for u in &b.unit_items {
                        if product.unit(&u.unit_id).is_none() {
                            return Err(OctoError::InvalidUnitId(u.unit_id.clone()).into());
                        }
                    }
                }
                if let Some(c) = body.contact.take() {
                    b.contact = c.contact()?;
                }
                if let Some(m) = body.expiration_minutes {
                    b.expires_at =
                        now + Duration::minutes(i64::from(OctoBooking::hold_minutes(Some(m))?));
                }
                quote(&store, &caller, &b, &product).await?;
                let old_at = old_product
                    .as_ref()
                    .and_then(|op| hold_of(&old, op))
                    .map(|h| (h.product, h.date));
                set_hold(
                    &store,
                    &mut tx,
                    &caller,
                    &uuid,
                    old_at,
                    hold_of(&b, &product),
                )
                .await?;
            }
        }
        store.put_octo_booking(&mut tx, p, &b, Some(version));
        if store.commit_order(tx).await? {
            return answer_booking(&store, &caller, &b, caps).await;
        }
    }
    Err(busy())
}

/// Extends a reservation's hold (`expirationMinutes` from now).
pub async fn extend(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    Path((_, uuid)): Path<(String, String)>,
    OctoJson(body): OctoJson<ExtendBody>,
) -> Result<Response, OctoApiError> {
    let p = &caller.property.id;
    let minutes = OctoBooking::hold_minutes(body.expiration_minutes)?;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (mut b, version) = booking_of(&store, &caller, &uuid).await?;
        let now = store.clock().now();
        match b.status_at(now) {
            OctoStatus::OnHold => {}
            OctoStatus::Expired => {
                return Err(
                    OctoError::InvalidBookingUuid(uuid, "the reservation has expired").into(),
                );
            }
            _ => {
                return Err(OctoError::Unprocessable(
                    "only a reservation on hold is extended".into(),
                )
                .into());
            }
        }
        b.expires_at = now + Duration::minutes(i64::from(minutes));
        b.updated_at = now;
        let mut tx = OrderTx::default();
        if let Some(product) = store
            .product(&caller.live_property(), &b.product_id)
            .await?
            && let Some(h) = hold_of(&b, &product)
        {
            let at = Some((h.product.clone(), h.date));
            set_hold(&store, &mut tx, &caller, &uuid, at, Some(h)).await?;
        }
        store.put_octo_booking(&mut tx, p, &b, Some(version));
        if store.commit_order(tx).await? {
            return answer_booking(&store, &caller, &b, caps).await;
        }
    }
    Err(busy())
}

/// The order a confirmed booking is: pay later (the reseller settles on
/// account), sourced `OCTO`, credited to the reseller.
fn order_request(
    b: &OctoBooking,
    product: &Product,
    caller: &Caller,
    email_receipt: bool,
) -> OrderRequest {
    let membership = product.kind == ProductKind::Membership;
    let items = b
        .quantities()
        .into_iter()
        .map(|(unit_id, quantity)| ItemRequest {
            product_id: product.id.clone(),
            members: if membership {
                b.unit_items
                    .iter()
                    .filter(|u| u.unit_id == unit_id)
                    .map(|u| u.contact.clone())
                    .collect()
            } else {
                Vec::new()
            },
            unit_id,
            quantity,
            date: if membership { None } else { b.date },
            valid_from: if membership { b.date } else { None },
            renews: None,
        })
        .collect();
    OrderRequest {
        uuid: b.uuid.clone(),
        test_mode: caller.test_mode,
        contact: b.contact.clone(),
        membership_reference: None,
        promo_code: None,
        items,
        payment: PaymentRequest {
            mode: PaymentMode::PayLater,
            parts: Vec::new(),
        },
        source: Some("OCTO".into()),
        reseller: Some(caller.partner.id.to_string()),
        skip_confirmation_email: !email_receipt,
        email_receipt,
    }
}

/// Confirms a reservation: the GuestHub order (seats taken over from the
/// hold, memberships sold, club discounts) and the booking in one
/// transaction. After `utcExpiresAt` it is refused (`INVALID_BOOKING_UUID`).
pub async fn confirm(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    Path((_, uuid)): Path<(String, String)>,
    OctoJson(body): OctoJson<ConfirmBody>,
) -> Result<Response, OctoApiError> {
    let p = &caller.property.id;
    check_text("resellerReference", &body.reseller_reference, 100)?;
    let contact = body.contact.contact()?;
    let mut items = body.unit_items;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (mut b, version) = booking_of(&store, &caller, &uuid).await?;
        let now = store.clock().now();
        match b.status_at(now) {
            OctoStatus::OnHold => {}
            OctoStatus::Confirmed => return answer_booking(&store, &caller, &b, caps).await,
            OctoStatus::Expired => {
                return Err(OctoError::InvalidBookingUuid(
                    uuid,
                    "the reservation has expired; reserve again",
                )
                .into());
            }
            OctoStatus::Cancelled => {
                return Err(OctoError::Unprocessable("the booking is cancelled".into()).into());
            }
        }
        let product = product_of(&store, &caller, &b.product_id).await?;
        b.contact = contact.clone();
        if let Some(r) = &body.reseller_reference {
            b.reseller_reference = Some(r.clone());
        }
        if let Some(list) = items.take() {
            b.unit_items = unit_items(&product, list)?;
        }
        let req = order_request(&b, &product, &caller, body.email_receipt.unwrap_or(false));
        req.check()?;
        let Plan { order, mut writes } = plan(&store, &caller, &req, Some(&uuid)).await?;
        // A membership per ticket, in the unit items' order.
        let sold: Vec<(String, String)> = order
            .lines
            .iter()
            .flat_map(|l| {
                l.memberships
                    .iter()
                    .map(|m| (l.priced.unit_id.clone(), m.reference.clone()))
            })
            .collect();
        let mut sold = sold.into_iter();
        for u in &mut b.unit_items {
            u.supplier_reference = None;
        }
        for (unit, reference) in sold.by_ref() {
            if let Some(u) = b
                .unit_items
                .iter_mut()
                .find(|u| u.unit_id == unit && u.supplier_reference.is_none())
            {
                u.supplier_reference = Some(reference);
            }
        }
        b.status = OctoStatus::Confirmed;
        b.confirmed_at = Some(now);
        b.updated_at = now;
        let stored = stored_order(order, &uuid)?;
        store.put_order(&mut writes, p, &stored, None);
        store.put_octo_booking(&mut writes, p, &b, Some(version));
        if store.commit_order(writes).await? {
            tracing::info!(booking = %uuid, "OCTO booking confirmed as an order");
            return answer_booking(&store, &caller, &b, caps).await;
        }
    }
    Err(busy())
}

fn stored_order(order: Order, uuid: &str) -> Result<StoredOrder, OctoApiError> {
    let rendered = serde_json::to_string(&order.answer()).map_err(ApiError::internal)?;
    Ok(StoredOrder {
        fingerprint: fingerprint(&[b"octo-booking", uuid.as_bytes()]),
        order,
        rendered,
    })
}

/// Cancels: a reservation gives its seats back; a confirmed booking's order
/// is cancelled by the order's rules (seats, memberships, refunds due).
pub async fn cancel(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    Path((_, uuid)): Path<(String, String)>,
    OctoJson(body): OctoJson<CancelBody>,
) -> Result<Response, OctoApiError> {
    let p = &caller.property.id;
    check_text("reason", &body.reason, 1000)?;
    let _ = body.force;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (mut b, version) = booking_of(&store, &caller, &uuid).await?;
        let now = store.clock().now();
        let mut tx = OrderTx::default();
        match b.status_at(now) {
            OctoStatus::Cancelled => return answer_booking(&store, &caller, &b, caps).await,
            OctoStatus::OnHold | OctoStatus::Expired => {
                if let Some(product) = store
                    .product(&caller.live_property(), &b.product_id)
                    .await?
                    && let Some(h) = hold_of(&b, &product)
                {
                    set_hold(
                        &store,
                        &mut tx,
                        &caller,
                        &uuid,
                        Some((h.product, h.date)),
                        None,
                    )
                    .await?;
                }
            }
            OctoStatus::Confirmed => {
                cancel_order(&store, &caller, &uuid).await?;
            }
        }
        b.status = OctoStatus::Cancelled;
        b.cancelled_at = Some(now);
        b.cancel_reason = body.reason.clone();
        b.updated_at = now;
        store.put_octo_booking(&mut tx, p, &b, Some(version));
        if store.commit_order(tx).await? {
            tracing::info!(booking = %uuid, "OCTO booking cancelled");
            return answer_booking(&store, &caller, &b, caps).await;
        }
    }
    Err(busy())
}
