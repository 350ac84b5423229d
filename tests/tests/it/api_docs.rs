//! `GET /docs`: the interactive API reference, loaded in headless Chromium
//! from a served hub; and its assets are the pinned npm package's bytes.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Input, Log, Network, Page, Runtime};
use headless_chrome::{Browser, LaunchOptions};
use platform::http::docs;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo().join(p) })
        .unwrap_or_else(|| repo().join("target"))
}

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
        .expect("the API reference test needs Chromium (Debian: apt-get install chromium; ./infra/test installs it)")
}

/// Every tag the OpenAPI document's operations carry.
fn document_tags(doc: &serde_json::Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("tags"))
        .flat_map(|tags| tags.as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[derive(Default)]
struct Seen {
    responses: Vec<(String, i64, String)>,
    failed: Vec<String>,
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_loads_in_chromium_with_every_tag_and_no_failed_request() {
    let t = tests::fresh_store(tests::Backend::Sqlite).await;
    guesthub::admin::add_property(&t.store, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let key = tests::partner_key(&t.store, "Castle PMS", &["castle"], "club:read").await;
    let router = guesthub::app::router(t.store.clone(), 1 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let doc: serde_json::Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let tags = document_tags(&doc);
    assert!(tags.len() >= 5, "the document has tags: {tags:?}");

    let out = target_dir().join("api-docs");
    std::fs::create_dir_all(&out).unwrap();
    let url = format!("{base}/docs");
    let (seen, shown, png) = tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        let browser = Browser::new(LaunchOptions {
            path: Some(chromium()),
            headless: true,
            sandbox: false,
            user_data_dir: Some(profile.path().to_owned()),
            window_size: Some((1280, 2000)),
            idle_browser_timeout: Duration::from_secs(60),
            args: [
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ]
            .iter()
            .map(OsStr::new)
            .collect(),
            ..LaunchOptions::default()
        })
        .expect("Chromium starts");
        let tab = browser.new_tab().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = seen.clone();
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let mut s = sink.lock().unwrap();
            match event {
                Event::NetworkResponseReceived(e) => s.responses.push((
                    e.params.response.url.clone(),
                    e.params.response.status as i64,
                    e.params.response.mime_type.clone(),
                )),
                Event::NetworkLoadingFailed(e) => s.failed.push(format!(
                    "{:?} {} blocked={:?}",
                    e.params.Type, e.params.error_text, e.params.blocked_reason
                )),
                Event::LogEntryAdded(e) => {
                    if matches!(e.params.entry.level, Log::LogEntryLevel::Error) {
                        s.errors.push(format!("{}: {:?}", e.params.entry.text, e.params.entry.url));
                    }
                }
                Event::RuntimeExceptionThrown(e) => {
                    s.errors.push(format!("exception: {}", e.params.exception_details.text));
                }
                Event::RuntimeConsoleAPICalled(e) => {
                    if matches!(e.params.Type, Runtime::ConsoleAPICalledEventTypeOption::Error) {
                        s.errors.push(format!("console.error: {:?}", e.params.args.first().map(|a| &a.value)));
                    }
                }
                _ => {}
            }
        }))
        .unwrap();
        tab.call_method(Network::Enable {
            max_total_buffer_size: None,
            max_resource_buffer_size: None,
            max_post_data_size: None,
            report_direct_socket_traffic: None,
            enable_durable_messages: None,
        })
        .unwrap();
        tab.enable_log().unwrap();
        tab.enable_runtime().unwrap();
        tab.navigate_to(&url).unwrap().wait_until_navigated().unwrap();
        tab.wait_for_element_with_custom_timeout(".opblock-tag-section", Duration::from_secs(30))
            .expect("Swagger UI renders the operations");
        // The tags as the page shows them.
        let shown = tab
            .evaluate(
                "JSON.stringify([...document.querySelectorAll('.opblock-tag')].map(e => e.dataset.tag))",
                false,
            )
            .unwrap()
            .value
            .unwrap();
        let shown: Vec<String> = serde_json::from_str(shown.as_str().unwrap()).unwrap();
        // The bearer scheme is offered ("Authorize" takes a pasted key).
        tab.wait_for_element(".auth-wrapper .authorize").unwrap();
        let png = tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        // Try it out with a pasted key: Authorize, then call GET club-tiers.
        tab.find_element(".auth-wrapper .authorize").unwrap().click().unwrap();
        tab.wait_for_element(".modal-ux input").unwrap().click().unwrap();
        // Pasted (one input event), as a person would.
        tab.call_method(Input::InsertText { text: key.clone() })
            .unwrap();
        tab.find_element(".modal-ux .auth-btn-wrapper .authorize")
            .unwrap()
            .click()
            .unwrap();
        tab.find_element(".modal-ux .btn-done").unwrap().click().unwrap();
        tab.find_element("#operations-club-tiers .opblock-summary")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element("#operations-club-tiers .try-out__btn")
            .unwrap()
            .click()
            .unwrap();
        let input = tab
            .wait_for_element("#operations-club-tiers input[placeholder=property]")
            .unwrap();
        input.click().unwrap();
        // The field comes filled with the document's example: replace it.
        input
            .call_js_fn("function() { this.select(); }", vec![], false)
            .unwrap();
        tab.call_method(Input::InsertText {
            text: "castle".into(),
        })
        .unwrap();
        tab.find_element("#operations-club-tiers .execute")
            .unwrap()
            .click()
            .unwrap();
        let status = tab
            .wait_for_element("#operations-club-tiers .live-responses-table tr.response .response-col_status")
            .unwrap()
            .get_inner_text()
            .unwrap();
        assert_eq!(status.trim(), "200", "try it out with the pasted key");
        std::thread::sleep(Duration::from_millis(300));
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        (seen, shown, png)
    })
    .await
    .unwrap();
    server.abort();

    let shot = out.join("docs.png");
    std::fs::write(&shot, &png).unwrap();
    println!("screenshot: {}", shot.display());
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");

    assert!(seen.failed.is_empty(), "failed requests: {:?}", seen.failed);
    assert!(seen.errors.is_empty(), "page errors: {:?}", seen.errors);
    for (url, status, _) in &seen.responses {
        assert!((200..300).contains(status), "{url} answered {status}");
        // Swagger UI's icons are `data:` URLs (no request leaves the page).
        assert!(
            url.starts_with(&base) || url.starts_with("data:"),
            "the page reached outside the hub: {url}"
        );
    }
    let loaded: BTreeSet<String> = seen
        .responses
        .iter()
        .filter(|(u, _, _)| u.starts_with(&base))
        .map(|(u, _, mime)| format!("{} {mime}", &u[base.len()..]))
        .collect();
    for want in [
        "/docs text/html",
        "/docs/swagger-ui.css text/css",
        "/docs/swagger-ui-bundle.js text/javascript",
        "/docs/init.js text/javascript",
        "/openapi.json application/json",
        "/v1/properties/castle/club-tiers application/json",
    ] {
        assert!(loaded.contains(want), "{want} not loaded: {loaded:?}");
    }
    let shown: BTreeSet<String> = shown.into_iter().collect();
    assert_eq!(shown, tags, "the page lists every tag of the document");
}

