//! Orders: `POST /orders`, `GET /orders/{id}`, `POST /orders/{id}/payments`,
//! `POST /orders/{id}/cancel`. Each change is one store transaction (see
//! `platform::store::checkout_repo`): seats, memberships and gift-card value
//! move together with the order or not at all. Lost races are retried on
//! fresh reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use domain::checkout::CheckoutError;
use domain::checkout::catalogue::{Catalogue, ProductKind};
use domain::checkout::membership::{
    Contact, Membership, MembershipStatus, period_for, renewal_starts,
};
use domain::checkout::order::{
    GiftCardCharge, ItemRequest, Order, OrderLine, OrderRequest, OrderStatus, RecordedPayment,
    Refund,
};
use domain::checkout::payment::{
    CheckedPart, PaymentMethod, PaymentMode, PaymentPart, check_payment,
};
use domain::checkout::ports::CheckoutStore;
use domain::checkout::pricing::{Buyer, LineRequest, Redeeming, price};
use domain::idempotency::fingerprint;
use domain::roster::discount::Membership as ClubMembership;
use domain::roster::service::{enabled_tiers, recognise};
use domain::time::local_date;
use domain::voucher::ports::VoucherStore;
use domain::voucher::rules::{self, Actor, RedeemRequest, ReverseRequest};
use domain::voucher::{Redemption, Reservation, Voucher, VoucherCode, VoucherError, VoucherStatus};
use domain::{Email, Money, PropertyId};
use http::{HeaderMap, StatusCode};
use platform::Store;
use platform::http::idempotent::{Outcome, json_response};
use platform::http::{ApiError, ApiJson, Caller, Idempotent};
use platform::store::Retry;
use platform::store::checkout_repo::{Booking, OrderTx, Seats, StoredOrder};
use serde::Deserialize;
use utoipa::ToSchema;

const ATTEMPTS: u32 = 40;

fn busy() -> ApiError {
    ApiError::unavailable("order kept losing races; retry with the same uuid")
}

fn new_reference() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let s: String = (0..10)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("MEM-{s}")
}

/// Follows renewals: an old reference resolves to the current membership.
pub async fn resolve(
    store: &Store,
    p: &PropertyId,
    reference: &str,
) -> Result<Option<(Membership, i64)>, ApiError> {
    let mut current = store.membership(p, reference).await?;
    for _ in 0..10 {
        match &current {
            Some((m, _)) if m.status == MembershipStatus::Renewed => match &m.renewed_by {
                Some(next) => current = store.membership(p, next).await?,
                None => break,
            },
            _ => break,
        }
    }
    Ok(current)
}

/// Most periods a renewal chain is followed through.
const MAX_CHAIN: usize = 100;

/// A membership's renewal chain, oldest period first, from any reference
/// in it (empty when the reference is unknown).
pub async fn chain(
    store: &Store,
    p: &PropertyId,
    reference: &str,
) -> Result<Vec<(Membership, i64)>, ApiError> {
    let Some(start) = store.membership(p, reference).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut prev = start.0.renews.clone();
    while let Some(r) = prev.take() {
        if out.len() >= MAX_CHAIN {
            break;
        }
        if let Some(m) = store.membership(p, &r).await? {
            prev = m.0.renews.clone();
            out.push(m);
        }
    }
    out.reverse();
    let mut next = start.0.renewed_by.clone();
    out.push(start);
    while let Some(r) = next.take() {
        if out.len() >= 2 * MAX_CHAIN {
            break;
        }
        if let Some(m) = store.membership(p, &r).await? {
            next = m.0.renewed_by.clone();
            out.push(m);
        }
    }
    Ok(out)
}

fn membership_not_found() -> CheckoutError {
    CheckoutError::MembershipNotFound("no such membership")
}

fn actor(caller: &Caller) -> Actor<'_> {
    Actor {
        partner: &caller.partner.id,
        property: &caller.property,
        now: Utc::now(),
    }
}

