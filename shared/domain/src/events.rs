//! Events: what changed, told to partners (signed webhooks) and operators
//! (an EventBridge bus) as it happens.
//!
//! An [`Event`] is written in the same transaction as the change it
//! describes (the outbox), so there is no event without its change and no
//! change without its event. A dispatcher later fans each event out to the
//! matching [`Subscription`]s as [`Delivery`] records and delivers them, at
//! least once, in order per aggregate (one voucher's events in ledger
//! order); receivers dedupe by the event's id.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{PropertyId, StoreError, ValidationError};

/// What happened. The wire name is `<aggregate>.<verb>`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum EventType {
    #[serde(rename = "voucher.issued")]
    VoucherIssued,
    #[serde(rename = "voucher.redeemed")]
    VoucherRedeemed,
    #[serde(rename = "voucher.reversed")]
    VoucherReversed,
    #[serde(rename = "voucher.written_off")]
    VoucherWrittenOff,
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "membership.sold")]
    MembershipSold,
    #[serde(rename = "membership.renewed")]
    MembershipRenewed,
    #[serde(rename = "roster.import_applied")]
    RosterImportApplied,
    #[serde(rename = "roster.import_held")]
    RosterImportHeld,
    #[serde(rename = "guest.screening_flagged")]
    GuestScreeningFlagged,
    #[serde(rename = "loyalty.file_delivered")]
    LoyaltyFileDelivered,
    #[serde(rename = "loyalty.export_failed")]
    LoyaltyExportFailed,
    #[serde(rename = "crm.sync_failed")]
    CrmSyncFailed,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
        EventType::VoucherIssued,
        EventType::VoucherRedeemed,
        EventType::VoucherReversed,
        EventType::VoucherWrittenOff,
        EventType::OrderCreated,
        EventType::OrderPaid,
        EventType::OrderCancelled,
        EventType::MembershipSold,
        EventType::MembershipRenewed,
        EventType::RosterImportApplied,
        EventType::RosterImportHeld,
        EventType::GuestScreeningFlagged,
        EventType::LoyaltyFileDelivered,
        EventType::LoyaltyExportFailed,
        EventType::CrmSyncFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::VoucherIssued => "voucher.issued",
            EventType::VoucherRedeemed => "voucher.redeemed",
            EventType::VoucherReversed => "voucher.reversed",
            EventType::VoucherWrittenOff => "voucher.written_off",
            EventType::OrderCreated => "order.created",
            EventType::OrderPaid => "order.paid",
            EventType::OrderCancelled => "order.cancelled",
            EventType::MembershipSold => "membership.sold",
            EventType::MembershipRenewed => "membership.renewed",
            EventType::RosterImportApplied => "roster.import_applied",
            EventType::RosterImportHeld => "roster.import_held",
            EventType::GuestScreeningFlagged => "guest.screening_flagged",
            EventType::LoyaltyFileDelivered => "loyalty.file_delivered",
            EventType::LoyaltyExportFailed => "loyalty.export_failed",
            EventType::CrmSyncFailed => "crm.sync_failed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| ValidationError::new("types", format!("unknown event type {s:?}")))
    }
}

/// One event as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UUID v7: time-ordered, so the outbox reads in the order of commits.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Where it happened: a live property or its test namespace.
    pub property: PropertyId,
    pub occurred_at: DateTime<Utc>,
    /// Test data (a sandbox key's, or a test voucher): delivered only to
    /// the property's test-mode subscriptions.
    pub test_mode: bool,
    /// What changed, as `<kind>:<id>` (`voucher:ABCD-…`): deliveries of one
    /// aggregate go out in order.
    pub aggregate: String,
    /// Ids, amounts and codes, as the matching GET answers them.
    pub data: Map<String, Value>,
    /// Personal data (emails, names), merged into `data` only for
    /// subscribers whose key may read guests.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub personal: Map<String, Value>,
}