/// The page is served with its content types and a CSP, by the local hub and
/// by the Lambda function that serves it in AWS (with the same document).
#[tokio::test]
async fn docs_routes_answer_with_content_types_and_a_csp() {
    let t = tests::fresh_store(tests::Backend::Sqlite).await;
    let local = guesthub::app::router(t.store.clone(), 1 << 20);
    let lambda = guests_api::router(t.store.clone(), 1 << 20);
    for router in [&local, &lambda] {
        for (path, ty) in [
            ("/docs", "text/html; charset=utf-8"),
            ("/docs/init.js", "text/javascript; charset=utf-8"),
            (
                "/docs/swagger-ui-bundle.js",
                "text/javascript; charset=utf-8",
            ),
            ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
            ("/docs/LICENSE", "text/plain; charset=utf-8"),
        ] {
            let r = tests::call(router, "GET", path, None, &[], None).await;
            assert_eq!(r.status, http::StatusCode::OK, "{path}");
            assert_eq!(r.headers["content-type"], ty, "{path}");
            assert_eq!(r.headers["content-security-policy"], docs::CSP, "{path}");
            assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        }
        let r = tests::call(router, "GET", "/openapi.json", None, &[], None).await;
        assert_eq!(r.body, guesthub::app::openapi_json());
        let r = tests::call(router, "GET", "/docs/nothing.js", None, &[], None).await;
        assert_eq!(r.status, http::StatusCode::NOT_FOUND);
    }
}

