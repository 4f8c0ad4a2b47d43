//! The crate's shape, checked: its top-level modules, and the `crate::` paths
//! between them, form no cycle, and the error module depends on nothing but the
//! reports it carries and the versions they name.

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
