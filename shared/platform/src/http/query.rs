//! The query-string extractor every route uses: a bad query string is a
//! JSON 400 `invalid_query` (axum's own `Query` answers plain text).

use axum::extract::FromRequestParts;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::caller::TestMode;
use super::error::ApiError;

pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // A `test_mode` in the query must agree with the key (known once
        // the `Caller` before this extractor has authenticated it).
        if let Some(TestMode(test)) = parts.extensions.get::<TestMode>().copied()
            && let Ok(pairs) =
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        {
            let disagrees = pairs
                .0
                .iter()
                .filter(|(k, _)| k == "test_mode")
                .any(|(_, v)| v.parse::<bool>().is_ok_and(|b| b != test));
            if disagrees {
                return Err(super::caller::test_mode_mismatch(test));
            }
        }
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}