/// The committed assets are byte for byte the files of the pinned npm
/// tarball (whose integrity is the registry's). Needs npm and the registry;
/// skipped, saying so, without them.
#[test]
fn assets_are_the_pinned_npm_package() {
    let dir = repo().join(format!(
        "shared/platform/assets/{}-{}",
        docs::SWAGGER_UI_PACKAGE,
        docs::SWAGGER_UI_VERSION
    ));
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    committed.sort();
    assert_eq!(
        committed,
        docs::SWAGGER_UI_FILES.to_vec(),
        "{}",
        dir.display()
    );
    let spec = format!("{}@{}", docs::SWAGGER_UI_PACKAGE, docs::SWAGGER_UI_VERSION);
    let work = tempfile::tempdir().unwrap();
    let pack = std::process::Command::new("npm")
        .args(["pack", "--silent", "--json", &spec])
        .current_dir(work.path())
        .output();
    let pack = match pack {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "SKIPPED: npm pack {spec} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: npm is not available: {e}");
            return;
        }
    };
    let info: serde_json::Value = serde_json::from_slice(&pack.stdout).unwrap();
    assert_eq!(info[0]["integrity"], docs::SWAGGER_UI_INTEGRITY, "{spec}");
    let tarball = work.path().join(info[0]["filename"].as_str().unwrap());
    let untar = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(untar.success());
    for file in docs::SWAGGER_UI_FILES {
        let want = std::fs::read(work.path().join("package").join(file)).unwrap();
        let have = std::fs::read(dir.join(file)).unwrap();
        assert!(want == have, "{file} differs from {spec}'s");
    }
}

/// `docs/errors.md` is `CODES` as generated; every code is listed once; the
/// OpenAPI document's error schema enumerates exactly them.
#[test]
fn errors_md_lists_every_code_once() {
    use platform::http::error::{CODES, errors_markdown};
    let path = repo().join("docs/errors.md");
    let generated = errors_markdown();
    if std::env::var_os("GUESTHUB_WRITE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/errors.md is stale: regenerate it with \
         `GUESTHUB_WRITE_DOCS=1 cargo test -p tests --test it api_docs::errors`"
    );
    let mut seen = BTreeSet::new();
    for c in CODES {
        assert!(seen.insert(c.code), "{} is listed twice", c.code);
        assert!(!c.statuses.is_empty() && c.statuses.iter().all(|s| (400..600).contains(s)));
        assert!(!c.meaning.is_empty() && !c.action.is_empty(), "{}", c.code);
    }
    let doc: serde_json::Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let listed: BTreeSet<&str> = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
        ["enum"]
        .as_array()
        .expect("ErrorDetail.code is an enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, seen);
    // Every error response points to the codes.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.as_str() >= "400" {
                    let d = response["description"].as_str().unwrap_or("");
                    assert!(
                        d.contains("docs/errors.md"),
                        "{method} {path} {status}: {d}"
                    );
                }
            }
        }
    }
}