impl Event {
    pub fn new(
        kind: EventType,
        property: &PropertyId,
        aggregate: impl Into<String>,
        data: Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            property: property.clone(),
            occurred_at: at,
            test_mode: property.is_sandbox(),
            aggregate: aggregate.into(),
            data: into_map(data),
            personal: Map::new(),
        }
    }

    /// Adds personal data (nulls are left out).
    pub fn with_personal(mut self, personal: Value) -> Self {
        self.personal = into_map(personal);
        self.personal.retain(|_, v| !v.is_null());
        self
    }

    /// Marks test data kept in a live property (test vouchers).
    pub fn in_test_mode(mut self, test: bool) -> Self {
        self.test_mode |= test;
        self
    }

    /// The subscriptions' property this event goes to: the test namespace
    /// for test data.
    pub fn audience(&self) -> PropertyId {
        if self.test_mode {
            self.property.sandbox()
        } else {
            self.property.live()
        }
    }

    /// The envelope a receiver gets: `{"id", "type", "property",
    /// "occurred_at", "test_mode", "data"}`, personal data only when
    /// `personal` is true.
    pub fn envelope(&self, personal: bool) -> Value {
        let mut data = self.data.clone();
        if personal {
            data.extend(self.personal.clone());
        }
        serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "property": self.property.live(),
            "occurred_at": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "test_mode": self.test_mode,
            "data": data,
        })
    }
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

/// What each change announces: the one place an event's type, aggregate,
/// data and personal data are decided. The repositories add the event to
/// the change's own transaction.
pub mod announce {
    use super::{Event, EventType};
    use crate::PropertyId;
    use crate::checkout::membership::Membership;
    use crate::checkout::order::{Order, OrderStatus};
    use crate::guest::Guest;
    use crate::guest::runs::SyncRun;
    use crate::guest::screening::ScreeningStatus;
    use crate::roster::import::{ImportReport, ImportStatus};
    use crate::voucher::{Activity, ActivityKind, Voucher};
    use serde_json::json;

    /// A voucher's activity: issues (and imports), redemptions (and
    /// captures), reversals and write-offs; holds, releases, loads and
    /// adjustments are not announced.
    pub fn voucher(v: &Voucher, a: &Activity) -> Option<Event> {
        let kind = match a.kind {
            ActivityKind::Issue | ActivityKind::Import => EventType::VoucherIssued,
            ActivityKind::Redeem | ActivityKind::Capture => EventType::VoucherRedeemed,
            ActivityKind::Reverse => EventType::VoucherReversed,
            ActivityKind::WriteOff => EventType::VoucherWrittenOff,
            _ => return None,
        };
        let data = json!({
            "code": v.code,
            "activity_id": a.id,
            "activity": a.kind,
            "amount": a.amount,
            "balance_after": a.balance_after,
            "status": v.status,
            "accepting_property": a.accepting_property,
            "redemption_id": a.redemption_id,
            "order_ref": v.order_ref,
        });
        let e = Event::new(
            kind,
            &v.issuer,
            format!("voucher:{}", v.code.key()),
            data,
            a.at,
        )
        .in_test_mode(v.test_mode);
        Some(match (&v.buyer, kind) {
            (Some(b), EventType::VoucherIssued) => {
                e.with_personal(json!({"buyer_name": b.name, "buyer_email": b.email}))
            }
            _ => e,
        })
    }

    /// An order as it is written: a new one is created (and paid, when
    /// paid in full at once); an existing one is written only when paid or
    /// cancelled.
    pub fn order(p: &PropertyId, o: &Order, created: bool) -> Vec<Event> {
        let at = if created {
            o.created_at
        } else {
            chrono::Utc::now()
        };
        let one = |kind| {
            Event::new(
                kind,
                p,
                format!("order:{}", o.id),
                json!({
                    "order_id": o.id,
                    "status": o.status,
                    "total": o.total,
                    "balance_due": o.balance_due,
                    "source": o.source,
                    "reseller": o.reseller,
                    "membership_reference": o.membership_reference,
                }),
                at,
            )
            .in_test_mode(o.test_mode)
            .with_personal(json!({
                "email": o.contact.email,
                "first_name": o.contact.first_name,
                "last_name": o.contact.last_name,
            }))
        };
        let mut out = Vec::new();
        if created {
            out.push(one(EventType::OrderCreated));
        }
        match o.status {
            OrderStatus::Confirmed => out.push(one(EventType::OrderPaid)),
            OrderStatus::Cancelled if !created => out.push(one(EventType::OrderCancelled)),
            _ => {}
        }
        out
    }

