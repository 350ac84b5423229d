//! Suppliers, products and availability: `GET /octo/suppliers`,
//! `GET /octo/{property}/supplier`, `GET …/products`, `GET …/products/{id}`,
//! `POST …/availability`, `POST …/availability/calendar`.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{Days, NaiveDate};
use domain::checkout::catalogue::Product;
use domain::checkout::order::MAX_DAYS_AHEAD;
use domain::octo::{DEFAULT_OPTION, OctoError, availability_date, date_range};
use domain::time::local_date;
use http::HeaderMap;
use platform::Store;
use platform::http::Caller;
use platform::http::error::OctoApiError;
use platform::http::octo::{Capabilities, OctoCaller, OctoJson, OctoPartner};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::views::{self, Day, answer};

/// The base URL the request came in on (`X-Forwarded-Proto` and `Host`).
pub fn base_url(headers: &HeaderMap) -> String {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let scheme = get("x-forwarded-proto").unwrap_or("http");
    let host = get("host").unwrap_or("localhost");
    format!("{scheme}://{host}")
}

fn endpoint(headers: &HeaderMap, property: &str) -> String {
    format!("{}/octo/{property}", base_url(headers))
}

/// The suppliers (properties) this key reaches, each with its base URL.
pub async fn suppliers(
    State(store): State<Store>,
    OctoPartner(partner): OctoPartner,
    caps: Capabilities,
    headers: HeaderMap,
) -> Result<Response, OctoApiError> {
    let mut out = Vec::new();
    for id in &partner.properties {
        if let Some(p) = store.caller_property(id).await? {
            out.push(views::supplier(&p, &endpoint(&headers, id.as_str())));
        }
    }
    Ok(answer(caps, &json!(out)))
}

pub async fn supplier(
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    headers: HeaderMap,
) -> Result<Response, OctoApiError> {
    let live = caller.live_property();
    Ok(answer(
        caps,
        &views::supplier(&caller.property, &endpoint(&headers, live.as_str())),
    ))
}

pub async fn products(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
) -> Result<Response, OctoApiError> {
    let tz = caller.property.time_zone;
    let list: Vec<Value> = store
        .products(&caller.live_property())
        .await?
        .iter()
        .map(|p| views::product(p, tz, caps))
        .collect();
    Ok(answer(caps, &json!(list)))
}

pub async fn get_product(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, OctoApiError> {
    let p = product_of(&store, &caller, &id).await?;
    Ok(answer(
        caps,
        &views::product(&p, caller.property.time_zone, caps),
    ))
}

/// The caller's product `id` (the live catalogue, sandbox keys too), or
/// `INVALID_PRODUCT_ID`.
pub async fn product_of(store: &Store, caller: &Caller, id: &str) -> Result<Product, OctoApiError> {
    Ok(store
        .product(&caller.live_property(), id)
        .await?
        .ok_or_else(|| OctoError::InvalidProductId(id.to_owned()))?)
}

pub fn check_option(option_id: &str) -> Result<(), OctoError> {
    if option_id == DEFAULT_OPTION {
        Ok(())
    } else {
        Err(OctoError::InvalidOptionId(option_id.to_owned()))
    }
}

pub fn check_currency(p: &Product, currency: Option<&str>) -> Result<(), OctoError> {
    match currency {
        Some(c) if !c.eq_ignore_ascii_case(&p.currency.to_string()) => Err(OctoError::BadRequest(
            format!("this product is sold in {} only", p.currency),
        )),
        _ => Ok(()),
    }
}

/// Seats of `product` on each of `dates` in the caller's world.
pub async fn days(
    store: &Store,
    caller: &Caller,
    product: &Product,
    dates: &[NaiveDate],
) -> Result<Vec<Day>, OctoApiError> {
    let now = store.clock().now();
    let today = local_date(caller.property.time_zone, now);
    let last = today + Days::new(MAX_DAYS_AHEAD);
    let p = &caller.property.id;
    let seats = futures::future::try_join_all(dates.iter().map(|d| async move {
        match product.capacity {
            Some(_) => store
                .seats(p, &product.id, *d, caller.test_mode)
                .await
                .map(|(s, _)| s.at(now).taken()),
            None => Ok(0),
        }
    }))
    .await?;
    Ok(dates
        .iter()
        .zip(seats)
        .map(|(d, taken)| Day {
            date: *d,
            capacity: product.capacity,
            taken,
            open: (today..=last).contains(d),
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitQuantity {
    pub id: String,
    pub quantity: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityBody {
    pub product_id: String,
    pub option_id: String,
    #[serde(default)]
    pub local_date_start: Option<NaiveDate>,
    #[serde(default)]
    pub local_date_end: Option<NaiveDate>,
    #[serde(default)]
    pub availability_ids: Option<Vec<String>>,
    #[serde(default)]
    pub units: Option<Vec<UnitQuantity>>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// The product, checked option, units and currency; the units' total.
async fn checked(
    store: &Store,
    caller: &Caller,
    body: &AvailabilityBody,
) -> Result<(Product, u32), OctoApiError> {
    let p = product_of(store, caller, &body.product_id).await?;
    check_option(&body.option_id)?;
    check_currency(&p, body.currency.as_deref())?;
    let mut wanted = 0u32;
    for u in body.units.iter().flatten() {
        if p.unit(&u.id).is_none() {
            return Err(OctoError::InvalidUnitId(u.id.clone()).into());
        }
        wanted = wanted.saturating_add(u.quantity);
    }
    Ok((p, wanted))
}

fn range(body: &AvailabilityBody) -> Result<Vec<NaiveDate>, OctoError> {
    match (body.local_date_start, body.local_date_end) {
        (Some(s), Some(e)) => date_range(s, e),
        (Some(s), None) => date_range(s, s),
        _ => Err(OctoError::BadRequest(
            "localDateStart and localDateEnd, or availabilityIds, are required".into(),
        )),
    }
}

pub async fn availability(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    OctoJson(body): OctoJson<AvailabilityBody>,
) -> Result<Response, OctoApiError> {
    let tz = caller.property.time_zone;
    let (p, wanted) = checked(&store, &caller, &body).await?;
    let dates = match &body.availability_ids {
        Some(ids) if body.local_date_start.is_none() => {
            if ids.is_empty() || ids.len() > domain::octo::MAX_DAYS as usize {
                return Err(OctoError::BadRequest("availabilityIds: 1 to 366 ids".into()).into());
            }
            ids.iter()
                .map(|id| {
                    availability_date(tz, id)
                        .ok_or_else(|| OctoError::InvalidAvailabilityId(id.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => range(&body)?,
    };
    let list: Vec<Value> = days(&store, &caller, &p, &dates)
        .await?
        .iter()
        .map(|d| views::availability(&p, tz, d, wanted, caps))
        .collect();
    Ok(answer(caps, &json!(list)))
}

pub async fn calendar(
    State(store): State<Store>,
    OctoCaller(caller): OctoCaller,
    caps: Capabilities,
    OctoJson(body): OctoJson<AvailabilityBody>,
) -> Result<Response, OctoApiError> {
    if body.availability_ids.is_some() {
        return Err(OctoError::BadRequest(
            "the calendar takes localDateStart and localDateEnd".into(),
        )
        .into());
    }
    let (p, wanted) = checked(&store, &caller, &body).await?;
    let dates = range(&body)?;
    let list: Vec<Value> = days(&store, &caller, &p, &dates)
        .await?
        .iter()
        .map(|d| views::calendar_day(&p, d, wanted, caps))
        .collect();
    Ok(answer(caps, &json!(list)))
}
