//! GuestHub's catalogue, seats and bookings in OCTO's shapes (the pinned
//! `@octocloud/types` document; the tests validate every answer against it).

use axum::response::Response;
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use domain::checkout::catalogue::{Product, ProductKind, Unit};
use domain::checkout::membership::Contact;
use domain::checkout::pricing::PricedLine;
use domain::octo::{DEFAULT_OPTION, OctoBooking, OctoStatus, availability_id, local_start};
use domain::{Money, Property};
use http::{HeaderValue, StatusCode, header};
use platform::http::octo::Capabilities;
use serde_json::{Value, json};

/// A 200 answer with the capabilities applied.
pub fn answer(caps: Capabilities, body: &Value) -> Response {
    let mut r = Response::new(axum::body::Body::from(body.to_string()));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("octo-capabilities", HeaderValue::from_static(caps.header()));
    r
}

pub fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// OCTO's price: `original` before discounts, `retail` what is charged.
pub fn pricing(original: Money, retail: Money) -> Value {
    json!({
        "original": original.amount,
        "retail": retail.amount,
        "net": null,
        "currency": original.currency.to_string(),
        "currencyPrecision": original.currency.exponent(),
        "includedTaxes": [],
    })
}

fn unit_pricing(u: &Unit) -> Value {
    let mut v = pricing(u.price, u.price);
    v["unitId"] = json!(u.id);
    v
}

pub fn supplier(p: &Property, endpoint: &str) -> Value {
    json!({
        "id": p.id.live().to_string(),
        "name": p.name,
        "endpoint": endpoint,
        "contact": {"website": null, "email": null, "telephone": null, "address": null},
    })
}

/// A membership's member fields as OCTO contact fields.
fn contact_fields(p: &Product) -> Vec<&'static str> {
    p.member_fields
        .iter()
        .filter_map(|f| match f.as_str() {
            "first_name" => Some("firstName"),
            "last_name" => Some("lastName"),
            "email" => Some("emailAddress"),
            "phone" => Some("phoneNumber"),
            _ => None,
        })
        .collect()
}

fn unit(p: &Product, u: &Unit, caps: Capabilities) -> Value {
    let mut v = json!({
        "id": u.id,
        "internalName": u.name,
        "reference": null,
        "type": u.octo_unit_type.unwrap_or_default(),
        "restrictions": {
            "minAge": 0, "maxAge": 100, "idRequired": false,
            "minQuantity": null, "maxQuantity": null, "paxCount": 1, "accompaniedBy": [],
        },
        "requiredContactFields": contact_fields(p),
    });
    if caps.pricing {
        v["pricingFrom"] = json!([pricing(u.price, u.price)]);
    }
    v
}

pub fn product(p: &Product, tz: Tz, caps: Capabilities) -> Value {
    let mut v = json!({
        "id": p.id,
        "internalName": p.name,
        "reference": null,
        "locale": "en",
        "timeZone": tz.name(),
        "allowFreesale": p.capacity.is_none(),
        "instantConfirmation": true,
        "instantDelivery": true,
        "availabilityRequired": p.kind != ProductKind::Membership,
        "availabilityType": "OPENING_HOURS",
        "deliveryFormats": ["QRCODE"],
        "deliveryMethods": ["TICKET"],
        "redemptionMethod": "DIGITAL",
        "options": [{
            "id": DEFAULT_OPTION,
            "default": true,
            "internalName": "Default",
            "reference": null,
            "availabilityLocalStartTimes": ["00:00"],
            "cancellationCutoff": "0 hours",
            "cancellationCutoffAmount": 0,
            "cancellationCutoffUnit": "hour",
            "requiredContactFields": [],
            "restrictions": {"minUnits": 1, "maxUnits": domain::octo::MAX_UNITS},
            "units": p.units.iter().map(|u| unit(p, u, caps)).collect::<Vec<_>>(),
        }],
    });
    if caps.pricing {
        v["defaultCurrency"] = json!(p.currency.to_string());
        v["availableCurrencies"] = json!([p.currency.to_string()]);
        v["pricingPer"] = json!("UNIT");
    }
    v
}

/// One local date's seats.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub date: NaiveDate,
    /// Seats per date (`None`: unlimited).
    pub capacity: Option<u32>,
    /// Sold and held.
    pub taken: u32,
    /// Sold at all (not past, not too far ahead).
    pub open: bool,
}

impl Day {
    pub fn vacancies(&self) -> Option<u32> {
        self.capacity.map(|c| c.saturating_sub(self.taken))
    }

    /// Whether `wanted` units fit.
    pub fn fits(&self, wanted: u32) -> bool {
        self.open && self.vacancies().is_none_or(|v| v >= wanted.max(1))
    }

    fn status(&self) -> &'static str {
        match (self.open, self.capacity, self.vacancies()) {
            (false, _, _) => "CLOSED",
            (true, None, _) => "FREESALE",
            (true, _, Some(0)) => "SOLD_OUT",
            (true, Some(c), Some(v)) if v * 2 < c => "LIMITED",
            _ => "AVAILABLE",
        }
    }
}