/// Plans the gift-card redemptions of `parts` into `writes`.
async fn gift_cards(
    store: &Store,
    writes: &mut OrderTx,
    caller: &Caller,
    order_id: &str,
    guest: Option<String>,
    test_mode: bool,
    parts: &[CheckedPart],
) -> Result<Vec<Option<GiftCardCharge>>, ApiError> {
    let mut charges = Vec::new();
    for part in parts {
        let p = &part.part;
        if p.method != PaymentMethod::GiftCard {
            charges.push(None);
            continue;
        }
        let raw = p.gift_card_code.as_deref().unwrap_or_default();
        let code =
            VoucherCode::lookup(raw).map_err(|_| VoucherError::NotFound { mistyped: true })?;
        let may_see =
            |i: &domain::PropertyId| rules::visible_to(i, &caller.property, &caller.partner);
        let issuer = store.issuer_for(&code, &caller.property, &may_see).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let req = RedeemRequest {
            amount: Some(p.amount),
            reservation: Reservation {
                number: order_id.to_owned(),
                arrival: None,
                departure: None,
                guest_name: guest.clone(),
            },
            test_mode,
        };
        let rule = |v: &Voucher, _: Option<&Redemption>, now| {
            let a = Actor {
                now,
                ..actor(caller)
            };
            let mut c = rules::redeem(v, &req, &id, &a)?;
            // Marked as the order's: given back only by cancelling it.
            if let Some(r) = &mut c.redemption {
                r.order_id = Some(order_id.to_owned());
            }
            Ok(c)
        };
        store
            .plan_gift_card(writes, &issuer, &code, None, &rule)
            .await?;
        charges.push(Some(GiftCardCharge {
            issuer: issuer.to_string(),
            code: code.as_str().to_owned(),
            redemption_id: id,
        }));
    }
    Ok(charges)
}

fn guest_name(c: &Contact) -> Option<String> {
    let n = [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!n.is_empty()).then_some(n)
}

fn check_uuid(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CheckoutError::InvalidField("uuid: 1-64 characters of A-Z, a-z, 0-9, '-'").into())
    }
}

/// Everything an order attempt decided, ready to commit.
pub struct Plan {
    pub order: Order,
    pub writes: OrderTx,
}