    /// A roster import that was applied (or approved) or held.
    pub fn roster_import(p: &PropertyId, r: &ImportReport) -> Option<Event> {
        let kind = match r.status {
            ImportStatus::Applied => EventType::RosterImportApplied,
            ImportStatus::Held => EventType::RosterImportHeld,
            ImportStatus::Rejected | ImportStatus::Skipped => return None,
        };
        Some(Event::new(
            kind,
            p,
            format!("roster:{p}"),
            json!({
                "import_id": r.id,
                "file": r.file,
                "status": r.status,
                "reason": r.reason,
                "rows": r.rows,
                "members": r.members,
                "previous_members": r.previous_members,
                "joined": r.joined,
                "left": r.left,
                "tier_changed": r.tier_changed,
                "unchanged": r.unchanged,
                "generation": r.generation,
            }),
            chrono::Utc::now(),
        ))
    }

    /// A guest profile whose screening just ended `flagged` (the reason
    /// names the rule matched; the guest's name and email are personal).
    pub fn screening(before: Option<&Guest>, next: &Guest) -> Option<Event> {
        let flagged = |g: &Guest| g.screening.status == Some(ScreeningStatus::Flagged);
        let again = before
            .is_some_and(|b| flagged(b) && b.screening.screened_at == next.screening.screened_at);
        if !flagged(next) || again {
            return None;
        }
        Some(
            Event::new(
                EventType::GuestScreeningFlagged,
                &next.property,
                format!("guest:{}", next.id),
                json!({
                    "guest_id": next.id,
                    "status": next.screening.status,
                    "reason": next.screening.reason,
                    "screened_at": next.screening.screened_at,
                    "cloudbeds_guest_id": next.crm.cloudbeds_guest_id,
                }),
                next.screening.screened_at.unwrap_or(next.updated_at),
            )
            .with_personal(json!({
                "email": next.email,
                "first_name": next.first_name,
                "last_name": next.last_name,
            })),
        )
    }

    /// A CRM sync run that ended with errors.
    pub fn crm_run(p: &PropertyId, run: &SyncRun) -> Option<Event> {
        if run.errors.is_empty() {
            return None;
        }
        Some(Event::new(
            EventType::CrmSyncFailed,
            p,
            format!("crm:{p}"),
            json!({
                "run_id": run.id,
                "trigger": run.trigger,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "errors": run.errors,
                "counts": run.counts,
            }),
            run.ended_at,
        ))
    }

    /// A loyalty export file renamed into place on the partner's server.
    pub fn loyalty_file(p: &PropertyId, file: &str, at: chrono::DateTime<chrono::Utc>) -> Event {
        Event::new(
            EventType::LoyaltyFileDelivered,
            p,
            format!("loyalty:{p}"),
            json!({ "file": file }),
            at,
        )
    }

    /// A loyalty export run that ended with errors.
    pub fn loyalty_failed(
        p: &PropertyId,
        errors: &[String],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Event {
        Event::new(
            EventType::LoyaltyExportFailed,
            p,
            format!("loyalty:{p}"),
            json!({ "errors": errors }),
            at,
        )
    }

    /// A membership written for the first time: sold, or renewed when it
    /// continues an earlier one.
    pub fn membership(p: &PropertyId, m: &Membership) -> Event {
        let kind = if m.renews.is_some() {
            EventType::MembershipRenewed
        } else {
            EventType::MembershipSold
        };
        Event::new(
            kind,
            p,
            format!("membership:{}", m.reference),
            json!({
                "reference": m.reference,
                "product_id": m.product_id,
                "order_id": m.order_id,
                "valid_from": m.valid_from,
                "expires_on": m.expires_on,
                "renews": m.renews,
            }),
            m.sold_at,
        )
        .in_test_mode(m.test_mode)
        .with_personal(json!({
            "email": m.contact.email,
            "first_name": m.contact.first_name,
            "last_name": m.contact.last_name,
        }))
    }
}

/// The events one transaction wrote for one property, stored together as
/// one outbox item (so a change announcing many things — a group order's
/// memberships — costs its transaction one more write, not one per event).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// In the order they were announced; never empty.
    pub events: Vec<Event>,
    /// The item's version (fan-out is conditioned on it).
    pub version: i64,
}

