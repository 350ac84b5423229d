//! `GET /docs`: the interactive API reference, loaded in headless Chromium
//! from a served hub; and its assets are the pinned npm package's bytes.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Log, Network, Page, Runtime};
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
