//! The README cannot rot. Its ```` ```sh ```` blocks are run, in order, in
//! one bash session against a `guesthub serve` on a free port and a fresh
//! data dir, and every `# →` expected-output comment is checked
//! (`readme_shell_blocks_run_against_a_served_hub`). Blocks fenced
//! ```` ```sh not run by the tests: <why> ```` are only checked statically,
//! as every block is: `guesthub` / `cargo run --` lines must name existing
//! subcommands and flags (asked of the real binary's `--help`); every curl
//! line must call an operation of the OpenAPI document with its method;
//! every `./infra/...` script must exist and be executable. The demo's
//! printed walkthrough is run for real in `cli.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shell commands of the README: continuation lines joined, comments
/// dropped, with the shell variables each block assigns literally.
fn commands() -> Vec<(String, HashMap<String, String>)> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut vars = HashMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = line.starts_with("```sh");
            vars.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        let line = match line.find("  #") {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        pending.push_str(line.trim_end_matches('\\'));
        pending.push(' ');
        if line.ends_with('\\') {
            continue;
        }
        let cmd = std::mem::take(&mut pending).trim().to_owned();
        if let Some((k, v)) = cmd.split_once('=')
            && !k.contains(' ')
            && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            && !v.starts_with("$(")
        {
            vars.insert(k.to_owned(), v.trim().to_owned());
        }
        out.push((cmd, vars.clone()));
    }
    out
}

/// Splits like a shell: quotes group, `[` `]` of optional parts dropped.
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in cmd.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '[' | ']') => {}
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .args(path)
        .arg("--help")
        .env_remove("GUESTHUB_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "guesthub {path:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cli_commands_in_the_readme_exist() {
    let mut checked = 0;
    for (cmd, _) in commands() {
        let args: Vec<String> = if let Some(rest) = cmd.strip_prefix("cargo run -- ") {
            words(rest)
        } else if let Some(rest) = cmd.strip_prefix("guesthub ") {
            words(rest)
        } else {
            continue;
        };
        // The subcommand path: leading words that are subcommands (global
        // flags and their values may come first).
        let mut path: Vec<String> = Vec::new();
        let mut flags = Vec::new();
        for a in &args {
            if let Some(flag) = a.strip_prefix("--") {
                flags.push(flag.split('=').next().unwrap().to_owned());
                continue;
            }
            if subcommands(&help(&path)).contains(a) {
                path.push(a.clone());
            }
        }
        let h = help(&path);
        for f in flags {
            assert!(
                h.contains(&format!("--{f}")),
                "README: `{cmd}` uses --{f}, which `guesthub {}` does not take",
                path.join(" ")
            );
        }
        assert!(
            !path.is_empty() || args.is_empty(),
            "README: `{cmd}` names no subcommand"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} CLI commands found in the README"
    );
}

#[test]
fn curl_commands_in_the_readme_call_documented_operations() {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("infra/openapi.json")).unwrap())
            .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let matches = |template: &str, path: &str| {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
    };
    let mut checked = 0;
    for (cmd, vars) in commands() {
        if !cmd.starts_with("curl ") {
            continue;
        }
        let w = words(&cmd);
        let mut method = if w.iter().any(|x| x == "-d") {
            "post"
        } else {
            "get"
        }
        .to_owned();
        if let Some(i) = w.iter().position(|x| x == "-X") {
            method = w[i + 1].to_lowercase();
        }
        let mut url = w
            .iter()
            .find(|x| {
                x.contains("localhost:8080")
                    || x.starts_with("$P")
                    || x.starts_with("$API")
                    || x.starts_with("$S")
            })
            .unwrap_or_else(|| panic!("README: no URL in `{cmd}`"))
            .clone();
        for (k, v) in &vars {
            url = url.replace(&format!("${k}"), v);
        }
        let path = url
            .split_once("localhost:8080")
            .map_or(url.as_str(), |(_, p)| p)
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        // The hub's own pages, not API operations.
        if path == "/health" || path == "/openapi.json" || path == "/docs" {
            continue;
        }
        // The OCTO supplier API follows OCTO's document, not the hub's.
        let ok = if path.starts_with("/octo/") {
            octo_api::ROUTES
                .iter()
                .any(|(m, t)| matches(t, &path) && m.eq_ignore_ascii_case(&method))
        } else {
            paths
                .iter()
                .any(|(t, ops)| matches(t, &path) && ops.get(&method).is_some())
        };
        assert!(
            ok,
            "README: `{cmd}` calls {method} {path}, which the OpenAPI document lacks"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} curl commands found in the README"
    );
}

