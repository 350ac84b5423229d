//! Examples in the OpenAPI document: every operation's parameters, request
//! body and success answer (from `openapi_examples.json`, keyed by
//! `"METHOD /path"`; parameters by name, an operation's own values first),
//! and every error answer's body with a code of its status.
//! `tests/tests/it/api_docs.rs` checks that each operation has them and that
//! each is valid against its schema.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, ParameterBuilder};
use utoipa::openapi::{OpenApi, RefOr};

#[derive(Deserialize)]
struct Examples {
    /// Parameter examples by name, for every operation.
    parameters: BTreeMap<String, Value>,
    operations: BTreeMap<String, OperationExamples>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OperationExamples {
    /// This operation's own parameter examples (e.g. which kind of `id`).
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
    request: Option<Value>,
    response: Option<Value>,
}

fn examples() -> Examples {
    serde_json::from_str(include_str!("openapi_examples.json"))
        .expect("openapi_examples.json is valid")
}

/// Puts the examples into the document.
pub(crate) fn apply(api: &mut OpenApi) {
    let mut ex = examples();
    for (path, method, op) in crate::app::operations_mut(api) {
        let own = ex
            .operations
            .remove(&format!("{method} {path}"))
            .unwrap_or_default();
        parameters(op, &own.parameters, &ex.parameters);
        if let (Some(body), Some(request)) = (op.request_body.as_mut(), own.request) {
            for content in body.content.values_mut() {
                content.example = Some(request.clone());
            }
        }
        responses(op, own.response);
    }
    let stale: Vec<_> = ex.operations.keys().collect();
    assert!(
        stale.is_empty(),
        "openapi_examples.json has examples for operations the hub does not have: {stale:?}"
    );
}

fn parameters(op: &mut Operation, own: &BTreeMap<String, Value>, shared: &BTreeMap<String, Value>) {
    for p in op.parameters.iter_mut().flatten() {
        if let Some(v) = own.get(&p.name).or_else(|| shared.get(&p.name)) {
            *p = ParameterBuilder::from(p.clone())
                .example(Some(v.clone()))
                .build();
        }
    }
}

fn responses(op: &mut Operation, success: Option<Value>) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let example = match status.parse::<u16>() {
            Ok(200..=299) => success.clone(),
            Ok(n @ 400..) => Some(error_example(n, &response.description)),
            _ => None,
        };
        if let Some(example) = example {
            for content in response.content.values_mut() {
                content.example = Some(example.clone());
            }
        }
    }
}

/// An error body with the first code the response's description names
/// that comes with this status, else the most common code of the status.
fn error_example(status: u16, description: &str) -> Value {
    use platform::http::error::{CODES, error_code};
    let named = description
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(error_code)
        .find(|c| c.statuses.contains(&status));
    let fallback = match status {
        400 => "invalid_field",
        401 => "unauthorized",
        403 => "missing_scope",
        404 => "property_not_found",
        409 => "conflict",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        422 => "idempotency_key_reused",
        503 => "temporarily_unavailable",
        _ => "internal_error",
    };
    let code = named
        .or_else(|| error_code(fallback))
        .or_else(|| CODES.iter().find(|c| c.statuses.contains(&status)))
        .expect("a code for every error status");
    json!({"error": {"code": code.code, "message": code.meaning}})
}
