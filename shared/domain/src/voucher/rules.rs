//! Every voucher change as a pure function: the current state and a request
//! in, the new state and the ledger activities that explain it out. The
//! store commits both in one transaction, or neither.
//!
//! Common order of checks for spending (redeem, hold): the accepting
//! property, test/live mode, the voucher's status and validity, the
//! currency, zero amounts, the package rule, then the available balance.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::VoucherError;
use super::code::VoucherCode;
use super::model::{
    Activity, ActivityKind, ArticleType, Buyer, Hold, Redemption, Reservation, Voucher,
    VoucherStatus,
};
use crate::{Money, Partner, PartnerId, Property, PropertyId, ValidationError};

/// The largest amount one voucher or request may carry, in minor units, so
/// sums can never overflow.
pub const MAX_AMOUNT: i64 = crate::money::MAX_AMOUNT;
/// Open holds per voucher (they live in the voucher's record).
pub const MAX_OPEN_HOLDS: usize = 20;
/// Past redemptions one imported voucher may bring (one transaction).
pub const MAX_IMPORTED_REDEMPTIONS: usize = 90;
/// How far ahead a hold may expire.
pub const MAX_HOLD_DAYS: i64 = 400;

/// Who acts, where, when.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub partner: &'a PartnerId,
    pub property: &'a Property,
    pub now: DateTime<Utc>,
}

/// The outcome of a rule: the new voucher and what the ledger gains.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub voucher: Voucher,
    pub activities: Vec<Activity>,
    /// A redemption created (redeem, capture) or updated (reverse).
    pub redemption: Option<Redemption>,
    /// A hold placed: the store also records where to find it by id.
    pub new_hold: Option<Hold>,
}

impl Change {
    fn new(voucher: Voucher) -> Self {
        Self {
            voucher,
            activities: Vec::new(),
            redemption: None,
            new_hold: None,
        }
    }

    /// Appends an activity changing the balance by `delta`.
    fn record(&mut self, kind: ActivityKind, delta: i64, at: DateTime<Utc>) -> &mut Activity {
        let v = &mut self.voucher;
        v.balance.amount += delta;
        v.seq += 1;
        self.activities.push(Activity {
            id: v.seq,
            kind,
            amount: Money::new(delta, v.currency),
            held: None,
            balance_after: v.balance,
            at,
            partner: None,
            accepting_property: None,
            reservation: None,
            redemption_id: None,
            hold_id: None,
            note: None,
        });
        let last = self.activities.len() - 1;
        &mut self.activities[last]
    }

    /// Drops holds that expired, each with a `release` activity.
    fn release_expired_holds(&mut self, now: DateTime<Utc>) {
        let (live, expired): (Vec<Hold>, Vec<Hold>) = std::mem::take(&mut self.voucher.holds)
            .into_iter()
            .partition(|h| h.is_live(now));
        self.voucher.holds = live;
        for h in expired {
            let a = self.record(ActivityKind::Release, 0, now);
            a.held = Some(h.amount);
            a.hold_id = Some(h.id);
            a.partner = Some(h.partner);
            a.accepting_property = Some(h.property);
            a.note = Some("hold expired".into());
        }
    }
}

fn acted(a: &mut Activity, actor: &Actor<'_>) {
    a.partner = Some(actor.partner.clone());
    a.accepting_property = Some(actor.property.id.clone());
}

fn invalid(field: &'static str, reason: &str) -> VoucherError {
    VoucherError::Invalid(ValidationError::new(field, reason))
}

/// Checks an amount in a request: the voucher's currency, positive, bounded.
fn check_amount(v: &Voucher, amount: Money, field: &'static str) -> Result<(), VoucherError> {
    if amount.currency != v.currency {
        return Err(VoucherError::CurrencyMismatch {
            expected: v.currency,
        });
    }
    if amount.amount < 0 || amount.amount > MAX_AMOUNT {
        return Err(invalid(
            field,
            "must be between 0 and 100000000000 minor units",
        ));
    }
    if amount.amount == 0 {
        return Err(VoucherError::ZeroValue);
    }
    Ok(())
}

/// May vouchers of `issuer` be redeemed at `at`? At the issuer, and at
/// properties that accept the issuer (portal systems).
pub fn accepted_at(issuer: &PropertyId, at: &Property) -> bool {
    *issuer == at.id || at.accepts_vouchers_of.contains(issuer)
}

/// May this caller learn that a voucher of `issuer` exists? When its
/// property issued or accepts it, or the partner also acts for the issuer.
/// Everyone else is told "not found".
pub fn visible_to(issuer: &PropertyId, at: &Property, partner: &Partner) -> bool {
    accepted_at(issuer, at) || partner.may_act_for(issuer)
}

/// Which issuer's voucher a caller at `at` means by a code that `issuers`
/// hold. Generated codes have one issuer; a printed code (external,
/// imported, pre-printed) may be held by several, each its own voucher.
/// The caller's own property first, then the one issuer it accepts; with
/// none accepted, the one issuer it may see. Issuers the caller may not see
/// count as absent, so nothing tells it they exist: none left is "not
/// found", several are `CodeAmbiguous` listing only the ones it may see.
pub fn resolve_issuer<F: Fn(&PropertyId) -> bool + ?Sized>(
    issuers: &[PropertyId],
    at: &Property,
    may_see: &F,
) -> Result<PropertyId, VoucherError> {
    let mut visible: Vec<PropertyId> = issuers.iter().filter(|i| may_see(i)).cloned().collect();
    visible.sort();
    visible.dedup();
    if visible.contains(&at.id) {
        return Ok(at.id.clone());
    }
    let accepted: Vec<&PropertyId> = visible
        .iter()
        .filter(|i| at.accepts_vouchers_of.contains(i))
        .collect();
    match (accepted.as_slice(), visible.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], []) => Err(VoucherError::NotFound { mistyped: false }),
        ([], [one]) => Ok(one.clone()),
        _ => Err(VoucherError::CodeAmbiguous { issuers: visible }),
    }
}

/// Did this PMS partner pick the voucher up (acknowledge its order) before?
/// `acked` is its pickup cursor at `at`: the issuer's feed, or the feed of a
/// hotel that picks up the issuer's orders (portal pickup).
pub fn picked_up(v: &Voucher, at: &PropertyId, acked: u64) -> bool {
    let seq = if v.issuer == *at {
        v.order_seq
    } else {
        v.pickup_feeds.get(at).copied()
    };
    seq.is_some_and(|s| s <= acked)
}

/// Why the voucher's status alone forbids spending it, if it does.
fn status_refusal(v: &Voucher, now: DateTime<Utc>) -> Option<VoucherError> {
    match v.status_at(now) {
        VoucherStatus::Active => None,
        VoucherStatus::Pending => Some(VoucherError::ZeroValue),
        VoucherStatus::Redeemed => Some(VoucherError::InsufficientBalance {
            available: v.money(0),
        }),
        VoucherStatus::Blocked => Some(VoucherError::Blocked),
        VoucherStatus::Cancelled => Some(VoucherError::Cancelled),
        VoucherStatus::Expired | VoucherStatus::WrittenOff => Some(VoucherError::Expired {
            valid_until: v.valid_until,
        }),
    }
}