/// Plans an order: prices it, takes its seats (`hold`: the reservation
/// whose held seats the order takes over), sells or redeems memberships and
/// takes gift-card value, all as writes of one transaction.
pub async fn plan(
    store: &Store,
    caller: &Caller,
    req: &OrderRequest,
    hold: Option<&str>,
) -> Result<Plan, ApiError> {
    let p = &caller.property.id;
    // Products and the club roster are the live property's, in test mode too.
    let live = &caller.live_property();
    let tz = caller.property.time_zone;
    let now = store.clock().now();
    let today = local_date(tz, now);
    req.check_dates(today)?;
    let mut catalogue = Catalogue::new();
    for item in &req.items {
        if !catalogue.contains_key(&item.product_id)
            && let Some(prod) = store.product(live, &item.product_id).await?
        {
            catalogue.insert(prod.id.clone(), prod);
        }
    }
    // The membership being redeemed: the period of its renewal chain that
    // covers the visit, checked against each visit and its order's payment.
    let redeeming = match &req.membership_reference {
        Some(r) => {
            let visit = req.items.iter().find_map(|i| i.date).unwrap_or(today);
            let mut periods = chain(store, p, r).await?;
            let found = period_for(
                &periods.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
                visit,
            )
            .ok_or_else(membership_not_found)?;
            let (m, v) = periods.swap_remove(found);
            for item in &req.items {
                m.check_use(item.date.unwrap_or(today), req.test_mode)?;
            }
            let product = store
                .product(live, &m.product_id)
                .await?
                .ok_or_else(|| ApiError::internal("membership product missing"))?;
            if let Some((sold, _)) = store.stored_order(p, &m.order_id).await? {
                m.check_paid(sold.order.balance_due.amount, product.usable_before_payment)?;
            }
            Some((m, v, product))
        }
        None => None,
    };
    let contact = match &redeeming {
        Some((m, _, _)) => req.contact.or(&m.contact),
        None => req.contact.clone(),
    };
    let mut buyer = Buyer::default();
    if let Some(email) = contact.email.as_deref().and_then(|e| Email::parse(e).ok())
        && let Some(found) = recognise(store, live, &email).await?.member
    {
        buyer.club = ClubMembership {
            member: true,
            tiers: found.tiers.into_iter().collect(),
        };
        buyer.enabled_tiers = enabled_tiers(store, live).await?;
    }
    let lines: Vec<LineRequest> = req
        .items
        .iter()
        .map(|i| LineRequest {
            product_id: i.product_id.clone(),
            unit_id: i.unit_id.clone(),
            quantity: i.quantity,
        })
        .collect();
    let benefit_uses = redeeming
        .as_ref()
        .map(|(m, _, _)| m.benefit_uses.clone())
        .unwrap_or_default();
    let redeem = redeeming.as_ref().map(|(_, _, prod)| Redeeming {
        benefits: &prod.benefits,
        uses: &benefit_uses,
    });
    let priced = price(
        &catalogue,
        &lines,
        &buyer,
        req.promo_code.as_deref(),
        redeem,
    )?;
    let (parts, balance_due) = check_payment(req.payment.mode, &req.payment.parts, priced.total)?;

    let mut writes = OrderTx::default();
    // Capacity per (product, date), counted once per pair.
    let mut wanted: BTreeMap<(String, NaiveDate), u32> = BTreeMap::new();
    for item in &req.items {
        if let Some(prod) = catalogue.get(&item.product_id)
            && prod.capacity.is_some()
        {
            let date = item.date.ok_or(CheckoutError::InvalidOrder(
                "items of events with capacity need a date",
            ))?;
            *wanted.entry((item.product_id.clone(), date)).or_default() += item.quantity;
        }
    }
    for ((product, date), qty) in &wanted {
        let cap = catalogue
            .get(product)
            .and_then(|x| x.capacity)
            .unwrap_or(u32::MAX);
        let (seats, version) = store.seats(p, product, *date, req.test_mode).await?;
        // Reservations past their expiry hold nothing.
        let mut seats = seats.at(now);
        if let Some(h) = hold {
            seats.release(h);
        }
        if seats.taken() + qty > cap {
            return Err(CheckoutError::SoldOut {
                left: cap.saturating_sub(seats.taken()),
                date: *date,
            }
            .into());
        }
        store.put_seats(
            &mut writes,
            p,
            product,
            *date,
            req.test_mode,
            Seats {
                sold: seats.sold + qty,
                holds: seats.holds,
            },
            version,
        );
    }
    // Memberships sold, one per ticket.
    let mut order_lines = Vec::with_capacity(req.items.len());
    for (item, priced_line) in req.items.iter().zip(priced.lines) {
        let mut sold = Vec::new();
        if let Some(prod) = catalogue
            .get(&item.product_id)
            .filter(|x| x.kind == ProductKind::Membership)
        {
            sold = sell_memberships(store, p, req, item, prod, &contact, (today, now)).await?;
            for (m, renewed) in &sold {
                store.put_membership(&mut writes, p, m, None);
                if let Some((old, v)) = renewed {
                    store.put_membership(&mut writes, p, old, Some(*v));
                }
            }
        }
        order_lines.push(OrderLine {
            priced: priced_line,
            date: item.date,
            memberships: sold.into_iter().map(|(m, _)| m).collect(),
        });
    }
    let charges = gift_cards(
        store,
        &mut writes,
        caller,
        &req.uuid,
        guest_name(&contact),
        req.test_mode,
        &parts,
    )
    .await?;
    let payments = parts
        .into_iter()
        .zip(charges)
        .map(|(checked, gift_card)| RecordedPayment {
            checked,
            at: now,
            gift_card,
        })
        .collect();
    let order = Order {
        id: req.uuid.clone(),
        status: if balance_due.amount == 0 {
            OrderStatus::Confirmed
        } else {
            OrderStatus::AwaitingPayment
        },
        test_mode: req.test_mode,
        contact,
        membership_reference: redeeming.as_ref().map(|(m, _, _)| m.reference.clone()),
        promo_code: req.promo_code.clone(),
        source: req.source.clone(),
        reseller: req.reseller.clone(),
        skip_confirmation_email: req.skip_confirmation_email,
        email_receipt: req.email_receipt,
        lines: order_lines,
        subtotal: priced.subtotal,
        discount_total: priced.discount_total,
        total: priced.total,
        payments,
        balance_due,
        created_at: now,
        benefit_uses: priced.benefit_uses.clone(),
        refunds_due: Vec::new(),
    };
    // The redeemed membership: benefit uses and the booking.
    if let Some((mut m, v, _)) = redeeming {
        for (i, n) in &priced.benefit_uses {
            *m.benefit_uses.entry(*i).or_default() += n;
        }
        let booking = booking_of(&order, false);
        store.put_booking(&mut writes, p, &m.reference, &booking, true);
        store.put_membership(&mut writes, p, &m, Some(v));
    }
    Ok(Plan { order, writes })
}

/// The member-activity entry of an order.
fn booking_of(order: &Order, cancelled: bool) -> Booking {
    Booking {
        order_id: order.id.clone(),
        at: order.created_at,
        total: order.total,
        lines: order
            .lines
            .iter()
            .map(|l| {
                format!(
                    "{} × {}/{}",
                    l.priced.quantity, l.priced.product_id, l.priced.unit_id
                )
            })
            .collect(),
        cancelled,
    }
}