#[test]
fn scripts_in_the_readme_exist() {
    for (cmd, _) in commands() {
        let first = words(&cmd)
            .into_iter()
            .find(|w| !w.contains('='))
            .unwrap_or_default();
        if let Some(script) = first.strip_prefix("./") {
            let path = root().join(script);
            let meta = std::fs::metadata(&path).unwrap_or_else(|_| {
                panic!("README: `{cmd}` runs {}, which is missing", path.display())
            });
            use std::os::unix::fs::PermissionsExt;
            assert!(
                meta.permissions().mode() & 0o111 != 0,
                "{} is not executable",
                path.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Running the README.

/// The fence of blocks the run skips; the rest of the line says why.
const NOT_RUN: &str = "```sh not run by the tests: ";

/// Sections that must keep commands the run executes.
const RUN_SECTIONS: [&str; 7] = [
    "Run it locally",
    "Vouchers",
    "Club roster",
    "Membership checkout",
    "Cloudbeds CRM sync",
    "Loyalty export",
    "Events and webhooks",
];

/// Stands for `…` (more fields or elements) in an expected JSON value.
const ELIDED: &str = "\u{1}";

/// One command of a README block, with the `# →` expectations after it.
#[derive(Debug)]
struct Step {
    section: String,
    /// 1-based README line of its first line.
    line: usize,
    command: String,
    /// Each expectation's lines, without `# →` / `#`.
    expect: Vec<Vec<String>>,
}

/// The commands of the README's runnable ```` ```sh ```` blocks, in order.
fn runnable_steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut section = String::new();
    let mut lines = readme.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_owned();
            continue;
        }
        if !line.starts_with("```sh") {
            continue;
        }
        let run = line.trim() == "```sh";
        assert!(
            run || line.starts_with(NOT_RUN) && line.len() > NOT_RUN.len(),
            "README line {}: a shell block is fenced ```sh (run by the tests) or \
             `{NOT_RUN}<why>`, not `{line}`",
            n + 1
        );
        let mut block = Vec::new();
        for (m, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            block.push((m + 1, l));
        }
        if run {
            split_block(&section, &block, &mut steps);
        }
    }
    steps
}

/// What a shell line leaves open at its end.
#[derive(Default)]
struct Scan {
    quote: Option<char>,
    continued: bool,
    heredoc: Option<String>,
    comment: Option<String>,
}

/// Scans one line, starting inside `quote`: quotes, a trailing `\`, a
/// heredoc's terminator, a comment.
fn scan(line: &str, quote: Option<char>) -> Scan {
    let mut s = Scan {
        quote,
        ..Scan::default()
    };
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut escaped = false;
    let mut word_start = true;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        i += 1;
        if escaped {
            escaped = false;
            word_start = false;
            continue;
        }
        match s.quote {
            Some('\'') if c == '\'' => s.quote = None,
            Some('\'') => {}
            Some(_) if c == '\\' => escaped = true,
            Some(_) if c == '"' => s.quote = None,
            Some(_) => {}
            None => match c {
                '\\' => escaped = true,
                '\'' | '"' => s.quote = Some(c),
                '#' if word_start => {
                    s.comment = Some(line[at + 1..].trim().to_owned());
                    break;
                }
                '<' if line[at..].starts_with("<<") && !line[at..].starts_with("<<<") => {
                    let rest = line[at + 2..].trim_start_matches('-').trim_start();
                    let word: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !";|&)".contains(*c))
                        .filter(|c| *c != '\'' && *c != '"')
                        .collect();
                    assert!(!word.is_empty(), "a heredoc without a word: {line}");
                    s.heredoc = Some(word);
                    i += 1;
                }
                _ => {}
            },
        }
        word_start = c.is_whitespace() || ";|&(".contains(c);
    }
    s.continued = escaped;
    s
}