/// What the domain refuses maps to listed codes with listed statuses.
#[test]
fn every_domain_refusal_maps_to_a_listed_code() {
    use domain::checkout::CheckoutError as C;
    use domain::voucher::VoucherError as V;
    use domain::{Currency, Money};
    use platform::http::ApiError;
    use platform::http::error::error_code;
    let eur: Currency = "EUR".parse().unwrap();
    let m = Money::new(100, eur);
    let vouchers = vec![
        V::NotFound { mistyped: true },
        V::InsufficientBalance { available: m },
        V::Expired { valid_until: None },
        V::Blocked,
        V::Cancelled,
        V::NotRedeemableHere,
        V::CurrencyMismatch { expected: eur },
        V::ZeroValue,
        V::PackageRequiresFullRedemption { balance: m },
        V::TestModeMismatch {
            voucher_test_mode: true,
        },
        V::CodeTaken,
        V::CodeAmbiguous { issuers: vec![] },
        V::NotIssuer,
        V::NotAGiftCard,
        V::RedemptionNotFound,
        V::ReversalExceedsRedemption { reversible: m },
        V::RedemptionBelongsToOrder {
            order_id: "o".into(),
        },
        V::HoldNotFound,
        V::HoldClosed,
        V::HoldExpired,
        V::CaptureExceedsHold { held: m },
        V::TooManyHolds,
        V::CursorOutOfRange { last: 1 },
        V::TooManyLines { max: 1 },
        V::LookupNeedsOne,
        V::IdempotencyKeyReused,
        V::IdempotencyKeyInFlight,
        V::Store(domain::StoreError::Conflict),
    ];
    let checkout = vec![
        C::UnknownProduct("p".into()),
        C::UnknownUnit {
            product: "p".into(),
            unit: "u".into(),
        },
        C::CurrencyMismatch,
        C::MembersOnlyEvent,
        C::TierNotAllowed,
        C::MembershipExpired,
        C::MembershipNotYetValid,
        C::MembershipCancelled,
        C::MembershipUnpaid,
        C::TestModeMismatch,
        C::BenefitLimitReached,
        C::PaymentMismatch,
        C::InsufficientCash,
        C::InvalidPayment("x"),
        C::InvalidOrder("x"),
        C::ProductNotFound,
        C::OrderNotFound,
        C::MembershipNotFound("x"),
        C::SoldOut {
            left: 1,
            date: chrono::NaiveDate::MIN,
        },
        C::NothingDue,
        C::UuidReused,
        C::MemberFieldsMissing(vec!["phone".into()]),
        C::InvalidQuery("x"),
        C::InvalidField("x"),
    ];
    use domain::guest::GuestError as G;
    use domain::loyalty::error::LoyaltyError as L;
    let guests = [
        G::NotFound,
        G::Erased,
        G::EmailTaken,
        G::CreationRaced,
        G::ErasureNotFound,
        G::WebhookNotFound,
        G::WebhookNotJson,
        G::WebhookEventUnnamed,
        G::CrmNotConnected,
        G::CrmUnavailable("x".into()),
        G::ScreeningCheckNotFound,
        G::ScreeningSignatureInvalid,
        G::ScreeningCheckClosed,
        G::ScreeningSecretUnavailable,
    ];
    let loyalty = [L::NumberTaken, L::DepartureNotFound];
    let answers = vouchers
        .into_iter()
        .map(ApiError::from)
        .chain(checkout.into_iter().map(ApiError::from))
        .chain(guests.into_iter().map(ApiError::from))
        .chain(loyalty.into_iter().map(ApiError::from))
        .chain([
            ApiError::unauthorized(),
            ApiError::forbidden("vouchers:read"),
            ApiError::too_large(1),
            ApiError::internal("x"),
            ApiError::unavailable("x"),
        ]);
    for e in answers {
        let listed = error_code(e.code).unwrap_or_else(|| panic!("{} is not listed", e.code));
        assert!(
            listed.statuses.contains(&e.status.as_u16()),
            "{} {}",
            e.code,
            e.status
        );
    }
}

