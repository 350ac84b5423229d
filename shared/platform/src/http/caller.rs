//! Who is calling, for which property. Order of checks, so nothing leaks:
//! no or bad key → 401; a property the partner may not act for (or that does
//! not exist) → 404, the same answer either way; a missing scope → 403.

use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use domain::{Partner, Property, PropertyId, Scope};
use http::header;
use http::request::Parts;

use super::error::ApiError;
use crate::Store;
use crate::auth::{secret_matches, split_key};

/// The scope a route needs. Set on the route with [`scoped`]; the `Caller`
/// extractor checks it, so a missing scope is 403 before the route's query
/// or body is even parsed. Handlers never check scopes themselves; a route
/// taking a `Caller` without a declared scope answers 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredScope(pub Scope);

/// Declares the scope of a route (all methods of one `routes!` group).
pub fn scoped<S>(
    route: utoipa_axum::router::UtoipaMethodRouter<S>,
    scope: Scope,
) -> utoipa_axum::router::UtoipaMethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (schemas, paths, method_router) = route;
    (
        schemas,
        paths,
        method_router.layer(axum::Extension(RequiredScope(scope))),
    )
}

/// An authenticated partner acting for one of its properties.
#[derive(Debug, Clone)]
pub struct Caller {
    pub partner: Partner,
    pub property: Property,
}

fn property_not_found() -> ApiError {
    ApiError::not_found("property_not_found", "no such property for this key")
}

/// Finds the partner holding the bearer key in `parts`, or 401.
pub async fn authenticate(store: &Store, parts: &Parts) -> Result<Partner, ApiError> {
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let (key_id, secret) = split_key(presented).ok_or_else(ApiError::unauthorized)?;
    let partner = store
        .caller_partner(key_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if partner.disabled || !secret_matches(secret, &partner.key_hash) {
        return Err(ApiError::unauthorized());
    }
    Ok(partner)
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Store: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let store = Store::from_ref(state);
        let partner = authenticate(&store, parts).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| property_not_found())?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "property")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(property_not_found)?;
        let id = PropertyId::parse(&raw).map_err(|_| property_not_found())?;
        if !partner.may_act_for(&id) {
            return Err(property_not_found());
        }
        let property = store
            .caller_property(&id)
            .await?
            .ok_or_else(property_not_found)?;
        // Every partner route declares its scope where it is registered; a
        // route that forgot is refused rather than open to every key.
        let Some(RequiredScope(scope)) = parts.extensions.get::<RequiredScope>().copied() else {
            tracing::error!("a partner route was registered without its scope");
            return Err(ApiError::internal("route declares no scope"));
        };
        if !partner.has_scope(scope) {
            return Err(ApiError::forbidden(scope.as_str()));
        }
        Ok(Caller { partner, property })
    }
}