pub fn availability(p: &Product, tz: Tz, day: &Day, wanted: u32, caps: Capabilities) -> Value {
    let start = local_start(tz, day.date);
    let end = local_start(tz, day.date + Days::new(1));
    let mut v = json!({
        "id": availability_id(tz, day.date),
        "localDateTimeStart": start.to_rfc3339(),
        "localDateTimeEnd": end.to_rfc3339(),
        "utcCutoffAt": utc(end.with_timezone(&Utc)),
        "allDay": true,
        "available": day.fits(wanted),
        "status": day.status(),
        "vacancies": day.vacancies(),
        "capacity": day.capacity,
        "maxUnits": null,
        "openingHours": [],
    });
    if caps.pricing {
        v["unitPricing"] = json!(p.units.iter().map(unit_pricing).collect::<Vec<_>>());
    }
    v
}

pub fn calendar_day(p: &Product, day: &Day, wanted: u32, caps: Capabilities) -> Value {
    let mut v = json!({
        "localDate": day.date.to_string(),
        "available": day.fits(wanted),
        "status": day.status(),
        "vacancies": day.vacancies(),
        "capacity": day.capacity,
        "openingHours": [],
    });
    if caps.pricing {
        v["unitPricingFrom"] = json!(p.units.iter().map(unit_pricing).collect::<Vec<_>>());
    }
    v
}

pub fn contact(c: &Contact) -> Value {
    let full = [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "fullName": (!full.is_empty()).then_some(full),
        "firstName": c.first_name,
        "lastName": c.last_name,
        "emailAddress": c.email,
        "phoneNumber": c.phone,
        "locales": [],
        "postalCode": null,
        "country": null,
        "notes": null,
    })
}

/// What a booking answer needs besides the booking.
pub struct BookingContext<'a> {
    pub product: Option<&'a Product>,
    pub tz: Tz,
    pub now: DateTime<Utc>,
    /// The status as it is (a cancelled order: cancelled).
    pub status: OctoStatus,
    /// Priced lines: the order's once confirmed, else a quote.
    pub lines: &'a [PricedLine],
    pub caps: Capabilities,
}

pub fn booking(b: &OctoBooking, cx: &BookingContext<'_>) -> Value {
    let status = cx.status;
    let live = matches!(status, OctoStatus::OnHold | OctoStatus::Confirmed);
    let availability = match (cx.product, b.date) {
        (Some(p), Some(date)) => {
            let day = Day {
                date,
                capacity: p.capacity,
                taken: 0,
                open: true,
            };
            availability(p, cx.tz, &day, 0, Capabilities::default())
        }
        _ => Value::Null,
    };
    let cancellation = (status == OctoStatus::Cancelled).then(|| {
        json!({
            "refund": if b.confirmed_at.is_some() { "FULL" } else { "NONE" },
            "reason": b.cancel_reason,
            "utcCancelledAt": utc(b.cancelled_at.unwrap_or(b.updated_at)),
        })
    });
    // Each ticket's price: its line's total shared out (the remainder on
    // the first tickets), its unit's price before discounts.
    let mut seen: Vec<(String, i64)> = Vec::new();
    let items: Vec<Value> = b
        .unit_items
        .iter()
        .map(|u| {
            let mut v = json!({
                "uuid": u.uuid,
                "resellerReference": u.reseller_reference,
                "supplierReference": u.supplier_reference,
                "unitId": u.unit_id,
                "status": status,
                "utcRedeemedAt": null,
                "contact": contact(&u.contact),
                "ticket": null,
            });
            if cx.caps.pricing
                && let Some(l) = cx.lines.iter().find(|l| l.unit_id == u.unit_id)
            {
                let n = match seen.iter_mut().find(|(id, _)| *id == u.unit_id) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        seen.push((u.unit_id.clone(), 0));
                        0
                    }
                };
                let q = i64::from(l.quantity.max(1));
                let share = l.line_total.amount / q + i64::from(n < l.line_total.amount % q);
                v["pricing"] = pricing(l.unit_price, Money::new(share, l.line_total.currency));
            }
            v
        })
        .collect();
    let mut v = json!({
        "id": b.uuid,
        "uuid": b.uuid,
        "testMode": b.test_mode,
        "resellerReference": b.reseller_reference,
        "supplierReference": b.uuid,
        "status": status,
        "utcCreatedAt": utc(b.created_at),
        "utcUpdatedAt": utc(b.updated_at),
        "utcExpiresAt": (status == OctoStatus::OnHold || status == OctoStatus::Expired).then(|| utc(b.expires_at)),
        "utcRedeemedAt": null,
        "utcConfirmedAt": b.confirmed_at.map(utc),
        "productId": b.product_id,
        "optionId": DEFAULT_OPTION,
        "cancellable": live,
        "cancellation": cancellation,
        "freesale": cx.product.is_none_or(|p| p.capacity.is_none()),
        "availabilityId": b.date.map(|d| availability_id(cx.tz, d)),
        "availability": availability,
        "contact": contact(&b.contact),
        "notes": b.notes,
        "deliveryMethods": ["TICKET"],
        "voucher": null,
        "unitItems": items,
    });
    if cx.caps.pricing
        && let Some(first) = cx.lines.first()
    {
        let currency = first.line_total.currency;
        let original: i64 = cx
            .lines
            .iter()
            .map(|l| l.unit_price.amount * i64::from(l.quantity))
            .sum();
        let retail: i64 = cx.lines.iter().map(|l| l.line_total.amount).sum();
        v["pricing"] = pricing(Money::new(original, currency), Money::new(retail, currency));
    }
    let _ = cx.now;
    v
}