/// Most subscriptions one property may hold (each event fans out to all of
/// them in one transaction).
pub const MAX_SUBSCRIPTIONS: usize = 25;
/// How long a delivery is retried before it is marked failed.
pub const RETRY_FOR: Duration = Duration::hours(24);
/// How long a subscription may fail every delivery before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::days(3);
/// How long a receiver has to answer.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a subscription is delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SubscriptionStatus {
    Active,
    /// Every delivery failed for [`DISABLE_AFTER`]; create a new one once
    /// the receiver is fixed.
    Disabled {
        since: DateTime<Utc>,
        reason: String,
    },
}

/// A partner's webhook subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub property: PropertyId,
    pub url: String,
    pub types: BTreeSet<EventType>,
    /// The signing secret (`whsec_…`), shown to the partner only at
    /// creation and rotation.
    pub secret: String,
    /// The creating key could read guests: events carry personal data.
    pub personal_data: bool,
    pub created_by: crate::PartnerId,
    pub created_at: DateTime<Utc>,
    pub status: SubscriptionStatus,
    /// Since when every delivery has failed (cleared by a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
}

impl Subscription {
    pub fn wants(&self, e: &Event) -> bool {
        self.status == SubscriptionStatus::Active
            && self.property == e.audience()
            && self.types.contains(&e.kind)
    }
}

/// A new signing secret.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", hex::encode(bytes))
}

/// Checks a subscription's URL: `https://`, or `http://` to a loopback
/// host when `allow_loopback_http` (the hub served locally).
pub fn check_url(raw: &str, allow_loopback_http: bool) -> Result<String, ValidationError> {
    let bad = |m: &str| ValidationError::new("url", m);
    let raw = raw.trim();
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("must be one absolute URL of at most 2048 characters"));
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| bad("must be an absolute https:// URL"))?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host_port.is_empty() || host_port.contains('@') {
        return Err(bad("must name a host (and no user or password)"));
    }
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host == "::1" || host.starts_with("127.");
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback && allow_loopback_http => Ok(raw.to_owned()),
        "http" if loopback => Err(bad(
            "must be https:// (plain http only to a loopback host when the hub is served locally)",
        )),
        _ => Err(bad("must be https://")),
    }
}

/// Checks the event types asked for: at least one, each known.
pub fn check_types(raw: &[String]) -> Result<BTreeSet<EventType>, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(
            "types",
            "name at least one event type",
        ));
    }
    raw.iter().map(|t| t.parse()).collect()
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Retried for [`RETRY_FOR`] without a 2xx.
    Failed,
}

/// One try to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why it failed without an answer (timeout, refused connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event on its way to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event's id (one delivery per event and subscription).
    pub id: String,
    pub subscription: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub aggregate: String,
    /// The body sent, fixed at fan-out (personal data already decided).
    pub body: String,
    pub status: DeliveryStatus,
    pub created_at: DateTime<Utc>,
    pub next_try: Option<DateTime<Utc>>,
    pub attempts: Vec<DeliveryAttempt>,
}

/// At most this many attempts are kept on a delivery (the first and the
/// latest ones), so a day of retries stays one small item.
const KEEP_ATTEMPTS: usize = 20;

impl Delivery {
    pub fn new(event: &Event, sub: &Subscription) -> Self {
        Self {
            id: event.id.clone(),
            subscription: sub.id.clone(),
            kind: event.kind,
            aggregate: event.aggregate.clone(),
            body: event.envelope(sub.personal_data).to_string(),
            status: DeliveryStatus::Pending,
            created_at: event.occurred_at,
            next_try: Some(event.occurred_at),
            attempts: Vec::new(),
        }
    }

    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == DeliveryStatus::Pending && self.next_try.is_none_or(|t| t <= now)
    }

    /// Records a try: delivered on a 2xx; otherwise retried after an
    /// exponential back-off with jitter, or failed once [`RETRY_FOR`] has
    /// passed since the event.
    pub fn record(&mut self, attempt: DeliveryAttempt) {
        let ok = attempt.status_code.is_some_and(|s| (200..300).contains(&s));
        let at = attempt.at;
        if self.attempts.len() >= KEEP_ATTEMPTS {
            self.attempts.remove(1);
        }
        self.attempts.push(attempt);
        if ok {
            self.status = DeliveryStatus::Delivered;
            self.next_try = None;
        } else if at - self.created_at >= RETRY_FOR {
            self.status = DeliveryStatus::Failed;
            self.next_try = None;
        } else {
            self.next_try = Some(at + retry_delay(self.attempts.len() as u32));
        }
    }

    /// Asks for one more try now (a partner's manual retry): a failed
    /// delivery gets another day, a delivered one is sent again (the
    /// receiver dedupes by id).
    pub fn retry_now(&mut self, now: DateTime<Utc>) {
        if self.status != DeliveryStatus::Pending {
            self.created_at = now;
        }
        self.status = DeliveryStatus::Pending;
        self.next_try = Some(now);
    }
}

