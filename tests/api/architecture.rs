//! The shape of the crate, read from its source tree: the layers form a
//! DAG (domain ← db/models ← services ← api ← cli), no top-level module
//! depends on itself through others, handlers hold no SQL, and handlers
//! write only through the write recipe. No module is over 600 lines (the
//! generated schema aside) and no function of the API layer over 60.
//!
//! Every top-level module of `src/` has a rank; a module may use modules of
//! its rank or below, never above. The crate root (`lib.rs`: `AppState` and
//! `app()`, which composes everything) is the one module every other may
//! name, and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Rank of each top-level module; a new module must be given one here.
const RANKS: &[(&str, u8)] = &[
    // rules and types without HTTP or SQL
    ("domain", 0),
    // foundations every layer may use
    ("error", 1),
    ("files", 1),
    ("memory", 1),
    // storage
    ("db", 2),
    ("models", 2),
    // rules over storage, and the infrastructure they write through
    ("audit", 3),
    ("auth", 3),
    ("services", 3),
    // HTTP
    ("api", 4),
    ("middleware", 4),
    ("openapi", 4),
    ("extract", 4),
    ("idempotency", 4),
    ("throttle", 4),
    ("refusals", 4),
    // the process
    ("cli", 5),
    ("config", 5),
    ("telemetry", 5),
];