/// Everything but the amount: may this actor spend this voucher now?
fn check_spendable(v: &Voucher, actor: &Actor<'_>, test_mode: bool) -> Result<(), VoucherError> {
    if !accepted_at(&v.issuer, actor.property) {
        return Err(VoucherError::NotRedeemableHere);
    }
    if test_mode != v.test_mode {
        return Err(VoucherError::TestModeMismatch {
            voucher_test_mode: v.test_mode,
        });
    }
    match status_refusal(v, actor.now) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The amount to take: the request's, or the whole available balance.
fn spend_amount(
    v: &Voucher,
    requested: Option<Money>,
    now: DateTime<Utc>,
) -> Result<Money, VoucherError> {
    let available = v.available_at(now);
    let package = v.article_type == ArticleType::Package;
    let amount = match requested {
        Some(a) => {
            check_amount(v, a, "amount")?;
            if package && a.amount != v.balance.amount {
                return Err(VoucherError::PackageRequiresFullRedemption { balance: v.balance });
            }
            a
        }
        None if package => v.balance,
        None => available,
    };
    if amount.amount <= 0 || amount.amount > available.amount {
        return Err(VoucherError::InsufficientBalance {
            available: available.max_zero(),
        });
    }
    Ok(amount)
}

trait MaxZero {
    fn max_zero(self) -> Self;
}

impl MaxZero for Money {
    fn max_zero(self) -> Self {
        Money::new(self.amount.max(0), self.currency)
    }
}

/// Is `v` redeemable at `actor`'s property now, and if not, why? (The live
/// status answer; a request's own test mode is assumed to match.)
pub fn assess(v: &Voucher, at: &Property, now: DateTime<Utc>) -> Option<VoucherError> {
    if !accepted_at(&v.issuer, at) {
        return Some(VoucherError::NotRedeemableHere);
    }
    if let Some(e) = status_refusal(v, now) {
        return Some(e);
    }
    let available = v.available_at(now);
    if available.amount <= 0 {
        return Some(VoucherError::InsufficientBalance {
            available: available.max_zero(),
        });
    }
    if v.article_type == ArticleType::Package && available.amount < v.balance.amount {
        return Some(VoucherError::InsufficientBalance { available });
    }
    None
}

// ---- issue -----------------------------------------------------------------

/// `POST /vouchers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub article_type: ArticleType,
    /// The value sold; 0 only for a gift card loaded later.
    pub value: Money,
    /// A code to use instead of a generated one (required for external and
    /// imported vouchers; pre-printed gift cards).
    #[serde(default)]
    pub code: Option<VoucherCode>,
    /// Last local day (in the issuer's zone) the voucher can be used.
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    #[serde(default)]
    pub order_ref: Option<String>,
    #[serde(default)]
    pub buyer: Option<Buyer>,
    /// What a package voucher is for (required for packages).
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub test_mode: bool,
}

fn check_text(field: &'static str, v: &Option<String>, max: usize) -> Result<(), VoucherError> {
    match v {
        Some(s) if s.trim().is_empty() || s.len() > max => Err(VoucherError::Invalid(
            ValidationError::new(field, format!("must be 1-{max} characters")),
        )),
        _ => Ok(()),
    }
}

/// Common checks of a new voucher's descriptive fields.
fn check_new(
    article_type: ArticleType,
    value: Money,
    issuer: &Property,
    package: &Option<String>,
    order_ref: &Option<String>,
    buyer: &Option<Buyer>,
) -> Result<(), VoucherError> {
    if value.currency != issuer.currency {
        return Err(VoucherError::CurrencyMismatch {
            expected: issuer.currency,
        });
    }
    if value.amount < 0 || value.amount > MAX_AMOUNT {
        return Err(invalid(
            "value",
            "must be between 0 and 100000000000 minor units",
        ));
    }
    match (article_type, package) {
        (ArticleType::Package, None) => {
            return Err(invalid(
                "package",
                "a package voucher describes its package",
            ));
        }
        (ArticleType::Package, _) => {}
        (_, Some(_)) => return Err(invalid("package", "only package vouchers have a package")),
        _ => {}
    }
    check_text("package", package, 500)?;
    check_text("order_ref", order_ref, 100)?;
    if let Some(b) = buyer {
        b.validate()?;
    }
    Ok(())
}

/// A new voucher with its `issue` activity. `generated` is used unless the
/// request brings its own code. Whether it enters the pickup feed is
/// [`in_pickup_feed`]; the store then sets `order_seq`.
pub fn issue(
    req: IssueRequest,
    generated: VoucherCode,
    actor: &Actor<'_>,
) -> Result<Change, VoucherError> {
    let issuer = actor.property;
    check_new(
        req.article_type,
        req.value,
        issuer,
        &req.package,
        &req.order_ref,
        &req.buyer,
    )?;
    if req.value.amount == 0 && req.article_type != ArticleType::GiftCard {
        return Err(VoucherError::ZeroValue);
    }
    if req.article_type.is_foreign() && req.code.is_none() {
        return Err(invalid(
            "code",
            "external and imported vouchers keep their own code",
        ));
    }
    if let Some(d) = req.valid_until
        && d < crate::time::local_date(issuer.time_zone, actor.now)
    {
        return Err(invalid("valid_until", "is in the past"));
    }
    let voucher = Voucher {
        code: req.code.unwrap_or(generated),
        article_type: req.article_type,
        issuer: issuer.id.clone(),
        time_zone: issuer.time_zone,
        currency: issuer.currency,
        initial_value: req.value,
        loaded: Money::zero(issuer.currency),
        balance: Money::zero(issuer.currency),
        status: VoucherStatus::Pending,
        valid_until: req.valid_until,
        order_ref: req.order_ref,
        buyer: req.buyer,
        package: req.package,
        test_mode: req.test_mode,
        issued_at: actor.now,
        order_seq: None,
        pickup_feeds: Default::default(),
        holds: Vec::new(),
        seq: 0,
        redemptions: 0,
    };
    let mut c = Change::new(voucher);
    let a = c.record(ActivityKind::Issue, req.value.amount, actor.now);
    acted(a, actor);
    c.voucher.status = c.voucher.settled_status();
    Ok(c)
}

/// Does a newly issued voucher go into its issuer's pickup feed? Value and
/// package vouchers sold here do; gift cards, external and imported
/// vouchers are the PMS's "Kode" path.
pub fn in_pickup_feed(v: &Voucher) -> bool {
    v.article_type.is_picked_up() && v.initial_value.amount > 0
}

// ---- load ------------------------------------------------------------------

/// `POST /vouchers/{code}/loads`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    pub amount: Money,
    #[serde(default)]
    pub test_mode: bool,
}