/// Fails to compile when a refusal is added to the domain without being
/// added to the lists above (no wildcard arm on purpose).
#[allow(dead_code)]
fn every_refusal_is_in_the_lists(
    v: domain::voucher::VoucherError,
    c: domain::checkout::CheckoutError,
    g: domain::guest::GuestError,
    l: domain::loyalty::error::LoyaltyError,
) {
    use domain::guest::GuestError as G;
    use domain::loyalty::error::LoyaltyError as L;
    match g {
        G::NotFound
        | G::Erased
        | G::EmailTaken
        | G::CreationRaced
        | G::ErasureNotFound
        | G::WebhookNotFound
        | G::WebhookNotJson
        | G::WebhookEventUnnamed
        | G::CrmNotConnected
        | G::CrmUnavailable(_)
        | G::ScreeningCheckNotFound
        | G::ScreeningSignatureInvalid
        | G::ScreeningCheckClosed
        | G::ScreeningSecretUnavailable
        | G::Store(_) => {}
    }
    match l {
        L::NumberTaken | L::DepartureNotFound | L::Store(_) => {}
    }
    use domain::checkout::CheckoutError as C;
    use domain::voucher::VoucherError as V;
    match v {
        V::NotFound { .. }
        | V::InsufficientBalance { .. }
        | V::Expired { .. }
        | V::Blocked
        | V::Cancelled
        | V::NotRedeemableHere
        | V::CurrencyMismatch { .. }
        | V::ZeroValue
        | V::PackageRequiresFullRedemption { .. }
        | V::TestModeMismatch { .. }
        | V::CodeTaken
        | V::CodeAmbiguous { .. }
        | V::NotIssuer
        | V::NotAGiftCard
        | V::RedemptionNotFound
        | V::ReversalExceedsRedemption { .. }
        | V::RedemptionBelongsToOrder { .. }
        | V::HoldNotFound
        | V::HoldClosed
        | V::HoldExpired
        | V::CaptureExceedsHold { .. }
        | V::TooManyHolds
        | V::CursorOutOfRange { .. }
        | V::TooManyLines { .. }
        | V::LookupNeedsOne
        | V::Invalid(_)
        | V::IdempotencyKeyReused
        | V::IdempotencyKeyInFlight
        | V::Store(_) => {}
    }
    match c {
        C::UnknownProduct(_)
        | C::UnknownUnit { .. }
        | C::CurrencyMismatch
        | C::MembersOnlyEvent
        | C::TierNotAllowed
        | C::MembershipExpired
        | C::MembershipNotYetValid
        | C::MembershipCancelled
        | C::MembershipUnpaid
        | C::TestModeMismatch
        | C::BenefitLimitReached
        | C::PaymentMismatch
        | C::InsufficientCash
        | C::InvalidPayment(_)
        | C::InvalidOrder(_)
        | C::ProductNotFound
        | C::OrderNotFound
        | C::MembershipNotFound(_)
        | C::SoldOut { .. }
        | C::NothingDue
        | C::UuidReused
        | C::MemberFieldsMissing(_)
        | C::InvalidQuery(_)
        | C::InvalidField(_) => {}
    }
}

/// Every operation of the document, called with bad input of each kind
/// (no key, wrong bodies, wrong content type, unknown ids, bad queries, a
/// method it does not take): every error answered is a listed code with a
/// listed status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_the_routes_answer_is_listed() {
    use platform::http::error::error_code;
    let t = tests::fresh_store(tests::Backend::Sqlite).await;
    let s = &t.store;
    guesthub::admin::add_property(s, "castle", "Castle", "Europe/Vienna", "EUR")
        .await
        .unwrap();
    let every: Vec<String> = domain::Scope::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let (_, owner_key) = guesthub::admin::add_partner(s, "Castle all", &["castle".into()], &every)
        .await
        .unwrap();
    let key = owner_key.clone();
    let app = guesthub::app::router(s.clone(), 4 * 1024);
    let doc: serde_json::Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let mut answered: BTreeSet<(String, u16)> = BTreeSet::new();
    let mut calls = 0;
    let mut record = |r: tests::Reply, what: &str| {
        calls += 1;
        if r.status.as_u16() >= 400 {
            assert!(
                serde_json::from_str::<serde_json::Value>(&r.body).is_ok(),
                "{what}: {} is not a JSON error: {}",
                r.status,
                r.body
            );
            let code = r.code();
            assert!(
                error_code(&code).is_some_and(|c| c.statuses.contains(&r.status.as_u16())),
                "{what}: {} `{code}` is not listed in CODES (docs/errors.md): {}",
                r.status,
                r.body
            );
            answered.insert((code, r.status.as_u16()));
        }
    };
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(8 * 1024));
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let uri: String = path
            .replace("{property}", "castle")
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let key = Some(key.as_str());
            let idem = [("idempotency-key", "k-1")];
            for body in [
                None,
                Some("{}"),
                Some("not json"),
                Some("{\"surely_not_a_field\":1}"),
                Some("{\"a\":1,\"a\":1}"),
                Some(big.as_str()),
            ] {
                let body = body.map(str::to_owned);
                for headers in [&idem[..], &[]] {
                    let r = tests::call(&app, &method, &uri, key, headers, body.clone()).await;
                    record(r, &format!("{method} {uri}"));
                }
            }
            let r = tests::call(&app, &method, &uri, None, &[], None).await;
            record(r, &format!("{method} {uri} without a key"));
            let q = format!("{uri}?limit=-1&from=yesterday&cursor=zz");
            let r = tests::call(&app, &method, &q, key, &[], None).await;
            record(r, &format!("{method} {q}"));
            let r = text_plain(&app, &method, &uri, &owner_key).await;
            record(r, &format!("{method} {uri} as text/plain"));
        }
        let r = tests::call(&app, "PATCH", &uri, Some(&key), &[], Some("{}".into())).await;
        record(r, &format!("PATCH {uri}"));
    }
    let r = tests::call(&app, "GET", "/v1/nothing-here", Some(&key), &[], None).await;
    record(r, "an unknown route");
    let r = tests::call(
        &app,
        "GET",
        "/v1/properties/%FF/vouchers",
        Some(&key),
        &[],
        None,
    )
    .await;
    record(r, "a non-UTF-8 path");
    assert!(calls > 500, "only {calls} calls");
    assert!(answered.len() >= 10, "too few codes seen: {answered:?}");
    println!("{calls} calls, codes answered: {answered:?}");
}

