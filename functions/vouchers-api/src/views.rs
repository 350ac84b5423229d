//! What the API answers: the response bodies, built from domain types. These
//! are the partner contract (issue #3); field names never change.

use chrono::{DateTime, NaiveDate, Utc};
use domain::voucher::pickup::{ArticleMapping, Order};
use domain::voucher::ports::{Changed, PmsView};
use domain::voucher::rules;
use domain::voucher::settlement::{CurrencyTotal, SettlementGroup, SettlementLine};
use domain::voucher::{Activity, ArticleType, Buyer, Change, Voucher, VoucherCode, VoucherStatus};
use domain::{Money, Property, PropertyId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Serializes a response body (plain data: cannot fail).
pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `GET /vouchers/{code}`: the live status. The code is shown whole: the
/// caller sent it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherView {
    pub code: VoucherCode,
    pub article_type: ArticleType,
    /// This partner's PMS article code for the type (`PUT /article-mapping`).
    pub article_code: Option<String>,
    pub status: VoucherStatus,
    pub balance: Money,
    pub initial_value: Money,
    /// Balance not blocked by holds.
    pub available: Money,
    pub held: Money,
    /// Last local day of validity in the issuer's zone (none: no expiry).
    pub valid_until: Option<NaiveDate>,
    /// Redeemable at the calling property now.
    pub redeemable: bool,
    /// Why not, as an error code (`voucher_expired`, `voucher_not_redeemable_here`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Whether this PMS partner knows the voucher already: it picked its
    /// order up, or booked the code in with an earlier redemption. False
    /// means the "Kode" path: its first redemption books it in.
    pub picked_up: bool,
    #[schema(value_type = String)]
    pub issuer: PropertyId,
    pub test_mode: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// Whether the caller's PMS partner knows `v`: picked up from the feed, or
/// booked in by an earlier redemption.
pub fn known_to(v: &Voucher, at: &Property, pms: &PmsView) -> bool {
    pms.booked_in || rules::picked_up(v, &at.id, pms.pickup_cursor)
}

impl VoucherView {
    pub fn of(v: &Voucher, at: &Property, pms: &PmsView, now: DateTime<Utc>) -> Self {
        let refusal = rules::assess(v, at, now);
        Self {
            code: v.code.clone(),
            article_type: v.article_type,
            article_code: pms.mapping.code_for(v.article_type).map(str::to_owned),
            status: v.status_at(now),
            balance: v.balance,
            initial_value: v.initial_value,
            available: v.available_at(now),
            held: v.held_at(now),
            valid_until: v.valid_until,
            redeemable: refusal.is_none(),
            reason: refusal.map(|e| e.code()),
            picked_up: known_to(v, at, pms),
            issuer: v.issuer.clone(),
            test_mode: v.test_mode,
            package: v.package.clone(),
        }
    }
}

/// The full voucher, for its issuer.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherDetail {
    #[serde(flatten)]
    pub status: VoucherView,
    /// Value added by loads (gift cards).
    pub loaded: Money,
    pub order_ref: Option<String>,
    pub buyer: Option<Buyer>,
    pub issued_at: DateTime<Utc>,
}

/// `POST /vouchers` → 201.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedView {
    pub code: VoucherCode,
    pub voucher: VoucherDetail,
}

impl IssuedView {
    pub fn of(v: &Voucher, at: &Property, now: DateTime<Utc>) -> Self {
        Self {
            code: v.code.clone(),
            voucher: VoucherDetail {
                status: VoucherView::of(v, at, &PmsView::default(), now),
                loaded: v.loaded,
                order_ref: v.order_ref.clone(),
                buyer: v.buyer.clone(),
                issued_at: v.issued_at,
            },
        }
    }
}

fn last_of(c: &Change, kind: domain::voucher::ActivityKind) -> Option<&Activity> {
    c.activities.iter().rev().find(|a| a.kind == kind)
}

/// `POST /vouchers/{code}/redemptions` → 201.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionView {
    pub redemption_id: String,
    pub redeemed: Money,
    pub balance: Money,
    pub status: VoucherStatus,
    pub article_type: ArticleType,
    /// This partner's PMS article code for the type.
    pub article_code: Option<String>,
    /// Whether this PMS partner knew the voucher before: it picked its
    /// order up or booked the code in earlier. False: the "Kode" path.
    pub picked_up: bool,
    /// This redemption booked the code in for this partner ("Kode"): create
    /// the PMS's own voucher record from `booking`. Later answers say
    /// `picked_up: true`.
    pub booked_in: bool,
    /// What the PMS needs to book the code in; only when `booked_in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking: Option<BookingView>,
}