fn split_block(section: &str, block: &[(usize, &str)], steps: &mut Vec<Step>) {
    let mut i = 0;
    // Whether a `#   ...` line continues the last expectation.
    let mut expecting = false;
    while i < block.len() {
        let (n, line) = block[i];
        i += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            expecting = false;
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let text = comment.trim();
            if let Some(e) = text.strip_prefix('→') {
                let step = steps
                    .last_mut()
                    .filter(|s| s.section == section)
                    .unwrap_or_else(|| panic!("README line {n}: `# →` follows no command"));
                step.expect.push(vec![e.trim().to_owned()]);
                expecting = true;
            } else if expecting && comment.starts_with("  ") {
                let step = steps.last_mut().unwrap();
                step.expect.last_mut().unwrap().push(text.to_owned());
            } else {
                let first = text.split_whitespace().next().unwrap_or("");
                let status = first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit());
                assert!(
                    !(text.starts_with('{') || text.starts_with('[') || status),
                    "README line {n}: `{trimmed}` looks like an expected output; write it `# → …` \
                     so that the tests check it"
                );
                expecting = false;
            }
            continue;
        }
        // A command: up to the line that closes its quotes, continuation
        // lines and heredoc.
        let mut command = Vec::new();
        let mut expect = Vec::new();
        let mut quote = None;
        let mut l = line;
        loop {
            command.push(l);
            let s = scan(l, quote);
            quote = s.quote;
            if let Some(c) = s.comment.as_deref().and_then(|c| c.strip_prefix('→')) {
                expect.push(vec![c.trim().to_owned()]);
            }
            if let Some(word) = s.heredoc {
                loop {
                    let (_, body) = *block
                        .get(i)
                        .unwrap_or_else(|| panic!("README line {n}: heredoc {word} not closed"));
                    i += 1;
                    command.push(body);
                    if body.trim() == word {
                        break;
                    }
                }
            }
            if quote.is_none() && !s.continued {
                break;
            }
            l = block
                .get(i)
                .unwrap_or_else(|| panic!("README line {n}: the command is not closed"))
                .1;
            i += 1;
        }
        expecting = !expect.is_empty();
        steps.push(Step {
            section: section.to_owned(),
            line: n,
            command: command.join("\n"),
            expect,
        });
    }
}

/// Turns an expected JSON value as the README writes it (`…` for more
/// fields or elements, `"…"` for any value, `"MEM-…"` for a string with
/// that start) into a value; `…` becomes the [`ELIDED`] key or element.
fn pattern(src: &str) -> Result<serde_json::Value, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = String::new();
    let mut stack = Vec::new();
    let (mut in_str, mut escaped) = (false, false);
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        let dots = if c == '…' {
            1
        } else if cs[i..].starts_with(&['.', '.', '.']) {
            3
        } else {
            0
        };
        if dots > 0 {
            if !matches!(out.trim_end().chars().last(), Some('{' | '[' | ',')) {
                out.push(',');
            }
            match stack.last() {
                Some('{') => out.push_str("\"\\u0001\":null"),
                Some('[') => out.push_str("\"\\u0001\""),
                _ => return Err(format!("`…` outside an object or array in `{src}`")),
            }
            i += dots;
            let next = cs[i..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some(',' | '}' | ']') | None) {
                out.push(',');
            }
            continue;
        }
        match c {
            '{' | '[' => stack.push(c),
            '}' | ']' => {
                stack.pop();
            }
            '"' => in_str = true,
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    serde_json::from_str(&out).map_err(|e| format!("`{src}` is not a JSON pattern: {e}"))
}