pub fn load(v: &Voucher, req: &LoadRequest, actor: &Actor<'_>) -> Result<Change, VoucherError> {
    if v.issuer != actor.property.id {
        return Err(VoucherError::NotIssuer);
    }
    if v.article_type != ArticleType::GiftCard {
        return Err(VoucherError::NotAGiftCard);
    }
    if req.test_mode != v.test_mode {
        return Err(VoucherError::TestModeMismatch {
            voucher_test_mode: v.test_mode,
        });
    }
    match v.status_at(actor.now) {
        VoucherStatus::Blocked => return Err(VoucherError::Blocked),
        VoucherStatus::Cancelled => return Err(VoucherError::Cancelled),
        VoucherStatus::Expired | VoucherStatus::WrittenOff => {
            return Err(VoucherError::Expired {
                valid_until: v.valid_until,
            });
        }
        _ => {}
    }
    check_amount(v, req.amount, "amount")?;
    if v.balance.amount + req.amount.amount > MAX_AMOUNT {
        return Err(invalid("amount", "the balance would exceed the maximum"));
    }
    let mut c = Change::new(v.clone());
    c.release_expired_holds(actor.now);
    c.voucher.loaded.amount += req.amount.amount;
    let a = c.record(ActivityKind::Load, req.amount.amount, actor.now);
    acted(a, actor);
    c.voucher.status = c.voucher.settled_status();
    Ok(c)
}

// ---- redeem ----------------------------------------------------------------

/// `POST /vouchers/{code}/redemptions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// Omitted (not `null`): the whole available balance. Package vouchers only whole.
    #[serde(default, deserialize_with = "crate::money::omitted_not_null")]
    #[schema(nullable = false)]
    pub amount: Option<Money>,
    pub reservation: Reservation,
    /// Test requests redeem only test vouchers, live only live.
    #[serde(default)]
    pub test_mode: bool,
}

pub fn redeem(
    v: &Voucher,
    req: &RedeemRequest,
    redemption_id: &str,
    actor: &Actor<'_>,
) -> Result<Change, VoucherError> {
    req.reservation.validate()?;
    check_spendable(v, actor, req.test_mode)?;
    let amount = spend_amount(v, req.amount, actor.now)?;
    let mut c = Change::new(v.clone());
    c.release_expired_holds(actor.now);
    let a = c.record(ActivityKind::Redeem, -amount.amount, actor.now);
    acted(a, actor);
    a.reservation = Some(req.reservation.clone());
    a.redemption_id = Some(redemption_id.to_owned());
    c.voucher.redemptions += 1;
    c.voucher.status = c.voucher.settled_status();
    c.redemption = Some(Redemption {
        id: redemption_id.to_owned(),
        amount,
        reversed: v.money(0),
        at: actor.now,
        property: actor.property.id.clone(),
        partner: actor.partner.clone(),
        reservation: req.reservation.clone(),
        hold_id: None,
        order_id: None,
    });
    Ok(c)
}

// ---- reverse ---------------------------------------------------------------

/// `POST /vouchers/{code}/redemptions/{id}/reversal`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    /// Omitted (not `null`): everything not reversed yet.
    #[serde(default, deserialize_with = "crate::money::omitted_not_null")]
    #[schema(nullable = false)]
    pub amount: Option<Money>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Gives value back — never more than the redemption took. Allowed on an
/// expired voucher (it undoes a booking); a written-off voucher gets the
/// value back as expired open value, for the next write-off run.
///
/// Only the property that made the redemption and the voucher's issuer may
/// reverse it. Whoever does, the reversal is booked against the property
/// that made the redemption (`accepting_property`), so settlement nets the
/// two; `partner` says who reversed it.
pub fn reverse(
    v: &Voucher,
    r: &Redemption,
    req: &ReverseRequest,
    actor: &Actor<'_>,
) -> Result<Change, VoucherError> {
    if r.property != actor.property.id && v.issuer != actor.property.id {
        return Err(VoucherError::RedemptionNotFound);
    }
    check_text("reason", &req.reason, 200)?;
    if v.status == VoucherStatus::Cancelled {
        return Err(VoucherError::Cancelled);
    }
    let reversible = r.reversible();
    let amount = match req.amount {
        Some(a) => {
            check_amount(v, a, "amount")?;
            a
        }
        None => reversible,
    };
    if amount.amount <= 0 || amount.amount > reversible.amount {
        return Err(VoucherError::ReversalExceedsRedemption { reversible });
    }
    if v.article_type == ArticleType::Package && amount != reversible {
        return Err(VoucherError::PackageRequiresFullRedemption {
            balance: reversible,
        });
    }
    let mut c = Change::new(v.clone());
    c.release_expired_holds(actor.now);
    let a = c.record(ActivityKind::Reverse, amount.amount, actor.now);
    a.partner = Some(actor.partner.clone());
    a.accepting_property = Some(r.property.clone());
    a.reservation = Some(r.reservation.clone());
    a.redemption_id = Some(r.id.clone());
    a.hold_id = r.hold_id.clone();
    a.note = req.reason.clone();
    c.voucher.status = match v.status {
        VoucherStatus::Blocked => VoucherStatus::Blocked,
        VoucherStatus::WrittenOff | VoucherStatus::Expired => VoucherStatus::Expired,
        _ => c.voucher.settled_status(),
    };
    let mut updated = r.clone();
    updated.reversed.amount += amount.amount;
    c.redemption = Some(updated);
    Ok(c)
}

/// A partner's reversal (`POST …/reversal`): as [`reverse`], except that a
/// redemption a checkout order made is given back only by cancelling that
/// order, which also frees its seats and benefits.
pub fn reverse_by_partner(
    v: &Voucher,
    r: &Redemption,
    req: &ReverseRequest,
    actor: &Actor<'_>,
) -> Result<Change, VoucherError> {
    if let Some(order_id) = &r.order_id {
        return Err(VoucherError::RedemptionBelongsToOrder {
            order_id: order_id.clone(),
        });
    }
    reverse(v, r, req, actor)
}

// ---- holds -----------------------------------------------------------------

/// `POST /vouchers/{code}/holds`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Omitted (not `null`): the whole available balance.
    #[serde(default, deserialize_with = "crate::money::omitted_not_null")]
    #[schema(nullable = false)]
    pub amount: Option<Money>,
    pub reservation: Reservation,
    /// When the hold releases itself if not captured.
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub test_mode: bool,
}

pub fn place_hold(
    v: &Voucher,
    req: &HoldRequest,
    hold_id: &str,
    actor: &Actor<'_>,
) -> Result<Change, VoucherError> {
    req.reservation.validate()?;
    if req.expires_at <= actor.now || req.expires_at > actor.now + Duration::days(MAX_HOLD_DAYS) {
        return Err(invalid(
            "expires_at",
            "must be in the future, at most 400 days ahead",
        ));
    }
    check_spendable(v, actor, req.test_mode)?;
    let amount = spend_amount(v, req.amount, actor.now)?;
    let mut c = Change::new(v.clone());
    c.release_expired_holds(actor.now);
    if c.voucher.holds.len() >= MAX_OPEN_HOLDS {
        return Err(VoucherError::TooManyHolds);
    }
    let hold = Hold {
        id: hold_id.to_owned(),
        amount,
        expires_at: req.expires_at,
        property: actor.property.id.clone(),
        partner: actor.partner.clone(),
        reservation: req.reservation.clone(),
    };
    c.voucher.holds.push(hold.clone());
    let a = c.record(ActivityKind::Hold, 0, actor.now);
    acted(a, actor);
    a.held = Some(amount);
    a.hold_id = Some(hold_id.to_owned());
    a.reservation = Some(req.reservation.clone());
    c.new_hold = Some(hold);
    Ok(c)
}

