//! ARCHITECTURE.md held to the code: every path it names in backticks exists, so
//! the map cannot point to a file that moved.

use std::path::{Path, PathBuf};

/// Where a path the document names is looked for: from the repository's root,
/// then from the library's sources and the command's (where the document writes
/// `connection/mod.rs` for `crates/repo/src/connection/mod.rs`).
const BASES: [&str; 3] = ["", "crates/repo/src", "src"];

/// The endings of a file name that make a backticked word a path.
const EXTENSIONS: [&str; 10] = [
    ".rs", ".md", ".toml", ".sql", ".json", ".mjs", ".py", ".lock", ".ts", ".sh",
];

/// The words `text` puts in backticks that look like paths of the repository (a
/// `/` in them, or a file name's ending), fenced blocks left out; a word with a
/// space, `::` or a pattern in it is not a path.
fn named_paths(text: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty()
                && !word.contains(char::is_whitespace)
                && !["::", "<", "{", "*", "=", "$", "http"]
                    .iter()
                    .any(|not| word.contains(not))
                && !word.starts_with('-')
                && (word.contains('/') || EXTENSIONS.iter().any(|e| word.ends_with(e)))
        })
        .map(str::to_owned)
        .collect()
}

/// The paths `text` names that exist under none of the bases of `root`.
fn missing(root: &Path, text: &str) -> Vec<String> {
    named_paths(text)
        .into_iter()
        .filter(|p| {
            !BASES.iter().any(|base| {
                let path = root.join(base).join(p.trim_end_matches('/'));
                if p.ends_with('/') {
                    path.is_dir()
                } else {
                    path.exists()
                }
            })
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_path_the_architecture_names_exists() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let named = named_paths(&text);
    assert!(
        named.len() > 50,
        "ARCHITECTURE.md's paths were found: {named:?}"
    );
    let gone = missing(&root(), &text);
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {gone:?}"
    );
}

#[test]
fn a_planted_path_that_does_not_exist_is_found() {
    // The check above can fail: a path that moved is found, wherever it is written.
    let planted = "The runner is `migrations/run.rs`, once `migrations/pinned.rs`; see \
        `README.md` and `src/nowhere/`. Not paths: `Store::settings`, `BEGIN IMMEDIATE`, \
        `--json`, `settings.activeDid`.\n```\nnot/checked.rs\n```\n";
    assert_eq!(
        named_paths(planted),
        [
            "migrations/run.rs",
            "migrations/pinned.rs",
            "README.md",
            "src/nowhere/"
        ]
    );
    assert_eq!(
        missing(&root(), planted),
        ["migrations/pinned.rs", "src/nowhere/"]
    );
}
