//! The crate's shape, checked: its top-level modules, and the `crate::` paths
//! between them, form no cycle, and the error module depends on nothing but the
//! reports it carries and the versions they name. SQL is built with `format!` only
//! in the places counted here, each reviewed against `src/sql/mod.rs`'s rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`migrations` for `src/migrations/run.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names through `crate::…` (a `use crate::{a, b::c}`
/// group included), comments left out.
fn referenced(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // One level of `{a, b::c, d::{e, f}}`: the first identifier of each item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found
}

/// The dependency graph of the crate's top-level modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| m != "lib")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let targets = edges.entry(from.clone()).or_default();
        for to in referenced(&text) {
            // Re-exports at the root (`crate::Error`) resolve to their module by name.
            if to != from && modules.contains(&to) {
                targets.insert(to);
            }
        }
    }
    edges
}

/// Every cycle's modules (strongly connected components of more than one module).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for (m, r) in &reached {
        let mut component: Vec<String> = r
            .iter()
            .filter(|o| reached.get(o).is_some_and(|back| back.contains(*m)))
            .cloned()
            .collect();
        if component.len() > 1 || r.contains(*m) {
            component.sort();
            component.dedup();
            if !out.contains(&component) {
                out.push(component);
            }
        }
    }
    out
}

#[test]
fn the_modules_form_no_cycle() {
    let edges = graph();
    assert!(
        edges.len() > 10,
        "the crate's modules were found: {edges:?}"
    );
    let found = cycles(&edges);
    assert!(found.is_empty(), "module cycles: {found:?}\n{edges:#?}");
}

#[test]
fn the_error_module_is_a_leaf_but_for_the_reports_and_versions_it_carries() {
    let edges = graph();
    let error: Vec<&String> = edges["error"].iter().collect();
    assert_eq!(error, ["report"], "error.rs depends on {error:?}");
    let report: Vec<&String> = edges["report"].iter().collect();
    assert_eq!(report, ["version"], "report.rs depends on {report:?}");
    assert!(
        edges["version"].is_empty(),
        "version.rs depends on {:?}",
        edges["version"]
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // The check above can fail: two modules naming each other are a cycle.
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["a".to_owned()].into()),
        ("c".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert_eq!(cycles(&edges), [vec!["a".to_owned(), "b".to_owned()]]);
    assert_eq!(
        referenced(
            "use crate::{error::{Error, Repr}, sql};\nlet x = crate::store::Store; // crate::txn"
        ),
        ["error", "sql", "store"].map(String::from).into()
    );
}

/// The places that build SQL with `format!` (tests aside), by file, each reviewed
/// against the rules in `src/sql/mod.rs`: what is formatted in is a `const` of the
/// crate, an identifier quoted by `quote_ident`, or a typed value (an enum's fixed
/// text, an integer); values are bound. A new one fails this test until it is
/// reviewed and counted here.
const FORMATTED_SQL: &[(&str, usize)] = &[
    ("accounts.rs", 2),
    ("connection/mod.rs", 3),
    ("encryption.rs", 7),
    ("migrations/inspect.rs", 2),
    // The names and definitions of idstore's own steps, quoted; the bookkeeping's
    // constant name.
    ("migrations/preview.rs", 4),
    ("migrations/restore.rs", 8),
    ("migrations/run.rs", 2),
    // The steps' own preflight queries, joined.
    ("migrations/steps.rs", 1),
    ("quarantine/read.rs", 1),
    ("sql/mod.rs", 3),
    ("store.rs", 1),
    ("values.rs", 1),
];

/// Where `text` calls `format!` with a literal that starts with an SQL keyword:
/// the line of each (the part from `#[cfg(test)]` on left out).
fn formatted_sql(text: &str) -> Vec<usize> {
    const KEYWORDS: &[&str] = &[
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "PRAGMA",
        "CREATE",
        "DROP",
        "ALTER",
        "ATTACH",
        "DETACH",
        "BEGIN",
        "SAVEPOINT",
        "RELEASE",
        "ROLLBACK",
        "REPLACE",
        "WITH",
        "VACUUM",
    ];
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut found = Vec::new();
    for (at, _) in code.match_indices("format!(") {
        let rest = code[at + "format!(".len()..].trim_start();
        let rest = rest.trim_start_matches('r').trim_start_matches('#');
        let Some(literal) = rest.strip_prefix('"') else {
            continue;
        };
        let first: String = literal
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        if KEYWORDS.contains(&first.as_str()) {
            found.push(code[..at].lines().count());
        }
    }
    found
}

#[test]
fn sql_is_formatted_only_where_it_was_reviewed() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for file in &files {
        let lines = formatted_sql(&std::fs::read_to_string(file).unwrap());
        if !lines.is_empty() {
            let rel = file
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            found.insert(rel, lines);
        }
    }
    let counts: BTreeMap<&str, usize> = found.iter().map(|(f, l)| (f.as_str(), l.len())).collect();
    let reviewed: BTreeMap<&str, usize> = FORMATTED_SQL.iter().copied().collect();
    assert_eq!(
        counts, reviewed,
        "SQL built with format! (file: lines): {found:?}; review each new one against src/sql/mod.rs's rules, then count it in FORMATTED_SQL"
    );
}

#[test]
fn the_formatted_sql_finder_finds_one() {
    // The check above can fail: a value formatted into a statement is found.
    let planted = "fn f(did: &str) {\n    let q = format!(\n        \"SELECT * FROM accounts WHERE did = '{did}'\");\n    let m = format!(\"{did} is not valid\");\n}\n#[cfg(test)]\nmod tests { fn g() { format!(\"DROP TABLE x\"); } }\n";
    assert_eq!(formatted_sql(planted), [2]);
}
