//! Checks on the shape of the code and its deployment description.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// ARCHITECTURE.md's invariant: the domain depends on no AWS, Lambda,
/// SQLite or network crate.
#[test]
fn domain_has_no_infrastructure_dependencies() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let forbidden = [
        "aws-",
        "aws_",
        "lambda_",
        "lambda-",
        "rusqlite",
        "libsqlite",
        "hyper",
        "reqwest",
        "tokio",
        "mio",
        "socket2",
        "suppaftp",
        "axum",
    ];
    let hits: Vec<&str> = tree
        .lines()
        .filter(|l| forbidden.iter().any(|f| l.starts_with(f)))
        .collect();
    assert!(
        hits.is_empty(),
        "domain pulls in infrastructure crates: {hits:?}"
    );
    assert!(
        tree.lines().count() > 3,
        "cargo tree printed too little: {tree}"
    );
}

/// Function crates reach storage through the domain's ports and the
/// repositories, never through the item-store primitive: no `store::items`,
/// none of its types, no `Store::items()`.
#[test]
fn functions_do_not_touch_the_item_store() {
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&repo().join("functions"), &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    let primitive = [
        "store::items",
        "store::Item",
        "store::Write",
        "store::Cond",
        "store::Key",
        "store::Query",
        "store::Table",
        "store::TxError",
        "ItemStore",
        ".items()",
    ];
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // `use platform::store::{A, B}` lists are checked name by name.
        let flat = text.replace(['\n', ' '], "");
        for (n, line) in text.lines().enumerate() {
            if let Some(p) = primitive.iter().find(|p| line.contains(*p)) {
                hits.push(format!("{}:{}: {p}", file.display(), n + 1));
            }
        }
        for list in flat.split("platform::store::{").skip(1) {
            let names = list.split('}').next().unwrap_or_default();
            for name in names.split(',') {
                if [
                    "items", "Item", "Write", "Cond", "Key", "Query", "Table", "TxError",
                ]
                .contains(&name)
                {
                    hits.push(format!("{}: store::{{{name}}}", file.display()));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the item store used from a function: {hits:#?}"
    );
}

/// `infra/openapi.json` is the document the code generates and serves.
#[tokio::test]
async fn openapi_document_has_not_drifted() {
    let generated = guesthub::app::openapi_json();
    let checked_in = std::fs::read_to_string(repo().join("infra/openapi.json"))
        .expect("infra/openapi.json exists");
    assert!(
        generated == checked_in,
        "infra/openapi.json is stale: regenerate it with `cargo run -q -- openapi > infra/openapi.json`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // And the running router serves exactly it.
    let t = tests::fresh_store(tests::Backend::Sqlite).await;
    let router = guesthub::app::router(t.store.clone(), 1024);
    let r = tests::call(&router, "GET", "/openapi.json", None, &[], None).await;
    assert_eq!(r.body, generated);
    let h = tests::call(&router, "GET", "/health", None, &[], None).await;
    assert_eq!(h.status, http::StatusCode::OK);
}

/// `template.yaml` declares exactly the tables the code creates (the same
/// names, keys, index and TTL as `guesthub tables create`), and every
/// function it deploys is a workspace crate with that binary.
#[test]
fn template_matches_the_code() {
    use platform::store::Table;
    let template = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let tables = template.matches("Type: AWS::DynamoDB::Table").count();
    assert_eq!(tables, Table::ALL.len(), "one template table per Table");
    for t in Table::ALL {
        let name = format!("TableName: !Sub \"${{AWS::StackName}}-{}\"", t.suffix());
        let start = template
            .find(&name)
            .unwrap_or_else(|| panic!("template lacks {name}"));
        // The table's block: from its name to the end of its TTL line.
        let ttl = template[start..]
            .find("TimeToLiveSpecification")
            .expect("a TTL line")
            + start;
        let end = template[ttl..]
            .find('\n')
            .map_or(template.len(), |i| ttl + i);
        let block_full = &template[start..end];
        for needle in [
            "AttributeName: pk, KeyType: HASH",
            "AttributeName: sk, KeyType: RANGE",
            "IndexName: gsi1",
            "AttributeName: gsi1pk, KeyType: HASH",
            "AttributeName: gsi1sk, KeyType: RANGE",
            "BillingMode: PAY_PER_REQUEST",
            "PointInTimeRecoveryEnabled: true",
            "SSEEnabled: true",
            "AttributeName: expires_at, Enabled: true",
        ] {
            assert!(
                block_full.contains(needle),
                "{} table lacks `{needle}`",
                t.suffix()
            );
        }
    }
    // Every deployed binary is a crate under functions/ with a main.rs.
    for line in template
        .lines()
        .filter(|l| l.trim_start().starts_with("Binary:"))
    {
        let bin = line.trim().trim_start_matches("Binary:").trim();
        let main = repo().join("functions").join(bin).join("src/main.rs");
        assert!(
            main.exists(),
            "template deploys {bin} but {} is missing",
            main.display()
        );
        let logical: String = bin
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect::<String>()
            + "Function";
        assert!(
            template.contains(&format!("  {logical}:\n")),
            "the logical id of {bin} should be {logical}"
        );
    }
    // ... and every function crate is deployed.
    for e in std::fs::read_dir(repo().join("functions")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().join("src/main.rs").exists() {
            assert!(
                template.contains(&format!("Binary: {name}\n")),
                "functions/{name} has a main.rs but template.yaml does not deploy it"
            );
        }
    }
    // Lambda runs `bootstrap` on the OS-only runtime, arm64 by default with
    // x86_64 as the other choice.
    for needle in [
        "Runtime: provided.al2023",
        "Handler: bootstrap",
        "Architectures: [!Ref Architecture]",
        "AllowedValues: [arm64, x86_64]",
    ] {
        assert!(template.contains(needle), "template lacks `{needle}`");
    }
    // Every GUESTHUB_* variable the template sets is one the code reads.
    let config = std::fs::read_to_string(repo().join("shared/platform/src/config.rs")).unwrap();
    let set: Vec<&str> = template
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("GUESTHUB_"))
        .collect();
    assert!(!set.is_empty());
    for var in set {
        assert!(
            config.contains(&format!("\"{var}\"")),
            "template.yaml sets {var}, which shared/platform/src/config.rs never reads"
        );
    }
}

/// Words that make a field a sum of money (singular).
const MONEY_WORDS: &[&str] = &[
    "amount",
    "price",
    "revenue",
    "total",
    "subtotal",
    "balance",
    "value",
    "tendered",
    "change",
    "discount",
    "fee",
    "cost",
    "paid",
    "due",
    "refund",
    "charge",
    "tax",
    "tip",
    "deposit",
    "credit",
    "debit",
    "minor",
    "net",
    "gross",
    "payment",
    "spent",
    "owed",
    "outstanding",
];

fn says_money(name: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in name.chars() {
        if (c == '_' || c == '-' || c == '.' || c.is_ascii_uppercase()) && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        }
    }
    words.push(word);
    // Plurals too: `amounts`, `totals`.
    words.iter().any(|w| {
        MONEY_WORDS.contains(&w.as_str())
            || w.strip_suffix('s')
                .is_some_and(|s| MONEY_WORDS.contains(&s))
    })
}

/// Whether a schema is (or may be) a bare number: its type, its variants,
/// the items of an array of them.
fn is_bare_number(schema: &serde_json::Value) -> bool {
    let numeric = |t: &serde_json::Value| matches!(t.as_str(), Some("integer" | "number"));
    match &schema["type"] {
        serde_json::Value::Array(ts) if ts.iter().any(numeric) => return true,
        t if numeric(t) => return true,
        _ => {}
    }
    if schema["type"] == "array" && is_bare_number(&schema["items"]) {
        return true;
    }
    ["oneOf", "anyOf", "allOf"].iter().any(|k| {
        schema[*k]
            .as_array()
            .is_some_and(|v| v.iter().any(is_bare_number))
    })
}

/// Every field and parameter of `doc` whose name says money but whose value
/// is a bare number, outside an `{"amount", "currency"}` object.
fn bare_money_fields(doc: &serde_json::Value) -> Vec<String> {
    fn walk(node: &serde_json::Value, path: &str, hits: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
                    let money_object = props.len() == 2
                        && props.contains_key("amount")
                        && props.get("currency").is_some_and(|c| !is_bare_number(c));
                    for (name, schema) in props {
                        if says_money(name) && is_bare_number(schema) && !money_object {
                            hits.push(format!("{path}/properties/{name}"));
                        }
                    }
                }
                if map.get("in").is_some()
                    && let Some(name) = map.get("name").and_then(|n| n.as_str())
                    && says_money(name)
                    && is_bare_number(&map["schema"])
                {
                    hits.push(format!("{path} (parameter {name})"));
                }
                for (k, v) in map {
                    walk(v, &format!("{path}/{k}"), hits);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}/{i}"), hits);
                }
            }
            _ => {}
        }
    }
    let mut hits = Vec::new();
    walk(doc, "", &mut hits);
    hits
}

