//! The JSON body extractor: 413 over the limit, 415 for other media types,
//! 400 naming the offending field for malformed JSON, and a canonical
//! fingerprint of the body for idempotency.
//!
//! Every route's body goes through it, so two rules hold for the whole API
//! in one place: a key given twice in one object is 400 `duplicate_field`
//! (JSON leaves it undefined which one wins), and a field the route does not
//! know is 400 `invalid_field` naming it — nothing is accepted and silently
//! dropped.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::{StatusCode, header};
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

use super::caller::TestMode;
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

/// Reads JSON into a `Value` like `serde_json` does, but refuses a key
/// that appears twice in one object, noting its path in `dup`.
struct Unique<'a> {
    path: String,
    dup: &'a RefCell<Option<String>>,
}

impl Unique<'_> {
    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Unique {
            path: format!("{}[{}]", self.path, items.len()),
            dup: self.dup,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut seen = HashSet::new();
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.child(&key);
            if !seen.insert(key.clone()) {
                let message = format!("{path}: the key is given more than once");
                *self.dup.borrow_mut() = Some(path);
                return Err(A::Error::custom(message));
            }
            let v = map.next_value_seed(Unique {
                path,
                dup: self.dup,
            })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A path as the other 400 answers write it: `items[0].contact.name`.
fn dotted(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        P::Map { parent, key } => {
            let parent = dotted(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            dotted(parent)
        }
    }
}

/// Reads `T` from a JSON value as every body is read: a field `T` does not
/// take is 400 `invalid_field` naming it, as is a value of the wrong shape.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let mut ignored: Vec<String> = Vec::new();
    let parsed = {
        let mut note = |path: serde_ignored::Path| ignored.push(dotted(&path));
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note))
    }
    .map_err(|e| {
        let mut path = e.path().to_string();
        let reason = e.inner().to_string();
        // Where a type refuses an unknown field itself (inside a tagged
        // enum, say), the path can stop at the object holding it: name the
        // key.
        if let Some(key) = reason
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
            .map(|(k, _)| k)
            && path != key
            && !path.ends_with(&format!(".{key}"))
        {
            path = if path == "." {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
        }
        // A map key that is not one of the keys the map takes (an article
        // type, say) is on the path as `?`: name it.
        if let Some(key) = reason
            .strip_prefix("unknown variant `")
            .and_then(|r| r.split_once('`'))
            .map(|(k, _)| k)
            && (path == "?" || path.ends_with(".?"))
        {
            path = format!("{}{key}", &path[..path.len() - 1]);
        }
        ApiError::bad_request("invalid_field", format!("{path}: {reason}"))
            .with_details(json!({ "field": path }))
    })?;
    if let Some(field) = ignored.into_iter().next() {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{field}: unknown field; this route does not take it"),
        )
        .with_details(json!({ "field": field })));
    }
    Ok(parsed)
}

/// Parses JSON bytes into `T`, naming the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, String), ApiError> {
    parse_json_in_mode(bytes, None)
}

/// 422 `test_mode_mismatch` when a `test_mode` anywhere in the body (an
/// order, a voucher, an import line) is not the key's mode.
fn check_test_mode(value: &Value, key_test_mode: bool) -> Result<(), ApiError> {
    match value {
        Value::Object(map) => {
            if let Some(Value::Bool(b)) = map.get("test_mode")
                && *b != key_test_mode
            {
                return Err(super::caller::test_mode_mismatch(key_test_mode));
            }
            map.values()
                .try_for_each(|v| check_test_mode(v, key_test_mode))
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_test_mode(v, key_test_mode)),
        _ => Ok(()),
    }
}

/// As [`parse_json`]; with the caller's mode known, a `test_mode` in the
/// body must agree with it.
fn parse_json_in_mode<T: DeserializeOwned>(
    bytes: &[u8],
    mode: Option<TestMode>,
) -> Result<(T, String), ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde_json refuses nesting deeper than 128 levels, so a hostile deep
    // body fails here rather than exhausting the stack.
    let dup = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Unique {
        path: String::new(),
        dup: &dup,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| {
        if let Some(field) = dup.borrow_mut().take() {
            ApiError::bad_request(
                "duplicate_field",
                format!("{field}: the key is given more than once"),
            )
            .with_details(json!({ "field": field }))
        } else {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
                .with_details(json!({ "line": e.line(), "column": e.column() }))
        }
    })?;
    let canonical = value.to_string();
    if let Some(TestMode(test)) = mode {
        check_test_mode(&value, test)?;
    }
    let parsed = from_value(value)?;
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
        let mode = req.extensions().get::<TestMode>().copied();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(ApiError::from)?;
        let (value, canonical) = parse_json_in_mode(&bytes, mode)?;
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
    fn duplicate_keys_are_refused_by_path() {
        let err = parse_json::<Value>(br#"{"a": {"b": 1, "c": [{"d": 1, "d": 2}]}}"#).unwrap_err();
        assert_eq!(err.code, "duplicate_field");
        assert_eq!(err.details.unwrap()["field"], "a.c[0].d");
        let err = parse_json::<Body>(br#"{"amount": 1, "amount": 2}"#).unwrap_err();
        assert_eq!(err.code, "duplicate_field");
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse_json::<Body>(br#"{"amount": 1, "inner": {"number": "5", "extra": true}}"#)
            .unwrap_err();
        assert_eq!(err.code, "invalid_field");
        assert_eq!(err.details.unwrap()["field"], "inner.extra");
    }

    #[test]
    fn canonical_ignores_key_order_and_space() {
        let (_, a) = parse_json::<Value>(br#"{"b":1, "a":2}"#).unwrap();
        let (_, b) = parse_json::<Value>(br#"{ "a" : 2 ,"b":1 }"#).unwrap();
        assert_eq!(a, b);
    }
}
