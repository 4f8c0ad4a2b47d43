//! The crate's shape, checked. Its areas (the top-level modules: a folder, or a
//! file of its own) use one another only as the table [`USES`] says, which forms no
//! cycle; the error module depends on nothing but the reports it carries and the
//! versions they name; every folder's module doc says its job and its rule; the
//! crate root holds at most [`MAX_ROOT_NAMES`] names. SQL is built with `format!`
//! only in the places counted here, each reviewed against `src/sql/mod.rs`'s rules.
//! (ARCHITECTURE.md, at the repository's root, describes the areas.)

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

fn src_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Files that are nodes of the graph on their own, apart from their area: the
/// leaves the crate's lowest modules may name without naming the whole area.
const LEAVES: &[(&str, &str)] = &[
    ("migrations/report.rs", "migrations::report"),
    ("migrations/version.rs", "migrations::version"),
    ("encryption/key.rs", "encryption::key"),
];

/// The node a file belongs to: its leaf name, else its area (`migrations` for
/// `src/migrations/run.rs`).
fn node_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let rel_text = rel.to_string_lossy().replace('\\', "/");
    if let Some((_, leaf)) = LEAVES.iter().find(|(f, _)| *f == rel_text) {
        return (*leaf).to_owned();
    }
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file, comments left out.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The paths a file names through `crate::…` (a `use crate::{a, b::c}` group
/// included: the path of each item), as lists of their first two identifiers,
/// comments left out.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let code = code_of(text);
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // One level of `{a, b::c, d::{e, f}}`: the path of each item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        found.push(two_segments(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(two_segments(rest));
        }
    }
    found
}

/// The first two identifiers of `a::b::…` (one when there is no second).
fn two_segments(s: &str) -> Vec<String> {
    let first = ident(s);
    let mut out = vec![first.clone()];
    if let Some(rest) = s[first.len()..].strip_prefix("::") {
        let second = ident(rest);
        if !second.is_empty() {
            out.push(second);
        }
    }
    out
}

/// The names the crate root re-exports (`pub use area::{A, B}`), each with the
/// area it comes from, so that `crate::A` counts as a use of that area.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let code = code_of(lib);
    let mut names = BTreeMap::new();
    for statement in code.split(';') {
        let Some(path) = statement.trim().split("pub use ").nth(1) else {
            continue;
        };
        let area = ident(path);
        for name in path
            .split(['{', '}', ',', ':'])
            .map(|n| n.split(" as ").last().unwrap_or(n).trim())
            .filter(|n| !n.is_empty())
        {
            names.insert(ident(name), area.clone());
        }
    }
    names
}

/// The node `path` (`crate::a::b::…`) names, if it is one of `nodes`.
fn resolve(
    path: &[String],
    nodes: &BTreeSet<String>,
    roots: &BTreeMap<String, String>,
) -> Option<String> {
    if let [a, b, ..] = path {
        let leaf = format!("{a}::{b}");
        if nodes.contains(&leaf) {
            return Some(leaf);
        }
    }
    let first = path.first()?;
    if nodes.contains(first) {
        return Some(first.clone());
    }
    // A re-export at the root (`crate::Error`) is a use of the area it comes from.
    roots.get(first).filter(|a| nodes.contains(*a)).cloned()
}

