//! The event dispatcher: fans the outbox's new events out to the matching
//! webhook subscriptions (and publishes them to the operators' bus), then
//! delivers what is due, signed, at least once, in order per aggregate.
//!
//! One run ([`Dispatcher::run_once`]) is what a tick of the served hub's
//! loop and one invocation of the AWS dispatcher function do. Runs may
//! overlap: fan-out is a version-checked transaction per event, and each
//! property's deliveries are sent under its `EventDelivery` lease.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::events::{
    DELIVERY_TIMEOUT, Delivery, DeliveryAttempt, DeliveryStatus, Event, EventStore, Subscription,
};
use domain::ports::LeasedJob;
use domain::{PropertyId, StoreError};

use crate::Store;
use crate::jobs::{self, Stop};

/// Events read from the outbox per query.
const FAN_OUT_PAGE: usize = 100;
/// Deliveries of one subscription looked at per run.
const DELIVERY_PAGE: usize = 200;
/// How long a property's delivery lease lasts (renewed while it runs).
const DELIVERY_LEASE: Duration = Duration::from_secs(60);

/// Where events go besides webhooks: an EventBridge bus in AWS.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes every event or fails (the events stay in the outbox and
    /// are published again by the next run).
    async fn publish(&self, events: &[Event]) -> Result<(), String>;
}

/// `GuestHub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let v1 = crate::screening::sign(secret, &t.to_string(), body);
    format!("t={t},v1={}", v1.trim_start_matches("sha256="))
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    /// Events taken from the outbox.
    pub fanned_out: usize,
    pub delivered: usize,
    /// Tries that got no 2xx (retried later).
    pub retried: usize,
    /// Deliveries given up after a day.
    pub failed: usize,
    pub disabled: Vec<String>,
    /// Properties whose deliveries another run was sending.
    pub busy: usize,
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    http: reqwest::Client,
    bus: Option<Arc<dyn EventBus>>,
    by: String,
}

impl Dispatcher {
    /// `by` names the runner in leases (`guesthub serve`, a Lambda request).
    pub fn new(store: Store, bus: Option<Arc<dyn EventBus>>, by: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("GuestHub-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            store,
            http,
            bus,
            by: by.into(),
        }
    }

