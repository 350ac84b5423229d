//! The merged application: every HTTP function's routes on one router.

use axum::Router;
use axum::routing::get;
use platform::Store;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

/// Every HTTP function's routes, bound to the store.
fn routes(store: Store) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(guests_api::routes().with_state(store.clone()))
        .merge(checkout_api::routes().with_state(store.clone()))
        .merge(vouchers_api::routes().with_state(vouchers_api::AppState::new(store.clone())))
        .merge(events_api::routes().with_state(store))
}

/// The OpenAPI 3.1 document for the whole hub (checked in as
/// `infra/openapi.json`; a test fails when they drift).
pub fn openapi() -> OpenApi {
    let mut api = OpenApiRouter::<()>::new().split_for_parts().1;
    api.merge(guests_api::routes().split_for_parts().1);
    api.merge(checkout_api::routes().split_for_parts().1);
    api.merge(vouchers_api::openapi());
    api.merge(events_api::routes().split_for_parts().1);
    api.info.title = "GuestHub".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    // utoipa fills these from its own package metadata otherwise.
    api.info.contact = None;
    api.info.license = None;
    api.info.description = Some(
        "Integration hub for hotels, wineries and attractions: vouchers, club rosters, \
         membership checkout, CRM sync and loyalty export. Authenticate with \
         `Authorization: Bearer <partner key>`; errors are \
         `{\"error\": {\"code\", \"message\", \"details\"}}`, every code with its status, \
         meaning and what to do listed in the repository's `docs/errors.md`. A sandbox key \
         (`ghk_test_…`) runs every request in test mode, on test data only, apart from \
         everything live. The hub serves this document at `/openapi.json` and an interactive \
         reference at `/docs`."
            .into(),
    );
    open_flattened_parts(&mut api);
    document_conflicts(&mut api);
    document_error_codes(&mut api);
    crate::examples::apply(&mut api);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "partner_key",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    api
}

/// A request type that refuses unknown fields is a closed schema
/// (`additionalProperties: false`); an answer that flattens it into a larger
/// object (`allOf`, e.g. a recorded payment = the part as requested + when)
/// would then refuse its own other fields. Inside `allOf` such a part is
/// inlined without that restriction; the request keeps its closed schema.
fn open_flattened_parts(api: &mut OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let closed: std::collections::BTreeMap<String, Schema> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(Schema::Object(o))
                if matches!(
                    o.additional_properties.as_deref(),
                    Some(AdditionalProperties::FreeForm(false))
                ) =>
            {
                let mut open = o.clone();
                open.additional_properties = None;
                Some((format!("#/components/schemas/{name}"), Schema::Object(open)))
            }
            _ => None,
        })
        .collect();
    for schema in components.schemas.values_mut() {
        if let RefOr::T(Schema::AllOf(all)) = schema {
            for part in &mut all.items {
                if let RefOr::Ref(r) = part
                    && let Some(open) = closed.get(&r.ref_location)
                {
                    *part = RefOr::T(open.clone());
                }
            }
        }
    }
}

/// Every route that writes can answer 409: `conflict` when what it changes
/// kept changing under concurrent requests, `idempotency_key_in_flight`
/// while a request with the same `Idempotency-Key` runs. Routes that name
/// their own 409 keep their description; the others get this one.
fn document_conflicts(api: &mut OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let conflict = ResponseBuilder::new()
        .description(
            "`conflict`: what this request changes kept changing under concurrent \
             requests (retry); `idempotency_key_in_flight`: a request with this \
             Idempotency-Key is still running (retry later)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (_, method, op) in operations_mut(api) {
        if method != "GET" {
            op.responses
                .responses
                .entry("409".to_owned())
                .or_insert_with(|| conflict.clone().into());
        }
    }
}

/// Error answers name their codes: `ErrorDetail.code` is an enum of every
/// code the hub can return (`platform::http::error::CODES`), and each error
/// response points to the codes of its status in `docs/errors.md`.
fn document_error_codes(api: &mut OpenApi) {
    use platform::http::error::CODES;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    let detail = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("ErrorDetail"));
    if let Some(RefOr::T(Schema::Object(detail))) = detail {
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Stable, snake_case; partners branch on it. Each code's status, meaning and \
                 what to do: docs/errors.md.",
            ))
            .enum_values(Some(CODES.iter().map(|c| c.code)))
            .build();
        detail.properties.insert("code".into(), code.into());
    }
    for (_, _, op) in operations_mut(api) {
        for (status, response) in op.responses.responses.iter_mut() {
            let (Ok(n), RefOr::T(response)) = (status.parse::<u16>(), response) else {
                continue;
            };
            if n < 400 {
                continue;
            }
            let listed =
                format!("`error.code` is one of the codes with status {n} in docs/errors.md.");
            response.description = if response.description.is_empty() {
                listed
            } else {
                format!("{}. {listed}", response.description.trim_end_matches('.'))
            };
        }
    }
}

/// Every operation of the document, with its path and method (GET reads;
/// POST, PUT, PATCH and DELETE write).
pub(crate) fn operations_mut(
    api: &mut OpenApi,
) -> impl Iterator<Item = (&str, &'static str, &mut utoipa::openapi::path::Operation)> {
    api.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ]
        .into_iter()
        .filter_map(move |(method, op)| op.as_mut().map(|op| (path.as_str(), method, op)))
    })
}

/// The document as served and checked in.
pub fn openapi_json() -> String {
    serde_json::to_string_pretty(&openapi()).unwrap_or_default() + "\n"
}

/// The router `guesthub serve` listens with.
pub fn router(store: Store, max_body_bytes: usize) -> Router {
    router_with(store, max_body_bytes, None)
}

/// [`router`] whose Cloudbeds webhook route sends to `queue` (the served
/// hub's in-process queue).
pub fn router_with(
    store: Store,
    max_body_bytes: usize,
    queue: Option<guests_api::SharedQueue>,
) -> Router {
    let (router, _) = routes(store.clone()).split_for_parts();
    let router = match queue {
        Some(q) => router.layer(axum::Extension(q)),
        None => router,
    };
    // Served locally, a webhook receiver may be on this machine (http://127.0.0.1).
    let router = router.layer(axum::Extension(events_api::AllowLoopbackHttp));
    let router = router
        // OCTO's routes follow OCTO's own document, not the hub's.
        .merge(octo_api::routes().with_state(store))
        .route("/health", get(platform::http::health))
        .merge(platform::http::docs::router(openapi_json()));
    platform::http::serve_layers(router, max_body_bytes).layer(axum::middleware::from_fn(
        platform::http::close_if_body_unread,
    ))
}