/// `text` matches `pat`, in which `…` stands for anything: the whole of
/// `text` when `anchored`, else a part of it.
fn glob(pat: &str, text: &str, anchored: bool) -> bool {
    let parts: Vec<&str> = pat.split('…').collect();
    if parts.len() == 1 {
        return if anchored {
            text == pat
        } else {
            text.contains(pat)
        };
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let mut rest = text;
    if anchored {
        let Some(r) = rest.strip_prefix(first) else {
            return false;
        };
        rest = r;
    }
    let middle = if anchored {
        &parts[1..parts.len() - 1]
    } else {
        &parts[..parts.len() - 1]
    };
    for p in middle {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    if anchored {
        rest.ends_with(last)
    } else {
        rest.contains(last)
    }
}

fn json_matches(p: &serde_json::Value, a: &serde_json::Value) -> bool {
    use serde_json::Value;
    match p {
        Value::String(s) if s.contains('…') || s.contains("...") => {
            let s = s.replace("...", "…");
            s.chars().all(|c| c == '…') || a.as_str().is_some_and(|a| glob(&s, a, true))
        }
        Value::Object(po) => a.as_object().is_some_and(|ao| {
            po.iter()
                .filter(|(k, _)| *k != ELIDED)
                .all(|(k, v)| ao.get(k).is_some_and(|av| json_matches(v, av)))
        }),
        Value::Array(pa) => {
            let Some(aa) = a.as_array() else {
                return false;
            };
            let items: Vec<&Value> = pa.iter().filter(|v| *v != ELIDED).collect();
            if items.len() == pa.len() {
                return items.len() == aa.len()
                    && items.iter().zip(aa).all(|(p, a)| json_matches(p, a));
            }
            let mut rest = aa.iter();
            items
                .iter()
                .all(|p| rest.by_ref().any(|a| json_matches(p, a)))
        }
        Value::Number(n) => a.as_f64().is_some_and(|a| Some(a) == n.as_f64()),
        _ => p == a,
    }
}

/// Whether some object within `a` has `key` with a value matching `p`.
fn deep_matches(a: &serde_json::Value, key: &str, p: &serde_json::Value) -> bool {
    use serde_json::Value;
    match a {
        Value::Object(o) => {
            o.get(key).is_some_and(|v| json_matches(p, v))
                || o.values().any(|v| deep_matches(v, key, p))
        }
        Value::Array(items) => items.iter().any(|v| deep_matches(v, key, p)),
        _ => false,
    }
}

/// The HTTP status an expectation names (`201 {…}`), and the rest of it.
fn named_status(first: &str) -> (Option<u16>, &str) {
    match first.split_once(' ') {
        Some((s, rest))
            if s.len() == 3
                && s.bytes().all(|b| b.is_ascii_digit())
                && rest.trim_start().starts_with(['{', '[', '…']) =>
        {
            (s.parse().ok(), rest.trim_start())
        }
        _ => (None, first),
    }
}

/// Checks one `# →` expectation against a step's stdout and the HTTP
/// statuses of its curl calls. Forms: `[status] {json}` / `[status] [json]`
/// (the answer, fields not named ignored), `[status] … "key": json, …`
/// (those fields anywhere in the answer), or lines of text, each found in
/// an output line, in order.
fn check(expect: &[String], stdout: &str, statuses: &[u16]) -> Result<(), String> {
    let (status, rest) = named_status(&expect[0]);
    if let Some(want) = status
        && statuses.last() != Some(&want)
    {
        return Err(format!("expected HTTP {want}, got {statuses:?}"));
    }
    if rest.starts_with(['{', '[', '…']) {
        let text = std::iter::once(rest)
            .chain(expect[1..].iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let actual: serde_json::Value = serde_json::from_str(stdout.trim())
            .map_err(|e| format!("the output is not JSON ({e})"))?;
        if text.starts_with('…') {
            let fields = pattern(&format!("{{{text}}}"))?;
            for (k, v) in fields.as_object().unwrap() {
                if k != ELIDED && !deep_matches(&actual, k, v) {
                    return Err(format!("no \"{k}\": {v} in the answer"));
                }
            }
        } else if !json_matches(&pattern(&text)?, &actual) {
            return Err("the answer does not match".into());
        }
        return Ok(());
    }
    let mut out = stdout.lines().map(|l| l.trim());
    for (i, want) in std::iter::once(rest)
        .chain(expect[1..].iter().map(String::as_str))
        .enumerate()
    {
        if !out.by_ref().any(|l| glob(want.trim(), l, false)) {
            return Err(format!(
                "expected line {} `{want}` not found (in order)",
                i + 1
            ));
        }
    }
    Ok(())
}

/// A stand-in for the Cloudbeds API v1.2 with a property that has no
/// reservations or guests yet; counts the calls that carried an API key.
fn cloudbeds_standin(
    rt: &tokio::runtime::Runtime,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn handle(
        State(calls): State<Arc<AtomicUsize>>,
        Path(method): Path<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let fail = |status: StatusCode, message: &str| {
            (
                status,
                axum::Json(serde_json::json!({"success": false, "message": message})),
            )
                .into_response()
        };
        if headers.get("x-api-key").is_none_or(|k| k.is_empty()) {
            return fail(StatusCode::UNAUTHORIZED, "Invalid API key");
        }
        calls.fetch_add(1, Ordering::SeqCst);
        let data = match method.as_str() {
            "getCustomFields" => serde_json::json!({"success": true, "data": []}),
            "postCustomField" => serde_json::json!({"success": true, "data": {"fieldID": "1"}}),
            "getReservations" | "getGuestsByFilter" => {
                serde_json::json!({"success": true, "data": [], "count": 0, "total": 0})
            }
            _ => return fail(StatusCode::NOT_FOUND, "unknown method"),
        };
        axum::Json(data).into_response()
    }

    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/api/v1.2/{method}", axum::routing::any(handle))
        .with_state(calls.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/api/v1.2"), calls)
}

/// `guesthub serve` on a free port, killed on drop; its stdout stays open.
struct Hub(
    std::process::Child,
    #[allow(dead_code)] std::io::BufReader<std::process::ChildStdout>,
);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data_dir: &Path) -> (Hub, String) {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_guesthub"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--crm-sync-interval", "0", "--loyalty-export-interval", "0"])
        .args(["serve", "--addr", &addr])
        .env_remove("GUESTHUB_DATA_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    (Hub(child, stdout), addr)
}

/// Runs before the README's commands: `cargo run [-q] --` and `guesthub`
/// run the binary on the test's data dir (a bare `cargo run`, the hub in
/// the foreground, is refused); `curl` records each answer's status.
const PRELUDE: &str = r#"
guesthub() { "$GH_BIN" --data-dir "$GH_DATA" "$@"; }
cargo() {
  if [ "${1-}" != run ]; then echo "README: only \`cargo run\` runs here, not: cargo $*" >&2; return 97; fi
  shift
  if [ "${1-}" = -q ]; then shift; fi
  if [ "${1-}" != -- ]; then
    echo "README: \`cargo run\` without -- serves in the foreground; fence it as not run" >&2
    return 97
  fi
  shift
  guesthub "$@"
}
curl() {
  local headers rc=0
  headers=$(mktemp)
  command curl -D "$headers" "$@" || rc=$?
  head -n1 "$headers" >> "$GH_OUT/$GH_STEP.status"
  rm -f "$headers"
  return $rc
}
"#;

/// Every runnable shell block of the README, in order, in one bash session
/// (`bash -euo pipefail`) in a fresh directory whose `.guesthub` is the hub's
/// data dir. Only `localhost:8080` (the hub's address) and Cloudbeds' URL
/// (a stand-in's) are replaced. Every command must succeed and every curl
/// answer be 2xx, unless its expectation names another status; every `# →`
/// expectation is checked against the command's output.
#[test]
fn readme_shell_blocks_run_against_a_served_hub() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (cloudbeds, cloudbeds_calls) = cloudbeds_standin(&rt);
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let data = work.path().join(".guesthub");
    let (_hub, addr) = serve(&data);

    let readme = readme
        .replace("localhost:8080", &addr)
        .replace("https://api.cloudbeds.com/api/v1.2", &cloudbeds);
    let steps = runnable_steps(&readme);
    for s in RUN_SECTIONS {
        assert!(
            steps.iter().any(|step| step.section.starts_with(s)),
            "README: no command of \"{s}\" is run"
        );
    }
    let expectations: usize = steps.iter().map(|s| s.expect.len()).sum();
    assert!(
        expectations >= 15,
        "only {expectations} `# →` expectations in the README"
    );

    let mut script = String::from(PRELUDE);
    for (i, s) in steps.iter().enumerate() {
        script.push_str(&format!(
            "\nGH_STEP={i}\necho {i} > \"$GH_OUT/at\"\n{{\n{}\n}} > \"$GH_OUT/{i}.out\" 2> \"$GH_OUT/{i}.err\"\n",
            s.command
        ));
    }
    script.push_str("echo done > \"$GH_OUT/at\"\n");
    std::fs::write(out.path().join("readme.sh"), &script).unwrap();

    let mut bash = Command::new("bash")
        .args(["-euo", "pipefail"])
        .arg(out.path().join("readme.sh"))
        .current_dir(work.path())
        .env("GH_BIN", env!("CARGO_BIN_EXE_guesthub"))
        .env("GH_DATA", &data)
        .env("GH_OUT", out.path())
        .env("NO_COLOR", "1")
        .env_remove("GUESTHUB_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = bash.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = bash.kill();
            break bash.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let read = |name: String| std::fs::read_to_string(out.path().join(name)).unwrap_or_default();
    let at = read("at".into()).trim().to_owned();
    if !status.success() || at != "done" {
        let i: usize = at.parse().expect("the README script did not start");
        let s = &steps[i];
        panic!(
            "README line {} ({}) failed ({status}):\n{}\nstdout:\n{}\nstderr:\n{}",
            s.line,
            s.section,
            s.command,
            read(format!("{i}.out")),
            read(format!("{i}.err"))
        );
    }

    let mut failures = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let stdout = read(format!("{i}.out"));
        let statuses: Vec<u16> = read(format!("{i}.status"))
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect();
        let mut problems = Vec::new();
        let named = s.expect.iter().any(|e| named_status(&e[0]).0.is_some());
        if !named && statuses.iter().any(|c| *c >= 400) {
            problems.push(format!("HTTP {statuses:?}"));
        }
        for e in &s.expect {
            if let Err(why) = check(e, &stdout, &statuses) {
                problems.push(format!("`# → {}`: {why}", e.join(" / ")));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "README line {} ({}):\n{}\n{}\noutput:\n{}",
                s.line,
                s.section,
                s.command,
                problems.join("\n"),
                stdout.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        cloudbeds_calls.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the README's CRM sync never reached the Cloudbeds stand-in"
    );
}

/// Names fields and values, not formatting: a wrong value, status, missing
/// field or line order fails.
#[test]
fn expectations_match_loosely_but_for_real() {
    let e = |s: &str| vec![s.to_owned()];
    let answer = r#"{"id":"o1","lines":[{"memberships":[{"reference":"MEM-1","expires_on":"2028-01-14"}]}],"total":{"amount":0,"currency":"EUR"}}"#;
    assert!(check(&e(r#"201 {"id":"o1",…}"#), answer, &[201]).is_ok());
    assert!(check(&e(r#"200 {"id":"o1",…}"#), answer, &[201]).is_err());
    assert!(check(&e(r#"{"id":"o2",…}"#), answer, &[]).is_err());
    assert!(
        check(
            &e(r#"201 … "memberships":[{"reference":"MEM-…",…}], "total":{"amount":0,…}"#),
            answer,
            &[201]
        )
        .is_ok()
    );
    assert!(check(&e(r#"… "memberships":[]"#), answer, &[]).is_err());
    assert!(check(&e(r#"… "total":{"amount":1,…}"#), answer, &[]).is_err());
    assert!(check(&e(r#"{"lines":[…]}"#), answer, &[]).is_ok());
    assert!(check(&e(r#"{"lines":[{"id":1},…]}"#), answer, &[]).is_err());
    let csv = "a,b,c\r\nx,1,2\r\n";
    assert!(check(&["a,b,c".into(), "x,…,2".into()], csv, &[]).is_ok());
    assert!(check(&["x,1,2".into(), "a,b,c".into()], csv, &[]).is_err());
    assert!(check(&e("{"), "{}", &[]).is_err());
}

/// Quotes, continuation lines and heredocs keep a command whole; `#   `
/// lines continue an expectation; fences and unmarked outputs are refused.
#[test]
fn readme_blocks_split_into_commands_and_expectations() {
    let md = "## A\n\
```sh not run by the tests: a reason\ncargo run\n```\n\
```sh\n\
X=$(echo 'it''s # no comment' \\\n  | tr a b)   # → 201 {\"a\":1,\n\
#   \"b\":2}\n\
# a comment\n\
cat > f <<'EOF'\nline # body\nEOF\n\
curl -d '{\"multi\":\n  \"line\"}' x\n\
# → done\n\
```\n";
    let steps = runnable_steps(md);
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "X=$(echo 'it''s # no comment' \\\n  | tr a b)   # → 201 {\"a\":1,",
            "cat > f <<'EOF'\nline # body\nEOF",
            "curl -d '{\"multi\":\n  \"line\"}' x",
        ]
    );
    assert_eq!(steps[0].expect, [["201 {\"a\":1,", "\"b\":2}"]]);
    assert!(steps[1].expect.is_empty());
    assert_eq!(steps[2].expect, [["done"]]);
    assert_eq!((steps[0].section.as_str(), steps[0].line), ("A", 6));
    let unmarked = std::panic::catch_unwind(|| runnable_steps("```sh\necho\n# {\"a\":1}\n```\n"));
    assert!(
        unmarked.is_err(),
        "an expected output without → passes unchecked"
    );
    let no_reason = std::panic::catch_unwind(|| runnable_steps("```sh not run\necho\n```\n"));
    assert!(no_reason.is_err());
}

/// The fenced block of `lang` in the README section starting with `section`.
fn readme_block(section: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("\n## {section}"))
        .unwrap_or_else(|| panic!("README has no section {section}"));
    let rest = &readme[start..];
    let open = rest
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("README {section} has no {lang} block"));
    let body = &rest[open + lang.len() + 4..];
    body[..body.find("```").unwrap()].to_owned()
}

// README: the Rust verification, as the README shows it (checked below).
/// Checks `GuestHub-Signature: t=<unix seconds>,v1=<hex>` over "<t>.<body>".
fn verify_guesthub_signature(secret: &str, header: &str, body: &[u8], now: i64) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    let field = |name: &str| {
        header
            .split(',')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(t), Some(v1)) = (field("t"), field("v1")) else {
        return false;
    };
    let (Ok(at), Ok(sig)) = (t.parse::<i64>(), hex::decode(v1)) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    (now - at).abs() <= 300 && mac.verify_slice(&sig).is_ok()
}
// README: end.

/// The README's webhook receivers against a served hub: the Python one as
/// written there (run with the right secret and with a wrong one) and a
/// Rust one using the README's function; a voucher issued reaches both,
/// verified, and the wrong secret is refused.
#[test]
fn readme_webhook_receivers_verify_real_deliveries() {
    // The Rust block is this file's function, word for word.
    let source = include_str!("readme.rs");
    let shown = readme_block("Events and webhooks", "rust");
    let ours = source
        .split("// README: the Rust verification, as the README shows it (checked below).\n")
        .nth(1)
        .and_then(|s| s.split("// README: end.").next())
        .expect("the function between its markers");
    assert_eq!(
        shown.trim(),
        ours.trim(),
        "README's Rust block is not the tested function"
    );

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join(".guesthub");
    let gh = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_guesthub"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env_remove("GUESTHUB_DATA_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_owned()
    };
    gh(&[
        "property",
        "add",
        "castle-winery",
        "--name",
        "Castle Winery",
        "--time-zone",
        "Europe/Vienna",
        "--currency",
        "EUR",
    ]);
    let events_key = gh(&[
        "partner",
        "add",
        "Listener",
        "--properties",
        "castle-winery",
        "--scopes",
        "events",
    ]);
    let office = gh(&[
        "partner",
        "add",
        "Office",
        "--properties",
        "castle-winery",
        "--scopes",
        "vouchers:issue",
    ]);
    let (_hub, addr) = serve(&data);
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let http = reqwest::blocking::Client::new();
    let subscribe = |url: &str| -> String {
        let r = http
            .post(format!(
                "http://{addr}/v1/properties/castle-winery/webhook-subscriptions"
            ))
            .bearer_auth(&events_key)
            .json(&serde_json::json!({"url": url, "types": ["voucher.issued"]}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        r.json::<serde_json::Value>().unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // The Python receiver, twice: with the subscription's secret and with another.
    let script = work.path().join("receiver.py");
    std::fs::write(&script, readme_block("Events and webhooks", "python")).unwrap();
    let python = std::env::var("GUESTHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let start_python = |port: u16, secret: &str, log: &Path| {
        Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .env("GUESTHUB_WEBHOOK_SECRET", secret)
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (good_port, bad_port) = (free_port(), free_port());
    let secret = subscribe(&format!("http://127.0.0.1:{good_port}/hook"));
    subscribe(&format!("http://127.0.0.1:{bad_port}/hook"));
    let good_log = work.path().join("good.log");
    let bad_log = work.path().join("bad.log");
    let mut good = start_python(good_port, &secret, &good_log);
    let mut bad = start_python(bad_port, "whsec_not_the_secret", &bad_log);

    // The Rust receiver with the README's function.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rust_port = free_port();
    let rust_secret = subscribe(&format!("http://127.0.0.1:{rust_port}/hook"));
    let verdicts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(bool, String)>::new()));
    {
        let verdicts = verdicts.clone();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", rust_port)))
            .unwrap();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let verdicts = verdicts.clone();
                let secret = rust_secret.clone();
                async move {
                    let header = headers
                        .get("guesthub-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64;
                    let ok = verify_guesthub_signature(&secret, header, &body, now);
                    let tampered = verify_guesthub_signature(&secret, header, b"{}", now);
                    verdicts
                        .lock()
                        .unwrap()
                        .push((ok && !tampered, String::from_utf8_lossy(&body).into_owned()));
                    if ok {
                        http::StatusCode::NO_CONTENT
                    } else {
                        http::StatusCode::UNAUTHORIZED
                    }
                }
            }),
        );
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    // Give the Python receivers a moment to listen, then make an event.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = http
        .post(format!("http://{addr}/v1/properties/castle-winery/vouchers"))
        .bearer_auth(&office)
        .json(&serde_json::json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let code = r.json::<serde_json::Value>().unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    loop {
        let done = read(&good_log).contains("verified voucher.issued")
            && read(&bad_log).contains("rejected")
            && !verdicts.lock().unwrap().is_empty();
        if done || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for child in [&mut good, &mut bad] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        read(&good_log).contains("verified voucher.issued"),
        "Python receiver: {:?}",
        read(&good_log)
    );
    assert!(
        !read(&good_log).contains("rejected"),
        "{:?}",
        read(&good_log)
    );
    assert!(
        read(&bad_log).contains("rejected"),
        "a wrong secret must be refused: {:?}",
        read(&bad_log)
    );
    assert!(!read(&bad_log).contains("verified"));
    let verdicts = verdicts.lock().unwrap().clone();
    assert!(!verdicts.is_empty(), "the Rust receiver got nothing");
    for (ok, body) in &verdicts {
        assert!(ok, "the Rust receiver refused a real delivery: {body}");
        assert!(body.contains(&code), "{body}");
    }
}