/// A voucher as a PMS books it in on its first redemption.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub code: VoucherCode,
    pub article_type: ArticleType,
    pub article_code: Option<String>,
    /// The value put on it: sold, plus loads for gift cards.
    pub original_value: Money,
    pub valid_until: Option<NaiveDate>,
    #[schema(value_type = String)]
    pub issuer: PropertyId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl RedemptionView {
    pub fn of(c: &Changed, at: &Property) -> Self {
        let (ch, v) = (&c.change, &c.change.voucher);
        let r = ch.redemption.as_ref();
        let article_code = c.pms.mapping.code_for(v.article_type).map(str::to_owned);
        Self {
            redemption_id: r.map(|r| r.id.clone()).unwrap_or_default(),
            redeemed: r.map_or(v.money(0), |r| r.amount),
            balance: v.balance,
            status: v.status,
            article_type: v.article_type,
            article_code: article_code.clone(),
            picked_up: known_to(v, at, &c.pms),
            booked_in: c.booked_in,
            booking: c.booked_in.then(|| BookingView {
                code: v.code.clone(),
                article_type: v.article_type,
                article_code,
                original_value: v.money(v.initial_value.amount + v.loaded.amount),
                valid_until: v.valid_until,
                issuer: v.issuer.clone(),
                package: v.package.clone(),
            }),
        }
    }
}

/// `POST /vouchers/{code}/redemptions/{id}/reversal` → 201.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReversalView {
    pub redemption_id: String,
    pub reversed: Money,
    pub balance: Money,
    pub status: VoucherStatus,
    /// What of the redemption can still be reversed.
    pub reversible: Money,
}

impl ReversalView {
    pub fn of(c: &Change) -> Self {
        let zero = c.voucher.money(0);
        let reversed =
            last_of(c, domain::voucher::ActivityKind::Reverse).map_or(zero, |a| a.amount);
        let r = c.redemption.as_ref();
        Self {
            redemption_id: r.map(|r| r.id.clone()).unwrap_or_default(),
            reversed,
            balance: c.voucher.balance,
            status: c.voucher.status,
            reversible: r.map_or(zero, |r| r.reversible()),
        }
    }
}

/// `POST /vouchers/{code}/loads` → 201.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadView {
    pub loaded: Money,
    pub balance: Money,
    pub status: VoucherStatus,
}

impl LoadView {
    pub fn of(c: &Change) -> Self {
        Self {
            loaded: last_of(c, domain::voucher::ActivityKind::Load)
                .map_or(c.voucher.money(0), |a| a.amount),
            balance: c.voucher.balance,
            status: c.voucher.status,
        }
    }
}

/// `POST /vouchers/{code}/holds` → 201.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub hold_id: String,
    pub held: Money,
    pub expires_at: DateTime<Utc>,
    pub available: Money,
    pub balance: Money,
    pub status: VoucherStatus,
}

impl HoldView {
    pub fn of(c: &Change, now: DateTime<Utc>) -> Self {
        let h = c.new_hold.as_ref();
        Self {
            hold_id: h.map(|h| h.id.clone()).unwrap_or_default(),
            held: h.map_or(c.voucher.money(0), |h| h.amount),
            expires_at: h.map_or(now, |h| h.expires_at),
            available: c.voucher.available_at(now),
            balance: c.voucher.balance,
            status: c.voucher.status,
        }
    }
}

/// `POST /holds/{hold_id}/capture` → 201. The capture is a redemption:
/// reversible under `redemption_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureView {
    pub hold_id: String,
    pub redemption_id: String,
    pub captured: Money,
    /// The part of the hold not captured, freed again.
    pub released: Money,
    pub balance: Money,
    pub status: VoucherStatus,
}

impl CaptureView {
    pub fn of(c: &Change, hold_id: &str) -> Self {
        let zero = c.voucher.money(0);
        let r = c.redemption.as_ref();
        Self {
            hold_id: hold_id.to_owned(),
            redemption_id: r.map(|r| r.id.clone()).unwrap_or_default(),
            captured: r.map_or(zero, |r| r.amount),
            released: c
                .activities
                .iter()
                .find(|a| {
                    a.kind == domain::voucher::ActivityKind::Release
                        && a.hold_id.as_deref() == Some(hold_id)
                })
                .and_then(|a| a.held)
                .unwrap_or(zero),
            balance: c.voucher.balance,
            status: c.voucher.status,
        }
    }
}

/// `POST /holds/{hold_id}/release` → 200.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseView {
    pub hold_id: String,
    pub released: Money,
    pub available: Money,
    pub balance: Money,
    pub status: VoucherStatus,
}

impl ReleaseView {
    pub fn of(c: &Change, hold_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            hold_id: hold_id.to_owned(),
            released: c
                .activities
                .iter()
                .find(|a| a.hold_id.as_deref() == Some(hold_id))
                .and_then(|a| a.held)
                .unwrap_or(c.voucher.money(0)),
            available: c.voucher.available_at(now),
            balance: c.voucher.balance,
            status: c.voucher.status,
        }
    }
}