/// The open hold `hold_id` placed by the actor's property.
fn open_hold<'v>(
    v: &'v Voucher,
    hold_id: &str,
    actor: &Actor<'_>,
) -> Result<&'v Hold, VoucherError> {
    let h = v
        .holds
        .iter()
        .find(|h| h.id == hold_id)
        .ok_or(VoucherError::HoldClosed)?;
    if h.property != actor.property.id {
        return Err(VoucherError::HoldNotFound);
    }
    Ok(h)
}

/// `POST /holds/{hold_id}/capture`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// At most the held amount; omitted (not `null`): all of it. The rest is released.
    #[serde(default, deserialize_with = "crate::money::omitted_not_null")]
    #[schema(nullable = false)]
    pub amount: Option<Money>,
}

/// Takes (part of) a hold. Allowed after the voucher's validity ended: the
/// value was reserved while it was valid.
pub fn capture(
    v: &Voucher,
    hold_id: &str,
    req: &CaptureRequest,
    redemption_id: &str,
    actor: &Actor<'_>,
) -> Result<Change, VoucherError> {
    let hold = open_hold(v, hold_id, actor)?.clone();
    if !hold.is_live(actor.now) {
        return Err(VoucherError::HoldExpired);
    }
    match v.status {
        VoucherStatus::Blocked => return Err(VoucherError::Blocked),
        VoucherStatus::Cancelled => return Err(VoucherError::Cancelled),
        _ => {}
    }
    let amount = match req.amount {
        Some(a) => {
            check_amount(v, a, "amount")?;
            a
        }
        None => hold.amount,
    };
    if amount.amount > hold.amount.amount {
        return Err(VoucherError::CaptureExceedsHold { held: hold.amount });
    }
    if v.article_type == ArticleType::Package && amount != hold.amount {
        return Err(VoucherError::PackageRequiresFullRedemption {
            balance: hold.amount,
        });
    }
    let mut c = Change::new(v.clone());
    c.voucher.holds.retain(|h| h.id != hold_id);
    c.release_expired_holds(actor.now);
    let a = c.record(ActivityKind::Capture, -amount.amount, actor.now);
    acted(a, actor);
    a.held = Some(amount);
    a.hold_id = Some(hold.id.clone());
    a.redemption_id = Some(redemption_id.to_owned());
    a.reservation = Some(hold.reservation.clone());
    let rest = hold.amount.amount - amount.amount;
    if rest > 0 {
        let a = c.record(ActivityKind::Release, 0, actor.now);
        acted(a, actor);
        a.held = Some(v.money(rest));
        a.hold_id = Some(hold.id.clone());
        a.note = Some("not captured".into());
    }
    c.voucher.redemptions += 1;
    c.voucher.status = match v.status_at(actor.now) {
        VoucherStatus::Expired => VoucherStatus::Expired,
        _ => c.voucher.settled_status(),
    };
    c.redemption = Some(Redemption {
        id: redemption_id.to_owned(),
        amount,
        reversed: v.money(0),
        at: actor.now,
        property: actor.property.id.clone(),
        partner: actor.partner.clone(),
        reservation: hold.reservation,
        hold_id: Some(hold.id),
        order_id: None,
    });
    Ok(c)
}

/// `POST /holds/{hold_id}/release`.
pub fn release(v: &Voucher, hold_id: &str, actor: &Actor<'_>) -> Result<Change, VoucherError> {
    let hold = open_hold(v, hold_id, actor)?.clone();
    let mut c = Change::new(v.clone());
    c.voucher.holds.retain(|h| h.id != hold_id);
    c.release_expired_holds(actor.now);
    let a = c.record(ActivityKind::Release, 0, actor.now);
    acted(a, actor);
    a.held = Some(hold.amount);
    a.hold_id = Some(hold.id);
    Ok(c)
}

// ---- block, unblock, cancel ------------------------------------------------

fn check_issuer_and_open(v: &Voucher, actor: &Actor<'_>) -> Result<(), VoucherError> {
    if v.issuer != actor.property.id {
        return Err(VoucherError::NotIssuer);
    }
    match v.status {
        VoucherStatus::Cancelled => Err(VoucherError::Cancelled),
        VoucherStatus::WrittenOff => Err(VoucherError::Expired {
            valid_until: v.valid_until,
        }),
        _ => Ok(()),
    }
}

/// Blocks or unblocks (lost card, suspected fraud). Setting the state it
/// already has changes nothing.
pub fn set_blocked(v: &Voucher, blocked: bool, actor: &Actor<'_>) -> Result<Change, VoucherError> {
    check_issuer_and_open(v, actor)?;
    let mut c = Change::new(v.clone());
    if (v.status == VoucherStatus::Blocked) == blocked {
        return Ok(c);
    }
    c.release_expired_holds(actor.now);
    let a = c.record(ActivityKind::Adjust, 0, actor.now);
    acted(a, actor);
    a.note = Some(if blocked { "blocked" } else { "unblocked" }.into());
    c.voucher.status = if blocked {
        VoucherStatus::Blocked
    } else {
        c.voucher.settled_status()
    };
    Ok(c)
}

/// Cancels a sale: open holds are released and the open value is voided by
/// an `adjust` activity.
pub fn cancel(v: &Voucher, actor: &Actor<'_>) -> Result<Change, VoucherError> {
    check_issuer_and_open(v, actor)?;
    let mut c = Change::new(v.clone());
    for h in std::mem::take(&mut c.voucher.holds) {
        let a = c.record(ActivityKind::Release, 0, actor.now);
        a.held = Some(h.amount);
        a.hold_id = Some(h.id);
        a.partner = Some(h.partner);
        a.accepting_property = Some(h.property);
        a.note = Some("voucher cancelled".into());
    }
    let open = c.voucher.balance.amount;
    let a = c.record(ActivityKind::Adjust, -open, actor.now);
    acted(a, actor);
    a.note = Some("cancelled".into());
    c.voucher.status = VoucherStatus::Cancelled;
    Ok(c)
}

// ---- expiry and write-off --------------------------------------------------

/// Why an expired voucher is not written off (dry run and real run alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOffSkip {
    NotExpired,
    NoOpenValue,
    LiveHolds,
    Closed,
}

impl WriteOffSkip {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOffSkip::NotExpired => "not_expired",
            WriteOffSkip::NoOpenValue => "no_open_value",
            WriteOffSkip::LiveHolds => "live_holds",
            WriteOffSkip::Closed => "closed",
        }
    }
}

/// Is the voucher's open value due to be written off at `now`?
pub fn write_off_due(v: &Voucher, now: DateTime<Utc>) -> Result<Money, WriteOffSkip> {
    if matches!(
        v.status,
        VoucherStatus::Cancelled | VoucherStatus::WrittenOff
    ) {
        return Err(WriteOffSkip::Closed);
    }
    if !v.is_expired_at(now) {
        return Err(WriteOffSkip::NotExpired);
    }
    if v.balance.amount <= 0 {
        return Err(WriteOffSkip::NoOpenValue);
    }
    if v.held_at(now).amount > 0 {
        return Err(WriteOffSkip::LiveHolds);
    }
    Ok(v.balance)
}

