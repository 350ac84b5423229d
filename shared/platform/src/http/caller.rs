//! Who is calling, for which property. Order of checks, so nothing leaks:
//! no or bad key → 401; a property the partner may not act for (or that does
//! not exist) → 404, the same answer either way; a missing scope → 403.

use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use domain::{Partner, Property, PropertyId, Scope};
use http::header;
use http::request::Parts;

use super::error::ApiError;
use crate::Store;
use crate::auth::{is_test_key, secret_matches, split_key};

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

/// An authenticated partner acting for one of its properties. A sandbox
/// key (`ghk_test_…`) acts in the property's test namespace: `property` is
/// [`Property::sandbox`], so every property-scoped item it reads or writes
/// is keyed apart from live data; `test_mode` is set.
#[derive(Debug, Clone)]
pub struct Caller {
    pub partner: Partner,
    pub property: Property,
    pub test_mode: bool,
}

/// Whether the request runs in test mode, for extractors that read the
/// body or query after [`Caller`] (`test_mode` there must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestMode(pub bool);

/// 422 `test_mode_mismatch`: a request's `test_mode` is not its key's.
pub fn test_mode_mismatch(key_test_mode: bool) -> ApiError {
    ApiError::rule(
        "test_mode_mismatch",
        if key_test_mode {
            "this is a sandbox key (ghk_test_): its requests are test mode"
        } else {
            "this is a live key: test mode needs a sandbox key (ghk_test_)"
        },
    )
}

impl Caller {
    /// The live property, whose configuration (products, the club roster)
    /// sandbox requests read as well.
    pub fn live_property(&self) -> domain::PropertyId {
        self.property.id.live()
    }

    /// 422 `test_mode_mismatch` for a sandbox key: what this route changes
    /// is live configuration.
    pub fn require_live(&self) -> Result<(), ApiError> {
        if self.test_mode {
            Err(test_mode_mismatch(true))
        } else {
            Ok(())
        }
    }
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
    if partner.disabled
        || partner.test != is_test_key(presented)
        || !secret_matches(secret, &partner.key_hash)
    {
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
        let id = PropertyId::parse_live(&raw).map_err(|_| property_not_found())?;
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
        let test_mode = partner.test;
        parts.extensions.insert(TestMode(test_mode));
        let (partner, property) = if test_mode {
            // In the test namespaces of its properties throughout: what it
            // may see and act for, as what it is at.
            let mut partner = partner;
            partner.properties = partner.properties.iter().map(PropertyId::sandbox).collect();
            (partner, property.sandbox())
        } else {
            (partner, property)
        };
        Ok(Caller {
            partner,
            property,
            test_mode,
        })
    }
}