type Sold = (Membership, Option<(Membership, i64)>);

async fn sell_memberships(
    store: &Store,
    p: &PropertyId,
    req: &OrderRequest,
    item: &ItemRequest,
    prod: &domain::checkout::catalogue::Product,
    contact: &Contact,
    (today, now): (NaiveDate, chrono::DateTime<Utc>),
) -> Result<Vec<Sold>, ApiError> {
    let validity = prod
        .validity
        .ok_or_else(|| ApiError::internal("membership without validity"))?;
    if item.renews.is_some() && item.quantity != 1 {
        return Err(CheckoutError::InvalidOrder("a renewal renews one membership").into());
    }
    let mut renewed = match &item.renews {
        Some(old) => Some(resolve(store, p, old).await?.ok_or(
            CheckoutError::MembershipNotFound("the membership to renew does not exist"),
        )?),
        None => None,
    };
    // Test memberships renew in test orders only, live ones in live orders.
    if renewed
        .as_ref()
        .is_some_and(|(m, _)| m.test_mode != req.test_mode)
    {
        return Err(CheckoutError::TestModeMismatch.into());
    }
    // A renewal without its own Valid From keeps the paid time left.
    let valid_from = item
        .valid_from
        .or_else(|| renewed.as_ref().map(|(m, _)| renewal_starts(m, today)))
        .unwrap_or(today);
    let expires_on = validity
        .expires_on(valid_from)
        .ok_or(CheckoutError::InvalidField("valid_from: out of range"))?;
    let mut out = Vec::new();
    for n in 0..item.quantity as usize {
        let member = item
            .members
            .get(n)
            .map(|m| m.or(contact))
            .unwrap_or_else(|| contact.clone());
        let missing = member.missing(&prod.member_fields);
        if !missing.is_empty() {
            let missing = missing.into_iter().map(str::to_owned).collect();
            return Err(CheckoutError::MemberFieldsMissing(missing).into());
        }
        let reference = new_reference();
        let renewed = renewed.take().map(|(mut m, v)| {
            m.status = MembershipStatus::Renewed;
            m.renewed_by = Some(reference.clone());
            (m, v)
        });
        let m = Membership {
            reference,
            product_id: prod.id.clone(),
            order_id: req.uuid.clone(),
            valid_from,
            expires_on,
            contact: member,
            test_mode: req.test_mode,
            status: MembershipStatus::Active,
            renews: renewed.as_ref().map(|(old, _)| old.reference.clone()),
            renewed_by: None,
            benefit_uses: BTreeMap::new(),
            sold_at: now,
        };
        out.push((m, renewed));
    }
    Ok(out)
}

fn replay(stored: &StoredOrder) -> Response {
    let mut r = json_response(StatusCode::CREATED, stored.rendered.clone());
    r.headers_mut().insert(
        "idempotency-replayed",
        http::HeaderValue::from_static("true"),
    );
    r
}

/// Places an order. The `uuid` is its idempotency key: the same uuid with
/// the same body answers the same bytes; another body is 422.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/orders",
    params(("property" = String, Path)),
    request_body = OrderRequest,
    responses(
        (status = 201, body = Order),
        (status = 400, body = platform::http::error::ErrorBody),
        (status = 422, body = platform::http::error::ErrorBody, description = "currency_mismatch, payment_mismatch, members_only_event, membership_expired, membership_not_yet_valid, membership_unpaid, test_mode_mismatch, benefit_limit_reached, sold_out, insufficient_balance, idempotency_key_reused"),
    ),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn place_order(
    State(store): State<Store>,
    caller: Caller,
    body: ApiJson<OrderRequest>,
) -> Result<Response, ApiError> {
    let mut req = body.value;
    req.test_mode = caller.test_mode;
    check_uuid(&req.uuid)?;
    req.check()?;
    let fp = fingerprint(&[b"order", body.canonical.as_bytes()]);
    let p = &caller.property.id;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        if let Some((stored, _)) = store.stored_order(p, &req.uuid).await? {
            return if stored.fingerprint == fp {
                Ok(replay(&stored))
            } else {
                Err(CheckoutError::UuidReused.into())
            };
        }
        let Plan { order, mut writes } = plan(&store, &caller, &req, None).await?;
        let rendered = serde_json::to_string(&order.answer()).map_err(ApiError::internal)?;
        let stored = StoredOrder {
            fingerprint: fp.clone(),
            order,
            rendered,
        };
        store.put_order(&mut writes, p, &stored, None);
        // Not committed: the uuid was taken meanwhile, or a seat, membership
        // or gift card moved; read again and decide again.
        if store.commit_order(writes).await? {
            tracing::info!(order = %stored.order.id, lines = stored.order.lines.len(), "order placed");
            return Ok(json_response(StatusCode::CREATED, stored.rendered));
        }
    }
    Err(busy())
}

