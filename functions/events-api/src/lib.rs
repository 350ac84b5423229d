//! `events-api`: partners subscribe to GuestHub's events with signed
//! webhooks, see their deliveries and retry one. The dispatcher that fans
//! events out and delivers them is `platform::events` (run by the
//! `events-dispatcher` binary in AWS and in process by `guesthub serve`).
//!
//! Every route needs the `events` scope. A subscription belongs to the
//! caller's world: a sandbox key's subscriptions get test events only.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use domain::Scope;
use domain::events::{
    Delivery, DeliveryAttempt, DeliveryStatus, EventStore, EventType, EventsError, Subscription,
    SubscriptionStatus, check_types, check_url, new_secret,
};
use platform::Store;
use platform::http::{ApiError, ApiJson, ApiQuery, Caller, scoped};
use platform::store::Retry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Set by the served hub: subscriptions may then name `http://` loopback
/// URLs (a receiver on the same machine). In AWS only `https://`.
#[derive(Debug, Clone, Copy)]
pub struct AllowLoopbackHttp;

/// Every route of this function, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<Store> {
    OpenApiRouter::new()
        .routes(scoped(
            routes!(create_subscription, list_subscriptions),
            Scope::Events,
        ))
        .routes(scoped(
            routes!(get_subscription, delete_subscription),
            Scope::Events,
        ))
        .routes(scoped(routes!(rotate_secret), Scope::Events))
        .routes(scoped(routes!(list_deliveries), Scope::Events))
        .routes(scoped(routes!(retry_delivery), Scope::Events))
}

/// The router bound to a store, with the shared middleware.
pub fn router(store: Store, max_body_bytes: usize) -> axum::Router {
    let (router, _) = routes().with_state(store).split_for_parts();
    platform::http::serve_layers(router, max_body_bytes)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed: `https://…` (a loopback `http://` URL only
    /// when the hub is served locally).
    pub url: String,
    /// The event types to receive (at least one), e.g. `voucher.redeemed`.
    pub types: Vec<String>,
}

/// A subscription as a partner sees it (never its secret, except once).
#[derive(Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub types: BTreeSet<EventType>,
    /// `active`, or `disabled` (with since and reason) after three days
    /// of failed deliveries.
    pub status: SubscriptionStatus,
    /// Events carry guests' names and emails (the creating key has the
    /// `guests` scope).
    pub personal_data: bool,
    pub test_mode: bool,
    pub created_at: DateTime<Utc>,
    /// Since when every delivery has failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id.clone(),
            url: s.url.clone(),
            types: s.types.clone(),
            status: s.status.clone(),
            personal_data: s.personal_data,
            test_mode: s.property.is_sandbox(),
            created_at: s.created_at,
            failing_since: s.failing_since,
        }
    }
}

/// A subscription with its signing secret: shown only at creation and
/// rotation. Verify `GuestHub-Signature` with it.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

/// How many times a change re-reads after the dispatcher changed the same
/// record meanwhile.
const ATTEMPTS: u32 = 5;

fn busy() -> ApiError {
    domain::StoreError::Unavailable("the subscription is busy; try again".into()).into()
}

async fn find(
    store: &Store,
    caller: &Caller,
    id: &str,
) -> Result<(Subscription, i64), EventsError> {
    store
        .subscription(&caller.property.id, id)
        .await?
        .ok_or(EventsError::SubscriptionNotFound)
}

/// Subscribes to events. The answer carries the signing secret, shown
/// only now.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/webhook-subscriptions",
    tag = "events",
    params(("property" = String, Path, description = "Property id")),
    request_body = NewSubscription,
    responses(
        (status = 201, description = "Subscribed", body = SubscriptionWithSecret),
        (status = 400, description = "Invalid url or types", body = platform::http::error::ErrorBody),
        (status = 409, description = "too_many_subscriptions", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn create_subscription(
    State(store): State<Store>,
    caller: Caller,
    loopback: Option<Extension<AllowLoopbackHttp>>,
    body: ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<SubscriptionWithSecret>), ApiError> {
    let url = check_url(&body.value.url, loopback.is_some())?;
    let types = check_types(&body.value.types)?;
    let sub = Subscription {
        id: uuid::Uuid::now_v7().to_string(),
        property: caller.property.id.clone(),
        url,
        types,
        secret: new_secret(),
        personal_data: caller.partner.has_scope(Scope::Guests),
        created_by: caller.partner.id.clone(),
        created_at: store.clock().now(),
        status: SubscriptionStatus::Active,
        failing_since: None,
    };
    if !store.add_subscription(&sub).await? {
        return Err(EventsError::TooManySubscriptions.into());
    }
    tracing::info!(subscription = %sub.id, property = %sub.property, types = sub.types.len(), "webhook subscription created");
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionWithSecret {
            subscription: (&sub).into(),
            secret: sub.secret,
        }),
    ))
}