/// One money shape: every amount in every request and answer is a `Money`
/// object (`{"amount": <minor units>, "currency": "EUR"}`), never a bare
/// number whose currency is somewhere else or nowhere.
#[test]
fn every_amount_in_the_api_is_money() {
    let doc: serde_json::Value = serde_json::from_str(&guesthub::app::openapi_json()).unwrap();
    let hits = bare_money_fields(&doc);
    assert!(
        hits.is_empty(),
        "amounts that are bare numbers, not {{\"amount\", \"currency\"}}: {hits:#?}"
    );
    // The walk itself: it sees the money it should and only that.
    let money = &doc["components"]["schemas"]["Money"];
    assert!(money["properties"]["amount"]["type"] == "integer");
    let shapes = serde_json::json!({
        "components": {"schemas": {
            "Unit": {"type": "object", "properties": {"price": {"type": "integer"}, "name": {"type": "string"}}},
            "Stay": {"type": "object", "properties": {"roomRevenue": {"type": ["integer", "null"]}, "nights": {"type": "integer"}}},
            "Discount": {"oneOf": [{"type": "object", "properties": {"amount_off": {"type": "integer"}}},
                                   {"type": "object", "properties": {"percent_off": {"type": "number"}}}]},
            "Split": {"type": "object", "properties": {"amounts": {"type": "array", "items": {"type": "number"}}}},
            "Money": money,
            "Line": {"type": "object", "properties": {"total": {"$ref": "#/components/schemas/Money"}, "quantity": {"type": "integer"}}},
        }},
        "paths": {"/x": {"get": {"parameters": [{"in": "query", "name": "min_balance", "schema": {"type": "integer"}},
                                                {"in": "query", "name": "limit", "schema": {"type": "integer"}}]}}}
    });
    let found = bare_money_fields(&shapes);
    assert_eq!(
        found,
        [
            "/components/schemas/Discount/oneOf/0/properties/amount_off",
            "/components/schemas/Split/properties/amounts",
            "/components/schemas/Stay/properties/roomRevenue",
            "/components/schemas/Unit/properties/price",
            "/paths//x/get/parameters/0 (parameter min_balance)",
        ],
        "{found:#?}"
    );
}

