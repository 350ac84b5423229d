//! The README cannot rot: every command in its shell blocks is checked
//! against the code. `guesthub` / `cargo run --` lines must name existing
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
/// dropped, with the shell variables each block assigns.
fn commands() -> Vec<(String, HashMap<String, String>)> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut vars = HashMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```sh";
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
            .find(|x| x.contains("localhost:8080") || x.starts_with("$P") || x.starts_with("$API"))
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
        if path == "/health" || path == "/openapi.json" {
            continue;
        }
        let ok = paths
            .iter()
            .any(|(t, ops)| matches(t, &path) && ops.get(&method).is_some());
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