/// The dependency graph of the crate's nodes (areas and leaves): who names whom.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src_dir();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let roots = root_names(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let nodes: BTreeSet<String> = files
        .iter()
        .map(|f| node_of(&src, f))
        .filter(|m| m != "lib")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = node_of(&src, file);
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // A unit test (the part from `#[cfg(test)]` on) may drive the crate through
        // its front door (`crate::Database`), as the integration tests do; a path
        // into a module counts there as anywhere.
        let (code, tests) = text.split_at(text.find("#[cfg(test)]").unwrap_or(text.len()));
        let no_roots = BTreeMap::new();
        let targets = edges.entry(from.clone()).or_default();
        for (part, roots) in [(code, &roots), (tests, &no_roots)] {
            for path in crate_paths(part) {
                if let Some(to) = resolve(&path, &nodes, roots)
                    && to != from
                {
                    targets.insert(to);
                }
            }
        }
        // A leaf that names its own area through `super::` uses the whole area.
        if from.contains("::") && code_of(code).contains("super::") {
            let area = from.split("::").next().unwrap().to_owned();
            targets.insert(area);
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

/// Which areas (and leaves) each one uses, lowest first: a new use fails
/// [`each_area_uses_only_what_the_table_allows`] until it is added here, where it
/// must keep the table free of cycles.
const USES: &[(&str, &[&str])] = &[
    ("migrations::version", &[]),
    ("migrations::report", &["migrations::version"]),
    ("error", &["migrations::report"]),
    ("encryption::key", &["error"]),
    ("sql", &["error"]),
    ("fs", &["error"]),
    ("connection", &["encryption::key", "error", "fs", "sql"]),
    (
        "migrations",
        &["connection", "error", "fs", "migrations::report", "sql"],
    ),
    ("store", &["connection", "error", "sql"]),
    ("quarantine", &["error", "fs", "migrations", "sql", "store"]),
    (
        "health",
        &[
            "connection",
            "error",
            "fs",
            "migrations",
            "quarantine",
            "sql",
            "store",
        ],
    ),
    ("encryption", &["connection", "error", "fs", "sql"]),
    (
        "database",
        &[
            "connection",
            "encryption",
            "encryption::key",
            "error",
            "fs",
            "health",
            "migrations",
            "migrations::report",
            "quarantine",
            "store",
        ],
    ),
    ("pool", &["database", "error"]),
    (
        "asynchronous",
        &["connection", "database", "error", "pool", "store"],
    ),
    ("testing", &["database", "error", "fs", "migrations"]),
    ("fixtures", &["database", "fs", "sql"]),
];

#[test]
fn each_area_uses_only_what_the_table_allows() {
    let edges = graph();
    let found: BTreeMap<&str, Vec<&str>> = edges
        .iter()
        .map(|(from, to)| (from.as_str(), to.iter().map(String::as_str).collect()))
        .collect();
    let allowed: BTreeMap<&str, Vec<&str>> =
        USES.iter().map(|(from, to)| (*from, to.to_vec())).collect();
    assert_eq!(
        found, allowed,
        "the areas' uses (left) against the table USES (right): a new use is added to USES, keeping it free of cycles; a use that went is taken out"
    );
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
    // The table itself, which the test above holds the code to, is free of cycles.
    let table: BTreeMap<String, BTreeSet<String>> = USES
        .iter()
        .map(|(from, to)| {
            (
                (*from).to_owned(),
                to.iter().map(|t| (*t).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(cycles(&table), Vec::<Vec<String>>::new());
}

#[test]
fn the_error_module_is_a_leaf_but_for_the_reports_and_versions_it_carries() {
    let edges = graph();
    let names = |node: &str| -> Vec<&String> { edges[node].iter().collect() };
    assert_eq!(
        names("error"),
        ["migrations::report"],
        "error.rs depends on {:?}",
        names("error")
    );
    assert_eq!(names("migrations::report"), ["migrations::version"]);
    assert!(names("migrations::version").is_empty());
    assert_eq!(names("encryption::key"), ["error"]);
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
    let nodes: BTreeSet<String> = ["error", "sql", "store", "migrations", "migrations::report"]
        .map(String::from)
        .into();
    let roots: BTreeMap<String, String> = [("Store".to_owned(), "store".to_owned())].into();
    let named: BTreeSet<String> = crate_paths(
        "use crate::{error::{Error, Repr}, sql};\nlet x = crate::Store::over(h); // crate::txn\nuse crate::migrations::report::MigrationReport;",
    )
    .iter()
    .filter_map(|p| resolve(p, &nodes, &roots))
    .collect();
    assert_eq!(
        named,
        ["error", "migrations::report", "sql", "store"]
            .map(String::from)
            .into()
    );
}

/// Every folder of `src/` has a module doc (`//!`) that says its job and, in a
/// line of its own that starts `**Rule:**`, the invariant everything in it keeps.
#[test]
fn every_folder_says_its_job_and_its_rule() {
    let src = src_dir();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let folder = entry.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(folder.join("mod.rs")).unwrap_or_default();
        let doc: Vec<&str> = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim())
            .collect();
        if doc.len() < 3 || !doc.iter().any(|l| l.starts_with("**Rule:**")) {
            missing.push(folder.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "folders whose mod.rs does not open with its job and a **Rule:** line: {missing:?}"
    );
}

/// At most this many names at the crate root (each `pub use` name and each
/// `pub mod`): the few a service needs, the rest in public modules.
const MAX_ROOT_NAMES: usize = 25;

/// The names `lib` puts at the crate root: each `pub mod` and each name a
/// `pub use` brings in (`as` counts the new name), whatever its `cfg`.
fn root_name_list(lib: &str) -> Vec<String> {
    let code = code_of(lib);
    let mut names = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let item = statement
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("#["))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(module) = item.strip_prefix("pub mod ") {
            names.push(ident(module.trim()));
        } else if let Some(path) = item.strip_prefix("pub use ") {
            let inner = match path.find('{') {
                Some(at) => &path[at + 1..path.rfind('}').unwrap_or(path.len())],
                None => path.rsplit("::").next().unwrap_or(path),
            };
            for piece in inner.split(',') {
                let piece = piece.trim();
                if piece.is_empty() {
                    continue;
                }
                let name = piece.split(" as ").last().unwrap().trim();
                names.push(ident(name.rsplit("::").next().unwrap()));
            }
        }
    }
    names
}

#[test]
fn the_crate_root_holds_at_most_25_names() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let names = root_name_list(&lib);
    assert!(
        names.len() <= MAX_ROOT_NAMES,
        "the crate root holds {} names, more than {MAX_ROOT_NAMES}: {names:?}; put the niche ones in a public module",
        names.len()
    );
    // Each counted once: the same name twice would be a mistake of the counter.
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

#[test]
fn the_root_name_counter_counts_every_kind_of_name() {
    // The check above can fail: a root with one name too many is counted whole.
    let planted = "//! doc\n#[cfg(feature = \"tokio\")]\npub mod asynchronous;\nmod private;\n/// Diesel.\npub use diesel;\npub use idstore_domain as domain;\npub use database::{\n    Database, OpenOptions,\n};\npub use error::Error;\n// pub use commented::Out;\n";
    assert_eq!(
        root_name_list(planted),
        [
            "asynchronous",
            "diesel",
            "domain",
            "Database",
            "OpenOptions",
            "Error"
        ]
    );
    let too_many: String = (0..=MAX_ROOT_NAMES)
        .map(|i| format!("pub mod m{i};\n"))
        .collect();
    assert_eq!(root_name_list(&too_many).len(), MAX_ROOT_NAMES + 1);
}

/// The places that build SQL with `format!` (tests aside), by file, each reviewed
/// against the rules in `src/sql/mod.rs`: what is formatted in is a `const` of the
/// crate, an identifier quoted by `quote_ident`, or a typed value (an enum's fixed
/// text, an integer); values are bound. A new one fails this test until it is
/// reviewed and counted here.
const FORMATTED_SQL: &[(&str, usize)] = &[
    ("connection/establish.rs", 2),
    ("connection/transaction.rs", 1),
    ("encryption/convert.rs", 7),
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
    // A `CREATE` statement of idstore's own scripts, as `sqlite_master` keeps it:
    // its keywords, and the rest of the script's own text.
    ("sql/script.rs", 1),
    ("store/accounts.rs", 2),
    ("store/settings.rs", 1),
    ("store/undecodable.rs", 1),
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
    let src = src_dir();
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