/// A JSON body sent as `text/plain`.
async fn text_plain(app: &axum::Router, method: &str, uri: &str, key: &str) -> tests::Reply {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    tests::Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Every operation of the OpenAPI document shows how to call it and what
/// comes back: an example for each parameter and for its request body, one
/// for each success answer, and one for each error answer whose code comes
/// with that status (docs/errors.md). Each example is valid against its
/// schema, `$ref`s resolved in the document and formats (dates) checked.
#[test]
fn every_operation_has_examples_valid_against_their_schemas() {
    use platform::http::error::error_code;
    use serde_json::{Value, json};
    let doc: Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut check =
        |problems: &mut Vec<String>, at: String, example: Option<&Value>, schema: &Value| {
            checked += 1;
            let Some(example) = example else {
                problems.push(format!("{at}: no example"));
                return;
            };
            // The schema as a root beside the document's components, so its
            // `#/components/schemas/…` references resolve.
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": doc["components"],
                "allOf": [schema],
            });
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("{at}: the schema does not compile: {e}"));
            for e in validator.iter_errors(example) {
                problems.push(format!("{at}: {} at {}", e, e.instance_path()));
            }
        };
    let methods = ["get", "post", "put", "patch", "delete"];
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !methods.contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let at = format!("{} {path}", method.to_uppercase());
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                check(
                    &mut problems,
                    format!("{at} parameter {name}"),
                    p.get("example"),
                    &p["schema"],
                );
            }
            if let Some(body) = op.get("requestBody") {
                for (media, content) in body["content"].as_object().unwrap() {
                    check(
                        &mut problems,
                        format!("{at} request {media}"),
                        content.get("example"),
                        &content["schema"],
                    );
                }
            }
            let mut successes = 0;
            for (status, response) in op["responses"].as_object().unwrap() {
                let n: u16 = status.parse().unwrap();
                let contents = response["content"].as_object().cloned().unwrap_or_default();
                if (200..300).contains(&n) {
                    successes += contents.len();
                }
                for (media, content) in &contents {
                    let example = content.get("example");
                    check(
                        &mut problems,
                        format!("{at} {status} {media}"),
                        example,
                        &content["schema"],
                    );
                    if n >= 400 {
                        let code = example
                            .and_then(|e| e["error"]["code"].as_str())
                            .unwrap_or("");
                        if !error_code(code).is_some_and(|c| c.statuses.contains(&n)) {
                            problems.push(format!(
                                "{at} {status}: the example's code {code:?} is not one of docs/errors.md's codes with status {n}"
                            ));
                        }
                    }
                }
            }
            if successes == 0 {
                problems.push(format!("{at}: no success answer with a body"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems with the OpenAPI examples (infra/local/src/openapi_examples.json):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        operations >= 49 && checked > operations * 3,
        "{operations} operations, {checked} examples"
    );
}