/// An order.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/orders/{id}",
    params(("property" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn get_order(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (stored, _) = store
        .stored_order(&caller.property.id, &path.1)
        .await?
        .ok_or(CheckoutError::OrderNotFound)?;
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&stored.order.answer()).map_err(ApiError::internal)?,
    ))
}

/// An order as it is now, with the version its change is conditioned on.
async fn order_to_change(
    store: &Store,
    p: &PropertyId,
    id: &str,
) -> Result<(StoredOrder, i64), ApiError> {
    store
        .stored_order(p, id)
        .await?
        .ok_or_else(|| CheckoutError::OrderNotFound.into())
}

#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentsBody {
    pub parts: Vec<PaymentPart>,
}

/// Pays (part of) the balance of a pay-later order. Needs an `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/orders/{id}/payments",
    params(("property" = String, Path), ("id" = String, Path)),
    request_body = PaymentsBody,
    responses((status = 200, body = Order), (status = 422, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn pay(
    State(store): State<Store>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: ApiJson<PaymentsBody>,
) -> Result<Response, ApiError> {
    let route = format!("/orders/{}/payments", path.1);
    let idem = Idempotent::new(&store, &caller, "checkout", &route, &body.canonical).required();
    let (store, caller, body, path) = (&store, &caller, &body, &path);
    idem.run(&headers, |lease| async move {
        let p = &caller.property.id;
        let mut retry = Retry::new(ATTEMPTS);
        while retry.next().await.is_some() {
            let (mut stored, version) = order_to_change(store, p, &path.1).await?;
            let o = &mut stored.order;
            if o.status != OrderStatus::AwaitingPayment {
                return Err(CheckoutError::NothingDue.into());
            }
            let (parts, left) =
                check_payment(PaymentMode::PayLater, &body.value.parts, o.balance_due)?;
            let mut writes = OrderTx::default();
            let charges = gift_cards(
                store,
                &mut writes,
                caller,
                &o.id,
                guest_name(&o.contact),
                o.test_mode,
                &parts,
            )
            .await?;
            let now = store.clock().now();
            o.payments
                .extend(parts.into_iter().zip(charges).map(|(checked, gift_card)| {
                    RecordedPayment {
                        checked,
                        at: now,
                        gift_card,
                    }
                }));
            o.balance_due = left;
            if left.amount == 0 {
                o.status = OrderStatus::Confirmed;
            }
            let answer = Outcome::json(StatusCode::OK, &stored.order.answer());
            store.put_order(&mut writes, p, &stored, Some(version));
            if let Some(l) = &lease {
                let response = domain::idempotency::StoredResponse {
                    status: 200,
                    body: answer.body.clone(),
                };
                store.put_answer(&mut writes, l, &response, Idempotent::policy());
            }
            if store.commit_order(writes).await? {
                return Ok(if lease.is_some() {
                    answer.stored()
                } else {
                    answer
                });
            }
        }
        Err(busy())
    })
    .await
}

/// Cancels an order: seats and membership benefit uses come back,
/// memberships it sold end, gift-card parts go back onto their cards
/// through ledger reversals. `refunds_due` lists what to pay back by other
/// means: card, cash and other parts, and gift-card parts whose card was
/// cancelled or expired meanwhile.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/orders/{id}/cancel",
    params(("property" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = platform::http::error::ErrorBody), (status = 422, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn cancel(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let order = cancel_order(&store, &caller, &path.1).await?;
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&order.answer()).map_err(ApiError::internal)?,
    ))
}

/// Cancels the order `id` (see [`cancel`]); cancelling twice changes
/// nothing. Returns the order as stored.
pub async fn cancel_order(store: &Store, caller: &Caller, id: &str) -> Result<Order, ApiError> {
    let p = &caller.property.id;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (mut stored, version) = order_to_change(store, p, id).await?;
        if stored.order.status == OrderStatus::Cancelled {
            return Ok(stored.order);
        }
        let mut writes = OrderTx::default();
        // Seats back.
        let mut seats: BTreeMap<(String, NaiveDate), u32> = BTreeMap::new();
        for l in &stored.order.lines {
            if let Some(d) = l.date {
                *seats.entry((l.priced.product_id.clone(), d)).or_default() += l.priced.quantity;
            }
        }
        for ((product, date), qty) in seats {
            let test = stored.order.test_mode;
            let (s, v) = store.seats(p, &product, date, test).await?;
            if v.is_some() {
                let s = s.at(store.clock().now());
                store.put_seats(
                    &mut writes,
                    p,
                    &product,
                    date,
                    test,
                    Seats {
                        sold: s.sold.saturating_sub(qty),
                        holds: s.holds,
                    },
                    v,
                );
            }
        }
        // Memberships sold end; the redeemed one gets its tickets back.
        for l in &stored.order.lines {
            for sold in &l.memberships {
                if let Some((mut m, v)) = store.membership(p, &sold.reference).await? {
                    m.status = MembershipStatus::Cancelled;
                    store.put_membership(&mut writes, p, &m, Some(v));
                }
                // A cancelled renewal: the renewed period is current again.
                if let Some(old) = &sold.renews
                    && let Some((mut m, v)) = store.membership(p, old).await?
                    && m.renewed_by.as_deref() == Some(sold.reference.as_str())
                {
                    m.renewed_by = None;
                    if m.status == MembershipStatus::Renewed {
                        m.status = MembershipStatus::Active;
                    }
                    store.put_membership(&mut writes, p, &m, Some(v));
                }
            }
        }
        if let Some(r) = &stored.order.membership_reference
            && let Some((mut m, v)) = store.membership(p, r).await?
        {
            for (i, n) in &stored.order.benefit_uses {
                if let Some(u) = m.benefit_uses.get_mut(i) {
                    *u = u.saturating_sub(*n);
                }
            }
            store.put_membership(&mut writes, p, &m, Some(v));
            let booking = booking_of(&stored.order, true);
            store.put_booking(&mut writes, p, r, &booking, false);
        }
        // Gift-card value back through the ledger; what cannot go back
        // (the card was cancelled or expired meanwhile) and every other
        // part is owed by other means.
        let mut refunds = Vec::new();
        for pay in &stored.order.payments {
            let part = &pay.checked.part;
            let Some(g) = &pay.gift_card else {
                refunds.push(Refund {
                    method: part.method,
                    amount: part.amount,
                    reference: part.reference.clone(),
                });
                continue;
            };
            let issuer = PropertyId::parse(&g.issuer)?;
            let code = VoucherCode::lookup(&g.code)
                .map_err(|_| ApiError::internal("stored gift card code unreadable"))?;
            let left = AtomicI64::new(part.amount.amount);
            let req = ReverseRequest {
                amount: None,
                reason: Some("order cancelled".into()),
            };
            let rule = |v: &Voucher, r: Option<&Redemption>, now| {
                let r = r.ok_or(VoucherError::RedemptionNotFound)?;
                left.store(r.reversible().amount, Ordering::Relaxed);
                if matches!(
                    v.status_at(now),
                    VoucherStatus::Expired | VoucherStatus::WrittenOff
                ) {
                    return Err(VoucherError::Expired {
                        valid_until: v.valid_until,
                    });
                }
                rules::reverse(
                    v,
                    r,
                    &req,
                    &Actor {
                        now,
                        ..actor(caller)
                    },
                )
            };
            match store
                .plan_gift_card(&mut writes, &issuer, &code, Some(&g.redemption_id), &rule)
                .await
            {
                Ok(_) => {}
                // Given back already (a reversal before orders owned their
                // redemptions): nothing left to return.
                Err(VoucherError::ReversalExceedsRedemption { reversible })
                    if reversible.amount == 0 => {}
                Err(VoucherError::Cancelled | VoucherError::Expired { .. }) => {
                    refunds.push(Refund {
                        method: PaymentMethod::GiftCard,
                        amount: Money::new(left.load(Ordering::Relaxed), part.amount.currency),
                        reference: Some(code.masked()),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        stored.order.refunds_due = refunds;
        stored.order.status = OrderStatus::Cancelled;
        stored.order.balance_due = Money::zero(stored.order.total.currency);
        store.put_order(&mut writes, p, &stored, Some(version));
        if store.commit_order(writes).await? {
            return Ok(stored.order);
        }
    }
    Err(busy())
}