/// `GET /vouchers/{code}/activities`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivitiesView {
    pub code: VoucherCode,
    pub activities: Vec<Activity>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A voucher in a pickup order, with this partner's article code.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderVoucherView {
    pub code: VoucherCode,
    pub article_type: ArticleType,
    /// The partner's PMS article code for the type (`PUT /article-mapping`).
    pub article_code: Option<String>,
    pub value: Money,
    pub valid_until: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Buyer>,
    pub test_mode: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// This order's cursor: acknowledge it (or a later one) once processed.
    pub cursor: String,
    /// Who sold it: this property, or an issuer whose orders it picks up
    /// (portal pickup).
    #[schema(value_type = String)]
    pub issuer: PropertyId,
    pub order_ref: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub vouchers: Vec<OrderVoucherView>,
}

impl OrderView {
    /// The order as `viewer` picks it up: the buyer only in the issuer's own
    /// feed (a hotel picking up another property's orders books the
    /// voucher, not the buyer).
    pub fn of(o: &Order, mapping: &ArticleMapping, viewer: &PropertyId) -> Self {
        let own = &o.issuer == viewer;
        Self {
            cursor: o.seq.to_string(),
            issuer: o.issuer.clone(),
            order_ref: o.order_ref.clone(),
            issued_at: o.issued_at,
            vouchers: o
                .vouchers
                .iter()
                .map(|v| OrderVoucherView {
                    code: v.code.clone(),
                    article_type: v.article_type,
                    article_code: mapping.code_for(v.article_type).map(str::to_owned),
                    value: v.value,
                    valid_until: v.valid_until,
                    package: v.package.clone(),
                    buyer: if own { v.buyer.clone() } else { None },
                    test_mode: v.test_mode,
                })
                .collect(),
        }
    }
}

/// `GET /voucher-orders`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersView {
    pub orders: Vec<OrderView>,
    /// The last order's cursor in this page (or the cursor asked from):
    /// acknowledge it with `POST /voucher-orders/ack` once processed.
    pub cursor: String,
    /// More orders follow: ask again with `after=<cursor>`.
    pub more: bool,
}

/// `POST /voucher-orders/ack`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    pub cursor: String,
}

/// `GET /settlement` (JSON).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementView {
    #[schema(value_type = String)]
    pub property: PropertyId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub groups: Vec<SettlementGroup>,
    pub totals: Vec<CurrencyTotal>,
    pub lines: Vec<SettlementLine>,
}

/// `POST /voucher-write-offs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOffRequest {
    /// Only list what would be written off (the default, to be safe).
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// Codes to leave alone.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WriteOffLine {
    pub code: VoucherCode,
    pub amount: Money,
    pub valid_until: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WriteOffSkipped {
    pub code: VoucherCode,
    /// `live_holds`, or `changed` when the voucher moved while this ran.
    pub reason: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WriteOffView {
    pub dry_run: bool,
    /// Written off (or, in a dry run, would be).
    pub written_off: Vec<WriteOffLine>,
    pub excluded: Vec<VoucherCode>,
    pub skipped: Vec<WriteOffSkipped>,
    /// Per currency.
    pub totals: Vec<Money>,
}

/// `POST /voucher-imports`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Checked line by line: a bad line is reported, the others import.
    #[schema(value_type = Vec<rules::ImportLine>)]
    pub vouchers: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportLineResult {
    /// 1-based position in `vouchers`.
    pub line: usize,
    pub code: Option<String>,
    /// `imported` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<LineError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub imported: usize,
    pub failed: usize,
    pub lines: Vec<ImportLineResult>,
}

/// A voucher found by order reference or buyer email (`GET /vouchers?…`).
/// Its code is masked except the last four characters: the answer goes to
/// whoever searches, not to someone who holds the voucher.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundVoucherView {
    /// Masked: `****-****-****-****-E83R`.
    pub code: String,
    pub article_type: ArticleType,
    pub status: VoucherStatus,
    pub balance: Money,
    pub initial_value: Money,
    pub valid_until: Option<NaiveDate>,
    pub order_ref: Option<String>,
    pub buyer: Option<Buyer>,
    pub issued_at: DateTime<Utc>,
    pub test_mode: bool,
}

impl FoundVoucherView {
    pub fn of(v: &Voucher, now: DateTime<Utc>) -> Self {
        Self {
            code: v.code.masked_display(),
            article_type: v.article_type,
            status: v.status_at(now),
            balance: v.balance,
            initial_value: v.initial_value,
            valid_until: v.valid_until,
            order_ref: v.order_ref.clone(),
            buyer: v.buyer.clone(),
            issued_at: v.issued_at,
            test_mode: v.test_mode,
        }
    }
}

/// `GET /vouchers?order_ref=…` or `?buyer_email=…`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundVouchersView {
    /// Newest first.
    pub vouchers: Vec<FoundVoucherView>,
}