/// The wait after the `n`th failed try: 5 s doubling up to an hour, with
/// ±25 % jitter so a recovering receiver is not hit by every sender at once.
pub fn retry_delay(n: u32) -> Duration {
    let base_ms = (5_000u64 << n.saturating_sub(1).min(10)).min(3_600_000);
    let jitter = rand::random_range(0.75..=1.25);
    Duration::milliseconds((base_ms as f64 * jitter) as i64)
}

/// What one subscription's outcome does to it.
impl Subscription {
    /// After a failed try at `at`: disabled once it has failed for
    /// [`DISABLE_AFTER`]. Returns whether anything changed.
    pub fn failed_at(&mut self, at: DateTime<Utc>) -> bool {
        match self.failing_since {
            None => {
                self.failing_since = Some(at);
                true
            }
            Some(since) if at - since >= DISABLE_AFTER => {
                self.status = SubscriptionStatus::Disabled {
                    since: at,
                    reason: format!(
                        "every delivery failed from {} to {}",
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                };
                true
            }
            Some(_) => false,
        }
    }

    /// After a delivered try. Returns whether anything changed.
    pub fn succeeded(&mut self) -> bool {
        self.failing_since.take().is_some()
    }
}

/// Why an events request was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("a property holds at most {MAX_SUBSCRIPTIONS} webhook subscriptions")]
    TooManySubscriptions,
    #[error("no such webhook subscription for this property and key's world")]
    SubscriptionNotFound,
    #[error("no such delivery of this subscription")]
    DeliveryNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The events port: subscriptions, the outbox's undispatched events, and
/// deliveries. Events themselves are written by the repositories of the
/// changes they describe, in the same transaction.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// Adds a subscription; `false` when the property already holds
    /// [`MAX_SUBSCRIPTIONS`].
    async fn add_subscription(&self, sub: &Subscription) -> Result<bool, StoreError>;
    async fn subscription(
        &self,
        property: &PropertyId,
        id: &str,
    ) -> Result<Option<(Subscription, i64)>, StoreError>;
    async fn subscriptions(&self, property: &PropertyId) -> Result<Vec<Subscription>, StoreError>;
    /// Every subscription of every property (the dispatcher's list).
    async fn all_subscriptions(&self) -> Result<Vec<(Subscription, i64)>, StoreError>;
    /// Saves a subscription read at `version`; `false` if it changed
    /// meanwhile (read it again).
    async fn save_subscription(&self, sub: &Subscription, version: i64)
    -> Result<bool, StoreError>;
    /// Removes a subscription and its deliveries' queue.
    async fn delete_subscription(
        &self,
        property: &PropertyId,
        id: &str,
    ) -> Result<bool, StoreError>;

