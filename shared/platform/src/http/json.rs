//! The JSON body extractor: 413 over the limit, 415 for other media types,
//! 400 naming the offending field for malformed JSON, and a canonical
//! fingerprint of the body for idempotency.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ApiError;

/// A parsed body plus its canonical form (keys sorted, whitespace dropped):
/// two bodies that mean the same JSON get the same fingerprint.
pub struct ApiJson<T> {
    pub value: T,
    pub canonical: String,
}

fn is_json(ct: &str) -> bool {
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
}

/// Parses JSON bytes into `T`, naming the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, String), ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde_json refuses nesting deeper than 128 levels, so a hostile deep
    // body fails here rather than exhausting the stack.
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
            .with_details(json!({ "line": e.line(), "column": e.column() }))
    })?;
    let canonical = value.to_string();
    let parsed = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request("invalid_field", format!("{path}: {}", e.inner()))
            .with_details(json!({ "field": path }))
    })?;
    Ok((parsed, canonical))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE)
            && !ct.to_str().is_ok_and(is_json)
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is over the size limit",
                    )
                } else {
                    ApiError::bad_request("unreadable_body", "the request body could not be read")
                }
            })?;
        let (value, canonical) = parse_json(&bytes)?;
        Ok(Self { value, canonical })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        amount: i64,
        inner: Inner,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        number: String,
    }

    #[test]
    fn names_the_bad_field() {
        let err = parse_json::<Body>(br#"{"amount": 1, "inner": {"number": 5}}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.details.unwrap()["field"], "inner.number");
    }

    #[test]
    fn malformed_json_is_400() {
        let err = parse_json::<Body>(b"{\"amount\": ").unwrap_err();
        assert_eq!(err.code, "malformed_json");
    }

    #[test]
    fn deep_json_is_refused() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_json::<Value>(deep.as_bytes()).is_err());
    }

    #[test]
    fn canonical_ignores_key_order_and_space() {
        let (_, a) = parse_json::<Value>(br#"{"b":1, "a":2}"#).unwrap();
        let (_, b) = parse_json::<Value>(br#"{ "a" : 2 ,"b":1 }"#).unwrap();
        assert_eq!(a, b);
    }
}