/// The property's webhook subscriptions in the key's world.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/webhook-subscriptions",
    tag = "events",
    params(("property" = String, Path, description = "Property id")),
    responses((status = 200, body = SubscriptionList)),
    security(("partner_key" = []))
)]
pub async fn list_subscriptions(
    State(store): State<Store>,
    caller: Caller,
) -> Result<Json<SubscriptionList>, ApiError> {
    let subs = store.subscriptions(&caller.property.id).await?;
    Ok(Json(SubscriptionList {
        subscriptions: subs.iter().map(SubscriptionView::from).collect(),
    }))
}

/// One webhook subscription.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/webhook-subscriptions/{id}",
    tag = "events",
    params(("property" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = SubscriptionView),
        (status = 404, description = "subscription_not_found", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn get_subscription(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let (sub, _) = find(&store, &caller, &path.1).await?;
    Ok(Json((&sub).into()))
}

/// Ends a subscription: nothing more is delivered to it. Answers the
/// subscription as it was.
#[utoipa::path(
    delete,
    path = "/v1/properties/{property}/webhook-subscriptions/{id}",
    tag = "events",
    params(("property" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Deleted", body = SubscriptionView),
        (status = 404, description = "subscription_not_found", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn delete_subscription(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let (sub, _) = find(&store, &caller, &path.1).await?;
    if store
        .delete_subscription(&caller.property.id, &sub.id)
        .await?
    {
        Ok(Json((&sub).into()))
    } else {
        Err(EventsError::SubscriptionNotFound.into())
    }
}

/// A new signing secret; the old one stops signing at once. A disabled
/// subscription is not enabled again (create a new one).
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/webhook-subscriptions/{id}/rotate-secret",
    tag = "events",
    params(("property" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = SubscriptionWithSecret),
        (status = 404, description = "subscription_not_found", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn rotate_secret(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<SubscriptionWithSecret>, ApiError> {
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (mut sub, version) = find(&store, &caller, &path.1).await?;
        sub.secret = new_secret();
        // Not saved: the dispatcher recorded an outcome meanwhile.
        if store.save_subscription(&sub, version).await? {
            return Ok(Json(SubscriptionWithSecret {
                subscription: (&sub).into(),
                secret: sub.secret,
            }));
        }
    }
    Err(busy())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// How many, newest first (1-100, default 20).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

/// One event's delivery to this subscription.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The event's id (`GuestHub-Event-Id`).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub status: DeliveryStatus,
    pub created_at: DateTime<Utc>,
    /// When it is tried next (pending only).
    pub next_try: Option<DateTime<Utc>>,
    /// Every try: when, the receiver's status code or why none came.
    pub attempts: Vec<DeliveryAttempt>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            kind: d.kind,
            status: d.status,
            created_at: d.created_at,
            next_try: d.next_try,
            attempts: d.attempts.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next page; absent on the last.
    pub next: Option<String>,
}

/// A subscription's deliveries, newest first, with their tries.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/webhook-subscriptions/{id}/deliveries",
    tag = "events",
    params(("property" = String, Path), ("id" = String, Path), DeliveriesQuery),
    responses(
        (status = 200, body = DeliveryList),
        (status = 400, description = "invalid_field (limit)", body = platform::http::error::ErrorBody),
        (status = 404, description = "subscription_not_found", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn list_deliveries(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = match q.limit {
        None => 20,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return Err(domain::ValidationError::new("limit", "between 1 and 100").into());
        }
    };
    let (sub, _) = find(&store, &caller, &path.1).await?;
    let list = store
        .deliveries(&sub.id, q.before.as_deref(), limit)
        .await?;
    let next = (list.len() == limit)
        .then(|| list.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(DeliveryList {
        deliveries: list.iter().map(DeliveryView::from).collect(),
        next,
    }))
}

/// Tries a delivery again at the next dispatch (within seconds): a failed
/// one gets another day of retries.
#[utoipa::path(
    post,
    path = "/v1/properties/{property}/webhook-subscriptions/{id}/deliveries/{delivery_id}/retry",
    tag = "events",
    params(("property" = String, Path), ("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 202, description = "Queued", body = DeliveryView),
        (status = 404, description = "subscription_not_found, delivery_not_found", body = platform::http::error::ErrorBody),
    ),
    security(("partner_key" = []))
)]
pub async fn retry_delivery(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let (sub, _) = find(&store, &caller, &path.1).await?;
    let mut retry = Retry::new(ATTEMPTS);
    while retry.next().await.is_some() {
        let (mut d, version) = store
            .delivery(&sub.id, &path.2)
            .await?
            .ok_or(EventsError::DeliveryNotFound)?;
        d.retry_now(store.clock().now());
        if store.save_delivery(&d, version).await? {
            return Ok((StatusCode::ACCEPTED, Json((&d).into())));
        }
    }
    Err(busy())
}
