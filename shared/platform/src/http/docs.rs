//! `GET /docs`: an interactive reference of the hub's own OpenAPI document
//! (Swagger UI), and `GET /openapi.json`. Every asset is embedded at build
//! time from the pinned npm package in `assets/` — nothing is fetched from
//! elsewhere, and the Content-Security-Policy lets the page load only from
//! this origin.

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderValue, header};

/// The npm package the assets come from, exactly as committed under
/// `shared/platform/assets/<name>-<version>/` (a test compares them byte for
/// byte with the package when npm is present).
pub const SWAGGER_UI_PACKAGE: &str = "swagger-ui-dist";
pub const SWAGGER_UI_VERSION: &str = "5.35.0";
/// The tarball's `dist.integrity` on the npm registry.
pub const SWAGGER_UI_INTEGRITY: &str = "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==";

/// The files taken from the package (the folder holds these and nothing else).
pub const SWAGGER_UI_FILES: [&str; 5] = [
    "LICENSE",
    "NOTICE",
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.LICENSE.txt",
    "swagger-ui.css",
];

const INDEX_HTML: &[u8] = include_bytes!("../../assets/docs/index.html");
const INIT_JS: &[u8] = include_bytes!("../../assets/docs/init.js");
const BUNDLE_JS: &[u8] = include_bytes!("../../assets/swagger-ui-dist-5.35.0/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui-dist-5.35.0/swagger-ui.css");
const LICENSE: &[u8] = include_bytes!("../../assets/swagger-ui-dist-5.35.0/LICENSE");
const THIRD_PARTY: &[u8] =
    include_bytes!("../../assets/swagger-ui-dist-5.35.0/swagger-ui-bundle.js.LICENSE.txt");

/// Scripts and styles only from this origin (no inline script, no eval);
/// Swagger UI's icons are `data:` SVGs; "Try it out" calls this origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// `/docs` (and its assets) and `/openapi.json`, for the given document.
pub fn router<S: Clone + Send + Sync + 'static>(openapi_json: String) -> Router<S> {
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route(
            "/docs",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route(
            "/docs/init.js",
            get(|| async { asset("text/javascript; charset=utf-8", INIT_JS) }),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", BUNDLE_JS) }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/docs/LICENSE",
            get(|| async { asset("text/plain; charset=utf-8", LICENSE) }),
        )
        .route(
            "/docs/THIRD-PARTY-LICENSES",
            get(|| async { asset("text/plain; charset=utf-8", THIRD_PARTY) }),
        )
}