/// The domain's modules import one another in one direction: no two
/// sibling modules (files of one folder) reach each other through
/// `super::` or `crate::` paths, directly or round a longer circle.
#[test]
fn domain_modules_import_without_circles() {
    use std::collections::{BTreeMap, BTreeSet};
    fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rs_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = repo().join("shared/domain/src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    // Module path of each file: guest/ports.rs → guest::ports.
    let module = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
            parts.pop();
        }
        parts
    };
    let known: BTreeSet<Vec<String>> = files.iter().map(|f| module(f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let me = module(f);
        let is_mod = f.file_stem().is_some_and(|s| s == "mod" || s == "lib");
        // `super` of a file module is its folder's module; of a mod.rs, its parent.
        let parent: Vec<String> = if is_mod {
            me[..me.len().saturating_sub(1)].to_vec()
        } else {
            me[..me.len() - 1].to_vec()
        };
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for stmt in code
            .split(';')
            .map(str::trim)
            .filter(|s| s.starts_with("use ") || s.starts_with("pub use "))
        {
            let path = stmt
                .trim_start_matches("pub ")
                .trim_start_matches("use ")
                .trim();
            let (base, rest) = if let Some(r) = path.strip_prefix("super::") {
                (parent.clone(), r)
            } else if let Some(r) = path.strip_prefix("crate::") {
                (Vec::new(), r)
            } else {
                continue;
            };
            // The longest known module the path names.
            let mut target = base.clone();
            let mut best = None;
            for seg in rest.split("::") {
                let seg = seg.trim_matches(|c: char| c == '{' || c == '}' || c.is_whitespace());
                if seg.is_empty() || seg.contains(',') {
                    break;
                }
                target.push(seg.to_owned());
                if known.contains(&target) {
                    best = Some(target.clone());
                }
            }
            if let Some(t) = best
                && t != me
                && t.len() == me.len()
                && t[..t.len() - 1] == me[..me.len() - 1]
            {
                edges.entry(me.clone()).or_default().insert(t);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle: Vec<String> = stack[i..].iter().map(|m| m.join("::")).collect();
            cycle.push(n.join("::"));
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.clone());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        let cycle = visit(n, &edges, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import circle: {}",
            cycle.unwrap().join(" → ")
        );
    }
    assert!(
        !edges.is_empty(),
        "no imports between sibling modules found"
    );
}