    /// Fans out every new event, then sends every due delivery; stops at
    /// the next safe point (between events, between deliveries) on `stop`.
    pub async fn run_once(&self, stop: &Stop) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let subs = self.store.all_subscriptions().await?;
        report.fanned_out = self.fan_out(&subs, stop).await?;
        let mut by_property: BTreeMap<PropertyId, Vec<(Subscription, i64)>> = BTreeMap::new();
        for (s, v) in subs {
            if s.status == domain::events::SubscriptionStatus::Active {
                by_property
                    .entry(s.property.clone())
                    .or_default()
                    .push((s, v));
            }
        }
        for (p, subs) in by_property {
            if stop.is_cancelled() {
                break;
            }
            let held = match jobs::take(
                &self.store,
                LeasedJob::EventDelivery,
                &p,
                &self.by,
                DELIVERY_LEASE,
                stop,
            )
            .await?
            {
                Ok(h) => h,
                Err(_) => {
                    report.busy += 1;
                    continue;
                }
            };
            for (sub, version) in subs {
                if held.stop().is_cancelled() {
                    break;
                }
                if let Err(e) = self.deliver(sub, version, held.stop(), &mut report).await {
                    tracing::warn!(property = %p, error = %e, "webhook deliveries stopped; the next run goes on");
                }
            }
            held.release().await;
        }
        Ok(report)
    }

    /// Takes new events from the outbox: publishes them to the bus, then
    /// writes one delivery per matching subscription and marks the event
    /// dispatched, in one transaction per event.
    async fn fan_out(
        &self,
        subs: &[(Subscription, i64)],
        stop: &Stop,
    ) -> Result<usize, StoreError> {
        let mut done = 0;
        loop {
            let entries = self.store.undispatched(FAN_OUT_PAGE).await?;
            if entries.is_empty() || stop.is_cancelled() {
                return Ok(done);
            }
            let mut progressed = false;
            for entry in &entries {
                if let Some(bus) = &self.bus
                    && let Err(e) = bus.publish(&entry.events).await
                {
                    tracing::warn!(error = %e, "publishing events failed; the next run tries again");
                    return Ok(done);
                }
                let deliveries: Vec<Delivery> = entry
                    .events
                    .iter()
                    .flat_map(|e| {
                        subs.iter()
                            .filter(|(s, _)| s.wants(e))
                            .map(|(s, _)| Delivery::new(e, s))
                    })
                    .collect();
                // False: another run fanned it out; its index entry lags.
                if self.store.fan_out(entry, &deliveries).await? {
                    done += entry.events.len();
                    progressed = true;
                }
                if stop.is_cancelled() {
                    return Ok(done);
                }
            }
            // Only entries the index still lists though they are done.
            if !progressed {
                return Ok(done);
            }
        }
    }

    /// Sends a subscription's due deliveries, oldest first. An aggregate
    /// whose earlier delivery is waiting or failed now waits too, so one
    /// voucher's events arrive in ledger order; a receiver that cannot be
    /// reached is not tried again in this run.
    async fn deliver(
        &self,
        mut sub: Subscription,
        mut version: i64,
        stop: &Stop,
        report: &mut DispatchReport,
    ) -> Result<(), StoreError> {
        let pending = self
            .store
            .pending_deliveries(&sub.id, DELIVERY_PAGE)
            .await?;
        let mut waiting: HashSet<String> = HashSet::new();
        for (listed, _) in pending {
            if stop.is_cancelled() {
                break;
            }
            if waiting.contains(&listed.aggregate) {
                continue;
            }
            // The index may lag: decide on the delivery as it is now.
            let Some((mut d, v)) = self.store.delivery(&sub.id, &listed.id).await? else {
                continue;
            };
            let now = self.store.clock().now();
            if d.status != DeliveryStatus::Pending {
                continue;
            }
            if !d.is_due(now) {
                waiting.insert(d.aggregate.clone());
                continue;
            }
            let attempt = self.post(&sub, &d, now).await;
            let unreachable = attempt.status_code.is_none();
            d.record(attempt);
            // Not saved: a partner's retry changed it meanwhile; the try
            // is not recorded, the next run sends again.
            self.store.save_delivery(&d, v).await?;
            let changed = match d.status {
                DeliveryStatus::Delivered => {
                    report.delivered += 1;
                    sub.succeeded()
                }
                DeliveryStatus::Failed => {
                    report.failed += 1;
                    sub.failed_at(now)
                }
                DeliveryStatus::Pending => {
                    report.retried += 1;
                    waiting.insert(d.aggregate.clone());
                    sub.failed_at(now)
                }
            };
            if changed {
                if !self.store.save_subscription(&sub, version).await? {
                    // Rotated, deleted or changed meanwhile: the next run
                    // reads it again.
                    return Ok(());
                }
                version += 1;
                if let domain::events::SubscriptionStatus::Disabled { reason, .. } = &sub.status {
                    tracing::warn!(subscription = %sub.id, property = %sub.property, %reason, "webhook subscription disabled");
                    report.disabled.push(sub.id.clone());
                    return Ok(());
                }
            }
            if unreachable {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn post(&self, sub: &Subscription, d: &Delivery, now: DateTime<Utc>) -> DeliveryAttempt {
        let t = now.timestamp();
        let sent = self
            .http
            .post(&sub.url)
            .header("content-type", "application/json")
            .header(
                "GuestHub-Signature",
                signature(&sub.secret, t, d.body.as_bytes()),
            )
            .header("GuestHub-Event-Id", &d.id)
            .header("GuestHub-Event-Type", d.kind.as_str())
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) => DeliveryAttempt {
                at: now,
                status_code: Some(r.status().as_u16()),
                error: None,
            },
            Err(e) => DeliveryAttempt {
                at: now,
                status_code: None,
                error: Some(if e.is_timeout() {
                    "no answer within 10 s".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                }),
            },
        }
    }
}