/// Lines a module may have before it must be split.
const MODULE_LINES: usize = 600;
/// Lines a handler-layer function may have.
const HANDLER_LINES: usize = 60;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate root).
fn top_module(rel: &str) -> Option<String> {
    let first = rel.split('/').next()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The code of a line without its comment (`//` outside a string is rare
/// enough in this crate's `use` lines and paths to cut at the first one).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// Modules a line names as `crate::m` or inside `crate::{m, …}`.
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

struct Tree {
    /// module → module it uses → first place
    edges: BTreeMap<String, BTreeMap<String, String>>,
    /// file (relative to src) → lines naming the schema or diesel
    sql_lines: BTreeMap<String, Vec<String>>,
}

fn read_tree() -> Tree {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let ranks: BTreeMap<&str, u8> = RANKS.iter().copied().collect();
    let mut tree = Tree {
        edges: BTreeMap::new(),
        sql_lines: BTreeMap::new(),
    };
    for path in files {
        let rel = path
            .strip_prefix(SRC)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).expect("source readable");
        let Some(module) = top_module(&rel) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            for used in named_modules(line) {
                // crate-root items (AppState, app, macros) are not modules
                if used != module && ranks.contains_key(used.as_str()) {
                    tree.edges
                        .entry(module.clone())
                        .or_default()
                        .entry(used)
                        .or_insert_with(|| format!("src/{rel}:{}", n + 1));
                }
            }
            if rel.starts_with("api/") && (line.contains("db::schema") || line.contains("diesel::"))
            {
                tree.sql_lines.entry(rel.clone()).or_default().push(format!(
                    "src/{rel}:{}: {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
        tree.edges.entry(module).or_default();
    }
    tree
}

#[test]
fn every_module_has_a_rank_and_uses_none_above_it() {
    let tree = read_tree();
    let ranks: BTreeMap<&str, u8> = RANKS.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, used) in &tree.edges {
        let Some(&rank) = ranks.get(module.as_str()) else {
            problems.push(format!(
                "src/{module} has no rank in tests/api/architecture.rs"
            ));
            continue;
        };
        for (other, at) in used {
            let theirs = ranks[other.as_str()];
            if theirs > rank {
                problems.push(format!(
                    "{module} (rank {rank}) uses {other} (rank {theirs}) at {at}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_module_depends_on_itself() {
    let tree = read_tree();
    let mut cycles = BTreeSet::new();
    // depth-first from each module, remembering the path
    fn walk(
        tree: &Tree,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        cycles: &mut BTreeSet<String>,
    ) {
        for next in tree.edges.get(at).map(|m| m.keys()).into_iter().flatten() {
            if next == start {
                let mut c = path.clone();
                c.push(start.to_owned());
                cycles.insert(c.join(" → "));
            } else if !path.contains(next) {
                path.push(next.clone());
                walk(tree, start, next, path, cycles);
                path.pop();
            }
        }
    }
    for start in tree.edges.keys() {
        walk(&tree, start, start, &mut vec![start.clone()], &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "module cycles:\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn handlers_hold_no_sql() {
    let tree = read_tree();
    let problems: Vec<String> = tree
        .sql_lines
        .iter()
        .map(|(file, lines)| {
            format!(
                "{file} names the schema or diesel; move the query into a service:\n  {}",
                lines.join("\n  ")
            )
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `(file, lines)` of every module, generated code aside.
fn module_lengths() -> BTreeMap<String, usize> {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    files
        .into_iter()
        .filter(|p| !p.ends_with("db/schema.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source readable");
            (relative(&p), text.lines().count())
        })
        .collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(SRC)
        .expect("under src")
        .to_string_lossy()
        .replace('\\', "/")
}

/// The length of every function of `text`: from its `fn` line to the line
/// closing it at the same indentation (rustfmt's layout).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = &line[..line.len() - code.len()];
        let rest = ["pub ", "pub(crate) ", "pub(super) "]
            .iter()
            .find_map(|p| code.strip_prefix(p))
            .unwrap_or(code);
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let Some(signature) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = signature
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        let end = lines[i..]
            .iter()
            .position(|l| *l == close || (l.trim_end().ends_with(';') && l == line))
            .map_or(lines.len() - i, |n| n + 1);
        out.push((name, end));
    }
    out
}

#[test]
fn no_module_is_long() {
    let problems: Vec<String> = module_lengths()
        .into_iter()
        .filter(|(_, lines)| *lines > MODULE_LINES)
        .map(|(name, lines)| format!("{name}: {lines} lines, over {MODULE_LINES}; split it"))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_handler_is_long() {
    let mut files = Vec::new();
    rust_files(&Path::new(SRC).join("api"), &mut files);
    let mut problems = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("source readable");
        let file = relative(&path);
        for (name, lines) in function_lengths(&text) {
            if lines > HANDLER_LINES {
                problems.push(format!(
                    "{file}::{name}: {lines} lines, over {HANDLER_LINES}; split it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn writes_go_through_the_recipe() {
    let mut files = Vec::new();
    rust_files(&Path::new(SRC).join("api"), &mut files);
    let measured: BTreeMap<String, usize> = files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("source readable");
            let n = text
                .lines()
                .filter(|l| code(l).contains("write_tx"))
                .count();
            (relative(p), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    // Handlers write only through `api::write` (services::journal::commit).
    assert!(
        measured.is_empty(),
        "handlers opening their own write transaction: {measured:?}"
    );
}

/// An audit row is written by the recipe (`services::journal`), or alone
/// for a refusal or a read (`audit::record_alone`); nothing else appends to
/// the log, so no write can leave its audit row out of its transaction's
/// fixed order.
#[test]
fn only_the_recipe_appends_audit_rows() {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .map(|p| {
            (
                relative(p),
                std::fs::read_to_string(p).expect("source readable"),
            )
        })
        .filter(|(name, _)| name != "audit.rs" && name != "services/journal.rs")
        .filter(|(_, text)| text.lines().any(|l| code(l).contains("audit::record(")))
        .map(|(name, _)| name)
        .collect();
    assert!(
        offenders.is_empty(),
        "audit rows appended outside the recipe: {offenders:?}"
    );
}

#[test]
fn function_lengths_follow_rustfmt_layout() {
    let text = "fn a() {\n    x();\n}\n\n    pub async fn b(\n        y: u8,\n    ) -> u8 {\n        y\n    }\n";
    assert_eq!(
        function_lengths(text),
        vec![("a".to_owned(), 3), ("b".to_owned(), 5)]
    );
}

#[test]
fn the_reader_sees_imports_in_every_spelling() {
    assert_eq!(
        named_modules("use crate::{audit::Event, db::{self, Id}, AppState};"),
        vec!["audit", "db"]
    );
    assert_eq!(
        named_modules("let x = crate::services::access::Viewer::new();"),
        vec!["services"]
    );
    assert_eq!(code("use crate::db; // crate::api"), "use crate::db; ");
    assert_eq!(top_module("api/cases.rs").as_deref(), Some("api"));
    assert_eq!(top_module("lib.rs"), None);
}