    /// An event that goes with no other write (a run that failed).
    async fn announce(&self, event: &Event) -> Result<(), StoreError>;
    /// Outbox entries not yet fanned out, oldest first.
    async fn undispatched(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// One entry's fan-out: its deliveries written (each once), then the
    /// entry marked dispatched. `false` if another dispatcher did it.
    async fn fan_out(
        &self,
        entry: &OutboxEntry,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError>;
    /// A property's events in the outbox entries after `after` (an event
    /// id), oldest first: up to `limit` entries.
    async fn events_after(
        &self,
        property: &PropertyId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// A subscription's pending deliveries, oldest event first.
    async fn pending_deliveries(
        &self,
        subscription: &str,
        limit: usize,
    ) -> Result<Vec<(Delivery, i64)>, StoreError>;
    /// A subscription's deliveries, newest first, from `before` (an event
    /// id) on.
    async fn deliveries(
        &self,
        subscription: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    async fn delivery(
        &self,
        subscription: &str,
        id: &str,
    ) -> Result<Option<(Delivery, i64)>, StoreError>;
    /// Saves a delivery read at `version`; `false` if it changed meanwhile.
    async fn save_delivery(&self, d: &Delivery, version: i64) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new(
            EventType::VoucherRedeemed,
            &PropertyId::parse_live("hotel").unwrap(),
            "voucher:X",
            serde_json::json!({"code": "X", "amount": {"amount": 100, "currency": "EUR"}}),
            Utc::now(),
        )
        .with_personal(serde_json::json!({"buyer_email": "a@b.example", "buyer_name": null}))
    }

    #[test]
    fn types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("voucher.eaten".parse::<EventType>().is_err());
    }

    #[test]
    fn personal_data_only_when_allowed() {
        let e = event();
        let with = e.envelope(true);
        let without = e.envelope(false);
        assert_eq!(with["data"]["buyer_email"], "a@b.example");
        assert!(with["data"].get("buyer_name").is_none());
        assert!(without["data"].get("buyer_email").is_none());
        assert_eq!(without["data"]["code"], "X");
        assert_eq!(without["test_mode"], false);
        assert_eq!(without["type"], "voucher.redeemed");
    }

    #[test]
    fn sandbox_events_are_test_mode_under_the_live_id() {
        let p = PropertyId::parse_live("hotel").unwrap().sandbox();
        let e = Event::new(EventType::OrderPaid, &p, "order:1", Value::Null, Utc::now());
        let env = e.envelope(false);
        assert_eq!(env["test_mode"], true);
        assert_eq!(env["property"], "hotel");
    }

    #[test]
    fn urls() {
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert!(check_url("http://example.com/hook", true).is_err());
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://localhost/hook", false).is_err());
        assert!(check_url("ftp://example.com", true).is_err());
        assert!(check_url("https://user:pw@example.com", true).is_err());
        assert!(check_url("https://", true).is_err());
    }

    #[test]
    fn retries_back_off_then_fail_after_a_day() {
        let e = event();
        let sub = Subscription {
            id: "s".into(),
            property: e.property.clone(),
            url: "https://x.example".into(),
            types: BTreeSet::from([EventType::VoucherRedeemed]),
            secret: new_secret(),
            personal_data: false,
            created_by: crate::PartnerId("p".into()),
            created_at: e.occurred_at,
            status: SubscriptionStatus::Active,
            failing_since: None,
        };
        let mut d = Delivery::new(&e, &sub);
        assert!(!d.body.contains("a@b.example"));
        let mut at = e.occurred_at;
        let mut waits = Vec::new();
        while d.status == DeliveryStatus::Pending {
            d.record(DeliveryAttempt {
                at,
                status_code: Some(503),
                error: None,
            });
            if let Some(next) = d.next_try {
                waits.push(next - at);
                at = next;
            }
        }
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert!(at - e.occurred_at >= RETRY_FOR);
        assert!(waits[1] > waits[0] && waits.iter().all(|w| *w <= Duration::minutes(75)));
        assert!(d.attempts.len() <= KEEP_ATTEMPTS);
        d.retry_now(at);
        assert!(d.is_due(at));
        d.record(DeliveryAttempt {
            at,
            status_code: Some(204),
            error: None,
        });
        assert_eq!(d.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn a_subscription_failing_for_three_days_is_disabled() {
        let now = Utc::now();
        let mut sub = Subscription {
            id: "s".into(),
            property: PropertyId::parse_live("hotel").unwrap(),
            url: "https://x.example".into(),
            types: BTreeSet::new(),
            secret: new_secret(),
            personal_data: false,
            created_by: crate::PartnerId("p".into()),
            created_at: now,
            status: SubscriptionStatus::Active,
            failing_since: None,
        };
        assert!(sub.failed_at(now));
        assert!(!sub.failed_at(now + Duration::days(2)));
        assert!(sub.failed_at(now + Duration::days(3)));
        assert!(matches!(sub.status, SubscriptionStatus::Disabled { .. }));
    }
}
