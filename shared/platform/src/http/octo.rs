//! The OCTO supplier API's extractors: the hub's own ([`Caller`], the JSON
//! body), answering OCTO's error shape (`OctoApiError`), and the
//! `Octo-Capabilities` request header.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use domain::Partner;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::caller::{Caller, RequiredScope, authenticate};
use super::error::{ApiError, OctoApiError};
use super::json::parse_json;
use crate::Store;

/// The capability this supplier implements besides the core.
pub const PRICING: &str = "octo/pricing";

/// A partner acting for the property in the path, as [`Caller`] checks it.
#[derive(Debug, Clone)]
pub struct OctoCaller(pub Caller);

impl<S> FromRequestParts<S> for OctoCaller
where
    S: Send + Sync,
    Store: FromRef<S>,
{
    type Rejection = OctoApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(OctoCaller(Caller::from_request_parts(parts, state).await?))
    }
}

/// A partner with the route's scope, for routes without a property.
#[derive(Debug, Clone)]
pub struct OctoPartner(pub Partner);

impl<S> FromRequestParts<S> for OctoPartner
where
    S: Send + Sync,
    Store: FromRef<S>,
{
    type Rejection = OctoApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let store = Store::from_ref(state);
        let partner = authenticate(&store, parts).await?;
        let Some(RequiredScope(scope)) = parts.extensions.get::<RequiredScope>().copied() else {
            return Err(ApiError::internal("route declares no scope").into());
        };
        if !partner.has_scope(scope) {
            return Err(ApiError::forbidden(scope.as_str()).into());
        }
        Ok(OctoPartner(partner))
    }
}

/// The capabilities a request asked for that this supplier applies (the
/// core and `octo/pricing`); any other is not applied and not answered in
/// the response's `Octo-Capabilities`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub pricing: bool,
}

impl Capabilities {
    /// The response header's value.
    pub fn header(&self) -> &'static str {
        if self.pricing { PRICING } else { "" }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Capabilities {
    type Rejection = OctoApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pricing = parts
            .headers
            .get_all("octo-capabilities")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|c| c.trim().eq_ignore_ascii_case(PRICING));
        Ok(Capabilities { pricing })
    }
}

/// A JSON body, refused in OCTO's shape (`BAD_REQUEST`).
#[derive(Debug, Clone)]
pub struct OctoJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OctoJson<T> {
    type Rejection = OctoApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(ApiError::from)?;
        let (value, _) = parse_json::<T>(&bytes)?;
        Ok(OctoJson(value))
    }
}