/// Records the expiry (if not yet recorded) and writes the open value off.
pub fn write_off(v: &Voucher, actor: &Actor<'_>) -> Result<Change, WriteOffSkip> {
    if v.issuer != actor.property.id {
        return Err(WriteOffSkip::Closed);
    }
    let open = write_off_due(v, actor.now)?;
    let mut c = Change::new(v.clone());
    c.release_expired_holds(actor.now);
    if v.status != VoucherStatus::Expired {
        let a = c.record(ActivityKind::Expire, 0, actor.now);
        acted(a, actor);
    }
    let a = c.record(ActivityKind::WriteOff, -open.amount, actor.now);
    acted(a, actor);
    c.voucher.status = VoucherStatus::WrittenOff;
    Ok(c)
}

// ---- import ----------------------------------------------------------------

fn imported() -> ArticleType {
    ArticleType::Imported
}

/// The earliest sale or redemption an import may date (older vouchers are
/// long past any validity).
pub const EARLIEST_IMPORTED: DateTime<Utc> = DateTime::from_timestamp(631_152_000, 0).unwrap(); // 1990-01-01
/// How far ahead of the hub's clock an imported time may be (the old
/// system's clock may run a little ahead; such times count as now).
pub const IMPORT_CLOCK_SKEW_SECONDS: i64 = 3600;

/// A time from the old system: in the past (up to the clock skew) and not
/// before [`EARLIEST_IMPORTED`].
fn check_past(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), VoucherError> {
    if at > now + chrono::Duration::seconds(IMPORT_CLOCK_SKEW_SECONDS) {
        return Err(invalid(field, "must not be in the future"));
    }
    if at < EARLIEST_IMPORTED {
        return Err(invalid(field, "must not be before 1990-01-01"));
    }
    Ok(())
}

/// One legacy or external voucher in `POST /voucher-imports`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    /// Kept as printed (4-64 characters of A-Z, 0-9, '-').
    pub code: String,
    #[serde(default = "imported")]
    pub article_type: ArticleType,
    /// The value it was sold with.
    pub value: Money,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    #[serde(default)]
    pub order_ref: Option<String>,
    #[serde(default)]
    pub buyer: Option<Buyer>,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub test_mode: bool,
    /// When it was sold (default: now).
    #[serde(default)]
    pub issued_at: Option<DateTime<Utc>>,
    /// What was redeemed from it before it came here.
    #[serde(default)]
    pub redemptions: Vec<PastRedemption>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PastRedemption {
    pub amount: Money,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// The old system's reference (booking, invoice).
    #[serde(default)]
    pub reference: Option<String>,
}

/// An imported voucher with its ledger: an `import` activity for the value
/// it was sold with, one per past redemption. Codes are kept.
pub fn import(line: &ImportLine, actor: &Actor<'_>) -> Result<Change, VoucherError> {
    let issuer = actor.property;
    let code = VoucherCode::external(&line.code)?;
    check_new(
        line.article_type,
        line.value,
        issuer,
        &line.package,
        &line.order_ref,
        &line.buyer,
    )?;
    if line.value.amount == 0 && line.article_type != ArticleType::GiftCard {
        return Err(VoucherError::ZeroValue);
    }
    if line.redemptions.len() > MAX_IMPORTED_REDEMPTIONS {
        return Err(invalid(
            "redemptions",
            "at most 90 past redemptions per voucher",
        ));
    }
    if let Some(at) = line.issued_at {
        check_past("issued_at", at, actor.now)?;
    }
    for r in &line.redemptions {
        if let Some(at) = r.at {
            check_past("redemptions.at", at, actor.now)?;
        }
    }
    let issued_at = line.issued_at.unwrap_or(actor.now).min(actor.now);
    let mut spent = 0i64;
    for r in &line.redemptions {
        if r.amount.currency != issuer.currency {
            return Err(VoucherError::CurrencyMismatch {
                expected: issuer.currency,
            });
        }
        if r.amount.amount <= 0 || r.amount.amount > MAX_AMOUNT {
            return Err(invalid("redemptions.amount", "must be positive"));
        }
        check_text("redemptions.reference", &r.reference, 100)?;
        spent += r.amount.amount;
    }
    if spent > line.value.amount {
        return Err(VoucherError::InsufficientBalance {
            available: line.value,
        });
    }
    let voucher = Voucher {
        code,
        article_type: line.article_type,
        issuer: issuer.id.clone(),
        time_zone: issuer.time_zone,
        currency: issuer.currency,
        initial_value: line.value,
        loaded: Money::zero(issuer.currency),
        balance: Money::zero(issuer.currency),
        status: VoucherStatus::Pending,
        valid_until: line.valid_until,
        order_ref: line.order_ref.clone(),
        buyer: line.buyer.clone(),
        package: line.package.clone(),
        test_mode: line.test_mode,
        issued_at,
        order_seq: None,
        pickup_feeds: Default::default(),
        holds: Vec::new(),
        seq: 0,
        redemptions: line.redemptions.len() as u32,
    };
    let mut c = Change::new(voucher);
    let a = c.record(ActivityKind::Import, line.value.amount, issued_at);
    acted(a, actor);
    a.note = Some("opening value".into());
    for r in &line.redemptions {
        let at = r.at.unwrap_or(actor.now).min(actor.now);
        let a = c.record(ActivityKind::Import, -r.amount.amount, at);
        acted(a, actor);
        a.note = Some(match &r.reference {
            Some(reference) => format!("past redemption {reference}"),
            None => "past redemption".into(),
        });
    }
    c.voucher.status = c.voucher.settled_status();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, PropertyId};
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::parse("EUR").unwrap())
    }

    fn property(id: &str) -> Property {
        Property::new(
            PropertyId::parse(id).unwrap(),
            "Castle",
            "Europe/Vienna".parse().unwrap(),
            Currency::parse("EUR").unwrap(),
        )
        .unwrap()
    }

    fn reservation() -> Reservation {
        Reservation {
            number: "R-1".into(),
            arrival: None,
            departure: None,
            guest_name: Some("Ana".into()),
        }
    }

    struct World {
        castle: Property,
        abbey: Property,
        partner: PartnerId,
        now: DateTime<Utc>,
    }

    impl World {
        fn new() -> Self {
            Self {
                castle: property("castle"),
                abbey: property("abbey"),
                partner: PartnerId("p1".into()),
                now: utc("2026-01-10T12:00:00Z"),
            }
        }
        fn at<'a>(&'a self, p: &'a Property) -> Actor<'a> {
            Actor {
                partner: &self.partner,
                property: p,
                now: self.now,
            }
        }
    }

    fn issue_req(kind: ArticleType, value: i64) -> IssueRequest {
        IssueRequest {
            article_type: kind,
            value: eur(value),
            code: None,
            valid_until: Some(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()),
            order_ref: Some("O-1".into()),
            buyer: None,
            package: (kind == ArticleType::Package).then(|| "2 nights".into()),
            test_mode: false,
        }
    }

    fn sum(acts: &[Activity]) -> i64 {
        acts.iter().map(|a| a.amount.amount).sum()
    }

    fn redeem_req(amount: Option<i64>) -> RedeemRequest {
        RedeemRequest {
            amount: amount.map(eur),
            reservation: reservation(),
            test_mode: false,
        }
    }

    fn issued(w: &World, kind: ArticleType, value: i64) -> (Voucher, Vec<Activity>) {
        let c = issue(
            issue_req(kind, value),
            VoucherCode::generate(),
            &w.at(&w.castle),
        )
        .unwrap();
        (c.voucher, c.activities)
    }

    #[test]
    fn issue_records_the_value() {
        let w = World::new();
        let (v, acts) = issued(&w, ArticleType::Value, 5_000);
        assert_eq!(v.balance, eur(5_000));
        assert_eq!(v.status, VoucherStatus::Active);
        assert_eq!(acts.len(), 1);
        assert_eq!(acts[0].kind, ActivityKind::Issue);
        assert_eq!(acts[0].balance_after, eur(5_000));
        assert!(in_pickup_feed(&v));
    }

    #[test]
    fn issue_refuses_bad_input() {
        let w = World::new();
        let a = w.at(&w.castle);
        let err = |r: IssueRequest| issue(r, VoucherCode::generate(), &a).unwrap_err();
        assert_eq!(
            err(issue_req(ArticleType::Value, 0)),
            VoucherError::ZeroValue
        );
        let mut usd = issue_req(ArticleType::Value, 10);
        usd.value = Money::new(10, Currency::parse("USD").unwrap());
        assert_eq!(err(usd).code(), "currency_mismatch");
        let mut ext = issue_req(ArticleType::External, 10);
        ext.code = None;
        assert_eq!(err(ext).code(), "invalid_field");
        let mut pkg = issue_req(ArticleType::Package, 10);
        pkg.package = None;
        assert_eq!(err(pkg).code(), "invalid_field");
        let mut past = issue_req(ArticleType::Value, 10);
        past.valid_until = NaiveDate::from_ymd_opt(2026, 1, 9);
        assert_eq!(err(past).code(), "invalid_field");
        let mut neg = issue_req(ArticleType::Value, 10);
        neg.value = eur(-1);
        assert_eq!(err(neg).code(), "invalid_field");
    }

    #[test]
    fn empty_gift_card_is_pending_until_loaded() {
        let w = World::new();
        let (v, _) = issued(&w, ArticleType::GiftCard, 0);
        assert_eq!(v.status, VoucherStatus::Pending);
        assert!(!in_pickup_feed(&v));
        let a = w.at(&w.castle);
        assert_eq!(
            redeem(&v, &redeem_req(None), "r1", &a).unwrap_err(),
            VoucherError::ZeroValue
        );
        let c = load(
            &v,
            &LoadRequest {
                amount: eur(2_500),
                test_mode: false,
            },
            &a,
        )
        .unwrap();
        assert_eq!(c.voucher.status, VoucherStatus::Active);
        assert_eq!(c.voucher.balance, eur(2_500));
        assert_eq!(c.activities[0].kind, ActivityKind::Load);
        let (value, _) = issued(&w, ArticleType::Value, 100);
        let req = LoadRequest {
            amount: eur(1),
            test_mode: false,
        };
        assert_eq!(
            load(&value, &req, &a).unwrap_err(),
            VoucherError::NotAGiftCard
        );
        assert_eq!(
            load(&c.voucher, &req, &w.at(&w.abbey)).unwrap_err(),
            VoucherError::NotIssuer
        );
    }

    #[test]
    fn partial_then_full_redemption() {
        let w = World::new();
        let (v, mut ledger) = issued(&w, ArticleType::Value, 5_000);
        let a = w.at(&w.castle);
        let c = redeem(&v, &redeem_req(Some(1_200)), "r1", &a).unwrap();
        assert_eq!(c.voucher.balance, eur(3_800));
        assert_eq!(c.voucher.status, VoucherStatus::Active);
        let r = c.redemption.clone().unwrap();
        assert_eq!(r.amount, eur(1_200));
        ledger.extend(c.activities.clone());
        assert_eq!(
            redeem(&c.voucher, &redeem_req(Some(3_801)), "r2", &a).unwrap_err(),
            VoucherError::InsufficientBalance {
                available: eur(3_800)
            }
        );
        let full = redeem(&c.voucher, &redeem_req(None), "r2", &a).unwrap();
        assert_eq!(full.voucher.balance, eur(0));
        assert_eq!(full.voucher.status, VoucherStatus::Redeemed);
        ledger.extend(full.activities.clone());
        assert_eq!(sum(&ledger), full.voucher.balance.amount);
        assert_eq!(
            redeem(&full.voucher, &redeem_req(Some(1)), "r3", &a).unwrap_err(),
            VoucherError::InsufficientBalance { available: eur(0) }
        );
    }

    #[test]
    fn redemption_refusals() {
        let w = World::new();
        let (v, _) = issued(&w, ArticleType::Value, 5_000);
        let a = w.at(&w.castle);
        assert_eq!(
            redeem(&v, &redeem_req(Some(0)), "r", &a).unwrap_err(),
            VoucherError::ZeroValue
        );
        let mut usd = redeem_req(None);
        usd.amount = Some(Money::new(5, Currency::parse("USD").unwrap()));
        assert_eq!(
            redeem(&v, &usd, "r", &a).unwrap_err().code(),
            "currency_mismatch"
        );
        let mut test = redeem_req(None);
        test.test_mode = true;
        assert_eq!(
            redeem(&v, &test, "r", &a).unwrap_err(),
            VoucherError::TestModeMismatch {
                voucher_test_mode: false
            }
        );
        assert_eq!(
            redeem(&v, &redeem_req(None), "r", &w.at(&w.abbey)).unwrap_err(),
            VoucherError::NotRedeemableHere
        );
        let mut portal = w.abbey.clone();
        portal.accepts_vouchers_of.push(w.castle.id.clone());
        assert!(redeem(&v, &redeem_req(Some(10)), "r", &w.at(&portal)).is_ok());
        let blocked = set_blocked(&v, true, &a).unwrap().voucher;
        assert_eq!(
            redeem(&blocked, &redeem_req(None), "r", &a).unwrap_err(),
            VoucherError::Blocked
        );
        let cancelled = cancel(&v, &a).unwrap();
        assert_eq!(cancelled.voucher.balance, eur(0));
        assert_eq!(
            redeem(&cancelled.voucher, &redeem_req(None), "r", &a).unwrap_err(),
            VoucherError::Cancelled
        );
    }

    #[test]
    fn package_vouchers_are_redeemed_whole() {
        let w = World::new();
        let (v, _) = issued(&w, ArticleType::Package, 40_000);
        let a = w.at(&w.castle);
        assert_eq!(
            redeem(&v, &redeem_req(Some(100)), "r", &a).unwrap_err(),
            VoucherError::PackageRequiresFullRedemption {
                balance: eur(40_000)
            }
        );
        let c = redeem(&v, &redeem_req(None), "r", &a).unwrap();
        assert_eq!(c.voucher.status, VoucherStatus::Redeemed);
        let r = c.redemption.unwrap();
        let partial = ReverseRequest {
            amount: Some(eur(1)),
            reason: None,
        };
        assert_eq!(
            reverse(&c.voucher, &r, &partial, &a).unwrap_err().code(),
            "package_requires_full_redemption"
        );
    }

    #[test]
    fn reversal_never_exceeds_the_redemption() {
        let w = World::new();
        let (v, _) = issued(&w, ArticleType::Value, 5_000);
        let a = w.at(&w.castle);
        let c = redeem(&v, &redeem_req(Some(2_000)), "r1", &a).unwrap();
        let r = c.redemption.unwrap();
        let rev = |v: &Voucher, r: &Redemption, amount: Option<i64>| {
            reverse(
                v,
                r,
                &ReverseRequest {
                    amount: amount.map(eur),
                    reason: None,
                },
                &a,
            )
        };
        let part = rev(&c.voucher, &r, Some(500)).unwrap();
        assert_eq!(part.voucher.balance, eur(3_500));
        let r = part.redemption.unwrap();
        assert_eq!(r.reversible(), eur(1_500));
        assert_eq!(
            rev(&part.voucher, &r, Some(1_501)).unwrap_err(),
            VoucherError::ReversalExceedsRedemption {
                reversible: eur(1_500)
            }
        );
        let rest = rev(&part.voucher, &r, None).unwrap();
        assert_eq!(rest.voucher.balance, eur(5_000));
        let r = rest.redemption.unwrap();
        assert_eq!(
            rev(&rest.voucher, &r, None).unwrap_err(),
            VoucherError::ReversalExceedsRedemption { reversible: eur(0) }
        );
        // The issuer reversing another property's redemption books it
        // against the property that redeemed.
        let mut portal = w.abbey.clone();
        portal.accepts_vouchers_of.push(w.castle.id.clone());
        let at_portal = w.at(&portal);
        let taken = redeem(&rest.voucher, &redeem_req(Some(700)), "r2", &at_portal).unwrap();
        let back = reverse(
            &taken.voucher,
            taken.redemption.as_ref().unwrap(),
            &ReverseRequest::default(),
            &a,
        )
        .unwrap();
        let act = &back.activities[0];
        assert_eq!(act.accepting_property.as_ref(), Some(&w.abbey.id));
        assert_eq!(act.partner.as_ref(), Some(&w.partner));
        assert_eq!(back.voucher.balance, eur(5_000));
        // Another property cannot reverse what the castle redeemed.
        let other = Actor {
            property: &w.abbey,
            ..a
        };
        assert_eq!(
            reverse(&rest.voucher, &r, &ReverseRequest::default(), &other).unwrap_err(),
            VoucherError::RedemptionNotFound
        );
    }

    #[test]
    fn holds_capture_release_and_expire() {
        let w = World::new();
        let (v, mut ledger) = issued(&w, ArticleType::GiftCard, 10_000);
        let a = w.at(&w.castle);
        let hold_req = |amount: i64, hours: i64| HoldRequest {
            amount: Some(eur(amount)),
            reservation: reservation(),
            expires_at: w.now + Duration::hours(hours),
            test_mode: false,
        };
        let h1 = place_hold(&v, &hold_req(6_000, 24), "h1", &a).unwrap();
        assert_eq!(h1.voucher.balance, eur(10_000));
        assert_eq!(h1.voucher.available_at(w.now), eur(4_000));
        ledger.extend(h1.activities.clone());
        // Holds block value from redemptions.
        assert_eq!(
            redeem(&h1.voucher, &redeem_req(Some(4_001)), "r", &a).unwrap_err(),
            VoucherError::InsufficientBalance {
                available: eur(4_000)
            }
        );
        // Capture part: the rest is released.
        let cap = capture(
            &h1.voucher,
            "h1",
            &CaptureRequest {
                amount: Some(eur(5_000)),
            },
            "r1",
            &a,
        )
        .unwrap();
        assert_eq!(cap.voucher.balance, eur(5_000));
        assert!(cap.voucher.holds.is_empty());
        let kinds: Vec<_> = cap.activities.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [ActivityKind::Capture, ActivityKind::Release]);
        ledger.extend(cap.activities.clone());
        assert_eq!(
            capture(&cap.voucher, "h1", &CaptureRequest::default(), "r2", &a).unwrap_err(),
            VoucherError::HoldClosed
        );
        // A hold that expires releases itself: it stops counting at once and
        // the next change records the release.
        let h2 = place_hold(&cap.voucher, &hold_req(5_000, 1), "h2", &a).unwrap();
        ledger.extend(h2.activities.clone());
        let later = Actor {
            now: w.now + Duration::hours(2),
            ..a
        };
        assert_eq!(h2.voucher.available_at(later.now), eur(5_000));
        assert_eq!(
            capture(&h2.voucher, "h2", &CaptureRequest::default(), "r2", &later).unwrap_err(),
            VoucherError::HoldExpired
        );
        let r = redeem(&h2.voucher, &redeem_req(Some(1_000)), "r3", &later).unwrap();
        let kinds: Vec<_> = r.activities.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [ActivityKind::Release, ActivityKind::Redeem]);
        assert!(r.voucher.holds.is_empty());
        ledger.extend(r.activities.clone());
        assert_eq!(sum(&ledger), r.voucher.balance.amount);
        let ids: Vec<u64> = ledger.iter().map(|a| a.id).collect();
        assert_eq!(ids, (1..=ledger.len() as u64).collect::<Vec<_>>());
        // Only the property that placed a hold may release it.
        let h3 = place_hold(&r.voucher, &hold_req(100, 5), "h3", &later).unwrap();
        let mut portal = w.abbey.clone();
        portal.accepts_vouchers_of.push(w.castle.id.clone());
        let elsewhere = Actor {
            property: &portal,
            ..later
        };
        assert_eq!(
            release(&h3.voucher, "h3", &elsewhere).unwrap_err(),
            VoucherError::HoldNotFound
        );
        let rel = release(&h3.voucher, "h3", &later).unwrap();
        assert_eq!(rel.voucher.available_at(later.now), rel.voucher.balance);
    }

    #[test]
    fn validity_ends_at_local_midnight_and_across_dst() {
        let w = World::new();
        let (mut v, _) = issued(&w, ArticleType::Value, 5_000);
        let a = |now| Actor {
            partner: &w.partner,
            property: &w.castle,
            now,
        };
        // Winter: Vienna is UTC+1; 2026-01-15 ends at 23:00Z.
        v.valid_until = NaiveDate::from_ymd_opt(2026, 1, 15);
        assert!(
            redeem(
                &v,
                &redeem_req(Some(1)),
                "r",
                &a(utc("2026-01-15T22:59:59Z"))
            )
            .is_ok()
        );
        assert_eq!(
            redeem(
                &v,
                &redeem_req(Some(1)),
                "r",
                &a(utc("2026-01-15T23:00:00Z"))
            )
            .unwrap_err(),
            VoucherError::Expired {
                valid_until: v.valid_until
            }
        );
        // Spring forward on 2026-03-29: the day has 23 hours, ends at 22:00Z.
        v.valid_until = NaiveDate::from_ymd_opt(2026, 3, 29);
        assert!(
            redeem(
                &v,
                &redeem_req(Some(1)),
                "r",
                &a(utc("2026-03-29T21:59:59Z"))
            )
            .is_ok()
        );
        assert!(
            redeem(
                &v,
                &redeem_req(Some(1)),
                "r",
                &a(utc("2026-03-29T22:00:00Z"))
            )
            .is_err()
        );
        // Fall back on 2026-10-25: 25 hours, ends at 23:00Z.
        v.valid_until = NaiveDate::from_ymd_opt(2026, 10, 25);
        assert!(
            redeem(
                &v,
                &redeem_req(Some(1)),
                "r",
                &a(utc("2026-10-25T22:59:59Z"))
            )
            .is_ok()
        );
        assert_eq!(
            v.status_at(utc("2026-10-25T23:00:00Z")),
            VoucherStatus::Expired
        );
        // A property in another zone accepting it still uses the issuer's day.
        let mut tokyo = w.abbey.clone();
        tokyo.time_zone = "Asia/Tokyo".parse().unwrap();
        tokyo.accepts_vouchers_of.push(w.castle.id.clone());
        let late = chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(2026, 10, 26, 7, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let at_tokyo = Actor {
            partner: &w.partner,
            property: &tokyo,
            now: late,
        };
        assert!(redeem(&v, &redeem_req(Some(1)), "r", &at_tokyo).is_ok());
    }

    #[test]
    fn write_off_expired_open_value() {
        let w = World::new();
        let (v, mut ledger) = issued(&w, ArticleType::Value, 5_000);
        let a = w.at(&w.castle);
        let c = redeem(&v, &redeem_req(Some(1_000)), "r", &a).unwrap();
        ledger.extend(c.activities.clone());
        assert_eq!(
            write_off_due(&c.voucher, w.now),
            Err(WriteOffSkip::NotExpired)
        );
        let later = Actor {
            now: utc("2026-04-01T00:00:00Z"),
            ..a
        };
        assert_eq!(write_off_due(&c.voucher, later.now), Ok(eur(4_000)));
        let wo = write_off(&c.voucher, &later).unwrap();
        let kinds: Vec<_> = wo.activities.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [ActivityKind::Expire, ActivityKind::WriteOff]);
        assert_eq!(wo.voucher.balance, eur(0));
        assert_eq!(wo.voucher.status, VoucherStatus::WrittenOff);
        ledger.extend(wo.activities.clone());
        assert_eq!(sum(&ledger), 0);
        assert_eq!(
            write_off(&wo.voucher, &later).unwrap_err(),
            WriteOffSkip::Closed
        );
        // A reversal after the write-off gives the value back as expired open value.
        let r = c.redemption.unwrap();
        let rev = reverse(&wo.voucher, &r, &ReverseRequest::default(), &later).unwrap();
        assert_eq!(rev.voucher.status, VoucherStatus::Expired);
        assert_eq!(write_off_due(&rev.voucher, later.now), Ok(eur(1_000)));
    }

    #[test]
    fn import_keeps_code_and_past_redemptions() {
        let w = World::new();
        let line: ImportLine = serde_json::from_value(serde_json::json!({
            "code": "legacy-0042",
            "value": {"amount": 10000, "currency": "EUR"},
            "valid_until": "2027-12-31",
            "redemptions": [
                {"amount": {"amount": 2500, "currency": "EUR"}, "at": "2025-06-01T10:00:00Z", "reference": "INV-7"},
                {"amount": {"amount": 500, "currency": "EUR"}}
            ]
        }))
        .unwrap();
        let c = import(&line, &w.at(&w.castle)).unwrap();
        assert_eq!(c.voucher.code.as_str(), "LEGACY-0042");
        assert_eq!(c.voucher.balance, eur(7_000));
        assert_eq!(c.voucher.article_type, ArticleType::Imported);
        assert!(c.activities.iter().all(|a| a.kind == ActivityKind::Import));
        assert_eq!(sum(&c.activities), 7_000);
        assert!(!in_pickup_feed(&c.voucher));
        let mut over = line.clone();
        over.redemptions[0].amount = eur(9_600);
        assert_eq!(
            import(&over, &w.at(&w.castle)).unwrap_err().code(),
            "insufficient_balance"
        );
    }

    #[test]
    fn assess_says_why() {
        let w = World::new();
        let (v, _) = issued(&w, ArticleType::Value, 5_000);
        assert_eq!(assess(&v, &w.castle, w.now), None);
        assert_eq!(
            assess(&v, &w.abbey, w.now),
            Some(VoucherError::NotRedeemableHere)
        );
        assert_eq!(
            assess(&v, &w.castle, utc("2026-04-01T00:00:00Z")).map(|e| e.code()),
            Some("voucher_expired")
        );
    }

    #[test]
    fn gift_cards_never_enter_the_pickup_feed() {
        let w = World::new();
        for (kind, feed) in [
            (ArticleType::Value, true),
            (ArticleType::Package, true),
            (ArticleType::GiftCard, false),
        ] {
            let (v, _) = issued(&w, kind, 5_000);
            assert_eq!(in_pickup_feed(&v), feed, "{kind:?}");
        }
    }

    #[test]
    fn a_shared_printed_code_resolves_own_then_accepted() {
        let w = World::new();
        let spa = property("spa");
        let ids = |v: &[&Property]| v.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        let all = |_: &PropertyId| true;
        let both = ids(&[&w.castle, &w.abbey]);
        // Own first.
        assert_eq!(resolve_issuer(&both, &w.castle, &all).unwrap(), w.castle.id);
        // A property accepting one of them.
        let mut portal = spa.clone();
        portal.accepts_vouchers_of.push(w.abbey.id.clone());
        assert_eq!(resolve_issuer(&both, &portal, &all).unwrap(), w.abbey.id);
        // Accepting both: ambiguous, naming only issuers it may see.
        portal.accepts_vouchers_of.push(w.castle.id.clone());
        let three = ids(&[&w.castle, &w.abbey, &property("inn")]);
        let seen = |i: &PropertyId| i.as_str() != "inn";
        assert_eq!(
            resolve_issuer(&three, &portal, &seen).unwrap_err(),
            VoucherError::CodeAmbiguous {
                issuers: ids(&[&w.abbey, &w.castle])
            }
        );
        // Issuers it may not see do not exist for it.
        let none = |_: &PropertyId| false;
        assert_eq!(
            resolve_issuer(&both, &spa, &none).unwrap_err(),
            VoucherError::NotFound { mistyped: false }
        );
        let only_castle = |i: &PropertyId| *i == w.castle.id;
        assert_eq!(
            resolve_issuer(&both, &spa, &only_castle).unwrap(),
            w.castle.id
        );
    }

    #[test]
    fn picked_up_only_after_ack_and_only_for_the_issuer_feed() {
        let w = World::new();
        let (mut v, _) = issued(&w, ArticleType::Value, 5_000);
        v.order_seq = Some(7);
        assert!(!picked_up(&v, &w.castle.id, 6));
        assert!(picked_up(&v, &w.castle.id, 7));
        assert!(!picked_up(&v, &w.abbey.id, 100));
        // Portal pickup: its position in the abbey's own feed.
        v.pickup_feeds.insert(w.abbey.id.clone(), 3);
        assert!(!picked_up(&v, &w.abbey.id, 2));
        assert!(picked_up(&v, &w.abbey.id, 3));
    }
}
